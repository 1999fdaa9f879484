"""The command line: outputs, JSON schema keys, and one-line errors with exit code 2 (never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from kvplan.cli import main

REQUIRED_KEYS = {"params", "weights_bytes", "kv_bytes_per_token", "kv_cache_bytes"}
SCENARIO_KEYS = {"kv_pool_bytes", "max_concurrent_requests", "max_seq_len", "fits"}


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_main_job_table():
    r = run("plan", "falcon-7b", "--gpu", "a10g")
    assert r.exit_code == 0, r.output
    assert "22.49 GiB" in r.output and "24 GB sold" in r.output and "8 KiB" in r.output


def test_side_by_side_scenarios_json():
    r = run("plan", "falcon-7b", "--gpu", "a10g", "--gpu", "h100", "--util", "0.7", "--util", "1.0", "--seq", "1000",
            "--json")
    data = json.loads(r.output)
    assert data.keys() >= REQUIRED_KEYS
    assert [(s["gpu"], s["util"]) for s in data["scenarios"]] == [
        ("a10g", 0.7), ("a10g", 1.0), ("h100", 0.7), ("h100", 1.0)]
    assert all(s.keys() >= SCENARIO_KEYS for s in data["scenarios"])


def test_custom_gpu_memory_decimal_and_binary():
    gib = json.loads(run("plan", "llama-3.1-8b", "--gpu-memory", "24GiB", "--json").output)
    gb = json.loads(run("plan", "llama-3.1-8b", "--gpu-memory", "24GB", "--json").output)
    assert gib["scenarios"][0]["gpu_memory_bytes"] == 24 * 2**30
    assert gb["scenarios"][0]["gpu_memory_bytes"] == 24 * 10**9


def test_explain_prints_substituted_formulas():
    r = run("plan", "falcon-7b", "--gpu", "a10g", "--util", "0.7", "--seq", "1000", "--explain")
    assert r.exit_code == 0
    assert "32 full_attention layers x 1 KV heads x (K 64 + V 64) x 2 B = 8,192 B per token" in r.output
    assert "ceil(CUDA total 22,587 MiB" in r.output and "activation peak" in r.output


def test_inspect_json_has_params_and_layers():
    data = json.loads(run("inspect", "gemma-2-9b", "--json").output)
    assert data["params"] == 9_241_705_984
    assert [layer["kv_kind"] for layer in data["layers"][:2]] == ["sliding_window", "full_attention"]
    assert sum(g["params"] for g in data["tensor_groups"]) == data["params"]


def test_inspect_table():
    r = run("inspect", "deepseek-v2-lite")
    assert r.exit_code == 0 and "576 x 2048" in r.output and "latent 512 + rope 64" in r.output


def test_models_and_gpus_lists_filter():
    models = json.loads(run("models", "llama-3.1", "--json").output)
    assert models and all("llama-3.1" in (m["alias"] + " ".join(m["aliases"])).lower() for m in models)
    gpus = json.loads(run("gpus", "h100", "--json").output)
    assert {g["alias"] for g in gpus} == {"h100", "h100-pcie", "h100-nvl"}


def test_not_fitting_is_a_result_not_an_error():
    r = run("plan", "llama-3.1-70b", "--gpu", "a10g", "--json")
    assert r.exit_code == 0
    s = json.loads(r.output)["scenarios"][0]
    assert s["fits"] is False and s["shortfall_bytes"] > 0
    assert run("plan", "llama-3.1-70b", "--gpu", "a10g", "--require-fit").exit_code == 1


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "falcon-7x", "--gpu", "a10g"], "did you mean: falcon-7b"),
    (["plan", "falcon-7b", "--gpu", "a10x"], "did you mean"),
    (["plan", "falcon-7b", "--gpu", "a10g", "--util", "1.5"], "--util must be in (0, 1]"),
    (["plan", "falcon-7b", "--gpu", "a10g", "--util", "0"], "--util must be in (0, 1]"),
    (["plan", "falcon-7b", "--seq", "0"], "--seq must be a positive integer"),
    (["plan", "falcon-7b", "--batch", "-3"], "--batch must be a positive integer"),
    (["plan", "falcon-7b", "--tp", "2"], "does not divide the 71 attention heads"),
    (["plan", "falcon-7b", "--gpu-memory", "24"], "write a number with a unit"),
    (["plan", "falcon-7b", "--kv-memory", "-1GiB"], "is not a size"),
    (["plan", "--layers", "32", "--hidden", "4544"], "need --params"),
    (["plan", "--layers", "0", "--hidden", "4544", "--params", "7B"], "--layers must be a positive"),
    (["plan", "--layers", "32", "--hidden", "4544", "--params", "seven"], "is not a number"),
    (["plan"], "give a MODEL"),
    (["plan", "llama-3.1-8b", "--quant", "int3"], "unknown quantization scheme"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"],
                                   "num_hidden_layers": 2}))
    negative = tmp_path / "negative.json"
    negative.write_text(json.dumps({"model_type": "llama", "hidden_size": -64, "num_hidden_layers": 2,
                                    "num_attention_heads": 4, "vocab_size": 10, "intermediate_size": 8}))
    exotic = tmp_path / "exotic.json"
    exotic.write_text(json.dumps({"model_type": "rwkv7", "hidden_size": 64}))
    folder = tmp_path / "empty"
    folder.mkdir()
    for path, message in [(bad, "is not valid JSON (line 1"), (missing, "lacks 'hidden_size'"),
                          (negative, "'hidden_size' must be at least 1"), (exotic, "'rwkv7' is not supported"),
                          (folder, "holds no config.json"), (tmp_path / "nope.json", "no such file")]:
        r = run("plan", str(path))
        assert r.exit_code == 2 and message in r.output, (path, r.output)


def test_config_folder_with_side_file(tmp_path):
    from kvplan.model import catalog

    (tmp_path / "config.json").write_text(catalog.lookup("llama-2-7b").path().read_text())
    (tmp_path / "quantize_config.json").write_text(json.dumps({"bits": 4, "group_size": 128, "desc_act": False}))
    data = json.loads(run("plan", str(tmp_path), "--json").output)
    assert data["deployment"]["weight_format"] == "gptq int4 (group 128)"


def test_real_process_exit_code_and_stderr():
    """The installed entry point: error on stderr, nothing on stdout, status 2."""
    r = subprocess.run([sys.executable, "-m", "kvplan.cli", "plan", "nonexistent-model"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("kvplan: error: unknown model")


def test_readme_python_example_runs():
    # the README's Python API block, executed as written (catalog models only, no network)
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = text.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["r"].best is not None and namespace["p"].scenarios
