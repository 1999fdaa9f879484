"""Launch lines (#10.3): plan prints, per scenario, the engine's command that realises it, like fit does; an int4
scheme that needs a pre-quantized checkpoint never names the bf16 repo as if it would serve."""

from __future__ import annotations

import json

from click.testing import CliRunner

import kvplan
from kvplan.cli import main


def line(model, **kw):
    p = kvplan.plan(model, **kw)
    return p.launch_command(p.scenarios[0])


def test_each_engine_prints_its_own_launch_line():
    assert line("llama-3.1-8b", gpu="h100", tp=2, max_model_len=8192) == (
        "vllm serve meta-llama/Llama-3.1-8B --tensor-parallel-size 2 --gpu-memory-utilization 1 "
        "--max-model-len 8192")  # the default release's own default (0.34: 1.0 with the extensible KV cache)
    p = kvplan.plan("llama-3.1-8b", gpu="h100", engine="sglang", max_model_len=8192)
    fraction = p.scenarios[0].util  # SGLang's own default for an H100 at TP 1
    assert p.launch_command(p.scenarios[0]) == (
        f"python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B --tp-size 1 "
        f"--mem-fraction-static {fraction:.3f} --context-length 8192")
    tgi = line("llama-3.1-8b", gpu="a10g", engine="tgi", max_model_len=4096, max_num_batched_tokens=2048)
    assert tgi == ("text-generation-launcher --model-id meta-llama/Llama-3.1-8B --num-shard 1 --max-total-tokens 4096 "
                   "--max-batch-prefill-tokens 2048")
    # llama.cpp: -c is the whole context over the slots (4 x 8192), q8_0 needs flash attention for V
    assert line("llama-3.1-8b", gpu="rtx4090", engine="llamacpp", seq=8192, batch=4, kv_dtype="int8") == (
        "llama-server -m <a GGUF of meta-llama/Llama-3.1-8B> -c 32768 -np 4 -ngl 999 "
        "--cache-type-k q8_0 --cache-type-v q8_0 -fa on")
    assert line("llama-3.1-8b", gpu="h100", engine="none") is None  # no engine, no launch line


def test_replicas_pipeline_and_flags_set_on_purpose_are_on_the_line():
    cmd = line("llama-3.1-70b", gpu="h100", tp=2, pp=2, gpus=8, max_model_len=8192, max_num_seqs=64,
               kv_dtype="fp8", enforce_eager=True)
    for flag in ("--tensor-parallel-size 2", "--pipeline-parallel-size 2", "--data-parallel-size 2",
                 "--max-num-seqs 64", "--enforce-eager", "--kv-cache-dtype fp8"):
        assert flag in cmd


def test_quantized_schemes_need_the_right_checkpoint():
    int4 = line("llama-3.1-70b", gpu="h100", tp=2, quant="awq", max_model_len=8192)
    assert int4.startswith("vllm serve <a awq int4 checkpoint of meta-llama/Llama-3.1-70B> ")
    fp8 = line("llama-3.1-70b", gpu="h100", tp=2, quant="fp8", max_model_len=8192)  # quantized while loading
    assert fp8.startswith("vllm serve meta-llama/Llama-3.1-70B ") and fp8.endswith("--quantization fp8")
    r = kvplan.search(kvplan.load_model("llama-3.1-70b"), kvplan.Workload(50, 1500, 500), ["h100"], allow_quant=True)
    assert all("<a w4a16 int4 checkpoint of" in c.command for c in r.candidates if c.quant == "w4a16")


def test_launch_line_in_the_json_and_the_table():
    data = json.loads(CliRunner().invoke(main, ["plan", "falcon-7b", "--gpu", "a10g", "--json"]).stdout)
    assert data["scenarios"][0]["launch_command"].startswith("vllm serve tiiuae/falcon-7b ")
    table = CliRunner().invoke(main, ["plan", "falcon-7b", "--gpu", "a10g"]).output
    assert "launch: vllm serve tiiuae/falcon-7b --tensor-parallel-size 1" in table
    explicit = json.loads(CliRunner().invoke(main, ["plan", "--layers", "32", "--hidden", "4544", "--params", "7B",
                                                    "--kv-memory", "10GiB", "--json"]).stdout)
    assert explicit["scenarios"][0]["launch_command"] is None  # no model to name
