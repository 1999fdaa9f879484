"""The engine contract: what every serving engine declares, and the one accounting skeleton they share.

An engine is a subclass of `Engine` in one module of this package, registered in `kvplan.engines`. It declares
its name, label and default version, its options (a dataclass in the engine's own vocabulary), its version rules
(a `RuleTable`: one row per release that changes a value), and the hooks the skeleton calls:

    scenario(dep, gpu, util, settings, seq, batch, replicas, reserve, kv_memory)      <- the skeleton, here
        resolve(setup)                    the engine's options against model and device; early refusals
        fraction(setup, util)             the memory fraction applied (the engine's default when util is None)
        stage_layout(setup, stage)        the stage's KV layout in the engine's own page / cell model
        budget(setup, stage, layout, f)   the stage's budget terms  (skipped when the KV pool is given)
        pool(setup, layouts, budgets)     the pool those budgets make: a `capacity.Pool`
        printed(setup, pool, ...)         what the engine prints at startup
    launch_command(launch)                the engine's launch line for a `fit` candidate
    derivation(plan, scenario)            the engine's own lines of the plan derivation
    suggestions(setup)                    flag changes `kvplan explain` re-plans

Engines never import each other; what several share (weights as loaded, the forward-pass activation model,
the memory in use at startup) lives in `kvplan.engines.common`.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from kvplan.budget import Budget, check_util
from kvplan.capacity import Capacity, LimitedBy, LookaheadPool, Pool, SharedPrefixPool, pool_capacity
from kvplan.engines.logwords import LogWording
from kvplan.errors import InputError, UnsupportedModelError

if TYPE_CHECKING:
    from kvplan.deployment import Deployment, Stage
    from kvplan.hardware import GPU
    from kvplan.model.spec import ModelSpec

Version = tuple[int, int, int]


def parse_version(text: str | None, default: str) -> Version:
    """'0.5.23' -> (0, 5, 23); '0.4.9.post2' -> (0, 4, 9); 'v3.3.7' -> (3, 3, 7)."""
    return _parse_version(text or default, default)


@lru_cache(maxsize=1024)  # bounded: versions come from users and logs
def _parse_version(text: str, default: str) -> Version:
    value = text.lstrip("v")
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


def version_text(version: Version) -> str:
    return ".".join(map(str, version))


# ------------------------------------------------------------------------------------------ version rules

R = TypeVar("R")


@dataclass(frozen=True)
class RuleRow:
    """From release `since` on, these values hold (until a later row changes them); `source` says where the
    rule is read: file, function and release tag, or PR."""

    since: Version
    values: tuple[tuple[str, Any], ...]
    source: str


def row(since: str, source: str, **values: Any) -> RuleRow:
    return RuleRow(parse_version(since, since), tuple(values.items()), source)


class RuleTable(Generic[R]):
    """An engine's version rules as data: a frozen dataclass of rule values and the rows that set them.

    The first row (usually `since` 0.0.0) must set every field; each later row changes some. `rules_for(v)`
    applies, in release order, every row whose `since` is at most `v`.
    """

    def __init__(self, values: type[R], *rows: RuleRow) -> None:
        self.values = values
        self.rows = tuple(sorted(rows, key=lambda r: r.since))
        names = {f.name for f in fields(values)}  # type: ignore[arg-type]
        for r in self.rows:
            unknown = {k for k, _ in r.values} - names
            if unknown:
                raise TypeError(f"rule row {r.since} sets unknown field(s) {sorted(unknown)} of {values.__name__}")
        first = dict(self.rows[0].values) if self.rows else {}
        if set(first) != names:
            raise TypeError(f"the first rule row of {values.__name__} must set every field "
                            f"(missing {sorted(names - set(first))})")
        self._cache: dict[Version, R] = {}

    def rules_for(self, version: Version) -> R:
        if version not in self._cache:  # bounded: one entry per distinct version asked
            merged: dict[str, Any] = {}
            for r in self.rows:
                if r.since <= version:
                    merged.update(r.values)
            if len(self._cache) < 256:
                self._cache[version] = self.values(**merged)
            else:
                return self.values(**merged)
        return self._cache[version]

    def band(self, version: Version) -> tuple[Version, Version | None]:
        """The releases `version` shares its rules with: from the row at or before it to the next row's release
        (None: no later row)."""
        starts = [r.since for r in self.rows]
        lo = max((s for s in starts if s <= version), default=starts[0])
        return lo, next((s for s in starts if s > version), None)


# ------------------------------------------------------------------------------------------ settings and results

@dataclass(frozen=True)
class EngineSettings:
    """The engine flags the CLI, the web API and the planner pass, spelled as vLLM spells them (every engine
    maps them onto its own options: SGLang's context_length, TGI's max_batch_prefill_tokens, ...).
    None: the engine's own default."""

    engine: str = "vllm"
    version: str | None = None
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    block_size: int | None = None
    enforce_eager: bool = False
    total_bytes: int | None = None  # the device total as the engine sees it, when known (e.g. from a log)
    entry_point: str = "serve"  # vLLM: `vllm serve` (the API server) or the `LLM` class; its defaults differ
    shared_prefix: int = 0  # tokens every request shares and the prefix cache holds once (0: none)
    cpu_offload_gb: float = 0.0  # vLLM --cpu-offload-gb: GiB of weights per GPU held in CPU memory
    max_loras: int = 0  # vLLM --enable-lora --max-loras N (0: LoRA off)
    max_lora_rank: int = 16  # --max-lora-rank
    lora_dtype: str = "auto"  # --lora-dtype (auto: the model's dtype)
    speculative_method: str | None = None  # speculative decoding: mtp, draft_model, eagle, eagle3, ngram (None: off)
    num_speculative_tokens: int = 0  # tokens proposed per step
    draft_model: str | None = None  # the drafter (draft_model, eagle, eagle3): a catalog alias, config or Hub id
    swap_space: float | None = None  # vLLM --swap-space: GiB of CPU swap per GPU (None: the engine's default)
    kv_offloading_size: float = 0.0  # vLLM --kv-offloading-size: GiB of CPU KV tier over all ranks (0: none)
    kv_offloading_backend: str = "native"  # vLLM --kv-offloading-backend: native (OffloadingConnector) or lmcache
    images_per_prompt: int | None = None  # vLLM --limit-mm-per-prompt image=N (None: the default, V0 1, V1 999)
    extensible_kv_cache: bool | None = None  # vLLM >= 0.34 --[no-]enable-extensible-kv-cache (None: its default, on)
    mxfp4_backend: str | None = None  # vLLM: the MoE backend a log says holds mxfp4 experts (marlin, triton)
    model_runner: str | None = None  # vLLM: the model runner a log shows ran ("v1", "v2"; None: the release's default)
    flashinfer_sampler: bool | None = None  # vLLM: whether a log shows FlashInfer's top-k / top-p (None: the default)
    cudagraph_estimate_gib: float | None = None  # vLLM >= 0.18: the CUDA-graph estimate a log prints (None: fitted)
    encoder_images: int | None = None  # vLLM V1: the dummy images a log says the encoder was profiled with
    chunked_local_hybrid: bool | None = None  # vLLM VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE (None: the
    # release's default)
    disable_hybrid_kv_cache_manager: bool = False  # vLLM --disable-hybrid-kv-cache-manager (or a connector set it)
    disable_radix_cache: bool = False  # SGLang --disable-radix-cache (its prefix cache off)
    max_mamba_cache_size: int | None = None  # SGLang --max-mamba-cache-size: Mamba states (None: its own rule)

    def __post_init__(self) -> None:
        from kvplan.engines import get_engine

        engine = get_engine(self.engine)
        object.__setattr__(self, "engine", engine.name)  # refuses an unknown name; 'vllm-v1' -> vllm
        object.__setattr__(self, "entry_point", entry_point_name(self.entry_point))
        if self.entry_point != "serve" and not engine.entry_points:
            raise InputError(f"--entry-point {self.entry_point} applies to vLLM only; {engine.label} has one "
                             "entry point (drop --entry-point)")
        if not (isinstance(self.cpu_offload_gb, int | float) and 0 <= self.cpu_offload_gb < 1e6):
            raise InputError(f"--cpu-offload-gb must be a number of GiB >= 0 (got {self.cpu_offload_gb!r})")
        if not isinstance(self.max_loras, int) or self.max_loras < 0:
            raise InputError(f"--max-loras must be a whole number >= 1 (got {self.max_loras!r})")
        if not isinstance(self.max_lora_rank, int) or self.max_lora_rank < 1:
            raise InputError(f"--max-lora-rank must be a positive integer (got {self.max_lora_rank!r})")
        if self.extensible_kv_cache is not None and not engine.extensible_kv_cache:
            raise InputError(f"--[no-]enable-extensible-kv-cache applies to vLLM V1 (0.34 and later), not "
                             f"{engine.label}: drop it")
        if self.max_loras and not engine.lora_slots:
            raise InputError(f"--enable-lora is modelled for vLLM only, not {engine.label}: drop it")
        if self.cpu_offload_gb and not engine.cpu_offload:
            raise InputError(f"--cpu-offload-gb is modelled for vLLM only, not {engine.label}: drop it")
        self._check_speculative(engine)
        if self.kv_offloading_size:
            if not (isinstance(self.kv_offloading_size, int | float) and 0 < self.kv_offloading_size < 1e6):
                raise InputError(f"--kv-offloading-size must be a number of GiB > 0 (got {self.kv_offloading_size!r})")
            if not engine.kv_offload_tier:
                raise InputError(f"--kv-offloading-size is modelled for vLLM V1 only, not {engine.label}: drop it")
        if self.kv_offloading_backend not in ("native", "lmcache"):
            raise InputError(f"--kv-offloading-backend must be native or lmcache (got {self.kv_offloading_backend!r})")
        if self.swap_space is not None:
            if not (isinstance(self.swap_space, int | float) and 0 <= self.swap_space < 1e6):
                raise InputError(f"--swap-space must be a number of GiB >= 0 (got {self.swap_space!r})")
            if not engine.swap_space:
                raise InputError(f"--swap-space is modelled for vLLM only, not {engine.label}: drop it")
        if not isinstance(self.shared_prefix, int) or self.shared_prefix < 0:
            raise InputError(f"--shared-prefix must be a whole number of tokens >= 0 (got {self.shared_prefix!r})")
        for label, value in (("--max-model-len", self.max_model_len),
                             ("--max-num-batched-tokens", self.max_num_batched_tokens),
                             ("--max-num-seqs", self.max_num_seqs), ("--block-size", self.block_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{label} must be a positive integer (got {value!r})")

    def _check_speculative(self, engine: Engine) -> None:
        if self.speculative_method is None:
            if self.num_speculative_tokens or self.draft_model:
                raise InputError("--num-speculative-tokens and --draft-model need --speculative-method (mtp, "
                                 "draft_model, eagle, eagle3 or ngram)")
            return
        method = speculative_method_name(self.speculative_method)
        object.__setattr__(self, "speculative_method", method)
        if method not in engine.speculative_methods:
            known = ", ".join(sorted(engine.speculative_methods)) or "none"
            raise InputError(f"speculative decoding by {method} is not modelled for {engine.label} (modelled: "
                             f"{known}): drop --speculative-method")
        k = self.num_speculative_tokens
        if not isinstance(k, int) or not 1 <= k <= 64:
            raise InputError(f"--num-speculative-tokens must be a whole number from 1 to 64 with --speculative-method "
                             f"(got {k!r})")
        if method in DRAFTED and not self.draft_model:
            raise InputError(f"--speculative-method {method} needs --draft-model (the drafter's catalog alias, "
                             "config.json or Hub id)")
        if method not in DRAFTED and self.draft_model:
            raise InputError(f"--speculative-method {method} takes no --draft-model ("
                             + ("the MTP layers are the checkpoint's own" if method == "mtp" else
                                "n-gram proposals need no model") + "): drop it")


# Speculative-decoding methods as users spell them: vLLM's --speculative-config "method" (config/speculative.py
# 0.19.0: mtp and the per-model *_mtp names, draft_model, eagle, eagle3, ngram) and SGLang's
# --speculative-algorithm (NEXTN, EAGLE, EAGLE3, STANDALONE, NGRAM).
SPECULATIVE_METHODS = {
    "mtp": "mtp", "nextn": "mtp", "deepseek_mtp": "mtp", "deepseek-mtp": "mtp",
    "draft_model": "draft_model", "draft": "draft_model", "standalone": "draft_model", "draft-model": "draft_model",
    "eagle": "eagle", "eagle3": "eagle3", "eagle-3": "eagle3",
    "ngram": "ngram", "[ngram]": "ngram", "n-gram": "ngram",
}
DRAFTED = frozenset({"draft_model", "eagle", "eagle3"})  # methods whose drafter is a model of its own


def speculative_method_name(text: str) -> str:
    name = SPECULATIVE_METHODS.get(str(text).strip().lower())
    if name is None:
        raise InputError(f"unknown speculative-decoding method {text!r}: use mtp, draft_model, eagle, eagle3 or "
                         "ngram")
    return name


def parse_speculative_config(text: str) -> tuple[str, int, str | None]:
    """(method, num_speculative_tokens, draft model) from vLLM's --speculative-config JSON; a method-less config
    naming a model is a draft model, as vLLM reads it (config/speculative.py 0.19.0 __post_init__)."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(f"--speculative-config is not JSON ({e.msg} at character {e.pos}): give e.g. "
                         '\'{"method": "mtp", "num_speculative_tokens": 1}\'') from None
    if not isinstance(data, dict):
        raise InputError("--speculative-config must be a JSON object with method and num_speculative_tokens")
    # keys that change no memory (the n-gram window, when to stop speculating) are read and let be
    unknown = sorted(set(data) - {"method", "model", "num_speculative_tokens", "prompt_lookup_max",
                                  "prompt_lookup_min", "disable_by_batch_size"})
    if unknown:
        raise InputError(f"--speculative-config: kvplan does not model {', '.join(unknown)} (the drafter runs at "
                         "the target's TP, dtype and length): drop it")
    model = data.get("model")
    method = data.get("method") or ("draft_model" if model else None)
    if method is None:
        raise InputError("--speculative-config names no method: add \"method\" (mtp, draft_model, eagle, eagle3, "
                         "ngram)")
    k = data.get("num_speculative_tokens")
    if not isinstance(k, int) or isinstance(k, bool):
        raise InputError(f"--speculative-config num_speculative_tokens must be a whole number (got {k!r})")
    name = speculative_method_name(str(method))
    return name, k, (str(model) if model is not None and name in DRAFTED else None)


# How users name vLLM's two entry points: the OpenAI API server (`vllm serve`, UsageContext.OPENAI_API_SERVER)
# and the offline `LLM` class (UsageContext.LLM_CLASS), whose scheduler defaults differ (engine/arg_utils.py).
ENTRY_POINTS = {
    "serve": "serve", "vllm serve": "serve", "api server": "serve", "api_server": "serve", "openai": "serve",
    "openai_api_server": "serve", "server": "serve",
    "llm": "llm", "llm()": "llm", "llm class": "llm", "llm_class": "llm", "offline": "llm", "python": "llm",
}


def entry_point_name(text: str) -> str:
    """'serve' or 'llm' from the spellings users write ('vllm serve', 'LLM()', 'llm-class', 'offline', ...)."""
    key = re.sub(r"[\s-]+", " ", str(text).strip().lower())
    name = ENTRY_POINTS.get(key) or ENTRY_POINTS.get(key.replace(" ", "_"))
    if name is None:
        raise InputError(f"unknown entry point {text!r}: use serve (`vllm serve`, the API server) or llm (the "
                         "offline LLM class)")
    return name


@dataclass(frozen=True)
class OutputReserve:
    """An engine that admits a request only while its pool also holds the output tokens the running requests may
    still make (kvplan.batching): each running request reserves min(its outputs left, clip) x a ratio that starts
    at `init`, falls by (init - init x floor) / decay_steps every decode pass to init x floor, and rises after a
    preemption to (tokens made + retract_steps x requests) / the requests' outputs; a new request needs its prompt
    plus min(its output, clip) beyond the reservations."""

    init: float
    floor: float
    decay_steps: int
    clip: int
    retract_steps: int

    @property
    def lowest(self) -> float:
        """The ratio the decay stops at."""
        return self.init * self.floor

    @property
    def fall(self) -> float:
        """How much the ratio falls per decode pass."""
        return (self.init - self.lowest) / self.decay_steps


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
    max_running_requests: int | None = None  # SGLang's printed "max_running_requests=N"
    # SGLang's "Load weight begin / end ... avail mem": free memory on the first GPU before and after the weights
    free_before_weights_bytes: int | None = None
    free_after_weights_bytes: int | None = None
    cpu_blocks: int | None = None  # vLLM V0's "# CPU blocks: N": the swap space in blocks (pinned CPU memory)
    cpu_tier_tokens: int | None = None  # vLLM V1 --kv-offloading-size: tokens the CPU tier holds (all ranks alike)
    cpu_tier_pinned_bytes: int | None = None  # pinned host memory that tier takes per GPU (power-of-2 rounded)
    chunked_prefill: bool | None = None  # vLLM's "Chunked prefill is enabled with max_num_batched_tokens=N"

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (a shallow copy: every field is a number, a string or the notes)."""
        return {**self.__dict__, "notes": list(self.notes)}


@dataclass(frozen=True)
class Startup:
    """Whether the engine starts with these settings (its own startup checks), and if not, why, in one line."""

    starts: bool = True
    reason: str | None = None  # the engine's refusal, as kvplan predicts it
    longest_context: int | None = None  # the largest max_model_len that starts (None: not known / any)
    modelled: bool = True  # False: the engine's startup checks are not modelled (starts then means "not refused")


@dataclass(frozen=True)
class Scenario:
    """One column of a plan: a GPU type at a utilization, under one engine's accounting."""

    gpu: GPU | None
    util: float
    budgets: tuple[Budget, ...]  # one per pipeline stage, each per GPU
    capacity: Capacity
    printed: Printed | None = None
    startup: Startup = Startup()
    util_requested: float | None = None  # the utilization asked for (None: the engine's default was applied)


@dataclass
class Setup:
    """What the skeleton resolved before the engine's hooks run; hooks may add notes."""

    dep: Deployment
    gpu: GPU | None
    settings: EngineSettings
    options: Any  # the engine's options dataclass
    version: Version
    rules: Any  # the engine's rule values at `version`
    total: int  # the device total as the engine sees it (0 when only a KV pool is given)
    total_source: str
    reserve: int
    pool_given: bool
    seq: int  # the workload the scenario is asked about
    batch: int
    replicas: int
    notes: list[str] = field(default_factory=list)
    fraction: float = 0.0  # the memory fraction applied (set once the engine has chosen it)

    @property
    def version_text(self) -> str:
        return version_text(self.version)


@dataclass(frozen=True)
class Launch:
    """What a launch line needs: a plan's scenario or a `fit` candidate, its layout and settings."""

    model_id: str
    tp: int
    pp: int
    replicas: int
    util: float
    max_model_len: int
    max_running: int | None
    kv_dtype: str
    quant: str | None
    max_batched_tokens: int | None = None  # only when set on purpose (the engine's default otherwise)
    block_size: int | None = None
    enforce_eager: bool = False
    batch: int = 1  # requests per replica the deployment is sized for (llama.cpp's slots)
    entry_point: str = "serve"  # vLLM: a `vllm serve` line or an `LLM(...)` call
    dp_attention: int = 1  # data-parallel attention groups per replica (Deployment.dp_attention)
    expert_parallel: bool = False
    gpus_per_node: int = 0  # 0: the replica fits one node
    settings: EngineSettings | None = None  # the serving features it turns on (LoRA, offload, speculative decoding)

    @property
    def nodes(self) -> int:
        """Nodes one replica spans."""
        gpus = self.tp * self.pp
        return 1 if not self.gpus_per_node or gpus <= self.gpus_per_node else -(-gpus // self.gpus_per_node)

    def model(self, kind: str = "checkpoint") -> str:
        """The model argument: the repo, or an explicit placeholder where the repo itself would not serve: an int4
        scheme needs a checkpoint quantized ahead, llama.cpp a GGUF."""
        if self.quant in INT4_SCHEMES:
            return f"<a {self.quant} int4 {kind} of {self.model_id}>"
        return self.model_id if kind == "checkpoint" else f"<a {kind} of {self.model_id}>"


def serve_name(given: str, spec: ModelSpec) -> str:
    """The model argument of a launch line: the HF id for catalog and Hub models, else what was given."""
    return given if spec.source.startswith(("config", "/", ".")) or "/" not in spec.name else spec.name


# --quant schemes an engine serves only from a checkpoint quantized ahead (fp8 is quantized when loading)
INT4_SCHEMES = frozenset({"w4a16", "awq", "gptq"})


@dataclass(frozen=True)
class Change:
    """A change `kvplan explain` re-plans: what to write (in the engine's own flags) and what it changes."""

    label: str
    util: float | None = None
    tp: int | None = None
    kv_dtype: str | None = None
    quant: str | None = None
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    gpu: GPU | None = None
    settings: tuple[tuple[str, Any], ...] = ()  # EngineSettings fields the change sets (an install, an env var)


def given_budget(kv_memory: int) -> Budget:
    """The KV pool stated directly (--kv-memory, or a logged pool): no terms, nothing to subtract."""
    return Budget(None, None, None, (), kv_memory, pool_given=True)


def model_context(dep: Deployment, settings: EngineSettings, engine_label: str) -> int:
    """max_model_len, else the model's context; longer than the model's context is refused, as engines do."""
    context = settings.max_model_len or dep.model.max_context
    if not context:
        raise InputError("the config states no context length: give --max-model-len")
    if dep.model.max_context and context > dep.model.max_context:
        raise InputError(f"--max-model-len {context} exceeds the model's context length {dep.model.max_context}; "
                         f"{engine_label} refuses it")
    return context


def block_derivation(scenario: Scenario) -> list[str]:
    """The derivation lines of a block pool: blocks, what the engine prints, requests per block count."""
    c, e = scenario.capacity, scenario.printed
    assert e is not None
    return [f"  blocks = floor(pool / ({e.kv_groups} group(s) x block {e.block_size} tokens x layer pages)) "
            f"= {e.num_blocks:,}; printed KV cache size {e.kv_tokens:,} tokens, maximum concurrency for "
            f"{e.max_model_len:,} tokens {e.max_concurrency:.2f}x (max_num_seqs {e.max_num_seqs}, "
            f"max_num_batched_tokens {e.max_num_batched_tokens})",
            f"  max concurrent requests of {c.seq:,} tokens = min(floor(blocks / blocks per request), "
            f"max_num_seqs)" + (f" x {c.replicas} replicas" if c.replicas > 1 else "")
            + f" = {c.max_concurrent_requests:,}"]


# ------------------------------------------------------------------------------------------------ the contract

class Engine(ABC):
    """One serving engine's accounting. Subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str]  # the --engine value
    label: ClassVar[str]  # how people write it: "vLLM", "SGLang"
    default_version: ClassVar[str]
    default_util: ClassVar[float] = 0.9  # the fraction applied when none is given (engines may compute theirs)
    options_class: ClassVar[type]  # the engine's options, in its own vocabulary
    rule_table: ClassVar[RuleTable | None] = None
    csv_names: ClassVar[tuple[str, ...]] = ()  # the validate CSV's `engine` column, lower-case ("vllm v1")
    log_wordings: ClassVar[tuple[LogWording, ...]] = ()  # how its startup logs are recognised and read
    log_util_key: ClassVar[str | None] = None  # the log setting that holds its memory fraction
    plans_fit: ClassVar[bool] = False  # kvplan fit sizes candidates under it (it has a launch line)
    entry_points: ClassVar[bool] = False  # it has vLLM's two entry points (EngineSettings.entry_point)
    weights_printed: ClassVar[bool] = False  # it logs the weights as loaded ("Model loading took")
    version_assumed_note: ClassVar[bool] = False  # say so when a log / CSV row does not state the version
    prints_startup: ClassVar[bool] = True  # it has startup figures to predict (Printed)
    max_model_len_from_seq: ClassVar[bool] = False  # the page sets max_model_len to the request length
    flags: ClassVar[dict[str, str]] = {}  # the engine's spelling of what explain suggests (see suggestions)
    newest_read: ClassVar[str | None] = None  # the newest release whose source kvplan's rules were checked against
    extensible_kv_cache: ClassVar[bool] = False  # it has vLLM 0.34's --[no-]enable-extensible-kv-cache

    def describe(self) -> dict[str, Any]:
        """What GET /api/engines says of the engine."""
        return {"name": self.name, "label": self.label, "default_version": self.default_version,
                "default_util": self.default_util, "fit": self.plans_fit,
                "max_model_len_from_seq": self.max_model_len_from_seq}

    # ---------------------------------------------------------------- declared
    def band(self, version: str | None) -> str:
        """The release band `version` falls in, named by its bounds: the releases between two of the engine's
        rule changes, which kvplan predicts alike ("vLLM 0.9.1 to <0.16.0"); accuracy is reported per band."""
        if not version:
            return f"{self.label}, version not stated"
        if self.rule_table is None:
            return f"{self.label}, every release"
        lo, hi = self.rule_table.band(parse_version(version, self.default_version))
        if hi is None:
            return f"{self.label} >={version_text(lo)}"
        if lo == (0, 0, 0):
            return f"{self.label} <{version_text(hi)}"
        return f"{self.label} {version_text(lo)} to <{version_text(hi)}"

    def bands_between(self, since: str | None, until: str | None) -> list[str]:
        """The release bands a range [since, until) of releases overlaps, oldest first."""
        if self.rule_table is None:
            return [self.band(since or self.default_version)]
        lo = parse_version(since, since) if since else (0, 0, 0)
        hi = parse_version(until, until) if until else None
        starts = dict.fromkeys(r.since for r in self.rule_table.rows if r.since > lo and (hi is None or r.since < hi))
        return [self.band(version_text(v)) for v in (lo, *starts)]  # rows sharing a release are one band

    def release_in(self, since: str | None, until: str | None) -> str:
        """The release whose rules stand for a range [since, until) a log was dated to: the default when it lies
        inside, else the newest rule row inside the range, else its first release."""
        default = parse_version(self.default_version, self.default_version)
        lo = parse_version(since, since) if since else None
        hi = parse_version(until, until) if until else None
        if (lo is None or lo <= default) and (hi is None or default < hi):
            return self.default_version
        starts = [r.since for r in self.rule_table.rows] if self.rule_table is not None else []
        inside = [v for v in starts if (lo is None or lo <= v) and (hi is None or v < hi)]
        if inside:
            return version_text(max(inside))
        if lo is not None:
            return since  # type: ignore[return-value]
        below = [v for v in starts if hi is not None and v < hi]
        return version_text(max(below)) if below else self.default_version

    def version(self, settings: EngineSettings) -> Version:
        return parse_version(settings.version, self.default_version)

    def rules_for(self, version: Version) -> Any:
        return self.rule_table.rules_for(version) if self.rule_table is not None else None

    def options(self, settings: EngineSettings) -> Any:
        """The engine's options from the common settings (each engine names them its own way)."""
        return self.options_class()

    # ---------------------------------------------------------------- the skeleton
    def scenario(self, dep: Deployment, gpu: GPU | None, util: float | None, settings: EngineSettings, seq: int,
                 batch: int, replicas: int, reserve: int = 0, kv_memory: int | None = None) -> Scenario:
        """Budget and capacity of `dep` on one `gpu` at `util` (None: the engine's default). The returned
        scenario's `util` is the fraction applied."""
        setup = self.prepare(dep, gpu, settings, seq, batch, replicas, reserve, kv_memory)
        fraction = setup.fraction = self.fraction(setup, util)
        layouts = [self.stage_layout(setup, stage) for stage in dep.stages]
        if kv_memory is not None:
            budgets = [given_budget(kv_memory) for _ in dep.stages]
        else:
            budgets = [self.budget(setup, stage, layout, fraction)
                       for stage, layout in zip(dep.stages, layouts, strict=True)]
        pool = self.pool(setup, layouts, budgets)
        held = self.lookahead(setup, pool)
        held = self.shared_prefix(setup, held, seq) if settings.shared_prefix else held  # what capacity sees
        context, label, refuses_longer = self.context(setup, pool)
        # each data-parallel attention group is its own engine (scheduler, KV pool, request cap) on its GPUs:
        # a replica serves dp_attention of them
        groups = dep.dp_attention
        capacity = pool_capacity(held, budgets, seq, batch, replicas * groups, context, label,
                                 self.request_cap(setup, pool), refuses_longer)
        if groups > 1:
            capacity = replace(capacity, replicas=replicas)
            setup.notes.append(f"{groups} data-parallel attention groups of {dep.attn_tp} GPU(s): each holds its own "
                               f"requests' KV (figures printed per group); a replica serves "
                               f"{capacity.max_concurrent_requests // replicas:,} requests at once")
        startup = self.startup(setup, pool, budgets, context)  # before printed: it may add notes
        printed = self.printed(setup, pool, budgets, context) if self.prints_startup else None
        return Scenario(gpu, self.reported_util(setup, fraction), tuple(budgets), capacity, printed, startup, util)

    def lookahead(self, setup: Setup, pool: Pool) -> Pool:
        """The pool with the slots speculative decoding writes ahead of the verified tokens: K per request (vLLM
        v1/core/sched/scheduler.py 0.19.0 allocate_slots(num_lookahead_tokens = num_speculative_tokens))."""
        k = setup.settings.num_speculative_tokens
        if not k:
            return pool
        setup.notes.append(f"speculative decoding ({setup.settings.speculative_method}, {k} token(s) a step): each "
                           f"request also holds {k} lookahead slot(s) for the proposed tokens")
        return LookaheadPool(pool, k)

    def served_model(self, target: ModelSpec, draft: ModelSpec | None, settings: EngineSettings) -> ModelSpec:
        """The model the engine loads and caches for: `target` with the speculative drafter `draft` where the
        settings configure one (engines that model speculative decoding say how they hold it)."""
        if draft is None:
            return target
        raise NotImplementedError(f"{self.label} declares speculative_methods but does not say how it holds a drafter")

    def shared_prefix(self, setup: Setup, pool: Pool, seq: int) -> Pool:
        """The pool with --shared-prefix tokens held once for all requests (prefix caching)."""
        shared = setup.settings.shared_prefix
        if not self.prefix_cache or pool.sharing() is None:
            raise UnsupportedModelError(f"kvplan does not model a shared prefix under {self.label} for this model "
                                        "(a prefix cache of whole blocks of one full-attention group): drop "
                                        "--shared-prefix")
        if shared >= seq:
            raise InputError(f"--shared-prefix {shared:,} must be shorter than the request ({seq:,} tokens)")
        out = SharedPrefixPool(pool, shared)
        setup.notes.append(f"--shared-prefix {shared:,}: {out.shared_units:,} whole unit(s) of {out.unit_tokens} "
                           f"token(s) held once for every request; a request of {seq:,} tokens holds "
                           f"{pool.units(seq) - min(out.shared_units, pool.units(seq)):,} of its own (instead of "
                           f"{pool.units(seq):,})")
        return out

    def prepare(self, dep: Deployment, gpu: GPU | None, settings: EngineSettings, seq: int = 1, batch: int = 1,
                replicas: int = 1, reserve: int = 0, kv_memory: int | None = None) -> Setup:
        """The skeleton's first step: version, rules, the device total and the engine's resolved options."""
        if reserve < 0:
            raise InputError(f"--reserve must not be negative (got {reserve})")
        version = self.version(settings)
        total, total_source = self.device_total(gpu, settings, kv_memory)
        setup = Setup(dep, gpu, settings, self.options(settings), version, self.rules_for(version), total,
                      total_source, reserve, kv_memory is not None, seq, batch, replicas)
        if self.newest_read and version > parse_version(self.newest_read, self.newest_read):
            setup.notes.append(f"{self.label} {version_text(version)} is newer than the newest release kvplan has "
                               f"read ({self.newest_read}): kvplan's newest rules apply, unchecked")
        self.resolve(setup)
        return setup

    # ---------------------------------------------------------------- hooks with defaults
    def device_total(self, gpu: GPU | None, settings: EngineSettings, kv_memory: int | None) -> tuple[int, str]:
        """The device total as the engine sees it: given (from a log), else what CUDA reports for the GPU."""
        if settings.total_bytes:
            return settings.total_bytes, "given"
        if gpu is not None:
            return gpu.torch_total()
        if kv_memory is None:
            raise InputError(f"{settings.engine} accounting needs a GPU: give --gpu or --gpu-memory (or --kv-memory)")
        return 0, "none (KV pool given)"

    def resolve(self, setup: Setup) -> None:  # noqa: B027 - an optional hook
        """Resolve the engine's options against the model and the device (into `setup.options`), and refuse
        what the engine refuses before any memory figure (layouts, KV dtypes)."""

    def fraction(self, setup: Setup, util: float | None) -> float:
        return self.default_util if util is None else check_util(util)

    def reported_util(self, setup: Setup, fraction: float) -> float:
        return fraction

    def context(self, setup: Setup, pool: Pool) -> tuple[int | None, LimitedBy, bool]:
        """(the longest request the engine accepts, what to call that limit, whether a longer one is refused)."""
        label = LimitedBy.MAX_MODEL_LEN if setup.settings.max_model_len else LimitedBy.MODEL_CONTEXT
        return model_context(setup.dep, setup.settings, self.label), label, True

    def request_cap(self, setup: Setup, pool: Pool) -> int | None:
        """The scheduler's cap on running requests per replica (None: memory alone decides)."""
        return None

    # ---------------------------------------------------------------- hooks every engine provides
    @abstractmethod
    def stage_layout(self, setup: Setup, stage: Stage) -> Any:
        """The stage's KV layout in the engine's page / cell model."""

    @abstractmethod
    def budget(self, setup: Setup, stage: Stage, layout: Any, fraction: float) -> Budget:
        """The stage's memory budget per GPU: usable memory and the terms subtracted from it."""

    @abstractmethod
    def pool(self, setup: Setup, layouts: list[Any], budgets: list[Budget]) -> Pool:
        """The KV pool the budgets make, in the engine's units."""

    def startup(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Startup:
        """The engine's own startup checks (KV memory, one request of max_model_len ...); by default none is
        modelled."""
        return Startup(modelled=False)

    def printed(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Printed:
        raise NotImplementedError(f"{self.name} declares prints_startup but does not say what it prints")

    # ---------------------------------------------------------------- views
    serves_dp_attention: ClassVar[bool] = False  # kvplan fit may plan data-parallel attention + EP under it
    prefix_cache: ClassVar[bool] = False  # it caches a common prefix once (vLLM prefix caching, SGLang radix)
    cpu_offload: ClassVar[bool] = False  # it models --cpu-offload-gb
    lora_slots: ClassVar[bool] = False  # it models --enable-lora's reserved LoRA slots
    speculative_methods: ClassVar[frozenset[str]] = frozenset()  # speculative-decoding methods it models
    swap_space: ClassVar[bool] = False  # it reads --swap-space (CPU swap for preempted requests' KV)
    kv_offload_tier: ClassVar[bool] = False  # it models a CPU tier for KV blocks (--kv-offloading-size)
    container_image: ClassVar[str | None] = None  # the engine's published image (kvplan fit --emit k8s)
    serve_port: ClassVar[int] = 8000  # the port its server listens on by default
    dp_attention_lm_head_over_tp: ClassVar[bool] = False  # its output head stays split over the whole TP group
    output_reserve: ClassVar[OutputReserve | None] = None  # its admission reserves outputs (None: blocks now)

    def batching(self, printed: Printed) -> tuple[bool, bool] | None:
        """How its scheduler forms passes (kvplan.batching): (prefill chunks share a pass with the decodes, a
        prompt longer than the token budget is split over passes); None: speed under load is not modelled."""
        return None

    bench_tool: ClassVar[str] = "vllm bench serve"  # the serving benchmark run against it (any OpenAI server)

    def bench_lengths(self, prompt: int, output: int, ratio: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (prompt, output) ranges its benchmark's random dataset draws each request's lengths from, uniformly,
        at --random-range-ratio `ratio`. `vllm bench serve` (vllm/benchmarks/datasets.py
        RandomDataset.get_sampling_params, read in 0.11.0): [floor(L x (1 - r)), ceil(L x (1 + r))], r in [0, 1),
        the low ends at least 1 token."""
        if not 0.0 <= ratio < 1.0:
            raise InputError(f"--random-range-ratio {ratio}: {self.bench_tool} takes a ratio in [0, 1)")
        return ((max(math.floor(prompt * (1 - ratio)), 1), math.ceil(prompt * (1 + ratio))),
                (max(math.floor(output * (1 - ratio)), 1), math.ceil(output * (1 + ratio))))

    def launch_command(self, launch: Launch) -> str:
        """The launch line; past one node, one line per node after a `# node k` comment (HEAD_IP: node 0's
        address)."""
        if launch.nodes == 1:
            return self.node_command(launch, 0, "<HEAD_IP>")
        return "\n".join(f"# node {k}{' (head)' if k == 0 else ''}\n{self.node_command(launch, k, '<HEAD_IP>')}"
                         for k in range(launch.nodes))

    def node_command(self, launch: Launch, node: int | str, head: str) -> str:
        """The command node `node` of a replica runs (an int, or a shell expression such as
        $(LWS_WORKER_INDEX) for a manifest's workers); `head`: node 0's address."""
        raise NotImplementedError(f"{self.label} has no launch line in kvplan: kvplan fit does not plan it")

    def derivation(self, scenario: Scenario) -> list[str]:
        """The engine's own lines in the plan derivation, after the budget (blocks, printed figures)."""
        c = scenario.capacity
        return [f"  max concurrent requests of {c.seq:,} tokens = floor({c.kv_pool_bytes:,} / {c.request_bytes:,})"
                + (f" x {c.replicas} replicas" if c.replicas > 1 else "") + f" = {c.max_concurrent_requests:,}"]

    def suggestions(self, dep: Deployment, util: float | None, scenario: Scenario,
                    settings: EngineSettings | None = None) -> list[Change]:
        """Changes `kvplan explain` re-plans, spelled with the engine's own `flags`, smallest first (none equal to
        the current value): the largest max_model_len that starts when the engine refuses, a higher memory
        fraction, an fp8 KV cache, fewer batched tokens where they size the profile, twice the GPUs, fp8
        weights."""
        f, out = self.flags, []
        st, e = scenario.startup, scenario.printed
        if "max_model_len" in f and not st.starts and st.longest_context:
            out.append(Change(f"{f['max_model_len']} {st.longest_context}", max_model_len=st.longest_context))
        if "util" in f and util is not None:
            out += [Change(f"{f['util']} {u}", util=u) for u in (0.9, 0.95) if util < u]
        if "kv_fp8" in f and dep.kv_dtype not in ("fp8", "int8", "int4"):
            out.append(Change(f["kv_fp8"], kv_dtype="fp8"))
        if "max_batched_tokens" in f and e is not None and (e.max_num_batched_tokens or 0) > 2048:
            out.append(Change(f"{f['max_batched_tokens']} 2048", max_num_batched_tokens=2048))
        heads = dep.model.num_attention_heads or 0
        if "tp" in f and heads and heads % (dep.tp * 2) == 0:
            out.append(Change(f"{f['tp']} {dep.tp * 2} (twice the GPUs)", tp=dep.tp * 2))
        if "quant_fp8" in f and dep.weight_format.bits >= 16:
            out.append(Change(f"an fp8 checkpoint (or {f['quant_fp8']})", quant="fp8"))
        return out
