"""Time the full `kvplan fit` search (python benchmarks/search_speed.py).

For each model: every GPU in the catalog x 1-8 GPUs per replica x every (TP, PP) layout x 3 weight precisions
(the checkpoint's, fp8, int4) x 2 KV dtypes (auto, fp8), each candidate sized with the vLLM accounting and the
speed estimates. Reports the median of 5 searches in one process (the first, which also reads the catalogs and the
model, is shown apart) and the candidates evaluated.
"""

from __future__ import annotations

import statistics
import time

from script_args import parser

from kvplan.fit import DEFAULT_GPUS, Workload, search
from kvplan.hardware import gpus
from kvplan.model.load import load_model

MODELS = ["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3", "gemma-3-27b-it"]
WORKLOAD = Workload(users=100, prompt=3072, output=1024, min_tokens_per_sec=20, max_ttft=2.0)


def time_search(name: str, runs: int = 5) -> tuple[float, float, int, int, float]:
    start = time.perf_counter()
    spec = load_model(name)
    every = [g.alias for g in gpus()]
    result = search(spec, WORKLOAD, every, allow_quant=True, allow_fp8_kv=True)
    first = time.perf_counter() - start

    def median(devices: list[str]) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            search(spec, WORKLOAD, devices, allow_quant=True, allow_fp8_kv=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return first, median(every), result.evaluated, len(result.candidates), median(list(DEFAULT_GPUS))


if __name__ == "__main__":
    parser(__doc__).parse_args()
    print(f"{len(gpus())} GPU types; workload {WORKLOAD.users} users x {WORKLOAD.seq} tokens, with speed targets")
    print(f"{'model':18} {'first s':>8} {'median s':>9} {'evaluated':>10} {'fit':>6} {'default set s':>14}")
    for name in MODELS:
        first, median, evaluated, fitting, default = time_search(name)
        print(f"{name:18} {first:8.3f} {median:9.3f} {evaluated:10,} {fitting:6,} {default:14.3f}")
