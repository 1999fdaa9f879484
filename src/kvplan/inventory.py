"""`inspect`: the per-tensor-group and per-layer inventory of a model under a deployment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kvplan.deployment import Deployment

_LAYER = re.compile(r"\.(\d+)\.")


def _span(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    if not indices:
        return ""
    out, start, prev = [], indices[0], indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(out)


@dataclass
class TensorGroup:
    """Tensors of the same name pattern and shape across layers."""

    name: str
    shape: list[int]
    role: str
    count: int
    params: int
    bytes_per_gpu: int
    quantized: bool
    tp_split_dim: int | None  # the dimension TP divides; None: replicated
    layers: str  # layer span, e.g. "0-2,5"; "" for tensors outside layers

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "role": self.role, "count": self.count,
                "params": self.params, "bytes_per_gpu": self.bytes_per_gpu, "quantized": self.quantized,
                "tp_split_dim": self.tp_split_dim, "layers": self.layers}


@dataclass
class LayerRow:
    index: int
    block: str
    kv_kind: str
    kv_spec: str
    kv_bytes_per_token: float
    state_bytes_per_request: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "block": self.block, "kv_kind": self.kv_kind, "kv_spec": self.kv_spec,
                "kv_bytes_per_token": self.kv_bytes_per_token,
                "state_bytes_per_request": self.state_bytes_per_request}


@dataclass
class ModelSummary:
    name: str
    source: str
    model_type: str
    dtype: str
    max_context: int | None
    tie_word_embeddings: bool
    notes: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None  # the checkpoint's own to_dict(), when one was read

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "model_type": self.model_type, "dtype": self.dtype,
                "max_context": self.max_context, "tie_word_embeddings": self.tie_word_embeddings,
                "notes": list(self.notes), "checkpoint": self.checkpoint}


@dataclass
class Inventory:
    model: ModelSummary
    params: int
    params_breakdown: dict[str, int]
    active_params: int
    language_params: int
    tower_params: int
    weight_format: str
    tp: int
    weights_bytes: int
    kv_bytes_per_token: float
    tensor_groups: list[TensorGroup] = field(default_factory=list)
    layers: list[LayerRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "params": self.params,
            "params_breakdown": self.params_breakdown,
            "active_params": self.active_params,
            "language_params": self.language_params,
            "tower_params": self.tower_params,
            "weight_format": self.weight_format,
            "tp": self.tp,
            "weights_bytes": self.weights_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "tensor_groups": [g.to_dict() for g in self.tensor_groups],
            "layers": [layer.to_dict() for layer in self.layers],
        }


def inventory(dep: Deployment) -> Inventory:
    """Tensor groups (same name pattern and shape across layers) with params and bytes per GPU, and layers."""
    m = dep.model
    groups: dict[tuple[str, tuple[int, ...]], dict[str, Any]] = {}
    for t in m.tensors:
        pattern = _LAYER.sub(".*.", t.name, count=1) if t.layer is not None else t.name
        g = groups.setdefault((pattern, t.shape), {
            "name": pattern, "shape": list(t.shape), "role": t.role, "count": 0, "layer_indices": [],
            "params": 0, "bytes_per_gpu": 0.0, "quantized": dep.weight_format.applies_to(t),
            "tp_split_dim": t.split,
        })
        g["count"] += 1
        g["params"] += t.numel
        g["bytes_per_gpu"] += dep.tensor_bytes(t)
        if t.layer is not None:
            g["layer_indices"].append(t.layer)
    rows = [TensorGroup(name=g["name"], shape=g["shape"], role=g["role"], count=g["count"], params=g["params"],
                        bytes_per_gpu=round(g["bytes_per_gpu"]), quantized=g["quantized"],
                        tp_split_dim=g["tp_split_dim"], layers=_span(g["layer_indices"]))
            for g in groups.values()]
    layers = [LayerRow(index=layer.index, block=layer.block, kv_kind=layer.kv.kind, kv_spec=layer.kv.describe(),
                       kv_bytes_per_token=layer.kv.bytes_per_token(dep.kv_bytes, dep.attn_tp),
                       state_bytes_per_request=layer.kv.state_bytes(dep.kv_bytes, dep.state_bytes, dep.attn_tp))
              for layer in m.layers]
    summary = ModelSummary(name=m.name, source=m.source, model_type=m.model_type, dtype=m.dtype,
                           max_context=m.max_context, tie_word_embeddings=m.tie_word_embeddings,
                           notes=list(m.notes), checkpoint=m.checkpoint.to_dict() if m.checkpoint else None)
    return Inventory(
        model=summary,
        params=m.params,
        params_breakdown=m.params_by_role(),
        active_params=m.active_params,
        language_params=m.language_params,
        tower_params=m.tower_params,
        weight_format=dep.weight_format.name,
        tp=dep.tp,
        weights_bytes=dep.weights_bytes_per_gpu,
        kv_bytes_per_token=dep.kv_bytes_per_token,
        tensor_groups=rows,
        layers=layers,
    )
