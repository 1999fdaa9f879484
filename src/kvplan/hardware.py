"""Accelerators: the embedded catalog (`data/gpus.csv`, sources in `data/gpus-NOTES.md`) and custom devices.

Capacity is the memory the device really shows: the nvidia-smi total where one was observed (an A10G "24 GB"
shows 23,028 MiB = 22.49 GiB), else the nominal bytes, said so. The marketing figure is kept for display.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources

from kvplan.errors import InputError, suggest
from kvplan.units import MiB, fmt_gb, fmt_gib

DATA = resources.files("kvplan") / "data"
# Median of (nvidia-smi total - CUDA total) over the pairs in gpus-NOTES.md section 5: H100 469, A100-80 669,
# H200 615, L40S 695, A10G 441, B200 717 MiB.
CUDA_GAP_MIB = 642


@dataclass(frozen=True)
class Node:
    """How the GPU comes in a server (data/gpu-nodes.csv, each row with its source): GPUs per node (one NVLink
    domain for NVL72 racks), the link between GPUs of a node and the network between nodes, per GPU."""

    system: str
    gpus: int
    intra_link: str
    intra_gbps: float  # GB/s per GPU, both directions
    inter_link: str
    inter_gbps: float | None  # GB/s per GPU, per direction; None: not found
    source: str


# A device the catalog has no node row for (a custom one): one GPU per node, nothing known between nodes.
LONE_NODE = Node("a single device", 1, "", 0.0, "", None, "no node row: one GPU per node assumed")


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
    fp4_tflops: float | None = None  # dense fp4 tensor throughput (Blackwell, CDNA4), where the catalog has it
    price_per_hour: float | None = None
    price_source: str = ""
    notes: str = ""
    cuda_bytes: int | None = None  # what CUDA / torch reports as total (smaller than nvidia-smi), when observed
    cuda_source: str = ""
    interconnect: str = ""
    node: Node = LONE_NODE

    @property
    def nvlink(self) -> bool:
        return "nvlink" in self.interconnect.lower() and "no nvlink" not in self.interconnect.lower()

    @property
    def nvswitch(self) -> bool:
        """NVSwitch-connected Hopper or newer (HGX H100 / H200 / B200, NVL72), where NCCL's NVLink SHARP (NVLS)
        buffers exist; A100 NVLink, bridged pairs and PCIe cards have none (vLLM's TP non-torch line)."""
        return (self.nvlink and "bridge" not in self.interconnect.lower()
                and (compute_capability(self) or 0) >= 90)

    def torch_total(self) -> tuple[int, str]:
        """Total memory as torch sees it (`cudaMemGetInfo`), the figure engines multiply by utilization.

        Observed where known (data/gpu-cuda-totals.csv); else the shown total less the median gap between
        nvidia-smi and CUDA totals over the observed pairs, said so.
        """
        if self.cuda_bytes:
            return self.cuda_bytes, f"CUDA total {self.cuda_bytes / MiB:,.0f} MiB ({self.cuda_source})"
        if self.memory_source == "custom":
            return self.memory_bytes, "the given memory"
        estimate = self.memory_bytes - CUDA_GAP_MIB * MiB
        return estimate, (f"estimate: {self.memory_source} total - {CUDA_GAP_MIB} MiB (median gap of the observed "
                          "nvidia-smi / CUDA pairs in gpu-cuda-totals.csv)")


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
        fp4_tflops=_float(row["fp4_dense_tflops"]),
        price_per_hour=_float(row["typical_cloud_price_usd_per_hour"]), price_source=row["price_provider_date"],
        notes=row["memory_bytes_basis"], interconnect=row["interconnect"],
    )


def _nodes() -> dict[str, Node]:
    rows = csv.DictReader(io.StringIO((DATA / "gpu-nodes.csv").read_text(encoding="utf-8")))
    return {r["alias"]: Node(r["system"], int(r["gpus_per_node"]), r["intra_link"],
                             float(r["intra_GBps_per_gpu_total"] or 0), r["inter_link"],
                             _float(r["inter_GBps_per_gpu"]), r["source"]) for r in rows}


def _cuda_totals() -> dict[str, tuple[int, str]]:
    rows = csv.DictReader(io.StringIO((DATA / "gpu-cuda-totals.csv").read_text(encoding="utf-8")))
    return {r["alias"]: (round(float(r["cuda_total_mib"]) * MiB), r["source"]) for r in rows}


@cache
def _catalog() -> tuple[dict[str, GPU], dict[str, str]]:
    """(alias -> GPU, name/alias -> alias) for every row with a memory figure."""
    aliases = tomllib.loads((DATA / "gpu-aliases.toml").read_text(encoding="utf-8"))
    rows = csv.DictReader(io.StringIO((DATA / "gpus.csv").read_text(encoding="utf-8")))
    cuda = _cuda_totals()
    nodes = _nodes()
    gpus: dict[str, GPU] = {}
    index: dict[str, str] = {}
    for row in rows:
        names = aliases.get(row["name"]) or [row["name"].lower()]
        gpu = _row_to_gpu(row, names[0])
        if gpu is None:
            continue
        # the data files may name a GPU by any of its aliases
        observed = next((cuda[n] for n in names if n in cuda), None)
        if observed is not None:
            gpu = replace(gpu, cuda_bytes=observed[0], cuda_source=observed[1])
        node = next((nodes[n] for n in names if n in nodes), None)
        if node is not None:
            gpu = replace(gpu, node=node)
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
    found = find_gpu(name)  # as nvidia-smi and cloud consoles print it: "NVIDIA H100 80GB HBM3", "A100-SXM4-80GB"
    if found is not None:
        return found
    raise InputError(f"unknown GPU {name!r}{suggest(key, list(gpus_by_alias))}: `kvplan gpus` lists the catalog, "
                     "or give --gpu-memory 24GiB for another device")


def custom_gpu(memory_bytes: int, label: str) -> GPU:
    return GPU(name=f"custom ({label})", alias=f"custom-{label.replace(' ', '')}", memory_bytes=memory_bytes,
               memory_source="custom", marketing="")


def memory_label(gpu: GPU) -> str:
    """'22.49 GiB shown (24 GB sold)' - both units, never mixed."""
    sold = f", {gpu.marketing} sold" if gpu.marketing else ""
    return f"{fmt_gib(gpu.memory_bytes)} = {fmt_gb(gpu.memory_bytes)} ({gpu.memory_source}{sold})"



def find_gpu(text: str) -> GPU | None:
    """A catalog GPU from a free-form name as logs and reports write it ("H100 80GB", "NVIDIA A10 24GB",
    "A100-SXM4-80GB", "RTX 3090"); None when nothing matches."""
    gpus_by_alias, index = _catalog()
    s = re.sub(r"\b(nvidia|geforce|tesla|amd|instinct|radeon)\b", " ", text.lower()).strip()
    memory = re.search(r"(\d+)\s*gb\b", s)
    candidates = [s, s.replace(" ", ""), re.sub(r"\s+", "-", s), re.sub(r"gb\b", "g", re.sub(r"\s+", "-", s))]
    words = re.split(r"[\s-]+", s)
    if words and words[0]:
        if memory:
            candidates.append(f"{words[0]}-{memory.group(1)}g")
        candidates.append(words[0])
        candidates.append("".join(words[:2]))
    for c in candidates:
        if c in index:
            return gpus_by_alias[index[c]]
    return None


# NVIDIA compute capability by architecture, matched on the catalog name (NVIDIA's CUDA GPU list,
# developer.nvidia.com/cuda-gpus): what engines' quantization kernels check. None: not an NVIDIA GPU.
_CAPABILITY = (
    (r"\bV100\b", 70), (r"\bT4\b", 75), (r"\bA100\b", 80), (r"\bJetson AGX Orin\b", 87),
    (r"\b(A10G?|A40|RTX 3090)\b", 86), (r"\b(L4|L40S?|RTX 4090|RTX 6000 Ada)\b", 89),
    (r"\b(H100|H200|GH200)\b", 90), (r"\b(B200|GB200|B300|GB300)\b", 100),
    (r"\b(RTX 5090|RTX PRO 6000 Blackwell)\b", 120),
)


_GENERATIONS = {70: "volta", 75: "turing", 80: "ampere", 86: "ampere", 87: "ampere", 89: "ada", 90: "hopper",
                100: "blackwell", 120: "blackwell"}
_AMD_GENERATIONS = ((r"\bMI2\d0X?\b", "cdna2"), (r"\bMI3(00|25)X\b", "cdna3"), (r"\bMI35\dX\b", "cdna4"))


def generation(gpu: GPU) -> str:
    """The GPU's architecture generation: ampere, ada, hopper, blackwell (NVIDIA, by compute capability), cdna2-4
    (AMD), else its vendor in lower case ('' for a custom device)."""
    cc = compute_capability(gpu)
    if cc in _GENERATIONS:
        return _GENERATIONS[cc]
    return next((g for pattern, g in _AMD_GENERATIONS if re.search(pattern, gpu.name)), gpu.vendor.lower())


def compute_capability(gpu: GPU) -> int | None:
    """An NVIDIA GPU's compute capability x 10 (Turing T4 = 75, Hopper H100 = 90); None for other devices."""
    return _capability(gpu.name)


# Streaming multiprocessors (NVIDIA) / compute units (AMD) as torch's multi_processor_count reports them, from the
# vendors' architecture whitepapers and datasheets (Turing, Volta, Ampere GA100 / GA102, Ada, Hopper, Blackwell;
# CDNA 2 / 3 / 4): what vLLM's Triton top-k/top-p sampler sizes its buffer by (num_compute_units). Most specific
# pattern first; an MI250X shows torch one GCD (110 of its 220 CUs).
_COMPUTE_UNITS = (
    (r"\bV100\b", 80), (r"\bT4\b", 40), (r"\bA100\b", 108), (r"\bA10G\b", 80), (r"\bA10\b", 72), (r"\bA40\b", 84),
    (r"\bL4\b", 58), (r"\bL40S?\b", 142), (r"\bH100 PCIe\b", 114), (r"\b(H100|H200|GH200)\b", 132),
    (r"\b(B200|GB200)\b", 148), (r"\b(B300|GB300)\b", 160), (r"\bRTX 3090\b", 82), (r"\bRTX 4090\b", 128),
    (r"\bRTX 5090\b", 170), (r"\bRTX 6000 Ada\b", 142), (r"\bRTX PRO 6000 Blackwell\b", 188),
    (r"\bJetson AGX Orin\b", 16), (r"\bMI210\b", 104), (r"\bMI250X\b", 110), (r"\bMI3(00|25)X\b", 304),
    (r"\bMI355X\b", 256),
)


def compute_units(gpu: GPU) -> int | None:
    """The device's SMs (NVIDIA) or CUs (AMD) as torch counts them; None where the catalog does not know."""
    return _compute_units(gpu.name)


@lru_cache(maxsize=256)  # bounded: custom devices' names come from users
def _compute_units(name: str) -> int | None:
    return next((n for pattern, n in _COMPUTE_UNITS if re.search(pattern, name)), None)


@lru_cache(maxsize=256)  # bounded: custom devices' names come from users
def _capability(name: str) -> int | None:
    if not name.startswith("NVIDIA"):
        return None
    return next((cap for pattern, cap in _CAPABILITY if re.search(pattern, name)), None)
