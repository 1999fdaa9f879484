"""GGUF metadata -> an HF-style config.json dict per architecture, for `kvplan.model.load.from_config`.

The header itself (types, tensors, exact bytes) is read by `kvplan.model.sources.gguf`; this module only maps
what that header holds. `config_from_gguf(header)` is the entry point (`kvplan.model.sources.hub` calls it for a
Hub repo that holds GGUF files). Supported `general.architecture` values and the `model_type` each becomes:
llama -> llama (mistral when the file carries `llama.attention.sliding_window`; mixtral when `llama.expert_count`
> 0), qwen2 -> qwen2, qwen2moe -> qwen2_moe, qwen3 -> qwen3, qwen3moe -> qwen3_moe, gemma -> gemma, gemma2 ->
gemma2, gemma3 -> gemma3_text, phi3 -> phi3, falcon -> falcon, starcoder2 -> starcoder2, deepseek2 ->
deepseek_v2 (deepseek_v3 when the router carries the `exp_probs_b` correction bias), gpt-oss -> gpt_oss, granite
-> granite, olmo2 -> olmo2.

Keys (`{a}` is the architecture) -> config keys:

- `{a}.block_count` -> num_hidden_layers (minus `{a}.nextn_predict_layers`, the stored MTP layers)
- `{a}.embedding_length` -> hidden_size
- `{a}.feed_forward_length` -> intermediate_size (falcon: ffn_hidden_size)
- `{a}.attention.head_count` / `.head_count_kv` -> num_attention_heads / num_key_value_heads (falcon:
  num_kv_heads); a per-layer array is accepted when all its entries are equal
- `{a}.attention.key_length` -> head_dim (default embedding_length / head_count); `.value_length` must match it,
  except in deepseek2
- `{a}.context_length` -> max_position_embeddings
- `{a}.rope.freq_base` -> rope_theta; `{a}.rope.scaling.type` / `.factor` / `.original_context_length` ->
  rope_scaling {rope_type, factor, original_max_position_embeddings}; `{a}.rope.dimension_count` smaller than
  head_dim -> partial_rotary_factor
- `{a}.attention.layer_norm_rms_epsilon` -> rms_norm_eps; `.layer_norm_epsilon` -> layer_norm_epsilon (falcon),
  norm_epsilon (starcoder2)
- `{a}.expert_count` -> num_local_experts (mixtral, gpt-oss), num_experts (qwen MoE), n_routed_experts (deepseek)
- `{a}.expert_used_count` -> num_experts_per_tok
- `{a}.expert_feed_forward_length` -> moe_intermediate_size (qwen MoE, deepseek), intermediate_size (gpt-oss,
  mixtral when present)
- `{a}.expert_shared_feed_forward_length` -> shared_expert_intermediate_size (qwen2moe)
- `{a}.expert_shared_count`, `.leading_dense_block_count` -> n_shared_experts, first_k_dense_replace (deepseek)
- `{a}.attention.q_lora_rank`, `.kv_lora_rank` -> q_lora_rank, kv_lora_rank; `.key_length_mla` (or key_length
  in files written before llama.cpp split kv_b) minus rope.dimension_count -> qk_nope_head_dim;
  `.value_length_mla` (or value_length) -> v_head_dim; rope.dimension_count -> qk_rope_head_dim (deepseek)
- `{a}.attention.sliding_window` -> sliding_window; `{a}.attention.sliding_window_pattern` -> sliding_window_pattern
  (an integer) or layer_types (a per-layer bool array); gemma2 defaults to 4096 and gemma3 to pattern 6 and a
  10000 local rope base, as llama.cpp's loader does
- `{a}.attn_logit_softcapping`, `.final_logit_softcapping` -> the same names (gemma2)
- `{a}.attention.scale`, `.embedding_scale`, `.residual_scale`, `.logit_scale` -> attention_multiplier,
  embedding_multiplier, residual_multiplier, logits_scaling (granite)

From the tensors: vocab_size is the row count of `token_embd.weight` (else `{a}.vocab_size`, else the length of
`tokenizer.ggml.tokens`); tie_word_embeddings is the absence of `output.weight`; biases (attention_bias, mlp_bias,
use_bias, falcon's bias) are the presence of `blk.N.attn_q.bias` / `attn_output.bias` / `ffn_up.bias`; MoE layers
without a router (`blk.N.ffn_gate_inp.weight`) become qwen's mlp_only_layers; falcon's `blk.N.attn_norm_2` marks
the new decoder architecture with two layer norms. torch_dtype is "bfloat16": the quantized storage is what
`GGUFHeader.bytes_by_type` / `total_bytes` report, which the config cannot express.

A split GGUF (llama.cpp's gguf-split: `split.no`, `split.count`, `split.tensors.count` in every shard) is mapped
only from all its shards' headers combined with `gguf.merge_shards`; one shard alone is refused, since the output
head, the biases and the MoE layers may sit in another shard.

Not recoverable from a header: Llama-3 / LongRoPE rope factors (llama.cpp stores them as `rope_freqs` /
`rope_factors_*` tensors, so rope_scaling keeps only their type and original context), qwen2's
use_sliding_window and starcoder2's window (llama.cpp's converter drops them and its runtime attends to the full
context), and a multimodal model's vision tower (a separate mmproj GGUF).
"""

from __future__ import annotations

from typing import Any

from kvplan.errors import InputError, UnsupportedModelError, suggest
from kvplan.model.sources.gguf import GGUFArray, GGUFHeader

_MISSING = object()


class _View:
    """Typed access to one architecture's keys and tensors, with errors that name the key."""

    def __init__(self, header: GGUFHeader, arch: str):
        self.h = header
        self.arch = arch
        self.meta = header.metadata
        self.layer_tensors: dict[int, set[str]] = {}
        for t in header.tensors:
            parts = t.name.split(".", 2)
            if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit():
                self.layer_tensors.setdefault(int(parts[1]), set()).add(parts[2])

    def raw(self, suffix: str, default: Any = _MISSING) -> Any:
        key = f"{self.arch}.{suffix}"
        if key in self.meta:
            return self.meta[key]
        if default is _MISSING:
            raise InputError(f"the GGUF metadata lacks {key!r}, which kvplan needs for a {self.arch} model")
        return default

    def int(self, suffix: str, default: Any = _MISSING, minimum: int = 1) -> Any:
        value = self.raw(suffix, default)
        if value is default and default is not _MISSING:
            return value
        key = f"{self.arch}.{suffix}"
        if isinstance(value, list):  # per-layer array (llama.cpp's get_key_or_arr)
            if not value or len(set(value)) != 1:
                raise UnsupportedModelError(
                    f"{key} varies per layer ({_short(value)}): kvplan's {self.arch} mapping needs one value"
                )
            value = value[0]
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"the GGUF key {key!r} must be an integer (got {value!r})")
        if value < minimum:
            raise InputError(f"the GGUF key {key!r} must be at least {minimum} (got {value})")
        return value

    def float(self, suffix: str) -> float | None:
        value = self.raw(suffix, None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"the GGUF key {self.arch}.{suffix!r} must be a number (got {value!r})")
        return value

    def any_layer(self, suffix: str) -> bool:
        return any(suffix in names for names in self.layer_tensors.values())

    def shape(self, name: str) -> tuple[int, ...] | None:
        t = self.h.tensor(name)
        return t.shape if t else None

    def layer_shape(self, suffix: str) -> tuple[int, ...] | None:
        for i in sorted(self.layer_tensors):
            if suffix in self.layer_tensors[i]:
                return self.shape(f"blk.{i}.{suffix}")
        return None


def _short(values: list) -> str:
    return ", ".join(map(str, values[:8])) + (", ..." if len(values) > 8 else "")


def _vocab(v: _View) -> int:
    emb = v.shape("token_embd.weight")
    if emb and len(emb) == 2:
        return emb[1]
    size = v.int("vocab_size", default=None)
    if size:
        return size
    tokens = v.meta.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list | GGUFArray) and len(tokens):
        return len(tokens)
    raise InputError("the GGUF has no token_embd.weight tensor, no vocab_size and no tokenizer.ggml.tokens")


def _base(v: _View, model_type: str, architecture: str) -> dict[str, Any]:
    hidden = v.int("embedding_length")
    n = v.int("block_count") - v.int("nextn_predict_layers", default=0, minimum=0)
    heads = v.int("attention.head_count")
    kv = v.int("attention.head_count_kv", default=heads)
    if f"{v.arch}.attention.key_length" not in v.meta and hidden % heads:
        raise InputError(f"{v.arch}.embedding_length {hidden} is not a multiple of head_count {heads} and the GGUF "
                         "has no attention.key_length")
    head_dim = v.int("attention.key_length", default=hidden // heads)
    cfg: dict[str, Any] = {
        "model_type": model_type,
        "architectures": [architecture],
        "hidden_size": hidden,
        "num_hidden_layers": n,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": head_dim,
        "vocab_size": _vocab(v),
        "tie_word_embeddings": v.h.tensor("output.weight") is None,
        "torch_dtype": "bfloat16",
    }
    if (ff := v.int("feed_forward_length", default=None, minimum=0)) is not None:
        cfg["intermediate_size"] = ff
    if (ctx := v.int("context_length", default=None)) is not None:
        cfg["max_position_embeddings"] = ctx
    if (eps := v.float("attention.layer_norm_rms_epsilon")) is not None:
        cfg["rms_norm_eps"] = eps
    if isinstance(name := v.meta.get("general.name"), str) and name:
        cfg["_name_or_path"] = name
    _rope(v, cfg)
    return cfg


def _rope(v: _View, cfg: dict[str, Any], rope_dim_is_head: bool = True) -> None:
    if (theta := v.float("rope.freq_base")) is not None:
        cfg["rope_theta"] = theta
    kind = v.raw("rope.scaling.type", None)
    factor = v.float("rope.scaling.factor") or v.float("rope.scale_linear")
    orig = v.int("rope.scaling.original_context_length", default=None)
    if kind in (None, "none") and factor and factor != 1.0:
        kind = "linear"  # llama.cpp's default when only a factor is stored
    if kind == "linear" and factor and factor != 1.0:
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": factor}
    elif kind == "yarn":
        scaling: dict[str, Any] = {"rope_type": "yarn", "factor": factor or 1.0}
        if orig:
            scaling["original_max_position_embeddings"] = orig
        cfg["rope_scaling"] = scaling
    elif kind == "longrope" or v.h.tensor("rope_factors_long.weight") is not None:
        # the long/short factors are tensor data; kvplan sizes the tables from the original context alone
        cfg["rope_scaling"] = {"rope_type": "longrope"}
        if orig:
            cfg["rope_scaling"]["original_max_position_embeddings"] = orig
            cfg["original_max_position_embeddings"] = orig
    rope_dim = v.int("rope.dimension_count", default=None)
    if rope_dim_is_head and rope_dim and rope_dim != cfg["head_dim"]:
        cfg["partial_rotary_factor"] = rope_dim / cfg["head_dim"]


def _same_kv_dims(v: _View, cfg: dict[str, Any]) -> None:
    value = v.int("attention.value_length", default=None)
    if value is not None and value != cfg["head_dim"]:
        raise UnsupportedModelError(
            f"{v.arch}.attention.value_length {value} differs from key_length {cfg['head_dim']}: kvplan's "
            f"{cfg['model_type']} adapter assumes equal K and V head sizes"
        )


def _check_attention(v: _View, cfg: dict[str, Any]) -> None:
    """Metadata and tensor shapes must agree (llama.cpp's loader enforces the same shapes)."""
    hd, hidden = cfg["head_dim"], cfg["hidden_size"]
    for suffix, rows in (("attn_q.weight", cfg["num_attention_heads"] * hd),
                         ("attn_k.weight", cfg["num_key_value_heads"] * hd)):
        shape = v.layer_shape(suffix)
        if shape and len(shape) == 2 and shape != (hidden, rows):
            raise InputError(
                f"GGUF metadata and tensors disagree: blk.N.{suffix} is {list(shape)}, the metadata implies "
                f"[{hidden}, {rows}] (heads x head_dim): the file is inconsistent"
            )


def _sliding(v: _View, cfg: dict[str, Any], default: int | None = None) -> int | None:
    window = v.int("attention.sliding_window", default=default, minimum=0) or None
    if window:
        cfg["sliding_window"] = window
    return window


def _biases(v: _View) -> tuple[bool, bool, bool]:
    """Attention input (q/k/v), attention output and MLP biases, from the tensors present."""
    qkv = v.any_layer("attn_q.bias") or v.any_layer("attn_qkv.bias")
    out = v.any_layer("attn_output.bias")
    mlp = v.any_layer("ffn_up.bias") or v.any_layer("ffn_down.bias")
    return qkv, out, mlp


def _moe_layers(v: _View, n: int) -> list[int] | None:
    """Layers without a router, when the file has routers at all (None: no tensors to tell)."""
    routed = {i for i, names in v.layer_tensors.items() if "ffn_gate_inp.weight" in names}
    if not routed:
        return None
    return [i for i in range(n) if i not in routed]


def _expert_ff(v: _View, key: str, tensor: str) -> int | None:
    """An expert FFN width: the key, else the stored tensor's rows (ne1 of [hidden, ff, experts])."""
    value = v.int(key, default=None)
    if value:
        return value
    shape = v.layer_shape(tensor)
    return shape[1] if shape and len(shape) >= 2 else None


def _llama(v: _View) -> dict[str, Any]:
    experts = v.int("expert_count", default=0, minimum=0)
    qkv_bias, o_bias, mlp_bias = _biases(v)
    if experts:
        cfg = _base(v, "mixtral", "MixtralForCausalLM")
        if qkv_bias or o_bias or mlp_bias:
            raise UnsupportedModelError("a llama-architecture MoE GGUF with biases has no transformers equivalent "
                                        "kvplan models (Mixtral has none)")
        cfg["num_local_experts"] = experts
        cfg["num_experts_per_tok"] = v.int("expert_used_count")
        inter = _expert_ff(v, "expert_feed_forward_length", "ffn_up_exps.weight") or cfg.get("intermediate_size")
        if inter:
            cfg["intermediate_size"] = inter
        _sliding(v, cfg)
    elif f"{v.arch}.attention.sliding_window" in v.meta and v.int("attention.sliding_window", minimum=0):
        cfg = _base(v, "mistral", "MistralForCausalLM")
        if qkv_bias or o_bias or mlp_bias:
            raise UnsupportedModelError("a sliding-window llama GGUF with biases has no transformers equivalent")
        _sliding(v, cfg)
    else:
        cfg = _base(v, "llama", "LlamaForCausalLM")
        if qkv_bias != o_bias:
            raise UnsupportedModelError("this llama GGUF has q/k/v biases without an output bias (or the reverse): "
                                        "transformers' llama attention_bias sets all four")
        cfg["attention_bias"] = qkv_bias
        cfg["mlp_bias"] = mlp_bias
    _same_kv_dims(v, cfg)
    return cfg


def _qwen2(v: _View) -> dict[str, Any]:
    cfg = _base(v, "qwen2", "Qwen2ForCausalLM")
    _require_qkv_bias(v)
    _sliding(v, cfg)  # llama.cpp runs qwen2 with full attention; use_sliding_window stays false
    _same_kv_dims(v, cfg)
    return cfg


def _require_qkv_bias(v: _View) -> None:
    if v.layer_tensors and not v.any_layer("attn_q.bias"):
        raise UnsupportedModelError(f"this {v.arch} GGUF has no q/k/v biases, which every transformers "
                                    f"{v.arch} model has: it is another architecture under that name")


def _qwen3(v: _View) -> dict[str, Any]:
    cfg = _base(v, "qwen3", "Qwen3ForCausalLM")
    cfg["attention_bias"] = _biases(v)[0]
    _same_kv_dims(v, cfg)
    return cfg


def _qwen_moe(v: _View, model_type: str, architecture: str) -> dict[str, Any]:
    cfg = _base(v, model_type, architecture)
    n = cfg["num_hidden_layers"]
    cfg["num_experts"] = v.int("expert_count")
    cfg["num_experts_per_tok"] = v.int("expert_used_count")
    moe_inter = _expert_ff(v, "expert_feed_forward_length", "ffn_up_exps.weight")
    if not moe_inter:
        raise InputError(f"the GGUF has neither {v.arch}.expert_feed_forward_length nor expert tensors")
    cfg["moe_intermediate_size"] = moe_inter
    cfg.setdefault("intermediate_size", moe_inter)
    cfg["decoder_sparse_step"] = 1
    dense = _moe_layers(v, n)
    if dense:
        cfg["mlp_only_layers"] = dense
    if model_type == "qwen2_moe":
        _require_qkv_bias(v)
        shared = _expert_ff(v, "expert_shared_feed_forward_length", "ffn_up_shexp.weight") or 0
        cfg["shared_expert_intermediate_size"] = shared
    else:
        cfg["attention_bias"] = _biases(v)[0]
    _same_kv_dims(v, cfg)
    return cfg


def _gemma(v: _View) -> dict[str, Any]:
    cfg = _base(v, "gemma", "GemmaForCausalLM")
    cfg["attention_bias"] = _biases(v)[0]
    _same_kv_dims(v, cfg)
    return cfg


def _gemma2(v: _View) -> dict[str, Any]:
    cfg = _base(v, "gemma2", "Gemma2ForCausalLM")
    cfg["attention_bias"] = _biases(v)[0]
    _sliding(v, cfg, default=4096)  # llama.cpp's default for Gemma 2
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if (value := v.float(key)) is not None:
            cfg[key] = value
    _same_kv_dims(v, cfg)
    return cfg


def _gemma3(v: _View) -> dict[str, Any]:
    cfg = _base(v, "gemma3_text", "Gemma3ForCausalLM")
    cfg["attention_bias"] = _biases(v)[0]
    if not _sliding(v, cfg):
        raise InputError("the GGUF lacks gemma3.attention.sliding_window, which llama.cpp requires for gemma3")
    pattern = v.raw("attention.sliding_window_pattern", None)
    n = cfg["num_hidden_layers"]
    if isinstance(pattern, list):
        if len(pattern) < n:
            raise InputError(f"gemma3.attention.sliding_window_pattern has {len(pattern)} entries for {n} layers")
        cfg["layer_types"] = ["sliding_attention" if s else "full_attention" for s in pattern[:n]]
    else:
        cfg["sliding_window_pattern"] = pattern if isinstance(pattern, int) and pattern > 0 else 6
    cfg["rope_local_base_freq"] = v.float("rope.freq_base_swa") or 10000.0
    _same_kv_dims(v, cfg)
    return cfg


def _phi3(v: _View) -> dict[str, Any]:
    cfg = _base(v, "phi3", "Phi3ForCausalLM")
    if any(_biases(v)):
        raise UnsupportedModelError("this phi3 GGUF has biases, which transformers' Phi-3 has not")
    _sliding(v, cfg)
    _same_kv_dims(v, cfg)
    return cfg


def _falcon(v: _View) -> dict[str, Any]:
    cfg = _base(v, "falcon", "FalconForCausalLM")
    heads, kv = cfg["num_attention_heads"], cfg.pop("num_key_value_heads")
    two_norms = v.any_layer("attn_norm_2.weight")
    new_arch = two_norms or kv not in (1, heads)
    cfg.update({
        "num_kv_heads": kv,
        "new_decoder_architecture": new_arch,
        "multi_query": kv == 1 and not new_arch,
        "parallel_attn": True,  # llama.cpp's falcon graph is the parallel one
        "bias": _biases(v)[0],
        "alibi": False,
    })
    if new_arch:
        cfg["num_ln_in_parallel_attn"] = 2 if two_norms else 1
    if "intermediate_size" in cfg:
        cfg["ffn_hidden_size"] = cfg.pop("intermediate_size")
    if (eps := v.float("attention.layer_norm_epsilon")) is not None:
        cfg["layer_norm_epsilon"] = eps
    del cfg["head_dim"]  # falcon's is always hidden_size / heads
    return cfg


def _starcoder2(v: _View) -> dict[str, Any]:
    cfg = _base(v, "starcoder2", "Starcoder2ForCausalLM")
    cfg["use_bias"] = _biases(v)[0]
    if (eps := v.float("attention.layer_norm_epsilon")) is not None:
        cfg["norm_epsilon"] = eps
    _sliding(v, cfg)
    _same_kv_dims(v, cfg)
    return cfg


def _deepseek2(v: _View) -> dict[str, Any]:
    v3 = v.any_layer("exp_probs_b.bias") or v.any_layer("exp_probs_b")
    cfg = _base(v, "deepseek_v3" if v3 else "deepseek_v2", "DeepseekV3ForCausalLM" if v3 else "DeepseekV2ForCausalLM")
    for key in ("num_key_value_heads", "head_dim", "partial_rotary_factor"):
        cfg.pop(key, None)
    rope = v.int("rope.dimension_count")
    # llama.cpp >= 2025-04 stores the absorbed-MLA sizes in key/value_length and the per-head ones in *_mla
    key_len = v.int("attention.key_length_mla", default=None) or v.int("attention.key_length")
    value_len = v.int("attention.value_length_mla", default=None) or v.int("attention.value_length")
    if key_len <= rope:
        raise InputError(f"deepseek2 key length {key_len} is not larger than the rope dimension {rope}")
    q_lora = v.int("attention.q_lora_rank", default=0, minimum=0)
    cfg.update({
        "q_lora_rank": q_lora or None,
        "kv_lora_rank": v.int("attention.kv_lora_rank"),
        "qk_rope_head_dim": rope,
        "qk_nope_head_dim": key_len - rope,
        "v_head_dim": value_len,
        "n_routed_experts": v.int("expert_count", default=0, minimum=0),
        "first_k_dense_replace": v.int("leading_dense_block_count", default=0, minimum=0),
        "moe_layer_freq": 1,
        "n_shared_experts": v.int("expert_shared_count", default=0, minimum=0),
    })
    if cfg["n_routed_experts"]:
        cfg["num_experts_per_tok"] = v.int("expert_used_count")
        cfg["moe_intermediate_size"] = _expert_ff(v, "expert_feed_forward_length", "ffn_up_exps.weight")
    nextn = v.int("nextn_predict_layers", default=0, minimum=0)
    if nextn:
        cfg["num_nextn_predict_layers"] = nextn
    if any(_biases(v)[:2]):
        cfg["attention_bias"] = True
    return cfg


def _gpt_oss(v: _View) -> dict[str, Any]:
    cfg = _base(v, "gpt_oss", "GptOssForCausalLM")
    cfg["num_local_experts"] = v.int("expert_count")
    cfg["num_experts_per_tok"] = v.int("expert_used_count")
    inter = _expert_ff(v, "expert_feed_forward_length", "ffn_up_exps.weight") or cfg.get("intermediate_size")
    if not inter:
        raise InputError("the GGUF has neither gpt-oss.expert_feed_forward_length nor expert tensors")
    cfg["intermediate_size"] = inter
    cfg["attention_bias"] = _biases(v)[0]
    if not _sliding(v, cfg):
        raise InputError("the GGUF lacks gpt-oss.attention.sliding_window, which llama.cpp requires")
    # llama.cpp: swa pattern 2, even layers sliding (transformers' GptOssConfig default layer_types)
    cfg["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention"
                          for i in range(cfg["num_hidden_layers"])]
    _same_kv_dims(v, cfg)
    return cfg


def _granite(v: _View) -> dict[str, Any]:
    cfg = _base(v, "granite", "GraniteForCausalLM")
    qkv_bias, o_bias, mlp_bias = _biases(v)
    if qkv_bias != o_bias:
        raise UnsupportedModelError("this granite GGUF has q/k/v biases without an output bias (or the reverse)")
    cfg["attention_bias"], cfg["mlp_bias"] = qkv_bias, mlp_bias
    for key, name in (("attention.scale", "attention_multiplier"), ("embedding_scale", "embedding_multiplier"),
                      ("residual_scale", "residual_multiplier"), ("logit_scale", "logits_scaling")):
        if (value := v.float(key)) is not None:
            cfg[name] = value
    _same_kv_dims(v, cfg)
    return cfg


def _olmo2(v: _View) -> dict[str, Any]:
    cfg = _base(v, "olmo2", "Olmo2ForCausalLM")
    if v.int("attention.sliding_window", default=0, minimum=0):
        raise UnsupportedModelError("an olmo2 GGUF with a sliding window is OLMo 3, which kvplan does not model")
    cfg["attention_bias"] = _biases(v)[0]
    _same_kv_dims(v, cfg)
    return cfg


_MAPPERS = {
    "llama": _llama,
    "qwen2": _qwen2,
    "qwen2moe": lambda v: _qwen_moe(v, "qwen2_moe", "Qwen2MoeForCausalLM"),
    "qwen3": _qwen3,
    "qwen3moe": lambda v: _qwen_moe(v, "qwen3_moe", "Qwen3MoeForCausalLM"),
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "phi3": _phi3,
    "falcon": _falcon,
    "starcoder2": _starcoder2,
    "deepseek2": _deepseek2,
    "gpt-oss": _gpt_oss,
    "granite": _granite,
    "olmo2": _olmo2,
}
SUPPORTED_ARCHITECTURES = tuple(_MAPPERS)
_UNCHECKED = {"deepseek2", "falcon"}  # MLA / fused-QKV layouts: no attn_q/attn_k rows to compare


def config_from_gguf(header: GGUFHeader) -> dict[str, Any]:
    """An HF-style config.json dict for the model a GGUF header describes (see the module docstring)."""
    arch = header.metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise InputError("the GGUF metadata has no general.architecture: is it a model file?")
    mapper = _MAPPERS.get(arch)
    if mapper is None:
        raise UnsupportedModelError(
            f"GGUF architecture {arch!r} is not supported{suggest(arch, _MAPPERS)}: kvplan maps "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    expected = header.metadata.get("split.tensors.count")
    if isinstance(expected, int) and expected != len(header.tensors):
        raise InputError(
            f"this is shard {header.metadata.get('split.no', 0) + 1} of {header.metadata.get('split.count', '?')} "
            f"of a split GGUF and lists {len(header.tensors)} of its {expected} tensors: the config depends on all "
            "of them (the output head, biases, MoE layers); read every shard's header and merge_shards() them"
        )
    if not header.tensors:
        raise InputError("the GGUF holds no tensors (a vocabulary-only file?): give the model file")
    v = _View(header, arch)
    cfg = mapper(v)
    if arch not in _UNCHECKED:
        _check_attention(v, cfg)
    return cfg
