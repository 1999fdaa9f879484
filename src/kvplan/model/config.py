"""Reading a config.json: the file itself, and typed access to its fields with errors a user can act on."""

from __future__ import annotations

import json
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
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); check the file"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not an object: is it a config.json?")
    return data


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
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"{self.where} field {keys[0]!r} must be an integer (got {value!r})")
        if value < minimum:
            raise ConfigError(f"{self.where} field {keys[0]!r} must be at least {minimum} (got {value!r})")
        return int(value)

    def opt_int(self, *keys: str, minimum: int = 1) -> int | None:
        return self.int(*keys, default=None, minimum=minimum)

    def bool(self, *keys: str, default: Any = _MISSING) -> bool:
        value = self.raw(*keys, default=default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where} field {keys[0]!r} must be true or false (got {value!r})")
        return value

    def str(self, *keys: str, default: Any = _MISSING) -> str:
        value = self.raw(*keys, default=default)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{self.where} field {keys[0]!r} must be a string (got {value!r})")
        return value

    def list(self, *keys: str, default: Any = _MISSING) -> list[Any]:
        value = self.raw(*keys, default=default)
        if value is not None and not isinstance(value, list):
            raise ConfigError(f"{self.where} field {keys[0]!r} must be a list (got {value!r})")
        return value

    def section(self, key: str, defaults: Mapping[str, Any] = ()) -> Config:
        value = self.data.get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.where} field {key!r} must be an object (got {value!r})")
        return Config(value, f"{self.where} {key}", defaults)
