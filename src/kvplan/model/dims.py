"""A model's canonical dimensions (`ModelSpec.dims`), read once from its config.json.

Configs name the same dimension differently (`hidden_size`, `n_embd`, `d_model`; `num_key_value_heads`,
`num_kv_heads`, `n_head_kv`, `multi_query`), and some keys mean different things per family (Mixtral's and
gpt-oss's `intermediate_size` is the routed-expert width; Mamba's is the mixer's inner width, not an MLP). The
alias lists below give the generic reading; the per-family rules follow the family adapters in
`kvplan.model.families`, so `Dims` always describes the model kvplan built. A multimodal config's dimensions
are its language model's (`text_config`, with the same transformers defaults the adapter fills in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from kvplan.errors import ConfigError
from kvplan.model.config import Config
from kvplan.model.families import falcon
from kvplan.model.families.decoder import TRAITS
from kvplan.model.families.multimodal import GEMMA3_TEXT_DEFAULTS, LLAMA4_TEXT_DEFAULTS, MISTRAL_DEFAULTS


@dataclass(frozen=True, slots=True)
class Dims:
    """The text model's dimensions; None where the model has no such thing (a Mamba has no attention heads)."""

    hidden: int  # residual-stream width
    intermediate: int | None  # dense MLP width; None when no layer has a dense MLP
    moe_intermediate: int | None  # one routed expert's width; None without MoE
    vocab: int | None  # vocabulary size (None only for explicit dimensions without --vocab)
    heads: int | None  # query heads
    kv_heads: int | None  # key/value heads
    head_dim: int | None  # query/key width per head
    layers: int  # decoder layers (multi-token-prediction layers excluded)


# Generic aliases, first present wins.
HIDDEN = ("hidden_size", "n_embd", "d_model", "dim")
INTERMEDIATE = ("intermediate_size", "ffn_hidden_size", "n_inner")
MOE_INTERMEDIATE = ("moe_intermediate_size",)
VOCAB = ("vocab_size", "padded_vocab_size")
HEADS = ("num_attention_heads", "n_head", "n_heads")
KV_HEADS = ("num_key_value_heads", "num_kv_heads", "n_head_kv")
HEAD_DIM = ("head_dim", "attention_head_dim")
LAYERS = ("num_hidden_layers", "n_layer", "num_layers")

# Multimodal wrappers: model_type -> (the language model's section, its defaults, the rule that reads it).
_TEXT: dict[str, tuple[str, dict, str]] = {
    "gemma3": ("text_config", GEMMA3_TEXT_DEFAULTS, "gemma3_text"),
    "mistral3": ("text_config", MISTRAL_DEFAULTS, "mistral"),
    "mllama": ("text_config", {}, "mllama"),
    "llama4": ("text_config", LLAMA4_TEXT_DEFAULTS, "llama4"),
}


def _int(cfg: Config, keys: tuple[str, ...]) -> int | None:
    return cfg.int(*keys, default=None, minimum=0)


def generic(cfg: Config) -> Dims:
    """The alias-list reading: a dense decoder (intermediate defaults to 4 x hidden, as GPT-2-style configs do)."""
    hidden = _int(cfg, HIDDEN)
    heads = _int(cfg, HEADS)
    head_dim = _int(cfg, HEAD_DIM)
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    kv_heads = _int(cfg, KV_HEADS)
    if kv_heads is None and cfg.raw("multi_query", default=False) is True:
        kv_heads = 1
    return Dims(
        hidden=hidden,
        intermediate=_int(cfg, INTERMEDIATE) or (4 * hidden if hidden else None),
        moe_intermediate=_int(cfg, MOE_INTERMEDIATE),
        vocab=_int(cfg, VOCAB),
        heads=heads,
        kv_heads=kv_heads if kv_heads is not None else heads,
        head_dim=head_dim,
        layers=_int(cfg, LAYERS),
    )


def _dense_layers(n: int, sparse: Callable[[int], bool]) -> bool:
    return any(not sparse(i) for i in range(n))


def _qwen_moe(cfg: Config, d: Dims) -> Dims:
    """qwen2_moe / qwen3_moe / qwen3_next: `intermediate_size` is used only by `mlp_only_layers` and the layers
    off `decoder_sparse_step` (transformers' Qwen*MoeDecoderLayer)."""
    step = cfg.int("decoder_sparse_step", default=1)
    only = cfg.int_list("mlp_only_layers", default=[])
    experts = cfg.int("num_experts", default=0, minimum=0)
    dense = _dense_layers(d.layers, lambda i: experts > 0 and i not in only and (i + 1) % step == 0)
    return replace(d, intermediate=d.intermediate if dense else None, moe_intermediate=d.moe_intermediate
                   if experts else None)


def _experts_only(cfg: Config, d: Dims) -> Dims:
    """Mixtral, gpt-oss: every layer is MoE, and `intermediate_size` is one expert's width."""
    return replace(d, intermediate=None, moe_intermediate=_int(cfg, INTERMEDIATE))


def _falcon(cfg: Config, d: Dims) -> Dims:
    """Falcon: legacy keys renamed and defaults filled as the adapter does; head_dim is always hidden / heads."""
    cfg = falcon.normalize(cfg)
    hidden, heads = cfg.int("hidden_size"), cfg.int("num_attention_heads")
    if cfg.bool("new_decoder_architecture"):
        kv_heads = cfg.int("num_kv_heads", default=heads)
    else:
        kv_heads = 1 if cfg.bool("multi_query") else heads
    return replace(d, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=hidden // heads,
                   layers=cfg.int("num_hidden_layers"), intermediate=cfg.int("ffn_hidden_size", default=4 * hidden))


def _deepseek(cfg: Config, d: Dims) -> Dims:
    """MLA: every query head has its own K/V after the latent's up-projection (the adapter's num_kv_heads), and a
    query/key head is qk_nope_head_dim + qk_rope_head_dim wide. Layers below `first_k_dense_replace` and off
    `moe_layer_freq` have a dense MLP of `intermediate_size`."""
    experts = cfg.int("n_routed_experts", default=0, minimum=0)
    first, freq = cfg.int("first_k_dense_replace", default=0, minimum=0), cfg.int("moe_layer_freq", default=1)
    dense = _dense_layers(d.layers, lambda i: bool(experts) and i >= first and i % freq == 0)
    return replace(d, kv_heads=d.heads, head_dim=cfg.int("qk_nope_head_dim") + cfg.int("qk_rope_head_dim"),
                   intermediate=_int(cfg, INTERMEDIATE) if dense else None,
                   moe_intermediate=d.moe_intermediate if experts else None)


def _mamba(cfg: Config, d: Dims) -> Dims:
    """Mamba-1: no attention and no MLP (`intermediate_size` is the mixer's inner width)."""
    return replace(d, intermediate=None, moe_intermediate=None, heads=None, kv_heads=None, head_dim=None)


def _nemotron_h(cfg: Config, d: Dims) -> Dims:
    """Nemotron-H: `hybrid_override_pattern` says which blocks exist (- MLP, E MoE)."""
    pattern = cfg.str("hybrid_override_pattern")
    return replace(d, intermediate=_int(cfg, INTERMEDIATE) if "-" in pattern else None,
                   moe_intermediate=d.moe_intermediate if "E" in pattern else None)


def _qwen3_next(cfg: Config, d: Dims) -> Dims:
    """Qwen3-Next: like the Qwen MoEs, but its adapter makes every layer off `mlp_only_layers` / the sparse step
    a MoE layer whatever `num_experts` says."""
    step = cfg.int("decoder_sparse_step", default=1)
    only = cfg.int_list("mlp_only_layers", default=[])
    dense = _dense_layers(d.layers, lambda i: i not in only and (i + 1) % step == 0)
    return replace(d, intermediate=d.intermediate if dense else None)


def _mllama(cfg: Config, d: Dims) -> Dims:
    """Llama-3.2-Vision's text model: head_dim is hidden / heads (the adapter ignores a `head_dim` key)."""
    return replace(d, head_dim=d.hidden // d.heads)


def _llama4(cfg: Config, d: Dims) -> Dims:
    """Llama-4: `intermediate_size` is the expert (and shared expert) width, `intermediate_size_mlp` the dense
    MLP of the layers off `interleave_moe_layer_step`."""
    step = cfg.int("interleave_moe_layer_step")
    dense = _dense_layers(d.layers, lambda i: (i + 1) % step == 0)
    return replace(d, intermediate=cfg.int("intermediate_size_mlp") if dense else None,
                   moe_intermediate=cfg.int("intermediate_size"))


def _none(cfg: Config, d: Dims) -> Dims:
    return d


_RULES: dict[str, Callable[[Config, Dims], Dims]] = {
    **{mt: _none for mt in TRAITS},
    "mixtral": _experts_only,
    "gpt_oss": _experts_only,
    "qwen2_moe": _qwen_moe,
    "qwen3_moe": _qwen_moe,
    "qwen3_next": _qwen3_next,
    "falcon": _falcon,
    "RefinedWeb": _falcon,
    "RefinedWebModel": _falcon,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "mamba": _mamba,
    "falcon_mamba": _mamba,
    "nemotron_h": _nemotron_h,
    "mllama": _mllama,
    "llama4": _llama4,
}


def from_config(cfg: Config) -> Dims:
    """The dimensions of the model a config describes (its language model's, for a multimodal config)."""
    rule = str(cfg.raw("model_type", default=""))
    if rule in _TEXT:
        key, defaults, rule = _TEXT[rule]
        cfg = cfg.section(key, defaults)
    dims = _RULES.get(rule, _none)(cfg, generic(cfg))
    if dims.heads and dims.head_dim == 0:  # hidden // heads with more heads than the hidden size
        raise ConfigError(f"{cfg.where}: attention heads 0 wide ({dims.heads:,} heads over a hidden size of "
                          f"{dims.hidden:,}, or head_dim 0): fix hidden_size, the head count or head_dim")
    return dims


def explicit(layers: int, hidden: int, heads: int | None = None, kv_heads: int | None = None,
             head_dim: int | None = None, vocab: int | None = None) -> Dims:
    """Dimensions given one by one (`kvplan.model.load.model_from_dims`): KV heads default to the query heads,
    head_dim to hidden / heads; nothing is known of the MLP."""
    if head_dim is None and heads:
        head_dim = hidden // heads
    return Dims(hidden=hidden, intermediate=None, moe_intermediate=None, vocab=vocab, heads=heads,
                kv_heads=kv_heads or heads, head_dim=head_dim, layers=layers)
