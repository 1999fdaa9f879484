"""GGUF headers: the stored tensors with their exact bytes, and the transformers config the metadata implies.

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

Config mapping
--------------
`config_from_gguf` returns an HF-style config.json dict that `kvplan.model.load.from_config` loads. Supported
`general.architecture` values and the `model_type` each becomes: llama -> llama (mistral when the file carries
`llama.attention.sliding_window`; mixtral when `llama.expert_count` > 0), qwen2 -> qwen2, qwen2moe -> qwen2_moe,
qwen3 -> qwen3, qwen3moe -> qwen3_moe, gemma -> gemma, gemma2 -> gemma2, gemma3 -> gemma3_text, phi3 -> phi3,
falcon -> falcon, starcoder2 -> starcoder2, deepseek2 -> deepseek_v2 (deepseek_v3 when the router carries the
`exp_probs_b` correction bias), gpt-oss -> gpt_oss, granite -> granite, olmo2 -> olmo2.

Keys (`{a}` is the architecture) -> config keys:

- `{a}.block_count` -> num_hidden_layers (minus `{a}.nextn_predict_layers`, the stored MTP layers)
- `{a}.embedding_length` -> hidden_size
- `{a}.feed_forward_length` -> intermediate_size (falcon: ffn_hidden_size)
- `{a}.attention.head_count` / `.head_count_kv` -> num_attention_heads / num_key_value_heads (falcon:
  num_kv_heads); a per-layer array is accepted when all its entries are equal
- `{a}.attention.key_length` -> head_dim (default embedding_length / head_count); `.value_length` must match it,
  except in deepseek2
- `{a}.context_length` -> max_position_embeddings
- `{a}.rope.freq_base` -> rope_theta; `{a}.rope.scaling.type` / `.factor` / `.original_context_length` ->
  rope_scaling {rope_type, factor, original_max_position_embeddings}; `{a}.rope.dimension_count` smaller than
  head_dim -> partial_rotary_factor
- `{a}.attention.layer_norm_rms_epsilon` -> rms_norm_eps; `.layer_norm_epsilon` -> layer_norm_epsilon (falcon),
  norm_epsilon (starcoder2)
- `{a}.expert_count` -> num_local_experts (mixtral, gpt-oss), num_experts (qwen MoE), n_routed_experts (deepseek)
- `{a}.expert_used_count` -> num_experts_per_tok
- `{a}.expert_feed_forward_length` -> moe_intermediate_size (qwen MoE, deepseek), intermediate_size (gpt-oss,
  mixtral when present)
- `{a}.expert_shared_feed_forward_length` -> shared_expert_intermediate_size (qwen2moe)
- `{a}.expert_shared_count`, `.leading_dense_block_count` -> n_shared_experts, first_k_dense_replace (deepseek)
- `{a}.attention.q_lora_rank`, `.kv_lora_rank` -> q_lora_rank, kv_lora_rank; `.key_length_mla` (or key_length
  in files written before llama.cpp split kv_b) minus rope.dimension_count -> qk_nope_head_dim;
  `.value_length_mla` (or value_length) -> v_head_dim; rope.dimension_count -> qk_rope_head_dim (deepseek)
- `{a}.attention.sliding_window` -> sliding_window; `{a}.attention.sliding_window_pattern` -> sliding_window_pattern
  (an integer) or layer_types (a per-layer bool array); gemma2 defaults to 4096 and gemma3 to pattern 6 and a
  10000 local rope base, as llama.cpp's loader does
- `{a}.attn_logit_softcapping`, `.final_logit_softcapping` -> the same names (gemma2)
- `{a}.attention.scale`, `.embedding_scale`, `.residual_scale`, `.logit_scale` -> attention_multiplier,
  embedding_multiplier, residual_multiplier, logits_scaling (granite)

From the tensors: vocab_size is the row count of `token_embd.weight` (else `{a}.vocab_size`, else the length of
`tokenizer.ggml.tokens`); tie_word_embeddings is the absence of `output.weight`; biases (attention_bias, mlp_bias,
use_bias, falcon's bias) are the presence of `blk.N.attn_q.bias` / `attn_output.bias` / `ffn_up.bias`; MoE layers
without a router (`blk.N.ffn_gate_inp.weight`) become qwen's mlp_only_layers; falcon's `blk.N.attn_norm_2` marks
the new decoder architecture with two layer norms. torch_dtype is "bfloat16": the quantized storage is what
`GGUFHeader.bytes_by_type` / `total_bytes` report, which the config cannot express.

A split GGUF (llama.cpp's gguf-split: `split.no`, `split.count`, `split.tensors.count` in every shard) is mapped
only from all its shards' headers combined with `merge_shards`; one shard alone is refused, since the output
head, the biases and the MoE layers may sit in another shard.

Not recoverable from a header: Llama-3 / LongRoPE rope factors (llama.cpp stores them as `rope_freqs` /
`rope_factors_*` tensors, so rope_scaling keeps only their type and original context), qwen2's
use_sliding_window and starcoder2's window (llama.cpp's converter drops them and its runtime attends to the full
context), and a multimodal model's vision tower (a separate mmproj GGUF).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvplan.errors import InputError, UnsupportedModelError, suggest

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


# ----------------------------------------------------------------------------------------- config mapping

_MISSING = object()


class _View:
    """Typed access to one architecture's keys and tensors, with errors that name the key."""

    def __init__(self, header: GGUFHeader, arch: str):
        self.h = header
        self.arch = arch
        self.meta = header.metadata
        self.layer_tensors: dict[int, set[str]] = {}
        for t in header.tensors:
            parts = t.name.split(".", 2)
            if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit():
                self.layer_tensors.setdefault(int(parts[1]), set()).add(parts[2])

    def raw(self, suffix: str, default: Any = _MISSING) -> Any:
        key = f"{self.arch}.{suffix}"
        if key in self.meta:
            return self.meta[key]
        if default is _MISSING:
            raise InputError(f"the GGUF metadata lacks {key!r}, which kvplan needs for a {self.arch} model")
        return default

    def int(self, suffix: str, default: Any = _MISSING, minimum: int = 1) -> Any:
        value = self.raw(suffix, default)
        if value is default and default is not _MISSING:
            return value
        key = f"{self.arch}.{suffix}"
        if isinstance(value, list):  # per-layer array (llama.cpp's get_key_or_arr)
            if not value or len(set(value)) != 1:
                raise UnsupportedModelError(
                    f"{key} varies per layer ({_short(value)}): kvplan's {self.arch} mapping needs one value"
                )
            value = value[0]
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"the GGUF key {key!r} must be an integer (got {value!r})")
        if value < minimum:
            raise InputError(f"the GGUF key {key!r} must be at least {minimum} (got {value})")
        return value

    def float(self, suffix: str) -> float | None:
        value = self.raw(suffix, None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"the GGUF key {self.arch}.{suffix!r} must be a number (got {value!r})")
        return value

    def any_layer(self, suffix: str) -> bool:
        return any(suffix in names for names in self.layer_tensors.values())

    def shape(self, name: str) -> tuple[int, ...] | None:
        t = self.h.tensor(name)
        return t.shape if t else None

    def layer_shape(self, suffix: str) -> tuple[int, ...] | None:
        for i in sorted(self.layer_tensors):
            if suffix in self.layer_tensors[i]:
                return self.shape(f"blk.{i}.{suffix}")
        return None


def _short(values: list) -> str:
    return ", ".join(map(str, values[:8])) + (", ..." if len(values) > 8 else "")


def _vocab(v: _View) -> int:
    emb = v.shape("token_embd.weight")
    if emb and len(emb) == 2:
        return emb[1]
    size = v.int("vocab_size", default=None)
    if size:
        return size
    tokens = v.meta.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list | GGUFArray) and len(tokens):
        return len(tokens)
    raise InputError("the GGUF has no token_embd.weight tensor, no vocab_size and no tokenizer.ggml.tokens")


def _base(v: _View, model_type: str, architecture: str) -> dict[str, Any]:
    hidden = v.int("embedding_length")
    n = v.int("block_count") - v.int("nextn_predict_layers", default=0, minimum=0)
    heads = v.int("attention.head_count")
    kv = v.int("attention.head_count_kv", default=heads)
    if f"{v.arch}.attention.key_length" not in v.meta and hidden % heads:
        raise InputError(f"{v.arch}.embedding_length {hidden} is not a multiple of head_count {heads} and the GGUF "
                         "has no attention.key_length")
    head_dim = v.int("attention.key_length", default=hidden // heads)
    cfg: dict[str, Any] = {
        "model_type": model_type,
        "architectures": [architecture],
        "hidden_size": hidden,
        "num_hidden_layers": n,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": head_dim,
        "vocab_size": _vocab(v),
        "tie_word_embeddings": v.h.tensor("output.weight") is None,
        "torch_dtype": "bfloat16",
    }
    if (ff := v.int("feed_forward_length", default=None, minimum=0)) is not None:
        cfg["intermediate_size"] = ff
    if (ctx := v.int("context_length", default=None)) is not None:
        cfg["max_position_embeddings"] = ctx
    if (eps := v.float("attention.layer_norm_rms_epsilon")) is not None:
        cfg["rms_norm_eps"] = eps
    if isinstance(name := v.meta.get("general.name"), str) and name:
        cfg["_name_or_path"] = name
    _rope(v, cfg)
    return cfg


def _rope(v: _View, cfg: dict[str, Any], rope_dim_is_head: bool = True) -> None:
    if (theta := v.float("rope.freq_base")) is not None:
        cfg["rope_theta"] = theta
    kind = v.raw("rope.scaling.type", None)
    factor = v.float("rope.scaling.factor") or v.float("rope.scale_linear")
    orig = v.int("rope.scaling.original_context_length", default=None)
    if kind in (None, "none") and factor and factor != 1.0:
        kind = "linear"  # llama.cpp's default when only a factor is stored
    if kind == "linear" and factor and factor != 1.0:
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": factor}
    elif kind == "yarn":
        scaling: dict[str, Any] = {"rope_type": "yarn", "factor": factor or 1.0}
        if orig:
            scaling["original_max_position_embeddings"] = orig
        cfg["rope_scaling"] = scaling
    elif kind == "longrope" or v.h.tensor("rope_factors_long.weight") is not None:
        # the long/short factors are tensor data; kvplan sizes the tables from the original context alone
        cfg["rope_scaling"] = {"rope_type": "longrope"}
        if orig:
            cfg["rope_scaling"]["original_max_position_embeddings"] = orig
            cfg["original_max_position_embeddings"] = orig
    rope_dim = v.int("rope.dimension_count", default=None)
    if rope_dim_is_head and rope_dim and rope_dim != cfg["head_dim"]:
        cfg["partial_rotary_factor"] = rope_dim / cfg["head_dim"]


def _same_kv_dims(v: _View, cfg: dict[str, Any]) -> None:
    value = v.int("attention.value_length", default=None)
    if value is not None and value != cfg["head_dim"]:
        raise UnsupportedModelError(
            f"{v.arch}.attention.value_length {value} differs from key_length {cfg['head_dim']}: kvplan's "
            f"{cfg['model_type']} adapter assumes equal K and V head sizes"
        )


def _check_attention(v: _View, cfg: dict[str, Any]) -> None:
    """Metadata and tensor shapes must agree (llama.cpp's loader enforces the same shapes)."""
    hd, hidden = cfg["head_dim"], cfg["hidden_size"]
    for suffix, rows in (("attn_q.weight", cfg["num_attention_heads"] * hd),
                         ("attn_k.weight", cfg["num_key_value_heads"] * hd)):
        shape = v.layer_shape(suffix)
        if shape and len(shape) == 2 and shape != (hidden, rows):
            raise InputError(
                f"GGUF metadata and tensors disagree: blk.N.{suffix} is {list(shape)}, the metadata implies "
                f"[{hidden}, {rows}] (heads x head_dim): the file is inconsistent"
            )


def _sliding(v: _View, cfg: dict[str, Any], default: int | None = None) -> int | None:
    window = v.int("attention.sliding_window", default=default, minimum=0) or None
    if window:
        cfg["sliding_window"] = window
    return window


def _biases(v: _View) -> tuple[bool, bool, bool]:
    """Attention input (q/k/v), attention output and MLP biases, from the tensors present."""
    qkv = v.any_layer("attn_q.bias") or v.any_layer("attn_qkv.bias")
    out = v.any_layer("attn_output.bias")
    mlp = v.any_layer("ffn_up.bias") or v.any_layer("ffn_down.bias")
    return qkv, out, mlp


def _moe_layers(v: _View, n: int) -> list[int] | None:
    """Layers without a router, when the file has routers at all (None: no tensors to tell)."""
    routed = {i for i, names in v.layer_tensors.items() if "ffn_gate_inp.weight" in names}
    if not routed:
        return None
    return [i for i in range(n) if i not in routed]


def _expert_ff(v: _View, key: str, tensor: str) -> int | None:
    """An expert FFN width: the key, else the stored tensor's rows (ne1 of [hidden, ff, experts])."""
    value = v.int(key, default=None)
    if value:
        return value
    shape = v.layer_shape(tensor)
    return shape[1] if shape and len(shape) >= 2 else None


def _llama(v: _View) -> dict[str, Any]:
    experts = v.int("expert_count", default=0, minimum=0)
    qkv_bias, o_bias, mlp_bias = _biases(v)
    if experts:
        cfg = _base(v, "mixtral", "MixtralForCausalLM")
        if qkv_bias or o_bias or mlp_bias:
            raise UnsupportedModelError("a llama-architecture MoE GGUF with biases has no transformers equivalent "
                                        "kvplan models (Mixtral has none)")
        cfg["num_local_experts"] = experts
        cfg["num_experts_per_tok"] = v.int("expert_used_count")
        inter = _expert_ff(v, "expert_feed_forward_length", "ffn_up_exps.weight") or cfg.get("intermediate_size")
        if inter:
            cfg["intermediate_size"] = inter
        _sliding(v, cfg)
    elif f"{v.arch}.attention.sliding_window" in v.meta and v.int("attention.sliding_window", minimum=0):
        cfg = _base(v, "mistral", "MistralForCausalLM")
        if qkv_bias or o_bias or mlp_bias:
            raise UnsupportedModelError("a sliding-window llama GGUF with biases has no transformers equivalent")
        _sliding(v, cfg)
    else:
        cfg = _base(v, "llama", "LlamaForCausalLM")
        if qkv_bias != o_bias:
            raise UnsupportedModelError("this llama GGUF has q/k/v biases without an output bias (or the reverse): "
                                        "transformers' llama attention_bias sets all four")
        cfg["attention_bias"] = qkv_bias
        cfg["mlp_bias"] = mlp_bias
    _same_kv_dims(v, cfg)
    return cfg


def _qwen2(v: _View) -> dict[str, Any]:
    cfg = _base(v, "qwen2", "Qwen2ForCausalLM")
    _require_qkv_bias(v)
    _sliding(v, cfg)  # llama.cpp runs qwen2 with full attention; use_sliding_window stays false
    _same_kv_dims(v, cfg)
    return cfg


def _require_qkv_bias(v: _View) -> None:
    if v.layer_tensors and not v.any_layer("attn_q.bias"):
        raise UnsupportedModelError(f"this {v.arch} GGUF has no q/k/v biases, which every transformers "
                                    f"{v.arch} model has: it is another architecture under that name")


def _qwen3(v: _View) -> dict[str, Any]:
    cfg = _base(v, "qwen3", "Qwen3ForCausalLM")
    cfg["attention_bias"] = _biases(v)[0]
    _same_kv_dims(v, cfg)
    return cfg


def _qwen_moe(v: _View, model_type: str, architecture: str) -> dict[str, Any]:
    cfg = _base(v, model_type, architecture)
    n = cfg["num_hidden_layers"]
    cfg["num_experts"] = v.int("expert_count")
    cfg["num_experts_per_tok"] = v.int("expert_used_count")
    moe_inter = _expert_ff(v, "expert_feed_forward_length", "ffn_up_exps.weight")
    if not moe_inter:
        raise InputError(f"the GGUF has neither {v.arch}.expert_feed_forward_length nor expert tensors")
    cfg["moe_intermediate_size"] = moe_inter
    cfg.setdefault("intermediate_size", moe_inter)
    cfg["decoder_sparse_step"] = 1
    dense = _moe_layers(v, n)
    if dense:
        cfg["mlp_only_layers"] = dense
    if model_type == "qwen2_moe":
        _require_qkv_bias(v)
        shared = _expert_ff(v, "expert_shared_feed_forward_length", "ffn_up_shexp.weight") or 0
        cfg["shared_expert_intermediate_size"] = shared
    else:
        cfg["attention_bias"] = _biases(v)[0]
    _same_kv_dims(v, cfg)
    return cfg


def _gemma(v: _View) -> dict[str, Any]:
    cfg = _base(v, "gemma", "GemmaForCausalLM")
    cfg["attention_bias"] = _biases(v)[0]
    _same_kv_dims(v, cfg)
    return cfg


def _gemma2(v: _View) -> dict[str, Any]:
    cfg = _base(v, "gemma2", "Gemma2ForCausalLM")
    cfg["attention_bias"] = _biases(v)[0]
    _sliding(v, cfg, default=4096)  # llama.cpp's default for Gemma 2
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if (value := v.float(key)) is not None:
            cfg[key] = value
    _same_kv_dims(v, cfg)
    return cfg


def _gemma3(v: _View) -> dict[str, Any]:
    cfg = _base(v, "gemma3_text", "Gemma3ForCausalLM")
    cfg["attention_bias"] = _biases(v)[0]
    if not _sliding(v, cfg):
        raise InputError("the GGUF lacks gemma3.attention.sliding_window, which llama.cpp requires for gemma3")
    pattern = v.raw("attention.sliding_window_pattern", None)
    n = cfg["num_hidden_layers"]
    if isinstance(pattern, list):
        if len(pattern) < n:
            raise InputError(f"gemma3.attention.sliding_window_pattern has {len(pattern)} entries for {n} layers")
        cfg["layer_types"] = ["sliding_attention" if s else "full_attention" for s in pattern[:n]]
    else:
        cfg["sliding_window_pattern"] = pattern if isinstance(pattern, int) and pattern > 0 else 6
    cfg["rope_local_base_freq"] = v.float("rope.freq_base_swa") or 10000.0
    _same_kv_dims(v, cfg)
    return cfg


def _phi3(v: _View) -> dict[str, Any]:
    cfg = _base(v, "phi3", "Phi3ForCausalLM")
    if any(_biases(v)):
        raise UnsupportedModelError("this phi3 GGUF has biases, which transformers' Phi-3 has not")
    _sliding(v, cfg)
    _same_kv_dims(v, cfg)
    return cfg


def _falcon(v: _View) -> dict[str, Any]:
    cfg = _base(v, "falcon", "FalconForCausalLM")
    heads, kv = cfg["num_attention_heads"], cfg.pop("num_key_value_heads")
    two_norms = v.any_layer("attn_norm_2.weight")
    new_arch = two_norms or kv not in (1, heads)
    cfg.update({
        "num_kv_heads": kv,
        "new_decoder_architecture": new_arch,
        "multi_query": kv == 1 and not new_arch,
        "parallel_attn": True,  # llama.cpp's falcon graph is the parallel one
        "bias": _biases(v)[0],
        "alibi": False,
    })
    if new_arch:
        cfg["num_ln_in_parallel_attn"] = 2 if two_norms else 1
    if "intermediate_size" in cfg:
        cfg["ffn_hidden_size"] = cfg.pop("intermediate_size")
    if (eps := v.float("attention.layer_norm_epsilon")) is not None:
        cfg["layer_norm_epsilon"] = eps
    del cfg["head_dim"]  # falcon's is always hidden_size / heads
    return cfg


def _starcoder2(v: _View) -> dict[str, Any]:
    cfg = _base(v, "starcoder2", "Starcoder2ForCausalLM")
    cfg["use_bias"] = _biases(v)[0]
    if (eps := v.float("attention.layer_norm_epsilon")) is not None:
        cfg["norm_epsilon"] = eps
    _sliding(v, cfg)
    _same_kv_dims(v, cfg)
    return cfg


def _deepseek2(v: _View) -> dict[str, Any]:
    v3 = v.any_layer("exp_probs_b.bias") or v.any_layer("exp_probs_b")
    cfg = _base(v, "deepseek_v3" if v3 else "deepseek_v2", "DeepseekV3ForCausalLM" if v3 else "DeepseekV2ForCausalLM")
    for key in ("num_key_value_heads", "head_dim", "partial_rotary_factor"):
        cfg.pop(key, None)
    rope = v.int("rope.dimension_count")
    # llama.cpp >= 2025-04 stores the absorbed-MLA sizes in key/value_length and the per-head ones in *_mla
    key_len = v.int("attention.key_length_mla", default=None) or v.int("attention.key_length")
    value_len = v.int("attention.value_length_mla", default=None) or v.int("attention.value_length")
    if key_len <= rope:
        raise InputError(f"deepseek2 key length {key_len} is not larger than the rope dimension {rope}")
    q_lora = v.int("attention.q_lora_rank", default=0, minimum=0)
    cfg.update({
        "q_lora_rank": q_lora or None,
        "kv_lora_rank": v.int("attention.kv_lora_rank"),
        "qk_rope_head_dim": rope,
        "qk_nope_head_dim": key_len - rope,
        "v_head_dim": value_len,
        "n_routed_experts": v.int("expert_count", default=0, minimum=0),
        "first_k_dense_replace": v.int("leading_dense_block_count", default=0, minimum=0),
        "moe_layer_freq": 1,
        "n_shared_experts": v.int("expert_shared_count", default=0, minimum=0),
    })
    if cfg["n_routed_experts"]:
        cfg["num_experts_per_tok"] = v.int("expert_used_count")
        cfg["moe_intermediate_size"] = _expert_ff(v, "expert_feed_forward_length", "ffn_up_exps.weight")
    nextn = v.int("nextn_predict_layers", default=0, minimum=0)
    if nextn:
        cfg["num_nextn_predict_layers"] = nextn
    if any(_biases(v)[:2]):
        cfg["attention_bias"] = True
    return cfg


def _gpt_oss(v: _View) -> dict[str, Any]:
    cfg = _base(v, "gpt_oss", "GptOssForCausalLM")
    cfg["num_local_experts"] = v.int("expert_count")
    cfg["num_experts_per_tok"] = v.int("expert_used_count")
    inter = _expert_ff(v, "expert_feed_forward_length", "ffn_up_exps.weight") or cfg.get("intermediate_size")
    if not inter:
        raise InputError("the GGUF has neither gpt-oss.expert_feed_forward_length nor expert tensors")
    cfg["intermediate_size"] = inter
    cfg["attention_bias"] = _biases(v)[0]
    if not _sliding(v, cfg):
        raise InputError("the GGUF lacks gpt-oss.attention.sliding_window, which llama.cpp requires")
    # llama.cpp: swa pattern 2, even layers sliding (transformers' GptOssConfig default layer_types)
    cfg["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention"
                          for i in range(cfg["num_hidden_layers"])]
    _same_kv_dims(v, cfg)
    return cfg


def _granite(v: _View) -> dict[str, Any]:
    cfg = _base(v, "granite", "GraniteForCausalLM")
    qkv_bias, o_bias, mlp_bias = _biases(v)
    if qkv_bias != o_bias:
        raise UnsupportedModelError("this granite GGUF has q/k/v biases without an output bias (or the reverse)")
    cfg["attention_bias"], cfg["mlp_bias"] = qkv_bias, mlp_bias
    for key, name in (("attention.scale", "attention_multiplier"), ("embedding_scale", "embedding_multiplier"),
                      ("residual_scale", "residual_multiplier"), ("logit_scale", "logits_scaling")):
        if (value := v.float(key)) is not None:
            cfg[name] = value
    _same_kv_dims(v, cfg)
    return cfg


def _olmo2(v: _View) -> dict[str, Any]:
    cfg = _base(v, "olmo2", "Olmo2ForCausalLM")
    if v.int("attention.sliding_window", default=0, minimum=0):
        raise UnsupportedModelError("an olmo2 GGUF with a sliding window is OLMo 3, which kvplan does not model")
    cfg["attention_bias"] = _biases(v)[0]
    _same_kv_dims(v, cfg)
    return cfg


_MAPPERS = {
    "llama": _llama,
    "qwen2": _qwen2,
    "qwen2moe": lambda v: _qwen_moe(v, "qwen2_moe", "Qwen2MoeForCausalLM"),
    "qwen3": _qwen3,
    "qwen3moe": lambda v: _qwen_moe(v, "qwen3_moe", "Qwen3MoeForCausalLM"),
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "phi3": _phi3,
    "falcon": _falcon,
    "starcoder2": _starcoder2,
    "deepseek2": _deepseek2,
    "gpt-oss": _gpt_oss,
    "granite": _granite,
    "olmo2": _olmo2,
}
SUPPORTED_ARCHITECTURES = tuple(_MAPPERS)
_UNCHECKED = {"deepseek2", "falcon"}  # MLA / fused-QKV layouts: no attn_q/attn_k rows to compare


def config_from_gguf(header: GGUFHeader) -> dict[str, Any]:
    """An HF-style config.json dict for the model a GGUF header describes (see the module docstring)."""
    arch = header.metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise InputError("the GGUF metadata has no general.architecture: is it a model file?")
    mapper = _MAPPERS.get(arch)
    if mapper is None:
        raise UnsupportedModelError(
            f"GGUF architecture {arch!r} is not supported{suggest(arch, _MAPPERS)}: kvplan maps "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    expected = header.metadata.get("split.tensors.count")
    if isinstance(expected, int) and expected != len(header.tensors):
        raise InputError(
            f"this is shard {header.metadata.get('split.no', 0) + 1} of {header.metadata.get('split.count', '?')} "
            f"of a split GGUF and lists {len(header.tensors)} of its {expected} tensors: the config depends on all "
            "of them (the output head, biases, MoE layers); read every shard's header and merge_shards() them"
        )
    if not header.tensors:
        raise InputError("the GGUF holds no tensors (a vocabulary-only file?): give the model file")
    v = _View(header, arch)
    cfg = mapper(v)
    if arch not in _UNCHECKED:
        _check_attention(v, cfg)
    return cfg
