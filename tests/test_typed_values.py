"""Typed values between layers: inspect, validate, explain and fit return dataclasses whose `to_dict()` is
exactly what the CLI prints with --json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner

from kvplan.cli import main
from kvplan.deployment import Deployment
from kvplan.engines.base import serve_name
from kvplan.explain import Diagnosis, Suggestion, diagnose
from kvplan.fit import FitResult, Rejection, Workload, search
from kvplan.inventory import Inventory, LayerRow, TensorGroup, inventory
from kvplan.model.load import load_model
from kvplan.validate import FigureSummary, RowResult, ValidationReport, validate

ROOT = Path(__file__).resolve().parents[1]
LOGS = Path(__file__).parent / "logs"


def cli_json(*args: str) -> object:
    r = CliRunner().invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def as_json(data: object) -> object:
    """What json.dumps / json.loads make of it (tuples become lists)."""
    return json.loads(json.dumps(data))


def test_inventory_is_typed_and_matches_inspect_json():
    inv = inventory(Deployment(load_model("llama-3.1-8b"), tp=1, dtype=None, quant=None, kv_dtype="auto"))
    assert dataclasses.is_dataclass(inv) and isinstance(inv, Inventory)
    assert all(isinstance(g, TensorGroup) for g in inv.tensor_groups) and inv.tensor_groups
    assert all(isinstance(layer, LayerRow) for layer in inv.layers) and len(inv.layers) == 32
    assert dataclasses.is_dataclass(inv.model)
    assert as_json(inv.to_dict()) == cli_json("inspect", "llama-3.1-8b")


def test_validation_report_is_typed_and_matches_validate_json():
    csv_path = ROOT / "benchmarks" / "engine_logs.csv"
    report = validate(csv_path)
    assert dataclasses.is_dataclass(report) and isinstance(report, ValidationReport)
    assert all(isinstance(r, RowResult) for r in report.rows)
    assert all(isinstance(s, FigureSummary) for s in report.summary.values())
    assert report.counts.read == len(report.rows)
    assert as_json(report.to_dict()) == cli_json("validate", str(csv_path))


def test_diagnosis_suggestions_are_typed_and_match_explain_json():
    log = LOGS / "vllm_v1_0.19_tp1_debug.log"
    d = diagnose(log.read_text(encoding="utf-8"), gpu="h100", target_concurrency=64, target_len=100000)
    assert dataclasses.is_dataclass(d) and isinstance(d, Diagnosis)
    assert d.suggestions and all(isinstance(s, Suggestion) for s in d.suggestions)
    assert as_json(d.to_dict()) == cli_json("explain", str(log), "--gpu", "h100", "--target-concurrency", "64",
                                            "--target-len", "100000")


def test_suggestion_keys_depend_on_error():
    assert list(Suggestion("x", error="boom").to_dict()) == ["change", "error"]
    assert list(Suggestion("x", predicted={"kv_pool": 1.0}, meets_target=None).to_dict()) == [
        "change", "predicted", "meets_target", "starts"]  # starts: #10.4, whether the engine starts after it


def test_fit_rejections_are_typed_and_match_fit_json():
    args = ["llama-3.1-70b", "--users", "1", "--prompt", "1024", "--output", "128", "--gpu", "t4", "--gpu", "h100",
            "--max-gpus", "1", "--allow-quant"]
    spec = load_model("llama-3.1-70b")
    result = search(spec, Workload(1, 1024, 128), ["t4", "h100"], max_gpus=1, allow_quant=True,
                    model_id=serve_name("llama-3.1-70b", spec))
    assert dataclasses.is_dataclass(result) and isinstance(result, FitResult)
    assert result.rejected and all(isinstance(r, Rejection) for r in result.rejected)
    got, want = as_json(result.to_dict()), cli_json("fit", *args)
    got["search_seconds"] = want["search_seconds"] = None  # timing
    assert got == want
    assert list(want["rejected"]) == [r.family for r in result.rejected]


def test_fit_gpu_given_twice_rejects_each_family_once():
    result = search(load_model("llama-3.1-70b"), Workload(1, 1024, 128), ["t4", "t4"], max_gpus=1)
    families = [r.family for r in result.rejected]
    assert families == sorted(set(families), key=families.index)
