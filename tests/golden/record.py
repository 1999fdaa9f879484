"""Run every command of commands.txt and write its golden file (stdout with timing fields blanked, stderr,
exit code). Only in a commit that says which outputs moved and why: `python tests/golden/record.py`."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from click.testing import CliRunner

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TIMING = re.compile(r'("search_seconds": )[0-9.eE+-]+')


def commands() -> list[str]:
    lines = (HERE / "commands.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def golden_path(index: int, command: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", command.lower()).strip("-")[:60]
    return HERE / f"{index:03d}-{slug}.txt"


def run(command: str) -> str:
    """The command's outcome as the golden text: command, exit code, stderr, stdout (timings blanked)."""
    from kvplan.cli import main

    result = CliRunner().invoke(main, shlex.split(command), catch_exceptions=False)
    stdout = TIMING.sub(r"\g<1>0", result.stdout)
    return f"$ kvplan {command}\nexit {result.exit_code}\n--- stderr\n{result.stderr}--- stdout\n{stdout}"


if __name__ == "__main__":
    import os
    import tempfile

    os.chdir(ROOT)
    os.environ.update(HF_HUB_OFFLINE="1", HF_HOME=tempfile.mkdtemp())  # as the test runs: no Hub, no cache
    for old in HERE.glob("[0-9][0-9][0-9]-*.txt"):
        old.unlink()
    for i, command in enumerate(commands()):
        golden_path(i, command).write_text(run(command), encoding="utf-8")
        print(i, command, file=sys.stderr)
