"""Falcon (falcon, and the original 2023 `RefinedWebModel` / `RefinedWeb` remote-code configs).

Attention kinds: `new_decoder_architecture` (Falcon-40B/180B: grouped KV with `num_kv_heads`, two layer norms),
`multi_query` (Falcon-7B: one KV head), else plain multi-head. `parallel_attn` runs attention and MLP side by
side from one layer norm. Legacy keys are renamed as transformers' Falcon conversion does
(`models/falcon/convert_custom_code_checkpoint.py`): n_head -> num_attention_heads, n_layer ->
num_hidden_layers, n_head_kv -> num_kv_heads; `RefinedWeb` means the new decoder architecture.
"""

from __future__ import annotations

from kvplan.model.config import Config
from kvplan.model.families.blocks import Inventory
from kvplan.model.families.common import Built, context_length, rope_tables
from kvplan.model.spec import AttentionKV, LayerSpec

_LEGACY = {"n_head": "num_attention_heads", "n_layer": "num_hidden_layers", "n_head_kv": "num_kv_heads"}
# transformers FalconConfig defaults for keys the 2023 configs omit.
_DEFAULTS = {"max_position_embeddings": 2048, "tie_word_embeddings": True, "multi_query": True,
             "parallel_attn": True, "bias": False, "new_decoder_architecture": False}


def normalize(cfg: Config) -> Config:
    data = dict(cfg.data)
    for old, new in _LEGACY.items():
        if old in data and new not in data:
            data[new] = data.pop(old)
    if data.get("model_type") == "RefinedWeb":
        data.setdefault("new_decoder_architecture", True)
    return Config(data, cfg.where, _DEFAULTS)


def build(cfg: Config) -> Built:
    cfg = normalize(cfg)
    hidden = cfg.int("hidden_size")
    n = cfg.int("num_hidden_layers")
    heads = cfg.int("num_attention_heads")
    head_dim = hidden // heads
    vocab = cfg.int("vocab_size")
    ffn = cfg.int("ffn_hidden_size", default=4 * hidden)
    bias = cfg.bool("bias")
    new_arch = cfg.bool("new_decoder_architecture")
    if new_arch:
        kv_heads = cfg.int("num_kv_heads", default=heads)
    elif cfg.bool("multi_query"):
        kv_heads = 1
    else:
        kv_heads = heads
    parallel = cfg.bool("parallel_attn")
    tie = cfg.bool("tie_word_embeddings")
    if new_arch:
        norms = ("ln_attn", "ln_mlp") if cfg.int("num_ln_in_parallel_attn", default=2) == 2 else ("input_layernorm",)
    else:
        norms = ("input_layernorm",) if parallel else ("input_layernorm", "post_attention_layernorm")

    inv = Inventory()
    inv.embedding("transformer.word_embeddings.weight", vocab, hidden)
    for i in range(n):
        p = f"transformer.h.{i}"
        qkv = (heads + 2 * kv_heads) * head_dim
        inv.linear(f"{p}.self_attention.query_key_value", qkv, hidden, "attention", "column", i, bias)
        inv.linear(f"{p}.self_attention.dense", hidden, hidden, "attention", "row", i, bias)
        inv.linear(f"{p}.mlp.dense_h_to_4h", ffn, hidden, "mlp", "column", i, bias)
        inv.linear(f"{p}.mlp.dense_4h_to_h", hidden, ffn, "mlp", "row", i, bias)
        for norm in norms:
            inv.norm(f"{p}.{norm}", hidden, i, bias=True)
        inv.layers.append(LayerSpec(i, AttentionKV(kv_heads, head_dim, head_dim), "attention+mlp"))
    inv.head("transformer.ln_f", "lm_head", vocab, hidden, tie, norm_bias=True)
    notes = []
    if kv_heads == 1:
        notes.append("multi-query attention: one KV head shared by all query heads")
    rope = () if cfg.bool("alibi", default=False) else rope_tables(cfg, head_dim)
    return Built(inv, heads, kv_heads, context_length(cfg), tie, notes=notes, rope=rope)
