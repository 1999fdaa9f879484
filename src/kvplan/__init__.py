"""kvplan: will this LLM fit on this GPU, how many requests can it serve, how long can a context be.

Python API (no CLI needed):

    import kvplan
    model = kvplan.load_model("falcon-7b")            # catalog alias, HF id, config.json path or dict
    result = kvplan.plan(model, gpu="a10g", util=0.9, seq=1000)
    result.scenarios[0].capacity.max_concurrent_requests

Light at import: the submodules load on first use, and nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Deployment", "KvplanError", "ModelSpec", "Plan", "load_model", "model_from_dims", "plan"]

_EXPORTS = {
    "load_model": "kvplan.model.load",
    "model_from_dims": "kvplan.model.load",
    "ModelSpec": "kvplan.model.spec",
    "Deployment": "kvplan.deployment",
    "plan": "kvplan.planning",
    "Plan": "kvplan.planning",
    "KvplanError": "kvplan.errors",
}

if TYPE_CHECKING:
    from kvplan.deployment import Deployment
    from kvplan.errors import KvplanError
    from kvplan.model.load import load_model, model_from_dims
    from kvplan.model.spec import ModelSpec
    from kvplan.planning import Plan, plan


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kvplan' has no attribute {name!r}")
