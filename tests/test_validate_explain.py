"""`kvplan validate` (CSV of engine figures) and `kvplan explain` (a startup log)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from kvplan.cli import main
from kvplan.validate import read_rows

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "engine_logs.csv"
LOGS = Path(__file__).parent / "logs"


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(BENCH, encoding="utf-8") as f:
        columns = next(csv.reader(f))
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def bench_row(index: int) -> dict[str, str]:
    with open(BENCH, encoding="utf-8") as f:
        return list(csv.DictReader(f))[index]


def test_validate_json_shape_and_skip_reasons(tmp_path):
    csv_path = write_rows(tmp_path / "rows.csv", [bench_row(21), bench_row(46), {"engine": "Mystery", "model": "x"}])
    r = run("validate", str(csv_path), "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    first, granite, mystery = data["rows"]
    assert first["modelled"] and set(first["figures"]) == {"weights", "kv_tokens_given_pool", "kv_pool",
                                                            "kv_tokens", "max_concurrency", "non_torch",
                                                            "activation_peak"}  # the row logs both terms
    assert first["figures"]["kv_tokens"]["logged"] == 476016
    assert not granite["modelled"] and "no config.json" in granite["reason"]
    assert "Mystery" in mystery["reason"]
    assert data["counts"] == {"read": 3, "modelled": 1, "skipped": 2}
    assert data["summary"]["kv_tokens"]["n"] == 1
    assert set(data["summary"]["weights"]) == {"n", "median_abs_rel_err", "p90_abs_rel_err"}


def test_validate_full_bench_reports_every_row():
    data = json.loads(run("validate", str(BENCH), "--json").output)
    assert data["counts"]["read"] == len(read_rows(BENCH))
    assert all(r["modelled"] or r["reason"] for r in data["rows"])


def test_validate_table_and_bad_files(tmp_path):
    r = run("validate", str(BENCH))
    assert r.exit_code == 0 and "summary" in r.output and "kv_tokens_given_pool" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    r = run("validate", str(bad))
    assert r.exit_code == 2 and "lacks the column" in r.output
    r = run("validate", str(tmp_path / "missing.csv"))
    assert r.exit_code == 2 and "cannot read" in r.output


def test_explain_v019_log_matches():
    log = LOGS / "vllm_v1_0.19_tp1_debug.log"
    r = run("explain", str(log), "--gpu", "h100", "--json", "--target-concurrency", "50")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert set(data) >= {"parsed", "logged", "predicted", "suggestions"}
    assert data["parsed"]["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    for name in ("weights", "kv_pool", "kv_tokens", "max_concurrency"):
        assert abs(data["predicted"][name] - data["logged"][name]) <= 0.01 * data["logged"][name], name
    assert data["flags"] == []
    fp8 = next(s for s in data["suggestions"] if "kv-cache-dtype fp8" in s["change"])
    assert fp8["meets_target"] is True and fp8["predicted"]["max_concurrency"] > 50


def test_explain_from_stdin_table():
    text = (LOGS / "vllm_v1_0.19_tp1_debug.log").read_text()
    r = run("explain", "-", "--gpu", "h100", stdin=text)
    assert r.exit_code == 0 and "kv_tokens" in r.output and "what each change would give" in r.output


def test_explain_says_what_is_missing():
    r = run("explain", "-", stdin="hello world\nnothing to see\n")
    assert r.exit_code == 2 and "no vLLM or SGLang startup lines" in r.output
    r = run("explain", str(LOGS / "vllm_v1_engine_core_dp0.log"))
    assert r.exit_code == 2 and "--model" in r.output
    r = run("explain", str(LOGS / "vllm_v1_0.19_tp1_debug.log").replace(".log", ".nope"))
    assert r.exit_code == 2 and "cannot read" in r.output


def test_validate_reads_serving_features_from_the_notes():
    """A row's notes carry the flags its log ran with; validate plans with them (the spellings users copy: flags,
    keyword arguments, vLLM's --speculative-config JSON, SGLang's --speculative-algorithm)."""
    from kvplan.planning import plan
    from kvplan.validate import row_setup, serving_features

    assert serving_features("--enable-lora --max-loras 4 --max-lora-rank 64") == {"max_loras": 4,
                                                                                 "max_lora_rank": 64}
    assert serving_features("LLM(..., cpu_offload_gb=13, enforce_eager=True)") == {"cpu_offload_gb": 13.0}
    assert serving_features('--speculative-config \'{"method": "mtp", "num_speculative_tokens": 2}\'') == {
        "speculative_method": "mtp", "num_speculative_tokens": 2, "draft_model": None}
    assert serving_features("--speculative-algorithm NEXTN --speculative-num-draft-tokens 4") == {
        "speculative_method": "NEXTN", "num_speculative_tokens": 4, "draft_model": None}
    assert serving_features("--kv-offloading-size 40 --kv-offloading-backend lmcache") == {
        "kv_offloading_size": 40.0, "kv_offloading_backend": "lmcache"}
    row = {"engine": "vLLM V1", "engine_version": "0.19.0", "model": "meta-llama/Llama-3.1-8B", "gpu": "L4",
           "gpu_count": "1", "tensor_parallel": "1", "max_model_len": "4096",
           "notes": "--cpu-offload-gb 10 --enable-lora --max-loras 2"}
    setup = row_setup(row, None)
    assert setup.settings.cpu_offload_gb == 10 and setup.settings.max_loras == 2
    s = scenario_of(setup)
    p = plan("llama-3.1-8b", gpu="l4", seq=4096, max_model_len=4096, engine_version="0.19.0", cpu_offload_gb=10,
             max_loras=2)
    assert s.budgets[0].kv_pool == p.scenarios[0].budgets[0].kv_pool


def scenario_of(setup):
    from kvplan.engines import scenario

    return scenario(setup.settings, setup.dep, setup.gpu, setup.util, 4096, 1, 1)


def test_a_sliced_or_shared_gpu_without_its_total_is_not_predicted_end_to_end():
    from kvplan.validate import validate_row

    row = {"source": "x", "engine": "vLLM V1", "model": "meta-llama/Llama-3.1-8B", "gpu_count": "1",
           "tensor_parallel": "1", "max_model_len": "4096", "kv_available_gib": "3.0", "kv_tokens": "24000",
           "gpu": "NVIDIA A100-80GB vGPU slice (about 24GB)"}
    r = validate_row(0, row, None)
    assert "kv_pool" not in r.figures and "kv_pool" in r.skipped
    assert "kv_tokens_given_pool" in r.figures
    whole = validate_row(0, {**row, "gpu": "NVIDIA A100-80GB"}, None)
    assert "kv_pool" in whole.figures


def test_a_log_of_another_quantization_of_the_configs_model_is_sized_in_the_logged_format():
    """vllm-project/vllm#14447 (davidsyoung, 2025-04-12) serves cognitivecomputations/DeepSeek-V3-0324-AWQ at
    TP 16 and logs 'model weights take 21.21GiB' per rank; the row's config is DeepSeek-V3's own, stored in fp8.
    Sized as fp8 that is ~40 GiB per rank; in the logged int4 (awq_marlin) format it must land near the log."""
    from kvplan.validate import validate_row

    row = bench_row(66)
    assert "DeepSeek-V3-0324-AWQ" in row["model"] and row["quantization"] == "awq_marlin"
    r = validate_row(66, row, None)
    weights = r.figures["weights"]
    assert weights["logged"] == 21.21 and weights["rel_err"] < 0.01
    assert any("logged checkpoint is awq" in a for a in r.assumptions)
    # the same config logged in its own format keeps the config's (a stated method of the same width changes nothing)
    same = validate_row(66, {**row, "quantization": "fp8", "weight_scheme": "fp8"}, None)
    assert same.figures["weights"]["predicted"] > 35 and not any("logged checkpoint" in a for a in same.assumptions)
