"""SGLang, TGI and llama.cpp accounting: hand-derived expectations on a tiny model and a custom GPU.

The tiny model (Llama layout, bf16): hidden 256, 2 layers, 4 heads, 2 KV heads (head_dim 64), MLP 512, vocab 1000,
context 4096, untied. Weights by hand: embedding 1000 x 256 x 2 = 512,000 B; per layer q 256x256 + k 128x256 +
v 128x256 + o 256x256 = 196,608 params and gate/up/down 3 x 512 x 256 = 393,216 params, x 2 B = 1,179,648 B, + 2 norms
of 256 x 2 B = 1,024 B; final norm 512 B; lm_head 512,000 B. Total 512,000 + 2 x 1,180,672 + 512 + 512,000
= 3,385,856 B. KV per token (bf16): 2 layers x 2 heads x (64 + 64) x 2 B = 1,024 B.
"""

from __future__ import annotations

import math

import pytest

from kvplan.deployment import Deployment
from kvplan.engines import EngineSettings, get_engine, parse_version
from kvplan.engines import scenario as dispatch
from kvplan.engines.common import activation_features, forward_factor
from kvplan.engines.llamacpp import context, kv_bytes, layer_cells
from kvplan.engines.sglang import SGLANG_RULES, default_mem_fraction_static
from kvplan.engines.sglang import cell_size as _cell_size
from kvplan.engines.tgi import TGI_RULES
from kvplan.engines.tgi import block_size as _block_size
from kvplan.engines.tgi import default_prefill_tokens as _default_prefill_tokens
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import custom_gpu, get_gpu
from kvplan.model.load import load_model
from kvplan.units import GiB, MiB

llamacpp_scenario = get_engine("llamacpp").scenario
sglang_scenario = get_engine("sglang").scenario
tgi_scenario = get_engine("tgi").scenario


def cell_size(dep, stage, version):
    """SGLang's cell size under the rules of `version`."""
    return _cell_size(dep, stage, SGLANG_RULES.rules_for(version))


def wiggle(version):
    """(rule, TGI_WIGGLE_ROOM) of TGI at `version`."""
    r = TGI_RULES.rules_for(version)
    return r.wiggle, r.wiggle_room


def block_size(dep, version):
    return _block_size(dep, TGI_RULES.rules_for(version))


def default_prefill_tokens(dep, gpu, version, fraction):
    return _default_prefill_tokens(dep, gpu, TGI_RULES.rules_for(version), fraction)

TINY = dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=256, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, intermediate_size=512, vocab_size=1000,
            max_position_embeddings=4096, torch_dtype="bfloat16", tie_word_embeddings=False, rms_norm_eps=1e-5)
WEIGHTS = 3_385_856
CELL = 1_024
GPU2 = custom_gpu(2 * GiB, "2GiB")  # custom: torch total = the given memory


def tiny(**overrides) -> Deployment:
    kv = overrides.pop("kv_dtype", "auto")
    tp = overrides.pop("tp", 1)
    pp = overrides.pop("pp", 1)
    return Deployment(load_model(dict(TINY, **overrides)), tp=tp, pp=pp, kv_dtype=kv)


def settings(engine: str, **kw) -> EngineSettings:
    return EngineSettings(engine=engine, **kw)


def test_tiny_model_weights_and_kv_by_hand():
    dep = tiny()
    assert dep.stages[0].weights_bytes == WEIGHTS
    assert dep.kv_bytes_per_token == CELL


# ------------------------------------------------------------------------------------------------- SGLang

def test_sglang_pool_is_fraction_of_startup_memory_less_weights():
    s = sglang_scenario(tiny(), GPU2, 0.8, settings("sglang"), seq=2048, batch=8, replicas=1)
    usable = math.floor(2 * GiB * 0.8)  # 1,717,986,918
    startup = round(0.8 * 0.5 * GiB)  # CUDA context 0.50 GiB x fraction = 429,496,730
    # as loaded: tensors 3,385,856 + vocab rows padded 1000 -> 1024 (2 x 24 x 256 x 2 B) + the RoPE cache
    # 4096 x 64 x 4 B (SGLang keeps it in fp32 on CUDA, srt/layers/rotary_embedding.py); every tensor is below
    # 10 MiB, so the allocator's 2 MiB rounding adds nothing
    loaded = WEIGHTS + 2 * 24 * 256 * 2 + 4096 * 64 * 4  # 4,459,008
    pool = usable - startup - loaded  # 1,284,031,180
    assert (usable, startup, loaded, pool) == (1_717_986_918, 429_496_730, 4_459_008, 1_284_031_180)
    b = s.budgets[0]
    assert b.usable == usable and [t.bytes for t in b.terms] == [startup, loaded] and b.kv_pool == pool
    tokens = pool // CELL
    assert tokens == 1_253_936
    p = s.printed
    assert (p.engine, p.kv_tokens, p.block_size, p.max_model_len) == ("sglang", tokens, 1, 4096)
    assert p.max_num_seqs == 4096  # clamp(tokens / 4096 x 512, 2048, 4096), below tokens // 2
    assert p.max_concurrency == pytest.approx(tokens / 4096)
    c = s.capacity
    assert c.request_bytes == 2048 * CELL and c.kv_cache_bytes == 8 * 2048 * CELL
    assert c.max_concurrent_requests == tokens // 2048 == 612
    assert (c.max_seq_len, c.max_seq_len_limited_by, c.max_seq_len_memory) == (4096, "model context", tokens // 8)
    assert c.max_tokens == tokens and c.fits


def test_sglang_page_size_fp8_and_tp_change_cells():
    pool = 1_284_031_180
    s = sglang_scenario(tiny(), GPU2, 0.8, settings("sglang", block_size=64), 2048, 1, 1)
    assert s.printed.kv_tokens == pool // CELL // 64 * 64 == 1_253_888
    s = sglang_scenario(tiny(kv_dtype="fp8"), GPU2, 0.8, settings("sglang"), 2048, 1, 1)
    assert s.printed.kv_tokens == pool // 512
    # TP 2: one KV head per GPU (cell 512 B) and 2.01 GiB of torch.distributed buffers at startup: on 2 GiB the
    # fraction of the startup memory is smaller than the weights, so the pool is negative and nothing fits.
    dep = tiny(tp=2)
    assert cell_size(dep, dep.stages[0], (0, 5, 23)) == 512
    s = sglang_scenario(dep, GPU2, 0.8, settings("sglang"), 2048, 1, 1)
    assert s.budgets[0].terms[0].bytes == round(0.8 * round(2.51 * GiB)) == 2_156_073_582
    assert s.budgets[0].kv_pool < 0 and s.printed.kv_tokens == 0
    assert not s.capacity.fits and s.capacity.shortfall_bytes > 0


def test_sglang_default_mem_fraction_static():
    h100 = 81_559 * MiB  # nvidia-smi total
    # 0.5.23, TP1: reserved = 512 + 1.5 x 8192 + 1 / 8 x 1024 + 2 x 256 + 8 x 58 prefill graph sizes = 13,904 MiB
    assert default_mem_fraction_static(h100, 1) == round((81_559 - 13_904) / 81_559, 3) == 0.83
    # TP4: decode max_bs 512 -> 512 + 12,288 + 512 + 1,024 + 464 = 14,800 MiB
    assert default_mem_fraction_static(h100, 4) == round((81_559 - 14_800) / 81_559, 3) == 0.819
    # MLA at TP8: prefill graphs reserve 1.5 GiB -> 512 + 12,288 + 1,024 + 1,024 + 1,536 = 16,384 MiB
    assert default_mem_fraction_static(h100, 8, mla=True) == round((81_559 - 16_384) / 81_559, 3) == 0.799
    # PP 2 disables prefill graphs: 512 + 12,288 + 256 + 512 = 13,568 MiB
    assert default_mem_fraction_static(h100, 1, pp=2) == round((81_559 - 13_568) / 81_559, 3) == 0.834
    # 16 GiB: chunk 2048, max_bs 8, 42 prefill sizes up to 2048: 512 + 3,072 + 128 + 16 + 336 = 4,064 MiB
    # (no 10 GiB floor below 60 GiB)
    assert default_mem_fraction_static(16 * GiB, 1) == round((16_384 - 4_064) / 16_384, 3) == 0.752
    # 0.4.9.post2: (9.5 + 4 / 2) GiB below 90 GiB; multimodal x 0.90
    v049 = SGLANG_RULES.rules_for((0, 4, 9))
    assert default_mem_fraction_static(h100, 4, rules=v049) == round((81_559 - 11.5 * 1024) / 81_559, 3)
    assert default_mem_fraction_static(h100, 4, rules=v049) == 0.856
    assert default_mem_fraction_static(h100, 1, rules=v049, multimodal=True) == pytest.approx(0.874 * 0.9)


def test_sglang_default_fraction_rules_by_release():
    """The seven rules of srt/server_args.py, restated (release: rule) and evaluated by hand."""
    h100, h200 = 81_559 * MiB, 143_771 * MiB  # nvidia-smi totals

    def f(total: int, version: tuple[int, int, int], tp: int = 1, **kw) -> float:
        return default_mem_fraction_static(total, tp, rules=SGLANG_RULES.rules_for(version), **kw)

    # 0.4.0-0.4.4: by TP size only
    assert [f(h200, (0, 4, 3), tp) for tp in (1, 2, 4, 8, 16)] == [0.88, 0.87, 0.85, 0.81, 0.79]
    # 0.4.5.post3: above 81,920 MiB, (g - 13 GiB) / g, not rounded
    assert f(h100, (0, 4, 5), 4) == 0.85 and f(h200, (0, 4, 5)) == (143_771 - 13_312) / 143_771
    # 0.4.6.post2: above 96 GiB min(0.88 + 48 GiB x 0.12 / g, (g - 18 GiB) / g)
    assert f(h200, (0, 4, 6)) == min(0.88 + 49_152 * 0.12 / 143_771, (143_771 - 18_432) / 143_771)
    assert f(h100, (0, 4, 6), 2, pp=2) == 0.85  # the TP table by TP x PP
    # 0.5.3-0.5.9: 0.5.23's reserve without the prefill graphs: 512 + 12,288 + 128 + 512 = 13,440 MiB
    assert f(h100, (0, 5, 8)) == round((81_559 - 13_440) / 81_559, 3) == 0.835
    # below 35 GiB at TP 1: 0.5.3 chunk 2048 and max_bs 16, 0.5.4.post1 max_bs 24 (no 10 GiB floor below 60 GiB)
    l4 = 23_034 * MiB
    assert f(l4, (0, 5, 3)) == round((23_034 - (512 + 3_072 + 128 + 32)) / 23_034, 3)
    assert f(l4, (0, 5, 4)) == round((23_034 - (512 + 3_072 + 128 + 48)) / 23_034, 3)


def test_sglang_multimodal_factor_applies_to_a_given_fraction_before_0_4_9():
    """srt/model_executor/model_runner.py 0.4.0-0.4.8: a multimodal model's fraction is scaled, given or not."""
    from kvplan.engines.sglang import SGLang

    def fraction(version: str) -> float:
        dep = Deployment(load_model("gemma-3-4b"))
        setup = SGLang().prepare(dep, get_gpu("h100"), settings("sglang", version=version))
        return SGLang().fraction(setup, 0.8)

    assert fraction("0.4.3") == pytest.approx(0.8 * 0.95)
    assert fraction("0.4.8") == pytest.approx(0.8 * 0.90)
    assert fraction("0.4.9") == 0.8


def test_sglang_without_util_uses_sglang_default():
    gpu = custom_gpu(16 * GiB, "16GiB")
    s = sglang_scenario(tiny(), gpu, None, settings("sglang"), 1024, 1, 1)
    assert s.util == s.budgets[0].util == 0.752
    assert "default" in s.printed.notes[0]
    assert s.printed.max_num_batched_tokens == 2048  # chunked_prefill_size below 20 GiB


def test_sglang_mla_cell_and_unsupported_models():
    dep = Deployment(load_model("deepseek-v2-lite"), tp=2)
    # 27 layers x (kv_lora_rank 512 + rope 64) x 2 B, the latent replicated on every rank
    assert cell_size(dep, dep.stages[0], (0, 5, 23)) == 27 * 576 * 2 == 31_104
    with pytest.raises(UnsupportedModelError, match=r"before 0\.5\.2"):
        sglang_scenario(Deployment(load_model("qwen3-next-80b-a3b-instruct")), get_gpu("h200"), 0.9,
                        settings("sglang", version="0.5.1"), 1024, 1, 1)
    with pytest.raises(InputError, match="int8"):
        sglang_scenario(tiny(kv_dtype="int8"), GPU2, 0.8, settings("sglang"), 1024, 1, 1)


def test_sglang_hybrid_sliding_window_pool_gpt_oss():
    """mem_cache/pool_configurator.py 0.5.11 HybridSWAPoolConfigurator, restated: gpt-oss-20b has 12 full and 12
    sliding (window 128) layers of 8 KV heads x 64 x (K + V) x 2 B = 2,048 B per token each; cell = 12 x 2,048 +
    0.8 x 12 x 2,048 = 44,236.8 -> 44,237 B; full tokens = rest // cell, SWA tokens = int(full x 0.8)."""
    s = sglang_scenario(Deployment(load_model("gpt-oss-20b")), get_gpu("h100"), 0.9, settings("sglang"), 1024, 1, 1)
    rest = s.budgets[0].kv_pool
    full = rest // 44_237
    assert s.printed.kv_tokens == full
    assert f"{int(full * 0.8):,} sliding-window tokens" in " ".join(s.printed.notes)
    # a 1,024-token request holds 1,024 full tokens and 128 windowed ones (under the running-request cap)
    assert s.capacity.max_concurrent_requests == min(full // 1024, int(full * 0.8) // 128, s.printed.max_num_seqs)
    # 0.5.1-0.5.7: GPT-OSS's sliding-window pool is off: every layer at full length, 24 x 2,048 B per token
    old = sglang_scenario(Deployment(load_model("gpt-oss-20b")), get_gpu("h100"), 0.9,
                          settings("sglang", version="0.5.6"), 1024, 1, 1)
    assert old.printed.kv_tokens == old.budgets[0].kv_pool // (24 * 2048)


def test_sglang_mamba_state_pool_qwen3_next():
    """kv_cache_configurator.py 0.5.17+ _handle_max_mamba_cache, restated: Qwen3-Next's 36 gated-DeltaNet layers
    hold conv (2 x 16 x 128 + 32 x 128) x 3 in bf16 + SSM 32 x 128 x 128 in fp32 = 2,146,304 B each, 77,266,944 B
    per request; states = (int(rest x 0.9 / 1.9) - state) // state, charged with one padding state; the 12
    full-attention layers (2 KV heads x 256 x (K + V) x 2 B = 2,048 B each) take the rest: 24,576 B per token."""
    s = sglang_scenario(Deployment(load_model("qwen3-next-80b-a3b-instruct"), tp=2), get_gpu("h200"), 0.9,
                        settings("sglang"), 4096, 1, 1)
    state = 36 * ((2 * 16 * 128 + 32 * 128) * 3 * 2 + 32 * 128 * 128 * 4) // 2  # heads split over TP 2
    rest = s.budgets[0].kv_pool
    states = (int(rest * 0.9 / 1.9) - state) // state
    assert f"SGLang's Mamba pool: {states:,} states of {state:,} B" in " ".join(s.printed.notes)
    assert s.printed.kv_tokens == (rest - (states + 1) * state) // (12 * 2048 // 2)
    assert s.capacity.max_concurrent_requests <= states // 3  # the radix cache's three states per request


def test_sglang_keeps_windowed_layers_at_full_length():
    dep = tiny(model_type="mistral", architectures=["MistralForCausalLM"], sliding_window=1024)
    assert cell_size(dep, dep.stages[0], (0, 5, 23)) == CELL


def test_sglang_against_logged_qwen3_235b_fp8_row():
    """vllm-project/vllm#21348: SGLang, 4 x H100, TP4, --mem-fraction-static 0.93 -> '#tokens: 367404'.

    kvplan (no constant fitted to this row): 0.93 x (79.19 - 0.50 - 2.01) GiB - 55.13 GiB weights = 16.18 GiB,
    / 48,128 B per token = 360,987 tokens (-1.7%).
    """
    dep = Deployment(load_model("qwen3-235b-a22b"), tp=4, quant="fp8-block")
    assert dep.kv_bytes_per_token == 94 * 1 * 128 * 2 * 2 == 48_128
    s = sglang_scenario(dep, get_gpu("h100"), 0.93, settings("sglang", version="0.4.9"), 4096, 1, 1)
    assert s.printed.kv_tokens == pytest.approx(367_404, rel=0.05)


def test_parse_version():
    assert parse_version("0.4.9.post2", "0.5.23") == (0, 4, 9)
    assert parse_version("v3.3.7", "0.5.23") == (3, 3, 7)
    assert parse_version("1.4", "0.5.23") == (1, 4, 0)
    assert parse_version(None, "0.19.0") == (0, 19, 0)
    with pytest.raises(InputError):
        parse_version("latest", "0.5.23")


# ---------------------------------------------------------------------------------------------------- TGI

def _tgi_used(dep: Deployment, prefill: int, rows: int = 1, log_softmax_bytes: float = 0) -> tuple[int, int]:
    """CUDA context 0.5 GiB + weights + the warmup's activation: vLLM's fitted forward factor (the one estimated
    piece) plus the logits of `rows` rows in the model dtype (at TP 1 nothing beyond them, but a log_softmax copy of
    `log_softmax_bytes` per entry before 2.4.0: models/flash_causal_lm.py) and the hidden states: added, not the
    larger one, because the warmup reads free memory with the allocator's cache still held (no empty_cache between
    the prefill and get_free_memory, flash_causal_lm.py warmup v2.0.4 / v2.2.0)."""
    f = activation_features(dep, dep.stages[0], prefill, rows)
    forward = forward_factor(False)[0] * f.forward
    logits = rows * f.padded_vocab * f.dtype + rows * f.vocab * log_softmax_bytes
    act = round(forward + logits + f.hidden)
    return 536_870_912 + WEIGHTS + act, act


def test_tgi_v3_fraction_times_wiggle_room():
    dep = tiny()
    used, act = _tgi_used(dep, 512)
    s = tgi_scenario(dep, GPU2, None, settings("tgi", max_num_batched_tokens=512), 1000, 4, 1)
    # CUDA_MEMORY_FRACTION 1.0 (TGI's default) x TGI_WIGGLE_ROOM 0.90 x 2 GiB = 1,932,735,283
    usable = math.floor(2 * GiB * 1.0 * 0.9)
    assert usable == 1_932_735_283
    b = s.budgets[0]
    assert (b.usable, b.util) == (usable, 0.9)
    assert [t.bytes for t in b.terms] == [536_870_912, WEIGHTS, act]
    # flashinfer (head_dim 64): BLOCK_SIZE 1, block = 2 layers x 1 x 2 heads x 64 x 2 (K, V) x 2 B = 1,024 B
    tokens = (usable - used) // 1024
    p = s.printed
    assert (p.kv_tokens, p.num_blocks, p.block_size, p.max_num_batched_tokens) == (tokens, tokens, 1, 512)
    assert p.max_model_len == 4096  # min(tokens, max_position_embeddings)
    assert s.capacity.max_concurrent_requests == tokens // 1000 and s.capacity.fits


def test_tgi_v2_wiggle_after_and_v1_paged_blocks():
    dep = tiny()
    used, _ = _tgi_used(dep, 512, rows=512)  # < 3.0: prefill logprobs, logits for all 512 prompt tokens
    s = tgi_scenario(dep, GPU2, None, settings("tgi", version="2.4.0", max_num_batched_tokens=512), 1000, 1, 1)
    # the warmup batch's blocks, allocated while free memory is read: one request (512 prefill tokens under the
    # 2.x launcher's max_input 4,095) asking max_total - truncate new tokens, so it holds ceil((4,096 - 1) / 1)
    # blocks of BLOCK_SIZE 1 (router v3/client.rs warmup, models/flash_causal_lm.py from_pb)
    warm = 4095 * 1024
    rest = 2 * GiB - used - warm
    pool = 2 * GiB - used - math.ceil(0.1 * rest)  # 0.90 x (free - warm) + warm
    assert s.budgets[0].kv_pool == pool and s.printed.kv_tokens == pool // 1024
    s = tgi_scenario(dep, GPU2, None, settings("tgi", version="1.0.0", max_num_batched_tokens=512), 1000, 1, 1)
    used, _ = _tgi_used(dep, 512, rows=512, log_softmax_bytes=2)  # 1.x: the log_softmax is a new bf16 tensor
    blocks = (2 * GiB - used) // (16 * 1024)  # paged attention, BLOCK_SIZE 16, no wiggle room
    assert (s.printed.num_blocks, s.printed.kv_tokens, s.printed.block_size) == (blocks, blocks * 16, 16)
    assert s.capacity.request_bytes == 1008 * 1024  # 1000 tokens take 63 blocks of 16


def test_tgi_given_pool_and_explicit_fraction():
    s = tgi_scenario(tiny(), GPU2, 0.9, settings("tgi", max_num_batched_tokens=512), 1000, 1, 1,
                     kv_memory=10 * MiB)
    assert s.printed.kv_tokens == 10 * MiB // 1024
    s = tgi_scenario(tiny(), GPU2, 0.5, settings("tgi", max_num_batched_tokens=512), 1000, 1, 1)
    assert s.budgets[0].usable == math.floor(2 * GiB * 0.5 * 0.9)


def test_tgi_version_rules_and_block_size():
    assert wiggle((1, 0, 0)) == ("none", 1.0)
    assert wiggle((2, 0, 0)) == ("after", 0.95)
    assert wiggle((2, 4, 1)) == ("after", 0.90)
    assert wiggle((3, 0, 2)) == ("fraction", 0.95)
    assert wiggle((3, 2, 3)) == ("fraction", 0.93)
    assert wiggle((3, 3, 7)) == ("fraction", 0.90)
    assert block_size(tiny(), (2, 2, 0)) == (16, "paged")
    assert block_size(tiny(), (3, 3, 7)) == (1, "flashinfer")
    assert block_size(tiny(head_dim=96, hidden_size=384), (3, 3, 7)) == (256, "flashdecoding")


def test_tgi_default_prefill_tokens_llama_8b_h100():
    dep = Deployment(load_model("llama-3.1-8b-instruct"))
    # launcher compute_optimal: per layer 2 x 128 x 4096 x (3 x 32 + 2 x 8) + 2 x 3 x 4096 x 14336, x 32 layers
    flop = (2 * 128 * 4096 * (3 * 32 + 2 * 8) + 6 * 4096 * 14336) * 32
    assert flop == 15_032_385_536
    value, how = default_prefill_tokens(dep, get_gpu("h100"), (3, 3, 7), 1.0)
    assert "TFLOPs" in how
    assert value == 900 * 10**12 // flop == 59_870  # below max_position_embeddings and the VRAM cap (256,809)
    assert default_prefill_tokens(dep, get_gpu("rtx4090"), (3, 3, 7), 1.0)[0] == 4096  # card TGI does not match
    assert default_prefill_tokens(dep, get_gpu("h100"), (2, 4, 1), 1.0)[0] == 4096


def test_tgi_refuses_what_it_does_not_serve_this_way():
    with pytest.raises(UnsupportedModelError):
        tgi_scenario(Deployment(load_model("deepseek-v2-lite")), get_gpu("h100"), 0.9, settings("tgi"), 1024, 1, 1)
    with pytest.raises(InputError, match="--pp"):
        tgi_scenario(tiny(pp=2), GPU2, 0.9, settings("tgi"), 1024, 1, 1)
    with pytest.raises(InputError, match="int4"):
        tgi_scenario(tiny(kv_dtype="int4"), GPU2, 0.9, settings("tgi"), 1024, 1, 1)


# ---------------------------------------------------------------------------------------------- llama.cpp

def test_llamacpp_context_padding():
    assert context(1000, 1) == (1024, 1024)
    assert context(1000, 3) == (3072, 1024)  # pad(3000) = 3072, 3072 / 3 = 1024
    assert context(300, 5) == (2560, 512)  # pad(1500) = 1536, 1536 / 5 = 307 -> 512 per slot
    assert context(4096, 2) == (8192, 4096)


def test_llamacpp_allocates_whole_cache_up_front():
    s = llamacpp_scenario(tiny(), GPU2, 0.9, settings("llamacpp"), 1000, 3, 1)
    # n_ctx 3072 cells x 2 layers x (K 2 x 64 + V 2 x 64) x f16 2 B = 3072 x 1,024 B
    assert s.capacity.kv_cache_bytes == 3072 * 1024 == 3_145_728
    p = s.printed
    assert (p.kv_tokens, p.max_model_len, p.max_num_seqs) == (3072, 1024, 3)
    # the input embedding stays in host memory: 3,385,856 - 512,000 B on the GPU
    weights = WEIGHTS - 512_000
    b = s.budgets[0]
    assert b.terms[0].bytes == weights == 2_873_856
    assert b.kv_pool == 1_932_735_283 - weights
    # slots of 1000 tokens (1024 cells each, 1 MiB) that fit in the rest
    assert s.capacity.max_concurrent_requests == (1_932_735_283 - weights) // (1024 * 1024) == 1840
    assert s.capacity.fits


def test_llamacpp_quantized_cache_types():
    cells = layer_cells(tiny(kv_dtype="int8"), tiny().stages[0])
    assert cells == [(2 * (128 // 32 * 34), None)] * 2  # q8_0: 34 B per 32 elements
    assert kv_bytes(cells, 1000, 3) == 3072 * 2 * 272
    cells = layer_cells(tiny(kv_dtype="int4"), tiny().stages[0])
    assert kv_bytes(cells, 1000, 3) == 3072 * 2 * 2 * (128 // 32 * 18)  # q4_0: 18 B per 32 elements
    with pytest.raises(InputError, match="fp8"):
        llamacpp_scenario(tiny(kv_dtype="fp8"), GPU2, 0.9, settings("llamacpp"), 1000, 1, 1)
    odd = tiny(kv_dtype="int8", head_dim=40, num_attention_heads=4, num_key_value_heads=1)
    with pytest.raises(InputError, match="multiple of 32"):
        layer_cells(odd, odd.stages[0])


def test_llamacpp_sliding_window_cache():
    gemma = tiny(model_type="gemma2", architectures=["Gemma2ForCausalLM"], head_dim=64, sliding_window=1024,
                 num_hidden_layers=4, query_pre_attn_scalar=64)
    cells = layer_cells(gemma, gemma.stages[0])
    assert [w for _, w in cells] == [1024, None, 1024, None]
    # seq 4096 x 2 slots: full layers 8192 cells; SWA layers pad(min(4096, 1024 + 512)) = 1536 cells per slot
    assert kv_bytes(cells, 4096, 2) == 2 * 512 * 8192 + 2 * 512 * 1536 * 2 == 11_534_336
    # every layer windowed (Mistral): llama.cpp's graph sets no SWA, the cache is full
    mistral = tiny(model_type="mistral", architectures=["MistralForCausalLM"], sliding_window=1024)
    assert kv_bytes(layer_cells(mistral, mistral.stages[0]), 4096, 2) == 2 * 512 * 8192


def test_llamacpp_refusals_and_tied_weights():
    with pytest.raises(InputError, match="--split-mode layer"):
        llamacpp_scenario(tiny(tp=2), GPU2, 0.9, settings("llamacpp"), 1000, 1, 1)
    with pytest.raises(UnsupportedModelError):
        llamacpp_scenario(Deployment(load_model("qwen3-next-80b-a3b-instruct")), get_gpu("h200"), 0.9,
                          settings("llamacpp"), 1000, 1, 1)
    tied = tiny(tie_word_embeddings=True)
    s = llamacpp_scenario(tied, GPU2, 0.9, settings("llamacpp"), 1000, 1, 1)
    assert s.budgets[0].terms[0].bytes == tied.stages[0].weights_bytes == WEIGHTS - 512_000


def test_dispatcher_reaches_each_engine():
    for engine in ("sglang", "tgi", "llamacpp"):
        s = dispatch(settings(engine, max_num_batched_tokens=512), tiny(), GPU2, 0.8, 1000, 1, 1)
        assert s.printed.engine == engine and s.printed.kv_tokens > 0


def test_tgi_derivation_speaks_of_its_own_blocks():
    """Fix: TGI's derivation printed vLLM's block line ("None group(s)", "max_num_seqs None"). One block of
    flashinfer's 1 token for Llama-3.1-8B: 32 layers x 8 KV heads x (K + V) x 128 x 2 B = 131,072 B."""
    from kvplan.derivation import derivation
    from kvplan.planning import plan

    steps = derivation(plan("llama-3.1-8b", gpu="a10g", engine="tgi"))
    line = next(s for s in steps if s.strip().startswith("blocks ="))
    assert "131,072 B per block of 1 token(s)" in line and "None" not in "".join(steps)


def test_sglang_max_running_requests_by_release():
    """The estimate clamp(int(tokens / context x 512), 2048, 4096) in every release; unset, min(estimate, tokens // 2),
    + 1 before 0.4.7. Row 133 of benchmarks/engine_logs.csv (SGLang 0.4.3.post4, 46,611 tokens at context 131,072)
    printed max_running_requests=2049: int(46,611 / 131,072 x 512) = 182 -> 2048, + 1."""
    from kvplan.engines.sglang import max_running_requests

    assert max_running_requests(46_611, 131_072, None, "0.4.0") == 2049
    assert max_running_requests(46_611, 131_072, None, "0.4.7") == 2048
    assert max_running_requests(3_000, 1_024, None) == 1_500  # tokens // 2 binds
    assert max_running_requests(1_000_000, 1_024, 8_000, "0.4.7") == 8_000  # given: as given before 0.5.10
    assert max_running_requests(1_000_000, 1_024, 8_000, "0.5.10") == 4_096  # capped by the estimate
    assert max_running_requests(10_000, 1_024, 8_000, "0.5.15") == 5_000  # capped by half the tokens


def test_tgi_warmup_logits_under_tp():
    """TensorParallelHead (layers/tensor_parallel.py v2.0.4 / v2.2.0): each shard's [vocab / TP, tokens] output is
    all-gathered and returned transposed; before 2.4.0 the log_softmax copies that transposed input contiguous and
    writes a new tensor: per logits entry in bf16 at TP 2, 2 / 2 (the shard) + 2 (the copy) + 2 (the log_softmax)
    beside the gathered logits; from 2.4.0 the log_softmax is in place (out=), but PyTorch's CUDA softmax still
    makes its transposed input contiguous first (aten/src/ATen/native/cuda/SoftMax.cu host_softmax): the shard and
    the copy remain."""
    from kvplan.engines.tgi import TGI_RULES, warmup_logits

    dep = Deployment(load_model("llama-3.1-8b"), tp=2)
    assert warmup_logits(dep, TGI_RULES.rules_for((2, 2, 0))).no_sort == 1 + 2 + 2
    assert warmup_logits(dep, TGI_RULES.rules_for((2, 4, 0))).no_sort == 1 + 2
    assert warmup_logits(Deployment(load_model("llama-3.1-8b")), TGI_RULES.rules_for((2, 2, 0))).no_sort == 2


def test_startup_holds_the_distributed_init_only_where_nccl_has_nvls_buffers():
    """The 2.01 GiB torch.distributed init of an H200 TP8 SGLang log (sgl-project/sglang#11716) is NCCL's NVLink
    SHARP buffers, which need NVSwitch Hopper or newer; NVIDIA GPUs without them hold the CUDA context alone,
    as SGLang's public PCIe logs show (row 133 of benchmarks/engine_logs.csv: L4 TP4, 21.63 of 22.03 GiB free
    at "Load weight begin"); GPUs kvplan has no such figure for (AMD) keep it."""
    from kvplan.engines.common import CUDA_CONTEXT_GIB, DISTRIBUTED_INIT_GIB, startup_in_use
    from kvplan.hardware import get_gpu
    from kvplan.planning import plan
    from kvplan.units import GiB

    context, both = round(CUDA_CONTEXT_GIB * GiB), round((CUDA_CONTEXT_GIB + DISTRIBUTED_INIT_GIB) * GiB)
    assert startup_in_use(4, 1, get_gpu("h200"))[0] == both
    assert startup_in_use(1, 2, get_gpu("h100"))[0] == both
    assert startup_in_use(4, 1, get_gpu("mi300x"))[0] == both
    for name in ("l4", "rtx-4090", "a100"):
        in_use, source = startup_in_use(4, 1, get_gpu(name))
        assert in_use == context and "no NVLink SHARP" in source, name
    assert startup_in_use(1, 1, get_gpu("h200"))[0] == context
    l4 = plan("qwen2.5-14b", gpu="l4", tp=4, engine="sglang", max_model_len=4096).scenarios[0]
    startup = l4.budgets[0].terms[0]  # the fraction of the free memory at startup
    assert f"x {context:,} B" in startup.source and "no NVLink SHARP" in startup.source


def test_sglang_weights_as_its_load_line_measures_them():
    """SGLang's 'Load weight end ... mem usage' is free memory before - after loading, read after empty_cache
    (srt/utils get_available_gpu_memory, 0.4.3.post2 / 0.5.13.post1): the parameters as PyTorch's caching
    allocator holds them, each of 10 MiB or more rounded up to 2 MiB (kRoundLarge), plus the RoPE cos/sin cache
    kept in fp32 on CUDA (rotary_embedding.py). Qwen3-14B at TP 4, per rank, bf16: qkv 7,168 x 5,120 x 2 / 4 =
    17.5 MiB -> 18, o_proj 12.5 -> 14, gate_up 85 -> 86, down 42.5 -> 44: 4.5 MiB a layer x 40; the embedding and
    lm_head 37,984 x 5,120 x 2 = 388,956,160 B -> 390,070,272 each; the cache 40,960 x 128 x 4 B, of which the
    model-dtype half is already in the weights. The public log (engine_logs.csv row 134, RTX 4090 TP 4) prints
    7.08 GB (GiB, as SGLang divides by 2^30)."""
    from kvplan.engines.common import loaded_weights
    from kvplan.engines.sglang import sglang_weights

    dep = Deployment(load_model("qwen3-14b"), tp=4)
    stage = dep.stages[0]
    extra = 40 * 4_718_592 + 2 * (390_070_272 - 388_956_160) + 40_960 * 128 * 2
    assert sglang_weights(dep, stage)[0] - loaded_weights(dep, stage)[0] == extra
    assert abs(sglang_weights(dep, stage)[0] / 2**30 - 7.08) / 7.08 < 0.001


def test_sglang_mamba_states_follow_max_running_requests_without_the_radix_cache():
    """kv_cache_configurator.py 0.5.23 _handle_max_mamba_cache (and 0.5.7's handle_max_mamba_cache): with
    --disable-radix-cache and --max-running-requests N, max_mamba_cache_size = N instead of the 0.9 / 1.9 memory
    share, charged as N + 1 states (the padding one), and a running request holds one state, not three
    (_calculate_mamba_ratio: 1 without the radix cache). Qwen3-Next at TP 2: 2,146,304 B x 36 / 2 per state."""
    dep = Deployment(load_model("qwen3-next-80b-a3b-instruct"), tp=2)
    s = sglang_scenario(dep, get_gpu("h200"), 0.9, settings("sglang", max_num_seqs=48, disable_radix_cache=True),
                        4096, 1, 1)
    state = 36 * ((2 * 16 * 128 + 32 * 128) * 3 * 2 + 32 * 128 * 128 * 4) // 2
    rest = s.budgets[0].kv_pool
    assert s.printed.kv_tokens == (rest - (48 + 1) * state) // (12 * 2048 // 2)
    assert "48 states" in " ".join(s.printed.notes) and "one state each" in " ".join(s.printed.notes)
    assert s.printed.max_running_requests == 48  # min(48, 48 states // 1)
    given = sglang_scenario(dep, get_gpu("h200"), 0.9, settings("sglang", max_mamba_cache_size=100), 4096, 1, 1)
    assert given.printed.kv_tokens == (rest - 101 * state) // (12 * 2048 // 2)
    assert given.printed.max_running_requests <= 100 // 3  # the radix cache on: three states a request


def test_tgi_warmup_requests_and_the_blocks_left_when_the_fraction_runs_out():
    """router/client warmup (v1.0.0-v2.4.0): requests of min(max_input, prefill left) tokens until the prefill
    tokens are sent, each holding ceil((max_total - 1) / BLOCK_SIZE) blocks from 1.1.1 (input + 1 before): the 1.x
    launcher's defaults (max_input 1024, max_total 2048, prefill 4096) give 4 requests x ceil(2047 / 16) = 512
    blocks; v1.0.0 sizes each by its input + 1: 4 x ceil(1025 / 16) = 260. With --cuda-memory-fraction below what
    the warmup already uses, the free term is max(0, ...) (utils/import_utils.py get_cuda_free_memory) and TGI
    starts with the warmup's blocks alone."""
    from kvplan.engines.tgi import TGI_RULES, TgiOptions, warmup_blocks

    dep = tiny()
    o = TgiOptions(max_total_tokens=2048, max_batch_prefill_tokens=4096, block_size=16)
    assert warmup_blocks(TGI_RULES.rules_for((1, 4, 0)), o, 2048) == 4 * 128
    assert warmup_blocks(TGI_RULES.rules_for((1, 0, 0)), o, 2048) == 4 * 65
    s = tgi_scenario(dep, GPU2, 0.05, settings("tgi", version="2.2.0", max_num_batched_tokens=512), 1000, 1, 1)
    assert s.budgets[0].kv_pool < 0 and s.startup.starts  # 5% of 2 GiB is less than the weights alone
    assert s.printed.num_blocks == -(-(4096 - 1) // 16)  # one warmup request's blocks: max_total 4096 (2.x)


def test_a_null_sliding_window_turns_the_window_off():
    """Mistral-Small-3.x / Magistral configs set text_config.sliding_window to null: transformers passes None on
    (MistralConfig: no sliding window), so every layer is full attention, not the class default's 4,096 window
    (the 0.11.0 log of Mistral-Small-3.2, row 89 of benchmarks/engine_logs.csv: 'Maximum concurrency for 16,000
    tokens per request: 11.55x' = its 184,832 tokens / 16,000, a full-length cache)."""
    from kvplan.model.spec import Retention

    m = load_model("magistral-small-2509")
    assert {layer.kv.retention for layer in m.layers if layer.kv.retention is not Retention.NONE} == {Retention.FULL}


def test_sglang_0_5_7_counts_two_ping_pong_states_per_request():
    """model_runner_kv_cache_mixin.py 0.5.7 init_memory_pool: with the radix cache, max_running_requests <= Mamba
    states // (MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO 3 + MAMBA_CACHE_V2_ADDITIONAL_RATIO_OVERLAP 2) unless
    the extra buffer and speculative decoding are both on; 0.5.6 and 0.5.8 divide by 3 (0.5.8: the two only with
    --mamba-scheduler-strategy extra_buffer)."""
    def running(version: str) -> tuple[int, int]:
        s = sglang_scenario(Deployment(load_model("qwen3-next-80b-a3b-instruct"), tp=2), get_gpu("h200"), 0.9,
                            settings("sglang", version=version), 4096, 1, 1)
        states = int(next(n for n in s.printed.notes if "Mamba pool" in n).split("Mamba pool: ")[1].split(" ")[0]
                     .replace(",", ""))
        return s.printed.max_running_requests, states

    for version, slots in (("0.5.6", 3), ("0.5.7", 5), ("0.5.8", 3)):
        got, states = running(version)
        assert got == states // slots, version  # the Mamba states bind here (below the token cap)
