"""`inspect`: the per-tensor-group and per-layer inventory of a model under a deployment."""

from __future__ import annotations

import re
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


def inventory(dep: Deployment) -> dict[str, Any]:
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
    rows = []
    for g in groups.values():
        g["layers"] = _span(g.pop("layer_indices"))
        g["bytes_per_gpu"] = round(g["bytes_per_gpu"])
        rows.append(g)
    layers = [{
        "index": layer.index, "block": layer.block, "kv_kind": layer.kv.kind, "kv_spec": layer.kv.describe(),
        "kv_bytes_per_token": layer.kv.bytes_per_token(dep.kv_bytes, dep.tp),
        "state_bytes_per_request": layer.kv.state_bytes(dep.kv_bytes, dep.state_bytes, dep.tp),
    } for layer in m.layers]
    return {
        "model": {"name": m.name, "source": m.source, "model_type": m.model_type, "dtype": m.dtype,
                  "max_context": m.max_context, "tie_word_embeddings": m.tie_word_embeddings, "notes": list(m.notes),
                  "checkpoint": m.checkpoint.to_dict() if m.checkpoint else None},
        "params": m.params,
        "params_breakdown": m.params_by_role(),
        "active_params": m.active_params,
        "language_params": m.language_params,
        "tower_params": m.tower_params,
        "weight_format": dep.weight_format.name,
        "tp": dep.tp,
        "weights_bytes": dep.weights_bytes_per_gpu,
        "kv_bytes_per_token": dep.kv_bytes_per_token,
        "tensor_groups": rows,
        "layers": layers,
    }
