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
    Startup,
    parse_version,
    version_text,
)
from kvplan.errors import InputError

DEFAULT_ENGINE = "vllm"

# The built-in engines, in the order the CLI and the page list them: name -> (module, class). A module is
# imported when its engine is first asked for, so a command loads only the engine it uses.
_BUILTIN = {
    "vllm": ("kvplan.engines.vllm", "VLLM"),
    "vllm-v0": ("kvplan.engines.vllm", "VLLMV0"),
    "sglang": ("kvplan.engines.sglang", "SGLang"),
    "tgi": ("kvplan.engines.tgi", "TGI"),
    "llamacpp": ("kvplan.engines.llamacpp", "LlamaCpp"),
    "none": ("kvplan.engines.plain", "Plain"),
}
# Other spellings users copy from their engine's docs and logs.
_ALIASES = {"vllm-v1": "vllm", "v1": "vllm", "vllm-v0": "vllm-v0", "v0": "vllm-v0", "sglang": "sglang",
            "tgi": "tgi", "text-generation-inference": "tgi", "llama.cpp": "llamacpp", "llama-cpp": "llamacpp",
            "llama-server": "llamacpp", "plain": "none"}
_REGISTRY: dict[str, Engine | None] = dict.fromkeys(_BUILTIN)  # None: built in, not loaded yet


def register(engine: Engine) -> Engine:
    """Add an engine (a new one, or one replacing an engine of the same name). Returns it."""
    _REGISTRY[engine.name] = engine
    return engine


def unregister(name: str) -> None:
    """Remove a registered engine (a built-in one comes back as it was)."""
    if name in _BUILTIN:
        _REGISTRY[name] = None
    else:
        _REGISTRY.pop(name, None)


def engine_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def canonical_name(name: str) -> str:
    """The registered name an engine spelling stands for ('vllm-v1' -> 'vllm', 'llama.cpp' -> 'llamacpp')."""
    key = str(name).strip()
    if key in _REGISTRY:
        return key
    return _ALIASES.get(key.lower(), key.lower() if key.lower() in _REGISTRY else key)


def get_engine(name: str) -> Engine:
    name = canonical_name(name)
    if name not in _REGISTRY:
        raise InputError(f"unknown --engine {name!r}: use one of {', '.join(engine_names())}")
    engine = _REGISTRY[name]
    if engine is None:
        import importlib

        module, cls = _BUILTIN[name]
        engine = _REGISTRY[name] = getattr(importlib.import_module(module), cls)()
    return engine


def engines() -> tuple[Engine, ...]:
    """The registered engines, in registration order (loads every built-in one)."""
    return tuple(get_engine(name) for name in engine_names())


def fit_engines() -> tuple[str, ...]:
    """Engines `kvplan fit` can size candidates under (they have a launch line)."""
    return tuple(e.name for e in engines() if e.plans_fit)


def by_csv_name(text: str) -> Engine | None:
    """The engine a validate CSV's `engine` column names ("vLLM V1", "SGLang", "llama.cpp")."""
    key = text.strip().lower()
    return next((e for e in engines() if key in e.csv_names), None)


def by_log_name(text: str | None) -> Engine | None:
    """The engine whose log wording kvplan.logs recognised in a startup log ("vLLM V1", "SGLang")."""
    return next((e for e in engines() if any(w.name == text for w in e.log_wordings)), None) if text else None


def scenario(settings: EngineSettings, dep, gpu, util: float | None, seq: int, batch: int, replicas: int,
             reserve: int = 0, kv_memory: int | None = None) -> Scenario:
    """Budget and capacity of `dep` on one `gpu` at `util` (None: the engine's default) under `settings.engine`.
    The returned scenario's `util` is the fraction applied."""
    return get_engine(settings.engine).scenario(dep, gpu, util, settings, seq, batch, replicas, reserve, kv_memory)


__all__ = [
    "DEFAULT_ENGINE",
    "Engine",
    "EngineSettings",
    "Launch",
    "Printed",
    "RuleRow",
    "RuleTable",
    "Scenario",
    "Startup",
    "by_csv_name",
    "by_log_name",
    "canonical_name",
    "engine_names",
    "engines",
    "fit_engines",
    "get_engine",
    "parse_version",
    "register",
    "scenario",
    "unregister",
    "version_text",
]
