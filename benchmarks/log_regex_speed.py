"""Time the startup-log parser on adversarial lines (#11.1): the time must grow linearly with the line's length.

    python benchmarks/log_regex_speed.py

For each adversarial line shape, parse lines of n and 2n and 4n characters (median of 5) and print the seconds
and the ratio of each doubling; a linear parser doubles (about 2x), a quadratic one quadruples.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from pathlib import Path

from script_args import parser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kvplan.errors import KvplanError
from kvplan.logs import MAX_LINE, parse_log

SHAPES = {
    "digits": "1",
    "on NVIDIA": "on NVIDIA ",
    "Load weight end.": "Load weight end. ",
    "KV Cache is allocated.": "KV Cache is allocated. ",
    "Model loading took": "Model loading took ",
    "GPU n:": "GPU 0: ",
}


def seconds(line: str) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        with contextlib.suppress(KvplanError):
            parse_log(line + "\nAvailable KV cache memory: 1.0 GiB")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    parser(__doc__).parse_args()
    sizes = (MAX_LINE // 4, MAX_LINE // 2, MAX_LINE)
    print(f"line lengths {sizes} characters (longer lines are skipped: MAX_LINE = {MAX_LINE:,})")
    for name, unit in SHAPES.items():
        t = [seconds((unit * (n // len(unit) + 1))[:n]) for n in sizes]
        print(f"{name:24s} " + "  ".join(f"{x * 1000:7.2f} ms" for x in t)
              + f"   doubling ratios {t[1] / t[0]:.2f}, {t[2] / t[1]:.2f}")
