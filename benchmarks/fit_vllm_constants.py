"""Fit vLLM's non-config memory constants on the public startup logs, and write them for kvplan.

    python benchmarks/fit_vllm_constants.py [benchmarks/engine_logs.csv] [--write]

The fit itself is kvplan.engines.vllm_fit (which `kvplan validate --leave-one-version-out` reruns without each
band); this script prints its result and, with --write, replaces src/kvplan/data/vllm-constants.toml.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from script_args import parser, run  # noqa: E402

from kvplan.engines.vllm_fit import fit  # noqa: E402
from kvplan.validate import read_rows, row_setup  # noqa: E402

OUT = ROOT / "src" / "kvplan" / "data" / "vllm-constants.toml"
HEADER = ["# Constants of vLLM's memory profile that a config cannot give. Written by",
          "# benchmarks/fit_vllm_constants.py (kvplan.engines.vllm_fit) from the public startup logs in",
          "# benchmarks/engine_logs.csv (never edit by hand: rerun the script)."]


def toml(constants: dict) -> str:
    lines = list(HEADER)
    for section in ("non_torch", "activation", "cudagraph"):
        lines += ["", f"[{section}]"]
        for k, v in constants[section].items():
            lines.append(f"{k} = {v!r}" if isinstance(v, float) else f"{k} = {_quoted(v)}")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main() -> None:
    p = parser(__doc__, engine_logs=True)
    p.add_argument("--write", action="store_true", help="replace src/kvplan/data/vllm-constants.toml")
    args = p.parse_args()
    path = args.csv
    constants = fit(read_rows(path), lambda r: row_setup(r, path.parent))
    for section in ("non_torch", "activation", "cudagraph"):
        print(f"[{section}]", constants[section])
    if args.write:
        OUT.write_text(toml(constants), encoding="utf-8")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    run(main)
