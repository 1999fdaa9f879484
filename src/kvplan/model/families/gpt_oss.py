"""gpt-oss: alternating sliding-window / full attention with biases and per-head attention sinks, MoE with
biased experts and a biased router (transformers `models/gpt_oss/modeling_gpt_oss.py`)."""

from __future__ import annotations

from kvplan.model.config import Config
from kvplan.model.families.blocks import Inventory, attention, experts, moe_info, router
from kvplan.model.families.common import Built, attention_kv, context_length, layer_types, rope_tables
from kvplan.model.spec import LayerSpec


def build(cfg: Config) -> Built:
    hidden = cfg.int("hidden_size")
    n = cfg.int("num_hidden_layers")
    heads = cfg.int("num_attention_heads")
    kv_heads = cfg.int("num_key_value_heads")
    head_dim = cfg.int("head_dim", default=hidden // heads)
    vocab = cfg.int("vocab_size")
    num = cfg.int("num_local_experts")
    top_k = cfg.int("num_experts_per_tok", "experts_per_token")
    inter = cfg.int("intermediate_size")
    bias = cfg.bool("attention_bias", default=True)
    window = cfg.opt_int("sliding_window")
    tie = cfg.bool("tie_word_embeddings", default=False)
    # Without `layer_types`, transformers' GptOssConfig alternates: even layers sliding, odd layers full.
    types = (layer_types(cfg, n) if "layer_types" in cfg
             else ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)])

    inv = Inventory()
    inv.embedding("model.embed_tokens.weight", vocab, hidden)
    for i in range(n):
        p = f"model.layers.{i}"
        attention(inv, f"{p}.self_attn", i, hidden, heads, kv_heads, head_dim, bias, bias)
        inv.add(f"{p}.self_attn.sinks", (heads,), "attention", 0, False, i)
        router(inv, f"{p}.mlp.router", i, num, hidden, bias=True)
        experts(inv, f"{p}.mlp", i, num, hidden, inter, bias=True)
        inv.norm(f"{p}.input_layernorm", hidden, i)
        inv.norm(f"{p}.post_attention_layernorm", hidden, i)
        inv.layers.append(LayerSpec(i, attention_kv(types[i], kv_heads, head_dim, window), "attention+moe"))
    inv.head("model.norm", "lm_head", vocab, hidden, tie)
    notes = ["attention sinks: one learned logit per head, no extra KV"]
    rope = rope_tables(cfg, head_dim, fp32=True)  # vLLM builds gpt-oss's YaRN table in float32
    return Built(inv, heads, kv_heads, context_length(cfg), tie, moe_info(num, top_k), notes, rope)
