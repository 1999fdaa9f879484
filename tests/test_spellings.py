"""The engines' own spellings and one-line errors (#10): token counts, dtypes, engine and GPU names as users copy
them, usage errors in one line, a busy port refused before serving."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

import kvplan
from kvplan.cli import main
from kvplan.errors import InputError
from kvplan.units import parse_tokens


def run(*args: str, **kw):
    return CliRunner().invoke(main, list(args), **kw)


def test_token_counts_read_as_vllm_reads_them():
    # engine/arg_utils.py human_readable_int: lower case decimal, upper case binary
    assert parse_tokens("8k") == 8_000 and parse_tokens("128k") == 128_000 and parse_tokens("25.6k") == 25_600
    assert parse_tokens("32K") == 32_768 and parse_tokens("1M") == 1_048_576 and parse_tokens("8,192") == 8192
    with pytest.raises(InputError, match="no decimals with a binary suffix"):
        parse_tokens("1.5K")
    with pytest.raises(InputError, match="not a token count"):
        parse_tokens("lots")
    data = json.loads(run("plan", "llama-3.1-8b", "--gpu", "h100", "--seq", "8k", "--max-model-len", "32K",
                          "--json").stdout)
    assert data["seq"] == 8000 and data["scenarios"][0]["engine"]["max_model_len"] == 32768


def test_dtypes_and_engines_as_vllm_and_transformers_spell_them():
    data = json.loads(run("plan", "llama-3.1-8b", "--gpu", "h100", "--dtype", "half", "--kv-dtype", "fp8_e5m2",
                          "--engine", "vllm-v1", "--json").stdout)
    assert data["deployment"]["activation_dtype"] == "fp16" and data["deployment"]["kv_dtype"] == "fp8"
    assert data["deployment"]["engine"] == "vllm"
    assert kvplan.plan("llama-3.1-8b", gpu="rtx4090", engine="llama.cpp").engine.engine == "llamacpp"
    assert json.loads(run("plan", "llama-3.1-8b", "--gpu", "h100", "--dtype", "bfloat16",
                          "--json").stdout)["deployment"]["activation_dtype"] == "bf16"


@pytest.mark.parametrize(("printed", "alias"), [
    ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA L4", "l4"), ("H200-141GB", "h200"), ("A100-SXM4-80GB", "a100"),
    ("Instinct MI300X", "mi300x"), ("AMD Instinct MI300X", "mi300x"), ("Tesla T4", "t4"),
    # nvidia-smi's names of the PCIe A100 80GB (not the SXM4 part, whose bandwidth and power differ) and of the
    # workstation cards
    ("NVIDIA A100 80GB PCIe", "a100-pcie"), ("NVIDIA A100-PCIE-40GB", "a100-pcie-40g"),
    ("NVIDIA RTX 6000 Ada Generation", "rtx6000-ada"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "rtx-pro-6000"),
    ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "rtx-pro-6000")])
def test_gpu_names_as_nvidia_smi_and_clouds_print_them(printed, alias):
    assert kvplan.get_gpu(printed).alias == alias


def test_unknown_gpu_suggests_only_aliases_that_exist():
    r = run("plan", "falcon-7b", "--gpu", "h10")
    assert r.exit_code == 2 and "did you mean" in r.output
    names = r.output.split("did you mean: ")[1].split("?")[0].split(", ")
    assert all(kvplan.get_gpu(n).alias == n for n in names)


@pytest.mark.parametrize("args", [
    ("plan", "falcon-7b", "--gpu", "a10g", "--tp", "two"),
    ("plan", "falcon-7b", "--engine", "nope"),
    ("plan", "--bogus"),
    ("fit", "llama-3.1-8b"),
    ("plot", "bars", "falcon-7b", "-o", "x.png"),
])
def test_usage_errors_are_one_line_and_exit_2(args):
    r = run(*args)
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kvplan: error: "), r.output


def test_serve_on_a_busy_port_says_so_before_serving():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run("serve", "--port", str(port))
    assert r.exit_code == 2 and "cannot serve on 127.0.0.1" in r.output and "serving on" not in r.output


def test_validate_missing_columns_names_what_a_pip_user_can_act_on(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("engine,model\nvLLM V1,x\n")
    r = run("validate", str(bad))
    assert r.exit_code == 2 and "shared/" not in r.output and "kv_available_gib" in r.output


def test_models_table_shows_whole_aliases_at_80_columns():
    r = run("models", env={"COLUMNS": "80"})
    assert "granite-3.1-2b-instruct-abliterated" in r.output


def test_validate_table_has_a_gpu_column_and_integer_tokens():
    r = run("validate", "benchmarks/engine_logs.csv")
    assert "GPU" in r.output and "RTX 3090" in r.output
    assert "31,200 /" in r.output and "e+0" not in r.output  # tokens as integers, not 3.12e+04


def test_fit_prints_skipped_layouts_as_one_line():
    r = run("fit", "llama-3.1-70b", "--users", "20", "--seq", "4096", "--gpu", "h100")
    assert sum(ln.strip().startswith("skipped") for ln in r.output.splitlines()) <= 1
