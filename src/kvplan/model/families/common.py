"""What every family adapter returns, and config rules several families share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kvplan.errors import ConfigError
from kvplan.model.config import Config
from kvplan.model.families.blocks import Inventory
from kvplan.model.spec import AttentionKV, MoE, RopeTable, VisionInput, attention_spec


@dataclass
class Built:
    """A family adapter's result: the inventory plus what the ModelSpec needs beyond it."""

    inv: Inventory
    num_attention_heads: int | None
    num_kv_heads: int | None
    max_context: int | None
    tie_word_embeddings: bool
    moe: MoE | None = None
    notes: list[str] = field(default_factory=list)
    rope: tuple[RopeTable, ...] = ()
    mtp: Inventory | None = None  # multi-token-prediction layers the checkpoint stores, numbered after the stack
    vision: VisionInput | None = None  # a tiled vision tower's profiling input (kvplan.model.spec.VisionInput)


def layer_types(cfg: Config, n_layers: int, default: str = "full_attention") -> list[str]:
    """Per-layer attention type: the config's `layer_types` when present (transformers >= 4.54 writes it),
    else the family rule applied by the caller."""
    types = cfg.list("layer_types", default=None)
    if types is None:
        return [default] * n_layers
    if len(types) != n_layers:
        raise ConfigError(
            f"{cfg.where} 'layer_types' has {len(types)} entries for {n_layers} layers: fix one of the two"
        )
    return list(types)


def attention_kv(kind: str, kv_heads: int, head_dim: int, window: int | None,
                 v_head_dim: int | None = None) -> AttentionKV:
    """KV spec of one attention layer from its `layer_types` label."""
    v = v_head_dim or head_dim
    if kind in ("full_attention", "global"):
        return AttentionKV(kv_heads, head_dim, v)
    if kind in ("sliding_attention", "sliding_window", "local"):
        if not window:
            raise ConfigError("a layer is marked sliding_attention but the config has no 'sliding_window': add it")
        return attention_spec(kv_heads, head_dim, v, window)
    if kind == "chunked_attention":
        return attention_spec(kv_heads, head_dim, v, window, chunked=True)
    raise ConfigError(f"unknown layer type {kind!r} in 'layer_types': kvplan knows full_attention, "
                      "sliding_attention and chunked_attention")


def context_length(cfg: Config, default: int | None = None) -> int | None:
    return cfg.int("max_position_embeddings", "n_positions", "seq_length", "max_seq_len", default=default)


def _fraction(value: object, what: str, most: float) -> float:
    """A positive finite number no larger than `most` (a rope scaling factor, a rotary fraction)."""
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or not 0 < value <= most):
        raise ConfigError(f"{what} must be a number in (0, {most:g}] (got {str(value)[:40]!r})")
    return float(value)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 31:
        raise ConfigError(f"{where} original_max_position_embeddings must be a positive integer (got "
                          f"{str(value)[:40]!r})")
    return value


def rope_tables(cfg: Config, head_dim: int, rotary_dim: int | None = None, fp32: bool = False,
                local_base: bool = False) -> tuple[RopeTable, ...]:
    """The RoPE cos/sin tables an engine precomputes: [positions, rotary_dim] per distinct rope.

    Positions follow vLLM's rotary classes (`model_executor/layers/rotary_embedding/`): the context length, times
    the scaling factor for linear / dynamic-NTK / YaRN scaling (YaRN from the original context), and short + long
    tables for Phi-3 LongRoPE. `local_base`: Gemma-3's second, unscaled table for its sliding layers.
    """
    positions = cfg.int("max_position_embeddings", "n_positions", default=2048)
    partial = _fraction(cfg.raw("partial_rotary_factor", default=1.0), f"{cfg.where} partial_rotary_factor", 1.0)
    dim = rotary_dim or int(head_dim * partial)
    scaling = cfg.raw("rope_scaling", default=None) or {}
    if not isinstance(scaling, dict):
        scaling = {}
    kind = str(scaling.get("rope_type", scaling.get("type", "default")))
    factor = _fraction(scaling.get("factor", 1.0), f"{cfg.where} rope_scaling factor", 1_000_000.0)
    if kind in ("linear", "dynamic"):
        positions = int(positions * factor)
    elif kind in ("yarn", "deepseek_yarn"):
        positions = int(_count(scaling.get("original_max_position_embeddings", positions), cfg.where) * factor)
    elif kind in ("longrope", "su"):
        positions += _count(scaling.get("original_max_position_embeddings",
                                        cfg.raw("original_max_position_embeddings", default=positions)), cfg.where)
    tables = [RopeTable(positions, dim, fp32)]
    if local_base:
        tables.append(RopeTable(cfg.int("max_position_embeddings", default=positions), dim, fp32))
    return tuple(tables)
