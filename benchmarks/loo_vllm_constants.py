"""Leave-one-out check of the fitted vLLM constants: how well do they predict a log they were not fitted on?

    python benchmarks/loo_vllm_constants.py [benchmarks/engine_logs.csv]

For every vLLM V1 row that took part in a fit (logged non-torch or activation), the constants are refitted
without that row and the row is predicted end to end (kv_pool, kv_tokens). Prints per-row errors and the
median / p90, to set beside `kvplan validate` (which uses constants fitted on all rows).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import fit_vllm_constants as fit  # noqa: E402

from kvplan.engines import common, vllm  # noqa: E402
from kvplan.validate import read_rows, validate_row  # noqa: E402


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "benchmarks" / "engine_logs.csv")
    rows = read_rows(path)
    fitted = {i for i, _ in fit.rows_with(path, "non_torch_gib")} | {i for i, _ in fit.rows_with(
        path, "activation_peak_gib")}
    base = common.fitted_constants()
    errors: dict[str, list[float]] = {"kv_pool": [], "kv_tokens": []}
    original = common.fitted_constants
    try:
        for i in sorted(fitted):
            held_out = frozenset({i})
            act = fit.fit_activation(path, held_out)
            consts = {**base, "non_torch": {**base["non_torch"], **fit.fit_non_torch(path, held_out)},
                      "activation": {**base["activation"], **{k: v for k, v in act.items() if not k.startswith("v0_")}}}
            # the engines read their constants through this function
            common.fitted_constants = vllm.fitted_constants = lambda c=consts: c
            result = validate_row(i, rows[i], path.parent)
            line = [f"row {i:2d}"]
            for name in errors:
                if name in result.figures:
                    errors[name].append(result.figures[name]["rel_err"])
                    line.append(f"{name} {result.figures[name]['rel_err']:.2%}")
            print("  ".join(line))
    finally:
        common.fitted_constants = vllm.fitted_constants = original
    for name, errs in errors.items():
        errs.sort()
        p90 = errs[min(len(errs) - 1, round(0.9 * len(errs) + 0.5) - 1)]
        print(f"{name}: n {len(errs)}, leave-one-out median {statistics.median(errs):.2%}, p90 {p90:.2%}")


if __name__ == "__main__":
    main()
