"""Fit vLLM's non-config memory constants on the public startup logs, and write them for kvplan.

    python benchmarks/fit_vllm_constants.py [benchmarks/engine_logs.csv] [--write]

Only rows that print the figure being fitted are used (non_torch_gib, activation_peak_gib), and only vLLM V1.
- non-torch memory: the median per setup (TP 1 in >= 0.18, TP 1 in 0.16-0.17, PP with TP 1), and a least-squares
  line a + b x TP over the TP >= 2 rows (all on NVLink H100s).
- activation peak: peak = max(forward_factor x F, sampler_bytes_per_logit x S + H) with F, S, H the features
  kvplan computes (engines/vllm.py ActivationFeatures); the two factors minimise the summed absolute log error
  over the >= 0.17 rows on a grid. The 0.16 row's excess over that model, per token x vocabulary entry, gives
  v016_bytes_per_token_logit.
With --write the result replaces src/kvplan/data/vllm-constants.toml; without, it only prints.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kvplan.engines import get_engine, parse_version  # noqa: E402
from kvplan.engines.common import activation_features  # noqa: E402
from kvplan.engines.vllm import VLLM  # noqa: E402
from kvplan.units import GiB  # noqa: E402
from kvplan.validate import Skip, row_setup  # noqa: E402

OUT = ROOT / "src" / "kvplan" / "data" / "vllm-constants.toml"


def rows_with(path: Path, column: str, engine: str = "vLLM V1",
              exclude: frozenset[int] = frozenset()) -> list[tuple[int, dict[str, str]]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [(i, r) for i, r in enumerate(rows) if r["engine"] == engine and r[column].strip() and i not in exclude]


def label(rows: list[tuple[int, object]]) -> str:
    """'rows 10-21, 26' (0-based data rows of the CSV)."""
    ids = sorted(i for i, _ in rows)
    spans, start = [], None
    for k, i in enumerate(ids):
        start = i if start is None else start
        if k + 1 == len(ids) or ids[k + 1] != i + 1:
            spans.append(f"{start}" if start == i else f"{start}-{i}")
            start = None
    return "rows " + ", ".join(spans)


def fit_non_torch(path: Path, exclude: frozenset[int] = frozenset()) -> dict[str, float | str]:
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {"tp1": [], "tp1_old": [], "pp": [], "tp": []}
    for i, r in rows_with(path, "non_torch_gib", exclude=exclude):
        version = parse_version(r["engine_version"] or None, VLLM.default_version)
        tp = int(r["tensor_parallel"] or 1)
        gpus = int(r["gpu_count"] or 1)
        key = "tp" if tp > 1 else "pp" if gpus > tp else "tp1" if version >= (0, 18) else "tp1_old"
        groups[key].append((i, r))
    out: dict[str, float | str] = {}
    for key in ("tp1", "tp1_old", "pp"):
        values = [float(r["non_torch_gib"]) for _, r in groups[key]]
        out[f"{key}_gib"] = round(statistics.median(values), 3)
        out[f"{key}_source"] = f"median of {len(values)} public V1 logs, {label(groups[key])}"
    xs = [int(r["tensor_parallel"]) for _, r in groups["tp"]]
    ys = [float(r["non_torch_gib"]) for _, r in groups["tp"]]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    out["tp_base_gib"] = round(my - slope * mx, 3)
    out["tp_per_rank_gib"] = round(slope, 4)
    out["tp_source"] = f"least squares over {len(xs)} TP>=2 public V1 logs on NVLink H100s, {label(groups['tp'])}"
    out["v0_tp1_gib"] = out["tp1_gib"]
    out["v0_tp1_source"] = "V1 TP 1 value (the V0 logs disagree too much to fit: 0.03-1.79 GiB)"
    return out


def activation_points(path: Path, engine: str = "vLLM V1",
                      exclude: frozenset[int] = frozenset()) -> list[tuple[int, tuple[int, int], object, float]]:
    points = []
    for i, r in rows_with(path, "activation_peak_gib", engine, exclude):
        if "multimodal" in r["notes"]:  # the encoder's image profiling dominates: not this model
            continue
        try:
            setup = row_setup(r, path.parent)
        except Skip:
            continue
        known = setup.settings.total_bytes or setup.gpu  # no device: the scheduler defaults of a small GPU
        o = get_engine(VLLM.name).prepare(setup.dep, setup.gpu, setup.settings, kv_memory=None if known else 0).options
        mnbt, seqs = o.max_num_batched_tokens, o.max_num_seqs
        stage = setup.dep.stages[0]  # the logged rank is rank 0
        points.append((i, parse_version(r["engine_version"] or None, VLLM.default_version),
                       activation_features(setup.dep, stage, mnbt, seqs), float(r["activation_peak_gib"]) * GiB))
    return points


def fit_activation(path: Path, exclude: frozenset[int] = frozenset()) -> dict[str, float | str]:
    points = activation_points(path, exclude=exclude)
    fit = [p for p in points if p[1] >= (0, 17)]

    def predict(kf: float, ks: float, f) -> float:
        peak = kf * f.forward
        return max(peak, ks * f.logits + f.hidden) if f.last_stage else peak

    def loss(kf: float, ks: float) -> float:
        return sum(abs(math.log(predict(kf, ks, f) / logged)) for _, _, f, logged in fit)

    grid = [(kf / 20, ks / 4) for kf in range(10, 101) for ks in range(20, 101)]
    kf, ks = min(grid, key=lambda g: loss(*g))
    old = [p for p in points if p[1] < (0, 17)]
    # the 0.16 profile's excess over that model, per (batched token x vocabulary entry)
    v016 = statistics.median((logged - predict(kf, ks, f)) / (f.tokens * f.vocab)
                             for _, _, f, logged in old) if old else 0.0
    v0 = activation_points(path, "vLLM V0", exclude)
    ks0 = min((k / 4 for k in range(20, 401)),
              key=lambda k: sum(abs(math.log(predict(1.0, k, f) / logged)) for _, _, f, logged in v0))
    return {"forward_factor": kf, "sampler_bytes_per_logit": ks, "v016_bytes_per_token_logit": round(v016, 3),
            "v0_sampler_bytes_per_logit": ks0,
            "v0_source": f"V0 forward factor 1 (eager count, not fitted); sampler grid fit on "
                         f"{label([(i, None) for i, *_ in v0])}",
            "source": f"grid fit on {len(fit)} public V1 >= 0.17 logs ({label([(i, None) for i, *_ in fit])}); "
                      f"0.16 excess from {label([(i, None) for i, *_ in old])}"}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = Path(args[0] if args else ROOT / "benchmarks" / "engine_logs.csv")
    non_torch = fit_non_torch(path)
    act = fit_activation(path)
    print("[non_torch]", non_torch, "\n[activation]", act)
    if "--write" in sys.argv:
        lines = ["# Constants of vLLM's memory profile that a config cannot give. Written by",
                 "# benchmarks/fit_vllm_constants.py from the public startup logs in shared/bench/engine_logs.csv",
                 "# (never edit by hand: rerun the script).", "", "[non_torch]"]
        lines += [f"{k} = {v!r}" if isinstance(v, float) else f'{k} = "{v}"' for k, v in non_torch.items()]
        lines += ["", "[activation]"]
        v0 = {"forward_factor": 1.0, "sampler_bytes_per_logit": act.pop("v0_sampler_bytes_per_logit"),
              "v016_bytes_per_token_logit": 0.0, "source": act.pop("v0_source")}
        lines += [f"{k} = {v!r}" if isinstance(v, float) else f'{k} = "{v}"' for k, v in act.items()]
        lines += ["", "[activation_v0]"]
        lines += [f"{k} = {v!r}" if isinstance(v, float) else f'{k} = "{v}"' for k, v in v0.items()]
        lines += ["", "[cudagraph]", "estimate_gib = 0.5",
                  'source = "not fitted: no public log of vLLM >= 0.20 in the bench set; 0.5 GiB, a typical '
                  '\\"Graph capturing finished ... took 0.50 GiB\\" of an 8B model"', ""]
        OUT.write_text("\n".join(lines), encoding="utf-8")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
