"""kvplan's speed estimates beside published measurements (benchmarks/perf_measurements.csv).

    python benchmarks/perf_compare.py                # compare with the current constants
    python benchmarks/perf_compare.py --fit [--write]

Each row is re-created as a kvplan deployment (model from the embedded catalog by HF id, GPU, TP, weight
precision) and the figure it measured is estimated:
- ttft_ms: prefill of `batch` prompts of input_len tokens,
- decode_tpot_ms: one decode step of `batch` sequences at input_len + output_len / 2 tokens,
- output_tokens_per_sec_total: batch x output_len / (prefill + output_len decode steps), as the static-batch
  latency benchmarks that produced these rows measure it.
The memory-bandwidth fraction is stated, not fitted (0.8: aiconfigurator's empirical factor, gpus-NOTES.md
section 2). With --fit the decode and prefill compute fractions and the all-reduce latency are chosen on a
grid to minimise the summed absolute log error over all rows; --write stores them in
src/kvplan/data/perf-constants.toml.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kvplan import perf  # noqa: E402
from kvplan.deployment import Deployment  # noqa: E402
from kvplan.hardware import find_gpu  # noqa: E402
from kvplan.model import catalog  # noqa: E402
from kvplan.model.load import load_model  # noqa: E402

CSV = ROOT / "benchmarks" / "perf_measurements.csv"
OUT = ROOT / "src" / "kvplan" / "data" / "perf-constants.toml"


def rows() -> list[dict]:
    with open(CSV, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def setup(row: dict):
    # an -Instruct / -Chat checkpoint has its base model's dimensions
    entry = catalog.lookup(row["model"]) or catalog.lookup(re.sub(r"-(Instruct|Chat)$", "", row["model"]))
    if entry is None:
        return None, f"{row['model']} not in the embedded catalog"
    gpu = find_gpu(row["gpu"])
    if gpu is None:
        return None, f"GPU {row['gpu']!r} not in the catalog"
    spec = load_model(entry.alias)
    weight = row["weight_dtype"].lower()
    quant = "fp8" if weight == "fp8" and spec.quant is None else None
    dtype = {"fp16": "fp16", "bf16": "bf16"}.get(weight)
    return (Deployment(spec, tp=int(row["tp"] or 1), dtype=dtype, quant=quant), gpu), None


def estimate(row: dict, dep: Deployment, gpu) -> float:
    batch, inp, out = int(row["batch"]), int(row["input_len"]), int(row["output_len"] or 1)
    metric = row["metric"]
    if metric == "ttft_ms":
        return perf.prefill(dep, gpu, inp, batch).seconds * 1000
    step = perf.decode(dep, gpu, batch, inp + out // 2)
    if metric == "decode_tpot_ms":
        return step.step_seconds * 1000
    if metric == "decode_tokens_per_sec_per_user":
        return step.tokens_per_sec_per_user
    if metric == "output_tokens_per_sec_total":
        return batch * out / (perf.prefill(dep, gpu, inp, batch).seconds + out * step.step_seconds)
    raise ValueError(metric)


def compare(verbose: bool = True) -> list[tuple[dict, float, float]]:
    results = []
    for row in rows():
        built, why = setup(row)
        if built is None:
            if verbose:
                print(f"skipped {row['model']} on {row['gpu']}: {why}")
            continue
        predicted = estimate(row, *built)
        results.append((row, predicted, float(row["value"])))
    return results


def report(results: list[tuple[dict, float, float]]) -> None:
    by_metric: dict[str, list[float]] = {}
    for row, predicted, measured in results:
        err = (predicted - measured) / measured
        by_metric.setdefault(row["metric"], []).append(abs(err))
        print(f"{row['metric']:28s} {row['model'][:34]:34s} {row['gpu'][:14]:14s} TP{row['tp']:<2s} "
              f"b{row['batch']:>5s} {row['input_len']:>5s}/{row['output_len']:<5s} measured {measured:>9.1f} "
              f"estimated {predicted:>9.1f} ({err:+.0%})")
    for metric, errs in sorted(by_metric.items()):
        errs.sort()
        p90 = errs[min(len(errs) - 1, round(0.9 * len(errs) + 0.5) - 1)]
        print(f"{metric}: n {len(errs)}, median |error| {statistics.median(errs):.0%}, p90 {p90:.0%}")
    all_errs = sorted(e for errs in by_metric.values() for e in errs)
    print(f"all: n {len(all_errs)}, median |error| {statistics.median(all_errs):.0%}")


def fit() -> dict[str, float]:
    built = [(row, setup(row)[0]) for row in rows()]
    built = [(r, b) for r, b in built if b is not None]
    base = perf.constants()
    best, best_loss = None, math.inf
    def consts(dc: float, pc: float, lat: float, over: float) -> dict:
        return {"efficiency": {**base["efficiency"], "decode_compute": dc, "prefill_compute": pc},
                "comm": {"allreduce_latency_us": lat, "step_overhead_ms": over}}

    for dc in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        for pc in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            for lat in (5.0, 10.0, 20.0, 30.0):
                for over in (0.0, 1.0, 2.0, 3.0, 4.0, 6.0):
                    trial = consts(dc, pc, lat, over)
                    perf.constants = lambda c=trial: c
                    loss = sum(abs(math.log(estimate(r, *b) / float(r["value"]))) for r, b in built)
                    if loss < best_loss:
                        best, best_loss = (dc, pc, lat, over), loss
    chosen = consts(*best)
    perf.constants = lambda c=chosen: c
    return {"decode_compute": best[0], "prefill_compute": best[1], "allreduce_latency_us": best[2],
            "step_overhead_ms": best[3], "rows": len(built)}


def main() -> None:
    if "--fit" in sys.argv:
        found = fit()
        print("fitted:", found)
        if "--write" in sys.argv:
            OUT.write_text(
                "# Achieved fractions of the catalog's peak figures, used by kvplan.perf. Written by\n"
                "# benchmarks/perf_compare.py --fit --write from benchmarks/perf_measurements.csv.\n"
                "[efficiency]\nbandwidth = 0.8\n"
                f"decode_compute = {found['decode_compute']}\nprefill_compute = {found['prefill_compute']}\n"
                'source = "bandwidth 0.8 stated (aiconfigurator mem_bw_empirical_scaling_factor, gpus-NOTES.md '
                f'section 2); compute fractions and all-reduce latency fitted on {found["rows"]} published '
                'measurements (benchmarks/perf_measurements.csv)"\n\n'
                f"[comm]\nallreduce_latency_us = {found['allreduce_latency_us']}\n"
                f"step_overhead_ms = {found['step_overhead_ms']}\n", encoding="utf-8")
            print(f"wrote {OUT}")
    report(compare())


if __name__ == "__main__":
    main()
