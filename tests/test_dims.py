"""ModelSpec.dims: canonical dimensions read once from config.json (kvplan.model.dims).

Expected values are copied by hand from the config files in src/kvplan/data/models/; each comment names the key
(or the rule when the value is derived). Every catalog model's dims must also agree with the model kvplan built
from the same config: its embedding width, layer count, head counts, KV head size and MLP / expert widths.
"""

from __future__ import annotations

import pytest

from kvplan.model import catalog
from kvplan.model.dims import Dims
from kvplan.model.load import from_config, load_model, model_from_dims
from kvplan.model.spec import AttentionKV, CrossAttentionKV

EXPECTED = {
    # meta-llama--Llama-3.1-8B.json
    "llama-3.1-8b": Dims(
        hidden=4096,  # hidden_size
        intermediate=14336,  # intermediate_size
        moe_intermediate=None,  # no MoE
        vocab=128256,  # vocab_size
        heads=32,  # num_attention_heads
        kv_heads=8,  # num_key_value_heads
        head_dim=128,  # no head_dim key: hidden_size 4096 / num_attention_heads 32
        layers=32,  # num_hidden_layers
    ),
    # tiiuae--falcon-7b.json (model_type RefinedWebModel, legacy keys)
    "falcon-7b": Dims(
        hidden=4544,  # hidden_size
        intermediate=18176,  # no ffn_hidden_size: 4 x hidden_size 4544
        moe_intermediate=None,
        vocab=65024,  # vocab_size
        heads=71,  # n_head
        kv_heads=1,  # multi_query: true
        head_dim=64,  # hidden_size 4544 / n_head 71
        layers=32,  # n_layer
    ),
    # mistralai--Mixtral-8x7B-v0.1.json
    "mixtral-8x7b": Dims(
        hidden=4096,  # hidden_size
        intermediate=None,  # every layer is MoE: no dense MLP
        moe_intermediate=14336,  # intermediate_size (Mixtral's expert width)
        vocab=32000,  # vocab_size
        heads=32,  # num_attention_heads
        kv_heads=8,  # num_key_value_heads
        head_dim=128,  # 4096 / 32
        layers=32,  # num_hidden_layers
    ),
    # Qwen--Qwen3-30B-A3B.json
    "qwen3-30b-a3b": Dims(
        hidden=2048,  # hidden_size
        intermediate=None,  # intermediate_size 6144 is unused: mlp_only_layers [] and decoder_sparse_step 1
        moe_intermediate=768,  # moe_intermediate_size
        vocab=151936,  # vocab_size
        heads=32,  # num_attention_heads
        kv_heads=4,  # num_key_value_heads
        head_dim=128,  # head_dim (not hidden_size / heads = 64)
        layers=48,  # num_hidden_layers
    ),
    # deepseek-ai--DeepSeek-V3.json
    "deepseek-v3": Dims(
        hidden=7168,  # hidden_size
        intermediate=18432,  # intermediate_size (the first_k_dense_replace = 3 dense layers)
        moe_intermediate=2048,  # moe_intermediate_size
        vocab=129280,  # vocab_size
        heads=128,  # num_attention_heads
        kv_heads=128,  # MLA: one K/V per query head after the up-projection (num_key_value_heads is 128 too)
        head_dim=192,  # qk_nope_head_dim 128 + qk_rope_head_dim 64
        layers=61,  # num_hidden_layers (the num_nextn_predict_layers = 1 MTP layer is not a decoder layer)
    ),
    # google--gemma-3-27b-it.json: text_config (vision_config's hidden_size 1152 is the SigLIP tower's)
    "gemma-3-27b": Dims(
        hidden=5376,  # text_config.hidden_size
        intermediate=21504,  # text_config.intermediate_size
        moe_intermediate=None,
        vocab=262208,  # text_config.vocab_size
        heads=32,  # text_config.num_attention_heads
        kv_heads=16,  # text_config.num_key_value_heads
        head_dim=128,  # text_config.head_dim
        layers=62,  # text_config.num_hidden_layers
    ),
    # openai--gpt-oss-20b.json
    "gpt-oss-20b": Dims(
        hidden=2880,  # hidden_size
        intermediate=None,  # every layer is MoE
        moe_intermediate=2880,  # intermediate_size (gpt-oss's expert width)
        vocab=201088,  # vocab_size
        heads=64,  # num_attention_heads
        kv_heads=8,  # num_key_value_heads
        head_dim=64,  # head_dim
        layers=24,  # num_hidden_layers
    ),
    # Qwen--Qwen3-Next-80B-A3B-Instruct.json
    "qwen3-next-80b-a3b": Dims(
        hidden=2048,  # hidden_size
        intermediate=None,  # intermediate_size 5120 is unused: mlp_only_layers [] and decoder_sparse_step 1
        moe_intermediate=512,  # moe_intermediate_size
        vocab=151936,  # vocab_size
        heads=16,  # num_attention_heads (of the full-attention layers)
        kv_heads=2,  # num_key_value_heads
        head_dim=256,  # head_dim
        layers=48,  # num_hidden_layers
    ),
    # nvidia--Nemotron-H-56B-Base-8K.json
    "nemotron-h-56b": Dims(
        hidden=8192,  # hidden_size
        intermediate=32768,  # intermediate_size (the '-' MLP blocks of hybrid_override_pattern)
        moe_intermediate=None,  # no 'E' block in hybrid_override_pattern
        vocab=131072,  # vocab_size
        heads=64,  # num_attention_heads
        kv_heads=8,  # num_key_value_heads
        head_dim=128,  # attention_head_dim
        layers=118,  # num_hidden_layers (= len(hybrid_override_pattern))
    ),
    # mlx-community--mamba-2.8b-hf-f32.json
    "mamba-2.8b": Dims(
        hidden=2560,  # hidden_size
        intermediate=None,  # no MLP: intermediate_size 5120 is the Mamba mixer's inner width
        moe_intermediate=None,
        vocab=50280,  # vocab_size
        heads=None,  # no attention
        kv_heads=None,
        head_dim=None,
        layers=64,  # num_hidden_layers (n_layer says the same)
    ),
    # meta-llama--Llama-3.2-11B-Vision-Instruct.json: text_config (vision_config's hidden_size is 1280)
    "llama-3.2-11b-vision": Dims(
        hidden=4096,  # text_config.hidden_size
        intermediate=14336,  # text_config.intermediate_size
        moe_intermediate=None,
        vocab=128256,  # text_config.vocab_size (the embedding stores 8 more rows for image tokens)
        heads=32,  # text_config.num_attention_heads
        kv_heads=8,  # text_config.num_key_value_heads
        head_dim=128,  # text_config.hidden_size 4096 / num_attention_heads 32
        layers=40,  # text_config.num_hidden_layers (cross-attention layers included)
    ),
    # microsoft--Phi-3-mini-4k-instruct.json
    "phi-3-mini-4k-instruct": Dims(
        hidden=3072,  # hidden_size
        intermediate=8192,  # intermediate_size
        moe_intermediate=None,
        vocab=32064,  # vocab_size
        heads=32,  # num_attention_heads
        kv_heads=32,  # num_key_value_heads
        head_dim=96,  # 3072 / 32
        layers=32,  # num_hidden_layers
    ),
}


@pytest.mark.parametrize("alias", EXPECTED)
def test_dims_read_from_the_config(alias):
    assert load_model(alias).dims == EXPECTED[alias]


def _mlp_widths(spec) -> set[int]:
    """Dense MLP widths of the text model, from its tensors (vision towers have role 'vision')."""
    out = set()
    for t in spec.tensors:
        if t.role != "mlp" or not t.name.endswith(".weight"):
            continue
        if t.name.endswith("gate_up_proj.weight"):
            out.add(t.shape[0] // 2)
        elif t.name.endswith(("gate_proj.weight", "up_proj.weight", "c_fc.weight", "fc1.weight",
                              "dense_h_to_4h.weight")):
            out.add(t.shape[0])
    return out


def _expert_widths(spec) -> set[int]:
    return {t.shape[-1] for t in spec.tensors if t.role == "experts" and t.name.endswith("experts.down_proj")}


@pytest.mark.parametrize("alias", [e.alias for e in catalog.models()])
def test_dims_agree_with_the_built_model(alias):
    """Every catalog model: dims against what the family adapter built from the same config.

    No model differs: multi-token-prediction layers (DeepSeek-V3, Qwen3-Next) are outside num_hidden_layers in the
    config and outside spec.layers alike, and Mllama's cross-attention layers are counted by both.
    """
    spec = load_model(alias)
    d = spec.dims
    assert d is not None
    if spec.hidden_size:
        assert d.hidden == spec.hidden_size
    assert d.layers == spec.num_layers
    assert d.vocab == spec.vocab_size
    assert d.heads == spec.num_attention_heads
    assert d.kv_heads == spec.num_kv_heads
    head_dims = {layer.kv.head_dim for layer in spec.layers if isinstance(layer.kv, AttentionKV | CrossAttentionKV)}
    assert head_dims <= {d.head_dim}
    assert _mlp_widths(spec) == ({d.intermediate} if d.intermediate else set())
    assert _expert_widths(spec) == ({d.moe_intermediate} if d.moe_intermediate else set())
    assert (spec.moe is not None) == (d.moe_intermediate is not None)


def test_mla_head_dim_is_the_query_key_width():
    spec = load_model("deepseek-v3")
    q_b = next(t for t in spec.tensors if t.name.endswith("layers.0.self_attn.q_b_proj.weight"))
    assert q_b.shape[0] == spec.dims.heads * spec.dims.head_dim


def test_falcon_new_decoder_architecture():
    # tiiuae--falcon-40b.json: model_type RefinedWeb (new decoder architecture), n_head 128, n_head_kv 8,
    # n_layer 60, hidden_size 8192
    d = load_model("falcon-40b").dims
    assert (d.hidden, d.heads, d.kv_heads, d.head_dim, d.layers, d.intermediate) == (8192, 128, 8, 64, 60, 32768)


def test_generic_aliases_for_an_unknown_decoder():
    """An unknown model_type counted as a Llama-style decoder reads the generic keys."""
    config = {"model_type": "somedecoder", "architectures": ["SomeForCausalLM"], "hidden_size": 1024,
              "num_hidden_layers": 4, "num_attention_heads": 8, "intermediate_size": 2816, "vocab_size": 1000}
    d = from_config(config).dims
    assert d == Dims(hidden=1024, intermediate=2816, moe_intermediate=None, vocab=1000, heads=8, kv_heads=8,
                     head_dim=128, layers=4)


def test_gemma3_text_defaults_fill_a_minimal_text_config():
    """gemma-3-4b's text_config omits vocab_size and head counts; dims take the same defaults the adapter does."""
    spec = load_model("gemma-3-4b")
    assert spec.dims.vocab == spec.vocab_size == 262208  # Gemma3TextConfig default vocab_size
    assert spec.dims.hidden == spec.hidden_size


def test_explicit_dimensions():
    d = model_from_dims(layers=32, hidden=4096, params=8_000_000_000, heads=32, kv_heads=8, vocab=128256).dims
    assert d == Dims(hidden=4096, intermediate=None, moe_intermediate=None, vocab=128256, heads=32, kv_heads=8,
                     head_dim=128, layers=32)
    d = model_from_dims(layers=80, hidden=8192, params=70_000_000_000).dims
    assert d == Dims(hidden=8192, intermediate=None, moe_intermediate=None, vocab=None, heads=None, kv_heads=None,
                     head_dim=None, layers=80)
    d = model_from_dims(layers=2, hidden=512, params=10_000_000, heads=4, head_dim=64).dims
    assert (d.heads, d.kv_heads, d.head_dim) == (4, 4, 64)


def test_gguf_models_get_the_same_dims(tmp_path):
    """A GGUF header goes through from_config too: the catalog model written as GGUF has the catalog's dims."""
    pytest.importorskip("gguf")
    from test_gguf import ROUND_TRIP, _round_trip

    for alias in ROUND_TRIP:
        ref, _, _, spec = _round_trip(alias, tmp_path)
        assert spec.dims == ref.dims, alias
