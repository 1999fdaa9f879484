"""Capacity: KV bytes for a workload, concurrent requests at a length, longest context at a batch, fit verdict.

Every engine describes its KV pool as a `Pool` (vLLM: blocks of a group layout; SGLang and TGI: token slots;
llama.cpp: one allocation per slot; the plain budget: bytes per stage); `pool_capacity` turns any pool into the
same `Capacity`. All figures are per GPU and per replica; data-parallel replicas multiply concurrency.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from kvplan.budget import Budget

# Longest context searched when memory is the only limit: 2^40 tokens.
SEARCH_LIMIT = 1 << 40


class LimitedBy(StrEnum):
    """What bounds the longest context at a batch."""

    MEMORY = "memory"
    MODEL_CONTEXT = "model context"
    MAX_MODEL_LEN = "max_model_len"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Capacity:
    seq: int
    batch: int
    replicas: int
    request_bytes: int  # one request of `seq` tokens, per GPU (fullest stage)
    kv_cache_bytes: int  # `batch` requests of `seq` tokens spread over the replicas, per GPU (fullest stage)
    kv_pool_bytes: int  # per GPU, on the stage that limits capacity
    max_concurrent_requests: int  # at `seq`, all replicas
    max_seq_len: int | None  # at `batch`; None: neither memory nor the model limits it
    max_seq_len_limited_by: LimitedBy
    max_seq_len_memory: int | None  # at `batch`, by memory alone (None: memory never limits it)
    max_tokens: int | None  # tokens the pool holds for one request (None: memory never limits)
    fits: bool
    shortfall_bytes: int  # > 0: bytes per GPU missing for the workload (or for the weights)


def per_replica(batch: int, replicas: int) -> int:
    return -(-batch // replicas)


def largest(fits: Callable[[int], bool], limit: int = SEARCH_LIMIT) -> int:
    """The largest n in [0, limit] with fits(n), for a predicate that holds up to some n and fails after."""
    if not fits(1):
        return 0
    if fits(limit):
        return limit
    lo, hi = 1, limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


# ------------------------------------------------------------------------------------------------- pools

class Pool(ABC):
    """A replica's KV pool in an engine's own units, asked the questions capacity needs."""

    binding: int  # the stage whose pool is reported (the one that limits capacity)

    def __init__(self, budgets: Sequence[Budget], binding: int) -> None:
        self.budgets = budgets
        self.binding = binding

    @property
    def binding_pool(self) -> int:
        return self.budgets[self.binding].kv_pool

    @abstractmethod
    def holds(self, requests: int, length: int) -> bool:
        """Every stage holds `requests` requests of `length` tokens at once."""

    @abstractmethod
    def max_requests(self, length: int) -> int:
        """Requests of `length` tokens the pool holds at once (before any scheduler cap)."""

    @abstractmethod
    def request_bytes(self, length: int) -> int:
        """Bytes one request of `length` tokens takes, per GPU, on the fullest stage."""

    @abstractmethod
    def max_tokens(self) -> int | None:
        """Tokens the pool holds for one request (None: memory never limits it)."""

    def need_bytes(self, requests: int, length: int) -> int:
        """Bytes `requests` requests of `length` tokens take, per GPU, on the fullest stage."""
        return requests * self.request_bytes(length)

    def longest(self, requests: int) -> int | None:
        """The longest length `requests` requests can each have (None: memory never limits it)."""
        n = largest(lambda length: self.holds(requests, length))
        return None if n == SEARCH_LIMIT else n

    # ------------------------------------------------ a shared prefix (prefix caching), where the pool has units
    def sharing(self) -> tuple[int, int] | None:
        """(units the pool holds, tokens per unit) where requests can share whole units of a common prefix (a
        block pool of one full-attention group, a token pool); None: prefix sharing is not modelled here."""
        return None

    def units(self, length: int) -> int:
        """Units one request of `length` tokens takes (where `sharing` is not None)."""
        raise NotImplementedError

    def shortfall(self, requests: int, length: int) -> int:
        """Bytes per GPU missing for `requests` x `length`: what they need minus the pool, a negative pool (the
        weights and overheads alone exceed the memory) included."""
        return max(0, self.need_bytes(requests, length) - self.binding_pool)


class BytePool(Pool):
    """The plain budget: each stage's pool in bytes, a request taking its exact bytes on each stage."""

    def __init__(self, budgets: Sequence[Budget], stage_bytes: Callable[[int], Sequence[float]], seq: int) -> None:
        """`stage_bytes(L)`: bytes one request of L tokens takes on each stage; the binding stage is the one that
        holds the fewest requests of `seq` tokens (ties: the smallest pool)."""
        self.stage_bytes = stage_bytes
        self.pools = pools = [b.kv_pool for b in budgets]
        needs = stage_bytes(seq)
        binding = min(range(len(pools)), key=lambda s: (pools[s] / needs[s] if needs[s] else float("inf"), pools[s]))
        super().__init__(budgets, binding)

    def holds(self, requests: int, length: int) -> bool:
        return all(requests * need <= pool for pool, need in zip(self.pools, self.stage_bytes(length), strict=True))

    def max_requests(self, length: int) -> int:
        if any(pool <= 0 for pool in self.pools):
            return 0
        counts = [pool // need for pool, need in zip(self.pools, self.stage_bytes(length), strict=True) if need > 0]
        return int(min(counts)) if counts else 0

    def request_bytes(self, length: int) -> int:
        return round(max(self.stage_bytes(length)))

    def need_bytes(self, requests: int, length: int) -> int:
        return round(requests * max(self.stage_bytes(length)))

    def max_tokens(self) -> int | None:
        return self.longest(1)

    def shortfall(self, requests: int, length: int) -> int:
        """The largest excess over the stages, a negative pool (weights that do not fit) included."""
        excess = max(requests * need - pool for pool, need in zip(self.pools, self.stage_bytes(length), strict=True))
        return max(0, round(excess))


class TokenPool(Pool):
    """A pool of `tokens` slots shared by every stage (slot s takes `cells[s]` bytes on stage s); a request of
    L tokens takes ceil(L / block) x block slots."""

    def __init__(self, budgets: Sequence[Budget], tokens: int, cells: Sequence[int], block: int = 1) -> None:
        binding = min(range(len(cells)), key=lambda s: (max(0, budgets[s].kv_pool) // cells[s], budgets[s].kv_pool))
        super().__init__(budgets, binding)
        self.tokens, self.cells, self.block = tokens, cells, block

    def slots(self, length: int) -> int:
        return -(-length // self.block) * self.block

    def holds(self, requests: int, length: int) -> bool:
        return requests * self.slots(length) <= self.tokens

    def max_requests(self, length: int) -> int:
        per_request = self.slots(length)
        return self.tokens // per_request if per_request else 0

    def request_bytes(self, length: int) -> int:
        return self.slots(length) * max(self.cells)

    def max_tokens(self) -> int | None:
        return self.tokens

    def sharing(self) -> tuple[int, int] | None:
        return self.tokens // self.block, self.block

    def units(self, length: int) -> int:
        return self.slots(length) // self.block

    def longest(self, requests: int) -> int | None:
        """Never longer than the pool's tokens."""
        return largest(lambda length: self.holds(requests, length), max(1, self.tokens))


class SharedPrefixPool(Pool):
    """`pool` with a prefix of `shared` tokens every request has in common and the engine caches (vLLM's
    prefix caching, SGLang's radix cache): its whole units (blocks, pages) are held once, for every request;
    a request holds only its own units beyond them (a partly shared unit stays the request's own)."""

    def __init__(self, pool: Pool, shared: int) -> None:
        sharing = pool.sharing()
        assert sharing is not None
        super().__init__(pool.budgets, pool.binding)
        self.pool, self.total = pool, sharing[0]
        self.unit_tokens = sharing[1]
        self.shared_units = shared // self.unit_tokens

    def _shared(self, length: int) -> int:
        return min(self.shared_units, self.pool.units(length))

    def holds(self, requests: int, length: int) -> bool:
        shared = self._shared(length)
        return shared + requests * (self.pool.units(length) - shared) <= self.total and self.pool.holds(1, length)

    def max_requests(self, length: int) -> int:
        shared = self._shared(length)
        own = self.pool.units(length) - shared
        if self.total < shared + own:
            return 0
        return (self.total - shared) // own if own else self.pool.max_requests(length)

    def request_bytes(self, length: int) -> int:
        """A request's own bytes (the shared prefix counted once, not here)."""
        units = self.pool.units(length)
        return self.pool.request_bytes(length) * (units - self._shared(length)) // units if units else 0

    def need_bytes(self, requests: int, length: int) -> int:
        units = self.pool.units(length)
        per_unit = self.pool.request_bytes(length) / units if units else 0
        return round((self._shared(length) + requests * (units - self._shared(length))) * per_unit)

    def max_tokens(self) -> int | None:
        return self.pool.max_tokens()


class LookaheadPool(Pool):
    """`pool` where every request also holds `k` lookahead slots: under speculative decoding the proposed tokens
    are written to the KV cache before they are verified, so a request of L tokens holds up to L + k."""

    def __init__(self, pool: Pool, k: int) -> None:
        super().__init__(pool.budgets, pool.binding)
        self.pool, self.k = pool, k

    def holds(self, requests: int, length: int) -> bool:
        return self.pool.holds(requests, length + self.k)

    def max_requests(self, length: int) -> int:
        return self.pool.max_requests(length + self.k)

    def request_bytes(self, length: int) -> int:
        return self.pool.request_bytes(length + self.k)

    def need_bytes(self, requests: int, length: int) -> int:
        return self.pool.need_bytes(requests, length + self.k)

    def max_tokens(self) -> int | None:
        most = self.pool.max_tokens()
        return None if most is None else max(0, most - self.k)

    def longest(self, requests: int) -> int | None:
        most = self.pool.longest(requests)
        return None if most is None else max(0, most - self.k)

    def sharing(self) -> tuple[int, int] | None:
        return self.pool.sharing()

    def units(self, length: int) -> int:
        return self.pool.units(length + self.k)


# ------------------------------------------------------------------------------------------------ capacity

def pool_capacity(pool: Pool, budgets: Sequence[Budget], seq: int, batch: int, replicas: int, context: int | None,
                  context_label: LimitedBy = LimitedBy.MODEL_CONTEXT, request_cap: int | None = None,
                  refuses_longer: bool = True) -> Capacity:
    """Capacity of a replica whose KV pool is `pool`: requests of `seq` tokens at once (capped by the
    scheduler's `request_cap`), the longest context at `batch` (capped by `context`, called `context_label`),
    and whether `batch` x `seq` fits (a request longer than `context` does not, when the engine refuses it)."""
    local = per_replica(batch, replicas)
    concurrent = pool.max_requests(seq)
    if request_cap is not None:
        concurrent = min(concurrent, request_cap)
    memory = pool.longest(local)
    if memory is None:
        longest, limited_by = context, (context_label if context else LimitedBy.NOTHING)
    elif context and memory > context:
        longest, limited_by = context, context_label
    else:
        longest, limited_by = memory, LimitedBy.MEMORY
    ok = all(b.kv_pool >= 0 for b in budgets) and pool.holds(local, seq)
    if refuses_longer and context:
        ok = ok and seq <= context
    return Capacity(
        seq=seq, batch=batch, replicas=replicas, request_bytes=pool.request_bytes(seq),
        kv_cache_bytes=pool.need_bytes(local, seq), kv_pool_bytes=pool.binding_pool,
        max_concurrent_requests=concurrent * replicas, max_seq_len=longest, max_seq_len_limited_by=limited_by,
        max_seq_len_memory=memory, max_tokens=pool.max_tokens(), fits=ok,
        shortfall_bytes=0 if ok else pool.shortfall(local, seq),
    )
