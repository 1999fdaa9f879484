"""Golden outputs: every command of tests/golden/commands.txt gives, byte for byte, the stdout (timing fields
blanked), stderr and exit code recorded in tests/golden/. Recorded before the engine-contract redesign; a
change that moves an output regenerates them (tests/golden/record.py) in a commit of its own saying why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import record

COMMANDS = record.commands()


def test_golden_set_is_complete():
    recorded = sorted(p.name for p in record.HERE.glob("[0-9][0-9][0-9]-*.txt"))
    assert recorded == sorted(record.golden_path(i, c).name for i, c in enumerate(COMMANDS))
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize(("index", "command"), list(enumerate(COMMANDS)), ids=[c[:70] for c in COMMANDS])
def test_golden(index, command, monkeypatch, tmp_path):
    monkeypatch.chdir(record.ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    expected = record.golden_path(index, command).read_text(encoding="utf-8")
    assert record.run(command) == expected
