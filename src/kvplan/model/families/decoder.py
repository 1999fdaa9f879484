"""Standard decoder-only transformers: one adapter, parameterized by each family's traits.

Covers llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe, granite, olmo2, gemma, gemma2,
gemma3_text, phi3, starcoder2 and phi. Each trait below was read off the family's transformers modeling
file (`transformers/models/<family>/modeling_<family>.py`) and is checked by the parameter-count oracle test.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvplan.model.config import Config
from kvplan.model.families.blocks import Inventory, attention, experts, gated_mlp, moe_info, plain_mlp, router
from kvplan.model.families.common import Built, attention_kv, context_length, layer_types, rope_tables
from kvplan.model.spec import LayerSpec


@dataclass(frozen=True)
class Traits:
    qkv_bias: bool | str = False  # a bool, or the config key that holds it
    o_bias: bool | str = False
    mlp_bias: bool | str = False
    mlp: str = "gated"  # "gated" (gate/up/down) or "plain" (two matrices)
    mlp_names: tuple[str, ...] = ("gate_proj", "up_proj", "down_proj")
    fused_qkv: str | None = None
    fused_gate_up: bool = False
    o_name: str = "o_proj"
    norms: tuple[str, ...] = ("input_layernorm", "post_attention_layernorm")
    norm_bias: bool | str = False
    final_norm: str = "norm"
    qk_norm: str | None = None  # "head": over head_dim; "full": over all heads
    lm_head_bias: bool = False
    tie_default: bool = False
    sliding: str = "none"  # "none", "all", "qwen", "alternate", "pattern"
    moe: str | None = None  # "mixtral", "qwen2_moe", "qwen3_moe"


_GEMMA_NORMS = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                "post_feedforward_layernorm")

TRAITS: dict[str, Traits] = {
    "llama": Traits(qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias"),
    "granite": Traits(qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias"),
    "mistral": Traits(sliding="all"),
    "mixtral": Traits(sliding="all", moe="mixtral"),
    "qwen2": Traits(qkv_bias=True, sliding="qwen"),
    "qwen2_moe": Traits(qkv_bias=True, sliding="qwen", moe="qwen2_moe"),
    "qwen3": Traits(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="head", sliding="qwen"),
    "qwen3_moe": Traits(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="head", sliding="qwen",
                        moe="qwen3_moe"),
    "olmo2": Traits(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="full",
                    norms=("post_attention_layernorm", "post_feedforward_layernorm")),
    "gemma": Traits(qkv_bias="attention_bias", o_bias="attention_bias", tie_default=True),
    "gemma2": Traits(qkv_bias="attention_bias", o_bias="attention_bias", norms=_GEMMA_NORMS,
                     tie_default=True, sliding="alternate"),
    "gemma3_text": Traits(qkv_bias="attention_bias", o_bias="attention_bias", norms=_GEMMA_NORMS,
                          qk_norm="head", tie_default=True, sliding="pattern"),
    "phi3": Traits(fused_qkv="qkv_proj", fused_gate_up=True, sliding="all"),
    "starcoder2": Traits(qkv_bias="use_bias", o_bias="use_bias", mlp_bias="use_bias", mlp="plain",
                         mlp_names=("c_fc", "c_proj"), norm_bias=True, tie_default=True, sliding="all"),
    "phi": Traits(qkv_bias=True, o_bias=True, mlp_bias=True, mlp="plain", mlp_names=("fc1", "fc2"),
                  o_name="dense", norms=("input_layernorm",), norm_bias=True, final_norm="final_layernorm",
                  lm_head_bias=True),
}


def _flag(cfg: Config, value: bool | str) -> bool:
    return cfg.bool(value, default=False) if isinstance(value, str) else value


def _attention_types(cfg: Config, t: Traits, n: int) -> list[str]:
    if "layer_types" in cfg:
        return layer_types(cfg, n)
    window = cfg.opt_int("sliding_window")
    if t.sliding == "all" and window:
        return ["sliding_attention"] * n
    if t.sliding == "qwen" and window and cfg.bool("use_sliding_window", default=False):
        first = cfg.int("max_window_layers", default=n, minimum=0)
        return ["sliding_attention" if i >= first else "full_attention" for i in range(n)]
    if t.sliding == "alternate":  # Gemma-2: even layers local, odd layers global
        return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]
    if t.sliding == "pattern":  # Gemma-3: `sliding_window_pattern` - 1 local layers, then one global
        pattern = cfg.int("sliding_window_pattern", "_sliding_window_pattern", default=6)
        return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
    return ["full_attention"] * n


def _is_sparse(cfg: Config, t: Traits, i: int) -> bool:
    if t.moe == "mixtral":
        return True
    if t.moe in ("qwen2_moe", "qwen3_moe"):
        step = cfg.int("decoder_sparse_step", default=1)
        only_mlp = cfg.int_list("mlp_only_layers", default=[])
        return cfg.int("num_experts", minimum=0) > 0 and i not in only_mlp and (i + 1) % step == 0
    return False


def build_decoder(cfg: Config, model_type: str, prefix: str = "model", lm_head: str = "lm_head",
                  tie: bool | None = None) -> Built:
    t = TRAITS[model_type]
    hidden = cfg.int("hidden_size")
    n = cfg.int("num_hidden_layers")
    heads = cfg.int("num_attention_heads")
    kv_heads = cfg.int("num_key_value_heads", default=heads)
    head_dim = cfg.int("head_dim", default=hidden // heads)
    vocab = cfg.int("vocab_size")
    inter = cfg.int("intermediate_size", "n_inner", default=None) or 4 * hidden
    window = cfg.opt_int("sliding_window")
    qkv_bias, o_bias, mlp_bias = _flag(cfg, t.qkv_bias), _flag(cfg, t.o_bias), _flag(cfg, t.mlp_bias)
    norm_bias = _flag(cfg, t.norm_bias)
    if tie is None:
        tie = cfg.bool("tie_word_embeddings", default=t.tie_default)

    inv = Inventory()
    inv.embedding(f"{prefix}.embed_tokens.weight", vocab, hidden)
    types = _attention_types(cfg, t, n)
    moe = None
    for i in range(n):
        p = f"{prefix}.layers.{i}"
        attention(inv, f"{p}.self_attn", i, hidden, heads, kv_heads, head_dim, qkv_bias, o_bias,
                  o_name=t.o_name, fused_qkv=t.fused_qkv)
        if t.qk_norm == "head":
            inv.norm(f"{p}.self_attn.q_norm", head_dim, i)
            inv.norm(f"{p}.self_attn.k_norm", head_dim, i)
        elif t.qk_norm == "full":
            inv.norm(f"{p}.self_attn.q_norm", heads * head_dim, i)
            inv.norm(f"{p}.self_attn.k_norm", kv_heads * head_dim, i)
        if _is_sparse(cfg, t, i):
            moe = _sparse_block(inv, cfg, t, p, i, hidden)
            block = "attention+moe"
        else:
            if t.mlp == "gated":
                gated_mlp(inv, f"{p}.mlp", i, hidden, inter, mlp_bias, fused=t.fused_gate_up,
                          names=t.mlp_names)  # type: ignore[arg-type]
            else:
                plain_mlp(inv, f"{p}.mlp", i, hidden, inter, mlp_bias, names=t.mlp_names)  # type: ignore[arg-type]
            block = "attention+mlp"
        for norm in t.norms:
            inv.norm(f"{p}.{norm}", hidden, i, norm_bias)
        inv.layers.append(LayerSpec(i, attention_kv(types[i], kv_heads, head_dim, window), block))
    # an EAGLE-3 drafter's head covers a smaller draft vocabulary (its config's draft_vocab_size)
    head_rows = cfg.int("draft_vocab_size", default=vocab)
    inv.head(f"{prefix}.{t.final_norm}", lm_head, head_rows, hidden, tie, t.lm_head_bias, norm_bias=norm_bias)
    rope = rope_tables(cfg, head_dim, local_base=model_type == "gemma3_text")
    return Built(inv, heads, kv_heads, context_length(cfg), tie, moe, rope=rope)


def _sparse_block(inv: Inventory, cfg: Config, t: Traits, p: str, i: int, hidden: int):
    if t.moe == "mixtral":
        num, top_k = cfg.int("num_local_experts"), cfg.int("num_experts_per_tok")
        router(inv, f"{p}.block_sparse_moe.gate", i, num, hidden)
        experts(inv, f"{p}.block_sparse_moe", i, num, hidden, cfg.int("intermediate_size"))
        return moe_info(num, top_k)
    num, top_k = cfg.int("num_experts"), cfg.int("num_experts_per_tok")
    router(inv, f"{p}.mlp.gate", i, num, hidden)
    experts(inv, f"{p}.mlp", i, num, hidden, cfg.int("moe_intermediate_size"))
    shared = 0
    if t.moe == "qwen2_moe":
        shared_inter = cfg.int("shared_expert_intermediate_size", minimum=0)
        if shared_inter:
            gated_mlp(inv, f"{p}.mlp.shared_expert", i, hidden, shared_inter, role="shared_experts")
            router(inv, f"{p}.mlp.shared_expert_gate", i, 1, hidden)
            shared = 1
    return moe_info(num, top_k, shared)
