"""Units: every quantity is held in bytes (or a plain count) and only converted at the edges.

GiB = 2**30 bytes and GB = 10**9 bytes are never mixed: parsing requires the unit, formatting names it.
"""

from __future__ import annotations

import math
import re

from kvplan.errors import InputError

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
KB = 10**3
MB = 10**6
GB = 10**9
TB = 10**12

_SIZE_UNITS = {
    "b": 1,
    "kib": KiB, "mib": MiB, "gib": GiB, "tib": 1 << 40,
    "kb": KB, "mb": MB, "gb": GB, "tb": TB,
}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]+)\s*$")
_COUNT_SUFFIX = {"k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}
_COUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBtT]?)\s*$")


def parse_size(text: str, what: str = "size", allow_zero: bool = False) -> int:
    """'24GiB' -> 25769803776, '24GB' -> 24000000000. A unit is required: a bare number is ambiguous."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise InputError(f"{what} {text!r} is not a size: write a number with a unit, e.g. 24GiB or 24GB")
    number, unit = float(m.group(1)), m.group(2).lower()
    if unit not in _SIZE_UNITS:
        raise InputError(f"{what} {text!r} has an unknown unit {m.group(2)!r}: use B, KiB, MiB, GiB, KB, MB or GB")
    scaled = number * _SIZE_UNITS[unit]
    if not math.isfinite(scaled) or scaled > 1 << 60:
        raise InputError(f"{what} {text!r} is larger than any device: give a size below 1 EiB")
    value = round(scaled)
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{what} must be positive (got {text!r})")
    return value


def parse_count(text: str | int | float, what: str = "count") -> int:
    """'7B' -> 7_000_000_000, '7e9' -> 7_000_000_000, '6.92B' -> 6_920_000_000, '350M' -> 350_000_000."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = round(text)
    else:
        m = _COUNT_RE.match(str(text))
        if not m:
            raise InputError(f"{what} {text!r} is not a number: write e.g. 7B, 7e9 or 350M")
        value = round(float(m.group(1)) * _COUNT_SUFFIX.get(m.group(2).lower(), 1))
    if value <= 0:
        raise InputError(f"{what} must be positive (got {text!r})")
    return value


def gib(n_bytes: float) -> float:
    return n_bytes / GiB


def fmt_gib(n_bytes: float | None, digits: int = 2) -> str:
    if n_bytes is None:
        return "-"
    return f"{n_bytes / GiB:,.{digits}f} GiB"


def fmt_gb(n_bytes: float | None, digits: int = 2) -> str:
    if n_bytes is None:
        return "-"
    return f"{n_bytes / GB:,.{digits}f} GB"


def fmt_bytes(n_bytes: float) -> str:
    """Human size with a binary unit: 8 KiB, 568 KiB, 12.88 GiB."""
    n = float(n_bytes)
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= size:
            value = n / size
            return f"{value:,.0f} {unit}" if value == int(value) else f"{value:,.2f} {unit}"
    return f"{n:,.0f} B"


def fmt_dec(n_bytes: float) -> str:
    """Human size with a decimal unit: 8.19 KB, 13.84 GB."""
    n = float(n_bytes)
    for unit, size in (("TB", TB), ("GB", GB), ("MB", MB), ("KB", KB)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n:,.0f} B"


def fmt_count(n: float | None) -> str:
    """6921720704 -> '6.92B'."""
    if n is None:
        return "-"
    for suffix, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{suffix}"
    return f"{n:,.0f}"


_TOKENS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$")
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30}


def parse_tokens(text: str | int, what: str = "tokens") -> int:
    """A token count as vLLM reads one (engine/arg_utils.py human_readable_int): '8k' = 8,000 and '128k' = 128,000
    (lower case: decimal), '32K' = 32,768 and '1M' = 1,048,576 (upper case: binary, whole numbers only);
    '25.6k' = 25,600; thousands separators allowed."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    m = _TOKENS_RE.match(str(text).replace(",", "").replace("_", ""))
    if not m:
        raise InputError(f"{what} {text!r} is not a token count: write e.g. 8192, 8k (8,000) or 8K (8,192)")
    number, suffix = m.groups()
    if suffix in _BINARY:
        if "." in number:
            raise InputError(f"{what} {text!r}: no decimals with a binary suffix; did you mean {number}"
                             f"{suffix.lower()} (decimal)?")
        return int(number) * _BINARY[suffix]
    if "." in number and not suffix:
        raise InputError(f"{what} {text!r} is not a whole number of tokens")
    return int(float(number) * _DECIMAL.get(suffix, 1))
