"""Engine accounting: how each serving engine turns a GPU's memory into a KV-cache pool and capacity.

Every engine is an `Engine` (kvplan.engines.base) registered here by name: `none` is the plain budget of the
core (memory x util - weights - reserve), `vllm` (V1) and `vllm-v0` follow vLLM's profiler and block allocator,
`sglang` its static memory fraction, `tgi` and `llamacpp` what those allocate. Every engine returns the same
`Scenario`: per-stage budgets (each term with its source), a `Capacity`, and the figures the engine prints at
startup. The CLI's choices, the web API's validation, `fit`, `validate` and `explain` all ask this registry.
"""

from __future__ import annotations

from kvplan.engines.base import (
    Engine,
    EngineSettings,
    Launch,
    Printed,
    RuleRow,
    RuleTable,
    Scenario,
    parse_version,
)
from kvplan.errors import InputError

DEFAULT_ENGINE = "vllm"

_REGISTRY: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Add an engine (a new one, or one replacing an engine of the same name). Returns it."""
    _REGISTRY[engine.name] = engine
    return engine


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def engines() -> tuple[Engine, ...]:
    """The registered engines, in registration order."""
    _load_builtin()
    return tuple(_REGISTRY.values())


def engine_names() -> tuple[str, ...]:
    return tuple(e.name for e in engines())


def get_engine(name: str) -> Engine:
    _load_builtin()
    engine = _REGISTRY.get(name)
    if engine is None:
        raise InputError(f"unknown --engine {name!r}: use one of {', '.join(engine_names())}")
    return engine


def fit_engines() -> tuple[str, ...]:
    """Engines `kvplan fit` can size candidates under (they have a launch line)."""
    return tuple(e.name for e in engines() if e.plans_fit)


def by_csv_name(text: str) -> Engine | None:
    """The engine a validate CSV's `engine` column names ("vLLM V1", "SGLang", "llama.cpp")."""
    key = text.strip().lower()
    return next((e for e in engines() if key in e.csv_names), None)


def by_log_name(text: str | None) -> Engine | None:
    """The engine kvplan.logs recognised in a startup log ("vLLM V1", "vLLM V0", "SGLang")."""
    return next((e for e in engines() if any(w.name == text for w in e.log_wordings)), None) if text else None


_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from kvplan.engines.llamacpp import LlamaCpp
    from kvplan.engines.plain import Plain
    from kvplan.engines.sglang import SGLang
    from kvplan.engines.tgi import TGI
    from kvplan.engines.vllm import VLLM, VLLMV0

    builtin = [VLLM(), VLLMV0(), SGLang(), TGI(), LlamaCpp(), Plain()]
    added = dict(_REGISTRY)  # engines registered before the built-in ones were loaded come after them
    _REGISTRY.clear()
    for engine in [*builtin, *[e for e in added.values() if e.name not in {b.name for b in builtin}]]:
        register(engine)


def scenario(settings: EngineSettings, dep, gpu, util: float | None, seq: int, batch: int, replicas: int,
             reserve: int = 0, kv_memory: int | None = None) -> Scenario:
    """Budget and capacity of `dep` on one `gpu` at `util` (None: the engine's default) under `settings.engine`.
    The returned scenario's `util` is the fraction applied."""
    return get_engine(settings.engine).scenario(dep, gpu, util, settings, seq, batch, replicas, reserve, kv_memory)


__all__ = ["DEFAULT_ENGINE", "Engine", "EngineSettings", "Launch", "Printed", "RuleRow", "RuleTable", "Scenario",
           "by_csv_name", "by_log_name", "engine_names", "engines", "fit_engines", "get_engine", "parse_version",
           "register", "scenario", "unregister"]
