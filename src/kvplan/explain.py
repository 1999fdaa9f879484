"""`kvplan explain LOG`: read a user's startup log, predict each printed figure, compare, and suggest changes.

The log says which model, settings and figures; what it does not say (vLLM rarely prints the GPU) comes from
options, else from a stated assumption. Figures use the names of `kvplan validate`: weights and kv_pool in GiB,
kv_tokens in tokens, max_concurrency in x. Suggestions answer "what would reach N concurrent requests / a
context of L tokens": each flag change is re-planned with the same engine accounting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from kvplan.budget import TermKind
from kvplan.deployment import Deployment
from kvplan.engines import DEFAULT_ENGINE, EngineSettings, Scenario, by_log_name, get_engine, scenario
from kvplan.engines.base import Change, Engine
from kvplan.engines.logwords import FAILURES
from kvplan.errors import InputError
from kvplan.hardware import GPU, custom_gpu, find_gpu, get_gpu
from kvplan.logs import ENGINE_CHOICES, ParsedLog, parse_log
from kvplan.model.load import load_model
from kvplan.model.quant import scheme_for_checkpoint
from kvplan.units import GiB

# Relative difference beyond which a figure is flagged, and the likely cause when it is.
TOLERANCE = {"weights": 0.01, "kv_pool": 0.03, "kv_tokens": 0.03, "max_concurrency": 0.03}
CAUSES = {
    "weights": "the checkpoint's format differs from the config's (quantization, extra modules, padding)",
    "kv_pool": "the overheads differ from kvplan's fitted constants (activation peak, non-torch, CUDA graphs), "
               "or the GPU / utilization is not the one assumed",
    "kv_tokens": "the pool or the KV spec differs (KV dtype, block size, sliding-window / hybrid grouping)",
    "max_concurrency": "max_model_len or the per-request blocks differ (windows, hybrid groups)",
}
BIGGER = {"t4": "l4", "l4": "l40s", "a10": "l40s", "a10g": "l40s", "rtx4090": "l40s", "l40s": "h100",
          "a100-40g": "a100-80g", "a100-80g": "h100", "a100": "h100", "h100": "h200", "h100-pcie": "h200",
          "h200": "b200"}


@dataclass
class Suggestion:
    """One flag change re-planned: its predicted figures and whether it meets the target (None: no target
    asked), or the error that re-planning it raised."""

    change: str
    predicted: dict[str, float] | None = None
    meets_target: bool | None = None
    error: str | None = None
    starts: bool | None = None  # the engine starts after the change (None: its startup is not modelled)

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"change": self.change, "error": self.error}
        return {"change": self.change, "predicted": self.predicted, "meets_target": self.meets_target,
                "starts": self.starts}


@dataclass
class Failure:
    """A failed startup the log shows: its kind, what it means, the line, and the smallest change kvplan finds
    that makes the engine start (None: none of the suggestions does)."""

    kind: str
    what: str
    line: str | None
    fix: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what, "line": self.line, "fix": self.fix}


@dataclass
class Diagnosis:
    parsed: dict[str, Any]
    logged: dict[str, float]
    predicted: dict[str, float]
    flags: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)
    failure: Failure | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"parsed": self.parsed, "logged": self.logged, "predicted": self.predicted, "flags": self.flags,
                "assumptions": self.assumptions, "suggestions": [x.to_dict() for x in self.suggestions],
                "failure": self.failure.to_dict() if self.failure else None}


@dataclass
class Setup:
    dep: Deployment
    gpu: GPU
    util: float | None
    settings: EngineSettings


def _setup(log: ParsedLog, model: str | None, gpu: str | None, util: float | None, tp: int | None,
           assumptions: list[str]) -> Setup:
    s = log.settings
    source = model or log.model
    if not source:
        raise InputError("the log does not name the model: give --model (a catalog name, HF id or config.json)")
    try:
        spec = load_model(source)
    except InputError as e:
        raise InputError(f"cannot find the log's model {source!r} ({e}); give --model") from None
    eng = by_log_name(log.engine) or get_engine(DEFAULT_ENGINE)
    engine = eng.name
    if log.engine is None:
        assumptions.append(f"engine not recognisable in the log: {eng.label} ({eng.name}) assumed")
    tp = tp or int(s.get("tensor_parallel") or 1)
    pp = int(s.get("pipeline_parallel") or 1)
    dtype = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(str(s.get("dtype") or ""))
    kv = str(s.get("kv_cache_dtype") or "auto").lower()
    kv = "fp8" if kv.startswith("fp8") else {"bfloat16": "bf16", "float16": "fp16"}.get(kv, kv)
    quant = None
    if spec.quant is None:
        quant = scheme_for_checkpoint(str(s.get("quantization") or ""), None, log.model or "")
        if quant:
            assumptions.append(f"quantization {s.get('quantization')} on an unquantized config: weights modelled "
                               f"as --quant {quant}")
    dep = Deployment(spec, tp=tp, pp=pp, dtype=dtype, quant=quant, kv_dtype=kv)
    total = s.get("gpu_total_gib")
    device = get_gpu(gpu) if gpu else find_gpu(str(s.get("gpu_name") or ""))
    if device is None and total:
        device = custom_gpu(round(float(total) * GiB), f"{total}GiB")
    if device is None:
        raise InputError("the log states neither the GPU nor its total memory: give --gpu (e.g. --gpu h100)")
    if util is None:
        util = s.get(eng.log_util_key or "gpu_memory_utilization")
        if util is None:
            assumptions.append("utilization not in the log: the engine's default assumed; give --util")
    version, note = release_of(log, eng)
    if note:
        assumptions.append(note)
    # "Maximum concurrency for L tokens per request" names max_model_len when the config line is missing
    max_model_len = s.get("max_model_len") or log.figures.get("max_concurrency_len")
    settings = EngineSettings(
        engine=engine, version=version,
        max_model_len=int(max_model_len) if max_model_len else None,
        max_num_batched_tokens=s.get("max_num_batched_tokens"), max_num_seqs=s.get("max_num_seqs"),  # type: ignore[arg-type]
        block_size=s.get("block_size"), enforce_eager=bool(s.get("enforce_eager")),  # type: ignore[arg-type]
        extensible_kv_cache=s.get("enable_extensible_kv_cache"),  # type: ignore[arg-type]
        **{k: s[k] for k in ENGINE_CHOICES if k in s},  # type: ignore[arg-type]
        total_bytes=round(float(total) * GiB) if total and not gpu else None,
    )
    return Setup(dep, device, None if util is None else float(util), settings)


def release_of(log: ParsedLog, eng: Engine) -> tuple[str | None, str | None]:
    """The release whose rules explain uses for `log`, and what to tell the user about it: the printed version
    as is; a range dated from the log's wording (kvplan.logs release clues) with its evidence; else the default."""
    if log.engine_version is not None:
        note = f"{eng.label} {log.engine_version}: " + "; ".join(log.release_evidence) if log.release_evidence else None
        return log.engine_version, note
    if log.release_range is not None:
        since, until = log.release_range
        version = eng.release_in(since, until)
        span = f"{since} to <{until}" if since and until else f">={since}" if since else f"<{until}"
        bands = eng.bands_between(since, until)
        spans = (f"; the range spans {len(bands)} release bands ({', '.join(bands)}): --engine-version picks one"
                 if len(bands) > 1 else "")
        return version, (f"{eng.label} version not in the log: its wording dates it to {span} ("
                         + "; ".join(log.release_evidence) + f"): {version} rules used{spans}")
    if not eng.version_assumed_note:
        return None, None
    why = f" ({'; '.join(log.release_evidence)})" if log.release_evidence else ""
    return None, f"{eng.label} version not in the log: {eng.default_version.removesuffix('.0')} rules assumed{why}"


def _figures(sc: Scenario) -> dict[str, float]:
    b = sc.budgets[0]
    out = {"kv_pool": round(b.kv_pool / GiB, 2)}
    weights = b.term(TermKind.WEIGHTS)
    if weights is not None:
        out["weights"] = round(weights / GiB, 2)
    if sc.printed and sc.printed.kv_tokens is not None:
        out["kv_tokens"] = sc.printed.kv_tokens
    if sc.printed and sc.printed.max_concurrency is not None:
        out["max_concurrency"] = round(sc.printed.max_concurrency, 2)
    return out


def _run(setup: Setup, change: Change | None = None) -> Scenario:
    """The log's setup re-planned, with `change` applied."""
    dep, settings, gpu, util = setup.dep, setup.settings, setup.gpu, setup.util
    if change is not None:
        dep_changes = {k: v for k, v in (("tp", change.tp), ("kv_dtype", change.kv_dtype), ("quant", change.quant))
                       if v is not None}
        dep = replace(dep, **dep_changes) if dep_changes else dep
        settings = replace(settings, **{k: v for k, v in (("max_num_batched_tokens", change.max_num_batched_tokens),
                                                            ("max_model_len", change.max_model_len)) if v is not None},
                           **dict(change.settings))
        if change.gpu is not None:
            gpu, settings = change.gpu, replace(settings, total_bytes=None)
        util = change.util if change.util is not None else util
    seq = settings.max_model_len or dep.model.max_context or 2048
    return scenario(settings, dep, gpu, util, seq, 1, 1)


def _meets(sc: Scenario, target_concurrency: int | None, target_len: int | None) -> bool:
    e = sc.printed
    if e is None:
        return False
    ok = True
    if target_concurrency is not None:
        ok &= (e.max_concurrency or 0) >= target_concurrency
    if target_len is not None:
        ok &= (e.kv_tokens or 0) >= target_len
    return ok


def suggestions(setup: Setup, base: Scenario, target_concurrency: int | None,
                target_len: int | None) -> list[Suggestion]:
    """Changes in the log's engine's own flags, each re-planned: its predicted pool, tokens and concurrency,
    whether the engine starts, and whether it meets the target."""
    changes = get_engine(setup.settings.engine).suggestions(setup.dep, base.util, base, setup.settings)
    bigger = BIGGER.get(setup.gpu.alias)
    if bigger:
        changes.append(Change(f"GPU {bigger} instead of {setup.gpu.alias}", gpu=get_gpu(bigger)))
    out = []
    for change in changes:
        try:
            sc = _run(setup, change)
        except InputError as e:
            out.append(Suggestion(change.label, error=str(e)))
            continue
        out.append(Suggestion(change.label, predicted=_figures(sc),
                              meets_target=_meets(sc, target_concurrency, target_len)
                              if (target_concurrency or target_len) else None,
                              starts=sc.startup.starts if sc.startup.modelled else None))
    return out


def _failure(log: ParsedLog, setup: Setup, base: Scenario, options: list[Suggestion]) -> Failure | None:
    """What failed, and the first (smallest) suggested change after which the engine starts."""
    kind = log.failure
    if kind is None:
        return None
    what = FAILURES[kind]
    if kind == "max_model_len" and log.failure_line:
        estimated = re.search(r"estimated maximum model length is (\d+)", log.failure_line)
        tokens = re.search(r"stored in KV cache \((\d+)\)", log.failure_line)
        length = int(estimated.group(1)) if estimated else int(tokens.group(1)) if tokens else None
        flag = get_engine(setup.settings.engine).flags.get("max_model_len")
        if length and flag:
            return Failure(kind, what, log.failure_line, f"{flag} {length} (the largest the log says fits)")
    fix = next((o.change for o in options if o.starts), None)
    return Failure(kind, what, log.failure_line, fix)


def diagnose(text: str, model: str | None = None, gpu: str | None = None, util: float | None = None,
             tp: int | None = None, target_concurrency: int | None = None,
             target_len: int | None = None) -> Diagnosis:
    log = parse_log(text)
    assumptions: list[str] = []
    setup = _setup(log, model, gpu, util, tp, assumptions)
    logged_raw = log.figures
    logged = {k: v for k, v in {
        "weights": logged_raw.get("weights_gib"), "kv_pool": logged_raw.get("kv_available_gib"),
        "kv_tokens": logged_raw.get("kv_tokens"), "max_concurrency": logged_raw.get("max_concurrency_x"),
    }.items() if v is not None}
    if "kv_tokens" not in logged and logged_raw.get("gpu_blocks") is not None:
        block = int(log.settings.get("block_size") or 16)  # type: ignore[call-overload]
        logged["kv_tokens"] = int(logged_raw["gpu_blocks"]) * block
        assumptions.append(f"KV tokens logged as {int(logged_raw['gpu_blocks']):,} blocks x {block} tokens")
    if not logged:
        assumptions.append("the log prints no memory figure (truncated before profiling?): predictions only")
    base = _run(setup)
    predicted = _figures(base)
    flags = []
    for name, value in logged.items():
        if name in predicted and value:
            diff = abs(predicted[name] - value) / abs(value)
            if diff > TOLERANCE[name]:
                flags.append(f"{name}: logged {value:g}, predicted {predicted[name]:g} ({diff:.1%} off, beyond "
                             f"{TOLERANCE[name]:.0%}): likely {CAUSES[name]}")
    parsed = {"engine": log.engine, "engine_version": log.engine_version,
              "release_range": list(log.release_range) if log.release_range else None,
              "release_evidence": list(log.release_evidence), "model": log.model or setup.dep.model.name,
              "gpu": setup.gpu.alias, "util": setup.util, **log.settings}
    parsed["util"] = base.util
    options = suggestions(setup, base, target_concurrency, target_len)
    return Diagnosis(parsed, logged, predicted, flags, assumptions, options, _failure(log, setup, base, options))
