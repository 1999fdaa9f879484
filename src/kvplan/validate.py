"""`kvplan validate`: predictions against real engine startup figures (a CSV like shared/bench/engine_logs.csv).

For each row kvplan can model it predicts, with every setting the row states:
- `weights`: weights_gib per GPU ("Model loading took"),
- `kv_tokens_given_pool`: KV tokens from the logged kv_available_gib (isolates the KV spec and block rules),
- `kv_pool`: kv_available_gib end to end,
- `kv_tokens`: KV tokens end to end,
- `max_concurrency`: "Maximum concurrency for max_model_len tokens per request",
and, where the log prints the budget's terms, each term, so a miss is located: `non_torch` and `activation_peak`
(vLLM's profile lines), `free_before_weights` and `free_after_weights` (SGLang's "Load weight begin / end ...
avail mem").
Relative errors are |predicted - logged| / |logged|; a summary gives the count, median and p90 per figure, for all
rows and per engine release band (`Engine.band`: the releases between two rule changes). `hold_out` scores every
band (or source) on constants refitted without its rows (kvplan.engines.vllm_fit): the held-out figures.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kvplan.budget import TermKind
from kvplan.deployment import Deployment
from kvplan.engines import Engine, EngineSettings, Scenario, by_csv_name, get_engine, scenario
from kvplan.engines.common import loaded_weights
from kvplan.errors import InputError, KvplanError
from kvplan.hardware import GPU, custom_gpu, find_gpu
from kvplan.logs import engine_choices
from kvplan.model import catalog
from kvplan.model.load import load_model
from kvplan.model.quant import scheme, scheme_for_checkpoint
from kvplan.units import GiB

FIGURES = ("weights", "kv_tokens_given_pool", "kv_pool", "kv_tokens", "max_concurrency", "max_running_requests",
           "non_torch", "activation_peak", "free_before_weights", "free_after_weights")
TERM_COLUMNS = {"non_torch": ("non_torch_gib", TermKind.NON_TORCH),
                "activation_peak": ("activation_peak_gib", TermKind.ACTIVATION)}
REQUIRED_COLUMNS = ("engine", "model", "gpu", "kv_available_gib", "kv_tokens", "config")


class Skip(KvplanError):
    """This row (or figure) cannot be modelled; the message says why."""


@dataclass
class RowResult:
    index: int
    source: str
    model: str
    engine: str
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> logged, predicted, rel_err
    skipped: dict[str, str] = field(default_factory=dict)  # figure -> why not predicted
    reason: str | None = None  # why the whole row was skipped
    assumptions: list[str] = field(default_factory=list)
    gpu: str = ""  # as the row states it
    band: str = ""  # the engine's release band (Engine.band) the row's version falls in

    @property
    def modelled(self) -> bool:
        return bool(self.figures)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "source": self.source, "model": self.model, "engine": self.engine,
                "band": self.band, "gpu": self.gpu, "modelled": self.modelled, "reason": self.reason,
                "figures": self.figures, "not_predicted": self.skipped, "assumptions": self.assumptions}


def _num(row: dict[str, str], key: str) -> float | None:
    text = (row.get(key) or "").strip().replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Skip(f"column {key!r} holds {text!r}, not a number") from None
    if not math.isfinite(value):
        raise Skip(f"column {key!r} holds {text!r}, not a number")
    return value


def _int(row: dict[str, str], key: str) -> int | None:
    value = _num(row, key)
    return None if value is None else int(value)


def rel_err(predicted: float, logged: float) -> float:
    if logged == 0:
        return 0.0 if predicted == 0 else 1.0
    return abs(predicted - logged) / abs(logged)


def _note_int(notes: str, *patterns: str) -> int | None:
    for pattern in patterns:
        m = re.search(pattern, notes, re.IGNORECASE)
        if m:
            return int(m.group(1).replace(",", ""))
    return None


def _note_value(notes: str, names: tuple[str, ...], value: str) -> str | None:
    """What the notes give one of `names`, as a flag (--cpu-offload-gb 10) or a keyword (cpu_offload_gb=10):
    the first match of the `value` pattern."""
    for name in names:
        flag, kw = name.replace("_", "-"), name.replace("-", "_")
        m = re.search(rf"(?:--{flag}[ =]+|\b{kw}\s*[=:]\s*)['\"]?({value})", notes, re.IGNORECASE)
        if m:
            return m.group(1)
    return None


def _note_float(notes: str, *names: str) -> float | None:
    found = _note_value(notes, names, r"[\d.]+")
    return None if found is None else float(found.rstrip("."))


def _note_word(notes: str, *names: str) -> str | None:
    return _note_value(notes, names, r"[\w./-]+")


def serving_features(notes: str) -> dict[str, Any]:
    """The serving features a row's notes say the engine ran with, spelled as on the command line (vLLM's and
    SGLang's flags) or as keyword arguments: LoRA slots, CPU weight offload, swap, the CPU KV tier, speculative
    decoding (vLLM's --speculative-config JSON or --speculative-model / --num-speculative-tokens; SGLang's
    --speculative-algorithm with --speculative-draft-model-path and --speculative-num-draft-tokens); and the
    engine choices its quoted log lines show (vLLM's model runner, top-k / top-p sampler and CUDA-graph
    estimate, the mxfp4 MoE backend)."""
    out: dict[str, Any] = {}
    if re.search(r"--enable-lora\b|\benable_lora\s*=\s*True|--lora-paths?\b", notes, re.IGNORECASE):
        loras = _note_float(notes, "max-loras", "max-loras-per-batch")
        rank = _note_float(notes, "max-lora-rank")
        out.update(max_loras=int(loras or 1), max_lora_rank=int(rank or 16))
    for key, names in (("cpu_offload_gb", ("cpu-offload-gb",)), ("swap_space", ("swap-space",)),
                       ("kv_offloading_size", ("kv-offloading-size",))):
        value = _note_float(notes, *names)
        if value is not None:
            out[key] = value
    backend = _note_word(notes, "kv-offloading-backend")
    if backend:
        out["kv_offloading_backend"] = backend.lower()
    out.update(engine_choices(notes))  # what its quoted log lines show, read as explain reads a log
    m = re.search(r"--speculative[-_]config[ =]+'?(\{[^}]*\})", notes, re.IGNORECASE)
    if m:
        from kvplan.engines.base import parse_speculative_config

        method, k, draft = parse_speculative_config(m.group(1))
        out.update(speculative_method=method, num_speculative_tokens=k, draft_model=draft)
        return out
    algorithm = _note_word(notes, "speculative-algorithm")
    model = _note_word(notes, "speculative-model", "speculative-draft-model-path")
    if algorithm or model:
        k = _note_float(notes, "num-speculative-tokens", "speculative-num-draft-tokens", "speculative-num-steps")
        out.update(speculative_method=algorithm or "draft_model", num_speculative_tokens=int(k or 1),
                   draft_model=model if (algorithm or "").upper() not in ("NEXTN", "MTP", "NGRAM") else None)
    return out


@dataclass
class RowSetup:
    dep: Deployment
    gpu: GPU | None
    util: float | None
    settings: EngineSettings
    assumptions: list[str]


def row_setup(row: dict[str, str], base: Path | None) -> RowSetup:
    """Everything the row states, turned into a deployment and engine settings (Skip when it cannot be)."""
    assumptions: list[str] = []
    found = by_csv_name(row.get("engine") or "")
    if found is None:
        raise Skip(f"engine {row.get('engine')!r} is not modelled")
    engine = found.name
    notes = row.get("notes") or ""
    if re.search(r"context[-_ ]parallel", notes, re.IGNORECASE):
        raise Skip("context parallelism (--attention-context-parallel-size) is not modelled")
    config = (row.get("config") or "").strip()
    if config and base is None:  # CSV text (the web API): only the embedded config of that name, never a path
        entry = next((e for e in catalog.models() if f"{e.config}.json" == Path(config).name), None)
        if entry is None:
            raise Skip(f"config {config} is not in the embedded catalog")
        source: Any = entry.alias
    elif config:
        try:
            path = (base / config).resolve()
            if not path.is_file():  # a copy of the CSV away from its configs: the embedded file of that name
                path = catalog.DATA_PATH / Path(config).name
            exists = path.is_file()
        except (OSError, ValueError):  # a name the file system cannot hold (a NUL byte, too long)
            exists = False
        if not exists:
            raise Skip(f"config {config[:80]!r} not found next to the CSV nor in the embedded catalog")
        source = path
    else:
        words = (row.get("model") or "").split()
        if not words:
            raise Skip("no model named and no config given")
        entry = catalog.lookup(words[0])
        if entry is None:
            raise Skip("no config.json for this model (config column empty, HF id not in the embedded catalog)")
        source = entry.alias
    spec = load_model(source)
    logged_len = _int(row, "max_model_len")
    if logged_len and spec.max_context and logged_len > spec.max_context:
        # the engine started at that length, so the checkpoint it served allows it (a longer-context release of
        # the config's architecture, as Qwen3-30B-A3B's -2507 builds, or the engine's long-context override)
        assumptions.append(f"max_model_len {logged_len:,} is beyond the config's context {spec.max_context:,}: "
                           "the served checkpoint's context is taken as the logged length")
        spec = replace(spec, max_context=logged_len)
    gpus = _int(row, "gpu_count")
    tp = _int(row, "tensor_parallel")
    pp = _int(row, "pipeline_parallel")
    if tp is None:
        if gpus and gpus > (pp or 1):
            raise Skip("the tensor/pipeline-parallel split of the GPUs is not stated")
        tp = 1
    if pp is None:
        pp = (gpus // tp) if gpus and gpus > tp else 1
        if pp > 1:
            assumptions.append(f"{gpus} GPUs at TP {tp}: pipeline parallel {pp}")
    quant = None
    if spec.quant is None:
        quant = scheme_for_checkpoint(row.get("quantization"), row.get("weight_scheme"), row.get("model", ""))
    elif (row.get("quantization") or row.get("weight_scheme") or "").strip():
        # a log of another quantization of the config's model (an AWQ build of an fp8 release): the config's
        # architecture, the logged format
        try:
            logged = scheme_for_checkpoint(row.get("quantization"), row.get("weight_scheme"), row.get("model", ""))
        except KvplanError:
            logged = None
        if logged is not None and scheme(logged).bits != spec.quant.bits:
            assumptions.append(f"the logged checkpoint is {logged}, the config's is {spec.quant.name}: the "
                               "config's architecture in the logged format")
            spec, quant = spec.unquantized(), logged
    dtype = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get((row.get("dtype") or "").strip())
    kv = (row.get("kv_cache_dtype") or "auto").strip().lower()
    kv = {"bfloat16": "bf16", "float16": "fp16", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8"}.get(kv, kv) or "auto"
    dep = Deployment(spec, tp=tp, pp=pp, dtype=dtype, quant=quant, kv_dtype=kv)

    version, bound = csv_release(found, row.get("engine_version"))
    if bound is not None:
        assumptions.append(f"engine version not stated; the log predates {found.label} {bound}: {version} rules")
    elif found.version_assumed_note and version is None:
        assumptions.append(f"engine version not stated: {found.label} {found.default_version.removesuffix('.0')} "
                           "rules")
    total_gib = _num(row, "gpu_total_gib")
    gpu = find_gpu(row.get("gpu") or "")
    if gpu is not None and not total_gib and SHARED_DEVICE.search(row.get("gpu") or ""):
        gpu = None  # a slice or a share of the named card: its memory is not the catalog's
        assumptions.append("the GPU is a slice or a share of the named card and its total is not stated: "
                           "figures that need the device's memory are not predicted")
    if gpu is None and total_gib:
        gpu = custom_gpu(round(total_gib * GiB), f"{total_gib}GiB")
    util = _num(row, "gpu_memory_utilization")
    if util is None:
        assumptions.append("utilization not stated: the engine's default")
    settings = EngineSettings(
        engine=engine, version=version, max_model_len=_int(row, "max_model_len"),
        max_num_batched_tokens=_int(row, "max_num_batched_tokens") or _note_int(
            notes, r"max[_-]num[_-]batched[_-]tokens[ =]+([\d,]+)"),
        # SGLang's max_running_requests column is what it printed (scored), not a setting
        max_num_seqs=_int(row, "max_num_seqs") or _note_int(
            notes, r"(?:max[_-]num[_-]seqs|--max-running-requests)[ =]+([\d,]+)"),
        block_size=_int(row, "block_size"),
        enforce_eager=bool(re.search(r"enforce[-_ ]eager", notes, re.IGNORECASE)),
        extensible_kv_cache=False if NO_EXTENSIBLE.search(notes) else None,
        total_bytes=round(total_gib * GiB) if total_gib else None,
        entry_point="llm" if found.entry_points and OFFLINE.search(notes) else "serve",
        **serving_features(notes),
    )
    if settings.speculative_method is not None:
        from kvplan.planning import served_model

        try:
            served = served_model(spec, settings)
        except InputError as e:  # a drafter kvplan cannot load offline (a Hub id outside the catalog)
            raise Skip(f"the speculative drafter: {e}") from None
        dep = Deployment(served, tp=tp, pp=pp, dtype=dtype, quant=quant, kv_dtype=kv)
    return RowSetup(dep, gpu, util, settings, assumptions)


# A GPU column describing part of a card (a vGPU slice, a MIG instance) or a card other processes hold memory on.
SHARED_DEVICE = re.compile(r"\bv?GPU slice\b|\bvGPU\b|\bMIG\b|\bGPU shared\b|\bshared GPU\b", re.IGNORECASE)

# A row's notes saying it ran vLLM's offline LLM class (its scheduler defaults differ from `vllm serve`'s).
NO_EXTENSIBLE = re.compile(r"no[-_]enable[-_]extensible[-_]kv[-_]cache|enable_extensible_kv_cache'?[:=] ?False"
                           r"|Disabling the extensible KV cache", re.IGNORECASE)
OFFLINE = re.compile(r"\bLLM\(|LLM class|offline LLM|vllm bench throughput|benchmark_throughput", re.IGNORECASE)


def _figures_end_to_end(result: RowResult, row: dict[str, str], setup: RowSetup) -> None:
    if setup.gpu is None:
        reason = "GPU type and total memory not stated"
        for name in ("weights", "kv_pool", "kv_tokens", "max_concurrency"):
            result.skipped[name] = reason
        _weights_only(result, row, setup)
        return
    s = scenario(setup.settings, setup.dep, setup.gpu, setup.util, _seq(setup), 1, 1)
    _record(result, row, s)


def _seq(setup: RowSetup) -> int:
    return setup.settings.max_model_len or setup.dep.model.max_context or 2048


def _weights_only(result: RowResult, row: dict[str, str], setup: RowSetup) -> None:
    logged = _num(row, "weights_gib")
    if logged is None or not get_engine(setup.settings.engine).weights_printed:
        return
    predicted = loaded_weights(setup.dep, setup.dep.stages[0])[0] / GiB
    result.figures["weights"] = _entry(predicted, logged)
    result.skipped.pop("weights", None)


def _entry(predicted: float, logged: float) -> dict[str, float]:
    return {"logged": logged, "predicted": round(predicted, 4), "rel_err": round(rel_err(predicted, logged), 6)}


def _record(result: RowResult, row: dict[str, str], s: Scenario) -> None:
    first = s.budgets[0]
    weights = first.term(TermKind.WEIGHTS)
    logged = {"weights": _num(row, "weights_gib"), "kv_pool": _num(row, "kv_available_gib"),
              "kv_tokens": _num(row, "kv_tokens"), "max_concurrency": _num(row, "max_concurrency_x"),
              "max_running_requests": _num(row, "max_running_requests")}
    predicted = {"weights": None if weights is None else weights / GiB, "kv_pool": first.kv_pool / GiB,
                 "kv_tokens": s.printed.kv_tokens if s.printed else None,
                 "max_concurrency": s.printed.max_concurrency if s.printed else None,
                 "max_running_requests": s.printed.max_running_requests if s.printed else None}
    for name, (column, kind) in TERM_COLUMNS.items():
        logged[name] = _num(row, column)
        term = first.term(kind)
        predicted[name] = None if term is None else term / GiB
    for name, column in (("free_before_weights", "avail_before_load_gib"),
                         ("free_after_weights", "avail_after_load_gib")):
        logged[name] = _num(row, column)
        value = getattr(s.printed, f"{name}_bytes", None) if s.printed else None
        predicted[name] = None if value is None else value / GiB
    for name, value in logged.items():
        if value is None:
            continue
        if predicted[name] is None:
            result.skipped[name] = f"{result.engine} does not print it"
            continue
        result.figures[name] = _entry(predicted[name], value)


def _figure_given_pool(result: RowResult, row: dict[str, str], setup: RowSetup) -> None:
    pool, tokens = _num(row, "kv_available_gib"), _num(row, "kv_tokens")
    if pool is None or tokens is None:
        return
    if pool <= 0:
        result.skipped["kv_tokens_given_pool"] = "logged pool is not positive"
        return
    s = scenario(setup.settings, setup.dep, setup.gpu, setup.util, _seq(setup), 1, 1,
                 kv_memory=round(pool * GiB))
    if s.printed is None or s.printed.kv_tokens is None:
        result.skipped["kv_tokens_given_pool"] = f"{result.engine} does not print KV tokens"
        return
    result.figures["kv_tokens_given_pool"] = _entry(s.printed.kv_tokens, tokens)


def csv_release(found: Engine, text: str | None) -> tuple[str | None, str | None]:
    """A CSV `engine_version`: (the release whose rules apply, the bound it was read from, else None). `<X`: the
    version is not stated but the source predates release X, so the newest rules before X apply. `>=W <X`: also
    a wording the log prints first appears in release W (the engine's release clues), so the rules of the
    range [W, X) apply (Engine.release_in)."""
    text = (text or "").strip()
    if m := RANGE.fullmatch(text):
        since, until = m.group(1), m.group(2)
        if since is None:
            return found.release_in(None, until), until
        return found.release_in(since, until), f"{until} and prints wording first printed in {since}"
    return text or None, None


RANGE = re.compile(r"(?:>=\s*([\w.]+)\s+)?<\s*([\w.]+)")


def band_of(row: dict[str, str]) -> str:
    found = by_csv_name(row.get("engine") or "")
    if found is None:
        return f"{(row.get('engine') or '').strip() or 'no engine'} (not modelled)"
    version, bound = csv_release(found, row.get("engine_version"))
    return found.band(None if bound else version)  # a bound is scored as "version not stated"


def source_of(row: dict[str, str]) -> str:
    """The row's source without its comment: 'vllm-project/vllm#10517', a URL, a file."""
    text = (row.get("source") or "").strip()
    if m := re.match(r"(?:github\.com/)?([\w.-]+/[\w.-]+)\s*(?:PR\s*)?#(\d+)", text):
        return f"{m.group(1)}#{m.group(2)}"
    return re.split(r"\s+\(|,\s", text, maxsplit=1)[0] or "no source"


def validate_row(index: int, row: dict[str, str], base: Path | None) -> RowResult:
    result = RowResult(index, row.get("source", ""), row.get("model", ""), row.get("engine", ""),
                       gpu=(row.get("gpu") or "").strip(), band=band_of(row))
    try:
        setup = row_setup(row, base)
        result.assumptions = setup.assumptions
        _figure_given_pool(result, row, setup)
        _figures_end_to_end(result, row, setup)
    except Skip as e:
        result.reason = str(e)
    except KvplanError as e:
        result.reason = str(e)
    except Exception as e:  # a kvplan bug must not stop the report: it is shown as the row's reason
        result.reason = f"internal error {type(e).__name__}: {e}"
    if not result.figures and result.reason is None:
        result.reason = "; ".join(sorted(set(result.skipped.values()))) or "no figure in the row to compare"
    return result


@dataclass
class FigureSummary:
    """One figure's absolute relative errors over the modelled rows (None when no row has the figure)."""

    n: int
    median_abs_rel_err: float | None
    p90_abs_rel_err: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "median_abs_rel_err": self.median_abs_rel_err, "p90_abs_rel_err": self.p90_abs_rel_err}


@dataclass
class Counts:
    read: int
    modelled: int
    skipped: int

    def to_dict(self) -> dict[str, int]:
        return {"read": self.read, "modelled": self.modelled, "skipped": self.skipped}


@dataclass
class Group:
    """The rows of one band (or source) and their errors; in a hold-out, on constants fitted without them."""

    rows: int
    modelled: int
    fitted_rows: int  # rows of the group some constant is fitted on (0: its figures are held out already)
    summary: dict[str, FigureSummary]
    unscored: str | None = None  # a hold-out that could not refit without this group: why

    def to_dict(self) -> dict[str, Any]:
        out = {"rows": self.rows, "modelled": self.modelled, "fitted_rows": self.fitted_rows,
               "summary": {name: s.to_dict() for name, s in self.summary.items() if s.n}}
        if self.unscored:
            out["unscored"] = self.unscored
        return out


@dataclass
class HoldOut:
    """Every group scored on constants refitted without its own rows (kvplan.engines.vllm_fit.fit, `exclude`)."""

    by: str  # "version" (release bands) or "source"
    groups: dict[str, Group]
    summary: dict[str, FigureSummary]  # all rows, each scored held out

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "summary": {name: s.to_dict() for name, s in self.summary.items()},
                "groups": {name: g.to_dict() for name, g in self.groups.items()}}


@dataclass
class ValidationReport:
    rows: list[RowResult]
    summary: dict[str, FigureSummary]  # figure name (FIGURES order) -> its errors
    counts: Counts
    by_band: dict[str, Group] = field(default_factory=dict)  # in sample: the shipped constants
    held_out: HoldOut | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"rows": [r.to_dict() for r in self.rows],
               "summary": {name: s.to_dict() for name, s in self.summary.items()},
               "counts": self.counts.to_dict(),
               "by_band": {name: g.to_dict() for name, g in self.by_band.items()}}
        if self.held_out is not None:
            out["held_out"] = self.held_out.to_dict()
        return out


def summarize(results: list[RowResult]) -> dict[str, FigureSummary]:
    out = {}
    for name in FIGURES:
        errs = sorted(r.figures[name]["rel_err"] for r in results if name in r.figures)
        if errs:
            p90 = errs[min(len(errs) - 1, max(0, round(0.9 * len(errs) + 0.5) - 1))]
            out[name] = FigureSummary(len(errs), round(statistics.median(errs), 6), round(p90, 6))
        else:
            out[name] = FigureSummary(0, None, None)
    return out


def _groups(results: list[RowResult], key: Any, fitted: set[int]) -> dict[str, Group]:
    members: dict[str, list[RowResult]] = {}
    for r in results:
        members.setdefault(key(r), []).append(r)
    return {name: Group(len(rs), sum(r.modelled for r in rs), sum(r.index in fitted for r in rs), summarize(rs))
            for name, rs in sorted(members.items())}


def read_rows(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not a readable CSV: {e}") from None
    return parse_rows(text, str(path))


def parse_rows(text: str, name: str = "the CSV") -> list[dict[str, str]]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{name} lacks the column(s) {', '.join(missing)}: a validation CSV needs at least "
                             f"{', '.join(REQUIRED_COLUMNS)} (the README's Validation section lists every column)")
        return list(reader)
    except csv.Error as e:
        raise InputError(f"{name} is not a readable CSV: {e}") from None


HOLD_OUT = {"version": band_of, "source": source_of}


def validate(path: str | Path, hold_out: str | None = None) -> ValidationReport:
    """`hold_out`: "version" (leave one release band out) or "source" (leave one source out)."""
    path = Path(path)
    return report(read_rows(path), path.parent, hold_out)


def validate_text(text: str, hold_out: str | None = None) -> ValidationReport:
    """CSV given as text: configs come from the embedded catalog only."""
    return report(parse_rows(text), None, hold_out)


def report(rows: list[dict[str, str]], base: Path | None, hold_out: str | None = None) -> ValidationReport:
    from kvplan.engines.vllm_fit import fitted_rows

    if hold_out is not None and hold_out not in HOLD_OUT:
        raise InputError(f"hold out by {hold_out!r}: use one of {', '.join(HOLD_OUT)}")
    results = [validate_row(i, row, base) for i, row in enumerate(rows)]
    counts = Counts(read=len(results), modelled=sum(r.modelled for r in results),
                    skipped=sum(not r.modelled for r in results))
    fitted = fitted_rows(rows, lambda r: row_setup(r, base))
    by_band = _groups(results, lambda r: r.band, fitted)
    held = _hold_out(rows, base, hold_out, fitted, results) if hold_out else None
    return ValidationReport(results, summarize(results), counts, by_band, held)


def _hold_out(rows: list[dict[str, str]], base: Path | None, by: str, fitted: set[int],
              in_sample: list[RowResult]) -> HoldOut:
    """Each group's rows scored on constants fitted without them; a group none of whose rows is fitted on keeps
    its in-sample results (its figures are held out already)."""
    from kvplan.engines.common import constants_from
    from kvplan.engines.vllm_fit import fit

    key = HOLD_OUT[by]
    members: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        members.setdefault(key(row), []).append(i)
    results: list[RowResult] = []
    unscored: dict[str, str] = {}
    for name, ids in members.items():
        left_out = frozenset(ids) & fitted
        if not left_out:
            results += [in_sample[i] for i in ids]
            continue
        try:
            constants = fit(rows, lambda r: row_setup(r, base), left_out)
        except KvplanError as e:  # the group holds every row some constant needs: no honest held-out figure
            unscored[name] = f"not scored held out: without these rows {e}"
            continue
        with constants_from(constants):
            results += [validate_row(i, rows[i], base) for i in ids]
    group_of = {i: name for name, ids in members.items() for i in ids}
    groups = _groups(results, lambda r: group_of[r.index], fitted)
    for name, why in unscored.items():
        ids = members[name]
        groups[name] = Group(len(ids), 0, len(frozenset(ids) & fitted), summarize([]), why)
    return HoldOut(by, dict(sorted(groups.items())), summarize(results))
