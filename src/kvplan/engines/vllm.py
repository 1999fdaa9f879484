"""vLLM's memory accounting (V1 engine `vllm`, and V0 `vllm-v0` for old releases), read from vLLM's own source.

Budget (`v1/worker/gpu_worker.py` determine_available_memory):
    requested = ceil(CUDA total x gpu_memory_utilization)
    available KV = requested - weights - non-torch increase - activation peak [- CUDA-graph estimate, >= 0.20]
Weights are what `Model loading took` measures (kvplan.engines.common.loaded_weights). Non-torch memory and the
activation peak are not derivable from a config: they are constants fitted on public startup logs by
`benchmarks/fit_vllm_constants.py` (data/vllm-constants.toml).

Blocks (`v1/core/kv_cache_utils.py`): layers with the same KV spec share one group; hybrid models (sliding +
full, Mamba + attention) are split into groups of equal size with one page size (Mamba pages padded,
attention blocks enlarged). num_blocks = available // page // layers per group, the minimum over stages.
The printed lines: "GPU KV cache size: N tokens" and "Maximum concurrency for L tokens per request: C x".
Rules that changed between releases are rows of V1_RULES / V0_RULES below; docs/vllm-rules.md has the source
lines.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from kvplan.budget import Budget, Term, TermKind, check_util
from kvplan.caching import derived
from kvplan.capacity import LimitedBy, Pool
from kvplan.deployment import Deployment, Stage
from kvplan.engines.base import (
    Change,
    Engine,
    EngineSettings,
    Launch,
    Printed,
    RuleTable,
    Scenario,
    Setup,
    Startup,
    block_derivation,
    model_context,
    parse_version,
    row,
)
from kvplan.engines.common import (
    CUDA_CONTEXT_GIB,
    SamplerPeak,
    activation_features,
    activation_peak,
    allocator_rounding,
    fitted_constants,
    loaded_weights,
    moe_workspace,
    startup_in_use,
)
from kvplan.engines.logwords import CUDA_OOM, INT, NUM, LogWording, clue, rules, to_float, to_int
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import GPU, compute_capability, compute_units
from kvplan.model.drafters import eagle_head
from kvplan.model.quant import DTYPE_BYTES
from kvplan.model.spec import TOWER_ROLES, ModelSpec, Retention, VisionInput
from kvplan.units import GiB, fmt_gib

DEFAULT_BLOCK_SIZE = 16


# ------------------------------------------------------------------------------------------- log wordings

def _actual_usage(m: re.Match[str]) -> dict[str, object]:
    out: dict[str, object] = {"weights_gib": to_float(m.group(1)), "activation_peak_gib": to_float(m.group(2)),
                              "non_torch_gib": to_float(m.group(3))}
    if m.group(4):
        out["cudagraph_gib"] = to_float(m.group(4))
    return out


def _concurrency(m: re.Match[str]) -> dict[str, object]:
    return {"max_concurrency_len": to_int(m.group(1)), "max_concurrency_x": to_float(m.group(2))}


# Wordings that date a vLLM log which does not print its version, each read in every PyPI release from 0.4.0 to
# 0.34.0 (the files named: entrypoints/openai/api_server.py, v1/worker/gpu_worker.py, v1/worker/gpu_model_runner.py,
# v1/core/kv_cache_utils.py, v1/engine/core.py, worker/worker.py, worker/model_runner.py, executor/*.py,
# platforms/__init__.py, compilation/monitor.py). Bounds are releases without their .postN.
_PREFIX = r"^(?:\(\w+ pid=\d+\) )?(?:INFO|WARNING|DEBUG|ERROR) \d\d-\d\d \d\d:\d\d:\d\d "
COMMON_CLUES = (
    clue(_PREFIX + r"\w+\.py:\d+\] ", "0.4.0", "0.8.0", "the log prefix without a bracket (file.py:N])"),
    clue(_PREFIX + r"\[\w+\.py:\d+\] ", "0.8.0", None, "the log prefix [file.py:N]"),
    clue(r"Automatically detected platform \w+\.", "0.7.0", "0.11.1", "\"Automatically detected platform\" at INFO"),
    clue(r"Chunked prefill is enabled with max_num_batched_tokens=", "0.5.3", None, "\"Chunked prefill is enabled\""),
    clue(r"Starting to load model ", "0.5.3", None, "\"Starting to load model\""),
    clue(r"Graph capturing finished in \d+ secs?\.", "0.4.0", "0.6.4", "\"Graph capturing finished\" without GiB"),
    clue(r"Graph capturing finished in \d+ secs?, took ", "0.6.4", None, "\"Graph capturing finished ... took\""),
    clue(r"init engine \(profile, create kv cache, warmup model\) took [\d.]+ seconds", "0.6.5", "0.20.0",
         "\"init engine ... took N seconds\""),
    clue(r"init engine \(profile, create kv cache, warmup model\) took [\d.]+ s\b(?! *econds)", "0.20.0", None,
         "\"init engine ... took N s\""),
    clue(r"Model loading took [\d.]+ GB and", "0.8.0", "0.8.3", "\"Model loading took X GB and\""),
    clue(r"torch\.compile takes [\d.]+ s in total", "0.6.5", "0.18.0", "\"torch.compile takes ... in total\""),
)
V1_CLUES = (
    *COMMON_CLUES,
    clue(r"non-default args: \{", "0.9.0", None, "\"non-default args\""),
    clue(r"Using max model len \d+", "0.9.2", None, "\"Using max model len\""),
    clue(r"Loading weights took [\d.]+ seconds", "0.8.0", None, "\"Loading weights took\""),
    clue(r"Loading model weights took [\d.]+ GB", "0.6.4", "0.8.0", "\"Loading model weights took X GB\""),
    clue(r"Model loading took \d+\.\d{4} GiB and", "0.8.3", "0.11.1", "\"Model loading took X.XXXX GiB and\""),
    clue(r"Model loading took \d+\.\d{4} GiB memory and", "0.11.1", "0.14.0",
         "\"Model loading took X.XXXX GiB memory\""),
    clue(r"Model loading took \d+(?:\.\d{1,2})? GiB memory and", "0.14.0", None,
         "\"Model loading took X GiB memory\" with at most 2 decimals"),
    clue(r"Memory profiling takes [\d.]+ seconds\. Total non KV cache memory", "0.9.1", None,
         "the DEBUG \"Memory profiling takes ... Total non KV cache memory\""),
    clue(r"non-torch forward increase memory: ", "0.9.1", "0.27.0", "\"non-torch forward increase memory\""),
    clue(r"total consumed \(from mem_get_info\)", "0.27.0", None, "\"total consumed (from mem_get_info)\""),
    clue(r"Available KV cache memory: ", "0.9.1", None, "\"Available KV cache memory\""),
    clue(r"Available KV cache memory: \d+(?:\.\d)? GiB", "0.14.0", None,
         "\"Available KV cache memory\" rounded to fewer than 2 decimals"),
    clue(r"Free memory on device [^\n]{0,200}Actual usage is", "0.10.2", None,
         "\"Free memory on device ... Actual usage\""),
    clue(r"# GPU blocks: \d+$", "0.6.4", "0.8.0", "\"# GPU blocks\" (V1)"),
    clue(r"GPU KV cache size: [\d,]+ tokens$", "0.8.0", "0.28.0", "\"GPU KV cache size\" on its own line"),
    clue(r"KV cache size: [\d,]+ tokens, Maximum concurrency for", "0.28.0", None,
         "\"KV cache size ..., Maximum concurrency\" on one line"),
    clue(r"Maximum concurrency for \d{4,} tokens per request", "0.6.3", "0.8.0",
         "\"Maximum concurrency for L tokens\" without thousands separators"),
    clue(r"Maximum concurrency for \d{1,3}(?:,\d{3})+ tokens per request", "0.8.0", None,
         "\"Maximum concurrency for L tokens\" with thousands separators"),
    clue(r"Estimated CUDA graph memory: ", "0.18.0", "0.34.0", "\"Estimated CUDA graph memory\" (Model Runner V1)"),
    clue(r"Memory after warmup: [\d.]+ GiB free", "0.34.0", None, "\"Memory after warmup\" (the extensible KV cache)"),
    clue(r"Extended KV cache to \d+ blocks", "0.34.0", None, "\"Extended KV cache to N blocks\""),
    clue(r"CUDA graph pool memory: ", "0.18.0", None, "\"CUDA graph pool memory\""),
    clue(r"Starting vLLM API server on http", "0.7.3", "0.9.1", "\"Starting vLLM API server on http\""),
    clue(r"Starting vLLM API server \d+ on ", "0.9.1", "0.18.0", "\"Starting vLLM API server N on\""),
    clue(r"\(EngineCore_\d+ pid=", "0.10.1", "0.10.2", "the (EngineCore_N pid=...) prefix"),
    clue(r"\(EngineCore_DP\d+ pid=", "0.10.2", None, "the (EngineCore_DPN pid=...) prefix"),
    clue(r"To serve at least one request with the models's max seq len", "0.7.0", "0.22.0",
         "\"To serve at least one request with the models's max seq len\""),
)
V0_CLUES = (
    *COMMON_CLUES,
    clue(r"Loading model weights took [\d.]+ GB", "0.4.0", "0.8.0", "\"Loading model weights took X GB\""),
    clue(r"Model loading took [\d.]+ GiB and", "0.8.3", "0.11.0", "\"Model loading took X GiB and\" (V0)"),
    clue(r"Memory profiling results: total_gpu_memory=", "0.6.4", "0.6.5", "\"Memory profiling results\""),
    clue(r"the current vLLM instance can use total_gpu_memory", "0.6.5", "0.11.0",
         "\"the current vLLM instance can use total_gpu_memory\""),
    # worker.py, read in 0.6.5 and 0.8.3 (0.6.4.post1 prints "Memory profiling results: total_gpu_memory=...")
    clue(r"model weights take [\d.]+\s*GiB; non_torch_memory takes", "0.6.5", "0.11.0",
         "\"model weights take X; non_torch_memory takes\""),
    clue(r"# GPU blocks: \d+, # CPU blocks: ", "0.4.0", "0.7.0", "\"# GPU blocks, # CPU blocks\""),
    clue(r"# CUDA blocks: \d+, # CPU blocks: ", "0.7.0", "0.7.3", "\"# CUDA blocks\""),
    clue(r"# cuda blocks: \d+, # CPU blocks: ", "0.7.3", "0.11.0", "\"# cuda blocks\""),
    clue(r"Maximum concurrency for [\d,]+ tokens per request", "0.6.3", "0.11.0", "\"Maximum concurrency for\" (V0)"),
)


V1_LOG = LogWording(
    name="vLLM V1",
    release_clues=V1_CLUES,
    config_line=re.compile(r"Initializing a V1 LLM engine \(v([^)\s]+)\)"),
    version_lines=(re.compile(r"vLLM API server version (\S+)"), re.compile(r"vLLM server version (\d[\w.+-]*)"),
                   re.compile(r"█.*\bversion (\d[\w.+-]*)")),
    markers=re.compile(
        r"gpu_worker\.py|gpu_model_runner\.py|kv_cache_utils\.py|EngineCore|VllmWorker rank=|Worker_TP\d"
        r"|Available KV cache memory|KV cache size: [\d,]+ tokens|GiB memory and [\d.]+ seconds"
        r"|non-torch forward increase memory|Free memory on device"),
    recognized=re.compile(r"non-default args: \{|vLLM API server version|LLM engine \(v"),
    failures=(
        (re.compile(r"To serve at least one request with the models's max seq len \((\d+)\)"), "max_model_len"),
        (re.compile(r"No available memory for the cache blocks"), "no_kv_memory"),
        (re.compile(r"on startup is less than desired GPU memory utilization"),
         "free_memory"),
        CUDA_OOM,
    ),
    figures=(
        # "Model loading took" is V0's wording too (0.6+)
        *rules("weights_gib", to_float, rf"Model loading took {NUM} (?:GiB|GB)\b", rf"weights memory: {NUM}\s*GiB"),
        *rules("non_torch_gib", to_float, rf"non-torch forward increase memory: {NUM}\s*GiB"),
        *rules("activation_peak_gib", to_float, rf"torch peak memory increase: {NUM}\s*GiB"),
        # >= 0.34 with the extensible KV cache: "Available KV cache memory" is the address space reserved, the pool
        # is the "Memory after warmup: ... N KV cache blocks (S GiB) fit within the requested R GiB" figure
        *rules("kv_available_gib", to_float, rf"KV cache blocks \({NUM} GiB\) fit within",
               rf"Available KV cache memory: {NUM}\s*GiB"),
        *rules("kv_tokens", to_int, rf"KV cache size: {INT} tokens"),
        (re.compile(rf"Maximum concurrency for {INT} tokens per request: {NUM}x"), _concurrency),
        *rules("cudagraph_gib", to_float, rf"Graph capturing finished in [\d.]+ secs?, took {NUM} GiB",
               rf"CUDA graph pool memory: {NUM} GiB \(actual\)"),
        # the >= 0.19 "Free memory on device ... Actual usage is W GiB for weight, A GiB for peak activation, N GiB
        # for non-torch memory, and G GiB for CUDAGraph memory" sentence, after the figures' own lines
        (re.compile(rf"Actual usage is {NUM} GiB for weight, {NUM} GiB for peak activation, {NUM} GiB for "
                    rf"non-torch memory(?:, and {NUM} GiB for CUDAGraph memory)?"), _actual_usage),
    ),
)

V0_LOG = LogWording(
    name="vLLM V0",
    release_clues=V0_CLUES,
    config_line=re.compile(r"Initializing an? (?:V0 )?LLM engine \(v([^)\s]+)\)"),
    markers=re.compile(
        r"VllmWorkerProcess|\bworker\.py:|\bmodel_runner\.py:|executor_base\.py|gpu_executor\.py"
        r"|the current vLLM instance can use|Memory profiling results:|[#,] CPU blocks"
        r"|reserved for KV Cache is|Loading model weights took"),
    failures=(
        (re.compile(r"The model's max seq len \((\d+)\) is larger than the maximum number of tokens that can be "
                    r"stored in KV cache \((\d+)\)"), "max_model_len"),
        (re.compile(r"No available memory for the cache blocks"), "no_kv_memory"),
        CUDA_OOM,
    ),
    figures=(
        *rules("weights_gib", to_float, rf"Loading model weights took {NUM} GB", rf"model weights take {NUM}\s*GiB"),
        *rules("non_torch_gib", to_float, rf"non_torch_memory takes {NUM}\s*GiB",
               rf"(?<![\w-])non_torch_memory={NUM}GiB"),
        *rules("activation_peak_gib", to_float, rf"PyTorch activation peak memory takes {NUM}\s*GiB"),
        *rules("kv_available_gib", to_float, rf"the rest of the memory reserved for KV Cache is {NUM}\s*GiB",
               rf"(?<![\w])kv_cache_size={NUM}GiB"),
        *rules("gpu_blocks", to_int, rf"GPU blocks: {INT}", rf"CUDA blocks: {INT}", rf"cuda blocks: {INT}"),
    ),
)


# ------------------------------------------------------------------------------------------- version rules

@dataclass(frozen=True)
class V1Rules:
    hybrid_group_ratio: float  # layers of two KV kinds share one group size when max < min x ratio
    non_torch_tp1: str  # the fitted TP 1 non-torch constant (data/vllm-constants.toml [non_torch])
    sampler: SamplerPeak  # the sampler dummy run's peak (v1/worker/gpu_model_runner.py _dummy_sampler_run)
    hidden_rows: str  # the hidden states alive during it: of every profiled token, or of the sampled rows
    runner_v2: str  # which models run on Model Runner V2 by default (uses_runner_v2); "none" before 0.22
    sampler_v2: SamplerPeak  # ... and its dummy sampler's peak
    cudagraph_estimate: bool  # the CUDA-graph memory estimate is subtracted before sizing the pool
    cudagraph_estimate_v2: bool  # ... by Model Runner V2 too (its profile_cudagraph_memory returns 0 before 0.29)
    flashinfer_sets_peak: bool  # FlashInfer's sampler, where it runs, is the dummy run's peak (a native pass follows
    # it from 0.21)
    tokens_from_concurrency: bool  # "GPU KV cache size" = int(max concurrency x max_model_len)
    free_memory_check: bool  # startup refuses when free memory is below ceil(total x utilization)
    scheduler: str  # how `vllm serve` picks its defaults (scheduler_defaults): by device name, or by memory
    # (weight format name prefix, vLLM quantization method, its get_min_capability()), first match wins
    min_capability: tuple[tuple[str, str, int], ...]
    kv_fp8_min_capability: int  # an fp8 KV cache (assumed, see the row)
    moe_workspace: int  # routed experts' buffers: -1 per call (in the forward's width), 0 a persistent workspace
    # of every profiled token, N > 0 persistent and chunked at N tokens (common.moe_workspace)
    default_util: float  # --gpu-memory-utilization when none is given (config/cache.py CacheConfig)
    default_block_size: int  # --block-size when none is given (config/cache.py DEFAULT_BLOCK_SIZE)
    kv_sizing: str  # "profile": the pool from the profile's estimate; "extensible": measured after warmup (0.34)
    mxfp4_triton: str  # the Hopper mxfp4 MoE layout (common.MXFP4_LAYOUTS): the vendored triton_kernels' padding
    encoder_items: str  # how many dummy images the encoder profile runs at once (encoder_images)
    encoder_pixels: str  # their pixels' dtype: "processor" (the HF processor's, fp32 for most), "model"
    encoder_tokens: str  # an image's tokens in the budget: "embeddings", or "placeholder" (separators too)
    encoder_expand: str  # dummy outputs copied into zeroed tensors of "budget" rows (0.11), an item's "placeholder"
    # tokens (0.12), or kept as they are ("none")
    vit_mask: str  # a block-masked tower's attention: "xformers" (no dense mask) or "dense" (SDPA, bf16 N x N)
    chunked_hybrid: bool  # the hybrid KV cache manager stays on for chunked local attention (Llama-4) by default
    # (VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE's default); off, every windowed layer caches full length
    runner_buffers: bool  # the model runner's persistent input buffers are in what the pool formula subtracts


# model_executor/layers/quantization/*.py get_min_capability() in 0.19.0 (older releases not read): the kernels
# each checkpoint format needs (Marlin runs from Turing, 75; ModelOpt fp8 needs Ada / Hopper, 89).
MIN_CAPABILITY_0_19 = (
    ("modelopt fp8", "modelopt (ModelOptFp8Config)", 89), ("modelopt nvfp4", "modelopt_fp4", 75),
    ("fp8", "fp8 (Fp8Config)", 75), ("int8 w8a8", "compressed-tensors", 70), ("int4 w4a16", "compressed-tensors", 70),
    ("gptq", "gptq (gptq_marlin 75, gptq 60)", 60), ("awq", "awq / awq_marlin", 75),
    ("bitsandbytes", "bitsandbytes", 70), ("mxfp4", "mxfp4", 80),
)

# The sampler dummy runs, read from each release (v1/sample/sampler.py, v1/sample/ops/topk_topp_sampler.py,
# topk_topp_triton.py; V0 model_executor/layers/sampler.py): with top-k = vocab - 1 and top-p 0.9 (V0 0.99) set,
# every release before 0.17 sorts the fp32 logits; 0.17 runs the Triton kernel from 8 rows, 0.30 at every size.
# FlashInfer's sampler (14 B per entry, as the Triton path without q) is the default only where flashinfer >= 0.2.3
# is importable in 0.9.0-0.11.0 (an optional extra: pip installs run the sort) and opt-in in 0.11.1-0.20; in 0.21+
# a second, native pass follows it, so the Triton path still sets the peak.
SORT = SamplerPeak("PyTorch sort (topk_topp_sampler.py apply_top_k_top_p)")
FLASHINFER = SamplerPeak("FlashInfer top-k/top-p (flashinfer installed, as in the vllm/vllm-openai images)",
                         no_sort_from=1, no_sort=12, buffer=False)
TRITON_FROM_8 = SamplerPeak("Triton top-k/top-p from 8 rows (topk_topp_triton.py)", no_sort_from=8)
TRITON = SamplerPeak("Triton top-k/top-p (topk_topp_triton.py)", no_sort_from=1)
# Model Runner V2 (v1/worker/gpu/model_runner.py, gpu/sample/sampler.py): its dummy requests set no top-k / top-p
V2_FP32 = SamplerPeak("Model Runner V2: logits + fp32 copy, no top-k/top-p", no_sort_from=1, no_sort=4,
                      buffer=False)
V2_LOGITS = SamplerPeak("Model Runner V2: the logits only", no_sort_from=1, no_sort=0, buffer=False)
V2_WARMUP = SamplerPeak("Model Runner V2 warmup pass (for_sampler_warmup: FlashInfer top-k/top-p)",
                        no_sort_from=1, no_sort=12, buffer=False)
# V0 (model_executor/layers/sampler.py _apply_top_k_top_p): the sort in the model dtype before 0.5.5 (values,
# re-sort by inverse index and gather), on an fp32 copy from 0.5.5, re-sorted by scatter_ from 0.6.2
V0_SORT_MODEL_DTYPE = SamplerPeak("V0 sort in the model dtype (sampler.py _apply_top_k_top_p, < 0.5.5)", sort=24,
                                  sort_small=32, sort_in_model_dtype=(2, 3))
V0_SORT_GATHER = SamplerPeak("V0 fp32 sort, gather re-sort (sampler.py, 0.5.5-0.6.1)", sort=38, sort_small=48)
V0_SORT_SCATTER = SamplerPeak("V0 fp32 sort, scatter_ re-sort (sampler.py, >= 0.6.2)", sort=36, sort_small=48)

V1_RULES = RuleTable(
    V1Rules,
    row("0.0.0", "v1/core/kv_cache_utils.py as in 0.16.0 (its older releases not read); v1/worker/gpu_worker.py "
        "0.8.0-0.9.0.1 determine_available_memory: torch's peak + every non-torch byte on the device "
        "(all_tp1_gib); engine/arg_utils.py 0.8.0-0.8.3 _set_default_args_v1: 8192 tokens on devices named H100 / "
        "H200, 1024 sequences everywhere; min_capability from 0.19.0; kv_fp8_min_capability is an assumption, not "
        "read (FlashAttention and FlashInfer, which take an fp8 KV cache, need Ampere 8.0; the Turing fallbacks "
        "were not read); config/cache.py CacheConfig 0.19.0: gpu_memory_utilization 0.9, block size 16, the pool "
        "from the profile; the Hopper mxfp4 layout of the triton_kernels vendored in 0.14.0 (32-byte packing; "
        "earlier releases assumed alike); v1/worker/gpu_model_runner.py 0.8.5 profile_run: ceil(encoder budget / "
        "an image's embeddings) dummy images, at most max_num_seqs x the per-prompt limit (999 in V1), the HF "
        "processor's pixels as they come (0.8.0-0.8.4 not read); v1/worker/gpu_model_runner.py "
        "DeviceMemoryProfiler and platforms/cuda.py get_current_memory_usage (read in 0.8.4, 0.20.0, 0.26.0): "
        "'Model loading took' is a difference of torch.cuda.memory_allocated, the caching allocator's blocks "
        "(common.allocator_rounding, every release); gpu_model_runner.py 0.8.4 / 0.8.5 GPUModelRunner.__init__: "
        "the persistent input buffers (input_ids, positions, inputs_embeds) inside the absolute peak "
        "(runner_buffers)",
        hybrid_group_ratio=1.25, non_torch_tp1="all_tp1_gib", sampler=SORT, hidden_rows="rows",
        runner_v2="none", sampler_v2=V2_FP32,
        cudagraph_estimate=False, cudagraph_estimate_v2=False, flashinfer_sets_peak=True,
        tokens_from_concurrency=False, free_memory_check=False,
        min_capability=MIN_CAPABILITY_0_19, kv_fp8_min_capability=80, scheduler="h100_name", moe_workspace=-1,
        default_util=0.9, default_block_size=16, kv_sizing="profile", mxfp4_triton="triton_32",
        encoder_items="ceil", encoder_pixels="processor", encoder_tokens="embeddings", encoder_expand="none",
        vit_mask="xformers", chunked_hybrid=True, runner_buffers=True),
    row("0.8.4", "engine/arg_utils.py 0.8.4 _set_default_args_v1: max_num_seqs 256 off H100 / H200 (1024 before)",
        scheduler="h100_name_256"),
    row("0.8.5", "engine/arg_utils.py 0.8.5 _set_default_args_v1: the large defaults by device memory >= 70 GiB; "
        "v1/sample/ops/topk_topp_sampler.py 0.8.5 TopKTopPSampler: FlashInfer's sampler where a flashinfer < 0.2.3 "
        "imports (the vllm/vllm-openai image: vllm-project/vllm#17327's docker log prints 'Using FlashInfer for "
        "top-p & top-k sampling.'), the sort otherwise; kvplan assumes the image, as from 0.9 (0.8.0-0.8.4 not "
        "read: the sort)", scheduler="memory", sampler=FLASHINFER),
    row("0.9.0", "engine/arg_utils.py 0.9.0 _set_default_args_v1: ... and not an A100", scheduler="memory_not_a100"),
    row("0.9.0", "v1/sample/ops/topk_topp_sampler.py 0.9.0 TopKTopPSampler: FlashInfer's sampler by default where "
        "flashinfer >= 0.2.3 imports (an optional extra, in the vllm/vllm-openai images; a plain pip install "
        "sorts: --engine-version cannot tell, kvplan assumes the image)", sampler=FLASHINFER),
    row("0.9.1", "v1/worker/utils.py request_memory (read in 0.19.0; from 0.9.1 per PRs #18974, #19312 in "
        "shared/ENGINE-RULES.md): free memory at startup < ceil(total x gpu_memory_utilization) -> ValueError; "
        "v1/worker/gpu_worker.py 0.9.1 determine_available_memory: requested memory - memory_profiling's non-KV "
        "memory, the non-torch part an increase since the init snapshot (tp1_old_gib; 0.8.0-0.9.0.1 subtracted "
        "torch's peak + every non-torch byte on the device, the CUDA context included: all_tp1_gib; so the "
        "runner's persistent input buffers, inside that absolute peak before, are in the baseline from 0.9.1)",
        free_memory_check=True, non_torch_tp1="tp1_old_gib", runner_buffers=False),
    row("0.9.2", "v1/worker/gpu_model_runner.py 0.9.2 profile_run: the hidden states of every profiled token stay "
        "alive during the sampler dummy run (before: the sampled rows')", hidden_rows="tokens"),
    row("0.10.0", "v1/worker/gpu_model_runner.py 0.10.0 profile_run: max(1, min(budget // tokens per image, "
        "max_num_seqs x the per-prompt limit)) images (0.8.5, 0.9.0 and 0.9.2 divide rounding up, without the "
        "max(1, ...))", encoder_items="floor"),
    row("0.10.1", "v1/worker/utils.py 0.10.1.1 MultiModalBudget: the per-prompt limit capped at max_model_len // "
        "tokens per image (at least 1); multimodal/registry.py 0.10.1.1: an image's tokens are its placeholder's, "
        "separators included (get_mm_max_contiguous_tokens; 0.10.0 and 0.14.0 count the embeddings); "
        "config/__init__.py 0.10.1.1 VllmConfig.__post_init__: a model with attention_chunk_size (Llama-4) turns "
        "the hybrid KV cache manager off unless VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1 (envs.py: "
        "default 0 in 0.10.1.1-0.13.0; 'There is a latency regression when using chunked local attention with the "
        "hybrid KV cache manager. Disabling it, by default.'), and v1/core/kv_cache_utils.py "
        "unify_hybrid_kv_cache_specs then caches every chunked / sliding layer as full attention (read in 0.12.0)",
        encoder_items="per_prompt", encoder_tokens="placeholder", chunked_hybrid=False),
    row("0.11.0", "multimodal/processing.py 0.11.0 _postprocess_output: the processor's floating outputs cast to "
        "the model dtype (0.10.1.1 keeps them as the HF processor returns them); v1/worker/gpu_model_runner.py "
        "0.11.0 profile_run: outputs shorter than the encoder budget copied into zeroed (budget, width) tensors "
        "(read in 0.11.0, 0.11.1, 0.11.2)", encoder_pixels="model", encoder_expand="budget"),
    row("0.11.1", "v1/sample/ops/topk_topp_sampler.py 0.11.1: FlashInfer's sampler opt-in only "
        "(VLLM_USE_FLASHINFER_SAMPLER=1): the sort", sampler=SORT),
    row("0.12.0", "wheel METADATA 0.12.0: xformers no longer a dependency (0.11.0 requires xformers 0.0.32.post1 "
        "on x86-64 Linux), so pixtral.py's block-diagonal attention runs through SDPA with a dense bf16 N x N "
        "mask (generate_block_attention_mask; read in 0.19.0); v1/worker/gpu_model_runner.py 0.12.0 profile_run: "
        "outputs shorter than an item's maximum tokens (max_tokens_by_modality: its placeholder's) copied into "
        "zeroed (those tokens, width) tensors", vit_mask="dense", encoder_expand="placeholder"),
    row("0.13.0", "v1/worker/gpu_model_runner.py 0.13.0 profile_run: the dummy encoder outputs cached as they are",
        encoder_expand="none"),
    row("0.14.0", "model_executor/layers/fused_moe/modular_kernel.py 0.14.0-0.17.0: unquantized and fp8 Triton MoE "
        "take workspace13 / workspace2 from the persistent WorkspaceManager (v1/worker/workspace.py, never freed: "
        "alive through the sampler's dummy run), chunked at VLLM_FUSED_MOE_CHUNK_SIZE 16384 (envs.py 0.14.0, "
        "0.17.0); 0.15-0.16 taken as 0.14; multimodal/profiling.py 0.14.0 get_mm_max_tokens: an image's "
        "embeddings; gpu_model_runner.py 0.14.0 profile_run keeps the encoder outputs as they are; envs.py 0.14.0 (and "
        "0.17, 0.19, 0.23, 0.29): VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE defaults to 1, chunked local "
        "attention keeps the hybrid manager",
        moe_workspace=16384, encoder_tokens="embeddings", chunked_hybrid=True),
    row("0.17.0", "v1/sample/ops/topk_topp_sampler.py 0.17.0 apply_top_k_top_p: the Triton kernel from 8 rows "
        "(topk_topp_triton.py, its buffer cached), the sort below", sampler=TRITON_FROM_8),
    row("0.18.0", "v1/core/kv_cache_utils.py 0.18.0 _get_kv_cache_groups_uniform_page_size: max < min x 1.5; "
        "fitted non-torch of 0.18+ logs", hybrid_group_ratio=1.5, non_torch_tp1="tp1_gib"),
    row("0.19.0", "model_executor/layers/fused_moe/modular_kernel.py 0.19.0 _fused_experts: no chunking (the "
        "whole profile in one workspace; VLLM_FUSED_MOE_CHUNK_SIZE gone from envs.py); third_party/triton_kernels "
        "0.19.0 (vendored): the Hopper mxfp4 layout pads the packed expert weights to 64 rows and 64 bytes "
        "(0.14.0's to 32 bytes; 0.15-0.18 not read, taken as 0.14's, 0.20+ as 0.19's)", moe_workspace=0,
        mxfp4_triton="triton_64"),
    row("0.20.0", "envs.py 0.20.0: VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS defaults to 1; config/cache.py 0.20.0 "
        "CacheConfig.gpu_memory_utilization defaults to 0.92 (0.9 in 0.19.1; 0.92 read in 0.20, 0.23, 0.26, 0.29, "
        "0.31, 0.33)", cudagraph_estimate=True, default_util=0.92),
    row("0.21.0", "v1/core/kv_cache_utils.py 0.21.0 _report_kv_cache_config: tokens from the concurrency; "
        "gpu_model_runner.py 0.21.0 _dummy_sampler_run: a FlashInfer pass, then a native one (the peak)",
        tokens_from_concurrency=True, flashinfer_sets_peak=False),
    row("0.22.0", "config/vllm.py 0.22.0 use_v2_model_runner: Model Runner V2 by default for dense, unquantized "
        "Qwen3ForCausalLM; its dummy sampler (gpu/sample/sampler.py) keeps the logits and an fp32 copy; "
        "v1/worker/gpu/model_runner.py profile_run (read in 0.26.0, earlier V2 releases assumed alike): "
        "_dummy_run(skip_attn=True), so the forward's peak is counted as is (VLLM.forward_counted)",
        runner_v2="qwen3"),
    row("0.23.0", "config/vllm.py 0.23.0: and Llama, Mistral (0.24.0's architecture list is taken as this one, "
        "not read in full)", runner_v2="qwen3_llama_mistral"),
    row("0.25.0", "config/vllm.py 0.25.0: every generative model without MoE or hybrid layers", runner_v2="dense"),
    row("0.26.0", "gpu/sample/sampler.py 0.26.0: no fp32 copy (in place)", sampler_v2=V2_LOGITS),
    row("0.29.0", "config/vllm.py 0.29.0: every model (unless a feature V2 lacks is on); gpu/model_runner.py "
        "0.29.0 profile_cudagraph_memory: Model Runner V2 estimates its CUDA graphs (0.22.0, 0.25.0, 0.26.0, "
        "0.27.0 and 0.28.0 return 0 there: no estimate is subtracted for a model V2 runs)", runner_v2="all",
        cudagraph_estimate_v2=True),
    row("0.30.0", "v1/sample/ops/topk_topp_sampler.py 0.30.0: the Triton kernel at every batch size",
        sampler=TRITON),
    row("0.33.0", "gpu/model_runner.py 0.33.0: a second dummy pass with SamplingParams.for_sampler_warmup "
        "(top-k 50, top-p 0.9: FlashInfer)", sampler_v2=V2_WARMUP),
    row("0.34.0", "config/cache.py 0.34.0: DEFAULT_BLOCK_SIZE 64 (16 before); enable_extensible_kv_cache on for "
        "CUDA and ROCm unless switched off (config/vllm.py _resolve_extensible_kv_cache), and then "
        "resolved_gpu_memory_utilization 1.0 when --gpu-memory-utilization is unset; v1/worker/extensible_kv_cache.py "
        "measure_kv_cache_bytes: the pool is sized after warmup and CUDA-graph capture (extensible_terms); "
        "v1/worker/gpu_model_runner.py (Model Runner V1) removed: every model runs V2, as from 0.29",
        default_block_size=64, kv_sizing="extensible"),
)


@derived
def _has_state(model: ModelSpec) -> bool:
    return any(layer.kv.retention == Retention.STATE for layer in model.layers)


def default_util(rules: V1Rules, extensible: bool) -> float:
    """--gpu-memory-utilization when unset: the release's default, 1.0 under the extensible KV cache (config/cache.py
    0.34.0 resolved_gpu_memory_utilization)."""
    return 1.0 if extensible else rules.default_util


def uses_runner_v2(rule: str, model: ModelSpec) -> bool:
    """Whether the release runs `model` on Model Runner V2 by default (V1_RULES runner_v2, config/vllm.py
    _is_default_v2_model_runner_model); VLLM_USE_V2_MODEL_RUNNER=0 is not modelled."""
    hybrid = _has_state(model)
    if rule == "all":
        return True
    if rule == "dense":
        return model.moe is None and not hybrid
    plain = model.moe is None and model.quant is None and not hybrid
    if rule == "qwen3":
        return plain and model.model_type == "qwen3"
    if rule == "qwen3_llama_mistral":
        return plain and model.model_type in ("qwen3", "llama", "mistral")
    return False


def runs_v2(rules: V1Rules, model: ModelSpec, settings: EngineSettings) -> bool:
    """Whether the scenario runs on Model Runner V2: as a log shows (EngineSettings.model_runner), else the
    release's default for the model (uses_runner_v2)."""
    if settings.model_runner is not None:
        return settings.model_runner == "v2"
    return uses_runner_v2(rules.runner_v2, model)


def sampler_of(rules: V1Rules, model: ModelSpec, settings: EngineSettings) -> SamplerPeak:
    """The sampler dummy run's path: Model Runner V2's where it runs; else the release's, unless a log shows which
    ran (topk_topp_sampler.py TopKTopPSampler): FlashInfer's where it ran and sets the peak, the PyTorch-native
    path where FlashInfer is the release's default but did not run (0.9-0.11: not installed, as in a plain pip
    install), which sorts."""
    if runs_v2(rules, model, settings):
        return rules.sampler_v2
    logged = settings.flashinfer_sampler
    if logged and rules.flashinfer_sets_peak:
        return FLASHINFER
    if logged is False and rules.sampler is FLASHINFER:
        return SORT
    return rules.sampler


@dataclass(frozen=True)
class V0Rules:
    auto_chunked_prefill: bool  # chunked prefill switches itself on above 32K tokens of max_model_len
    auto_chunked_prefill_multimodal: bool  # ... for multimodal models too
    chunked_prefill_tokens: int  # max_num_batched_tokens default with chunked prefill on
    non_torch: str  # the fitted non-torch constant its available-memory formula subtracts ([non_torch])
    max_num_seqs: int  # EngineArgs' default on every device
    sampler: SamplerPeak  # the profile's sampler (model_executor/layers/sampler.py)
    tiled_vision_profile: bool  # the profile feeds a tiled vision tower (Mllama) its dummy images (tiled_vision_peak)


V0_LONG_CONTEXT = 32768
V0_RULES = RuleTable(
    V0Rules,
    row("0.0.0", "releases before 0.5.4 not read: no automatic chunked prefill assumed; engine/arg_utils.py "
        "EngineArgs.max_num_seqs 256 (a field default through 0.6.5, set when unset for V0 from 0.6.6 to 0.10.2); "
        "worker/worker.py "
        "determine_num_available_blocks (0.4.0-0.6.3.post1): peak = free memory at worker init - free after the "
        "profile run, so only what the profile added beyond the CUDA context counts (v0_increase_gib); "
        "worker/enc_dec_model_runner.py profile_run (read in 0.6.3, 0.6.6, 0.7.0, 0.7.3, 0.8.5; the other "
        "releases assumed alike): max_num_seqs sequences, each with --limit-mm-per-prompt images, through "
        "Mllama's tower at once (tiled_vision_peak)",
        auto_chunked_prefill=False, auto_chunked_prefill_multimodal=False, chunked_prefill_tokens=512,
        non_torch="v0_increase_gib", max_num_seqs=256, sampler=V0_SORT_MODEL_DTYPE, tiled_vision_profile=True),
    row("0.5.4", "engine/arg_utils.py 0.5.4 EngineArgs.create_engine_config: enable_chunked_prefill unset and "
        "max_model_len > 32768 on CUDA, no sliding window, speculative model, LoRA, prompt adapter, prefix "
        "caching or Mamba layers -> on; config.py SchedulerConfig: 512 tokens with chunked prefill",
        auto_chunked_prefill=True, auto_chunked_prefill_multimodal=True),
    row("0.5.5", "model_executor/layers/sampler.py 0.5.5 Sampler.forward: logits.to(torch.float) before the sort",
        sampler=V0_SORT_GATHER),
    row("0.6.2", "engine/arg_utils.py 0.6.2: not for multimodal models (read: 0.6.0, 0.6.1 without the exclusion; "
        "0.6.2, 0.6.3, 0.6.4.post1 with it); sampler.py 0.6.2 _apply_top_k_top_p: re-sort by scatter_",
        auto_chunked_prefill_multimodal=False, sampler=V0_SORT_SCATTER),
    row("0.6.4", "worker/worker.py 0.6.4 and 0.6.4.post1 determine_num_available_blocks: peak = torch's peak "
        "allocation + every non-torch byte on the device (mem_get_info used - torch allocated: the CUDA context "
        "included; all_tp1_gib)", non_torch="all_tp1_gib"),
    row("0.6.5", "config.py 0.6.5 SchedulerConfig (PR #10544): 2048 tokens with chunked prefill; worker/worker.py "
        "0.6.5-0.10.2 with utils.memory_profiling: weights + torch peak increase + non-torch increase since worker "
        "init (the CUDA context excluded again; v0_increase_gib)", chunked_prefill_tokens=2048,
        non_torch="v0_increase_gib"),
)


# ------------------------------------------------------------------------------------------------- options

@dataclass(frozen=True)
class VllmOptions:
    """vLLM's scheduler and cache flags, resolved against the model and the device."""

    max_model_len: int
    max_num_batched_tokens: int
    max_num_seqs: int
    block_size: int | None
    enforce_eager: bool
    chunked_prefill: bool = True


def scheduler_defaults(total_bytes: int, gpu: GPU | None, rule: str = "memory_not_a100",
                       entry_point: str = "serve") -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) of V1's defaults (engine/arg_utils.py _set_default_args_v1, later
    get_batch_defaults), by V1_RULES' `scheduler`: up to 0.8.3 the large defaults on a device named H100 / H200
    and 1024 sequences everywhere; 0.8.4 256 sequences off H100 / H200; 0.8.5 the large defaults by memory
    (>= 70 GiB); from 0.9.0 by memory and not an A100. The token budget depends on the entry point: `vllm serve`
    (OPENAI_API_SERVER) 8192 on the large class, 2048 off it; the `LLM` class (LLM_CLASS) 16384 and 8192 (read in
    0.8.0, 0.8.4, 0.8.5, 0.10.1.1 and 0.19.0); max_num_seqs is the same for both."""
    name = f"{gpu.alias} {gpu.name}".lower() if gpu else ""
    if rule.startswith("h100_name"):
        large = "h100" in name or "h200" in name
    else:
        large = total_bytes >= 70 * GiB and (rule == "memory" or "a100" not in name)
    tokens = (16384 if large else 8192) if entry_point == "llm" else (8192 if large else 2048)
    if large:
        return tokens, 1024
    return tokens, 1024 if rule == "h100_name" else 256


# ------------------------------------------------------------------------------------------------ overheads

def non_torch(constant: str, tp: int, pp: int, nvls: bool = True) -> tuple[int, str]:
    """NCCL / cuBLAS / all-reduce workspace memory that appears during profiling (fitted per setup: the source
    cannot give the NCCL buffers' size).

    The ~2 GiB at TP >= 2 was measured on NVSwitch Hopper GPUs (hardware.GPU.nvswitch); elsewhere (A100 NVLink,
    bridged pairs, PCIe, devices of unknown interconnect) no public log shows it, so the TP 1 figure (`constant`)
    is used."""
    c = fitted_constants()["non_torch"]
    if tp > 1 and nvls:
        gib = c["tp_base_gib"] + c["tp_per_rank_gib"] * tp
        return round(gib * GiB), f"fitted: {c['tp_base_gib']} + {c['tp_per_rank_gib']} x TP GiB ({c['tp_source']})"
    if pp > 1:
        return round(c["pp_gib"] * GiB), f"fitted: {c['pp_gib']} GiB with PP and TP 1 ({c['pp_source']})"
    return round(c[constant] * GiB), f"fitted: {c[constant]} GiB at TP 1 ({c[constant.replace('gib', 'source')]})"


def cudagraph(estimated: bool, enforce_eager: bool, logged_gib: float | None = None) -> tuple[int, str]:
    """The CUDA-graph estimate, where the release subtracts it before sizing the pool: the one a log printed, else
    the fitted constant."""
    if enforce_eager or not estimated:
        return 0, ""
    if logged_gib is not None:
        return round(logged_gib * GiB), f"{logged_gib} GiB, as the log prints it (\"Estimated CUDA graph memory\")"
    c = fitted_constants()["cudagraph"]
    return round(c["estimate_gib"] * GiB), f"estimate {c['estimate_gib']} GiB ({c['source']})"


# v1/worker/extensible_kv_cache.py 0.34.0 (the extensible KV cache)
VMM_GRANULE = 2 << 20  # utils/extensible_tensor.py granule_size: the driver's granularity, at least 2 MiB (CUDA's)
MARGIN_FLOOR_GIB = {"cuda": 1, "rocm": 3}  # KV_CACHE_MARGIN_FLOOR_BYTES
MARGIN_FRACTION = 0.75  # KV_CACHE_MARGIN_FRACTION
PROMPT_LOGPROBS_CHUNK = 1024  # v1/worker/gpu/sample/prompt_logprob.py CHUNK_SIZE: rows of logits at once


def sizing_warmup_peak(dep: Deployment, stage: Stage, tokens: int) -> tuple[int, str]:
    """The transient of 0.34's sizing warmup step (gpu/warmup.py run_kv_cache_sizing_warmup: a prefill of the
    whole token budget with prompt logprobs, max_logprobs 20): the hidden states of every token alive while the
    logits of PROMPT_LOGPROBS_CHUNK rows at a time are computed in the model dtype (prompt_logprob.py
    compute_prompt_logprobs_with_chunking; the top-20 and the logprob kernel's outputs are small). Last stage only."""
    f = activation_features(dep, stage, tokens, 1)
    if not f.last_stage:
        return 0, ""
    rows = min(PROMPT_LOGPROBS_CHUNK, tokens)
    peak = f.hidden + rows * f.padded_vocab * f.dtype
    return round(peak), (f"the sizing warmup's prompt logprobs: hidden states {f.hidden:,.0f} B + {rows:,} rows x "
                         f"{f.padded_vocab:,} logits x {f.dtype:g} B")


def extensible_terms(setup: Setup, stage: Stage, non_torch_term: Term, act: int, act_source: str,
                     workspace: int) -> list[Term]:
    """The extensible KV cache (v1/worker/extensible_kv_cache.py 0.34.0 measure_kv_cache_bytes), sized after
    warmup and CUDA-graph capture from the memory then free:
        pool = min(ceil(total x util) - used, total - in use at startup - used - margin) - transient
    used: everything resident but the cache (weights, non-torch memory, the graph pool, persistent workspaces);
    transient: the larger of the profile's peak above what it keeps (mem_utils transient_peak_headroom) and the
    sizing warmup's (record_transient_peak), kvplan's activation term less the MoE workspace; margin =
    max(1 GiB (ROCm 3), 0.75 x transient). At the default utilization 1.0 the second bound always binds: the
    pool is what is free after warmup less the margin and the transient. Not modelled: torch's reservation
    growth over a sizing step (fragmentation, kept free when above the transient: taken as below it), the
    multimodal IPC reservation (mm_ipc_gpu_memory_gb, 0 by default) and MLA's context-prefill warmup step
    (run_context_prefill_warmup: K and V up-projected for a workspace of at most 64K tokens, about 0.7 GB per GPU
    for DeepSeek-V3 at TP 8, below its 3.6 GiB profile transient)."""
    dep, o = setup.dep, setup.options
    transient, transient_source = act - workspace, act_source
    warm, warm_source = sizing_warmup_peak(dep, stage, o.max_num_batched_tokens)
    if warm > transient:
        transient, transient_source = warm, warm_source + (f" + the routed experts' persistent workspace "
                                                           f"{workspace:,} B" if workspace else "")
    terms = [non_torch_term, Term(TermKind.ACTIVATION, transient + workspace, transient_source)]
    cg, cg_source = cudagraph(True, o.enforce_eager)
    if cg:
        terms.append(Term(TermKind.CUDA_GRAPHS, cg, "the pool captured before the sizing, resident when free memory "
                                                    f"is read (gpu_worker.py _compile_or_warm_up_model): {cg_source}"))
    rocm = setup.gpu is not None and setup.gpu.vendor == "AMD"
    floor = MARGIN_FLOOR_GIB["rocm" if rocm else "cuda"]
    margin = max(floor * GiB, int(transient * MARGIN_FRACTION))
    # what the worker holds before its init snapshot: the CUDA context, and past one GPU the distributed init
    in_use, in_use_source = startup_in_use(dep.tp, dep.pp, setup.gpu)
    requested = math.ceil(setup.total * setup.fraction)
    bound = setup.total - in_use - margin
    if requested > bound:
        terms.append(Term(TermKind.MARGIN, requested - bound,
                          f"the extensible KV cache's device bound: requested {requested:,} B - (total - in use at "
                          f"startup {in_use:,} B ({in_use_source}) - margin max({floor} GiB, {MARGIN_FRACTION} x "
                          f"transient {transient:,} B) = {margin:,} B)"))
    return terms


LORA_DTYPES = {"auto": None, "bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16",
               "float32": "fp32", "fp32": "fp32"}


def lora_bytes(dep: Deployment, stage: Stage, s: EngineSettings) -> tuple[int, str]:
    """The LoRA slots vLLM allocates when it loads the model (counted in "Model loading took"; lora/layers/
    base_linear.py, column_parallel_linear.py, vocal_parallel_embedding.py, logits_processor.py 0.19.0
    create_lora_weights), every supported module wrapped whatever an adapter targets: per linear layer and per
    slice (q, k, v, gate, up apart), A = max_loras x rank x its input on this GPU and B = max_loras x its output
    on this GPU x rank; the embedding's A = max_loras x vocab x rank, B = max_loras x hidden x rank; the head's
    A = max_loras x rank x hidden, B = max_loras x vocab x rank; in --lora-dtype (auto: the model's)."""
    if dep.model.moe is not None:
        raise UnsupportedModelError("vLLM's LoRA slots for fused-MoE experts are not modelled: drop --enable-lora")
    if s.lora_dtype not in LORA_DTYPES:
        raise InputError(f"unknown --lora-dtype {s.lora_dtype!r}: use auto, bfloat16, float16 or float32")
    dtype = DTYPE_BYTES[LORA_DTYPES[s.lora_dtype] or dep.activation_dtype]
    widths = 0
    for t, _ in dep.stage_tensors[stage.index]:
        if t.layer is not None and t.linear and t.role in ("attention", "mlp", "shared_experts") and len(t.shape) == 2:
            out, inp = t.shard_shape(dep.sharding.ranks(t))
            widths += out + inp
        elif t.role in ("embedding", "lm_head") and len(t.shape) == 2:
            widths += t.shape[0] + t.shape[1]
    total = s.max_loras * s.max_lora_rank * widths * dtype
    return round(total), f"{s.max_loras} x rank {s.max_lora_rank} x {widths:,} (inputs + outputs) x {dtype:g} B"


def offloaded_bytes(dep: Deployment, stage: Stage, gib: float) -> int:
    """Bytes of `stage`'s weights vLLM keeps in CPU memory under --cpu-offload-gb `gib`
    (model_executor/offloader/uva.py 0.19.0 UVAOffloader._maybe_offload_to_cpu, over the decoder layers
    make_layers builds, in order): parameter by parameter while fewer than gib x 2^30 bytes are offloaded, so
    the last one may pass the limit; embeddings and the head stay on the GPU."""
    cap, total = gib * GiB, 0.0
    for t, size in dep.stage_tensors[stage.index]:
        if t.layer is None:
            continue
        if total >= cap:
            break
        total += size
    return round(total)


LMCACHE_CHUNK = 256  # LMCache's chunk_size default (lmcache/v1/config.py 0.5.6)

# ------------------------------------------------------------------------------------------------ KV blocks

@dataclass(frozen=True)
class Page:
    """One layer's cache in vLLM's terms (v1/kv_cache_interface.py): FullAttentionSpec (MLA too),
    SlidingWindowSpec, ChunkedLocalAttentionSpec or MambaSpec."""

    retention: Retention
    per_token: float  # attention: bytes per token per layer; state: the state's bytes per layer
    window: int = 0


def page_of(kv: Any, dep: Deployment) -> Page | None:
    """The one mapping from kvplan's KV specs to vLLM V1 pages."""
    match kv.retention:
        case Retention.NONE:
            return None
        case Retention.ENCODER:
            raise UnsupportedModelError("vLLM's V1 engine does not serve cross-attention (Mllama) models; use "
                                        "--engine vllm-v0 for old releases")
        case Retention.STATE:
            return Page(Retention.STATE, kv.state_bytes(dep.kv_bytes, dep.state_bytes, dep.attn_tp))
        case Retention.FULL:
            return Page(Retention.FULL, kv.bytes_per_token(dep.kv_bytes, dep.attn_tp))
        case Retention.SLIDING | Retention.CHUNKED:
            return Page(kv.retention, kv.bytes_per_token(dep.kv_bytes, dep.attn_tp), kv.window or 0)
    raise UnsupportedModelError(f"kvplan does not model vLLM's cache for {kv.kind} layers")


@dataclass(frozen=True)
class KVLayout:
    """The block layout of one stage (vLLM get_kv_cache_groups + get_kv_cache_config_from_groups)."""

    specs: tuple[tuple[Page, int], ...]  # (page, number of layers)
    block_size: int  # attention block size (after hybrid adjustment)
    page: int  # bytes of one block of one layer (uniform after unification)
    group_size: int  # layers per group = tensors sharing one block index
    n_groups: int
    groups_per_spec: tuple[int, ...]
    max_model_len: int
    mnbt: int
    granule: int = 0  # the extensible cache commits each layer's segment in whole granules (0: one allocation)

    def num_blocks(self, available: int) -> int:
        """Blocks in `available` bytes: one tensor of num_blocks pages per layer of a group; under the extensible
        KV cache each tensor is a segment of its own, mapped in whole granules (v1/worker/extensible_kv_cache.py
        0.34.0 blocks_within / physical_bytes_for: ceil(blocks x page / granule) granules per segment)."""
        per_tensor = max(0, int(available // self.group_size))
        if self.granule:
            per_tensor = per_tensor // self.granule * self.granule
        return per_tensor // self.page

    def bytes_per_block(self) -> int:
        return self.page * self.group_size

    def blocks_per_request(self, seq: int) -> int:
        total = 0
        for (spec, _), groups in zip(self.specs, self.groups_per_spec, strict=True):
            total += groups * self._blocks(spec, seq)
        return total

    def _blocks(self, spec: Page, seq: int) -> int:
        bs = self.block_size
        if spec.retention == Retention.STATE:
            return 1
        if spec.retention == Retention.SLIDING:
            return -(-min(spec.window - 1 + self.mnbt, seq) // bs) + 1
        if spec.retention == Retention.CHUNKED:
            return -(-min(spec.window + self.mnbt, seq) // bs)
        assert spec.retention == Retention.FULL, spec  # page_of makes no other page
        return -(-seq // bs)

    def longest(self, requests: int, blocks: int) -> int | None:
        """The longest request length of which `requests` fit in `blocks` (None: memory never limits it).

        blocks_per_request depends on L only through k = ceil(L / block_size): it is full x k + the sum over
        windowed groups of g x min(c, k) + a constant (one block per state group, the sliding window's straddle
        block), piecewise linear in k, so the largest k is found segment by segment, and L = k x block_size."""
        bs = self.block_size
        full, const, capped = 0, 0, []
        for (spec, _), groups in zip(self.specs, self.groups_per_spec, strict=True):
            if spec.retention == Retention.FULL:
                full += groups
            elif spec.retention == Retention.STATE:
                const += groups
            elif spec.retention == Retention.SLIDING:
                capped.append((-(-(spec.window - 1 + self.mnbt) // bs), groups))
                const += groups
            else:
                assert spec.retention == Retention.CHUNKED, spec  # page_of makes no other page
                capped.append((-(-(spec.window + self.mnbt) // bs), groups))
        budget = blocks // requests
        capped.sort()

        def bpr(k: int) -> int:
            return full * k + sum(g * min(c, k) for c, g in capped) + const

        if full == 0 and bpr(capped[-1][0] if capped else 0) <= budget:
            return None
        if bpr(1) > budget:
            return 0
        k, slope, fixed = 1, full + sum(g for _, g in capped), const  # on k <= every cap
        for cap, groups in [*capped, (None, 0)]:
            # on this segment bpr(k) = slope x k + fixed; the largest k within the budget
            top = (budget - fixed) // slope if slope else None
            if cap is None or (top is not None and top < cap):
                return (top if top is not None else k) * bs
            k, slope, fixed = cap, slope - groups, fixed + groups * cap
        raise AssertionError("unreachable")

    @property
    def min_block_size(self) -> int:
        """The smallest block of any group: a pure Mamba model's block is max_model_len."""
        if all(spec.retention == Retention.STATE for spec, _ in self.specs):
            return self.max_model_len
        return self.block_size


@derived
def kv_layout(dep: Deployment, stage: Stage, block_size: int | None, max_model_len: int, mnbt: int,
              group_ratio: float, default_block: int = DEFAULT_BLOCK_SIZE, granule: int = 0,
              hybrid_manager: bool = True) -> KVLayout:
    """`hybrid_manager` False: vLLM's hybrid KV cache manager is off, and unify_hybrid_kv_cache_specs
    (v1/core/kv_cache_utils.py) caches every sliding-window and chunked layer of a model that also has full
    attention as full attention."""
    counts: dict[Page, int] = {}
    for kv, n in stage.kv_specs:  # layers share a handful of KV specs: map each distinct one once
        spec = page_of(kv, dep)
        if spec is not None:
            counts[spec] = counts.get(spec, 0) + n
    windowed = {s for s in counts if s.retention in (Retention.SLIDING, Retention.CHUNKED)}
    if not hybrid_manager and windowed and any(s.retention == Retention.FULL for s in counts):
        for s in windowed:
            full = Page(Retention.FULL, s.per_token)
            counts[full] = counts.get(full, 0) + counts.pop(s)
    if not counts:
        raise UnsupportedModelError("this stage holds no layer with a KV cache: vLLM would allocate nothing")
    bs = block_size or default_block
    attention = [s for s in counts if s.retention != Retention.STATE]
    mamba = [s for s in counts if s.retention == Retention.STATE]
    if mamba and attention:
        # HybridAttentionMambaModelConfig: attention blocks grow until one page holds a Mamba state.
        attn_token = max(s.per_token for s in attention)
        state = max(s.per_token for s in mamba)
        align = 16
        bs = max(bs, align * -(-int(state) // (align * int(attn_token))))
        page = int(bs * attn_token)
    elif mamba:
        bs = max_model_len  # mamba_block_size = max_model_len when prefix caching is off (the hybrid default)
        page = int(max(s.per_token for s in mamba))
    else:
        pages = {int(bs * s.per_token) for s in attention}
        page = max(pages)
        if any(page % p for p in pages):
            raise UnsupportedModelError("layers with page sizes that do not divide each other: vLLM refuses them")
    if len(counts) == 1:
        (spec, n), = counts.items()
        return KVLayout(((spec, n),), bs, page, n, 1, (1,), max_model_len, mnbt, granule)
    sizes = sorted(counts.values())
    group_size = sizes[-1] if sizes[-1] < sizes[0] * group_ratio else sizes[0]
    specs = tuple(counts.items())
    groups = tuple(-(-n // group_size) for _, n in specs)
    return KVLayout(specs, bs, page, group_size, sum(groups), groups, max_model_len, mnbt, granule)


def v0_layout(dep: Deployment, stage: Stage, block_size: int | None) -> KVLayout:
    """V0: one cache block covers every attention layer (cross-attention included) at full length."""
    per_token = 0.0
    for layer in stage.layers:
        kv = layer.kv
        match kv.retention:
            case Retention.NONE:
                continue
            case Retention.FULL | Retention.SLIDING | Retention.CHUNKED | Retention.ENCODER:
                # every attention layer, windowed and cross-attention too, holds full-length blocks
                per_token += (kv.k_width(dep.attn_tp) + kv.v_width(dep.attn_tp)) * dep.kv_bytes
            case _:
                raise UnsupportedModelError(f"kvplan models vLLM V0 for attention models only, not {kv.kind} layers")
    bs = block_size or DEFAULT_BLOCK_SIZE
    return KVLayout(((Page(Retention.FULL, per_token), 1),), bs, int(bs * per_token), 1, 1, (1,), 1 << 40, 0)


class BlockPool(Pool):
    """`blocks` blocks of the binding stage's layout; a request of L tokens takes blocks_per_request(L)."""

    def __init__(self, budgets: list[Budget], layouts: list[KVLayout]) -> None:
        per_stage = [layout.num_blocks(b.kv_pool) for layout, b in zip(layouts, budgets, strict=True)]
        binding = per_stage.index(min(per_stage))
        super().__init__(budgets, binding)
        self.blocks, self.layout = per_stage[binding], layouts[binding]
        self.layouts = layouts

    def holds(self, requests: int, length: int) -> bool:
        return requests * self.layout.blocks_per_request(length) <= self.blocks

    def max_requests(self, length: int) -> int:
        per_request = self.layout.blocks_per_request(length)
        return self.blocks // per_request if per_request else self.blocks

    def request_bytes(self, length: int) -> int:
        return self.layout.blocks_per_request(length) * self.layout.bytes_per_block()

    def max_tokens(self) -> int | None:
        return self.blocks * self.layout.block_size

    def longest(self, requests: int) -> int | None:
        return self.layout.longest(requests, self.blocks)

    def sharing(self) -> tuple[int, int] | None:
        """Prefix caching shares whole blocks of one full-attention group (hybrid, sliding-window and Mamba
        groups share differently: not modelled)."""
        layout = self.layout
        if layout.n_groups != 1 or layout.specs[0][0].retention != Retention.FULL:
            return None
        return self.blocks, layout.block_size

    def units(self, length: int) -> int:
        return self.layout.blocks_per_request(length)


# ------------------------------------------------------------------------------------------------- engines

class VLLM(Engine):
    """vLLM's V1 engine (`vllm serve`)."""

    name = "vllm"
    label = "vLLM"
    default_version = "0.34.0"  # the newest release whose rules kvplan has read
    newest_read = "0.34.0"  # docs/vllm-rules.md; the log wordings were read in every release up to it
    options_class = VllmOptions
    rule_table = V1_RULES
    csv_names = ("vllm v1",)
    log_wordings = (V1_LOG,)
    log_util_key = "gpu_memory_utilization"
    plans_fit = True
    serves_dp_attention = True
    prefix_cache = True  # --enable-prefix-caching, on by default in V1 (v1/core/kv_cache_manager.py)
    cpu_offload = True
    lora_slots = True
    extensible_kv_cache = True  # from 0.34 (resolve refuses the flag before it)
    speculative_methods = frozenset({"mtp", "ngram", "draft_model", "eagle", "eagle3"})
    # the first release after those known to refuse a draft model (0.11.0 engine/arg_utils.py raises
    # NotImplementedError; 0.13.0 too, vllm-project/vllm#31883); read in 0.19.0, 0.14-0.18 not read (assumed alike)
    draft_model_since = "0.14.0"
    swap_space = True
    kv_offload_tier = True
    container_image = "vllm/vllm-openai:latest"  # docs/deployment/docker.md
    entry_points = True
    weights_printed = True
    max_model_len_from_seq = True
    flags: ClassVar[dict[str, str]] = {
        "util": "--gpu-memory-utilization",
        "tp": "--tensor-parallel-size",
        "max_model_len": "--max-model-len",
        "kv_fp8": "--kv-cache-dtype fp8",
        "quant_fp8": "--quantization fp8",
        "max_batched_tokens": "--max-num-batched-tokens",
    }
    version_assumed_note = True

    def options(self, settings: EngineSettings) -> None:
        return None  # resolved against the model and the device in `resolve`

    def fraction(self, setup: Setup, util: float | None) -> float:
        """--gpu-memory-utilization, or the release's default (V1_RULES default_util; 1.0 under the extensible KV
        cache: config/cache.py 0.34.0 resolved_gpu_memory_utilization)."""
        if util is not None:
            return check_util(util)
        return default_util(setup.rules, self.extensible(setup))

    def describe(self) -> dict[str, Any]:
        """The default release's default utilization."""
        r = V1_RULES.rules_for(parse_version(self.default_version, self.default_version))
        return {**super().describe(), "default_util": default_util(r, r.kv_sizing == "extensible")}

    def served_model(self, target: ModelSpec, draft: ModelSpec | None, settings: EngineSettings) -> ModelSpec:
        """V1 loads the drafter after the target, at the target's TP, both inside "Model loading took"
        (v1/worker/gpu_model_runner.py 0.19.0 load_model -> drafter.load_model), and its attention layers join
        the target's KV cache spec: one pool, one block table, the drafter's layers in the same groups
        (get_kv_cache_spec walks every attention layer of the static forward context, the drafter's included)."""
        if draft is None:
            return target
        method = settings.speculative_method
        if method == "draft_model":
            self._check_draft_model(target, draft, settings)
        elif method in ("eagle", "eagle3"):
            draft, notes = eagle_head(draft, target, eagle3=method == "eagle3")
            target = target.with_notes(*notes)
        return target.with_draft(draft, f"{method} drafter")

    def _check_draft_model(self, target: ModelSpec, draft: ModelSpec, settings: EngineSettings) -> None:
        """A separate draft model (v1/spec_decode/draft_model.py 0.19.0 DraftModelProposer): the whole checkpoint,
        its own embedding and head included, at the target's TP (_raise_if_draft_tp_mismatch), the same
        vocabulary (config/speculative.py verify_equal_vocab_size_if_draft_model)."""
        version = parse_version(settings.version, self.default_version)
        if version < parse_version(self.draft_model_since, self.draft_model_since):
            raise UnsupportedModelError(f"{self.label} {settings.version} does not serve a separate draft model "
                                        "(0.11.0 and 0.13.0 raise NotImplementedError): use ngram or a release "
                                        f">= {self.draft_model_since}")
        if draft.vocab_size != target.vocab_size:
            raise UnsupportedModelError(f"the draft model's vocabulary ({draft.vocab_size:,}) differs from the "
                                        f"target's ({target.vocab_size:,}): vLLM refuses it; choose a draft of the "
                                        "same family")
        if draft.quant is not None or target.quant is not None:
            raise UnsupportedModelError("kvplan models a draft model beside an unquantized target only (vLLM "
                                        "builds the draft with its own quantization config): drop the quantized "
                                        "checkpoint")

    def resolve(self, setup: Setup) -> None:
        dep, s = setup.dep, setup.settings
        if s.extensible_kv_cache is not None and setup.rules.kv_sizing != "extensible":
            raise InputError(f"vLLM {setup.version_text} has no --enable-extensible-kv-cache (added in 0.34.0): drop "
                             "the flag or name a release >= 0.34.0")
        max_model_len = model_context(dep, s, self.label)
        mnbt_default, seqs_default = self.scheduler_defaults(setup)
        max_num_seqs = s.max_num_seqs or seqs_default
        chunked = self.chunked_prefill(setup, max_model_len)
        mnbt = s.max_num_batched_tokens or self.default_batched_tokens(setup, max_model_len, mnbt_default,
                                                                       max_num_seqs, chunked)
        setup.options = VllmOptions(max_model_len, mnbt, max_num_seqs, s.block_size, s.enforce_eager, chunked)

    def batching(self, printed: Printed) -> tuple[bool, bool] | None:
        """V1 (v1/core/sched/scheduler.py schedule, 0.19.0): one token budget for the running requests' decodes
        and the prompt chunks; V0 (core/scheduler.py _schedule_chunked_prefill) likewise with chunked prefill,
        else whole prompts in passes of their own, ahead of the decodes (_schedule_default)."""
        chunked = printed.chunked_prefill is not False
        return chunked, chunked

    def scheduler_defaults(self, setup: Setup) -> tuple[int, int]:
        return scheduler_defaults(setup.total, setup.gpu, setup.rules.scheduler, setup.settings.entry_point)

    def chunked_prefill(self, setup: Setup, max_model_len: int) -> bool:
        """V1 always schedules with chunked prefill."""
        return True

    def default_batched_tokens(self, setup: Setup, max_model_len: int, default: int, max_num_seqs: int,
                               chunked: bool) -> int:
        """V1: the default is clamped to max_num_seqs x max_model_len."""
        return min(default, max_num_seqs * max_model_len)

    def stage_layout(self, setup: Setup, stage: Stage) -> KVLayout:
        o = setup.options
        return kv_layout(setup.dep, stage, o.block_size, o.max_model_len, o.max_num_batched_tokens,
                         setup.rules.hybrid_group_ratio, setup.rules.default_block_size,
                         VMM_GRANULE if self.extensible(setup) else 0, hybrid_manager(setup))

    def extensible(self, setup: Setup) -> bool:
        """Whether the release sizes the pool after warmup (V1_RULES kv_sizing; >= 0.34 by default, unless
        --no-enable-extensible-kv-cache or a KV pool given outright, as --kv-cache-memory does)."""
        return (setup.rules.kv_sizing == "extensible" and setup.settings.extensible_kv_cache is not False
                and not setup.pool_given)

    @staticmethod
    def forward_counted(setup: Setup) -> bool:
        """Whether the profile's forward peak is its eager count, with no fitted factor: --enforce-eager also turns
        torch.compile off (config/__init__.py 0.10.1.1 __post_init__: NO_COMPILATION; config/vllm.py 0.19.0:
        CompilationMode.NONE), and Model Runner V2's profile_run dummy-runs the model with skip_attn=True
        (v1/worker/gpu/model_runner.py, read in 0.26.0; the earlier V2 releases assumed alike): no attention
        workspace beside the widest activation (row 174 of benchmarks/engine_logs.csv, 0.26: 1.06 GiB logged
        against 1.054 counted)."""
        return setup.options.enforce_eager or runs_v2(setup.rules, setup.dep.model, setup.settings)

    def overheads(self, setup: Setup, stage: Stage) -> list[Term]:
        """Non-torch memory, the profile's activation peak and (where subtracted) the CUDA-graph estimate; under
        the extensible KV cache (>= 0.34) the CUDA-graph pool and the margin it keeps free (extensible_terms)."""
        dep, o, gpu = setup.dep, setup.options, setup.gpu
        nt, nt_source = non_torch(setup.rules.non_torch_tp1, dep.tp, dep.pp, bool(gpu and gpu.nvswitch))
        rule = setup.rules.moe_workspace
        persistent = rule >= 0 and persistent_moe_kernel(dep)
        act, act_source = activation_peak(dep, stage, o.max_num_batched_tokens, o.max_num_seqs,
                                          self.sampler_for(setup), eager=self.forward_counted(setup),
                                          hidden_rows=setup.rules.hidden_rows,
                                          units=compute_units(gpu) if gpu else None,
                                          moe_persistent=persistent, moe_chunk=rule or None)
        act, act_source = encoder_profile(setup, stage, act, act_source)
        if self.extensible(setup):
            workspace = moe_workspace(dep, stage, o.max_num_batched_tokens, rule or None) if persistent else 0
            return extensible_terms(setup, stage, Term(TermKind.NON_TORCH, nt, nt_source), act, act_source,
                                    workspace)
        terms = [Term(TermKind.NON_TORCH, nt, nt_source), Term(TermKind.ACTIVATION, act, act_source)]
        if setup.rules.runner_buffers:
            terms.append(runner_buffers(dep, o.max_num_batched_tokens))
        estimated = setup.rules.cudagraph_estimate
        if estimated and not setup.rules.cudagraph_estimate_v2 and runs_v2(setup.rules, dep.model, setup.settings):
            estimated = False
            if stage.index == 0 and not o.enforce_eager:
                setup.notes.append("Model Runner V2 estimates no CUDA-graph memory before 0.29 (gpu/model_runner.py "
                                   "profile_cudagraph_memory returns 0): the graphs are captured after the pool is "
                                   "sized, in the memory left beside it")
        cg, cg_source = cudagraph(estimated, o.enforce_eager, setup.settings.cudagraph_estimate_gib)
        if cg:
            terms.append(Term(TermKind.CUDA_GRAPHS, cg, cg_source))
        return terms

    def suggestions(self, dep: Deployment, util: float | None, scenario: Scenario,
                    settings: EngineSettings | None = None) -> list[Change]:
        """The engine's flags (Engine.suggestions), and FlashInfer's top-k / top-p sampler where the log shows the
        sort ran in its place (sampler_of): installed (0.9-0.11, where it is the default) or switched on
        (VLLM_USE_FLASHINFER_SAMPLER=1, 0.11.1-0.16, where the release sorts), it holds 12 B per entry, not 36."""
        out = super().suggestions(dep, util, scenario, settings)
        if settings is None or settings.flashinfer_sampler is not False:
            return out
        rules = self.rules_for(self.version(settings))
        if not isinstance(rules, V1Rules) or sampler_of(rules, dep.model, settings) is not SORT or sampler_of(
                rules, dep.model, replace(settings, flashinfer_sampler=True)) is not FLASHINFER:
            return out
        how = ("pip install flashinfer-python (a release this vLLM takes: < 0.2.3 in 0.8.5, >= 0.2.3 from 0.9)"
               if rules.sampler is FLASHINFER else
               "VLLM_USE_FLASHINFER_SAMPLER=1 (with flashinfer-python installed)")
        out.append(Change(f"{how}: FlashInfer's top-k/top-p sampler instead of the sort",
                          settings=(("flashinfer_sampler", True),)))
        return out

    def sampler_for(self, setup: Setup) -> SamplerPeak:
        """The release's sampler dummy run for this model and what the log shows of it (sampler_of)."""
        return sampler_of(setup.rules, setup.dep.model, setup.settings)

    def mxfp4_layout(self, setup: Setup) -> str:
        """The MoE backend that holds mxfp4 experts, by compute capability (fused_moe/oracle/mxfp4.py 0.19.0,
        quantization/mxfp4.py 0.14.0 get_mxfp4_backend, default env): FlashInfer TRT-LLM on SM 10.x, Triton on
        SM 9.0-10.x otherwise (Hopper), Marlin elsewhere (from SM 7.5, and SM 11-12); a device without an NVIDIA
        capability keeps Marlin's shapes (ROCm's 256 / 256 rounding not read in full)."""
        logged = setup.settings.mxfp4_backend  # a log that names it (explain): a pip install without
        if logged == "marlin":  # triton_kernels runs Marlin on Hopper too (vllm-project/vllm#23278, 0.10.1)
            return "marlin"
        if logged == "triton":
            return setup.rules.mxfp4_triton
        cap = compute_capability(setup.gpu) if setup.gpu is not None else None
        if cap is None or cap < 90 or cap >= 110:
            return "marlin"
        return "trtllm" if cap >= 100 else setup.rules.mxfp4_triton

    def budget(self, setup: Setup, stage: Stage, layout: KVLayout, fraction: float) -> Budget:
        weights, w_source = loaded_weights(setup.dep, stage, self.mxfp4_layout(setup))
        # `Model loading took` is a difference of torch.cuda.memory_allocated (worker/model_runner.py and
        # v1/worker/gpu_model_runner.py DeviceMemoryProfiler; platforms/cuda.py get_current_memory_usage, read in
        # 0.8.4, 0.20.0 and 0.26.0): the allocator's blocks, not the tensors' bytes
        offload = setup.settings.cpu_offload_gb * GiB
        rounding, r_source = allocator_rounding(setup.dep, stage, offload)
        weights += rounding
        w_source = w_source[:-2] + f" + {r_source} B"
        if setup.settings.max_loras:
            lora, lora_source = lora_bytes(setup.dep, stage, setup.settings)
            weights += lora
            w_source += f" + {lora:,} B of LoRA slots ({lora_source})"
        if setup.settings.cpu_offload_gb:
            off = offloaded_bytes(setup.dep, stage, setup.settings.cpu_offload_gb)
            weights -= off
            w_source += (f" - {off:,} B held in CPU memory (--cpu-offload-gb {setup.settings.cpu_offload_gb:g}: "
                         "whole parameters of the decoder layers in order until the GiB are reached)")
            if stage.index == 0:
                setup.notes.append(f"--cpu-offload-gb {setup.settings.cpu_offload_gb:g}: {off / GiB:.2f} GiB of "
                                   "weights per GPU in pinned CPU memory, read over the host link every pass "
                                   "(the speed estimates add that read)")
        terms = [Term(TermKind.WEIGHTS, weights, f"as loaded: {w_source}"), *self.overheads(setup, stage)]
        if setup.reserve:
            terms.append(Term(TermKind.RESERVE, setup.reserve, "--reserve"))
        budget = Budget.of(setup.total, fraction, math.ceil(setup.total * fraction), terms)
        return replace(budget, host_weights=off) if setup.settings.cpu_offload_gb else budget

    def pool(self, setup: Setup, layouts: list[KVLayout], budgets: list[Budget]) -> BlockPool:
        return BlockPool(budgets, layouts)

    def context(self, setup: Setup, pool: Pool) -> tuple[int | None, LimitedBy, bool]:
        return setup.options.max_model_len, LimitedBy.MAX_MODEL_LEN, True

    def request_cap(self, setup: Setup, pool: Pool) -> int | None:
        return setup.options.max_num_seqs

    def startup(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Startup:
        """vLLM's startup checks, in the order it runs them: free memory at startup (>= 0.9.1), KV memory > 0, and
        one request of max_model_len in the KV cache of every worker (v1/core/kv_cache_utils.py
        _check_enough_kv_cache_memory: needed = layers per group x page x the blocks each group needs at
        max_model_len, which is blocks_per_request(max_model_len) x bytes per block)."""
        assert isinstance(pool, BlockPool)
        refusal = self.capability_refusal(setup) or self.free_memory_refusal(setup)
        if refusal:
            return Startup(False, refusal)
        mml = setup.options.max_model_len
        for budget, layout in zip(budgets, pool.layouts, strict=True):
            available = budget.kv_pool
            if available <= 0:
                return Startup(False, f"{self.label} will not start: no available memory for the cache blocks "
                                      f"(KV cache memory {fmt_gib(available)}); raise --gpu-memory-utilization, "
                                      "use more GPUs or smaller weights", 0)
            needed = layout.blocks_per_request(mml) * layout.bytes_per_block()
            blocks = layout.num_blocks(available)  # whole blocks (in whole granules under the extensible cache)
            if layout.blocks_per_request(mml) > blocks:
                longest = min(layout.longest(1, blocks) or mml, mml)
                return Startup(False, f"{self.label} will not start: one request of max_model_len {mml:,} needs "
                                      f"{fmt_gib(needed)} of KV cache, more than the {fmt_gib(available)} available; "
                                      f"the largest max_model_len that starts is {longest:,}", longest)
        return Startup(True, longest_context=mml)

    def capability_refusal(self, setup: Setup) -> str | None:
        """The weight format's quantization method needs a minimum compute capability (V1_RULES)."""
        fmt, r = setup.dep.weight_format, setup.rules
        cap = compute_capability(setup.gpu) if setup.gpu is not None else None
        if cap is None:
            return None
        rule = next((x for x in r.min_capability if fmt.name.startswith(x[0])), None) if fmt.quantized else None
        if rule is not None and cap < rule[2]:
            return (f"{self.label} will not start: {fmt.name} ({rule[1]}) needs compute capability "
                    f"{rule[2] / 10:.1f} or newer; the {setup.gpu.alias} is {cap / 10:.1f}")
        if setup.dep.kv_dtype == "fp8" and cap < r.kv_fp8_min_capability:
            return (f"{self.label} will not start: an fp8 KV cache needs compute capability "
                    f"{r.kv_fp8_min_capability / 10:.1f} or newer (kvplan's assumption); the {setup.gpu.alias} is "
                    f"{cap / 10:.1f}")
        return None

    def free_memory_refusal(self, setup: Setup) -> str | None:
        """>= 0.9.1: ceil(total x util) must be free when the worker starts. kvplan counts only the CUDA context
        as in use then (NCCL buffers at TP > 1 and other processes take more: vLLM may refuse earlier)."""
        if not setup.rules.free_memory_check or setup.pool_given or not setup.total or self.extensible(setup):
            return None  # 0.34's extensible KV cache skips the check (v1/worker/utils.py request_memory)
        requested = math.ceil(setup.total * setup.fraction)
        free = setup.total - round(CUDA_CONTEXT_GIB * GiB)
        if requested <= free:
            return None
        return (f"{self.label} will not start: free memory at startup (at most {fmt_gib(free)} of "
                f"{fmt_gib(setup.total)}, less the {CUDA_CONTEXT_GIB} GiB CUDA context) is less than "
                f"--gpu-memory-utilization {setup.fraction:g} x total = {fmt_gib(requested)}; use at most "
                f"{math.floor(free / setup.total * 100) / 100:.2f}")

    def printed_tokens(self, setup: Setup, pool: BlockPool) -> tuple[int, float]:
        """("GPU KV cache size" tokens, "Maximum concurrency" x) as the release prints them."""
        layout, mml = pool.layout, setup.options.max_model_len
        concurrency = pool.blocks / layout.blocks_per_request(mml)
        if setup.rules.tokens_from_concurrency:
            return int(concurrency * mml), concurrency
        return pool.blocks // layout.n_groups * layout.min_block_size, concurrency

    def printed(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Printed:
        assert isinstance(pool, BlockPool)
        o = setup.options
        tokens, concurrency = self.printed_tokens(setup, pool)
        cpu_blocks = self.cpu_blocks(setup, pool)
        tier = self.cpu_tier(setup, pool)
        layout = pool.layout
        if layout.n_groups > 1:  # why a hybrid model holds fewer requests than its pool suggests
            setup.notes.append(
                f"{layout.n_groups} KV groups of {layout.group_size} layers share every block: vLLM counts a request "
                f"of {o.max_model_len:,} tokens at its worst case in each group, "
                f"{layout.blocks_per_request(o.max_model_len):,} blocks of the {pool.blocks:,} the pool holds "
                f"(sliding-window groups at window - 1 + {o.max_num_batched_tokens:,} batched tokens)")
        return Printed(
            engine=self.name, version=setup.version_text, total_bytes=setup.total, total_source=setup.total_source,
            max_model_len=o.max_model_len, block_size=pool.layout.block_size, num_blocks=pool.blocks,
            kv_groups=pool.layout.n_groups, kv_tokens=tokens, max_concurrency=concurrency,
            max_num_seqs=o.max_num_seqs, max_num_batched_tokens=o.max_num_batched_tokens, notes=tuple(setup.notes),
            cpu_blocks=cpu_blocks, cpu_tier_tokens=tier[0] if tier else None,
            cpu_tier_pinned_bytes=tier[1] if tier else None, chunked_prefill=o.chunked_prefill,
        )

    def cpu_tier(self, setup: Setup, pool: BlockPool) -> tuple[int, int] | None:
        """(tokens, pinned bytes per GPU) of the CPU KV tier --kv-offloading-size GiB makes (native backend, read
        in 0.19.0: config/vllm.py _post_init_kv_transfer_config -> OffloadingConnector with cpu_bytes_to_use = size
        x 2^30; v1/kv_offload/cpu/spec.py: blocks = cpu_bytes_to_use // (block bytes of every layer x world
        size); v1/kv_offload/worker/cpu_gpu.py pins one tensor of blocks x block bytes per rank in the cross-layer
        layout, which PyTorch's pinned allocator rounds up to a power of two). The GPU pool is unchanged: the
        connector is made after the KV cache is sized (public row LMCache#1739: 42,656 tokens, as without it)."""
        size = setup.settings.kv_offloading_size
        if not size:
            return None
        block = pool.layout.bytes_per_block()
        ranks = setup.dep.gpus_per_replica
        if setup.settings.kv_offloading_backend == "lmcache":
            return self._lmcache_tier(setup, size, block // pool.layout.block_size, ranks)
        blocks = int(size * GiB // (block * ranks))
        tokens = blocks * pool.layout.block_size
        pinned = 1 << max(0, (blocks * block - 1).bit_length()) if blocks else 0
        setup.notes.append(f"--kv-offloading-size {size:g}: a CPU tier of {tokens:,} tokens ({blocks:,} blocks) beside "
                           f"the GPU pool, which it does not shrink; {fmt_gib(pinned)} of pinned host memory per GPU "
                           f"({fmt_gib(pinned * ranks)} per replica, power-of-two rounded); prefix hits served from "
                           "it still cost a copy back to the GPU")
        return tokens, pinned

    def _lmcache_tier(self, setup: Setup, size: float, token_bytes: int, ranks: int) -> tuple[int, int]:
        """--kv-offloading-backend lmcache (config/vllm.py 0.19.0 _post_init_kv_transfer_config: LMCacheConnectorV1
        with lmcache.max_local_cpu_size = size / (TP x PP) GB per rank); LMCache 0.5.6 local_cpu_backend.py
        initialize_allocator pins int(GB x 1024^3) bytes per rank and stores KV in chunks of chunk_size = 256 tokens
        (v1/config.py) of this rank's per-token bytes over all its layers."""
        per_rank = int(size / ranks * GiB)
        chunk = LMCACHE_CHUNK * token_bytes
        tokens = per_rank // chunk * LMCACHE_CHUNK if chunk else 0
        setup.notes.append(f"--kv-offloading-size {size:g} --kv-offloading-backend lmcache: LMCache's CPU tier of "
                           f"{tokens:,} tokens ({tokens // LMCACHE_CHUNK:,} chunks of {LMCACHE_CHUNK}) beside the GPU "
                           f"pool, which it does not shrink; {fmt_gib(per_rank)} of pinned host memory per GPU "
                           f"({fmt_gib(per_rank * ranks)} per replica)")
        return tokens, per_rank

    def cpu_blocks(self, setup: Setup, pool: BlockPool) -> int | None:
        """V1 allocates no CPU swap: a preempted request is recomputed (v1/core/sched/scheduler.py _preempt_request
        frees its blocks); --swap-space is accepted and unused."""
        if setup.settings.swap_space:
            setup.notes.append(f"--swap-space {setup.settings.swap_space:g}: {self.label} V1 allocates no CPU swap "
                               "(preempted requests are recomputed); the flag changes nothing here")
        return None

    def derivation(self, scenario: Scenario) -> list[str]:
        return block_derivation(scenario)

    def launch_command(self, launch: Launch) -> str:
        if launch.entry_point == "llm":
            return self.llm_call(launch)
        return super().launch_command(launch)

    def node_command(self, launch: Launch, node: int | str, head: str) -> str:
        """`vllm serve` on node `node` of a replica (docs/serving/data_parallel_deployment.md,
        expert_parallel_deployment.md, distributed_serving.md; the flags from 0.9.0):
        - data-parallel attention: --tensor-parallel-size TP / D --data-parallel-size D --enable-expert-parallel;
          past one node each node runs --data-parallel-size-local of the ranks, the head with
          --data-parallel-address / --data-parallel-rpc-port, the others --headless --data-parallel-start-rank;
        - TP x PP past one node: the Ray backend, a Ray cluster first (ray start), vllm serve on the head only;
        - replicas of one node or less: --data-parallel-size R."""
        groups, attn_tp = launch.dp_attention, launch.tp // launch.dp_attention
        hybrid = launch.settings.chunked_local_hybrid if launch.settings else None
        env = "" if hybrid is None else f"VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE={int(hybrid)} "
        parts = [f"{env}vllm serve {launch.model()}", f"--tensor-parallel-size {attn_tp}"]
        parts += [f"--pipeline-parallel-size {launch.pp}"] if launch.pp > 1 else []
        ray = launch.nodes > 1 and groups == 1
        if groups > 1:
            parts += [f"--data-parallel-size {groups}"]
            parts += ["--enable-expert-parallel"] if launch.expert_parallel else []
            if launch.nodes > 1:
                local = launch.gpus_per_node // attn_tp
                start = f"$(({node} * {local}))" if isinstance(node, str) else str(node * local)
                parts += [f"--data-parallel-size-local {local}", f"--data-parallel-address {head}",
                          "--data-parallel-rpc-port 13345"]
                parts += [] if node == 0 else ["--headless", f"--data-parallel-start-rank {start}"]
        elif launch.replicas > 1 and not ray:
            parts += [f"--data-parallel-size {launch.replicas}"]
        parts += ["--distributed-executor-backend ray"] if ray else []
        parts += [f"--no-{name.replace('_', '-')}" if value is False else
                  f"--{name.replace('_', '-')}" + ("" if value is True else f" {_flag_value(value)}")
                  for name, value in engine_args(launch)]
        line = " ".join(parts)
        if ray:  # a Ray cluster over the replica's nodes; vllm serve runs on the head and uses them all
            return (f"ray start --head --port 6379 && {line}" if node == 0
                    else f"ray start --address {head}:6379 --block")
        return line + (f"  # one per replica: {launch.replicas} in all" if launch.replicas > 1 and (groups > 1 or
                                                                                                 launch.nodes > 1)
                       else "")

    def llm_call(self, launch: Launch) -> str:
        """The offline `LLM(...)` call with the same settings (one replica: the class runs one engine)."""
        args = [f"model={launch.model()!r}", f"tensor_parallel_size={launch.tp}"]
        args += [f"pipeline_parallel_size={launch.pp}"] if launch.pp > 1 else []
        args += [f"{name}={value:g}" if isinstance(value, float) else f"{name}={value!r}"
                 for name, value in engine_args(launch)]
        call = f"LLM({', '.join(args)})"
        return call + (f"  # one per replica: {launch.replicas} in all" if launch.replicas > 1 else "")


@derived
def _has_tower(model: ModelSpec) -> bool:
    return any(t.role in TOWER_ROLES for t in model.tensors)


def persistent_moe_kernel(dep: Deployment) -> bool:
    """Whether the routed experts run through the modular Triton kernel whose workspace persists (>= 0.14):
    unquantized and fp8 experts (read in 0.19.0); mxfp4 (gpt-oss: triton_kernels, per-call buffers) and the
    other formats' kernels are kept per call (not read)."""
    fmt = dep.weight_format
    return dep.model.moe is not None and (not fmt.quantized or fmt.tensor_math == "fp8")


def tiled_vision_peak(tower: VisionInput, images: int, tp: int = 1) -> int:
    """Bytes per GPU live at the peak of V0's profile through a tiled vision tower (Mllama), `images` dummy images
    at once (enc_dec_model_runner.py profile_run 0.6.6-0.10: max_num_seqs sequences, each with
    --limit-mm-per-prompt images, default 1; mllama.py: every image of max_num_tiles tiles):
        per image  2 x tiles x channels x S^2 x 4 B   pixel_values in fp32, twice (the input and the padded copy)
                 + 2 x (tiles x P)^2                 the dense bf16 aspect-ratio mask over every tile's patches
                 + 2 x tiles x P x (4 x D + 2 x I)   four bf16 hidden states of width D and the MLP's fc1 output
                                                     and its activation (I wide, split over TP)
    with S the tile size, P the patches per tile padded to 8. Not derived line by line: a replay of the released
    forward's tensor lifetimes keeps more alive (about 60 GiB at 128 images: the five saved intermediate states,
    the stacked copy, the 7680-wide concatenation), yet the one V0 log of the allocator's peak
    (vllm-project/vllm#12126, 0.7 branch, 128 images) printed 36.63 GiB, which this set of terms gives to 1%.
    Held out: no second log of the allocator's peak exists (0.6.3's vllm#9630 measured free memory, with the
    caching allocator's reserve, instead)."""
    t, p = tower.tiles, tower.padded_patches
    per_image = (2 * t * tower.channels * tower.image_size ** 2 * 4 + 2 * (t * p) ** 2
                 + 2 * t * p * (4 * tower.hidden + 2 * -(-tower.intermediate // tp)))
    return images * per_image


def tiled_vision_source(tower: VisionInput, images: int, tp: int) -> str:
    return (f"{images:,} dummy images x (2 x {tower.tiles} x {tower.channels} x {tower.image_size}^2 x 4 B pixels "
            f"+ 2 x ({tower.tiles} x {tower.padded_patches})^2 B mask + 2 x {tower.tiles} x {tower.padded_patches} "
            f"x (4 x {tower.hidden} + 2 x {tower.intermediate}/{tp}) B states) = "
            f"{fmt_gib(tiled_vision_peak(tower, images, tp))} (max_num_seqs x images per prompt; a structural "
            "estimate matched to the one V0 log, vllm-project/vllm#12126, not confirmed by a second)")


V1_IMAGE_LIMIT = 999  # config/multimodal.py (0.11.0, 0.19.0; config.py 0.8.5): images per prompt by default in V1


def encoder_images(rule: str, tokens: int, batched: int, max_num_seqs: int, max_model_len: int, limit: int) -> int:
    """How many copies of the largest dummy image V1's profile runs through the tower at once
    (gpu_model_runner.py profile_run, v1/worker/utils.py / multimodal/encoder_budget.py MultiModalBudget): the
    encoder budget is max(max_num_batched_tokens, one image's tokens) (compute_mm_encoder_budget); that many
    tokens' worth of images, at most max_num_seqs x the images a prompt may hold. `rule` (V1_RULES
    encoder_items): "ceil" divides rounding up (0.8.5-0.9.2), "floor" rounds down with at least one (0.10.0),
    "per_prompt" also caps a prompt's images at max_model_len // tokens (at least one, 0.10.1 on)."""
    budget = max(batched, tokens)
    if rule == "ceil":
        return min(-(-budget // tokens), max_num_seqs * limit)
    per_prompt = limit if rule == "floor" else max(1, min(limit, max_model_len // tokens))
    return max(1, min(budget // tokens, max_num_seqs * per_prompt))


def encoder_bytes(tower: VisionInput, images: int, tp: int, dtype: float, pixel_bytes: float,
                  dense_mask: bool) -> tuple[int, int, int]:
    """Bytes per GPU of V1's encoder profile, `images` dummy images in one batch: (the pixels, which the V1
    runner's profile_run keeps until it returns; the tower's peak above them, the widest step of its eager
    forward, tiles x patches x max(attention step, MLP) live tensors as tower.attention_live / mlp_live count
    them, in the model dtype; the embeddings, images x tokens x out_width). `dense_mask`: a block-masked tower
    (Pixtral) attends through SDPA with a bf16 N x N mask over all N patches, alive through the tower, and
    PyTorch pads a copy of it to a multiple of 8 columns inside each call when N is not one."""
    d, i = tower.hidden, -(-tower.intermediate // tp)
    whole, split = tower.attention_live
    mlp_d, mlp_i = tower.mlp_live
    n = images * tower.tiles * tower.patches
    attention, mlp = n * (whole * d + split * -(-d // tp)) * dtype, n * (mlp_d * d + mlp_i * i) * dtype
    if dense_mask and tower.block_mask:
        mask = 2 * n * n
        attention, mlp = attention + mask + (2 * n * (n + 8 - n % 8) if n % 8 else 0), mlp + mask
    pixels = images * tower.tiles * tower.channels * tower.image_size ** 2 * pixel_bytes
    return round(pixels), round(max(attention, mlp)), round(images * tower.tokens * tower.out_width * dtype)


def encoder_profile(setup: Setup, stage: Stage, act: int, act_source: str) -> tuple[int, str]:
    """The activation term with V1's encoder profile (gpu_model_runner.py profile_run, read in 0.8.5, 0.10.0,
    0.11.0, 0.12.0, 0.14.0 and 0.19.0; gpu/model_runner.py with mm/encoder_runner.py in 0.29.0): before the text
    model's dummy run the tower runs on encoder_images copies of its largest dummy image, and the outputs stay
    in the encoder cache until the sampler's run is done, so the peak is max(the tower's, the text model's +
    what is kept). The V1 runner keeps the batched pixels alive too (a local of profile_run); Model Runner V2
    frees them when execute_mm_encoder returns. 0.11-0.13 copy each output into a zeroed (budget, width)
    tensor, the originals' storage kept by the loop's last view. Stage 0 only (the tower sits beside the
    embeddings)."""
    dep, o, r = setup.dep, setup.options, setup.rules
    if stage.index != 0 or not _has_tower(dep.model):
        return act, act_source
    limit = setup.settings.images_per_prompt
    if limit == 0:
        setup.notes.append("--limit-mm-per-prompt image=0: the profile runs no image through the tower")
        return act, act_source
    tower = dep.model.vision
    if tower is None:
        tower_profile_note(setup)
        return act, act_source
    limit = V1_IMAGE_LIMIT if limit is None else limit
    tokens = tower.prompt_tokens if r.encoder_tokens == "placeholder" else tower.tokens
    images = setup.settings.encoder_images or encoder_images(r.encoder_items, tokens, o.max_num_batched_tokens,
                                                             o.max_num_seqs, o.max_model_len, limit)
    dtype = DTYPE_BYTES[dep.activation_dtype]
    pixel_bytes = 4 if r.encoder_pixels == "processor" and tower.pixels_fp32 else dtype
    pixels, tower_peak, embeddings = encoder_bytes(tower, images, dep.tp, dtype, pixel_bytes,
                                                   r.vit_mask == "dense")
    budget = max(o.max_num_batched_tokens, tokens)
    rows = {"budget": budget, "placeholder": tower.prompt_tokens}.get(r.encoder_expand, 0)
    expanded = tower.tokens < rows
    if expanded:  # the zeroed copies, beside the originals' storage
        embeddings += round(images * rows * tower.out_width * dtype)
    v2 = runs_v2(r, dep.model, setup.settings)
    kept = embeddings + (0 if v2 else pixels)
    peak = max(pixels + tower_peak, act + kept)
    where = "the tower's own" if pixels + tower_peak > act + kept else "the text model's"
    count = ("as the log prints" if setup.settings.encoder_images else
             f"encoder budget {budget:,} tokens / {tokens:,} per image, at most {o.max_num_seqs} x {limit} per prompt")
    source = (f"max(the vision tower's profile on {images:,} dummy images ({count}): pixels {fmt_gib(pixels)} "
              f"+ tower {fmt_gib(tower_peak)} ({tower.tiles} x {tower.patches:,} patches per image); "
              f"{act_source} + kept {fmt_gib(kept)} ({images:,} x {tower.tokens:,} embeddings x "
              f"{tower.out_width:,}{f' and as many of {rows:,} zeroed' if expanded else ''}"
              f"{'' if v2 else ' and the pixels'})): {where} peak")
    return peak, source


def runner_buffers(dep: Deployment, tokens: int) -> Term:
    """The V1 model runner's persistent input buffers, allocated when it is built (v1/worker/gpu_model_runner.py
    GPUModelRunner.__init__, read in 0.8.4 and 0.8.5): input_ids int32 and positions int64 per token of
    max_num_batched_tokens, and inputs_embeds of tokens x hidden in the model dtype. 0.8.0-0.9.0.x subtract
    torch's absolute allocated peak (gpu_worker.py determine_available_memory), so they count; from 0.9.1 the
    profile's baseline holds them (V1_RULES runner_buffers)."""
    dtype = DTYPE_BYTES[dep.activation_dtype]
    size = tokens * (4 + 8 + dep.model.hidden_size * dtype)
    return Term(TermKind.BUFFERS, size, f"{tokens:,} tokens x (4 + 8 + {dep.model.hidden_size:,} x {dtype:g}) B: "
                "input_ids, positions and inputs_embeds (gpu_model_runner.py 0.8.4 / 0.8.5 __init__)")


def hybrid_manager(setup: Setup) -> bool:
    """Whether vLLM's hybrid KV cache manager runs (config/vllm.py VllmConfig.__post_init__, read in 0.10.1.1,
    0.12.0 and 0.19.0): off when the launch disables it (--disable-hybrid-kv-cache-manager, or a
    --kv-transfer-config connector, which turns it off), and for a chunked-local-attention model (Llama-4) with
    EAGLE drafting or where the release turns it off by default (V1_RULES chunked_hybrid) and the launch does not
    set VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE (EngineSettings.chunked_local_hybrid). Said in the notes
    for models it changes (windowed layers beside full attention)."""
    layers = setup.dep.model.layers
    windowed = any(layer.kv.retention in (Retention.SLIDING, Retention.CHUNKED) for layer in layers)
    if not windowed:
        return True
    chunked = any(layer.kv.retention is Retention.CHUNKED for layer in layers)
    s = setup.settings
    why = None
    if s.disable_hybrid_kv_cache_manager:
        why = "the launch turns the hybrid KV cache manager off (--disable-hybrid-kv-cache-manager, or a connector)"
    elif chunked and s.speculative_method in ("eagle", "eagle3"):
        why = "vLLM turns the hybrid KV cache manager off for chunked local attention with EAGLE (config/vllm.py)"
    elif chunked and not (setup.rules.chunked_hybrid if s.chunked_local_hybrid is None else s.chunked_local_hybrid):
        why = (f"vLLM {setup.version_text} turns the hybrid KV cache manager off for chunked local attention "
               "(config/vllm.py; VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1 keeps it, the default from "
               "0.14)")
    if why and not any("hybrid KV cache manager off" in n for n in setup.notes):
        setup.notes.append(f"{why}: every layer caches the whole context (kv_cache_utils.py "
                           "unify_hybrid_kv_cache_specs)")
    return why is None


def tower_profile_note(setup: Setup) -> None:
    """Towers kvplan has no dummy-image model for (VisionInput: audio towers, vision families not read): V1's
    profile runs them too, and the activation term leaves them out, said instead of guessed."""
    setup.notes.append("the profile also runs the model's vision / audio tower on dummy inputs: kvplan does not "
                       "model this tower's peak, so the activation term leaves it out and the KV pool shown is an "
                       "upper bound (--limit-mm-per-prompt image=0 turns the tower's profile off)")


def engine_args(launch: Launch) -> list[tuple[str, object]]:
    """The engine settings a launch sets, as EngineArgs names them: `vllm serve` writes --name-with-dashes (a flag
    alone for True, --no-name for False), the LLM class name=value."""
    out: list[tuple[str, object]] = [("gpu_memory_utilization", float(launch.util)),
                                     ("max_model_len", launch.max_model_len)]
    out += [("max_num_seqs", launch.max_running)] if launch.max_running else []
    out += [("max_num_batched_tokens", launch.max_batched_tokens)] if launch.max_batched_tokens else []
    out += [("block_size", launch.block_size)] if launch.block_size else []
    out += [("enforce_eager", True)] if launch.enforce_eager else []
    out += [("kv_cache_dtype", "fp8")] if launch.kv_dtype == "fp8" else []
    out += [("quantization", "fp8")] if launch.quant == "fp8" else []
    return out + (feature_args(launch.settings) if launch.settings is not None else [])


def feature_args(s: EngineSettings) -> list[tuple[str, object]]:
    """The serving features' EngineArgs (LoRA, weight and KV offload, swap, speculative decoding), those set."""
    out: list[tuple[str, object]] = []
    if s.max_loras:
        out += [("enable_lora", True), ("max_loras", s.max_loras), ("max_lora_rank", s.max_lora_rank)]
        out += [("lora_dtype", s.lora_dtype)] if s.lora_dtype != "auto" else []
    out += [("cpu_offload_gb", float(s.cpu_offload_gb))] if s.cpu_offload_gb else []
    out += [("swap_space", float(s.swap_space))] if s.swap_space is not None else []
    if s.kv_offloading_size:
        out += [("kv_offloading_size", float(s.kv_offloading_size)), ("kv_offloading_backend", s.kv_offloading_backend)]
    if s.speculative_method:
        spec: dict[str, object] = {"method": s.speculative_method, "num_speculative_tokens": s.num_speculative_tokens}
        spec |= {"model": s.draft_model} if s.draft_model else {}
        out += [("speculative_config", spec)]
    out += [("limit_mm_per_prompt", {"image": s.images_per_prompt})] if s.images_per_prompt is not None else []
    out += [("enable_extensible_kv_cache", False)] if s.extensible_kv_cache is False else []
    out += [("disable_hybrid_kv_cache_manager", True)] if s.disable_hybrid_kv_cache_manager else []
    return out


def _flag_value(value: object) -> str:
    """A value on a `vllm serve` line: floats as %g, JSON objects quoted for the shell."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return shlex.quote(json.dumps(value))
    return str(value)


class VLLMV0(VLLM):
    """vLLM's V0 engine (before 0.11; V0 and V1 coexist in 0.8-0.10, so the version alone does not pick).

    Its rules are V0_RULES, so it overrides every V1 hook that reads V1_RULES: stage_layout, overheads,
    printed_tokens and startup."""

    name = "vllm-v0"
    label = "vLLM V0"
    default_version = "0.6.4"  # a V0 release of the public V0 logs (vllm-project/vllm#10517)
    newest_read = "0.10.2"  # V0 was removed in 0.11.0
    rule_table = V0_RULES  # type: ignore[assignment]
    csv_names = ("vllm v0",)
    log_wordings = (V0_LOG,)
    plans_fit = False
    version_assumed_note = False
    speculative_methods = frozenset()  # V0's draft worker sized its own cache: not modelled
    kv_offload_tier = False  # V0 had no offloading connector
    extensible_kv_cache = False

    def mxfp4_layout(self, setup: Setup) -> str:
        return "marlin"  # V0 served no mxfp4 MoE (gpt-oss came with V1, 0.10.1)
    swap_default_gib = 4.0  # EngineArgs.swap_space (engine/arg_utils.py 0.4-0.10)

    def fraction(self, setup: Setup, util: float | None) -> float:
        """V0's default gpu_memory_utilization was 0.9 in every release (engine/arg_utils.py 0.4-0.10)."""
        return Engine.fraction(self, setup, util)

    def describe(self) -> dict[str, Any]:
        return Engine.describe(self)

    def cpu_blocks(self, setup: Setup, pool: BlockPool) -> int | None:
        """The swap space in blocks, allocated in pinned CPU memory for preempted requests' KV: int(swap_space x
        2^30 // the bytes of one block over every layer) (worker/worker.py determine_num_available_blocks:
        num_cpu_blocks = int(cache_config.swap_space_bytes // cache_block_size); CacheEngine allocates them)."""
        gib = self.swap_default_gib if setup.settings.swap_space is None else setup.settings.swap_space
        blocks = int(gib * GiB // pool.layout.bytes_per_block())
        if setup.settings.swap_space is not None:
            setup.notes.append(f"--swap-space {gib:g} GiB per GPU: {blocks:,} CPU blocks of pinned host memory "
                               f"({fmt_gib(blocks * pool.layout.bytes_per_block())} per GPU, "
                               f"{fmt_gib(blocks * pool.layout.bytes_per_block() * setup.dep.gpus_per_replica)} "
                               "per replica)")
        return blocks
    # kvplan models V0 without fp8 KV caches
    flags: ClassVar[dict[str, str]] = {k: v for k, v in VLLM.flags.items() if k != "kv_fp8"}

    def scheduler_defaults(self, setup: Setup) -> tuple[int, int]:
        """V0's max_num_seqs (V0_RULES) and the 2048-token floor of SchedulerConfig
        (_DEFAULT_MAX_NUM_BATCHED_TOKENS); neither depends on the entry point (engine/arg_utils.py 0.8.5
        _set_default_args_v0 reads no usage context)."""
        return 2048, setup.rules.max_num_seqs

    def default_batched_tokens(self, setup: Setup, max_model_len: int, default: int, max_num_seqs: int,
                               chunked: bool) -> int:
        """Without chunked prefill V0 profiles a whole max_model_len prompt (max(max_model_len, 2048)); with it,
        SchedulerConfig's chunked default (V0_RULES)."""
        return setup.rules.chunked_prefill_tokens if chunked else max(max_model_len, default)

    def chunked_prefill(self, setup: Setup, max_model_len: int) -> bool:
        """Above 32K tokens V0 switches chunked prefill on by itself where the release does (V0_RULES)."""
        r, m = setup.rules, setup.dep.model
        if not r.auto_chunked_prefill or max_model_len <= V0_LONG_CONTEXT:
            return False
        sliding = any(layer.kv.window for layer in m.layers)
        multimodal = any(t.role in TOWER_ROLES for t in m.tensors)
        return not sliding and (r.auto_chunked_prefill_multimodal or not multimodal)

    def stage_layout(self, setup: Setup, stage: Stage) -> KVLayout:
        return v0_layout(setup.dep, stage, setup.options.block_size)

    def overheads(self, setup: Setup, stage: Stage) -> list[Term]:
        dep, o, gpu = setup.dep, setup.options, setup.gpu
        nt, nt_source = non_torch(setup.rules.non_torch, dep.tp, dep.pp, bool(gpu and gpu.nvswitch))
        act, act_source = activation_peak(dep, stage, o.max_num_batched_tokens, o.max_num_seqs,
                                          self.sampler_for(setup), eager=True, hidden_rows="rows")
        cross = any(layer.kv.retention is Retention.ENCODER for layer in dep.model.layers)
        tower = dep.model.vision if setup.rules.tiled_vision_profile and cross else None
        if tower is not None and stage.index == 0:
            per_prompt = setup.settings.images_per_prompt
            images = o.max_num_seqs * (1 if per_prompt is None else per_prompt)
            peak = tiled_vision_peak(tower, images, dep.tp)
            if peak > act:
                act, act_source = peak, (f"the vision tower's profiling peak, above the text model's "
                                         f"({fmt_gib(act)}): {tiled_vision_source(tower, images, dep.tp)}")
        elif stage.index == 0 and _has_tower(dep.model):
            tower_profile_note(setup)
        return [Term(TermKind.NON_TORCH, nt, nt_source), Term(TermKind.ACTIVATION, act, act_source)]

    def sampler_for(self, setup: Setup) -> SamplerPeak:
        return setup.rules.sampler

    def printed_tokens(self, setup: Setup, pool: BlockPool) -> tuple[int, float]:
        tokens = pool.blocks * pool.layout.block_size
        return tokens, tokens / setup.options.max_model_len

    def startup(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Startup:
        """V0's checks: the scheduler's max_num_batched_tokens >= max_model_len without chunked prefill
        (config.py SchedulerConfig._verify_args), blocks > 0 and max_model_len <= blocks x block size
        (worker/worker.py raise_if_cache_size_invalid)."""
        assert isinstance(pool, BlockPool)
        o = setup.options
        if not o.chunked_prefill and o.max_num_batched_tokens < o.max_model_len:
            return Startup(False, f"{self.label} will not start: max_num_batched_tokens "
                                  f"({o.max_num_batched_tokens:,}) is smaller than max_model_len "
                                  f"({o.max_model_len:,}) without chunked prefill; raise "
                                  "--max-num-batched-tokens or lower --max-model-len", o.max_num_batched_tokens)
        tokens = pool.blocks * pool.layout.block_size
        if pool.blocks <= 0:
            return Startup(False, f"{self.label} will not start: no available memory for the cache blocks; raise "
                                  "--gpu-memory-utilization or use more GPUs", 0)
        if o.max_model_len > tokens:
            return Startup(False, f"{self.label} will not start: the model's max seq len ({o.max_model_len:,}) is "
                                  f"larger than the maximum number of tokens that can be stored in KV cache "
                                  f"({tokens:,}); lower --max-model-len to {tokens:,} or raise "
                                  "--gpu-memory-utilization", tokens)
        return Startup(True, longest_context=o.max_model_len)



