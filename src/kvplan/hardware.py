"""Accelerators: the embedded catalog (`data/gpus.csv`, sources in `data/gpus-NOTES.md`) and custom devices.

Capacity is the memory the device really shows: the nvidia-smi total where one was observed (an A10G "24 GB"
shows 23,028 MiB = 22.49 GiB), else the nominal bytes, said so. The marketing figure is kept for display.
"""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from kvplan.errors import InputError, suggest
from kvplan.units import MiB, fmt_gb, fmt_gib

DATA = resources.files("kvplan") / "data"


@dataclass(frozen=True)
class GPU:
    name: str
    alias: str
    memory_bytes: int  # what the device shows (nvidia-smi / rocm-smi total), or nominal when never observed
    memory_source: str  # "nvidia-smi", "rocm-smi", "nominal", "custom"
    marketing: str  # "24 GB" as sold; "" for custom devices
    vendor: str = ""
    bandwidth_gbps: float | None = None
    bf16_tflops: float | None = None
    fp8_tflops: float | None = None
    price_per_hour: float | None = None
    price_source: str = ""
    notes: str = ""


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _row_to_gpu(row: dict[str, str], alias: str) -> GPU | None:
    smi = row["nvidia_smi_total_mib"].strip()
    exact = row["memory_bytes_exact"].strip()
    if smi:
        memory, source = int(smi) * MiB, ("rocm-smi" if row["vendor"] == "AMD" else "nvidia-smi")
    elif exact:
        memory, source = int(exact), "nominal"
    else:
        return None
    marketing = f"{row['marketing_memory_gb']} GB" if row["marketing_memory_gb"] else ""
    return GPU(
        name=row["name"], alias=alias, memory_bytes=memory, memory_source=source, marketing=marketing,
        vendor=row["vendor"], bandwidth_gbps=_float(row["memory_bandwidth_GBps"]),
        bf16_tflops=_float(row["fp16_bf16_dense_tflops"]), fp8_tflops=_float(row["fp8_dense_tflops"]),
        price_per_hour=_float(row["typical_cloud_price_usd_per_hour"]), price_source=row["price_provider_date"],
        notes=row["memory_bytes_basis"],
    )


@cache
def _catalog() -> tuple[dict[str, GPU], dict[str, str]]:
    """(alias -> GPU, name/alias -> alias) for every row with a memory figure."""
    aliases = tomllib.loads((DATA / "gpu-aliases.toml").read_text(encoding="utf-8"))
    rows = csv.DictReader(io.StringIO((DATA / "gpus.csv").read_text(encoding="utf-8")))
    gpus: dict[str, GPU] = {}
    index: dict[str, str] = {}
    for row in rows:
        names = aliases.get(row["name"]) or [row["name"].lower()]
        gpu = _row_to_gpu(row, names[0])
        if gpu is None:
            continue
        gpus[names[0]] = gpu
        for n in (*names, row["name"].lower()):
            index[n] = names[0]
    return gpus, index


def gpus() -> list[GPU]:
    return list(_catalog()[0].values())


def gpu_names() -> list[str]:
    return sorted(_catalog()[1])


def get_gpu(name: str) -> GPU:
    gpus_by_alias, index = _catalog()
    key = name.strip().lower()
    if key in index:
        return gpus_by_alias[index[key]]
    raise InputError(f"unknown GPU {name!r}{suggest(key, index)}: `kvplan gpus` lists the catalog, "
                     "or give --gpu-memory 24GiB for another device")


def custom_gpu(memory_bytes: int, label: str) -> GPU:
    return GPU(name=f"custom ({label})", alias=f"custom-{label.replace(' ', '')}", memory_bytes=memory_bytes,
               memory_source="custom", marketing="")


def memory_label(gpu: GPU) -> str:
    """'22.49 GiB shown (24 GB sold)' - both units, never mixed."""
    sold = f", {gpu.marketing} sold" if gpu.marketing else ""
    return f"{fmt_gib(gpu.memory_bytes)} = {fmt_gb(gpu.memory_bytes)} ({gpu.memory_source}{sold})"

