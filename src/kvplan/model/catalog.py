"""The embedded model catalog: real config.json files shipped in the package, found by alias or HF id."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

DATA = resources.files("kvplan") / "data" / "models"
DATA_PATH = Path(str(DATA))
_SIDE_KINDS = ("quantize_config", "hf_quant_config")
_NOT_MODELS = (".quantize_config", ".hf_quant_config", ".index")


@dataclass(frozen=True)
class Entry:
    alias: str
    hf_id: str
    config: str  # file stem in data/models
    side: tuple[tuple[str, str], ...] = ()  # (kind, file stem) of quantization side files
    note: str = ""
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"alias": self.alias, "hf_id": self.hf_id, "aliases": list(self.aliases),
                "config": f"{self.config}.json", "note": self.note, "offline": True}

    def path(self, stem: str | None = None) -> Path:
        return Path(str(DATA / f"{stem or self.config}.json"))


def _hf_id(stem: str) -> str:
    org, name = stem.split("--", 1)
    return f"{org}/{re.sub(r'[.]rev-[0-9a-f]+$', '', name)}"


def _alias(stem: str) -> str:
    name = _hf_id(stem).split("/", 1)[1].lower()
    return re.sub(r"-hf$", "", name).replace("meta-llama-3-", "llama-3-")


@cache
def entries() -> dict[str, Entry]:
    """alias -> entry, for every model in the catalog (extra aliases included)."""
    stems = sorted(
        p.name[:-5] for p in DATA.iterdir()
        if p.name.endswith(".json") and "--" in p.name and not p.name[:-5].endswith(_NOT_MODELS)
    )
    files = {p.name for p in DATA.iterdir()}
    table = tomllib.loads((DATA / "catalog.toml").read_text(encoding="utf-8"))
    extra: dict[str, list[str]] = {}
    for alias, stem in table.get("aliases", {}).items():
        extra.setdefault(stem, []).append(alias)
    out: dict[str, Entry] = {}
    for stem in stems:
        side = tuple((k, f"{stem}.{k}") for k in _SIDE_KINDS if f"{stem}.{k}.json" in files)
        names = (_alias(stem), *extra.get(stem, ()))
        entry = Entry(names[0], _hf_id(stem), stem, side, aliases=names)
        for name in names:
            out[name] = entry
    for alias, spec in table.get("composed", {}).items():
        side = tuple((k, spec[k]) for k in _SIDE_KINDS if k in spec)
        out[alias] = Entry(alias, spec["hf_id"], spec["config"], side, spec.get("note", ""), (alias,))
    return out


def models() -> list[Entry]:
    """One entry per model (not per alias), sorted by alias."""
    unique = {e.alias: e for e in entries().values()}
    return [unique[a] for a in sorted(unique)]


def lookup(name: str) -> Entry | None:
    """By alias (case-insensitive) or by Hugging Face id."""
    key = name.strip().lower()
    found = entries().get(key)
    if found:
        return found
    for entry in entries().values():
        if entry.hf_id.lower() == key:
            return entry
    return None


def names() -> list[str]:
    return sorted(entries())
