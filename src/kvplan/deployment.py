"""ModelSpec + how it is deployed (TP, PP, precision) -> bytes each GPU holds: weights, KV per token, state.

Tensor parallelism splits each tensor along its `split` dim (column/row-parallel linears, vocab-parallel
embeddings; norms replicated). Pipeline parallelism assigns whole layers to stages the way vLLM's
`get_pp_indices` does; the first stage also holds the embeddings and vision tower, the last the final norm and
lm_head (a tied lm_head is a second copy of the embedding on the last stage when PP > 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kvplan.caching import derived
from kvplan.errors import InputError
from kvplan.model.quant import DTYPE_BYTES, WeightFormat, dense, dtype_name, scheme
from kvplan.model.spec import TOWER_ROLES, LayerSpec, ModelSpec, Tensor

KV_DTYPES = ("auto", "fp32", "fp16", "bf16", "fp8", "int8", "int4")


def pp_partition(num_layers: int, pp: int) -> list[range]:
    """Layer ranges per stage: even split, the remainder going to the stages before the last
    (vLLM `vllm/distributed/utils.py` get_pp_indices)."""
    if pp > num_layers:
        raise InputError(f"pipeline parallel size {pp} exceeds the model's {num_layers} layers: "
                         f"use --pp <= {num_layers}")
    sizes = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        sizes[-i] += 1
    out, start = [], 0
    for size in sizes:
        out.append(range(start, start + size))
        start += size
    return out


def stage_ranges(model: ModelSpec, pp: int) -> list[range]:
    """The layers each pipeline stage holds (one empty stage for a model without layers)."""
    return pp_partition(model.num_layers, pp) if model.layers else [range(0)]


@dataclass(frozen=True)
class Sharding:
    """How many GPUs split each tensor: `tp` for routed experts (tensor or expert parallel, the same bytes), the
    attention TP group (`attn_tp` = TP / the data-parallel attention groups) for attention, dense layers,
    embeddings and the KV cache, and `lm_head_tp` for the output head (vLLM: the attention group; SGLang: the
    whole TP group unless --enable-dp-lm-head)."""

    tp: int
    attn_tp: int
    lm_head_tp: int

    def ranks(self, t: Tensor) -> int:
        if t.role == "experts":
            return self.tp
        return self.lm_head_tp if t.role == "lm_head" else self.attn_tp


@dataclass(frozen=True, eq=False)
class Stage:
    """One pipeline stage; each of its `tp` GPUs holds the figures below. Compared and hashed by identity (one
    object per model, layout and precision: deployments that agree on those share it), as caches keyed on it
    need."""

    index: int
    layers: tuple[LayerSpec, ...]
    weights_bytes: int
    kv_bytes_per_token: float  # growth per cached token (all attention layers, on one GPU)
    state_bytes: int  # constant per request (Mamba state, cross-attention image K/V)
    kv_specs: tuple[tuple[Any, int], ...]  # the layers' distinct KV specs, each with its number of layers

    def request_bytes(self, seq: int, kv_bytes: float, tp: int) -> float:
        """Bytes one request of `seq` tokens holds on one GPU of this stage."""
        per_token = sum(kv.bytes_per_token(kv_bytes, tp) * kv.tokens_held(seq) * n for kv, n in self.kv_specs)
        return per_token + self.state_bytes


@derived
def _stage_kv_specs(model: ModelSpec, pp: int) -> tuple[tuple[tuple[Any, int], ...], ...]:
    """Each stage's distinct KV specs with their numbers of layers (layers share a handful), per model and PP."""
    out = []
    for r in stage_ranges(model, pp):
        counts: dict[Any, int] = {}
        for i in r:
            counts[model.layers[i].kv] = counts.get(model.layers[i].kv, 0) + 1
        out.append(tuple(counts.items()))
    return tuple(out)


@derived
def _tensor_sizes(model: ModelSpec, tp: Sharding, fmt: WeightFormat, dense_bytes: float,
                  scale: float) -> tuple[float, ...]:
    """Bytes per GPU of each of the model's tensors; shared by deployments that agree on the sharding and weight
    format (a search varies PP and the KV dtype over the same sizes), kept as long as the model spec lives."""
    return tuple(fmt.tensor_bytes(t, t.shard_shape(tp.ranks(t)), dense_bytes) * scale for t in model.tensors)


@derived
def _stage_request_bytes(dep: Deployment, seq: int) -> tuple[float, ...]:
    return tuple(s.request_bytes(seq, dep.kv_bytes, dep.attn_tp) for s in dep.stages)


@derived
def _stage_tensors(model: ModelSpec, tp: Sharding, fmt: WeightFormat, dense_bytes: float, scale: float,
                   pp: int) -> tuple[tuple[tuple[Tensor, float], ...], ...]:
    """Deployment.stage_tensors, shared like _tensor_sizes by deployments that agree on what decides it."""
    ranges = stage_ranges(model, pp)
    last = len(ranges) - 1
    owner: dict[int, int] = {i: s for s, r in enumerate(ranges) for i in r}
    held: list[list[tuple[Tensor, float]]] = [[] for _ in ranges]
    for t, size in zip(model.tensors, _tensor_sizes(model, tp, fmt, dense_bytes, scale), strict=True):
        if t.layer is not None:
            held[owner[t.layer]].append((t, size))
        elif t.role in ("embedding", *TOWER_ROLES):
            held[0].append((t, size))
            if t.role == "embedding" and model.tie_word_embeddings and last > 0:
                held[last].append((t, size))
        else:  # final norm, lm_head
            held[last].append((t, size))
    return tuple(tuple(ts) for ts in held)


@derived
def _stage_weights(model: ModelSpec, tp: Sharding, fmt: WeightFormat, dense_bytes: float, scale: float,
                   pp: int) -> tuple[int, ...]:
    return tuple(round(sum(size for _, size in held))
                 for held in _stage_tensors(model, tp, fmt, dense_bytes, scale, pp))


@derived
def _stages(model: ModelSpec, tp: Sharding, fmt: WeightFormat, dense_bytes: float, scale: float, pp: int,
            kv_bytes: float, state_bytes: float) -> tuple[Stage, ...]:
    """Deployment.stages, one tuple shared by the deployments that agree on every figure a stage holds (a
    server's requests for the same model and layout), kept as long as the model spec lives."""
    weights = _stage_weights(model, tp, fmt, dense_bytes, scale, pp)
    kv_specs = _stage_kv_specs(model, pp)
    out = []
    for s, r in enumerate(stage_ranges(model, pp)):
        kinds = kv_specs[s]
        out.append(Stage(
            index=s, layers=tuple(model.layers[i] for i in r), weights_bytes=weights[s],
            kv_bytes_per_token=sum(kv.bytes_per_token(kv_bytes, tp.attn_tp) * n for kv, n in kinds),
            state_bytes=sum(kv.state_bytes(kv_bytes, state_bytes, tp.attn_tp) * n for kv, n in kinds),
            kv_specs=kinds,
        ))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Deployment:
    """How a model is served: parallelism and precision; checked when made. Compared and hashed by identity:
    engines cache figures derived from a deployment for as long as it lives (kvplan.caching)."""

    model: ModelSpec
    tp: int = 1
    pp: int = 1
    dtype: str | None = None  # element type of every weight (fp32/bf16/fp16) or, naively, fp8/int8/int4
    quant: str | None = None  # a weight-quantization scheme applied to an unquantized checkpoint
    kv_dtype: str = "auto"
    dp_attention: int = 1  # data-parallel attention groups in the TP group (each its own requests and KV)
    lm_head_over_tp: bool = False  # with dp_attention: the output head split over the whole TP group (SGLang)
    expert_parallel: bool = False  # routed experts whole on each GPU (EP) instead of TP-split: the same bytes

    def __post_init__(self) -> None:
        for label, value in (("--tp", self.tp), ("--pp", self.pp), ("--dp-attention", self.dp_attention)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{label} must be a positive integer (got {value!r})")
        if self.tp % self.dp_attention:
            raise InputError(f"{self.dp_attention} data-parallel attention groups do not divide TP {self.tp}: "
                             "choose a TP that is a multiple of them")
        if (self.dp_attention > 1 or self.expert_parallel) and self.model.moe is None:
            raise InputError("data-parallel attention and expert parallelism serve MoE models: a dense model "
                             "scales with replicas (--gpus)")
        if self.kv_dtype not in KV_DTYPES:
            raise InputError(f"unknown --kv-dtype {self.kv_dtype!r}: use one of {', '.join(KV_DTYPES)}")
        heads = self.model.num_attention_heads
        if heads and heads % self.attn_tp:
            raise InputError(f"tensor parallel size {self.attn_tp} does not divide the {heads} attention heads: "
                             f"choose a TP that divides {heads}")
        if self.model.num_kv_heads is None and self.attn_tp > 1 and "full_attention" in self.model.kv_kinds():
            raise InputError("the model's KV head count is unknown, so the KV cache cannot be split by TP: "
                             "give --heads (and --kv-heads for MQA/GQA)")
        self.stages  # noqa: B018 - validates the KV-head / state split and the PP size

    @property
    def attn_tp(self) -> int:
        """GPUs that split attention, dense layers and the KV cache: TP / the data-parallel attention groups."""
        return self.tp // self.dp_attention

    @cached_property
    def sharding(self) -> Sharding:
        return Sharding(self.tp, self.attn_tp, self.tp if self.lm_head_over_tp else self.attn_tp)

    # ------------------------------------------------------------------ precision
    @cached_property
    def activation_dtype(self) -> str:
        """The 16/32-bit type activations, unquantized weights and `auto` KV use.

        Engines load a float32 checkpoint in bf16 by default (vLLM `_resolve_auto_dtype`), so kvplan does too.
        """
        if self.dtype and dtype_name(self.dtype) in ("fp32", "bf16", "fp16"):
            return dtype_name(self.dtype)
        config = dtype_name(self.model.dtype)
        return "bf16" if config == "fp32" else config

    @property
    def naive_dtype(self) -> bool:
        """--dtype fp8 / int8 / int4: every weight at that size, the article's bytes-per-parameter view."""
        return self.dtype is not None and dtype_name(self.dtype) not in ("fp32", "bf16", "fp16")

    @cached_property
    def weight_format(self) -> WeightFormat:
        """--quant on an unquantized checkpoint; else the checkpoint's own format (a --dtype then only sets the
        activation dtype); else every weight in --dtype or the activation dtype."""
        if self.model.quant and (self.quant or self.naive_dtype):
            raise InputError(f"{self.model.name} is already quantized ({self.model.quant.name}): "
                             "--quant and --dtype fp8/int8/int4 apply to unquantized checkpoints")
        if self.quant:
            return scheme(self.quant)
        if self.model.quant:
            return self.model.quant
        if self.dtype:
            return dense(self.dtype)
        return dense(self.activation_dtype)

    @property
    def dense_bytes(self) -> float:
        """Bytes per element of tensors the format leaves unquantized."""
        fmt = self.weight_format
        return fmt.bits / 8 if not fmt.quantized else DTYPE_BYTES[self.activation_dtype]

    @property
    def kv_bytes(self) -> float:
        return DTYPE_BYTES[self.activation_dtype if self.kv_dtype == "auto" else self.kv_dtype]

    @property
    def state_bytes(self) -> float:
        """Mamba / linear-attention state dtype: the activation dtype unless the model pins its SSM state."""
        return DTYPE_BYTES[self.activation_dtype]

    # ------------------------------------------------------------------ bytes per GPU
    def tensor_bytes(self, t: Tensor) -> float:
        return (self.weight_format.tensor_bytes(t, t.shard_shape(self.sharding.ranks(t)), self.dense_bytes)
                * self.checkpoint_scale)

    def inventory_bytes(self) -> float:
        """All weights on one GPU as the config describes them (no TP, no checkpoint correction, no drafter)."""
        return sum(self.weight_format.tensor_bytes(t, t.shape, self.dense_bytes) for t in self.model.model_tensors)

    @cached_property
    def checkpoint_scale(self) -> float:
        """Stored bytes the engine loads / bytes the config describes: 1 without a checkpoint or when --quant or
        a naive --dtype replaces the stored format. Every tensor's share (and so TP / PP) stays kvplan's."""
        ckpt = self.model.checkpoint
        if ckpt is None or self.quant or self.naive_dtype:
            return 1.0
        predicted = self.inventory_bytes()
        return ckpt.resident_bytes(self.dense_bytes) / predicted if predicted else 1.0

    def weight_parts(self) -> dict[str, float]:
        """Bytes per GPU split into quantized weights, their scales/zeros, and dense tensors (all stages)."""
        fmt = self.weight_format
        parts = {"quantized_params": 0.0, "quantized_bytes": 0.0, "overhead_bytes": 0.0,
                 "dense_params": 0.0, "dense_bytes": 0.0}
        for t in self.model.tensors:
            shape = t.shard_shape(self.sharding.ranks(t))
            n = math.prod(shape)
            total = fmt.tensor_bytes(t, shape, self.dense_bytes)
            if fmt.applies_to(t):
                parts["quantized_params"] += n
                parts["quantized_bytes"] += n * fmt.bits / 8
                parts["overhead_bytes"] += total - n * fmt.bits / 8
            else:
                parts["dense_params"] += n
                parts["dense_bytes"] += total
        return parts

    @cached_property
    def tensor_sizes(self) -> tuple[float, ...]:
        """Bytes per GPU of each of the model's tensors, in order."""
        return _tensor_sizes(self.model, self.sharding, self.weight_format, self.dense_bytes, self.checkpoint_scale)

    @cached_property
    def stage_tensors(self) -> tuple[tuple[tuple[Tensor, float], ...], ...]:
        """(tensor, bytes per GPU) each pipeline stage holds: its layers; the embedding and towers on the first,
        the final norm and lm_head on the last (tied embeddings: the last stage holds its own copy as lm_head)."""
        return _stage_tensors(self.model, self.sharding, self.weight_format, self.dense_bytes,
                              self.checkpoint_scale, self.pp)

    @cached_property
    def stages(self) -> tuple[Stage, ...]:
        return _stages(self.model, self.sharding, self.weight_format, self.dense_bytes, self.checkpoint_scale,
                       self.pp, self.kv_bytes, self.state_bytes)

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def weights_bytes_per_gpu(self) -> int:
        """The largest stage's shard: what must fit on the fullest GPU."""
        return max(s.weights_bytes for s in self.stages)

    @property
    def weights_bytes_total(self) -> int:
        return sum(s.weights_bytes for s in self.stages) * self.tp

    @property
    def kv_bytes_per_token(self) -> float:
        """Per GPU, on the stage with the most cache per token."""
        return max(s.kv_bytes_per_token for s in self.stages)

    def stage_request_bytes(self, seq: int) -> tuple[float, ...]:
        """Bytes one request of `seq` tokens holds on one GPU of each stage."""
        return _stage_request_bytes(self, seq)

    def request_bytes(self, seq: int) -> float:
        """Per GPU, on the stage a request fills most."""
        return max(self.stage_request_bytes(seq))
