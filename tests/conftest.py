"""Shared fixtures: the embedded configs and a transformers meta-device parameter oracle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvplan.model import catalog

CONFIG_DIR = Path(str(catalog.DATA))


def embedded_configs() -> list[Path]:
    """Every model config.json shipped in the package (side files excluded)."""
    return sorted({catalog.lookup(e.alias).path() for e in catalog.models()})


@pytest.fixture(scope="session")
def published_counts() -> dict[str, str]:
    import csv

    with open(CONFIG_DIR / "param_counts.csv", encoding="utf-8") as f:
        return {row["model"]: row for row in csv.DictReader(f)}


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
