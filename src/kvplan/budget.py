"""The memory budget of one GPU: what is left for the KV cache after weights and reserves.

This is the plain, engine-neutral budget (the article's view): usable = memory x utilization, minus the
weights of this GPU's shard, minus an explicit reserve. Engine accounting (vLLM's activation peak, non-torch
memory, CUDA graphs, SGLang's static fraction) replaces this piece; each term carries its source so the
derivation can show where every byte went.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from kvplan.errors import InputError


class TermKind(StrEnum):
    """What a budget term is (its value is the default label)."""

    WEIGHTS = "weights"
    NON_TORCH = "non-torch"
    ACTIVATION = "activation peak"
    CUDA_GRAPHS = "CUDA graphs"
    STARTUP = "in use at startup"
    WIGGLE = "wiggle room"
    RESERVE = "reserve"
    MARGIN = "kept free after warmup"
    BUFFERS = "runner buffers"


@dataclass(frozen=True, slots=True)
class Term:
    kind: TermKind
    bytes: int  # positive: subtracted from the usable memory
    source: str
    title: str = ""  # how the derivation names it when not by its kind

    @property
    def label(self) -> str:
        return self.title or self.kind.value


@dataclass(frozen=True)
class Budget:
    """Per GPU. `kv_pool` may be negative: the weights alone do not fit."""

    memory: int | None  # device memory, None when the pool is given directly
    util: float | None
    usable: int | None
    terms: tuple[Term, ...]
    kv_pool: int
    pool_given: bool = False
    host_weights: int = 0  # weights held in CPU memory, read over the host link every pass (--cpu-offload-gb)

    @property
    def weights_fit(self) -> bool:
        return self.kv_pool >= 0

    def term(self, kind: TermKind) -> int | None:
        """Bytes of the term of that kind (None: the budget has none)."""
        return next((t.bytes for t in self.terms if t.kind == kind), None)

    @classmethod
    def of(cls, memory: int, util: float, usable: int, terms: list[Term]) -> Budget:
        """usable minus every term."""
        return cls(memory, util, usable, tuple(terms), usable - sum(t.bytes for t in terms))


def check_util(util: float) -> float:
    if not (0 < util <= 1):
        raise InputError(f"--util must be in (0, 1] (got {util}): 0.9 means 90% of the GPU's memory")
    return util


def plain_budget(memory: int, util: float, weights: int, reserve: int = 0) -> Budget:
    """usable = floor(memory x util); KV pool = usable - weights - reserve (the engine checks the inputs)."""
    usable = math.floor(memory * util)
    terms = [Term(TermKind.WEIGHTS, weights, "tensor inventory x bytes per element (this GPU's shard)")]
    if reserve:
        terms.append(Term(TermKind.RESERVE, reserve, "--reserve (activations, CUDA context, graphs)"))
    return Budget.of(memory, util, usable, terms)
