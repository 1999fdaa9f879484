"""GGUF headers: the stored tensors with their exact bytes (the transformers config the metadata implies is
`kvplan.model.sources.gguf_arch`).

Only the header is read (magic, version, metadata key/values, tensor infos), never the tensor data, so a caller
can read a remote file with HTTP range requests: `parse_header` raises `NeedMoreBytes(needed)` when the buffer
ends before the header does, and the caller fetches more and calls it again. Little-endian GGUF v2 and v3 (the
versions llama.cpp writes and reads); v1 and big-endian files are refused with an `InputError`. Validation follows
llama.cpp's reader (`ggml/src/gguf.cpp`, `gguf_init_from_reader`): no duplicate keys or tensor names, at most 4
dimensions, rows a whole number of blocks, `general.alignment` a uint32 power of two (default 32), every tensor at
the offset the previous tensors' padded sizes put it. Counts and lengths have sanity limits, so a corrupt or
hostile file gives an `InputError`, never a MemoryError or a hang.

Type table
----------
`GGML_TYPES` maps each ggml type id to (name, elements per block, bytes per block). Ids are llama.cpp's
`enum ggml_type` in `ggml/include/ggml.h` (ggml-org/llama.cpp commit 3514e9f6e795d3b3cd88d6614f6c07e7ce6f916f,
ids 0-39; NVFP4 = 40 and Q1_0 = 41 as in llama.cpp's gguf-py 0.19.0 `GGMLQuantizationType`). Block sizes are
the `blck_size` / `type_size = sizeof(block_*)` pairs of `type_traits[]` in `ggml/src/ggml.c` (commit
00bdaa105cb03380daf899b4fc9f026555745269), with each `sizeof(block_*)` taken from the `static_assert`s in
`ggml/src/ggml-common.h` (commit 01243c587feceaa5d6a6c2305535ef2f549c48b8; QK_K = 256). Ids 4, 5 (old Q4_2/Q4_3)
and 31-33, 36-38 (removed repacked types) have no size and are refused like any unknown id. A tensor stores
`n_elements / block_size * bytes_per_block` bytes (`ggml_nbytes`); its data is padded to the alignment.

Split files
-----------
A split GGUF (llama.cpp's gguf-split: `split.no`, `split.count`, `split.tensors.count` in every shard) is one
header per shard; `merge_shards` combines all of them into one header with every tensor.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvplan.errors import InputError, UnsupportedModelError

# ------------------------------------------------------------------------------------------------ type table


@dataclass(frozen=True, slots=True)
class GGMLType:
    name: str
    block_size: int  # elements per block
    type_size: int  # bytes per block


_QK_K = 256
GGML_TYPES: dict[int, GGMLType] = {
    i: t
    for i, t in (
        (0, GGMLType("F32", 1, 4)),
        (1, GGMLType("F16", 1, 2)),
        (2, GGMLType("Q4_0", 32, 2 + 16)),
        (3, GGMLType("Q4_1", 32, 2 * 2 + 16)),
        (6, GGMLType("Q5_0", 32, 2 + 4 + 16)),
        (7, GGMLType("Q5_1", 32, 2 * 2 + 4 + 16)),
        (8, GGMLType("Q8_0", 32, 2 + 32)),
        (9, GGMLType("Q8_1", 32, 2 * 2 + 32)),
        (10, GGMLType("Q2_K", _QK_K, 2 * 2 + _QK_K // 16 + _QK_K // 4)),  # 84
        (11, GGMLType("Q3_K", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + 12)),  # 110
        (12, GGMLType("Q4_K", _QK_K, 2 * 2 + 12 + _QK_K // 2)),  # 144
        (13, GGMLType("Q5_K", _QK_K, 2 * 2 + 12 + _QK_K // 2 + _QK_K // 8)),  # 176
        (14, GGMLType("Q6_K", _QK_K, 2 + _QK_K // 16 + 3 * _QK_K // 4)),  # 210
        (15, GGMLType("Q8_K", _QK_K, 4 + _QK_K + _QK_K // 16 * 2)),  # 292
        (16, GGMLType("IQ2_XXS", _QK_K, 2 + _QK_K // 8 * 2)),  # 66
        (17, GGMLType("IQ2_XS", _QK_K, 2 + _QK_K // 8 * 2 + _QK_K // 32)),  # 74
        (18, GGMLType("IQ3_XXS", _QK_K, 2 + 3 * (_QK_K // 8))),  # 98
        (19, GGMLType("IQ1_S", _QK_K, 2 + _QK_K // 8 + _QK_K // 16)),  # 50
        (20, GGMLType("IQ4_NL", 32, 2 + 16)),
        (21, GGMLType("IQ3_S", _QK_K, 2 + 13 * (_QK_K // 32) + _QK_K // 64)),  # 110
        (22, GGMLType("IQ2_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 16)),  # 82
        (23, GGMLType("IQ4_XS", _QK_K, 2 + 2 + _QK_K // 64 + _QK_K // 2)),  # 136
        (24, GGMLType("I8", 1, 1)),
        (25, GGMLType("I16", 1, 2)),
        (26, GGMLType("I32", 1, 4)),
        (27, GGMLType("I64", 1, 8)),
        (28, GGMLType("F64", 1, 8)),
        (29, GGMLType("IQ1_M", _QK_K, _QK_K // 8 + _QK_K // 16 + _QK_K // 32)),  # 56
        (30, GGMLType("BF16", 1, 2)),
        (34, GGMLType("TQ1_0", _QK_K, 2 + _QK_K // 64 + (_QK_K - 4 * _QK_K // 64) // 5)),  # 54
        (35, GGMLType("TQ2_0", _QK_K, 2 + _QK_K // 4)),  # 66
        (39, GGMLType("MXFP4", 32, 1 + 16)),
        (40, GGMLType("NVFP4", 64, 64 // 16 + 64 // 2)),  # 36
        (41, GGMLType("Q1_0", 128, 2 + 128 // 8)),  # 18
    )
}
GGML_TYPE_IDS: dict[str, int] = {t.name: i for i, t in GGML_TYPES.items()}

# ------------------------------------------------------------------------------------------- sanity limits

MAX_TENSORS = 1_000_000  # DeepSeek-V3 stores ~1,100; split-expert Mixtral files ~1,000
MAX_KV = 1_000_000
MAX_KEY_BYTES = 65_536
MAX_NAME_BYTES = 1_024  # llama.cpp's GGML_MAX_NAME is 64; leave room for forks
MAX_STRING_BYTES = 64 * 1024 * 1024  # a whole tokenizer.json stored as one string fits
MAX_ARRAY_ITEMS = 1 << 24  # large vocabularies and merge lists are ~10^5 - 10^6
MAX_KEPT_ITEMS = 4_096  # longer arrays are summarised as GGUFArray (type, count)
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_ELEMENTS = (1 << 63) - 1

_MAGIC = b"GGUF"
_STRING, _ARRAY = 8, 9
# GGUF value types (gguf.h enum gguf_type): id -> (name, struct format, size)
_SCALARS: dict[int, tuple[str, str, int]] = {
    0: ("uint8", "B", 1),
    1: ("int8", "b", 1),
    2: ("uint16", "H", 2),
    3: ("int16", "h", 2),
    4: ("uint32", "I", 4),
    5: ("int32", "i", 4),
    6: ("float32", "f", 4),
    7: ("bool", "b", 1),
    10: ("uint64", "Q", 8),
    11: ("int64", "q", 8),
    12: ("float64", "d", 8),
}
_VALUE_TYPE_NAMES = {**{k: v[0] for k, v in _SCALARS.items()}, _STRING: "string", _ARRAY: "array"}


# -------------------------------------------------------------------------------------------------- types


class NeedMoreBytes(Exception):
    """The buffer ends before the header does: read at least `needed` bytes from the file start and retry.

    `needed` is a lower bound (the end of the item that did not fit); the rest of the header may need more, so a
    caller doing HTTP range reads should fetch at least `needed` bytes, e.g. max(needed, 2 * what it has).
    """

    def __init__(self, needed: int, have: int = 0):
        super().__init__(f"the GGUF header continues past the {have} bytes read: read at least {needed} bytes")
        self.needed = needed
        self.have = have


@dataclass(frozen=True, slots=True)
class GGUFArray:
    """A metadata array longer than MAX_KEPT_ITEMS (the tokenizer vocabulary, merges, scores): type and length."""

    item_type: str
    count: int

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True, slots=True)
class GGUFTensor:
    name: str
    shape: tuple[int, ...]  # as GGUF stores dims: ne0 (the contiguous row) first
    ggml_type: str  # "F16", "Q4_K", ...
    nbytes: int  # exact stored bytes: n_elements / block_size * bytes_per_block
    offset: int = 0  # from the start of the data section

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]  # key -> value; long arrays are GGUFArray summaries
    tensors: tuple[GGUFTensor, ...]
    header_bytes: int  # where the tensor data starts (aligned)
    alignment: int = 32
    _by_name: dict[str, GGUFTensor] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update((t.name, t) for t in self.tensors)

    def tensor(self, name: str) -> GGUFTensor | None:
        return self._by_name.get(name)

    def bytes_by_type(self) -> dict[str, int]:
        """Stored tensor bytes per ggml type, largest first."""
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.ggml_type] = out.get(t.ggml_type, 0) + t.nbytes
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def total_bytes(self) -> int:
        """Exact bytes of all tensor data (the weights), without alignment padding."""
        return sum(t.nbytes for t in self.tensors)

    @property
    def n_elements(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def file_bytes(self) -> int:
        """The smallest file that holds every tensor: writers may pad the last one up to the alignment."""
        if not self.tensors:
            return self.header_bytes
        last = max(self.tensors, key=lambda t: t.offset)
        return self.header_bytes + last.offset + last.nbytes


# ------------------------------------------------------------------------------------------------- reader


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview):
        self.buf = memoryview(data).cast("B")
        self.pos = 0

    def need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise NeedMoreBytes(self.pos + n, len(self.buf))

    def unpack(self, fmt: str, size: int) -> Any:
        self.need(size)
        value = struct.unpack_from("<" + fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def u32(self) -> int:
        return self.unpack("I", 4)

    def u64(self) -> int:
        return self.unpack("Q", 8)

    def string(self, limit: int, what: str, decode: bool = True) -> str:
        n = self.u64()
        if n > limit:
            raise InputError(f"corrupt GGUF: {what} is {n:,} bytes long (limit {limit:,})")
        self.need(n)
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return bytes(raw).decode("utf-8", errors="replace") if decode else ""


def _f32(value: float) -> float:
    """The shortest decimal that is the same float32 (1e-06, not 9.999999974752427e-07)."""
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        short = float(f"{value:.{digits}g}")
        if struct.pack("<f", short) == packed:
            return short
    return value


def _scalar(r: _Reader, vtype: int) -> Any:
    _, fmt, size = _SCALARS[vtype]
    value = r.unpack(fmt, size)
    if vtype == 7:
        return value != 0
    if vtype == 6:
        return _f32(value)
    return value


def _value(r: _Reader, vtype: int, key: str) -> Any:
    if vtype in _SCALARS:
        return _scalar(r, vtype)
    if vtype == _STRING:
        return r.string(MAX_STRING_BYTES, f"the value of {key!r}")
    if vtype != _ARRAY:
        raise InputError(f"corrupt GGUF: key {key!r} has unknown value type {vtype}")
    item = r.u32()
    count = r.u64()
    if count > MAX_ARRAY_ITEMS:
        raise InputError(f"corrupt GGUF: array {key!r} claims {count:,} items (limit {MAX_ARRAY_ITEMS:,})")
    keep = count <= MAX_KEPT_ITEMS
    if item in _SCALARS:
        name, fmt, size = _SCALARS[item]
        r.need(count * size)
        if not keep:
            r.pos += count * size
            return GGUFArray(name, count)
        values = list(struct.unpack_from(f"<{count}{fmt}", r.buf, r.pos))
        r.pos += count * size
        if item == 7:
            return [v != 0 for v in values]
        if item == 6:
            return [_f32(v) for v in values]
        return values
    if item == _STRING:
        r.need(count * 8)  # every string has at least its length
        out = [r.string(MAX_STRING_BYTES, f"an item of {key!r}", decode=keep) for _ in range(count)]
        return out if keep else GGUFArray("string", count)
    # llama.cpp refuses nested arrays (GGUF_TYPE_ARRAY as the element type) and unknown types alike
    what = "nested arrays" if item == _ARRAY else f"unknown element type {item}"
    raise InputError(f"corrupt GGUF: array {key!r} has {what}")


def parse_header(data: bytes | bytearray | memoryview) -> GGUFHeader:
    """Parse a GGUF header from the first bytes of a file.

    Raises NeedMoreBytes when `data` ends inside the header, InputError for data that is not a valid
    little-endian GGUF v2/v3 header, UnsupportedModelError for a tensor of a ggml type this table lacks.
    """
    r = _Reader(data)
    magic = bytes(r.buf[:4])
    if magic != _MAGIC[: len(magic)]:
        raise InputError(f"not a GGUF file: magic {magic!r}, expected {_MAGIC!r}")
    r.need(4)
    r.pos = 4
    version = r.u32()
    if version & 0xFFFF == 0 and version:
        raise InputError(f"big-endian GGUF (version field {version:#010x}): kvplan reads little-endian files only")
    if version == 1:
        raise InputError("GGUF version 1 (2023) is not supported: convert the model again with current llama.cpp")
    if version not in (2, 3):
        raise InputError(f"unsupported GGUF version {version}: kvplan reads versions 2 and 3")
    n_tensors = r.u64()
    n_kv = r.u64()
    if n_tensors > MAX_TENSORS:
        raise InputError(f"corrupt GGUF: {n_tensors:,} tensors (limit {MAX_TENSORS:,})")
    if n_kv > MAX_KV:
        raise InputError(f"corrupt GGUF: {n_kv:,} metadata keys (limit {MAX_KV:,})")

    metadata: dict[str, Any] = {}
    alignment_type = None
    for _ in range(n_kv):
        key = r.string(MAX_KEY_BYTES, "a metadata key")
        if not key:
            raise InputError("corrupt GGUF: an empty metadata key")
        if key in metadata:
            raise InputError(f"corrupt GGUF: duplicate metadata key {key!r}")
        vtype = r.u32()
        if key == "general.alignment":
            alignment_type = vtype
        metadata[key] = _value(r, vtype, key)

    alignment = 32
    if "general.alignment" in metadata:
        if alignment_type != 4:
            name = _VALUE_TYPE_NAMES.get(alignment_type or -1, str(alignment_type))
            raise InputError(f"corrupt GGUF: general.alignment must be a uint32 (got {name})")
        alignment = metadata["general.alignment"]
        if alignment <= 0 or alignment & (alignment - 1):
            raise InputError(f"corrupt GGUF: general.alignment {alignment} is not a power of two")

    infos = []
    names: set[str] = set()
    for _ in range(n_tensors):
        name = r.string(MAX_NAME_BYTES, "a tensor name")
        if name in names:
            raise InputError(f"corrupt GGUF: duplicate tensor name {name!r}")
        names.add(name)
        n_dims = r.u32()
        if n_dims > MAX_DIMS:
            raise InputError(f"corrupt GGUF: tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})")
        r.need(8 * n_dims + 12)
        shape = struct.unpack_from(f"<{n_dims}q", r.buf, r.pos)
        r.pos += 8 * n_dims
        type_id = r.unpack("i", 4)
        offset = r.u64()
        infos.append((name, shape, type_id, offset))

    header_bytes = r.pos + (-r.pos % alignment) if n_tensors else r.pos
    tensors = []
    expected = 0
    for name, shape, type_id, offset in infos:
        t = _tensor(name, shape, type_id, offset)
        if offset != expected:
            raise InputError(f"corrupt GGUF: tensor {name!r} starts at data offset {offset}, expected {expected}")
        expected += t.nbytes + (-t.nbytes % alignment)
        tensors.append(t)
    return GGUFHeader(version, metadata, tuple(tensors), header_bytes, alignment)


def _tensor(name: str, shape: tuple[int, ...], type_id: int, offset: int) -> GGUFTensor:
    if any(d < 0 for d in shape):
        raise InputError(f"corrupt GGUF: tensor {name!r} has a negative dimension {shape}")
    n = 1
    for d in shape:
        n *= d
        if n > MAX_ELEMENTS:
            raise InputError(f"corrupt GGUF: tensor {name!r} shape {shape} has more than 2^63 elements")
    t = GGML_TYPES.get(type_id)
    if t is None:
        known = ", ".join(f"{i} {x.name}" for i, x in GGML_TYPES.items())
        raise UnsupportedModelError(
            f"tensor {name!r} has ggml type id {type_id}, which kvplan's type table lacks (it knows {known}): "
            "the file may need a newer kvplan"
        )
    row = shape[0] if shape else 1
    if row % t.block_size:
        raise InputError(
            f"corrupt GGUF: tensor {name!r} rows of {row} elements are not whole {t.name} blocks of {t.block_size}"
        )
    return GGUFTensor(name, tuple(shape), t.name, n // t.block_size * t.type_size, offset)


def merge_shards(headers: Sequence[GGUFHeader]) -> GGUFHeader:
    """One header for a split GGUF (`model-00001-of-00003.gguf` ...): the first shard's metadata, every tensor.

    llama.cpp's gguf-split writes `split.no`, `split.count` and `split.tensors.count` into each shard; the first
    holds the model metadata. In the result, tensors / total_bytes / bytes_by_type cover all shards, while
    header_bytes, alignment, file_bytes and each tensor's offset still describe its own shard.
    """
    if not headers:
        raise InputError("no GGUF shards given")
    shards = sorted(headers, key=lambda h: h.metadata.get("split.no", 0))
    count = shards[0].metadata.get("split.count", 1)
    numbers = [h.metadata.get("split.no", 0) for h in shards]
    if numbers != list(range(count)):
        raise InputError(f"a split GGUF of {count} shards needs shards 1 to {count}; got {[n + 1 for n in numbers]}")
    tensors = tuple(t for h in shards for t in h.tensors)
    if len({t.name for t in tensors}) != len(tensors):
        raise InputError("the GGUF shards repeat a tensor name: they are not one split model")
    first = shards[0]
    return GGUFHeader(first.version, first.metadata, tensors, first.header_bytes, first.alignment)


def parse_file(path: str | Path, first: int = 1 << 20) -> GGUFHeader:
    """Read only as much of a local GGUF file as its header needs (the same loop a range-reading caller runs)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = first
            while True:
                f.seek(0)
                data = f.read(size)
                try:
                    return parse_header(data)
                except NeedMoreBytes as e:
                    if len(data) < size:  # the file ended
                        raise InputError(f"{path} ends inside its GGUF header (needs {e.needed} bytes)") from None
                    size = max(e.needed, 2 * size)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
