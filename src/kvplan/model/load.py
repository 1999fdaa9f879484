"""Inputs -> ModelSpec: a config.json file or folder, the embedded catalog, a config dict, or explicit dims."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

from kvplan.errors import ConfigError, InputError, suggest
from kvplan.model import catalog, dims, quant
from kvplan.model.config import Config, read_json
from kvplan.model.families import builder_for
from kvplan.model.families.blocks import Inventory
from kvplan.model.sources import hub
from kvplan.model.sources.checkpoint import StoredTensor, local_tensors, summarize
from kvplan.model.spec import AttentionKV, LayerSpec, ModelSpec, Tensor, VisionInput

# Side files next to config.json that describe quantization (GPTQ/AutoGPTQ, NVIDIA ModelOpt).
SIDE_FILES = {"quantize_config": "quantize_config.json", "hf_quant_config": "hf_quant_config.json"}

# Where a model may come from in this context: (local files, the Hugging Face Hub). The web server turns local
# files off for every request, and the Hub unless started with --allow-hub.
_SOURCES: ContextVar[tuple[bool, bool]] = ContextVar("kvplan_model_sources", default=(True, True))


@contextmanager
def model_sources(local_files: bool, hub_lookups: bool) -> Iterator[None]:
    token = _SOURCES.set((local_files, hub_lookups))
    try:
        yield
    finally:
        _SOURCES.reset(token)


def load_model(source: str | Path | dict[str, Any] | ModelSpec) -> ModelSpec:
    """Load a model from a config.json path or folder, an embedded-catalog alias or HF id, or a config dict."""
    if isinstance(source, ModelSpec):
        return source
    if isinstance(source, dict):
        return from_config(source, name=str(source.get("_name_or_path") or "config"), source="config object")
    text = str(source)
    local_files, hub_lookups = _SOURCES.get()
    if not local_files:
        if isinstance(source, Path) or text.endswith(".json") or text.startswith((".", "/", "~")):
            raise InputError(f"{text!r}: local files are not read here; name a catalog model or paste the config")
        return _from_catalog_or_hub(text, hub_lookups)
    path = Path(text).expanduser()
    try:
        path.stat()
    except (OSError, ValueError):  # absent, or a name the file system cannot hold (too long, a NUL byte)
        return _missing_path(text, hub_lookups)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise ConfigError(f"{path} holds no config.json: pass the config file or the model folder")
        side = {k: read_json(path / f, k) for k, f in SIDE_FILES.items() if (path / f).is_file()}
        spec = from_config(read_json(config), name=path.name, source=str(config), side=side)
        return with_checkpoint(spec, local_tensors(path), f"safetensors headers in {path}")
    if path.is_file():
        return from_config(read_json(path), name=path.stem, source=str(path))
    return _missing_path(text, hub_lookups)


def _missing_path(text: str, hub_lookups: bool) -> ModelSpec:
    if text.endswith(".json") or text.startswith((".", "/", "~")):
        raise InputError(f"no such file: {_clip(text)}")
    return _from_catalog_or_hub(text, hub_lookups)


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


@cache
def _catalog_spec(alias: str) -> ModelSpec:
    """An embedded model, read once per process (specs are immutable)."""
    entry = catalog.entries()[alias]
    side = {kind: read_json(entry.path(stem), kind) for kind, stem in entry.side}
    spec = from_config(read_json(entry.path()), name=entry.hf_id, source=f"embedded catalog ({entry.alias})",
                       side=side)
    return spec.with_notes(entry.note) if entry.note else spec


def _from_catalog_or_hub(text: str, hub_lookups: bool) -> ModelSpec:
    entry = catalog.lookup(text)
    if entry is None and hub.is_repo_id(text):
        if not hub_lookups:
            raise InputError(f"{text!r} is not in the embedded catalog and Hub lookups are off here "
                             "(start the server with --allow-hub, or paste the config)")
        found = hub.fetch(text)
        spec = from_config(found.config, name=found.repo, source=found.source, side=found.side)
        spec = with_checkpoint(spec, found.tensors, found.source)
        return spec.with_notes(*found.notes)
    if entry is not None:
        return _catalog_spec(entry.alias)
    raise InputError(
        f"unknown model {_clip(text)!r}: not a local config.json or folder, and not in the embedded catalog"
        f"{suggest(text, catalog.names()) if len(text) <= 200 else ''}; `kvplan models` lists the catalog"
    )


def with_checkpoint(spec: ModelSpec, tensors: list[StoredTensor] | None, source: str) -> ModelSpec:
    """Attach the stored tensors' summary, and say how far the config-derived weights are from it."""
    if not tensors:
        return spec
    from dataclasses import replace

    from kvplan.deployment import Deployment

    ckpt = summarize(tensors, source, spec.num_layers, spec.tie_word_embeddings)
    spec = replace(spec, checkpoint=ckpt)
    dep = Deployment(spec)
    predicted, resident = dep.inventory_bytes(), ckpt.resident_bytes(dep.dense_bytes)
    notes = [f"weights from the checkpoint's headers: {resident:,} B loaded of {ckpt.stored_bytes:,} B stored "
             f"({', '.join(f'{k} {v:,}' for k, v in ckpt.bytes_by_dtype.items())})"]
    notes += [f"not loaded: {why}, {b:,} B" for why, b in ckpt.excluded]
    if predicted and abs(resident - predicted) > 0.005 * predicted:
        notes.append(f"the config describes {predicted:,.0f} B of weights, the checkpoint {resident:,} B "
                     f"({(resident - predicted) / predicted:+.1%}): kvplan uses the checkpoint's bytes")
    return spec.with_notes(*notes)


def _quant_config(cfg: Config, side: dict[str, dict[str, Any]]) -> tuple[quant.WeightFormat | None, str | None]:
    """The checkpoint's weight format and any KV dtype it was calibrated for."""
    qc = cfg.raw("quantization_config", "compression_config", default=None)
    if qc is None and "text_config" in cfg:
        qc = cfg.section("text_config").raw("quantization_config", default=None)
    if qc is None and "quantize_config" in side:  # AutoGPTQ side file: GPTQ unless it says otherwise
        qc = {"quant_method": "gptq", **side["quantize_config"]}
    if qc is None and "hf_quant_config" in side:
        qc = {"quant_method": "modelopt", **side["hf_quant_config"]}
    if qc is None:
        return None, None
    if not isinstance(qc, dict):
        raise ConfigError(f"{cfg.where} 'quantization_config' must be an object (got {qc!r})")
    fmt = quant.from_config(qc, f"{cfg.where} quantization_config")
    kv = (qc.get("quantization") or {}).get("kv_cache_quant_algo") or qc.get("kv_cache_scheme")
    return fmt, ("fp8" if kv else None)


def _config_dtype(cfg: Config) -> tuple[str, str | None]:
    value = cfg.raw("torch_dtype", "dtype", default=None)
    if value is None and "text_config" in cfg:
        value = cfg.section("text_config").raw("torch_dtype", "dtype", default=None)
    if value is None:
        return "bfloat16", "the config states no dtype: bf16 assumed"
    if str(value).replace("torch.", "") not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"{cfg.where} dtype {value!r} is not float32, bfloat16 or float16")
    return str(value).replace("torch.", ""), None


def from_config(data: dict[str, Any], name: str = "config", source: str = "config object",
                side: dict[str, dict[str, Any]] | None = None) -> ModelSpec:
    cfg = Config(data, f"{name} config.json")
    build, warning = builder_for(cfg)
    built = build(cfg)
    dtype, dtype_note = _config_dtype(cfg)
    fmt, kv_hint = _quant_config(cfg, side or {})
    notes = [n for n in (warning, dtype_note) if n] + built.notes
    if kv_hint:
        notes.append(f"the checkpoint ships {kv_hint} KV-cache scales: --kv-dtype {kv_hint} uses them")
    def spec(inv: Inventory, label: str, notes: tuple[str, ...], mtp: ModelSpec | None = None,
             vision: VisionInput | None = None) -> ModelSpec:
        return ModelSpec(
            name=label, source=source, model_type=cfg.str("model_type"), tensors=tuple(inv.tensors),
            layers=tuple(inv.layers), dtype=dtype, num_attention_heads=built.num_attention_heads,
            num_kv_heads=built.num_kv_heads, max_context=built.max_context, moe=built.moe, quant=fmt,
            tie_word_embeddings=built.tie_word_embeddings, kv_dtype_hint=kv_hint, notes=notes, rope=built.rope,
            dims=dims.from_config(cfg), mtp=mtp, vision=vision,
        )

    mtp = spec(built.mtp, f"{name} MTP layers", ()) if built.mtp is not None else None
    return spec(built.inv, name, tuple(notes), mtp, built.vision)


def model_from_dims(layers: int, hidden: int, params: int, heads: int | None = None,
                    kv_heads: int | None = None, head_dim: int | None = None, vocab: int | None = None,
                    max_context: int | None = None) -> ModelSpec:
    """A model known only by its dimensions (the article's view: layers, d_model, parameter count).

    Without KV-head information every layer is plain multi-head attention whose K and V are d_model wide.
    """
    for label, value in (("--layers", layers), ("--hidden", hidden), ("--params", params), ("--heads", heads),
                         ("--kv-heads", kv_heads), ("--head-dim", head_dim), ("--vocab", vocab)):
        if value is not None and value <= 0:
            raise InputError(f"{label} must be a positive number (got {value})")
    given = dims.explicit(layers, hidden, heads, kv_heads, head_dim, vocab)
    notes = []
    if heads is None and kv_heads is None:
        notes.append("no head counts given: plain multi-head attention assumed (K and V are d_model wide per "
                     "layer, the article's assumption); MQA/GQA models cache less: give --kv-heads")
    if head_dim is None:
        if heads and hidden % heads:
            raise InputError(f"--hidden {hidden} is not divisible by --heads {heads}: give --head-dim")
        head_dim = hidden // heads if heads else hidden
    if head_dim > hidden and not heads:
        raise InputError(f"--head-dim {head_dim} exceeds --hidden {hidden}: give --heads too, or a smaller --head-dim")
    q_heads = heads or (hidden // head_dim)
    kv = kv_heads or q_heads
    if heads is None and kv_heads is not None:
        notes.append("--kv-heads given without --heads: query heads do not change memory; TP checks use KV heads")
    tensors = []
    if vocab:
        if vocab * hidden > params:
            raise InputError(f"--vocab {vocab} x --hidden {hidden} exceeds --params {params}: check the numbers")
        tensors.append(Tensor("embed_tokens.weight", (vocab, hidden), "embedding", 0))
        params -= vocab * hidden
    tensors.append(Tensor("all other parameters", (1, params), "other", 1, True))
    notes.append("explicit dimensions: no tensor inventory, so every parameter is assumed split by TP and "
                 "quantized by --quant")
    spec_layers = tuple(LayerSpec(i, AttentionKV(kv, head_dim, head_dim), "attention") for i in range(layers))
    summary = f"{layers} layers, d_model {hidden}"
    return ModelSpec(name=f"explicit ({summary})", source="explicit dimensions", model_type="explicit",
                     tensors=tuple(tensors), layers=spec_layers, dtype="float16", num_attention_heads=heads,
                     num_kv_heads=kv_heads or heads, max_context=max_context, notes=tuple(notes),
                     dims=given)
