"""Reading a config.json: the file itself, and typed access to its fields with errors a user can act on."""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kvplan.errors import ConfigError

_MISSING = object()


def read_json(path: Path, what: str = "config") -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text: is it a config.json?") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); check the file"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not an object: is it a config.json?")
    return data


# Upper bounds of the counts a config states, far above every real model (Llama-3.1-405B: 126 layers, 16,384
# wide; DeepSeek-V3: 256 experts; Gemma: 262,144 vocabulary). MAX_INT bounds every other integer.
MAXIMA = {
    **dict.fromkeys(("num_hidden_layers", "n_layer", "num_layers", "n_layers"), 1_024),
    **dict.fromkeys(("hidden_size", "n_embd", "d_model", "dim"), 131_072),
    **dict.fromkeys(("num_attention_heads", "n_head", "n_heads", "num_key_value_heads", "num_kv_heads",
                     "n_head_kv"), 4_096),
    **dict.fromkeys(("head_dim", "attention_head_dim", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
                     "qk_nope_head_dim", "v_head_dim"), 65_536),
    **dict.fromkeys(("intermediate_size", "moe_intermediate_size", "ffn_hidden_size", "n_inner",
                     "shared_expert_intermediate_size"), 4_194_304),
    **dict.fromkeys(("vocab_size", "padded_vocab_size"), 16_777_216),
    **dict.fromkeys(("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts",
                     "num_experts_per_tok", "n_shared_experts"), 16_384),
}
MAX_INT = 1 << 40


_QUOTE = reprlib.Repr()  # (keyword arguments need Python 3.12)
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxdict, _QUOTE.maxstring, _QUOTE.maxother = 3, 8, 8, 60, 60


def _short(value: Any) -> str:
    """A value quoted in an error message: at most 80 characters, however large or deeply nested."""
    text = _QUOTE.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Config:
    """A config.json (or one of its nested sections) with typed getters.

    `where` names the section in error messages, e.g. "config.json text_config".
    """

    def __init__(self, data: Mapping[str, Any], where: str = "config.json", defaults: Mapping[str, Any] = ()):
        self.data = dict(data)
        self.where = where
        self.defaults = dict(defaults)

    def __contains__(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, *keys: str, default: Any = _MISSING) -> Any:
        """First present (non-null) key among `keys`, else the family default, else `default`."""
        for key in keys:
            if self.data.get(key) is not None:
                return self.data[key]
        for key in keys:
            if key in self.defaults:
                return self.defaults[key]
        if default is _MISSING:
            names = " / ".join(repr(k) for k in keys)
            raise ConfigError(f"{self.where} lacks {names}, which kvplan needs for this model: add it to the config")
        return default

    def int(self, *keys: str, default: Any = _MISSING, minimum: int = 1) -> int:
        value = self.raw(*keys, default=default)
        if value is None:
            return value
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or (isinstance(value, float) and not math.isfinite(value)) or int(value) != value):
            raise ConfigError(f"{self.where} field {keys[0]!r} must be an integer (got {_short(value)})")
        if value < minimum:
            raise ConfigError(f"{self.where} field {keys[0]!r} must be at least {minimum} (got {_short(value)})")
        found = next((k for k in keys if k in self.data), keys[0])
        limit = MAXIMA.get(found, MAX_INT)
        if value > limit:  # bounded before any work: a pasted config cannot ask for 10^8 layers
            raise ConfigError(f"{self.where} field {found!r} is {int(value):,}, more than kvplan models (at most "
                              f"{limit:,}): check the config")
        return int(value)

    def opt_int(self, *keys: str, minimum: int = 1) -> int | None:
        """An optional integer: None where the config sets the key to null (transformers then passes None on, as
        Mistral-Small-3.x's `"sliding_window": null` turns the window off), not the family default."""
        if any(key in self.data for key in keys) and all(self.data[key] is None for key in keys if key in self.data):
            return None
        return self.int(*keys, default=None, minimum=minimum)

    def bool(self, *keys: str, default: Any = _MISSING) -> bool:
        value = self.raw(*keys, default=default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where} field {keys[0]!r} must be true or false (got {_short(value)})")
        return value

    def str(self, *keys: str, default: Any = _MISSING) -> str:
        value = self.raw(*keys, default=default)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{self.where} field {keys[0]!r} must be a string (got {_short(value)})")
        return value

    def list(self, *keys: str, default: Any = _MISSING) -> list[Any]:
        value = self.raw(*keys, default=default)
        if value is not None and not isinstance(value, list):
            raise ConfigError(f"{self.where} field {keys[0]!r} must be a list (got {_short(value)})")
        return value

    def int_list(self, *keys: str, default: Any = _MISSING) -> list[int]:
        """A list of layer indices (or flags): every element a whole number."""
        value = self.list(*keys, default=default)
        if value is not None and any(isinstance(x, bool) or not isinstance(x, int) for x in value):
            bad = next(x for x in value if isinstance(x, bool) or not isinstance(x, int))
            raise ConfigError(f"{self.where} field {keys[0]!r} must list whole numbers (got {_short(bad)})")
        return value

    def section(self, key: str, defaults: Mapping[str, Any] = ()) -> Config:
        value = self.data.get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.where} field {key!r} must be an object (got {_short(value)})")
        return Config(value, f"{self.where} {key}", defaults)
