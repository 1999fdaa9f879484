"""Speed estimates: the roofline written out by hand for known models, with the stated constants."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kvplan import perf
from kvplan.cli import main
from kvplan.deployment import Deployment
from kvplan.hardware import get_gpu
from kvplan.model.load import load_model

EFF = perf.constants()["efficiency"]
COMM = perf.constants()["comm"]
# per pass, plus one sequence's share (scheduling, sampling, output processing): these tests run one sequence
OVERHEAD = COMM["step_overhead_ms"] * 1e-3 + COMM.get("sequence_overhead_us", 0.0) * 1e-6

# Llama-2-7B (hidden 4096, 32 layers, MLP 11008, vocab 32000, 32 heads of 128, MHA), bf16.
LAYER = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096  # q,k,v,o + gate,up,down + 2 norms = 202,383,360
READ_PARAMS = 32 * LAYER + 32000 * 4096 + 4096  # every layer, lm_head, final norm; not the embedding table
KV_PER_TOKEN = 2 * 32 * 32 * 128 * 2  # K+V x layers x heads x head_dim x 2 B = 524,288 B
H100_BW = 3350e9  # GB/s from the catalog
H100_BF16 = 989.4e12  # dense bf16 FLOP/s from the catalog


def test_dense_decode_batch_1_is_weights_plus_kv_over_bandwidth():
    assert LAYER == 202_383_360 and READ_PARAMS == 6_607_343_616
    dep = Deployment(load_model("llama-2-7b"), tp=1)
    d = perf.decode(dep, get_gpu("h100"), batch=1, context=1024)
    read = 2 * READ_PARAMS + KV_PER_TOKEN * 1024
    flops = 2 * READ_PARAMS + 4 * 1024 * 32 * 128 * 32  # matmuls + QK^T and AV over 1,024 tokens in 32 layers
    assert d.bytes_read == read and d.flops == flops
    memory, compute = read / (H100_BW * EFF["bandwidth"]), flops / (H100_BF16 * EFF["decode_compute"])
    assert memory > compute and d.bound == "memory"
    assert d.step_seconds == pytest.approx(memory + OVERHEAD, rel=1e-12)
    assert d.tokens_per_sec_per_user == pytest.approx(1 / (memory + OVERHEAD), rel=1e-12)


def test_decode_batch_reads_weights_once_and_kv_per_sequence():
    dep = Deployment(load_model("llama-2-7b"))
    d = perf.decode(dep, get_gpu("h100"), batch=64, context=2048)
    assert d.bytes_read == 2 * READ_PARAMS + 64 * KV_PER_TOKEN * 2048
    assert d.tokens_per_sec_total == pytest.approx(64 * d.tokens_per_sec_per_user)


def test_prefill_is_compute_bound_flops_over_achieved_rate():
    dep = Deployment(load_model("llama-2-7b"))
    p = perf.prefill(dep, get_gpu("h100"), 2048)
    flops = 2 * READ_PARAMS * 2048 + 2 * 2048 * 2048 * 32 * 128 * 32  # causal attention: half of 4 x n^2 x d
    assert p.flops == flops and p.bound == "compute"
    assert p.seconds == pytest.approx(flops / (H100_BF16 * EFF["prefill_compute"]) + OVERHEAD, rel=1e-12)


def test_tensor_parallel_adds_two_ring_allreduces_per_layer():
    dep = Deployment(load_model("llama-2-7b"), tp=2)
    gpu = get_gpu("h100")
    assert perf.link_gbps(gpu)[0] == 450  # "NVLink4 900 GB/s total": 450 GB/s each way
    one = 2 * (2 - 1) / 2 * (8 * 4096 * 2) / 450e9 + COMM["allreduce_latency_us"] * 1e-6  # batch 8, bf16
    d = perf.decode(dep, gpu, batch=8, context=512)
    assert d.comm_seconds == pytest.approx(2 * 32 * one, rel=1e-12)
    # each GPU reads half of every split matrix: all but the 65 norm vectors
    assert d.bytes_read == 2 * ((READ_PARAMS - 65 * 4096) / 2 + 65 * 4096) + 8 * KV_PER_TOKEN / 2 * 512


def test_a_layer_of_one_mixer_or_one_mlp_runs_one_allreduce():
    """vLLM's Nemotron-H block (model_executor/models/nemotron_h.py) holds one mixer, Mamba, attention or the
    MoE, each ending in one row-parallel reduce; a Llama layer has two (o_proj, down_proj). The Nano 30B config
    has 52 blocks: 23 Mamba, 23 MoE, 6 attention (hybrid_override_pattern)."""
    spec = load_model("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
    assert spec.num_layers == 52 and perf.allreduces_per_pass(spec) == 52
    assert perf.allreduces_per_pass(load_model("llama-2-7b")) == 2 * 32
    dep = Deployment(spec, tp=2)
    one = 2 * (2 - 1) / 2 * (1 * spec.hidden_size * 2) / 450e9 + COMM["allreduce_latency_us"] * 1e-6  # bf16
    assert perf.allreduce_seconds(dep, get_gpu("h100"), 1) == pytest.approx(52 * one, rel=1e-12)


def test_pcie_gpus_fall_back_to_their_generation():
    assert perf.link_gbps(get_gpu("t4"))[0] == 16  # PCIe Gen3 x16
    assert perf.link_gbps(get_gpu("l4"))[0] == 32  # PCIe Gen4 x16


def test_moe_decode_reads_the_experts_a_batch_touches():
    # Mixtral-8x7B: 8 experts of 3 x 4096 x 14336 in 32 layers, 2 picked per token.
    spec = load_model("mixtral-8x7b")
    dep = Deployment(spec)
    experts = 2 * 32 * 8 * 3 * 4096 * 14336
    everything = 2 * (spec.params - 32000 * 4096)  # all but the embedding table
    kv = 2 * 32 * 8 * 128 * 2  # 8 KV heads
    gpu = get_gpu("h200")
    one = perf.decode(dep, gpu, batch=1, context=100)
    assert one.bytes_read == pytest.approx(everything - experts + experts * 2 / 8 + kv * 100)
    many = perf.decode(dep, gpu, batch=32, context=100)
    touched = 1 - (1 - 2 / 8) ** 32
    assert many.bytes_read == pytest.approx(everything - experts + experts * touched + 32 * kv * 100)


def test_missing_bandwidth_is_a_clear_error():
    from dataclasses import replace

    from kvplan.errors import InputError

    blank = replace(get_gpu("h100"), bandwidth_gbps=None)
    with pytest.raises(InputError, match="no memory bandwidth"):
        perf.decode(Deployment(load_model("llama-2-7b")), blank, 1, 10)


def test_perf_cli_labels_estimates():
    r = CliRunner().invoke(main, ["perf", "llama-2-7b", "--gpu", "h100", "--batch", "4", "--prompt", "512"])
    assert r.exit_code == 0, r.output
    assert "memory-bound" in r.output and "estimate:" in r.output
    data = json.loads(CliRunner().invoke(main, ["perf", "llama-2-7b", "--gpu", "h100", "--json"]).output)
    assert data["decode"]["bound"] == "memory" and data["prefill"]["ttft_seconds"] > 0
    bad = CliRunner().invoke(main, ["perf", "llama-2-7b", "--gpu", "h100", "--batch", "0"])
    assert bad.exit_code == 2 and "--batch must be a positive integer" in bad.output


def test_multimodal_models_use_the_text_width():
    # the vision tower's tensors come first in Gemma-3's inventory; the residual stream is the text model's
    spec = load_model("gemma-3-27b-it")
    assert spec.tensors[0].role == "vision" and spec.hidden_size == 5376  # text_config.hidden_size
    dep = Deployment(spec, tp=2)
    one = 2 * (2 - 1) / 2 * (4 * 5376 * 2) / 450e9 + COMM["allreduce_latency_us"] * 1e-6
    assert perf.allreduce_seconds(dep, get_gpu("h100"), 4) == pytest.approx(2 * spec.num_layers * one, rel=1e-12)


def test_static_estimate_is_what_perf_prints():
    """perf.static_estimate is `kvplan perf --json` without a load, and refuses a bad batch in one line."""
    est = perf.static_estimate("llama-3.1-70b", "h100", tp=4, batch=64, prompt=2048, context=8192)
    r = CliRunner().invoke(main, ["perf", "llama-3.1-70b", "--gpu", "h100", "--tp", "4", "--batch", "64",
                                  "--prompt", "2048", "--context", "8192", "--json"])
    assert r.exit_code == 0 and est.to_dict() == json.loads(r.output)
    assert est.length == 8192 and est.decode.batch == 64 and est.prefill.tokens == 2048
    from kvplan.errors import InputError

    with pytest.raises(InputError, match="--batch must be a positive integer"):
        perf.static_estimate("llama-3.1-8b", "h100", batch=0)
