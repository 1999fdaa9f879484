"""Engine accounting: how each serving engine turns a GPU's memory into a KV-cache pool and capacity.

`none` is the plain budget of the core (memory x util - weights - reserve). `vllm` (V1) and `vllm-v0` follow
vLLM's profiler and block allocator, `sglang` its static memory fraction, `tgi` and `llamacpp` what those
allocate. Every engine returns the same `Scenario`: per-stage budgets (each term with its source), a
`Capacity`, and the figures the engine prints at startup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvplan.budget import Budget
from kvplan.capacity import Capacity
from kvplan.errors import InputError
from kvplan.hardware import GPU

ENGINES = ("vllm", "vllm-v0", "sglang", "tgi", "llamacpp", "none")


@dataclass(frozen=True)
class EngineSettings:
    """Engine flags, named as the engines name them. None: the engine's own default."""

    engine: str = "vllm"
    version: str | None = None
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    block_size: int | None = None
    enforce_eager: bool = False
    total_bytes: int | None = None  # the device total as the engine sees it, when known (e.g. from a log)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"unknown --engine {self.engine!r}: use one of {', '.join(ENGINES)}")
        for label, value in (("--max-model-len", self.max_model_len),
                             ("--max-num-batched-tokens", self.max_num_batched_tokens),
                             ("--max-num-seqs", self.max_num_seqs), ("--block-size", self.block_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{label} must be a positive integer (got {value!r})")


@dataclass(frozen=True)
class Printed:
    """What the engine prints at startup, predicted: the figure names of `kvplan validate`."""

    engine: str
    version: str
    total_bytes: int
    total_source: str
    max_model_len: int
    block_size: int | None = None
    num_blocks: int | None = None
    kv_groups: int | None = None
    kv_tokens: int | None = None
    max_concurrency: float | None = None  # "Maximum concurrency for max_model_len tokens per request"
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Scenario:
    """One column of a plan: a GPU type at a utilization, under one engine's accounting."""

    gpu: GPU | None
    util: float
    budgets: tuple[Budget, ...]  # one per pipeline stage, each per GPU
    capacity: Capacity
    printed: Printed | None = None


def parse_version(text: str | None, default: str) -> tuple[int, int, int]:
    """'0.5.23' -> (0, 5, 23); '0.4.9.post2' -> (0, 4, 9); 'v3.3.7' -> (3, 3, 7)."""
    value = (text or default).lstrip("v")
    parts = []
    for piece in value.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            raise InputError(f"--engine-version {value!r} is not a version like {default}")
        parts.append(int(digits))
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def engine_total(gpu: GPU | None, settings: EngineSettings, kv_memory: int | None) -> tuple[int, str]:
    """The device total as the engine sees it: given (from a log), else what CUDA reports for the GPU."""
    if settings.total_bytes:
        return settings.total_bytes, "given"
    if gpu is not None:
        return gpu.torch_total()
    if kv_memory is None:
        raise InputError(f"{settings.engine} accounting needs a GPU: give --gpu or --gpu-memory (or --kv-memory)")
    return 0, "none (KV pool given)"


def scenario(settings: EngineSettings, dep, gpu: GPU | None, util: float | None, seq: int, batch: int,
             replicas: int, reserve: int = 0, kv_memory: int | None = None) -> Scenario:
    """Budget and capacity of `dep` on one `gpu` at `util` (None: the engine's default) under `settings.engine`.
    The returned scenario's `util` is the fraction applied."""
    import importlib

    name = {"vllm-v0": "vllm", "none": "plain"}.get(settings.engine, settings.engine)
    module = importlib.import_module(f"kvplan.engines.{name}")
    return module.scenario(dep, gpu, util, settings, seq, batch, replicas, reserve, kv_memory)
