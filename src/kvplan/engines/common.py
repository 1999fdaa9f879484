"""Pieces several engines share: the weights as an engine loads them, the profile run's activation model, and
the memory in use before an engine measures what is free. Engines take these from here, never from each other.

- Weights as loaded (vLLM "Model loading took", SGLang "Load weight end"): the shard's tensors, vocab rows padded
  to 64 (`VocabParallelEmbedding`), mxfp4 experts padded as the Marlin MoE kernel stores them, plus the RoPE
  cos/sin tables (one per distinct rope, in the model dtype unless kept in fp32).
- The activation peak of a profiling forward pass at a token budget (a factor over the eager count fitted on public
  vLLM startup logs by `benchmarks/fit_vllm_constants.py`, data/vllm-constants.toml), and the sampler's dummy run
  over a number of requests x the vocabulary, whose bytes each engine release's rules read from its source
  (SamplerPeak); TGI's warmup borrows the forward model.
- Memory in use at startup (CUDA context, torch.distributed / NCCL buffers): read off a public SGLang log.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from kvplan.caching import derived
from kvplan.deployment import Deployment, Sharding, Stage
from kvplan.model.quant import DTYPE_BYTES, WeightFormat
from kvplan.model.spec import SELF_ATTENTION, ModelSpec, Tensor
from kvplan.units import GiB

if TYPE_CHECKING:
    from kvplan.hardware import GPU

VOCAB_PADDING = 64

# Memory in use before an engine measures "free memory at startup" (one GPU).
CUDA_CONTEXT_GIB = 0.50
DISTRIBUTED_INIT_GIB = 2.01
STARTUP_SOURCE = ("public SGLang log sgl-project/sglang#11716 (H200 TP8, CUDA total 139.80 GiB): "
                  "'Load weight begin. avail mem=137.29 GB' after 'Init torch distributed ends. mem usage=2.01 GB'")


def pad(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def fitted_constants() -> dict:
    """Fitted constants (data/vllm-constants.toml, written by benchmarks/fit_vllm_constants.py), or the ones a
    `constants_from` block sets (a leave-one-out refit)."""
    return _OVERRIDE.get() or _shipped_constants()


@cache
def _shipped_constants() -> dict:
    return tomllib.loads((resources.files("kvplan") / "data" / "vllm-constants.toml").read_text(encoding="utf-8"))


_OVERRIDE: ContextVar[dict | None] = ContextVar("fitted_constants", default=None)


@contextmanager
def constants_from(constants: dict) -> Iterator[None]:
    """Inside the block, engines read `constants` instead of the shipped ones (kvplan.engines.vllm_fit's
    refits). Figures are cached per deployment: make the deployments inside the block."""
    token = _OVERRIDE.set(constants)
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


# -------------------------------------------------------------------------------------------------- weights

def loaded_weights(dep: Deployment, stage: Stage, mxfp4_layout: str = "marlin") -> tuple[int, str]:
    """What the engine reports loading on one GPU of `stage`: the shard as loaded, vocab rows padded to 64,
    plus the RoPE tables (one per distinct rope, in the model dtype unless kept in fp32); mxfp4 experts as the
    MoE backend lays them out (`mxfp4_layout`, MXFP4_LAYOUTS)."""
    return _loaded_weights(dep.model, dep.sharding, dep.weight_format, dep.dense_bytes, len(dep.stages), stage,
                           mxfp4_layout)


@derived
def _loaded_weights(model: ModelSpec, tp: Sharding, fmt: WeightFormat, dense_bytes: float, pp: int,
                    stage: Stage, mxfp4_layout: str = "marlin") -> tuple[int, str]:
    """loaded_weights, kept per model: a function of TP, the format and the stage (shared by the deployments
    that agree on those)."""
    extra = _vocab_padding(model, tp, dense_bytes, stage.index == 0, stage.index == pp - 1)
    padding = _mxfp4_padding(model, tp, fmt, dense_bytes, frozenset(layer.index for layer in stage.layers),
                             mxfp4_layout)
    rope = 0.0
    if any(layer.kv.retention in SELF_ATTENTION for layer in stage.layers):
        rope = sum(r.positions * r.dim * (4 if r.fp32 else dense_bytes) for r in model.rope)
    total = stage.weights_bytes + extra + padding + rope
    parts = [f"tensors {stage.weights_bytes:,}"]
    if extra:
        parts.append(f"vocab padding to {VOCAB_PADDING} {extra:,.0f}")
    if padding:
        parts.append(f"mxfp4 experts as the {mxfp4_layout} backend lays them out {padding:+,.0f}")
    if rope:
        parts.append(f"RoPE tables {rope:,.0f}")
    return round(total), " + ".join(parts) + " B"


# PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp): requests round up to kMinBlockSize
# (512 B); up to kSmallSize (1 MiB) they come from 2 MiB segments (kSmallBuffer), larger ones from 20 MiB segments
# (kLargeBuffer) below kMinLargeAlloc (10 MiB), else from a segment of the request rounded up to kRoundLarge
# (2 MiB); a block is split when what remains is at least 512 B (small pool) or more than 1 MiB (large pool),
# else the request holds the whole block; a free block of the right pool is reused, the smallest that fits.
ALLOC_MIN_BLOCK, ALLOC_SMALL, ALLOC_SMALL_SEGMENT = 512, 1 << 20, 2 << 20
ALLOC_LARGE_SEGMENT, ALLOC_LARGE_FROM, ALLOC_ROUND_LARGE = 20 << 20, 10 << 20, 2 << 20
# the checkpoint's projections the engines fuse into one parameter (vLLM / SGLang QKVParallelLinear,
# MergedColumnParallelLinear): their shards are copied into one allocation
FUSED_PROJECTIONS = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
                     "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}


def parameters(dep: Deployment, stage: Stage, offloaded: float = 0.0, vocab_scale: float = 1.0) -> dict[str, float]:
    """A stage's parameters as an engine allocates them, in creation order: name -> bytes on one GPU, qkv and
    gate_up fused; the embedding and lm_head scaled by `vocab_scale` (their padded rows); `offloaded`: bytes of
    decoder-layer parameters, taken in order, left in CPU memory (vLLM --cpu-offload-gb)."""
    groups: dict[str, float] = {}
    held = 0.0
    for t, size in dep.stage_tensors[stage.index]:
        if t.layer is not None and held < offloaded:
            held += size
            continue
        key = ".".join(FUSED_PROJECTIONS.get(part, part) for part in t.name.split("."))
        groups[key] = groups.get(key, 0.0) + (size * vocab_scale if t.role in ("embedding", "lm_head") else size)
    return groups


def allocated_bytes(sizes: Iterable[float]) -> int:
    """What torch.cuda.memory_allocated counts after persistent allocations of `sizes` bytes, in order, with
    none freed (the allocator's rules above)."""
    free: dict[bool, list[int]] = {True: [], False: []}
    total = 0
    for size in sizes:
        request = max(ALLOC_MIN_BLOCK, -(-int(size) // ALLOC_MIN_BLOCK) * ALLOC_MIN_BLOCK)
        small = request <= ALLOC_SMALL
        pool = free[small]
        fits = [b for b in pool if b >= request]
        if fits:
            block = min(fits)
            pool.remove(block)
        elif small:
            block = ALLOC_SMALL_SEGMENT
        else:
            block = (ALLOC_LARGE_SEGMENT if request < ALLOC_LARGE_FROM
                     else -(-request // ALLOC_ROUND_LARGE) * ALLOC_ROUND_LARGE)
        rest = block - request
        if rest >= ALLOC_MIN_BLOCK if small else rest > ALLOC_SMALL:
            pool.append(rest)
            total += request
        else:
            total += block
    return total


@derived
def allocator_rounding(dep: Deployment, stage: Stage, offloaded: float = 0.0) -> tuple[int, str]:
    """Bytes the caching allocator adds to a stage's parameters as an engine creates them on the GPU one by one
    (qkv and gate_up one parameter each, the vocabulary rows padded to VOCAB_PADDING, the RoPE table after the
    first attention block): allocated_bytes over them less their sizes. `offloaded`: bytes of decoder-layer
    parameters, taken in order, that stay in CPU memory (vLLM --cpu-offload-gb)."""
    vocab = dep.model.vocab_size
    groups = parameters(dep, stage, offloaded, pad(vocab, VOCAB_PADDING) / vocab if vocab else 1.0)
    rope_after = next((key for key in groups if "o_proj" in key.split(".")), None)
    tables = [r.positions * r.dim * (4 if r.fp32 else dep.dense_bytes) for r in dep.model.rope]
    sizes: list[float] = []
    for key, size in groups.items():
        sizes.append(size)
        if key == rope_after:
            sizes += tables
    extra = allocated_bytes(sizes) - round(sum(sizes))
    return extra, f"the caching allocator's blocks {extra:+,} (c10 CUDACachingAllocator: 512 B, 2 / 20 MiB segments)"


@derived
def _vocab_padding(model: ModelSpec, tp: Sharding, dense_bytes: float, first: bool, last: bool) -> float:
    """Bytes the vocabulary's padding to VOCAB_PADDING rows adds to a stage's embedding and lm_head shards
    (kept per model: a function of TP, the dtype and where the stage sits)."""
    extra = 0
    for t in model.tensors:
        if t.role not in ("embedding", "lm_head") or len(t.shape) != 2:
            continue
        on_stage = (t.role == "embedding" and first) or (t.role == "lm_head" and last)
        if model.tie_word_embeddings and t.role == "embedding" and last:
            on_stage = True
        if on_stage:
            rows, hidden = t.shape
            ranks = tp.ranks(t)
            padded = pad(rows, VOCAB_PADDING) // ranks
            extra += (padded - t.shard_shape(ranks)[0]) * hidden * dense_bytes
    return extra


# How vLLM lays out an mxfp4 checkpoint's routed experts on the GPU, by MoE backend (fused_moe/oracle/mxfp4.py
# 0.19.0, quantization/mxfp4.py 0.14.0: the rounding at create_weights, then process_weights_after_loading):
# "marlin" (below Hopper, and SM 11-12), "trtllm" (FlashInfer TRT-LLM on SM 10.x), "triton_32" / "triton_64"
# (Hopper: the triton_kernels vendored in vllm/third_party, whose Hopper layouts pad the packed weights to 32
# bytes in 0.14.0 and to 64 rows and bytes in 0.19.0).
MXFP4_LAYOUTS = ("marlin", "trtllm", "triton_32", "triton_64")


def _even(n: int) -> int:
    return n + n % 2


def _mxfp4_layout_bytes(t: Tensor, shape: list[int], layout: str, dense_bytes: float) -> float:
    """Bytes one rank holds for an mxfp4 expert tensor (E, 2I, H) gate_up / (E, H, I) down, or its bias, in
    `layout`. Marlin pads I to 128 and H to 256, TRT-LLM both to 256 (fp32 biases), keeping the shapes' bytes;
    Triton pads I to 64, swizzles the e8m0 scales into rows padded to 256 (even columns) and keeps the original
    scales beside them (only the original weights are deleted), with fp32 biases."""
    e, gate_up, bias = shape[0], "gate_up_proj" in t.name, t.name.endswith("_bias")
    inner = shape[2] if len(shape) == 3 else 0  # the input dim of a weight (a bias has none)
    i, h = (shape[1] // 2, inner) if gate_up else (inner, shape[1])
    if layout in ("marlin", "trtllm"):
        ip, hp = pad(i, 128 if layout == "marlin" else 256), pad(h, 256)
        if bias:
            return e * (2 * ip if gate_up else hp) * (4 if layout == "trtllm" else dense_bytes)
        rows, cols = (2 * ip, hp) if gate_up else (hp, ip)
        return e * (rows * cols / 2 + rows * cols / 32)
    ip = pad(i, 64)
    if bias:
        return e * (2 * ip if gate_up else h) * 4
    rows, cols = (2 * ip, h) if gate_up else (h, ip)
    packed = rows * pad(cols // 2, 32) if layout == "triton_32" else pad(rows, 64) * pad(cols // 2, 64)
    scales = pad(rows, 256) * _even(cols // 32) + rows * cols // 32
    return e * (packed + scales)


@derived
def _mxfp4_padding(model: ModelSpec, tp: Sharding, fmt: WeightFormat, dense_bytes: float,
                   layers: frozenset[int], layout: str = "marlin") -> float:
    """Bytes the mxfp4 experts of these layers take in `layout` beyond their checkpoint shapes (kept per model:
    deployments that agree on TP, format, the stage's layers and the backend share it)."""
    if not (fmt.experts_only and fmt.bits == 4):
        return 0.0
    extra = 0.0
    for t in model.tensors:
        if t.role != "experts" or t.layer not in layers:
            continue
        shape = list(t.shard_shape(tp.ranks(t)))
        extra += _mxfp4_layout_bytes(t, shape, layout, dense_bytes) - fmt.tensor_bytes(t, tuple(shape), dense_bytes)
    return extra


# ----------------------------------------------------------------------------------------------- activations

def activation_width(dep: Deployment, routed: bool = True) -> int:
    """Activation elements per token at the forward's peak on one GPU, counted as eager PyTorch holds them in
    the widest layer: the up-projection output (gate + up), the activated half of it, and the residual stream
    (input, output, residual: 3 x hidden); an attention layer holds its q/k/v output instead when that is wider.
    Routed experts run as vLLM's fused MoE (model_executor/layers/fused_moe/fused_moe.py fused_experts_impl, read
    in 0.8.5, 0.10.1.1 and 0.19.0): per token top-k x max(gate_up width N, hidden) for cache1 / cache3, which
    share one buffer, + top-k x N / 2 for the activated cache2; shared experts' own up-projection adds to it.
    `routed` False: without the routed experts' buffers (a release that holds them in a persistent workspace,
    counted apart: moe_workspace)."""
    return _activation_width(dep.model, dep.sharding, routed)


def moe_workspace(dep: Deployment, stage: Stage, tokens: int, chunk: int | None) -> int:
    """Bytes of the routed experts' persistent workspace after a forward of `tokens` (vLLM >= 0.14: the modular
    fused-MoE kernel takes workspace13 (M, top-k, max(N / 2, K)) and workspace2 (M, top-k, max(N, K)) from the
    process-wide WorkspaceManager, which grows and never frees, so they outlive the forward and the sampler's dummy
    run; model_executor/layers/fused_moe/fused_moe.py TritonExperts.workspace_shapes, modular_kernel.py
    _allocate_buffers, v1/worker/workspace.py, read in 0.19.0). N: the gate_up width per GPU, K: the hidden size,
    M: the tokens, or `chunk` of them (VLLM_FUSED_MOE_CHUNK_SIZE, 0.14-0.17: 16384) with the (tokens, K) output
    apart; in the activation dtype. 0 for a stage without routed experts."""
    m = dep.model
    if m.moe is None:
        return 0
    layers = {layer.index for layer in stage.layers}
    widths: dict[int, int] = {}  # gate_up width per layer (its parts summed where stored apart)
    for t in m.tensors:
        if t.role == "experts" and t.linear and t.layer in layers and t.split == len(t.shape) - 2:
            widths[t.layer] = widths.get(t.layer, 0) + t.shard_shape(dep.sharding.ranks(t))[-2]
    n = max(widths.values(), default=0)
    if not n:
        return 0
    k, top_k, d = m.hidden_size, m.moe.experts_per_token, DTYPE_BYTES[dep.activation_dtype]
    rows = min(tokens, chunk) if chunk else tokens
    out = tokens * k * d if chunk and tokens > chunk else 0
    return round(rows * top_k * (max(n / 2, k) + max(n, k)) * d + out)


@derived
def _activation_width(m: ModelSpec, tp: Sharding, routed: bool = True) -> int:  # kept per model and sharding
    hidden = m.hidden_size
    widest = 0.0
    per_layer: dict[int, dict[str, float]] = {}
    for t in m.tensors:
        if t.layer is None or not t.linear or t.split != (len(t.shape) - 2):
            continue
        w = per_layer.setdefault(t.layer, {"attention": 0, "up": 0, "experts": 0})
        out = t.shard_shape(tp.ranks(t))[-2]
        if t.role == "attention":
            w["attention"] += out
        elif t.role == "experts":
            w["experts"] += out  # gate_up (and, in some layouts, its parts) per expert: N
        elif t.role in ("mlp", "shared_experts", "ssm"):
            w["up"] += out
    top_k = m.moe.experts_per_token if m.moe else 1
    for w in per_layer.values():
        buffers = top_k * (max(w["experts"], hidden) + w["experts"] / 2) if w["experts"] and routed else 0.0
        widest = max(widest, 1.5 * w["up"] + buffers, w["attention"])
    return round(widest + 3 * hidden)


@dataclass(frozen=True)
class SamplerPeak:
    """What a sampler's dummy run holds at its peak, read from a release's source, per logits row: the model-dtype
    logits at the padded vocabulary stay alive (the runner still references them), plus, per vocabulary entry,
    - on PyTorch's sort path (top-k / top-p by `logits.sort`): the fp32 copy 4 B, sorted values 4 B and int64
      indices 8 B, and the sort's own buffers (aten/src/ATen/native/cuda/SortStable.cu: with 1 or >= 128 rows
      segmented_sort_pairs, a reverse index 8 B + CUB's spare keys 4 B and values 8 B; with 2-127 rows
      segmented_sort_pairs_by_full_sort, 8 + 8 + 4 + 12 B): `sort` and `sort_small` bytes;
    - without a sort (the Triton top-k / top-p kernel of vLLM >= 0.17, in place; FlashInfer; a plain softmax):
      `no_sort` bytes (Triton: the fp32 copy, softmax probabilities and the exponential noise q, 4 B each), plus
      the Triton kernel's cached buffer of min(next_pow2(min(SMs, rows)), SMs) rows x vocabulary x 4 B
      (v1/sample/ops/topk_topp_triton.py, never freed; `buffer`)."""

    label: str
    sort: int = 36  # bytes per entry beyond the logits on the sort path, at 1 or >= 128 rows
    sort_small: int = 48  # ... at 2-127 rows
    sort_in_model_dtype: tuple[int, int] = (0, 0)  # further entries kept in the model dtype (V0 < 0.5.5), x dtype
    no_sort_from: int | None = None  # rows from which no sort runs (None: the sort path at any size)
    no_sort: float = 12  # bytes per entry beyond the logits without a sort (Triton, FlashInfer, a plain softmax)
    buffer: bool = True  # the Triton kernel's cached buffer (not on Model Runner V2's paths)

    def peak(self, rows: int, vocab: int, padded: int, dtype: float, units: int | None) -> tuple[float, str]:
        """(bytes, how) of the sampler's peak on `rows` requests."""
        logits = rows * padded * dtype
        if self.no_sort_from is not None and rows >= self.no_sort_from:
            how = f"{self.label}: logits {rows} x {padded:,} x {dtype:g} B + {self.no_sort} B x {rows} x {vocab:,}"
            if not self.buffer:
                return logits + rows * vocab * self.no_sort, how
            sms = units or ASSUMED_UNITS
            buffer_rows = min(1 << (min(sms, rows) - 1).bit_length(), sms)
            how += f" + Triton buffer {buffer_rows} x {vocab:,} x 4 B" + ("" if units else
                                                                         f" ({ASSUMED_UNITS} SMs assumed)")
            return logits + rows * vocab * self.no_sort + buffer_rows * vocab * 4, how
        small = 2 <= rows < 128
        per_entry = (self.sort_small if small else self.sort) + dtype * self.sort_in_model_dtype[small]
        how = (f"{self.label}: logits {rows} x {padded:,} x {dtype:g} B + sort {per_entry:g} B x {rows} x {vocab:,}"
               + (" (2-127 rows: the full-sort branch)" if small else ""))
        return logits + per_entry * rows * vocab, how


ASSUMED_UNITS = 132  # an H100's SMs, where the catalog does not know the device's


@dataclass(frozen=True)
class ActivationFeatures:
    """What the profiling run's peak scales with (bytes, before the fitted forward factor)."""

    forward: float  # tokens x activation dtype x widest per-token activation
    hidden: float  # the forward's hidden states still alive while the sampler runs
    last_stage: bool
    width: int
    tokens: int
    requests: int
    vocab: int  # the vocabulary
    padded_vocab: int  # ... padded to VOCAB_PADDING rows (the lm_head output's width)
    dtype: float


def activation_features(dep: Deployment, stage: Stage, tokens: int, max_num_seqs: int,
                        hidden_rows: str = "tokens", routed: bool = True) -> ActivationFeatures:
    """`hidden_rows`: the hidden states alive during the sampler, of every token ("tokens") or of the sampled
    rows only ("rows")."""
    dtype = DTYPE_BYTES[dep.activation_dtype]
    width = activation_width(dep, routed)
    requests = min(max_num_seqs, tokens)
    hidden = (tokens if hidden_rows == "tokens" else requests) * dep.model.hidden_size * dtype
    return ActivationFeatures(tokens * dtype * width, hidden, stage.index == len(dep.stages) - 1, width, tokens,
                              requests, dep.model.vocab_size, pad(dep.model.vocab_size, VOCAB_PADDING), dtype)


def forward_factor(eager: bool) -> tuple[float, str]:
    """The forward's peak over the eager count: 1 for an eager engine (vLLM V0), else fitted on the public logs."""
    if eager:
        return 1.0, "as counted: an eager forward, or Model Runner V2's profile, which skips attention"
    c = fitted_constants()["activation"]
    return c["forward_factor"], f"fitted ({c['source']})"


@derived
def activation_peak(dep: Deployment, stage: Stage, tokens: int, max_num_seqs: int, sampler: SamplerPeak, *,
                    eager: bool = False, hidden_rows: str = "tokens", units: int | None = None,
                    moe_persistent: bool = False, moe_chunk: int | None = None,
                    reserved: bool = False) -> tuple[int, str]:
    """Peak of a profiling run: a forward pass of `tokens` (the fitted factor over the eager count, or 1 when
    `eager`), then (last stage only) the sampler's dummy run on min(max_num_seqs, tokens) requests as `sampler`
    reads from the release's source, with the forward's hidden states alive (`hidden_rows`). `units`: the
    device's SMs (the Triton sampler's buffer). `moe_persistent`: the routed experts' buffers are a persistent
    workspace (moe_workspace, `moe_chunk` tokens at most), alive under both, outside the fitted factor.
    `reserved`: the engine reads free memory with the caching allocator's reserve still held (no empty_cache
    between the forward and the reading), and the sampler's tensors are larger than any block the forward freed,
    so they take new memory: the two add up instead of the larger one counting."""
    f = activation_features(dep, stage, tokens, max_num_seqs, hidden_rows, routed=not moe_persistent)
    factor, factor_source = forward_factor(eager)
    peak = factor * f.forward
    source = f"forward {factor} x {tokens} tokens x width {f.width:,} x dtype ({factor_source})"
    if f.last_stage:
        sampled, how = sampler.peak(f.requests, f.vocab, f.padded_vocab, f.dtype, units)
        source = f"{'sum' if reserved else 'max'}({source}, {how} + hidden states {f.hidden:,.0f} B)"
        peak = peak + sampled + f.hidden if reserved else max(peak, sampled + f.hidden)
    workspace = moe_workspace(dep, stage, tokens, moe_chunk) if moe_persistent else 0
    if workspace:
        peak += workspace
        source += (f" + the routed experts' persistent workspace {workspace:,} B (fused_moe modular kernel, "
                   "WorkspaceManager, >= 0.14)")
    return round(peak), source


# -------------------------------------------------------------------------------------------------- startup

def startup_in_use(tp: int, pp: int, gpu: GPU | None = None) -> tuple[int, str]:
    """Memory already in use when an engine measures the free memory at startup (one GPU): the CUDA context, and
    with more than one GPU per replica the torch.distributed / NCCL init, whose 2.01 GiB is read off an H200 TP8
    log (NVLink SHARP buffers on NVSwitch Hopper; kept on GPUs kvplan has no such figure for, as AMD's, where
    SGLang's MI300X TP8 row 140 of benchmarks/engine_logs.csv shows at least as much). NVIDIA GPUs without NVLS
    (PCIe cards, A100s) take the context alone: SGLang's public PCIe logs show no more (rows 133, L4 TP4: 21.63
    of 22.03 GiB free at "Load weight begin"; 134, RTX 4090 TP4: 16.0 GiB free after 7.08 of weights on 23.65)."""
    no_nvls = gpu is not None and gpu.vendor == "NVIDIA" and not gpu.nvswitch
    distributed = tp * pp > 1 and not no_nvls
    gib = CUDA_CONTEXT_GIB + (DISTRIBUTED_INIT_GIB if distributed else 0.0)
    parts = f"CUDA context {CUDA_CONTEXT_GIB} GiB" + (
        f" + torch.distributed init {DISTRIBUTED_INIT_GIB} GiB" if distributed else
        " (no NVLink SHARP buffers without NVSwitch: no torch.distributed term)" if tp * pp > 1 else "")
    return round(gib * GiB), f"estimate: {parts} ({STARTUP_SOURCE})"

