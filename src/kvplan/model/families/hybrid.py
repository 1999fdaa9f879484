"""State-space and hybrid models: Mamba / Falcon-Mamba (Mamba-1), Nemotron-H (Mamba-2 + attention + MLP/MoE),
Qwen3-Next (gated DeltaNet linear attention + gated full attention, MoE).

Their recurrent layers keep a constant state per request instead of a per-token cache.
"""

from __future__ import annotations

import math

from kvplan.errors import ConfigError
from kvplan.model.config import Config
from kvplan.model.families.blocks import Inventory, attention, experts, gated_mlp, moe_info, router
from kvplan.model.families.common import Built, context_length, layer_types, rope_tables
from kvplan.model.spec import AttentionKV, GatedDeltaNetState, LayerSpec, Mamba1State, Mamba2State, NoKV

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def _ssm_cache_bytes(cfg: Config) -> float | None:
    """A config-pinned SSM state dtype (Nemotron-3 sets mamba_ssm_cache_dtype: float32)."""
    name = cfg.str("mamba_ssm_cache_dtype", default=None)
    return DTYPE_BYTES.get(name) if name else None


def build_mamba(cfg: Config) -> Built:
    """Mamba-1 (`mamba`, `falcon_mamba`): transformers `models/mamba/modeling_mamba.py` MambaMixer."""
    hidden = cfg.int("hidden_size")
    n = cfg.int("num_hidden_layers", "n_layer")
    vocab = cfg.int("vocab_size")
    inter = cfg.int("intermediate_size", default=cfg.int("expand", default=2) * hidden)
    state = cfg.int("state_size", default=16)
    kernel = cfg.int("conv_kernel", default=4)
    rank = cfg.raw("time_step_rank", default="auto")
    dt_rank = math.ceil(hidden / 16) if rank == "auto" else cfg.int("time_step_rank")
    bias = cfg.bool("use_bias", default=False)
    conv_bias = cfg.bool("use_conv_bias", default=True)
    tie = cfg.bool("tie_word_embeddings", default=True)

    inv = Inventory()
    inv.embedding("backbone.embeddings.weight", vocab, hidden)
    for i in range(n):
        p = f"backbone.layers.{i}.mixer"
        inv.linear(f"{p}.in_proj", 2 * inter, hidden, "ssm", "column", i, bias)
        inv.add(f"{p}.conv1d.weight", (inter, 1, kernel), "ssm", 0, False, i)
        if conv_bias:
            inv.add(f"{p}.conv1d.bias", (inter,), "ssm", 0, False, i)
        inv.linear(f"{p}.x_proj", dt_rank + 2 * state, inter, "ssm", "row", i)
        inv.linear(f"{p}.dt_proj", inter, dt_rank, "ssm", "column", i, bias=True)
        inv.add(f"{p}.A_log", (inter, state), "ssm", 0, False, i)
        inv.add(f"{p}.D", (inter,), "ssm", 0, False, i)
        inv.linear(f"{p}.out_proj", hidden, inter, "ssm", "row", i, bias)
        inv.norm(f"backbone.layers.{i}.norm", hidden, i)
        inv.layers.append(LayerSpec(i, Mamba1State(inter, state, kernel), "mamba"))
    inv.head("backbone.norm_f", "lm_head", vocab, hidden, tie)
    notes = ["Mamba: a constant recurrent state per request, no per-token KV cache"]
    return Built(inv, None, None, context_length(cfg), tie, notes=notes)


def _mamba2_mixer(inv: Inventory, p: str, i: int, cfg: Config, hidden: int) -> Mamba2State:
    heads = cfg.int("mamba_num_heads")
    head_dim = cfg.int("mamba_head_dim")
    groups = cfg.int("n_groups")
    state = cfg.int("ssm_state_size")
    kernel = cfg.int("conv_kernel", default=4)
    inter = heads * head_dim
    conv_dim = inter + 2 * groups * state
    bias = cfg.bool("use_bias", default=False)
    inv.linear(f"{p}.in_proj", inter + conv_dim + heads, hidden, "ssm", "column", i, bias)
    inv.add(f"{p}.conv1d.weight", (conv_dim, 1, kernel), "ssm", 0, False, i)
    if cfg.bool("use_conv_bias", default=True):
        inv.add(f"{p}.conv1d.bias", (conv_dim,), "ssm", 0, False, i)
    for name in ("dt_bias", "A_log", "D"):
        inv.add(f"{p}.{name}", (heads,), "ssm", 0, False, i)
    inv.add(f"{p}.norm.weight", (inter,), "ssm", 0, False, i)
    inv.linear(f"{p}.out_proj", hidden, inter, "ssm", "row", i, bias)
    return Mamba2State(inter, groups, state, heads, head_dim, kernel, ssm_bytes=_ssm_cache_bytes(cfg))


def build_nemotron_h(cfg: Config) -> Built:
    """Nemotron-H: `hybrid_override_pattern` gives each layer's block: M = Mamba-2, * = attention,
    - = MLP (squared ReLU, not gated), E = MoE (transformers `models/nemotron_h/modeling_nemotron_h.py`)."""
    hidden = cfg.int("hidden_size")
    n = cfg.int("num_hidden_layers")
    vocab = cfg.int("vocab_size")
    pattern = cfg.str("hybrid_override_pattern")
    if len(pattern) != n:
        raise ConfigError(f"{cfg.where} 'hybrid_override_pattern' has {len(pattern)} layers, "
                          f"'num_hidden_layers' says {n}: fix one of the two")
    heads = cfg.int("num_attention_heads")
    kv_heads = cfg.int("num_key_value_heads", default=heads)
    head_dim = cfg.int("head_dim", "attention_head_dim", default=hidden // heads)
    attn_bias = cfg.bool("attention_bias", default=False)
    mlp_bias = cfg.bool("mlp_bias", default=False)
    tie = cfg.bool("tie_word_embeddings", default=False)

    inv = Inventory()
    inv.embedding("backbone.embeddings.weight", vocab, hidden)
    moe = None
    for i, kind in enumerate(pattern):
        p = f"backbone.layers.{i}.mixer"
        inv.norm(f"backbone.layers.{i}.norm", hidden, i)
        if kind == "M":
            inv.layers.append(LayerSpec(i, _mamba2_mixer(inv, p, i, cfg, hidden), "mamba"))
        elif kind == "*":
            attention(inv, p, i, hidden, heads, kv_heads, head_dim, attn_bias, attn_bias)
            inv.layers.append(LayerSpec(i, AttentionKV(kv_heads, head_dim, head_dim), "attention"))
        elif kind == "-":
            inter = cfg.int("intermediate_size")
            inv.linear(f"{p}.up_proj", inter, hidden, "mlp", "column", i, mlp_bias)
            inv.linear(f"{p}.down_proj", hidden, inter, "mlp", "row", i, mlp_bias)
            inv.layers.append(LayerSpec(i, NoKV(), "mlp"))
        elif kind == "E":
            num, inter = cfg.int("n_routed_experts"), cfg.int("moe_intermediate_size")
            shared_inter = cfg.int("moe_shared_expert_intermediate_size", default=0, minimum=0)
            router(inv, f"{p}.gate", i, num, hidden)
            experts(inv, p, i, num, hidden, inter, gated=False)
            if shared_inter:
                inv.linear(f"{p}.shared_experts.up_proj", shared_inter, hidden, "shared_experts", "column", i)
                inv.linear(f"{p}.shared_experts.down_proj", hidden, shared_inter, "shared_experts", "row", i)
            moe = moe_info(num, cfg.int("num_experts_per_tok"), cfg.int("n_shared_experts", default=1))
            inv.layers.append(LayerSpec(i, NoKV(), "moe"))
        else:
            raise ConfigError(f"{cfg.where} 'hybrid_override_pattern' has an unknown block {kind!r} at layer {i}: "
                              "kvplan knows M (Mamba-2), * (attention), - (MLP) and E (MoE)")
    inv.head("backbone.norm_f", "lm_head", vocab, hidden, tie)
    notes = ["hybrid: Mamba-2 layers keep a constant state per request; only the attention layers grow with tokens"]
    return Built(inv, heads, kv_heads, context_length(cfg), tie, moe, notes)


def build_qwen3_next(cfg: Config) -> Built:
    """Qwen3-Next: every `full_attention_interval`-th layer is gated full attention, the rest gated DeltaNet;
    every layer has a MoE with one gated shared expert (transformers `models/qwen3_next/modeling_qwen3_next.py`)."""
    hidden = cfg.int("hidden_size")
    n = cfg.int("num_hidden_layers")
    vocab = cfg.int("vocab_size")
    heads = cfg.int("num_attention_heads")
    kv_heads = cfg.int("num_key_value_heads")
    head_dim = cfg.int("head_dim", default=hidden // heads)
    nk, nv = cfg.int("linear_num_key_heads"), cfg.int("linear_num_value_heads")
    dk, dv = cfg.int("linear_key_head_dim"), cfg.int("linear_value_head_dim")
    kernel = cfg.int("linear_conv_kernel_dim", default=4)
    tie = cfg.bool("tie_word_embeddings", default=False)
    interval = cfg.int("full_attention_interval", default=4)
    types = (layer_types(cfg, n) if "layer_types" in cfg
             else ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(n)])
    num, top_k = cfg.int("num_experts"), cfg.int("num_experts_per_tok")
    step = cfg.int("decoder_sparse_step", default=1)
    dense_layers = cfg.int_list("mlp_only_layers", default=[])

    inv = Inventory()
    inv.embedding("model.embed_tokens.weight", vocab, hidden)
    for i in range(n):
        p = f"model.layers.{i}"
        if types[i] == "linear_attention":
            a = f"{p}.linear_attn"
            key_dim, value_dim = nk * dk, nv * dv
            conv_dim = 2 * key_dim + value_dim
            inv.linear(f"{a}.in_proj_qkvz", 2 * key_dim + 2 * value_dim, hidden, "attention", "column", i)
            inv.linear(f"{a}.in_proj_ba", 2 * nv, hidden, "attention", "column", i)
            inv.add(f"{a}.conv1d.weight", (conv_dim, 1, kernel), "attention", 0, False, i)
            inv.add(f"{a}.dt_bias", (nv,), "attention", 0, False, i)
            inv.add(f"{a}.A_log", (nv,), "attention", 0, False, i)
            inv.norm(f"{a}.norm", dv, i)
            inv.linear(f"{a}.out_proj", hidden, value_dim, "attention", "row", i)
            kv = GatedDeltaNetState(nk, nv, dk, dv, kernel)
        else:
            a = f"{p}.self_attn"
            # gated attention: q_proj also produces the output gate, hence 2 x heads x head_dim
            inv.linear(f"{a}.q_proj", 2 * heads * head_dim, hidden, "attention", "column", i)
            inv.linear(f"{a}.k_proj", kv_heads * head_dim, hidden, "attention", "column", i)
            inv.linear(f"{a}.v_proj", kv_heads * head_dim, hidden, "attention", "column", i)
            inv.linear(f"{a}.o_proj", hidden, heads * head_dim, "attention", "row", i)
            inv.norm(f"{a}.q_norm", head_dim, i)
            inv.norm(f"{a}.k_norm", head_dim, i)
            kv = AttentionKV(kv_heads, head_dim, head_dim)
        if i not in dense_layers and (i + 1) % step == 0:
            router(inv, f"{p}.mlp.gate", i, num, hidden)
            experts(inv, f"{p}.mlp", i, num, hidden, cfg.int("moe_intermediate_size"))
            shared_inter = cfg.int("shared_expert_intermediate_size", default=0, minimum=0)
            if shared_inter:
                gated_mlp(inv, f"{p}.mlp.shared_expert", i, hidden, shared_inter, role="shared_experts")
                router(inv, f"{p}.mlp.shared_expert_gate", i, 1, hidden)
        else:
            gated_mlp(inv, f"{p}.mlp", i, hidden, cfg.int("intermediate_size"))
        inv.norm(f"{p}.input_layernorm", hidden, i)
        inv.norm(f"{p}.post_attention_layernorm", hidden, i)
        inv.layers.append(LayerSpec(i, kv, types[i].replace("_attention", "") + "+moe"))
    inv.head("model.norm", "lm_head", vocab, hidden, tie)
    notes = ["hybrid: gated-DeltaNet layers keep a constant state per request; "
             "only the full-attention layers grow with tokens"]
    shared = 1 if cfg.int("shared_expert_intermediate_size", default=0, minimum=0) else 0
    rope = rope_tables(cfg, head_dim)
    return Built(inv, heads, kv_heads, context_length(cfg), tie, moe_info(num, top_k, shared), notes, rope)
