"""`plan()`: model + deployment + GPUs -> weights, KV cache, budget and capacity, one scenario per GPU x util.

This is the library call the CLI and any other view use. Results are plain dataclasses; `Plan.to_dict()`
gives the stable JSON schema documented in the README.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kvplan import __version__
from kvplan.budget import check_util
from kvplan.deployment import Deployment
from kvplan.engines import DEFAULT_ENGINE, EngineSettings, Launch, Scenario, get_engine, scenario
from kvplan.engines.base import DRAFTED, serve_name
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import GPU, custom_gpu, get_gpu
from kvplan.model.load import load_model
from kvplan.model.spec import ModelSpec
from kvplan.units import parse_size

DEFAULT_SEQ = 2048
MAX_SCENARIOS = 256


@dataclass(frozen=True)
class Plan:
    model: ModelSpec
    deployment: Deployment
    seq: int
    batch: int
    gpus: int
    replicas: int
    reserve: int
    engine: EngineSettings
    scenarios: tuple[Scenario, ...]
    notes: tuple[str, ...]
    model_id: str | None = None  # the model argument of a launch line (None: explicit dimensions)
    context_assumed: bool = False  # the model states no context length: max_model_len was set to the request's

    def launch_command(self, s: Scenario) -> str | None:
        """The engine's launch line that realises scenario `s` (None: no engine or no model to name)."""
        e, d = s.printed, self.deployment
        if e is None or self.model_id is None:
            return None
        st = self.engine
        launch = Launch(self.model_id, d.tp, d.pp, self.replicas, s.util, e.max_model_len, st.max_num_seqs,
                        d.kv_dtype, d.quant, st.max_num_batched_tokens, st.block_size, st.enforce_eager,
                        batch=-(-self.batch // self.replicas), entry_point=st.entry_point,
                        dp_attention=d.dp_attention, expert_parallel=d.expert_parallel,
                        gpus_per_node=s.gpu.node.gpus if s.gpu else 0, settings=st)
        try:
            return get_engine(st.engine).launch_command(launch)
        except NotImplementedError:
            return None

    # ------------------------------------------------------------------ model-level figures
    @property
    def params(self) -> int:
        return self.model.params

    @property
    def weights_bytes(self) -> int:
        """Per GPU (the fullest pipeline stage)."""
        return self.deployment.weights_bytes_per_gpu

    @property
    def kv_bytes_per_token(self) -> float:
        """Per GPU: cache growth per token with every attention layer still inside its window."""
        return self.deployment.kv_bytes_per_token

    @property
    def request_bytes(self) -> int:
        return round(self.deployment.request_bytes(self.seq))

    @property
    def kv_cache_bytes(self) -> int:
        """`batch` requests of `seq` tokens, per GPU of one replica."""
        return round(-(-self.batch // self.replicas) * self.deployment.request_bytes(self.seq))

    def speculative_dict(self) -> dict[str, Any] | None:
        """Speculative decoding as planned: the method, tokens a step, and what the drafter adds (None: off)."""
        st, served = self.engine, self.deployment.model
        if st.speculative_method is None:
            return None
        return {"method": st.speculative_method, "num_speculative_tokens": st.num_speculative_tokens,
                "draft_model": st.draft_model, "drafter_params": served.params - self.model.params,
                "drafter_kv_layers": served.num_layers - self.model.num_layers,
                "served_kv_layer_kinds": served.kv_kinds()}

    def to_dict(self) -> dict[str, Any]:
        m, d = self.model, self.deployment
        return {
            "kvplan_version": __version__,
            "model": {
                "name": m.name, "source": m.source, "model_type": m.model_type, "layers": m.num_layers,
                "kv_layer_kinds": m.kv_kinds(), "max_context": m.max_context,
                "checkpoint": m.checkpoint.to_dict() if m.checkpoint else None,
            },
            "params": m.params,
            "params_breakdown": m.params_by_role(),
            "active_params": m.active_params,
            "speculative": self.speculative_dict(),
            "deployment": {
                "tp": d.tp, "pp": d.pp, "gpus": self.gpus, "replicas": self.replicas,
                "dp_attention": d.dp_attention, "attention_tp": d.attn_tp, "expert_parallel": d.expert_parallel,
                "weight_format": d.weight_format.name, "activation_dtype": d.activation_dtype,
                "kv_dtype": d.kv_dtype, "kv_bytes_per_element": d.kv_bytes, "engine": self.engine.engine,
            },
            "weights_bytes": self.weights_bytes,
            "weights_bytes_total": d.weights_bytes_total,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "seq": self.seq,
            "batch": self.batch,
            "request_bytes": self.request_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "context_assumed": self.context_assumed,
            "scenarios": [{**_scenario_dict(s, self.context_assumed), "launch_command": self.launch_command(s)}
                          for s in self.scenarios],
            "notes": list(self.notes),
        }


def _scenario_dict(s: Scenario, context_assumed: bool = False) -> dict[str, Any]:
    c = s.capacity
    longest, limited_by = c.max_seq_len, c.max_seq_len_limited_by
    if context_assumed:  # no stated context: what the pool allows, not the max_model_len kvplan had to set
        longest, limited_by = c.max_seq_len_memory, ("memory" if c.max_seq_len_memory is not None else "nothing")
    budget = min(s.budgets, key=lambda b: b.kv_pool)
    return {
        "gpu": s.gpu.alias if s.gpu else None,
        "gpu_name": s.gpu.name if s.gpu else None,
        "gpu_memory_bytes": s.gpu.memory_bytes if s.gpu else None,
        "gpu_memory_source": s.gpu.memory_source if s.gpu else None,
        "gpu_marketing": s.gpu.marketing if s.gpu else None,
        "util": None if budget.pool_given else s.util,
        "usable_bytes": budget.usable,
        "budget_terms": [{"label": t.label, "kind": t.kind.value, "bytes": t.bytes, "source": t.source}
                         for t in budget.terms],
        "kv_pool_bytes": c.kv_pool_bytes,
        "kv_pool_given": budget.pool_given,
        "kv_cache_bytes": c.kv_cache_bytes,
        "max_concurrent_requests": c.max_concurrent_requests,
        "max_seq_len": longest,
        "max_seq_len_limited_by": limited_by,
        "max_tokens": c.max_tokens,
        "fits": c.fits,
        "shortfall_bytes": c.shortfall_bytes,
        "starts": s.startup.starts if s.startup.modelled else None,
        "start_error": s.startup.reason,
        "largest_max_model_len_that_starts": s.startup.longest_context if s.startup.modelled else None,
        "engine": None if s.printed is None else s.printed.to_dict(),
    }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | int | float | GPU):
        return [value]
    return list(value)


def _size(value: int | str | None, what: str, allow_zero: bool = False) -> int | None:
    if value is None or isinstance(value, int):
        if isinstance(value, int) and (value < 0 or (value == 0 and not allow_zero)):
            raise InputError(f"{what} must be positive (got {value})")
        return value
    return parse_size(value, what, allow_zero)


def _positive(value: int | None, what: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InputError(f"{what} must be a positive integer (got {value!r})")


def plan(
    model: ModelSpec | str | Path | dict[str, Any],
    *,
    gpu: str | GPU | Sequence[str | GPU] | None = None,
    gpu_memory: int | str | None = None,
    gpus: int | None = None,
    tp: int = 1,
    pp: int = 1,
    util: float | Sequence[float] | None = None,
    seq: int | None = None,
    batch: int = 1,
    dtype: str | None = None,
    kv_dtype: str = "auto",
    quant: str | None = None,
    reserve: int | str = 0,
    kv_memory: int | str | None = None,
    engine: str = DEFAULT_ENGINE,
    engine_version: str | None = None,
    max_model_len: int | str | None = None,
    max_num_batched_tokens: int | None = None,
    max_num_seqs: int | None = None,
    block_size: int | None = None,
    enforce_eager: bool = False,
    entry_point: str = "serve",
    dp_attention: int = 1,
    expert_parallel: bool = False,
    shared_prefix: int = 0,
    cpu_offload_gb: float = 0.0,
    max_loras: int = 0,
    max_lora_rank: int = 16,
    lora_dtype: str = "auto",
    speculative_method: str | None = None,
    num_speculative_tokens: int = 0,
    draft_model: str | None = None,
    swap_space: float | None = None,
    kv_offloading_size: float = 0.0,
    kv_offloading_backend: str = "native",
    images_per_prompt: int | None = None,
    extensible_kv_cache: bool | None = None,
    chunked_local_hybrid: bool | None = None,
    disable_hybrid_kv_cache_manager: bool = False,
    disable_radix_cache: bool = False,
    max_mamba_cache_size: int | None = None,
) -> Plan:
    """Plan serving `model`: one scenario per (GPU, utilization) pair.

    `gpu` is a catalog alias (repeatable); `gpu_memory` defines a custom device ("24GiB" or "24GB").
    `gpus` counts devices; it defaults to TP x PP and must be a multiple of it (the rest are data-parallel
    replicas). `seq` defaults to max_model_len, else the model's context length. `reserve` is subtracted per
    GPU; `kv_memory` sets the KV pool per GPU directly. `engine` names a registered engine's accounting
    (kvplan.engines: vLLM by default); the engine flags keep vLLM's names, each engine maps them onto its own.
    """
    spec = load_model(model)
    notes = list(spec.notes)
    for value, label in ((tp, "--tp"), (pp, "--pp"), (batch, "--batch"), (seq, "--seq"), (gpus, "--gpus")):
        _positive(value, label)
    per_replica = tp * pp
    total = gpus or per_replica
    if total % per_replica:
        raise InputError(f"--gpus {total} is not a multiple of TP x PP = {per_replica}: "
                         f"use {per_replica * max(1, total // per_replica)} GPUs or change --tp/--pp")
    replicas = total // per_replica
    auto = isinstance(max_model_len, str)
    if auto:
        if str(max_model_len).strip().lower() not in ("auto", "-1"):
            raise InputError(f"--max-model-len {max_model_len!r}: give a token count or auto (the largest that "
                             "starts)")
        max_model_len = None
    if seq is None and auto:
        seq = AUTO_SEQ  # resolved below from the largest max_model_len that starts
    elif seq is None:
        seq = max_model_len or spec.max_context or DEFAULT_SEQ
        notes.append(f"--seq not given: {seq} tokens " + (
            "(--max-model-len)" if max_model_len else
            "(the model's context length)" if spec.max_context else "(no context length in the config)"))
    context_assumed = max_model_len is None and not spec.max_context and not auto
    if context_assumed:  # engines need a max_model_len: the request's, said so, and never shown as a model limit
        max_model_len = max(seq, DEFAULT_SEQ) if seq != AUTO_SEQ else DEFAULT_SEQ
        notes.append(f"the model states no context length: the engines' max_model_len is set to {max_model_len:,} "
                     "(not a model limit; the longest context shown is what the KV pool allows)")
    eng = get_engine(engine)
    if engine_version is None and eng.rule_table is not None:
        notes.append(f"{eng.label} release not given: {eng.default_version}'s rules (--engine-version for another "
                     "release; --explain shows how far the pool moves across releases)")
    draft = load_model(draft_model) if draft_model else None
    if draft is not None:  # the launch line names the drafter as the engine loads it (the HF id of a catalog alias)
        draft_model = serve_name(str(draft_model), draft)
    settings = EngineSettings(engine=engine, version=engine_version, max_model_len=max_model_len,
                              max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                              block_size=block_size, enforce_eager=enforce_eager, entry_point=entry_point,
                              shared_prefix=shared_prefix, cpu_offload_gb=cpu_offload_gb, max_loras=max_loras,
                              max_lora_rank=max_lora_rank, lora_dtype=lora_dtype,
                              speculative_method=speculative_method, num_speculative_tokens=num_speculative_tokens,
                              draft_model=draft_model, swap_space=swap_space,
                              kv_offloading_size=kv_offloading_size, kv_offloading_backend=kv_offloading_backend,
                              images_per_prompt=images_per_prompt, extensible_kv_cache=extensible_kv_cache,
                              chunked_local_hybrid=chunked_local_hybrid,
                              disable_hybrid_kv_cache_manager=disable_hybrid_kv_cache_manager,
                              disable_radix_cache=disable_radix_cache, max_mamba_cache_size=max_mamba_cache_size)
    if settings.speculative_method == "draft_model" and quant:
        raise UnsupportedModelError("kvplan does not model --quant applied to a target and its draft model: drop "
                                    "--quant")
    if settings.speculative_method and pp > 1:
        raise UnsupportedModelError("kvplan does not model speculative decoding with pipeline parallelism (where the "
                                    "drafter's layers sit): use --pp 1")
    dep = Deployment(served_model(spec, settings, notes, draft), tp=tp, pp=pp, dtype=dtype, quant=quant,
                     kv_dtype=kv_dtype, dp_attention=dp_attention, expert_parallel=expert_parallel,
                     lm_head_over_tp=dp_attention > 1 and eng.dp_attention_lm_head_over_tp)
    reserve_bytes = _size(reserve, "--reserve", allow_zero=True) or 0
    pool = _size(kv_memory, "--kv-memory")
    utils: list[float | None] = [check_util(float(u)) for u in _as_list(util)] or [None]

    devices: list[GPU | None] = [g if isinstance(g, GPU) else get_gpu(g) for g in _as_list(gpu)]
    if gpu_memory is not None:
        memory = _size(gpu_memory, "--gpu-memory")
        devices.append(custom_gpu(memory, str(gpu_memory)))  # type: ignore[arg-type]
    if not devices and pool is not None:
        devices = [None]  # no device: the KV pool is given directly
    elif not devices:
        notes.append("no GPU given: weights and KV sizes only (give --gpu, --gpu-memory or --kv-memory for capacity)")

    pairs = list(itertools.product(devices, utils if pool is None else utils[:1]))
    if len(pairs) > MAX_SCENARIOS:  # bounded before any work: one column per GPU x utilization
        raise InputError(f"{len(devices)} GPU(s) x {len(utils)} utilization(s) = {len(pairs):,} scenarios: at most "
                         f"{MAX_SCENARIOS} in one plan")
    scenarios = [scenario(settings, dep, device, u, seq, batch, replicas, reserve_bytes, pool) for device, u in pairs]
    if auto:
        seq, scenarios = _auto_max_model_len(settings, dep, pairs, scenarios, seq, batch, replicas, reserve_bytes,
                                             pool, notes)
    model_id = None if spec.model_type == "explicit" else serve_name(model if isinstance(model, str) else spec.name,
                                                                         spec)
    return Plan(spec, dep, seq, batch, total, replicas, reserve_bytes, settings, tuple(scenarios), tuple(notes),
                model_id, context_assumed)


AUTO_SEQ = -1


def served_model(spec: ModelSpec, settings: EngineSettings, notes: list[str] | None = None,
                 draft: ModelSpec | None = None) -> ModelSpec:
    """The model the engine loads for `settings`: `spec`, with the speculative drafter they configure (the
    checkpoint's own MTP layers, or the --draft-model, loaded here unless the caller has `draft`) held as the
    engine holds it."""
    method = settings.speculative_method
    if method is None:
        return spec
    if method == "mtp":
        if spec.mtp is None:
            raise UnsupportedModelError(f"{spec.name} has no multi-token-prediction layers kvplan reads "
                                        "(num_nextn_predict_layers in a DeepSeek-V3-style config): "
                                        "--speculative-method mtp needs them; use another method")
        draft = spec.mtp
    elif method in DRAFTED:
        draft = draft or load_model(str(settings.draft_model))
    served = get_engine(settings.engine).served_model(spec, draft, settings)
    if notes is not None:
        notes.extend(n for n in served.notes if n not in spec.notes)  # what the engine says of the drafter
    if notes is not None and draft is not None:
        notes.append(f"speculative decoding by {method}: the drafter ({draft.name}, {draft.params / 1e9:.2f} B "
                     f"parameters, {draft.num_layers} KV layer(s)) is loaded beside the model and counted in the "
                     "weights and the KV cache")
    return served


def _auto_max_model_len(settings: EngineSettings, dep: Deployment, pairs: list, first: list[Scenario], seq: int,
                        batch: int, replicas: int, reserve: int, pool: int | None,
                        notes: list[str]) -> tuple[int, list[Scenario]]:
    """--max-model-len auto: each scenario at the largest max_model_len its engine starts with (the model's
    context when that starts); the requests are that long unless --seq says."""
    lengths = []
    for s in first:
        if not s.startup.modelled:
            raise InputError(f"--max-model-len auto needs an engine whose startup checks kvplan models, not "
                             f"{settings.engine}: give a token count")
        if not s.startup.starts and not s.startup.longest_context:
            raise InputError(f"--max-model-len auto: no max_model_len starts ({s.startup.reason})")
        lengths.append(s.startup.longest_context if not s.startup.starts else s.printed.max_model_len)
    if seq == AUTO_SEQ:
        seq = min(lengths)
        notes.append(f"--seq not given: {seq:,} tokens (the largest max_model_len that starts, --max-model-len auto)")
    out = []
    for (device, u), length in zip(pairs, lengths, strict=True):
        fitted = replace(settings, max_model_len=length)
        out.append(scenario(fitted, dep, device, u, seq, batch, replicas, reserve, pool))
        label = f"{device.alias if device else 'given pool'}" + (f" @ {u:.0%}" if u else "")
        notes.append(f"--max-model-len auto: {length:,} on {label} (the largest that starts)")
    return seq, out
