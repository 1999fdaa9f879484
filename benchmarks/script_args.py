"""Command lines of the benchmark scripts: `--help` from the script's docstring, a one-line error on bad input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ENGINE_LOGS = Path(__file__).resolve().parent / "engine_logs.csv"


def parser(doc: str | None, engine_logs: bool = False) -> argparse.ArgumentParser:
    """The script's parser; `engine_logs`: it takes the startup-log table as an optional argument."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if engine_logs:
        p.add_argument("csv", nargs="?", type=Path, default=ENGINE_LOGS,
                       help="the startup-log table (default: benchmarks/engine_logs.csv)")
    return p


def run(main: Callable[[], None]) -> None:
    """Run `main`; kvplan's own errors (a file that cannot be read, a bad row) end it with their one line."""
    from kvplan.errors import KvplanError

    try:
        main()
    except KvplanError as e:
        sys.exit(f"error: {e}")
