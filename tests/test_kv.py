"""KV cache per layer kind, each expected figure derived by hand from the config (written out below)."""

from __future__ import annotations

import pytest

from kvplan.deployment import Deployment
from kvplan.errors import InputError
from kvplan.model.load import load_model


def dep(alias: str, **kw) -> Deployment:
    return Deployment(load_model(alias), **kw)


def test_llama_3_1_8b_gqa():
    # 2 (K,V) x 8 KV heads x 128 head_dim x 2 B (bf16) x 32 layers (DESIGN.md section 4)
    assert dep("llama-3.1-8b").kv_bytes_per_token == 2 * 8 * 128 * 2 * 32 == 131_072


def test_deepseek_v2_lite_mla():
    # 27 layers x (kv_lora_rank 512 + qk_rope_head_dim 64) x 2 B, one copy (DESIGN.md section 4)
    assert dep("deepseek-v2-lite").kv_bytes_per_token == 27 * 576 * 2 == 31_104


def test_deepseek_v3_mla_is_replicated_under_tp():
    one = dep("deepseek-v3").kv_bytes_per_token
    assert one == 61 * (512 + 64) * 2
    assert dep("deepseek-v3", tp=8).kv_bytes_per_token == one


def test_gemma2_alternating_sliding_window():
    # 42 layers: even layers slide over 4096 tokens, odd layers are global; 8 KV heads x 256 x 2 B x 2 (K,V)
    d = dep("gemma-2-9b")
    per_layer = 2 * 8 * 256 * 2
    assert d.kv_bytes_per_token == 42 * per_layer
    assert d.request_bytes(1000) == 42 * per_layer * 1000
    assert d.request_bytes(8192) == 21 * per_layer * 8192 + 21 * per_layer * 4096


def test_gpt_oss_sliding_128_and_full_layers():
    # 24 layers alternate sliding (window 128) and full; 8 KV heads x 64 x 2 (K,V) x 2 B; sinks add no cache
    d = dep("gpt-oss-20b")
    per_layer = 2 * 8 * 64 * 2
    assert d.request_bytes(10_000) == 12 * per_layer * 10_000 + 12 * per_layer * 128


def test_mistral_v0_1_is_all_sliding_so_memory_never_limits_context():
    from kvplan.planning import plan

    p = plan("mistral-7b", gpu="a10g", batch=1, engine="none")
    # every layer keeps at most 4096 tokens: 32 x 2 x 8 x 128 x 2 B x 4096 at any length beyond the window
    assert p.deployment.request_bytes(100_000) == 32 * 2 * 8 * 128 * 2 * 4096
    c = p.scenarios[0].capacity
    assert c.max_seq_len_memory is None and c.max_seq_len == 32768
    assert c.max_seq_len_limited_by == "model context"


def test_llama4_chunked_local_attention():
    # 48 layers: every 4th is global NoPE attention, the others keep one chunk of 8192 tokens
    d = dep("llama-4-scout")
    per_layer = 2 * 8 * 128 * 2
    assert d.request_bytes(100_000) == 12 * per_layer * 100_000 + 36 * per_layer * 8192


def test_qwen3_next_linear_attention_state():
    # 12 full layers: 2 KV heads x 256 x 2 (K,V) x 2 B per token.
    # 36 gated-DeltaNet layers: conv (4-1) x (2 x 16 x 128 + 32 x 128) + state 32 x 128 x 128, in bf16.
    d = dep("qwen3-next-80b-a3b")
    state = ((4 - 1) * (2 * 16 * 128 + 32 * 128) + 32 * 128 * 128) * 2
    assert d.kv_bytes_per_token == 12 * 2 * 2 * 256 * 2
    assert d.request_bytes(1) == 12 * 2048 + 36 * state
    assert d.request_bytes(5000) - d.request_bytes(4000) == 12 * 2048 * 1000


def test_nemotron_h_mamba2_state():
    # 10 attention layers (8 KV heads x 128); 54 Mamba-2 layers: conv (4-1) x (256 x 64 + 2 x 8 x 256),
    # SSM 256 heads x 64 x 256, bf16
    d = dep("nemotron-h-56b")
    state = ((4 - 1) * (256 * 64 + 2 * 8 * 256) + 256 * 64 * 256) * 2
    assert d.request_bytes(1000) == 10 * 2 * 8 * 128 * 2 * 1000 + 54 * state


def test_nemotron_3_nano_pins_fp32_ssm_state():
    # config: mamba_ssm_cache_dtype float32; conv state stays in bf16
    d = dep("nemotron-3-nano-30b-a3b")
    conv, ssm = (4 - 1) * (64 * 64 + 2 * 8 * 128), 64 * 64 * 128
    mamba_layers = sum(layer.kv.kind == "mamba" for layer in d.model.layers)
    assert mamba_layers == 23
    assert d.stages[0].state_bytes == mamba_layers * (conv * 2 + ssm * 4)


def test_falcon_mamba_state_is_constant():
    # 64 layers x (conv (4-1) x 8192 + SSM 8192 x 16) x 2 B; no per-token growth
    d = dep("falcon-mamba-7b")
    assert d.kv_bytes_per_token == 0
    assert d.request_bytes(10) == d.request_bytes(100_000) == 64 * ((4 - 1) * 8192 + 8192 * 16) * 2


def test_mllama_cross_attention_holds_image_tokens():
    # 8 cross-attention layers x (4 tiles x (40 x 40 patches + 1)) x 2 x 8 KV heads x 128 x 2 B per request
    d = dep("llama-3.2-11b-vision")
    cross = 8 * (4 * 1601) * 2 * 8 * 128 * 2
    assert d.request_bytes(1000) == 32 * 2 * 8 * 128 * 2 * 1000 + cross


def test_kv_dtype_fp8_halves_the_cache():
    assert dep("llama-3.1-8b", kv_dtype="fp8").kv_bytes_per_token == 65_536


@pytest.mark.parametrize(("tp", "expected"), [(1, 131_072), (2, 65_536), (8, 16_384), (16, 16_384), (32, 16_384)])
def test_kv_heads_split_by_tp_never_below_one(tp, expected):
    # 8 KV heads: TP 2 -> 4 per GPU, TP 8 -> 1, TP 16/32 -> 1 (replicated), x 2 x 128 x 2 B x 32 layers
    assert dep("llama-3.1-8b", tp=tp).kv_bytes_per_token == expected


def test_tp_that_fits_neither_way_is_refused():
    # Qwen2.5-7B: 28 query heads, 4 KV heads; TP 7 divides 28 but neither divides nor is a multiple of 4
    with pytest.raises(InputError, match="KV heads"):
        dep("qwen2.5-7b", tp=7)
