"""kvplan: will this LLM fit on this GPU, how many requests can it serve, how long can a context be.

Python API (no CLI needed):

    import kvplan
    model = kvplan.load_model("falcon-7b")            # catalog alias, HF id, config.json path or dict
    result = kvplan.plan(model, gpu="a10g", util=0.9, seq=1000)
    result.scenarios[0].capacity.max_concurrent_requests

The names below are the public API: entry points (load_model, plan, search, validate_csv, diagnose,
decode, prefill, under_load), the result types they return, the engine registry, and the errors. Light at
import: the submodules load on first use, and nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # inputs -> model spec
    "load_model": "kvplan.model.load",
    "model_from_dims": "kvplan.model.load",
    "ModelSpec": "kvplan.model.spec",
    "Dims": "kvplan.model.dims",
    # deployment and hardware
    "Deployment": "kvplan.deployment",
    "GPU": "kvplan.hardware",
    "get_gpu": "kvplan.hardware",
    # engine accounting (and what a plug-in engine builds on)
    "Engine": "kvplan.engines",
    "EngineSettings": "kvplan.engines",
    "get_engine": "kvplan.engines",
    "list_engines": "kvplan.engines",
    "register_engine": "kvplan.engines",
    "Printed": "kvplan.engines",
    "Startup": "kvplan.engines",
    "Launch": "kvplan.engines",
    "RuleTable": "kvplan.engines",
    "Setup": "kvplan.engines.base",
    "Pool": "kvplan.capacity",
    "TokenPool": "kvplan.capacity",
    "LimitedBy": "kvplan.capacity",
    "Term": "kvplan.budget",
    "TermKind": "kvplan.budget",
    # capacity and plans
    "plan": "kvplan.planning",
    "Plan": "kvplan.planning",
    "Scenario": "kvplan.engines",
    "Capacity": "kvplan.capacity",
    "Budget": "kvplan.budget",
    # the deployment search (kvplan fit) and speed
    "search": "kvplan.fit",
    "Workload": "kvplan.fit",
    "FitResult": "kvplan.fit",
    "Candidate": "kvplan.fit",
    "decode": "kvplan.perf",
    "prefill": "kvplan.perf",
    "under_load": "kvplan.batching",
    "LoadWorkload": "kvplan.batching",
    "LoadResult": "kvplan.batching",
    # inventory, logs: validation and explanation
    "inspect": "kvplan.inventory",
    "Inventory": "kvplan.inventory",
    "validate_csv": "kvplan.validate",
    "ValidationReport": "kvplan.validate",
    "diagnose": "kvplan.explain",
    "Diagnosis": "kvplan.explain",
    # errors
    "KvplanError": "kvplan.errors",
    "InputError": "kvplan.errors",
    "ConfigError": "kvplan.errors",
    "UnsupportedModelError": "kvplan.errors",
}
# exported under another name where the module's name would clash with a subpackage (kvplan.engines, ...)
_RENAMED = {"register_engine": "register", "list_engines": "engines", "validate_csv": "validate",
            "inspect": "inventory", "LoadWorkload": "Workload"}

__all__ = [
    "GPU",
    "Budget",
    "Candidate",
    "Capacity",
    "ConfigError",
    "Deployment",
    "Diagnosis",
    "Dims",
    "Engine",
    "EngineSettings",
    "FitResult",
    "InputError",
    "Inventory",
    "KvplanError",
    "Launch",
    "LimitedBy",
    "LoadResult",
    "LoadWorkload",
    "ModelSpec",
    "Plan",
    "Pool",
    "Printed",
    "RuleTable",
    "Scenario",
    "Setup",
    "Startup",
    "Term",
    "TermKind",
    "TokenPool",
    "UnsupportedModelError",
    "ValidationReport",
    "Workload",
    "decode",
    "diagnose",
    "get_engine",
    "get_gpu",
    "inspect",
    "list_engines",
    "load_model",
    "model_from_dims",
    "plan",
    "prefill",
    "register_engine",
    "search",
    "under_load",
    "validate_csv",
]

if TYPE_CHECKING:
    from kvplan.batching import LoadResult, under_load
    from kvplan.batching import Workload as LoadWorkload
    from kvplan.budget import Budget, Term, TermKind
    from kvplan.capacity import Capacity, LimitedBy, Pool, TokenPool
    from kvplan.deployment import Deployment
    from kvplan.engines import Engine, EngineSettings, Launch, Printed, RuleTable, Scenario, Startup, get_engine
    from kvplan.engines import engines as list_engines
    from kvplan.engines import register as register_engine
    from kvplan.engines.base import Setup
    from kvplan.errors import ConfigError, InputError, KvplanError, UnsupportedModelError
    from kvplan.explain import Diagnosis, diagnose
    from kvplan.fit import Candidate, FitResult, Workload, search
    from kvplan.hardware import GPU, get_gpu
    from kvplan.inventory import Inventory
    from kvplan.inventory import inventory as inspect
    from kvplan.model.dims import Dims
    from kvplan.model.load import load_model, model_from_dims
    from kvplan.model.spec import ModelSpec
    from kvplan.perf import decode, prefill
    from kvplan.planning import Plan, plan
    from kvplan.validate import ValidationReport
    from kvplan.validate import validate as validate_csv


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'kvplan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
