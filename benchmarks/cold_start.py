"""Cold-start time of the CLI: median wall time of fresh processes (python benchmarks/cold_start.py)."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time

COMMANDS = [
    ["kvplan", "--help"],
    ["kvplan", "plan", "falcon-7b", "--gpu", "a10g"],
    ["kvplan", "plan", "deepseek-v3", "--gpu", "h200", "--tp", "8", "--json"],
]


def median_seconds(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    from script_args import parser

    parser(__doc__).parse_args()
    if not shutil.which("kvplan"):
        raise SystemExit("install kvplan first: pip install .")
    for cmd in COMMANDS:
        print(f"{median_seconds(cmd):6.3f} s  {' '.join(cmd)}")
