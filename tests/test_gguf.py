"""kvplan.model.sources.gguf and .gguf_arch: GGUF headers written by llama.cpp's own writer (the `gguf` package,
a test-only dependency).

Two kinds of files: small real GGUFs with tensor data (F32 / F16 / Q8_0), and header-only GGUFs with the real
shapes of catalog models, written the way llama.cpp's convert_hf_to_gguf.py lays them out, whose config must
load back into the same kvplan model (parameters, KV layers, context, MoE) as the catalog's config.json.
"""

from __future__ import annotations

import contextlib
import json
import random
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.constants import GGML_QUANT_SIZES, MODEL_ARCH_NAMES, GGMLQuantizationType

from kvplan.errors import InputError, UnsupportedModelError
from kvplan.model import catalog
from kvplan.model.load import from_config, load_model
from kvplan.model.sources.gguf import (
    GGML_TYPES,
    MAX_KEPT_ITEMS,
    GGUFArray,
    NeedMoreBytes,
    merge_shards,
    parse_file,
    parse_header,
)
from kvplan.model.sources.gguf_arch import SUPPORTED_ARCHITECTURES, config_from_gguf

Q8_0 = GGMLQuantizationType.Q8_0

# --------------------------------------------------------------------------------------------- type table


def test_type_table_matches_llama_cpp_gguf_py():
    """Every type gguf-py knows, with the same id, name, block size and bytes per block.

    gguf-py 0.19 still lists Q8_1 at 40 bytes (its old float d/s layout); ggml-common.h's block_q8_1 is two
    halves + 32 quants = 36 bytes (static_assert), which is what ggml_nbytes uses.
    """
    for qtype in GGMLQuantizationType:
        ours = GGML_TYPES[qtype.value]
        block, size = GGML_QUANT_SIZES[qtype]
        assert ours.name == qtype.name
        assert ours.block_size == block
        assert ours.type_size == (36 if qtype.name == "Q8_1" else size)
    assert {t.name for t in GGML_TYPES.values()} >= {
        "F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S",
        "IQ1_M", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4",
    }


# ------------------------------------------------------------------------------------ a small real file

HIDDEN, FF, HEADS, KV_HEADS, LAYERS, VOCAB = 64, 128, 4, 2, 2, 96


def _weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def write_tiny_llama(path: Path, *, alignment: int | None = None, tie: bool = False) -> dict[str, tuple]:
    """A 2-layer llama in F32 (norms), F16 (embedding, v) and Q8_0 (the other matrices).

    Returns {name: (numpy shape (rows, cols), ggml type)} as written.
    """
    w = gguf.GGUFWriter(path, "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_name("tiny-llama")
    w.add_block_count(LAYERS)
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"tok{i}" for i in range(VOCAB)])
    w.add_token_scores([float(-i) for i in range(VOCAB)])
    w.add_bool("tiny.flag", True)
    w.add_array("tiny.layers", [1, 2, 3])

    written: dict[str, tuple] = {}

    def add(name: str, shape: tuple[int, ...], kind: str) -> None:
        data = _weights(shape, len(written))
        if kind == "F32":
            w.add_tensor(name, data)
        elif kind == "F16":
            w.add_tensor(name, data.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(data, Q8_0), raw_dtype=Q8_0)
        written[name] = (shape, kind)

    add("token_embd.weight", (VOCAB, HIDDEN), "F16")
    for i in range(LAYERS):
        p = f"blk.{i}"
        add(f"{p}.attn_norm.weight", (HIDDEN,), "F32")
        add(f"{p}.attn_q.weight", (HEADS * 16, HIDDEN), "Q8_0")
        add(f"{p}.attn_k.weight", (KV_HEADS * 16, HIDDEN), "Q8_0")
        add(f"{p}.attn_v.weight", (KV_HEADS * 16, HIDDEN), "F16")
        add(f"{p}.attn_output.weight", (HIDDEN, HEADS * 16), "Q8_0")
        add(f"{p}.ffn_norm.weight", (HIDDEN,), "F32")
        add(f"{p}.ffn_gate.weight", (FF, HIDDEN), "Q8_0")
        add(f"{p}.ffn_up.weight", (FF, HIDDEN), "Q8_0")
        add(f"{p}.ffn_down.weight", (HIDDEN, FF), "Q8_0")
    add("output_norm.weight", (HIDDEN,), "F32")
    if not tie:
        add("output.weight", (VOCAB, HIDDEN), "Q8_0")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, dict[str, tuple]]:
    path = tmp_path / "tiny.gguf"
    return path, write_tiny_llama(path)


def _expected_nbytes(shape: tuple[int, ...], kind: str) -> int:
    n = int(np.prod(shape))
    return {"F32": 4 * n, "F16": 2 * n, "Q8_0": n // 32 * 34}[kind]


def test_tiny_file_metadata_shapes_and_exact_bytes(tiny):
    path, written = tiny
    data = path.read_bytes()
    h = parse_header(data)
    assert h.version == 3
    assert h.alignment == 32
    m = h.metadata
    assert m["general.architecture"] == "llama"
    assert m["general.name"] == "tiny-llama"
    assert m["llama.block_count"] == LAYERS
    assert m["llama.attention.head_count_kv"] == KV_HEADS
    assert m["llama.rope.freq_base"] == 500000.0
    assert m["llama.attention.layer_norm_rms_epsilon"] == 1e-5  # float32 shown as its shortest decimal
    assert m["tokenizer.ggml.tokens"][:3] == ["tok0", "tok1", "tok2"]
    assert m["tokenizer.ggml.scores"][:2] == [0.0, -1.0]
    assert m["tiny.flag"] is True
    assert m["tiny.layers"] == [1, 2, 3]

    assert [t.name for t in h.tensors] == list(written)
    for t in h.tensors:
        shape, kind = written[t.name]
        assert t.shape == tuple(reversed(shape))  # GGUF stores ne0 (the row) first
        assert t.ggml_type == kind
        assert t.nbytes == _expected_nbytes(shape, kind)
        assert t.offset % h.alignment == 0

    # the file is the header, then every tensor padded to the alignment
    padded = sum(t.nbytes + (-t.nbytes % h.alignment) for t in h.tensors)
    assert len(data) == h.header_bytes + padded
    assert h.file_bytes <= len(data) < h.file_bytes + h.alignment
    assert h.total_bytes == sum(_expected_nbytes(*v) for v in written.values())
    by_type = h.bytes_by_type()
    assert set(by_type) == {"F32", "F16", "Q8_0"}
    assert sum(by_type.values()) == h.total_bytes
    assert list(by_type.values()) == sorted(by_type.values(), reverse=True)


def test_agrees_with_llama_cpp_reader(tiny):
    """gguf-py's GGUFReader (llama.cpp's Python reader) sees the same data offset, shapes, types and bytes."""
    path, _ = tiny
    ours = parse_file(path)
    ref = gguf.GGUFReader(path)
    assert ours.header_bytes == ref.data_offset
    assert len(ours.tensors) == len(ref.tensors)
    for mine, theirs in zip(ours.tensors, ref.tensors, strict=True):
        assert mine.name == theirs.name
        assert mine.shape == tuple(int(d) for d in theirs.shape)
        assert mine.ggml_type == theirs.tensor_type.name
        assert mine.nbytes == int(theirs.n_bytes)
        assert ours.header_bytes + mine.offset == int(theirs.data_offset)


def test_custom_alignment(tmp_path):
    path = tmp_path / "aligned.gguf"
    write_tiny_llama(path, alignment=256)
    h = parse_file(path)
    assert h.alignment == 256
    assert h.header_bytes % 256 == 0
    assert all(t.offset % 256 == 0 for t in h.tensors)
    assert h.header_bytes == gguf.GGUFReader(path).data_offset


def test_tiny_config_loads_into_kvplan(tiny):
    path, _ = tiny
    h = parse_file(path)
    config = config_from_gguf(h)
    assert config["model_type"] == "llama"
    assert config["tie_word_embeddings"] is False
    assert config["vocab_size"] == VOCAB
    assert config["torch_dtype"] == "bfloat16"
    spec = from_config(config)
    assert spec.num_layers == LAYERS
    assert spec.num_attention_heads == HEADS
    assert spec.num_kv_heads == KV_HEADS
    assert spec.max_context == 256
    assert spec.params == h.n_elements  # every stored element is a parameter kvplan counts
    assert {layer.kv.head_dim for layer in spec.layers} == {HIDDEN // HEADS}


def test_tied_embedding_from_missing_output_tensor(tmp_path):
    path = tmp_path / "tied.gguf"
    write_tiny_llama(path, tie=True)
    h = parse_file(path)
    config = config_from_gguf(h)
    assert config["tie_word_embeddings"] is True
    assert from_config(config).params == h.n_elements


# ------------------------------------------------------------------------------------ truncation, garbage


def test_truncated_buffer_asks_for_more(tiny):
    path, _ = tiny
    data = path.read_bytes()
    full = parse_header(data)
    end = full.header_bytes  # tensor infos end within the alignment padding before this
    for cut in [0, 1, 3, 4, 7, 8, 23, 24, 40, 100, 500, end // 2, end - 40]:
        with pytest.raises(NeedMoreBytes) as e:
            parse_header(data[:cut])
        assert cut < e.value.needed <= end


def test_range_reading_loop_converges(tiny):
    """What an HTTP range-reading caller does: fetch what NeedMoreBytes asks for until the header parses."""
    path, _ = tiny
    data = path.read_bytes()
    have, rounds = 16, 0
    while True:
        rounds += 1
        try:
            h = parse_header(data[:have])
            break
        except NeedMoreBytes as e:
            assert e.needed > have
            have = e.needed
    assert h == parse_header(data)
    assert have < h.header_bytes + h.alignment
    assert rounds > 3


def test_header_only_prefix_is_enough(tiny):
    path, _ = tiny
    data = path.read_bytes()
    h = parse_header(data)
    assert parse_header(data[: h.header_bytes]) == h  # no tensor data needed


@pytest.mark.parametrize("data", [b"", b"G", b"GGU"])
def test_too_short_for_magic_needs_more(data):
    with pytest.raises(NeedMoreBytes) as e:
        parse_header(data)
    assert e.value.needed == 4


@pytest.mark.parametrize("data", [b"PK\x03\x04" + bytes(60), b"{\"architectures\": []}", bytes(64), b"x",
                                  b"\x89PNG\r\n\x1a\n" + bytes(100)])
def test_garbage_is_input_error(data):
    with pytest.raises(InputError, match="not a GGUF file: magic"):
        parse_header(data)


def _header(version: int = 3, n_tensors: int = 0, n_kv: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def _str(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(raw)) + raw


def _kv_u32(key: str, value: int) -> bytes:
    return _str(key) + struct.pack("<II", 4, value)


def _tensor_info(name: str, dims: list[int], type_id: int, offset: int) -> bytes:
    return _str(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}q", *dims) + struct.pack(
        "<iQ", type_id, offset)


@pytest.mark.parametrize(("data", "match"), [
    (b"GGUF" + struct.pack(">I", 3) + bytes(16), "big-endian"),
    (_header(version=1), "version 1"),
    (_header(version=4), "unsupported GGUF version 4"),
    (_header(version=0), "unsupported GGUF version 0"),
    (_header(n_tensors=1 << 40), "tensors"),
    (_header(n_kv=1 << 40), "metadata keys"),
    (_header(n_kv=1) + struct.pack("<Q", 1 << 40), "a metadata key is"),
    (_header(n_kv=1) + _str("") + struct.pack("<I", 4) + bytes(4), "empty metadata key"),
    (_header(n_kv=2) + _kv_u32("a", 1) + _kv_u32("a", 2), "duplicate metadata key 'a'"),
    (_header(n_kv=1) + _str("k") + struct.pack("<I", 99), "unknown value type 99"),
    (_header(n_kv=1) + _str("k") + struct.pack("<I", 8) + struct.pack("<Q", 1 << 60), "value of 'k' is"),
    (_header(n_kv=1) + _str("k") + struct.pack("<IIQ", 9, 4, 1 << 40), "claims"),
    (_header(n_kv=1) + _str("k") + struct.pack("<IIQ", 9, 9, 1), "nested arrays"),
    (_header(n_kv=1) + _str("general.alignment") + struct.pack("<IQ", 10, 32), "must be a uint32"),
    (_header(n_kv=1) + _kv_u32("general.alignment", 48), "not a power of two"),
    (_header(n_kv=1) + _kv_u32("general.alignment", 0), "not a power of two"),
    (_header(n_tensors=1) + _tensor_info("t", [1, 1, 1, 1, 1], 0, 0), "5 dimensions"),
    (_header(n_tensors=1) + _tensor_info("t", [-4, 2], 0, 0), "negative dimension"),
    (_header(n_tensors=1) + _tensor_info("t", [1 << 32, 1 << 32], 0, 0), "2\\^63"),
    (_header(n_tensors=1) + _tensor_info("t", [48, 2], 8, 0), "not whole Q8_0 blocks of 32"),
    (_header(n_tensors=1) + _tensor_info("t", [4], 0, 64), "starts at data offset 64, expected 0"),
    (_header(n_tensors=2) + _tensor_info("t", [4], 0, 0) + _tensor_info("t", [4], 0, 32), "duplicate tensor"),
    (_header(n_tensors=2) + _tensor_info("a", [4], 0, 0) + _tensor_info("b", [4], 0, 16), "expected 32"),
])
def test_corrupt_headers_are_input_errors(data, match):
    with pytest.raises(InputError, match=match):
        parse_header(data)


@pytest.mark.parametrize("type_id", [4, 5, 31, 36, 42, 99, 1 << 20, -1])
def test_unknown_ggml_type_names_the_id(type_id):
    data = _header(n_tensors=1) + _tensor_info("blk.0.attn_q.weight", [32, 2], type_id, 0)
    with pytest.raises(UnsupportedModelError, match=f"ggml type id {type_id},"):
        parse_header(data)


def test_every_type_sizes_a_tensor_exactly():
    for type_id, t in GGML_TYPES.items():
        row = t.block_size * 3
        h = parse_header(_header(n_tensors=1) + _tensor_info("w", [row, 5, 2], type_id, 0))
        assert h.tensors[0].ggml_type == t.name
        assert h.tensors[0].nbytes == 3 * 5 * 2 * t.type_size


def test_long_arrays_are_summarised(tmp_path):
    path = tmp_path / "vocab.gguf"
    w = gguf.GGUFWriter(path, "llama")
    n = MAX_KEPT_ITEMS + 1
    w.add_token_list([f"t{i}" for i in range(n)])
    w.add_token_types([1] * n)
    w.add_array("short.strings", ["a", "b"])
    w.add_tensor("token_embd.weight", np.zeros((n, 32), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    h = parse_file(path)
    assert h.metadata["tokenizer.ggml.tokens"] == GGUFArray("string", n)
    assert h.metadata["tokenizer.ggml.token_type"] == GGUFArray("int32", n)
    assert len(h.metadata["tokenizer.ggml.tokens"]) == n
    assert h.metadata["short.strings"] == ["a", "b"]


def test_mutated_headers_never_escape_the_error_types(tiny):
    """Random byte damage gives a header, NeedMoreBytes, InputError or UnsupportedModelError: nothing else."""
    path, _ = tiny
    data = path.read_bytes()
    end = parse_header(data).header_bytes
    rng = random.Random(1234)
    for _ in range(400):
        damaged = bytearray(data[:end])
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(4, end)
            damaged[pos] = rng.randrange(256) if rng.random() < 0.5 else damaged[pos] ^ (1 << rng.randrange(8))
        with contextlib.suppress(NeedMoreBytes, InputError, UnsupportedModelError):
            parse_header(bytes(damaged))


def test_parse_file_reads_progressively(tmp_path, tiny):
    path, _ = tiny
    assert parse_file(path, first=8) == parse_header(path.read_bytes())
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="ends inside its GGUF header"):
        parse_file(cut)
    with pytest.raises(InputError, match="cannot read"):
        parse_file(tmp_path / "missing.gguf")


# -------------------------------------------------------------------- config mapping: catalog round trips

ARCH = {
    "llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "qwen2", "qwen2_moe": "qwen2moe",
    "qwen3": "qwen3", "qwen3_moe": "qwen3moe", "gemma": "gemma", "gemma2": "gemma2", "gemma3_text": "gemma3",
    "phi3": "phi3", "falcon": "falcon", "RefinedWeb": "falcon", "RefinedWebModel": "falcon",
    "starcoder2": "starcoder2", "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2", "gpt_oss": "gpt-oss",
    "granite": "granite", "olmo2": "olmo2",
}
_ARCH_ENUM = {name: arch for arch, name in MODEL_ARCH_NAMES.items()}


def _hf_config(alias: str) -> dict:
    return json.loads(Path(catalog.lookup(alias).path()).read_text(encoding="utf-8"))


def _converter_metadata(arch: str, c: dict, spec) -> dict:
    """The keys llama.cpp's convert_hf_to_gguf.py writes for this config (TextModel plus the family class)."""
    def first(*keys, default=None):
        return next((c[k] for k in keys if c.get(k) is not None), default)

    m: dict = {}
    a = arch
    n_layers = first("num_hidden_layers", "n_layer")
    heads = first("num_attention_heads", "n_head")
    m[f"{a}.block_count"] = n_layers
    m[f"{a}.embedding_length"] = c["hidden_size"]
    m[f"{a}.attention.head_count"] = heads
    m[f"{a}.context_length"] = first("max_position_embeddings", default=2048)
    if (ff := first("intermediate_size", "ffn_hidden_size")) is not None:
        m[f"{a}.feed_forward_length"] = ff
    if (kv := first("num_key_value_heads", "num_kv_heads", "n_head_kv")) is not None:
        m[f"{a}.attention.head_count_kv"] = kv
    if arch == "falcon":
        m[f"{a}.context_length"] = 2048  # hard-coded by FalconModel
        m[f"{a}.feed_forward_length"] = 4 * c["hidden_size"]
        m.setdefault(f"{a}.attention.head_count_kv", 1 if c.get("multi_query", True) else heads)
    if c.get("head_dim") is not None and arch not in ("deepseek2",):
        m[f"{a}.attention.key_length"] = m[f"{a}.attention.value_length"] = c["head_dim"]
    if (theta := c.get("rope_theta")) is not None:
        m[f"{a}.rope.freq_base"] = float(theta)
    if (eps := c.get("rms_norm_eps")) is not None:
        m[f"{a}.attention.layer_norm_rms_epsilon"] = float(eps)
    if (eps := first("layer_norm_epsilon", "norm_epsilon")) is not None and arch in ("falcon", "starcoder2"):
        m[f"{a}.attention.layer_norm_epsilon"] = float(eps)
    if (n_exp := first("num_local_experts", "num_experts", "n_routed_experts")) is not None:
        m[f"{a}.expert_count"] = n_exp
        m[f"{a}.expert_used_count"] = c["num_experts_per_tok"]
    head_dim = c.get("head_dim") or c["hidden_size"] // heads
    if arch != "falcon":
        m[f"{a}.rope.dimension_count"] = int(head_dim * c.get("partial_rotary_factor", 1.0))
    scaling = c.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        m[f"{a}.rope.scaling.type"] = "linear"
        m[f"{a}.rope.scaling.factor"] = float(scaling["factor"])
    elif kind == "yarn":
        m[f"{a}.rope.scaling.type"] = "yarn"
        m[f"{a}.rope.scaling.factor"] = float(scaling["factor"])
        m[f"{a}.rope.scaling.original_context_length"] = scaling["original_max_position_embeddings"]
    elif kind in ("longrope", "su"):
        m[f"{a}.rope.scaling.original_context_length"] = c["original_max_position_embeddings"]
    if arch in ("qwen2moe", "qwen3moe"):
        m[f"{a}.expert_feed_forward_length"] = c["moe_intermediate_size"]
        if c.get("shared_expert_intermediate_size"):
            m[f"{a}.expert_shared_feed_forward_length"] = c["shared_expert_intermediate_size"]
    if arch in ("gemma2", "gemma3", "phi3", "gpt-oss") and c.get("sliding_window"):
        m[f"{a}.attention.sliding_window"] = c["sliding_window"]
    if arch == "gemma2":
        m[f"{a}.attn_logit_softcapping"] = float(c["attn_logit_softcapping"])
        m[f"{a}.final_logit_softcapping"] = float(c["final_logit_softcapping"])
    if arch == "gpt-oss":
        m[f"{a}.expert_feed_forward_length"] = c["intermediate_size"]
    if arch == "deepseek2":
        rope = c["qk_rope_head_dim"]
        m[f"{a}.rope.dimension_count"] = rope
        m[f"{a}.leading_dense_block_count"] = c["first_k_dense_replace"]
        m[f"{a}.expert_feed_forward_length"] = c["moe_intermediate_size"]
        m[f"{a}.expert_shared_count"] = c["n_shared_experts"]
        if c.get("q_lora_rank"):
            m[f"{a}.attention.q_lora_rank"] = c["q_lora_rank"]
        m[f"{a}.attention.kv_lora_rank"] = c["kv_lora_rank"]
        # current llama.cpp: absorbed MLA sizes in key/value_length, per-head sizes in *_mla, one KV head
        m[f"{a}.attention.key_length"] = c["kv_lora_rank"] + rope
        m[f"{a}.attention.value_length"] = c["kv_lora_rank"]
        m[f"{a}.attention.key_length_mla"] = c["qk_nope_head_dim"] + rope
        m[f"{a}.attention.value_length_mla"] = c["v_head_dim"]
        m[f"{a}.attention.head_count_kv"] = 1
    if arch == "granite":
        m[f"{a}.attention.scale"] = float(c["attention_multiplier"])
        m[f"{a}.embedding_scale"] = float(c["embedding_multiplier"])
        m[f"{a}.residual_scale"] = float(c["residual_multiplier"])
        m[f"{a}.logit_scale"] = float(c["logits_scaling"])
    return m


def _gguf_tensors(arch: str, spec, c: dict) -> list[tuple[str, tuple[int, ...]]]:
    """The kvplan inventory under llama.cpp's tensor names (gguf-py's TensorNameMap), numpy (rows, cols) order."""
    names = gguf.get_tensor_name_map(_ARCH_ENUM[arch], spec.num_layers)
    out: list[tuple[str, tuple[int, ...]]] = []
    for t in spec.tensors:
        if t.role in ("vision", "projector", "audio"):
            continue
        name = t.name.removeprefix("language_model.")
        if ".experts." in name:  # fused (E, 2I, H) / (E, H, I) -> llama.cpp's *_exps, split gate and up
            block = name.split(".experts.")[0].replace("model.layers.", "blk.").replace(".mlp", "")
            kind = name.rsplit(".", 1)[1]
            e, rows = t.shape[0], t.shape[1]
            if kind.startswith("gate_up_proj"):
                half = (e, rows // 2, *t.shape[2:])
                suffix = ".bias" if kind.endswith("_bias") else ".weight"
                out += [(f"{block}.ffn_gate_exps{suffix}", half), (f"{block}.ffn_up_exps{suffix}", half)]
            else:
                suffix = ".bias" if kind.endswith("_bias") else ".weight"
                out.append((f"{block}.ffn_down_exps{suffix}", t.shape))
            continue
        base, _, suffix = name.rpartition(".")
        if suffix not in ("weight", "bias"):
            base, suffix = name, "weight"
        mapped = "output" if base == "lm_head" else names.get_name(base)
        assert mapped, f"no GGUF name for {name}"
        out.append((f"{mapped}.{suffix}", t.shape))
    if arch == "deepseek2" and c["model_type"] == "deepseek_v3":
        out += [(f"blk.{i}.exp_probs_b.bias", (c["n_routed_experts"],))
                for i in range(c["first_k_dense_replace"], spec.num_layers)]
    scaling = c.get("rope_scaling") or {}
    head_dim = c.get("head_dim") or c["hidden_size"] // c.get("num_attention_heads", 1)
    if scaling.get("rope_type") == "llama3":
        out.append(("rope_freqs.weight", (head_dim // 2,)))
    if scaling.get("type") in ("longrope", "su"):
        rope_dim = int(head_dim * c.get("partial_rotary_factor", 1.0))
        out += [("rope_factors_long.weight", (rope_dim // 2,)), ("rope_factors_short.weight", (rope_dim // 2,))]
    return out


def _add_kv(w: gguf.GGUFWriter, key: str, value) -> None:
    if isinstance(value, bool):
        w.add_bool(key, value)
    elif isinstance(value, int):
        w.add_uint32(key, value)
    elif isinstance(value, float):
        w.add_float32(key, value)
    elif isinstance(value, str):
        w.add_string(key, value)
    else:
        w.add_array(key, value)


def write_header_only(path: Path, arch: str, metadata: dict, tensors: list[tuple[str, tuple[int, ...]]],
                      qtype: GGMLQuantizationType = GGMLQuantizationType.Q4_K) -> None:
    """A GGUF header as llama.cpp writes it, without the data (all a range-reading caller fetches)."""
    w = gguf.GGUFWriter(path, arch)
    for key, value in metadata.items():
        _add_kv(w, key, value)
    for name, shape in tensors:
        kind = qtype if len(shape) >= 2 and shape[-1] % GGML_QUANT_SIZES[qtype][0] == 0 else GGMLQuantizationType.F32
        block, size = GGML_QUANT_SIZES[kind]
        w.add_tensor_info(name, shape, np.dtype(np.float32), int(np.prod(shape)) // block * size, raw_dtype=kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()


ROUND_TRIP = [
    "llama-2-7b", "llama-3.1-8b-instruct", "llama-3.2-1b-instruct", "tinyllama-1.1b-chat-v1.0",
    "mistral-7b-instruct-v0.3", "mixtral-8x7b-v0.1", "codellama-7b", "smollm2-135m-instruct",
    "qwen2.5-0.5b-instruct", "qwen2.5-7b-instruct", "qwen3-0.6b", "qwen3-32b", "qwen3-30b-a3b",
    "qwen1.5-moe-a2.7b-chat", "qwen2-57b-a14b",
    "gemma-2b", "gemma-2-2b-it", "gemma-2-27b", "gemma-3-1b-it",
    "phi-3-mini-4k-instruct", "phi-3-mini-128k-instruct", "phi-3.5-mini-instruct", "phi-3-medium-4k-instruct",
    "phi-4", "falcon-7b", "falcon-40b", "deepseek-v2-lite", "deepseek-v3", "gpt-oss-20b", "gpt-oss-120b",
    "granite-3.1-8b-instruct", "olmo-2-1124-7b",
]


def _round_trip(alias: str, tmp_path: Path):
    ref = load_model(alias)
    c = _hf_config(alias)
    arch = ARCH[c["model_type"]]
    path = tmp_path / f"{alias}.gguf"
    write_header_only(path, arch, _converter_metadata(arch, c, ref), _gguf_tensors(arch, ref, c))
    header = parse_file(path)
    config = config_from_gguf(header)
    json.dumps(config)  # a plain config.json dict
    return ref, header, config, from_config(config, name=alias)


@pytest.mark.parametrize("alias", ROUND_TRIP)
def test_catalog_model_round_trips_through_gguf(alias, tmp_path):
    ref, header, config, spec = _round_trip(alias, tmp_path)
    extras = {"rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"}
    stored = sum(t.n_elements for t in header.tensors if t.name not in extras and "exp_probs_b" not in t.name)
    assert stored == ref.language_params  # the GGUF holds exactly the language model's parameters
    assert spec.params == ref.language_params
    assert spec.params_by_role() == {k: v for k, v in ref.params_by_role().items() if v}
    assert spec.layers == ref.layers  # the same KV cache, layer by layer (windows, MLA latents, head sizes)
    assert spec.num_kv_heads == ref.num_kv_heads
    assert spec.num_attention_heads == ref.num_attention_heads
    assert spec.max_context == ref.max_context
    assert spec.moe == ref.moe
    assert spec.tie_word_embeddings == ref.tie_word_embeddings
    assert spec.rope == ref.rope
    assert config["torch_dtype"] == "bfloat16"


@pytest.mark.parametrize(("alias", "model_type"), [("mistral-7b-v0.1", "llama"), ("starcoder2-7b", "starcoder2")])
def test_windows_llama_cpp_drops_become_full_attention(alias, model_type, tmp_path):
    """Mistral-7B-v0.1 (llama arch) and StarCoder2 lose sliding_window in conversion; llama.cpp attends to the
    whole context, and so does the config: same weights, full-attention KV."""
    ref, _, config, spec = _round_trip(alias, tmp_path)
    assert config["model_type"] == model_type
    assert "sliding_window" not in config
    assert spec.params == ref.params
    assert all(layer.kv.window for layer in ref.layers)
    assert not any(layer.kv.window for layer in spec.layers)
    assert [layer.kv.num_kv_heads for layer in spec.layers] == [layer.kv.num_kv_heads for layer in ref.layers]


def test_model_types_and_keys(tmp_path):
    seen = {}
    for alias in ["mixtral-8x7b-v0.1", "qwen1.5-moe-a2.7b-chat", "gemma-3-1b-it", "deepseek-v2-lite", "deepseek-v3",
                  "gpt-oss-20b", "falcon-7b", "falcon-40b", "phi-3-mini-128k-instruct"]:
        seen[alias] = _round_trip(alias, tmp_path)[2]
    assert seen["mixtral-8x7b-v0.1"]["model_type"] == "mixtral"
    assert seen["mixtral-8x7b-v0.1"]["num_local_experts"] == 8
    assert seen["qwen1.5-moe-a2.7b-chat"]["shared_expert_intermediate_size"] == 5632
    assert seen["gemma-3-1b-it"]["model_type"] == "gemma3_text"
    assert seen["gemma-3-1b-it"]["sliding_window_pattern"] == 6
    assert seen["deepseek-v2-lite"]["model_type"] == "deepseek_v2"
    assert seen["deepseek-v2-lite"]["q_lora_rank"] is None
    assert seen["deepseek-v3"]["model_type"] == "deepseek_v3"
    assert (seen["deepseek-v3"]["qk_nope_head_dim"], seen["deepseek-v3"]["v_head_dim"]) == (128, 128)
    assert seen["gpt-oss-20b"]["rope_scaling"] == {"rope_type": "yarn", "factor": 32.0,
                                                   "original_max_position_embeddings": 4096}
    assert (seen["falcon-7b"]["multi_query"], seen["falcon-7b"]["new_decoder_architecture"]) == (True, False)
    assert (seen["falcon-40b"]["num_kv_heads"], seen["falcon-40b"]["num_ln_in_parallel_attn"]) == (8, 2)
    assert seen["phi-3-mini-128k-instruct"]["rope_scaling"]["rope_type"] == "longrope"


def test_deepseek_pre_split_mla_keys(tmp_path):
    """GGUFs written before llama.cpp split kv_b keep the per-head sizes in key_length / value_length."""
    ref = load_model("deepseek-v2-lite")
    c = _hf_config("deepseek-v2-lite")
    meta = _converter_metadata("deepseek2", c, ref)
    for key in ("key_length_mla", "value_length_mla"):
        del meta[f"deepseek2.attention.{key}"]
    meta["deepseek2.attention.key_length"] = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    meta["deepseek2.attention.value_length"] = c["v_head_dim"]
    meta["deepseek2.attention.head_count_kv"] = c["num_attention_heads"]
    path = tmp_path / "old.gguf"
    write_header_only(path, "deepseek2", meta, _gguf_tensors("deepseek2", ref, c))
    spec = from_config(config_from_gguf(parse_file(path)))
    assert spec.params == ref.params
    assert spec.layers == ref.layers


def _tiny_header(tmp_path: Path, arch: str, extra: dict, tensors: list[tuple[str, tuple[int, ...]]] | None = None):
    meta = {f"{arch}.block_count": 2, f"{arch}.embedding_length": 64, f"{arch}.attention.head_count": 4,
            f"{arch}.feed_forward_length": 128, f"{arch}.context_length": 512, **extra}
    tensors = tensors or [("token_embd.weight", (100, 64)), ("blk.0.attn_q.weight", (64, 64)),
                          ("blk.0.attn_k.weight", (64, 64))]
    path = tmp_path / f"{arch}-{len(extra)}.gguf"
    write_header_only(path, arch, meta, tensors, qtype=GGMLQuantizationType.F16)
    return parse_file(path)


def test_llama_with_sliding_window_is_mistral(tmp_path):
    config = config_from_gguf(_tiny_header(tmp_path, "llama", {"llama.attention.sliding_window": 4096}))
    assert config["model_type"] == "mistral"
    assert config["sliding_window"] == 4096
    spec = from_config(config)
    assert {layer.kv.window for layer in spec.layers} == {4096}


def test_vocab_from_tokens_without_embedding_tensor(tmp_path):
    h = _tiny_header(tmp_path, "llama", {"tokenizer.ggml.tokens": [f"t{i}" for i in range(77)]},
                     tensors=[("blk.0.attn_q.weight", (64, 64))])
    assert config_from_gguf(h)["vocab_size"] == 77


def test_uniform_per_layer_arrays_are_accepted_and_varying_refused(tmp_path):
    h = _tiny_header(tmp_path, "llama", {"llama.attention.head_count_kv": [4, 4]})
    assert config_from_gguf(h)["num_key_value_heads"] == 4
    h = _tiny_header(tmp_path, "qwen2", {"qwen2.attention.head_count_kv": [4, 2, 0]},
                     tensors=[("token_embd.weight", (100, 64)), ("blk.0.attn_q.bias", (64,))])
    with pytest.raises(UnsupportedModelError, match="varies per layer"):
        config_from_gguf(h)


def test_metadata_and_tensor_shapes_must_agree(tmp_path):
    h = _tiny_header(tmp_path, "llama", {"llama.attention.head_count_kv": 2})  # attn_k has 4 heads of 16
    with pytest.raises(InputError, match="disagree"):
        config_from_gguf(h)


@pytest.mark.parametrize("arch", ["mamba", "bert", "t5", "qwen3next", "llama4", "mistral3", "command-r"])
def test_unmapped_architectures_are_refused_by_name(arch, tmp_path):
    h = _tiny_header(tmp_path, arch, {})
    with pytest.raises(UnsupportedModelError, match=f"GGUF architecture '{arch}' is not supported") as e:
        config_from_gguf(h)
    assert all(name in str(e.value) for name in SUPPORTED_ARCHITECTURES)


def test_missing_required_key_is_named(tmp_path):
    path = tmp_path / "nolayers.gguf"
    write_header_only(path, "qwen3", {"qwen3.embedding_length": 64, "qwen3.attention.head_count": 4},
                      [("token_embd.weight", (100, 64))])
    with pytest.raises(InputError, match=r"'qwen3\.block_count'"):
        config_from_gguf(parse_file(path))


def test_olmo3_sliding_window_is_refused(tmp_path):
    h = _tiny_header(tmp_path, "olmo2", {"olmo2.attention.sliding_window": 4096})
    with pytest.raises(UnsupportedModelError, match="OLMo 3"):
        config_from_gguf(h)


def test_no_architecture_or_no_tensors(tmp_path):
    with pytest.raises(InputError, match=r"no general\.architecture"):
        config_from_gguf(parse_header(_header()))
    path = tmp_path / "vocab-only.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_token_list(["a", "b"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    with pytest.raises(InputError, match="no tensors"):
        config_from_gguf(parse_file(path))


def test_qwen_moe_dense_layers_become_mlp_only_layers(tmp_path):
    """A layer with a dense FFN and no router (ffn_gate_inp) is one of transformers' mlp_only_layers."""
    hidden, heads, head_dim, experts, moe_ff, ff, vocab = 64, 4, 32, 8, 32, 96, 100
    tensors = [("token_embd.weight", (vocab, hidden)), ("output_norm.weight", (hidden,)),
               ("output.weight", (vocab, hidden))]
    for i in range(3):
        p = f"blk.{i}"
        tensors += [(f"{p}.attn_norm.weight", (hidden,)), (f"{p}.ffn_norm.weight", (hidden,)),
                    (f"{p}.attn_q.weight", (heads * head_dim, hidden)), (f"{p}.attn_k.weight", (head_dim, hidden)),
                    (f"{p}.attn_v.weight", (head_dim, hidden)), (f"{p}.attn_output.weight", (hidden, heads * head_dim)),
                    (f"{p}.attn_q_norm.weight", (head_dim,)), (f"{p}.attn_k_norm.weight", (head_dim,))]
        if i == 1:
            tensors += [(f"{p}.ffn_gate.weight", (ff, hidden)), (f"{p}.ffn_up.weight", (ff, hidden)),
                        (f"{p}.ffn_down.weight", (hidden, ff))]
        else:
            tensors += [(f"{p}.ffn_gate_inp.weight", (experts, hidden)),
                        (f"{p}.ffn_gate_exps.weight", (experts, moe_ff, hidden)),
                        (f"{p}.ffn_up_exps.weight", (experts, moe_ff, hidden)),
                        (f"{p}.ffn_down_exps.weight", (experts, hidden, moe_ff))]
    meta = {"qwen3moe.block_count": 3, "qwen3moe.embedding_length": hidden, "qwen3moe.attention.head_count": heads,
            "qwen3moe.attention.head_count_kv": 1, "qwen3moe.attention.key_length": head_dim,
            "qwen3moe.attention.value_length": head_dim, "qwen3moe.feed_forward_length": ff,
            "qwen3moe.expert_count": experts, "qwen3moe.expert_used_count": 2, "qwen3moe.context_length": 4096}
    path = tmp_path / "moe.gguf"
    write_header_only(path, "qwen3moe", meta, tensors, qtype=GGMLQuantizationType.F16)
    header = parse_file(path)
    config = config_from_gguf(header)
    assert config["mlp_only_layers"] == [1]
    assert config["moe_intermediate_size"] == moe_ff  # from the expert tensors: the key is absent
    spec = from_config(config)
    assert spec.params == header.n_elements
    assert [layer.block for layer in spec.layers] == ["attention+moe", "attention+mlp", "attention+moe"]


def test_split_gguf_needs_every_shard(tmp_path):
    """gguf-split / GGUFWriter(split_max_tensors=...) shards: one alone is refused, merged they are the model."""
    w = gguf.GGUFWriter(tmp_path / "split.gguf", "llama", split_max_tensors=5)
    for key, value in {"llama.block_count": 2, "llama.embedding_length": 64, "llama.attention.head_count": 4,
                       "llama.feed_forward_length": 128, "llama.context_length": 256}.items():
        _add_kv(w, key, value)
    tensors = [("token_embd.weight", (96, 64))]
    for i in range(2):
        tensors += [(f"blk.{i}.{n}.weight", s) for n, s in (
            ("attn_norm", (64,)), ("attn_q", (64, 64)), ("attn_k", (64, 64)), ("attn_v", (64, 64)),
            ("attn_output", (64, 64)), ("ffn_norm", (64,)), ("ffn_gate", (128, 64)), ("ffn_up", (128, 64)),
            ("ffn_down", (64, 128)))]
    tensors += [("output_norm.weight", (64,)), ("output.weight", (96, 64))]
    for name, shape in tensors:
        w.add_tensor(name, np.zeros(shape, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    shards = [parse_file(p) for p in sorted(tmp_path.glob("split-*.gguf"))]
    assert len(shards) == 5
    with pytest.raises(InputError, match="shard 1 of 5 of a split GGUF"):
        config_from_gguf(shards[0])
    merged = merge_shards(list(reversed(shards)))
    assert len(merged.tensors) == len(tensors)
    assert merged.total_bytes == sum(s.total_bytes for s in shards) == 2 * merged.n_elements
    config = config_from_gguf(merged)
    assert config["tie_word_embeddings"] is False  # output.weight is in the last shard
    assert from_config(config).params == merged.n_elements
    with pytest.raises(InputError, match="needs shards 1 to 5"):
        merge_shards(shards[:3])
