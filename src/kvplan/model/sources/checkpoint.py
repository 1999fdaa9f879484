"""What a checkpoint stores, read from its safetensors headers: per-dtype bytes and the bytes an engine loads.

A safetensors file starts with an 8-byte little-endian header length and a JSON header mapping each tensor
name to {dtype, shape, data_offsets}; nothing else has to be read to know its exact size. Engines load
floating-point parameters in the serving dtype (a float32 checkpoint is cast to bf16), quantized tensors and
their scales as stored. Two kinds of stored tensors are not loaded: a second copy of a tied lm_head
(Falcon-7B, Qwen3-0.6B store one) and multi-token-prediction layers (DeepSeek-V3's layer 61, Qwen3-Next's
`mtp.*`), which are only read for speculative decoding.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from kvplan.errors import InputError

# Bytes per element of each safetensors dtype (F4 / F6 packed types are counted from their byte offsets).
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
               "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1}
FLOAT = frozenset({"F64", "F32", "F16", "BF16"})
HEADER_LIMIT = 100 * 1024 * 1024  # a header longer than 100 MB is not a safetensors file


@dataclass(frozen=True)
class StoredTensor:
    name: str
    dtype: str
    numel: int
    nbytes: int


def header_length(first8: bytes) -> int:
    if len(first8) < 8:
        raise InputError("a safetensors file shorter than 8 bytes: truncated download?")
    (n,) = struct.unpack("<Q", first8[:8])
    if n <= 0 or n > HEADER_LIMIT:
        raise InputError(f"not a safetensors file: header length {n}")
    return n


def parse_header(raw: bytes, where: str) -> list[StoredTensor]:
    """The tensors of one safetensors header (the JSON after the 8-byte length)."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{where}: the safetensors header is not valid JSON (truncated?)") from None
    if not isinstance(header, dict):
        raise InputError(f"{where}: the safetensors header is not a JSON object")
    out = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = (int(x) for x in info["data_offsets"])
            shape = [int(d) for d in info["shape"]]
            if start < 0 or end < start or any(d < 0 for d in shape) or len(shape) > 8:
                raise ValueError
            numel = math.prod(shape)
            out.append(StoredTensor(name[:200], str(info["dtype"])[:20], numel, end - start))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError(f"{where}: tensor {name[:80]!r} has no valid dtype / shape / data_offsets (negative "
                             "sizes and reversed offsets included)") from None
    return out


def read_local(path: Path) -> list[StoredTensor]:
    """Tensors of a local safetensors file (only its header is read)."""
    with open(path, "rb") as f:
        n = header_length(f.read(8))
        return parse_header(f.read(n), str(path))


def local_tensors(folder: Path) -> list[StoredTensor] | None:
    """Every tensor of a model folder's safetensors (single file or sharded with an index), else None."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
                raise TypeError
            shards = sorted(set(weight_map.values()))
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            raise InputError(f"{index} is not a valid safetensors index (weight_map must map tensor names to shard "
                             "files)") from None
        for shard in shards:
            if Path(shard).name != shard or not (folder / shard).is_file():
                raise InputError(f"{index} names the shard {shard[:80]!r}, which is not a file in {folder}")
        return [t for shard in shards for t in read_local(folder / shard)]
    single = folder / "model.safetensors"
    return read_local(single) if single.is_file() else None


@dataclass(frozen=True)
class Checkpoint:
    """A summary of the stored tensors, with what an engine would not load set apart."""

    source: str
    bytes_by_dtype: dict[str, int]
    stored_bytes: int
    float_numel: int  # floating-point elements the engine loads (cast to the serving dtype)
    other_bytes: int  # quantized / integer tensors the engine loads as stored
    excluded: tuple[tuple[str, int], ...] = field(default=())  # (why, stored bytes) not loaded

    def resident_bytes(self, dense_bytes: float) -> int:
        """Bytes on the GPU(s) with floating-point tensors in the serving dtype."""
        return round(self.float_numel * dense_bytes + self.other_bytes)

    def to_dict(self) -> dict:
        return {"source": self.source, "bytes_by_dtype": self.bytes_by_dtype, "stored_bytes": self.stored_bytes,
                "not_loaded": [{"what": w, "stored_bytes": b} for w, b in self.excluded]}


_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
# Quantization side tensors keep their stored dtype (fp32 block scales stay fp32): only parameters are cast.
_QUANT_AUX = re.compile(r"(scale|scale_inv|scales|zero_point|zeros|qzeros|g_idx|absmax|quant_map|SCB|shape)$")


def summarize(tensors: list[StoredTensor], source: str, num_layers: int, tied: bool) -> Checkpoint:
    by_dtype: dict[str, int] = {}
    float_numel = other = 0
    excluded: dict[str, int] = {}
    for t in tensors:
        by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + t.nbytes
        m = _LAYER.search(t.name)
        if t.name.startswith("mtp.") or ".mtp." in t.name or (m and int(m.group(1)) >= num_layers
                                                               and "vision" not in t.name):
            why = "multi-token-prediction layers (loaded only for speculative decoding)"
        elif tied and t.name.endswith("lm_head.weight"):
            why = "a stored copy of the tied lm_head (the engine loads the embedding once)"
        else:
            if t.dtype in FLOAT and not _QUANT_AUX.search(t.name.rsplit(".", 1)[-1]):
                float_numel += t.numel
            else:
                other += t.nbytes
            continue
        excluded[why] = excluded.get(why, 0) + t.nbytes
    return Checkpoint(source, dict(sorted(by_dtype.items())), sum(by_dtype.values()), float_numel, other,
                      tuple(excluded.items()))
