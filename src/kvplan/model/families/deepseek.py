"""DeepSeek-V2 / V3 (and R1, Kimi-K2 style): multi-head latent attention + MoE with shared experts.

MLA caches one latent of kv_lora_rank + qk_rope_head_dim per token per layer, the same on every TP rank.
Layers below `first_k_dense_replace` (and those off `moe_layer_freq`) have a dense MLP. The multi-token-
prediction layers (`num_nextn_predict_layers`) are stored in the checkpoint but loaded only for speculative decoding
(`Built.mtp`).
"""

from __future__ import annotations

from kvplan.model.config import Config
from kvplan.model.families.blocks import Inventory, experts, gated_mlp, moe_info, router
from kvplan.model.families.common import Built, context_length, rope_tables
from kvplan.model.spec import MLAKV, LayerSpec, MoE


def build(cfg: Config) -> Built:
    hidden = cfg.int("hidden_size")
    n = cfg.int("num_hidden_layers")
    heads = cfg.int("num_attention_heads")
    vocab = cfg.int("vocab_size")
    rope = cfg.int("qk_rope_head_dim")
    tie = cfg.bool("tie_word_embeddings", default=False)

    inv = Inventory()
    inv.embedding("model.embed_tokens.weight", vocab, hidden)
    moe = None
    for i in range(n):
        moe = _decoder_layer(inv, cfg, i) or moe
    inv.head("model.norm", "lm_head", vocab, hidden, tie)
    notes = ["multi-head latent attention: the KV latent is replicated on every tensor-parallel rank"]
    mtp_layers = cfg.int("num_nextn_predict_layers", default=0, minimum=0)
    mtp = None
    if mtp_layers:
        notes.append(f"the checkpoint also stores {mtp_layers} multi-token-prediction layer(s), loaded only for "
                     "speculative decoding (counted with --speculative-method mtp)")
        mtp = Inventory()
        for i in range(n, n + mtp_layers):
            _mtp_layer(mtp, cfg, i)
    rope_table = rope_tables(cfg, rope, rotary_dim=rope, fp32=True)  # vLLM keeps the DeepSeek YaRN table in fp32
    return Built(inv, heads, heads, context_length(cfg), tie, moe, notes, rope_table, mtp)


def _decoder_layer(inv: Inventory, cfg: Config, i: int) -> MoE | None:
    """Decoder layer `i` (MLA, then a dense MLP or the MoE): its tensors and KV spec; the MoE when it has one."""
    hidden = cfg.int("hidden_size")
    heads = cfg.int("num_attention_heads")
    q_lora = cfg.opt_int("q_lora_rank")
    kv_lora = cfg.int("kv_lora_rank")
    nope, rope = cfg.int("qk_nope_head_dim"), cfg.int("qk_rope_head_dim")
    v_dim = cfg.int("v_head_dim")
    bias = cfg.bool("attention_bias", default=False)
    n_experts = cfg.int("n_routed_experts", default=0, minimum=0)
    first_dense = cfg.int("first_k_dense_replace", default=0, minimum=0)
    freq = cfg.int("moe_layer_freq", default=1)
    p = f"model.layers.{i}"
    a = f"{p}.self_attn"
    q_out = heads * (nope + rope)
    if q_lora:
        inv.linear(f"{a}.q_a_proj", q_lora, hidden, "attention", None, i, bias)
        inv.norm(f"{a}.q_a_layernorm", q_lora, i)
        inv.linear(f"{a}.q_b_proj", q_out, q_lora, "attention", "column", i)
    else:
        inv.linear(f"{a}.q_proj", q_out, hidden, "attention", "column", i)
    inv.linear(f"{a}.kv_a_proj_with_mqa", kv_lora + rope, hidden, "attention", None, i, bias)
    inv.norm(f"{a}.kv_a_layernorm", kv_lora, i)
    inv.linear(f"{a}.kv_b_proj", heads * (nope + v_dim), kv_lora, "attention", "column", i)
    inv.linear(f"{a}.o_proj", hidden, heads * v_dim, "attention", "row", i, bias)
    moe = None
    if n_experts and i >= first_dense and i % freq == 0:
        moe_inter = cfg.int("moe_intermediate_size")
        shared = cfg.int("n_shared_experts", default=0, minimum=0)
        router(inv, f"{p}.mlp.gate", i, n_experts, hidden)
        experts(inv, f"{p}.mlp", i, n_experts, hidden, moe_inter)
        if shared:
            gated_mlp(inv, f"{p}.mlp.shared_experts", i, hidden, shared * moe_inter, role="shared_experts")
        moe = moe_info(n_experts, cfg.int("num_experts_per_tok"), shared)
        block = "mla+moe"
    else:
        gated_mlp(inv, f"{p}.mlp", i, hidden, cfg.int("intermediate_size"))
        block = "mla+mlp"
    inv.norm(f"{p}.input_layernorm", hidden, i)
    inv.norm(f"{p}.post_attention_layernorm", hidden, i)
    inv.layers.append(LayerSpec(i, MLAKV(kv_lora, rope), block))
    return moe


def _mtp_layer(inv: Inventory, cfg: Config, i: int) -> None:
    """Multi-token-prediction layer `i` as vLLM loads it (model_executor/models/deepseek_mtp.py 0.19.0
    DeepSeekMultiTokenPredictorLayer): enorm and hnorm, eh_proj (a plain nn.Linear(2 x hidden, hidden) in the
    model dtype: replicated, never quantized), a full decoder layer, and shared_head's norm; the checkpoint's
    copies of embed_tokens and shared_head.head are not loaded (the drafter shares the target's embedding and
    head, v1/spec_decode/eagle.py _maybe_share_embeddings / _maybe_share_lm_head)."""
    hidden = cfg.int("hidden_size")
    p = f"model.layers.{i}"
    inv.norm(f"{p}.enorm", hidden, i)
    inv.norm(f"{p}.hnorm", hidden, i)
    inv.add(f"{p}.eh_proj.weight", (hidden, 2 * hidden), "other", None, False, i)
    _decoder_layer(inv, cfg, i)
    inv.norm(f"{p}.shared_head.norm", hidden, i)
