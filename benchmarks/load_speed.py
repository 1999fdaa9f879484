"""Time kvplan.batching's simulation (one `kvplan perf --concurrency/--rate` answer, the plan excluded).

    python benchmarks/load_speed.py

Each workload is run 3 times in a warm process; the median is printed with the passes simulated.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from script_args import parser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kvplan import batching
from kvplan.planning import plan

CASES = [  # model, gpu, tp, engine, prompt, output, num_prompts, concurrency, rate
    ("llama-3.1-8b", "h100", 1, "vllm", 1024, 1024, 1000, 1, None),
    ("llama-3.1-8b", "h100", 1, "vllm", 1024, 1024, 1000, 64, None),
    ("llama-3.1-8b", "h100", 1, "vllm", 1024, 1024, 1000, None, 4.0),
    ("llama-3.1-8b", "h100", 1, "vllm", 1024, 1024, 1000, None, None),
    ("llama-3.1-8b", "h100", 1, "sglang", 1024, 1024, 1000, 256, None),
    ("llama-3.1-70b", "h100", 4, "vllm", 2048, 512, 1000, 128, None),
    ("deepseek-v3", "h200", 8, "vllm", 1000, 1000, 1000, 64, None),
    ("llama-3.1-405b", "mi300x", 8, "vllm", 128, 4096, 1500, None, None),
]


def main() -> None:
    parser(__doc__).parse_args()
    print("| model | GPU | engine | prompt/output | requests | load | passes | median seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for model, gpu, tp, engine, p, o, n, c, r in CASES:
        held = plan(model, gpu=gpu, tp=tp, engine=engine, seq=p + o,
                    quant="fp8" if model == "llama-3.1-405b" else None)
        work = batching.Workload(p, o, n, concurrency=c, rate=r)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            result = batching.under_load(held, work)
            times.append(time.perf_counter() - t)
        load = f"{c} clients" if c else (f"{r:g} req/s" if r else "all at once")
        print(f"| {model} | {gpu} x {tp} | {engine} | {p}/{o} | {n} | {load} | {result.passes:,} | "
              f"{statistics.median(times):.3f} |")


if __name__ == "__main__":
    main()
