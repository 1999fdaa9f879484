"""Leave-one-row-out check of the fitted vLLM constants: how well do they predict a log they were not fitted on?

    python benchmarks/loo_vllm_constants.py [benchmarks/engine_logs.csv]

For every row some constant is fitted on (kvplan.engines.vllm_fit.fitted_rows), the constants are refitted
without that row and the row is predicted end to end (kv_pool, kv_tokens). The coarser held-out scores, a whole
release band or source left out at a time, are `kvplan validate --leave-one-version-out` and
`--leave-one-source-out`.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from script_args import parser, run  # noqa: E402

from kvplan.engines.common import constants_from  # noqa: E402
from kvplan.engines.vllm_fit import fit, fitted_rows  # noqa: E402
from kvplan.validate import read_rows, row_setup, validate_row  # noqa: E402


def main() -> None:
    path = parser(__doc__, engine_logs=True).parse_args().csv
    rows = read_rows(path)
    setup_of = lambda r: row_setup(r, path.parent)  # noqa: E731
    errors: dict[str, list[float]] = {"kv_pool": [], "kv_tokens": []}
    for i in sorted(fitted_rows(rows, setup_of)):
        with constants_from(fit(rows, setup_of, frozenset({i}))):
            result = validate_row(i, rows[i], path.parent)
        line = [f"row {i:3d}"]
        for name, errs in errors.items():
            if name in result.figures:
                errs.append(result.figures[name]["rel_err"])
                line.append(f"{name} {result.figures[name]['rel_err']:.2%}")
        print("  ".join(line))
    for name, errs in errors.items():
        errs.sort()
        p90 = errs[min(len(errs) - 1, round(0.9 * len(errs) + 0.5) - 1)]
        print(f"{name}: n {len(errs)}, leave-one-row-out median {statistics.median(errs):.2%}, p90 {p90:.2%}")


if __name__ == "__main__":
    run(main)
