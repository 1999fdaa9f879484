"""The fitted constants of vLLM's memory profile, fitted on logged startup rows (a validation CSV's rows).

What a release's source cannot give is fitted here, and only that (each constant's `source` says on which
rows): the non-torch memory (CUDA context, NCCL and cuBLAS workspaces) per setup, and the two factors of the
profiling run's activation peak (engines/common.py activation_peak). `fit(rows, base)` returns the constants as
data/vllm-constants.toml holds them; `exclude` leaves rows out, which is how `kvplan validate
--leave-one-version-out` (and `--leave-one-source-out`) score every band on constants fitted without it.

- non-torch: the median per setup (TP 1 in >= 0.18, TP 1 before 0.18, PP with TP 1) and a least-squares line
  a + b x TP over the >= 0.18 TP >= 2 rows on NVLink GPUs; a setup left with no row borrows its nearest setup's
  value, the CUDA context added or taken away where the two count it differently (TP1_CONSTANTS). V1 rows
  that do not state their release are scored, never fitted (the constants split by release).
  V0: the median non-torch of the TP 1 rows of each of its two formulas (V0_RULES non_torch).
- activation: peak = max(forward_factor x F, S + H), F the forward's eager count, S the sampler's peak as the
  release's rules read it from source (engines/common.py SamplerPeak), H the hidden states alive; only
  forward_factor is fitted (a compiled forward's peak over the eager count), on the V1 rows that state their
  release. V0 is eager: its factor is 1, not fitted, and its sampler comes from source too.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from kvplan.engines import by_csv_name, parse_version
from kvplan.engines.common import CUDA_CONTEXT_GIB, activation_features
from kvplan.errors import KvplanError
from kvplan.hardware import compute_units, find_gpu
from kvplan.model.spec import TOWER_ROLES
from kvplan.units import GiB

Rows = list[tuple[int, dict[str, str]]]  # (0-based data row of the CSV, the row)
SetupOf = Callable[[dict[str, str]], Any]  # a row -> its setup (.dep, .gpu, .settings); KvplanError: cannot be


EAGER = re.compile(r"enforce[-_ ]eager", re.IGNORECASE)


def _with(rows: Iterable[tuple[int, dict[str, str]]], column: str, engine: str, exclude: frozenset[int]) -> Rows:
    """The rows of `engine` whose `column` holds a number, whose counts are whole numbers and whose version (if
    any) reads: the others are scored by validate (which says what is wrong with them), never fitted on."""
    return [(i, r) for i, r in rows if r.get("engine") == engine and i not in exclude and _number(r.get(column))
            is not None and all(_count(r.get(c)) for c in ("tensor_parallel", "gpu_count")) and _version_ok(r)]


def _number(text: str | None) -> float | None:
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _count(text: str | None) -> bool:
    text = (text or "").strip()
    return not text or (text.isdigit() and 0 < int(text) <= 4096)


def _version_ok(row: dict[str, str]) -> bool:
    """The row states no version or one kvplan parses; a bound (`<X`: released before X; `>=W <X`: a range) is
    scored, never fitted."""
    text = (row.get("engine_version") or "").strip()
    if text.startswith(("<", ">=")):
        return False
    try:
        return not text or bool(parse_version(text, text))
    except KvplanError:
        return False


def label(ids: Iterable[int]) -> str:
    """'rows 10-21, 26' (0-based data rows of the CSV)."""
    ordered = sorted(ids)
    spans, start = [], None
    for k, i in enumerate(ordered):
        start = i if start is None else start
        if k + 1 == len(ordered) or ordered[k + 1] != i + 1:
            spans.append(f"{start}" if start == i else f"{start}-{i}")
            start = None
    return "rows " + ", ".join(spans) if spans else "no rows"


# The non-torch constants at TP 1 ([non_torch] in data/vllm-constants.toml), each the one some releases'
# available-memory formula subtracts (V1_RULES non_torch_tp1, V0_RULES non_torch), with what it measures and,
# for a constant left without rows (a held-out band), the neighbours it borrows from in order, never the shipped
# value (fitted on the rows held out). A neighbour measured the same way lends its value as it is; one that
# counts the CUDA context where this one does not (or the reverse) lends it with the context added (or taken
# away): all_tp1 is every non-torch byte on the device, the others only what the profile added after the init
# snapshot (vllm/utils memory_profiling, V0 >= 0.6.5 and V1 >= 0.9.1 alike), so they differ by that context.
TP1_CONSTANTS: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "tp1": ("V1 >= 0.18", (("tp1_old", 0.0),)),
    "tp1_old": ("V1 0.9.1-0.17", (("tp1", 0.0),)),
    "all_tp1": ("with the CUDA context: V0 0.6.4, V1 < 0.9.1",
                (("v0_increase", CUDA_CONTEXT_GIB), ("tp1_old", CUDA_CONTEXT_GIB), ("tp1", CUDA_CONTEXT_GIB))),
    "v0_increase": ("V0 <= 0.6.3 and >= 0.6.5", (("tp1_old", 0.0), ("all_tp1", -CUDA_CONTEXT_GIB), ("tp1", 0.0))),
    "pp": ("V1 with PP and TP 1", (("tp1", 0.0), ("tp1_old", 0.0))),
}


def _non_torch_groups(rows: Rows, exclude: frozenset[int]) -> dict[str, Rows]:
    """The rows each non-torch constant is fitted on: at TP 1 the constant of the release's formula, `pp` V1 with
    PP, `tp` V1 at TP >= 2 on NVSwitch Hopper GPUs (hardware.GPU.nvswitch: the line's buffers; elsewhere
    vllm.non_torch uses the TP 1 value). Rows that do not state their release are scored, never fitted (the
    constants split by release)."""
    groups: dict[str, Rows] = {key: [] for key in (*TP1_CONSTANTS, "tp")}
    for engine, field in (("vLLM V1", "non_torch_tp1"), ("vLLM V0", "non_torch")):
        eng = by_csv_name(engine)
        assert eng is not None
        for i, r in _with(rows, "non_torch_gib", engine, exclude):
            if not (r.get("engine_version") or "").strip():
                continue
            version = parse_version(r["engine_version"], eng.default_version)
            tp, gpus = int(r.get("tensor_parallel") or 1), int(r.get("gpu_count") or 1)
            v1 = engine == "vLLM V1"
            if tp > 1:
                if v1 and _nvswitch(r.get("gpu") or ""):
                    groups["tp"].append((i, r))
            elif gpus > tp:
                if v1:
                    groups["pp"].append((i, r))
            else:
                groups[getattr(eng.rules_for(version), field).removesuffix("_gib")].append((i, r))
    return groups


def fit_non_torch(rows: Rows, exclude: frozenset[int] = frozenset()) -> dict[str, Any]:
    groups = _non_torch_groups(rows, exclude)
    out: dict[str, Any] = {}
    for key, (what, _) in TP1_CONSTANTS.items():
        values = [float(r["non_torch_gib"]) for _, r in groups[key]]
        if values:
            out[f"{key}_gib"] = round(statistics.median(values), 3)
            out[f"{key}_source"] = f"median of {len(values)} public logs ({what}), {label(i for i, _ in groups[key])}"
    fitted = {key for key in TP1_CONSTANTS if groups[key]}
    for key, (_, neighbours) in TP1_CONSTANTS.items():
        if key not in fitted:
            near = next(((n, add) for n, add in neighbours if n in fitted), None)
            if near is None:
                raise KvplanError(f"no log of non-torch memory for {key} nor its neighbours: nothing to fit")
            n, add = near
            out[f"{key}_gib"] = round(max(out[f"{n}_gib"] + add, 0.0), 3)
            out[f"{key}_source"] = (f"no row: the {n} value" if not add else
                                    f"no row: the {n} value {'+' if add > 0 else '-'} the {abs(add)} GiB CUDA context")
    xs = [int(r["tensor_parallel"]) for _, r in groups["tp"]]
    ys = [float(r["non_torch_gib"]) for _, r in groups["tp"]]
    if len(set(xs)) >= 2:
        mx, my = statistics.mean(xs), statistics.mean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        out["tp_base_gib"], out["tp_per_rank_gib"] = round(my - slope * mx, 3), round(slope, 4)
        out["tp_source"] = (f"least squares over {len(xs)} TP>=2 public V1 logs on NVSwitch Hopper GPUs, "
                            f"{label(i for i, _ in groups['tp'])}")
    else:  # no line to fit: the TP 1 value at every TP (as without NVLink)
        out["tp_base_gib"], out["tp_per_rank_gib"] = out["tp1_gib"], 0.0
        out["tp_source"] = "fewer than two TP sizes: the TP 1 value"
    return out


def _nvswitch(gpu: str) -> bool:
    found = find_gpu(gpu)
    return bool(found and found.nvswitch)


Point = tuple[int, tuple[int, int, int], float, float, float]  # row, version, forward, sampler + hidden, logged


def activation_points(rows: Rows, setup_of: SetupOf, engine: str = "vLLM V1",
                      exclude: frozenset[int] = frozenset()) -> list[Point]:
    """(row, version, the forward's eager count F, the sampler's peak S from the release's source + the hidden
    states, the logged peak) in bytes, of every row that logs an activation peak kvplan can set up."""
    eng = by_csv_name(engine)
    assert eng is not None
    points = []
    for i, r in _with(rows, "activation_peak_gib", engine, exclude):
        if "multimodal" in (r.get("notes") or ""):  # the encoder's image profiling dominates: not this model
            continue
        if not (r.get("engine_version") or "").strip():
            continue  # the sampler depends on the release: a row without one is scored, not fitted
        try:
            setup = setup_of(r)
        except KvplanError:
            continue
        if any(t.role in TOWER_ROLES for t in setup.dep.model.tensors):
            continue  # a vision tower's profile (encoder_profile) rides on the peak: not the text forward alone
        known = setup.settings.total_bytes or setup.gpu  # no device: the scheduler defaults of a small GPU
        prepared = eng.prepare(setup.dep, setup.gpu, setup.settings, kv_memory=None if known else 0)
        o, rules = prepared.options, prepared.rules
        if eng.forward_counted(prepared):  # type: ignore[attr-defined]
            continue  # an eager forward, or Model Runner V2's profile without attention, is counted (factor 1)
        stage = setup.dep.stages[0]  # the logged rank is rank 0
        f = activation_features(setup.dep, stage, o.max_num_batched_tokens, o.max_num_seqs,
                                getattr(rules, "hidden_rows", "rows"))
        sampler = eng.sampler_for(prepared)  # type: ignore[attr-defined]
        s = (sampler.peak(f.requests, f.vocab, f.padded_vocab, f.dtype,
                          compute_units(setup.gpu) if setup.gpu else None)[0] + f.hidden) if f.last_stage else 0.0
        points.append((i, parse_version(r.get("engine_version") or None, eng.default_version), f.forward, s,
                       float(r["activation_peak_gib"]) * GiB))
    return points


def fit_activation(rows: Rows, setup_of: SetupOf, exclude: frozenset[int] = frozenset()) -> dict[str, Any]:
    """The forward factor, the one activation constant the source cannot give (a compiled forward's peak over
    the eager count): minimises the summed absolute log error of max(k x F, S) over the V1 rows that log a
    peak; the sampler's S comes from each release's rules, never fitted."""
    points = activation_points(rows, setup_of, exclude=exclude)
    if not points:
        raise KvplanError("no vLLM V1 row logs an activation peak kvplan can set up: nothing to fit")

    def loss(k: float) -> float:
        return sum(abs(math.log(max(k * forward, sampler) / logged)) for _, _, forward, sampler, logged in points)

    k = min((k / 20 for k in range(10, 101)), key=loss)
    return {"activation": {"forward_factor": k,
                           "source": f"grid fit on {len(points)} public V1 logs ({label(p[0] for p in points)}), "
                                     "the sampler's peak from each release's source"}}


CUDAGRAPH_PRIOR_GIB = 0.5  # without a row: a typical "Graph capturing finished ... took 0.50 GiB" of an 8B model


def _cudagraph_rows(rows: Rows, exclude: frozenset[int]) -> Rows:
    """The >= 0.20 logs that print their graph memory; an --enforce-eager run captures none (its 0 is no estimate)."""
    return [(i, r) for i, r in _with(rows, "cuda_graph_gib", "vLLM V1", exclude)
            if (r.get("engine_version") or "").strip() and parse_version(r["engine_version"], "0") >= (0, 20)
            and not EAGER.search(r.get("notes") or "")]


def fit_cudagraph(rows: Rows, exclude: frozenset[int] = frozenset()) -> dict[str, Any]:
    """The CUDA-graph estimate vLLM >= 0.20 subtracts before sizing the pool (V1_RULES cudagraph_estimate): the
    median graph memory of the >= 0.20 logs that state their release (the size depends on the model and the
    capture sizes, which kvplan does not model: a constant, fitted)."""
    used = _cudagraph_rows(rows, exclude)
    if not used:
        return {"estimate_gib": CUDAGRAPH_PRIOR_GIB,
                "source": "no >= 0.20 log left: 0.5 GiB, a typical 8B model's graph capture"}
    return {"estimate_gib": round(statistics.median(float(r["cuda_graph_gib"]) for _, r in used), 3),
            "source": f"median graph memory of {len(used)} public >= 0.20 logs, {label(i for i, _ in used)}"}


def fit(rows: list[dict[str, str]], setup_of: SetupOf, exclude: frozenset[int] = frozenset()) -> dict[str, Any]:
    """Every fitted constant from `rows` (a validation CSV's; `setup_of` turns a row into its deployment, GPU and
    settings: kvplan.validate.row_setup) without the rows numbered in `exclude` (the CUDA-graph estimate falls
    back to a prior when no row is left)."""
    numbered = list(enumerate(rows))
    return {"non_torch": fit_non_torch(numbered, exclude), **fit_activation(numbered, setup_of, exclude),
            "cudagraph": fit_cudagraph(numbered, exclude)}


def fitted_rows(rows: list[dict[str, str]], setup_of: SetupOf) -> set[int]:
    """The rows some constant is fitted on (a held-out score leaves exactly these out)."""
    numbered, none = list(enumerate(rows)), frozenset[int]()
    used = {i for group in _non_torch_groups(numbered, none).values() for i, _ in group}
    used |= {i for i, _ in _cudagraph_rows(numbered, none)}
    used |= {p[0] for p in activation_points(numbered, setup_of, "vLLM V1", none)}
    return used
