"""Weight bytes of quantized checkpoints, derived by hand from each format's stored tensors."""

from __future__ import annotations

import math

import pytest

from kvplan.deployment import Deployment
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.model.load import from_config, load_model
from kvplan.model.quant import _matches
from kvplan.model.quant import from_config as format_from_config


def llama_linears(hidden: int, heads: int, kv_heads: int, head_dim: int, inter: int) -> list[tuple[int, int]]:
    """(out, in) of one Llama layer's seven projections: q, k, v, o, gate, up, down."""
    q, kv = heads * head_dim, kv_heads * head_dim
    return [(q, hidden), (kv, hidden), (kv, hidden), (hidden, q), (inter, hidden), (inter, hidden), (hidden, inter)]


def llama_dense_params(hidden: int, vocab: int, layers: int, tied: bool) -> int:
    """Embedding (+ lm_head) + 2 norms per layer + final norm: what quantization leaves in 16 bits."""
    return vocab * hidden * (1 if tied else 2) + (2 * layers + 1) * hidden


def test_fp8_block_128_qwen3_32b():
    # Qwen3-32B-FP8: fp8 weights + one fp32 scale per 128x128 block; q_norm/k_norm (128 each) stay bf16
    hidden, layers, vocab = 5120, 64, 151936
    linears = llama_linears(hidden, 64, 8, 128, 25600)
    per_layer = sum(o * i + math.ceil(o / 128) * math.ceil(i / 128) * 4 for o, i in linears)
    dense = llama_dense_params(hidden, vocab, layers, tied=False) + layers * 2 * 128
    assert Deployment(load_model("qwen3-32b-fp8")).weights_bytes_per_gpu == layers * per_layer + 2 * dense


def test_awq_int4_group128_llama_3_1_70b():
    # AWQ: qweight in x out/8 int32 (out x in / 2 bytes), qzeros (in/128) x out/8 int32, scales (in/128) x out fp16
    hidden, layers, vocab = 8192, 80, 128256
    per_layer = sum(o * i // 2 + (i // 128) * o // 2 + (i // 128) * o * 2
                    for o, i in llama_linears(hidden, 64, 8, 128, 28672))
    dense = llama_dense_params(hidden, vocab, layers, tied=False)
    spec = load_model("llama-3.1-70b-awq")
    assert spec.dtype == "float16"
    assert Deployment(spec).weights_bytes_per_gpu == layers * per_layer + 2 * dense


def test_gptq_act_order_group32_adds_g_idx():
    # TheBloke Llama-2-7B-GPTQ rev 4fd6fc2: 4-bit, group 32, desc_act -> g_idx int32 per input channel
    hidden, layers, vocab = 4096, 32, 32000
    per_layer = sum(o * i // 2 + (i // 32) * o // 2 + (i // 32) * o * 2 + i * 4
                    for o, i in llama_linears(hidden, 32, 32, 128, 11008))
    dense = llama_dense_params(hidden, vocab, layers, tied=False)
    assert Deployment(load_model("llama-2-7b-gptq")).weights_bytes_per_gpu == layers * per_layer + 2 * dense


def test_modelopt_fp8_side_file():
    # nvidia Llama-3.1-70B-Instruct-FP8: hf_quant_config.json FP8, per-tensor weight and input scales (fp32)
    hidden, layers, vocab = 8192, 80, 128256
    per_layer = sum(o * i + 4 + 4 for o, i in llama_linears(hidden, 64, 8, 128, 28672))
    dense = llama_dense_params(hidden, vocab, layers, tied=False)
    spec = load_model("llama-3.1-70b-fp8")
    assert spec.kv_dtype_hint == "fp8"
    assert Deployment(spec).weights_bytes_per_gpu == layers * per_layer + 2 * dense


def test_bitsandbytes_fp4_keeps_router_dense():
    # 4-bit: n/2 bytes + one fp32 absmax per 64 weights; MoE routers stay in the activation dtype
    spec = load_model("qwen_-_qwen1.5-moe-a2.7b-chat-4bits")
    dep = Deployment(spec)
    quantized = [t for t in spec.tensors if dep.weight_format.applies_to(t)]
    assert quantized and not any(t.role in ("router", "embedding", "lm_head", "norm") for t in quantized)
    expected = sum(t.numel / 2 + math.ceil(t.numel / 64) * 4 for t in quantized)
    expected += 2 * sum(t.numel for t in spec.tensors if t not in quantized)
    assert dep.weights_bytes_per_gpu == round(expected)


def test_quant_option_on_unquantized_model_matches_awq_layout():
    hidden, layers, vocab = 4096, 32, 128256
    per_layer = sum(o * i // 2 + (i // 128) * o // 2 + (i // 128) * o * 2
                    for o, i in llama_linears(hidden, 32, 8, 128, 14336))
    dense = llama_dense_params(hidden, vocab, layers, tied=False)
    assert Deployment(load_model("llama-3.1-8b"), quant="awq").weights_bytes_per_gpu == layers * per_layer + 2 * dense


def test_nf4_quantized_while_loading_is_double_quant():
    # vLLM's and TGI's in-flight nf4 call bitsandbytes' quantize_4bit with compress_statistics=True (vLLM
    # BitsAndBytesModelLoader._unquantized_generator 0.8.2 and 0.18.0; TGI layers/bnb.py): n/2 bytes + a uint8
    # absmax per 64 weights + an fp32 absmax per 256 of those blocks
    hidden, layers, vocab = 4096, 32, 128256
    per_layer = 0
    for o, i in llama_linears(hidden, 32, 8, 128, 14336):
        blocks = math.ceil(o * i / 64)
        per_layer += o * i // 2 + blocks + math.ceil(blocks / 256) * 4
    dense = llama_dense_params(hidden, vocab, layers, tied=False)
    assert Deployment(load_model("llama-3.1-8b"), quant="nf4").weights_bytes_per_gpu == layers * per_layer + 2 * dense


def test_compressed_tensors_w4a16_with_ignore():
    # pack-quantized int4, symmetric, group 128: packed int32 + bf16 scales per group + int64[2] weight_shape
    qc = {"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
              "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}}}}
    data = {**load_json_llama(), "quantization_config": qc}
    hidden, layers, vocab = 4096, 32, 128256
    per_layer = sum(o * i // 2 + (i // 128) * o * 2 + 16 for o, i in llama_linears(hidden, 32, 8, 128, 14336))
    dense = llama_dense_params(hidden, vocab, layers, tied=False)
    assert Deployment(from_config(data)).weights_bytes_per_gpu == layers * per_layer + 2 * dense


def load_json_llama() -> dict:
    from kvplan.model import catalog
    from kvplan.model.config import read_json

    return read_json(catalog.lookup("llama-3.1-8b").path())


def test_dtype_override_is_plain_bytes_per_parameter():
    spec = load_model("llama-3.1-8b")
    assert Deployment(spec, dtype="int4").weights_bytes_per_gpu == spec.params // 2
    assert Deployment(spec, dtype="fp32").weights_bytes_per_gpu == spec.params * 4


def test_float32_checkpoint_is_served_in_bf16():
    spec = load_model("olmo-2-1124-7b")
    assert spec.dtype == "float32"
    assert Deployment(spec).weights_bytes_per_gpu == 2 * spec.params


@pytest.mark.parametrize(("pattern", "module", "hit"), [
    ("lm_head", "lm_head", True),
    ("lm_head", "model.lm_head_extra", False),
    ("model.layers.*.self_attn", "model.layers.3.self_attn.q_proj", True),
    ("model.layers.*.mlp.router", "model.layers.3.mlp.experts", False),
    ("re:.*vision.*", "vision_tower.blocks.0.attn", True),
    ("model.layers.0.mlp.gate", "model.layers.0.mlp.gate", True),
    ("model.layers.0.mlp.gate", "model.layers.10.mlp.gate", False),
])
def test_ignore_patterns(pattern, module, hit):
    assert _matches(pattern, module) is hit


def test_unknown_quant_method_is_refused_by_name():
    with pytest.raises(UnsupportedModelError, match="hqq"):
        format_from_config({"quant_method": "hqq"})


def test_quant_on_quantized_checkpoint_is_refused():
    with pytest.raises(InputError, match="already quantized"):
        Deployment(load_model("qwen3-32b-fp8"), quant="awq").weights_bytes_per_gpu  # noqa: B018


def test_fp4_schemes_of_every_linear_layer():
    """--quant nvfp4 (ModelOpt NVFP4: e2m1 weights, one fp8 scale per 16 inputs, fp32 global weight and input
    scales per matrix) and mxfp4-linear (Quark MXFP4: one e8m0 scale per 32) on Llama-3.1-8B; the embedding,
    lm_head and norms stay bf16. Both run at the GPU's fp4 tensor rate where it has one (W4A4), else bf16."""
    from kvplan import perf
    from kvplan.hardware import get_gpu

    hidden, layers, vocab = 4096, 32, 128256
    linears = llama_linears(hidden, 32, 8, 128, 14336)
    dense = 2 * llama_dense_params(hidden, vocab, layers, tied=False)
    nv = layers * sum(o * i // 2 + o * i // 16 + 8 for o, i in linears) + dense
    mx = layers * sum(o * i // 2 + o * i // 32 for o, i in linears) + dense
    m = load_model("llama-3.1-8b")
    assert Deployment(m, quant="nvfp4").weights_bytes_per_gpu == nv
    assert Deployment(m, quant="mxfp4-linear").weights_bytes_per_gpu == mx
    b200, h100 = get_gpu("b200"), get_gpu("h100")
    assert perf._peak_tflops(Deployment(m, quant="nvfp4"), b200) == (b200.fp4_tflops, "fp4 dense")
    assert perf._peak_tflops(Deployment(m, quant="nvfp4"), h100)[1] == "bf16 dense"  # weight-only on Hopper
    assert perf._peak_tflops(Deployment(load_model("gpt-oss-20b")), b200)[1] == "bf16 dense"  # experts only
