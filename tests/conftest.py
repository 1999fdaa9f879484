"""Shared fixtures: the embedded configs, a transformers meta-device parameter oracle, a live `kvplan serve`
server and the long fuzz's cases."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
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


@contextlib.contextmanager
def live_server() -> Iterator[tuple[str, int]]:
    """The app under the server configuration `kvplan serve` runs, on a free loopback port, in a thread."""
    import socket
    import threading
    import time

    import uvicorn

    from kvplan.web.app import create_app
    from kvplan.web.server import config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    running = uvicorn.Server(config(create_app(), "127.0.0.1", port))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(200):
        if running.started:
            break
        time.sleep(0.05)
    try:
        yield ("127.0.0.1", port)
    finally:
        running.should_exit = True
        thread.join(timeout=5)


def fuzz_module():
    """benchmarks/fuzz.py (the long hostile-input fuzz), loaded for its input families."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("kvplan_fuzz", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
