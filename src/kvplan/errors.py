"""Errors a user can act on. The CLI prints the message as one line and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KvplanError(Exception):
    """Base class: the message names the problem and what to do about it."""


class InputError(KvplanError):
    """Bad input: a malformed number, an unknown name, an impossible combination."""


class ConfigError(KvplanError):
    """A config.json that cannot be read or lacks a field kvplan needs."""


class UnsupportedModelError(KvplanError):
    """A model kvplan cannot model exactly; it says so instead of guessing."""


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """' (did you mean: a, b?)' or '' when nothing is close."""
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""
