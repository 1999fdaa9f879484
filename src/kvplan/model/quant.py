"""Weight formats: bytes a tensor takes on the GPU, dense or quantized (with its scales, zeros and indices).

A format quantizes linear weights (or only MoE experts, for mxfp4) and leaves the rest in the 16-bit
activation dtype: embeddings, lm_head, norms, MoE routers, vision towers, and whatever the checkpoint's
`ignore` / `modules_to_not_convert` / `exclude_modules` list names. Layouts follow the stored tensors:

- fp8: 1 byte per weight + fp32 scales per tensor, per output channel or per 128x128 block
  (`weight_scale` / `weight_scale_inv`), + a per-tensor fp32 input scale when activations are static.
- GPTQ: qweight int32 packing 32/bits weights, qzeros packed like qweight, fp16 scales per group and output
  channel, g_idx int32 per input channel with act-order.
- AWQ: same packing, zeros always stored, no g_idx.
- compressed-tensors pack-quantized (w4a16): packed int32 + bf16 group scales (+ packed zero points when
  asymmetric) + an int64[2] weight_shape.
- bitsandbytes: nf4/fp4 packs two weights per byte with an fp32 absmax per 64 weights (uint8 absmax + fp32
  per 256 blocks with double quantization); int8 stores an fp32 scale per output row.
- mxfp4 (gpt-oss experts): two weights per byte + one e8m0 scale byte per 32 weights.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from typing import Any

from kvplan.errors import ConfigError, InputError, UnsupportedModelError
from kvplan.model.spec import Tensor

DTYPE_BYTES: dict[str, float] = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2,
    "float16": 2, "fp16": 2, "half": 2,
    "fp8": 1, "float8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "int8": 1,
    "int4": 0.5,
}
CANONICAL_DTYPE = {
    "float32": "fp32", "fp32": "fp32", "float": "fp32",
    "bfloat16": "bf16", "bf16": "bf16",
    "float16": "fp16", "fp16": "fp16", "half": "fp16",
    "fp8": "fp8", "float8": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "fp8_e4m3fn": "fp8", "fp8_inc": "fp8",
    "int8": "int8", "int4": "int4",
}
# Modules kept in the activation dtype whatever the format says (kvplan roles).
ALWAYS_DENSE = frozenset({"embedding", "lm_head", "norm", "router", "vision", "audio", "projector"})


def dtype_name(name: str) -> str:
    key = str(name).lower().replace("torch.", "")
    if key not in CANONICAL_DTYPE:
        raise InputError(f"unknown dtype {name!r}: use one of fp32, bf16, fp16, fp8, int8, int4")
    return CANONICAL_DTYPE[key]


@dataclass(frozen=True)
class WeightFormat:
    """How weights are stored. `bits` applies to quantized tensors; everything else uses `dense_bytes`.

    `granularity`: "tensor", "channel" (per output row), ("group", g) along the input dim,
    ("block", bn, bk), or ("flat", n) blocks of n consecutive weights (bitsandbytes).
    """

    name: str
    bits: float
    granularity: Any = None
    scale_bytes: float = 0
    zeros: bool = False
    g_idx: bool = False
    extra_bytes: int = 0  # per quantized matrix: static input scale, weight_shape, ...
    second_level: tuple[int, float] | None = None  # bnb double quant: (blocks per fp32 scale, bytes)
    experts_only: bool = False
    quantize_lm_head: bool = False
    ignore: tuple[str, ...] = field(default=())

    @property
    def quantized(self) -> bool:
        return self.granularity is not None

    @property
    def tensor_math(self) -> str | None:
        """The low-precision tensor math its linear layers can run: "fp4" for fp4 on every linear layer (W4A4),
        "fp8" for fp8 weights, None otherwise (weight-only formats dequantize to the activation dtype)."""
        name = self.name.lower()
        if self.bits == 4 and "fp4" in name and not self.experts_only:
            return "fp4"
        return "fp8" if self.bits == 8 and "fp8" in name else None

    def applies_to(self, t: Tensor) -> bool:
        if not self.quantized or not t.linear:
            return False
        if t.role in ALWAYS_DENSE and not (t.role == "lm_head" and self.quantize_lm_head):
            return False
        if self.experts_only and t.role != "experts":
            return False
        return not any(_matches(pattern, t.module) for pattern in self.ignore)

    def tensor_bytes(self, t: Tensor, shape: tuple[int, ...], dense_bytes: float) -> float:
        """Bytes of tensor `t` with (shard) `shape`; `dense_bytes` per element when it stays unquantized."""
        n = math.prod(shape)
        if not self.applies_to(t):
            return n * dense_bytes
        lead = math.prod(shape[:-2]) if len(shape) > 2 else 1
        out, inp = shape[-2], shape[-1]
        g = self.granularity
        if g == "tensor":
            scales = lead
        elif g == "channel":
            scales = lead * out
        elif g[0] == "group":
            scales = lead * out * (-(-inp // g[1]) if g[1] > 0 else 1)
        elif g[0] == "block":
            scales = lead * -(-out // g[1]) * -(-inp // g[2])
        else:  # ("flat", n)
            scales = -(-n // g[1])
        total = n * self.bits / 8 + scales * self.scale_bytes
        if self.zeros:
            total += scales * self.bits / 8
        if self.second_level:
            per, nbytes = self.second_level
            total += -(-scales // per) * nbytes
        if self.g_idx:
            total += lead * inp * 4
        return total + lead * self.extra_bytes


def dense(dtype: str) -> WeightFormat:
    return WeightFormat(name=dtype_name(dtype), bits=DTYPE_BYTES[dtype_name(dtype)] * 8)


def _matches(pattern: str, module: str) -> bool:
    """`re:<regex>` (compressed-tensors), a glob with `*` (gpt-oss), or dotted components anywhere in the
    module path (transformers' modules_to_not_convert semantics)."""
    if pattern.startswith("re:"):
        return re.match(pattern[3:], module) is not None
    if "*" in pattern:
        return fnmatch.fnmatchcase(module, pattern) or fnmatch.fnmatchcase(module, pattern + ".*")
    return f".{pattern}." in f".{module}."


# ------------------------------------------------------------------------------------- named schemes (--quant)

def _int_group(name: str, bits: int, group: int, *, zeros: bool, g_idx: bool = False,
               scale_bytes: float = 2, extra: int = 0, ignore: tuple[str, ...] = (),
               lm_head: bool = False) -> WeightFormat:
    return WeightFormat(name, bits, ("group", group), scale_bytes, zeros, g_idx, extra,
                        quantize_lm_head=lm_head, ignore=ignore)


SCHEMES: dict[str, WeightFormat] = {
    "fp8": WeightFormat("fp8 (per-tensor scale, dynamic activations)", 8, "tensor", 4),
    "fp8-channel": WeightFormat("fp8 (per-channel scales)", 8, "channel", 4),
    "fp8-block": WeightFormat("fp8 (128x128 block scales)", 8, ("block", 128, 128), 4),
    "w8a8": WeightFormat("int8 w8a8 (per-channel scales)", 8, "channel", 4),
    "w4a16": _int_group("int4 w4a16 (group 128, compressed-tensors)", 4, 128, zeros=False, extra=16),
    "gptq": _int_group("gptq int4 (group 128)", 4, 128, zeros=True),
    "awq": _int_group("awq int4 (group 128)", 4, 128, zeros=True),
    # what vLLM and TGI store when they quantize to nf4 while loading: bitsandbytes' quantize_4bit with
    # compress_statistics=True, i.e. double quant (vLLM BitsAndBytesModelLoader._unquantized_generator, 0.8.2;
    # TGI server/text_generation_server/layers/bnb.py Linear4bit); Unsloth's bnb-4bit uploads store the same
    "nf4": WeightFormat("bitsandbytes nf4 (double quant)", 4, ("flat", 64), 1, second_level=(256, 4)),
    "bnb-int8": WeightFormat("bitsandbytes int8 (LLM.int8)", 8, "channel", 4),
    "mxfp4": WeightFormat("mxfp4 experts (e8m0 scale per 32)", 4, ("group", 32), 1, experts_only=True),
    # every linear layer in fp4 (weights and activations where the GPU has fp4 tensor cores):
    # NVIDIA ModelOpt NVFP4 (as _modelopt reads hf_quant_config.json) and AMD Quark's MXFP4 checkpoints
    "nvfp4": WeightFormat("nvfp4 (fp8 scale per 16)", 4, ("group", 16), 1, extra_bytes=8),
    "mxfp4-linear": WeightFormat("mxfp4 every linear layer (e8m0 scale per 32)", 4, ("group", 32), 1),
}
SCHEME_ALIASES = {"int8": "w8a8", "int4": "w4a16", "gptq-int4": "gptq", "awq-int4": "awq", "bnb-4bit": "nf4",
                  "bnb-nf4": "nf4", "bnb-8bit": "bnb-int8"}


def scheme(name: str) -> WeightFormat:
    key = SCHEME_ALIASES.get(name.lower(), name.lower())
    if key not in SCHEMES:
        choices = ", ".join(sorted(SCHEMES))
        raise InputError(f"unknown quantization scheme {name!r}: use one of {choices}")
    return SCHEMES[key]


# ------------------------------------------------------------------------------------ from a checkpoint config

_NAME_LISTS = ("modules_to_not_convert", "ignored_layers", "llm_int8_skip_modules", "ignore", "exclude_modules")


def _names(value: Any, where: str) -> tuple[str, ...]:
    """A list of module names or patterns ("re:..." must compile); None / absent: none."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of module names (got {str(value)[:60]!r})")
    for v in value:
        if v.startswith("re:"):
            try:
                re.compile(v[3:])
            except re.error as e:
                raise ConfigError(f"{where} pattern {v[:60]!r} is not a regular expression ({e})") from None
    return tuple(value)


def _int(value: Any, where: str, lo: int, hi: int, allow: tuple[int, ...] = ()) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or int(value) != value:
        raise ConfigError(f"{where} must be an integer (got {str(value)[:40]!r})")
    if not (lo <= value <= hi or value in allow):
        raise ConfigError(f"{where} must be between {lo} and {hi} (got {value!r})")
    return int(value)


def _block(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(f"{where} must be two block sizes, e.g. [128, 128] (got {str(value)[:40]!r})")
    return _int(value[0], where, 1, 1 << 20), _int(value[1], where, 1, 1 << 20)


def from_config(qc: dict[str, Any], where: str = "quantization_config") -> WeightFormat:
    """The weight format a checkpoint's quantization config describes; every field it reads is checked."""
    qc = {**qc, **{k: _names(qc.get(k), f"{where} {k}") for k in _NAME_LISTS if k in qc}}
    method = str(qc.get("quant_method", "")).lower()
    if method == "fp8":
        return _fp8(qc)
    if method == "compressed-tensors":
        return _compressed_tensors(qc, where)
    if method in ("gptq", "awq"):
        bits = _int(qc.get("bits", 4), f"{where} bits", 1, 16)
        group = _int(qc.get("group_size", 128), f"{where} group_size", 1, 1 << 20, allow=(-1,))
        if method == "gptq":
            return _int_group(f"gptq int{bits} (group {group})", bits, group, zeros=True,
                              g_idx=bool(qc.get("desc_act", False)), lm_head=bool(qc.get("lm_head", False)),
                              ignore=tuple(qc.get("modules_to_not_convert") or ()))
        return _int_group(f"awq int{bits} (group {group})", bits, group, zeros=bool(qc.get("zero_point", True)),
                          ignore=tuple(qc.get("modules_to_not_convert") or ()))
    if method == "bitsandbytes":
        ignore = tuple(qc.get("llm_int8_skip_modules") or ())
        if qc.get("load_in_4bit") or qc.get("_load_in_4bit"):
            kind = qc.get("bnb_4bit_quant_type", "fp4")
            if qc.get("bnb_4bit_use_double_quant"):
                return WeightFormat(f"bitsandbytes {kind} (double quant)", 4, ("flat", 64), 1,
                                    second_level=(256, 4), ignore=ignore)
            return WeightFormat(f"bitsandbytes {kind}", 4, ("flat", 64), 4, ignore=ignore)
        if qc.get("load_in_8bit") or qc.get("_load_in_8bit"):
            return WeightFormat("bitsandbytes int8", 8, "channel", 4, ignore=ignore)
        raise ConfigError(f"{where}: bitsandbytes config sets neither load_in_4bit nor load_in_8bit")
    if method == "mxfp4":
        return WeightFormat("mxfp4 experts (e8m0 scale per 32)", 4, ("group", 32), 1, experts_only=True,
                            ignore=tuple(qc.get("modules_to_not_convert") or ()))
    if method == "modelopt" or "quant_algo" in qc:
        return _modelopt(qc, where)
    raise UnsupportedModelError(
        f"{where}: quantization method {method or '(none)'!r} is not modelled; kvplan knows fp8, "
        "compressed-tensors, gptq, awq, bitsandbytes, mxfp4 and modelopt (fp8, nvfp4)"
    )


def _fp8(qc: dict[str, Any]) -> WeightFormat:
    static = qc.get("activation_scheme") == "static"
    ignore = tuple(qc.get("modules_to_not_convert") or ()) + tuple(qc.get("ignored_layers") or ())
    block = qc.get("weight_block_size")
    if block:
        bn, bk = _block(block, "quantization_config weight_block_size")
        return WeightFormat(f"fp8 ({bn}x{bk} block scales)", 8, ("block", bn, bk), 4, ignore=ignore)
    return WeightFormat("fp8 (per-tensor scale)", 8, "tensor", 4, extra_bytes=4 if static else 0, ignore=ignore)


def _compressed_tensors(qc: dict[str, Any], where: str) -> WeightFormat:
    config_groups = qc.get("config_groups") or {}
    if not isinstance(config_groups, dict):
        raise ConfigError(f"{where}: compressed-tensors config_groups must be an object")
    groups = [g for g in config_groups.values() if isinstance(g, dict) and g.get("weights")]
    if not groups:
        raise ConfigError(f"{where}: compressed-tensors config has no config_groups with weights")
    schemes = {repr(sorted((g["weights"] or {}).items())) for g in groups}
    if len(schemes) > 1:
        raise UnsupportedModelError(
            f"{where}: compressed-tensors config mixes {len(schemes)} weight schemes; kvplan models one "
            "scheme per checkpoint"
        )
    w = groups[0]["weights"]
    if not isinstance(w, dict):
        raise ConfigError(f"{where}: compressed-tensors weights must be an object")
    bits = _int(w.get("num_bits", 8), f"{where} num_bits", 1, 16)
    strategy = str(w.get("strategy", "tensor"))
    kind = str(w.get("type", "int"))
    act = groups[0].get("input_activations") or {}
    static = bool(act) and not act.get("dynamic", True)
    ignore = tuple(qc.get("ignore") or ())
    sym = bool(w.get("symmetric", True))
    if strategy == "group":
        group = _int(w.get("group_size") or 128, f"{where} group_size", 1, 1 << 20)
        return WeightFormat(f"compressed-tensors {kind}{bits} (group {group})", bits, ("group", group), 2,
                            zeros=not sym, extra_bytes=16, ignore=ignore)
    if strategy == "block":
        bn, bk = _block(w.get("block_structure") or [128, 128], f"{where} block_structure")
        return WeightFormat(f"compressed-tensors {kind}{bits} ({bn}x{bk} blocks)", bits, ("block", bn, bk),
                            4, ignore=ignore)
    if strategy in ("channel", "tensor"):
        return WeightFormat(f"compressed-tensors {kind}{bits} (per-{strategy})", bits, strategy, 4,
                            zeros=not sym, extra_bytes=4 if static else 0, ignore=ignore)
    raise UnsupportedModelError(f"{where}: compressed-tensors strategy {strategy!r} is not modelled")


def _modelopt(qc: dict[str, Any], where: str) -> WeightFormat:
    q = qc.get("quantization", qc)
    algo = str(q.get("quant_algo", "")).upper()
    ignore = tuple(q.get("exclude_modules") or ())
    if algo == "FP8":  # per-tensor weight scale + static per-tensor input scale
        return WeightFormat("modelopt fp8 (per-tensor scales)", 8, "tensor", 4, extra_bytes=4, ignore=ignore)
    if algo == "NVFP4":  # fp4 weights, fp8 scale per 16, fp32 global scale + input scale
        return WeightFormat("modelopt nvfp4 (fp8 scale per 16)", 4, ("group", 16), 1, extra_bytes=8, ignore=ignore)
    raise UnsupportedModelError(f"{where}: modelopt quant_algo {algo or '(none)'!r} is not modelled; "
                                "kvplan knows FP8 and NVFP4")


def scheme_for_checkpoint(method: str | None, hint: str | None, name: str) -> str | None:
    """The --quant scheme of a quantized checkpoint known only by what an engine log or report says: the
    engine's quantization method (`fp8`, `compressed-tensors`, `gptq_marlin`, ...), a weight-scheme hint
    (`fp8`, `int8`, `int4-g128`, `nf4`, `mxfp4`) and the checkpoint's name. None: not quantized."""
    method, hint, name = (method or "").lower(), (hint or "").lower(), name.lower()
    if hint == "mxfp4" or method == "mxfp4":
        return "mxfp4"
    if hint == "nf4" or method == "bitsandbytes":
        return "nf4"
    if hint == "int4-g128" or method.startswith(("gptq", "awq")) or "w4a16" in name:
        return "awq" if method.startswith("awq") else "w4a16"
    if hint == "int8" or "w8a8" in name or "int8" in name:
        return "w8a8"
    if hint == "fp8" or method in ("fp8", "modelopt") or "fp8" in name:
        if "qwen3" in name and "fp8" in name:
            return "fp8-block"  # Qwen's FP8 checkpoints use 128x128 block scales
        return "fp8-channel" if method == "compressed-tensors" or "dynamic" in name else "fp8"
    if method and method not in ("none", "null"):
        raise UnsupportedModelError(f"quantization {method!r} of {name} is not modelled")
    return None
