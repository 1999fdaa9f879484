"""GPU prices per hour: the catalog's dated on-demand prices, overridden by --price GPU=USD or a price file."""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kvplan.errors import InputError
from kvplan.hardware import GPU, get_gpu


@dataclass(frozen=True)
class Price:
    usd_per_hour: float | None
    source: str  # "catalog: <provider and date>", "--price", "<file>"


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Price]:
    """['h100=2.49', 'a10g=1.0'] -> {alias: Price}."""
    out: dict[str, Price] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--price {item!r}: write GPU=USD_PER_HOUR, e.g. --price h100=2.49")
        out[get_gpu(name).alias] = Price(_usd(value, f"--price {item}"), "--price")
    return out


def read_file(path: str | Path) -> dict[str, Price]:
    """A TOML file `[prices] h100 = 2.49` or a CSV with columns gpu,usd_per_hour."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read price file {path}: {e.strerror or e}") from None
    rows: dict[str, object]
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"gpu", "usd_per_hour"} <= set(reader.fieldnames):
            raise InputError(f"{path}: a price CSV needs the columns gpu,usd_per_hour")
        rows = {r["gpu"]: r["usd_per_hour"] for r in reader}
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{path} is not valid TOML ({e}): write [prices] then h100 = 2.49") from None
        rows = data.get("prices", data)
    return {get_gpu(name).alias: Price(_usd(value, f"{path} {name}"), str(path)) for name, value in rows.items()}


def _usd(value: object, where: str) -> float:
    try:
        usd = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{where}: {value!r} is not a price in USD per hour") from None
    if not math.isfinite(usd):
        raise InputError(f"{where}: {value!r} is not a price: give a finite USD per hour")
    if usd < 0:
        raise InputError(f"{where}: a price cannot be negative")
    return usd


def price(gpu: GPU, overrides: dict[str, Price]) -> Price:
    if gpu.alias in overrides:
        return overrides[gpu.alias]
    if gpu.price_per_hour is not None:
        return Price(gpu.price_per_hour, f"catalog: {gpu.price_source}")
    return Price(None, "no price in the catalog (give --price)")
