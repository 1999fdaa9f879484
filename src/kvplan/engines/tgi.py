"""Text Generation Inference's memory accounting, read from TGI's own source.

Source: github.com/huggingface/text-generation-inference at db931fcf42da018a3657580c64bf2720f167f9ab
(main, 2026-01-08, after v3.3.7), and the release tags named below.

TGI warms up with one prefill batch of `max_batch_prefill_tokens`, then sizes the cache from the free memory
(`server/text_generation_server/models/flash_causal_lm.py` FlashCausalLM.warmup):
    free = mem_get_info() free - (1 - CUDA_MEMORY_FRACTION x TGI_WIGGLE_ROOM) x total    (utils/import_utils.py)
    num_blocks = free // (layers x BLOCK_SIZE x kv_heads/shard x head_size x 2 x dtype) + the warmup batch's blocks
    max_batch_total_tokens = num_blocks x BLOCK_SIZE   (the router prints "Setting max batch total tokens to N",
                                                        backends/v3/src/lib.rs)
The warmup batch's blocks were allocated when `free` was measured, so they cancel out:
    tokens = floor((f x W x total - in use) / block bytes) x BLOCK_SIZE,
    in use = CUDA context + NCCL + weights + the warmup forward's activation peak (kept by the caching allocator).
Version rules (release tags): W = TGI_WIGGLE_ROOM, f = CUDA_MEMORY_FRACTION (default 1.0, `--cuda-memory-fraction`)
    < 1.4.1      free = mem free - (1 - f) x total                  (no wiggle room)
    1.4.1 - 2.2  free = 0.95 x (mem free - (1 - f) x total)
    2.3          same with W = 0.95;  2.4: W = 0.90
    3.0          free = mem free - (1 - f x W) x total, W = 0.95;  3.1 - 3.2: W = 0.93;  >= 3.3: W = 0.90
BLOCK_SIZE (models/globals.py): 16 for `paged` attention (TGI < 2.3, or GPUs below compute capability 8),
1 for `flashinfer` (the default from 2.3 when head_dim is 64, 128 or 256), 256 for `flashdecoding` (the fallback:
other head sizes, falcon, deepseek_v2; launcher/src/main.rs resolve_attention).
Default max_batch_prefill_tokens (launcher/src/main.rs, >= 3.0): card FLOPs / model FLOPs on the cards TGI
knows (compute_optimal), else 4096, capped by max_position_embeddings and by what the VRAM allows
(vram_maximum); before 3.0 the launcher's fixed defaults (launcher_tokens). The warmup's logits phase
(warmup_logits): every prompt token's logits before 3.0 (prefill logprobs), the last token's from 3.0.

Not derivable from a config, so estimated: the CUDA context and NCCL buffers (the figures SGLang's startup log
shows, kvplan.engines.common.startup_in_use) and the warmup activation peak (vLLM's fitted forward-pass peak at
max_batch_prefill_tokens, kvplan.engines.common.activation_peak). TGI caches every layer at full length (windowed
layers too); DeepSeek's MLA is cached decompressed per head and Mamba hybrids are not served this way:
both raise UnsupportedModelError.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import ClassVar

from kvplan.budget import Budget, Term, TermKind, check_util
from kvplan.capacity import LimitedBy, Pool, TokenPool
from kvplan.deployment import Deployment, Stage
from kvplan.engines.base import Engine, EngineSettings, Launch, Printed, RuleTable, Scenario, Setup, Startup, row
from kvplan.engines.common import SamplerPeak, activation_peak, startup_in_use
from kvplan.engines.logwords import CUDA_OOM, DEC, INT, LogWording, clue, rules, to_int
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import GPU, compute_capability
from kvplan.model.quant import DTYPE_BYTES
from kvplan.model.spec import MLAKV, SELF_ATTENTION, TOWER_ROLES, Retention, heads_per_rank

DEFAULT_MEMORY_FRACTION = 1.0  # CUDA_MEMORY_FRACTION / --cuda-memory-fraction

# Official builds by the commit the launcher prints ("Commit sha:"), read from the repository's tags.
TGI_COMMITS = {
    "3ef5ffb": "1.0.0", "09eca64": "1.0.1", "c4422e5": "1.0.2", "5485c14": "1.0.3", "7a6fad6": "1.1.0",
    "8acdc1f": "1.1.1", "ccd5725": "1.2.0", "d0841cc": "1.3.0", "ec6d459": "1.3.1", "88aae25": "1.3.2",
    "f3aea78": "1.3.3", "630800e": "1.3.4", "c2d4a3b": "1.4.0", "4139054": "1.4.1", "9c1cb81": "1.4.2",
    "e6bb3ff": "1.4.3", "6c4496a": "1.4.4", "4ee0a0c": "1.4.5", "c38a7d7": "2.0.0", "2d0a717": "2.0.1",
    "6073ece": "2.0.2", "40213c9": "2.0.3", "8f22cb9": "2.0.4", "192d49a": "2.1.0", "4dfdb48": "2.1.1",
    "db7e043": "2.2.0", "169178b": "2.3.0", "a094729": "2.3.1", "0a655a0": "2.4.0", "d2ed52f": "2.4.1",
    "8f326c9": "3.0.0", "bb9095a": "3.0.1", "b70f29d": "3.0.2", "463228e": "3.1.0", "c34bd9d": "3.1.1",
    "411a282": "3.2.0", "4d28897": "3.2.1", "c67546f": "3.2.2", "a1f3ebe": "3.2.3", "03a8b8d": "3.3.0",
    "767a652": "3.3.1", "8e41da9": "3.3.2", "1754b79": "3.3.3", "d4bd5ca": "3.3.4", "8d029d2": "3.3.5",
    "efb94e0": "3.3.6", "dfb3fbe": "3.3.7",
}

# TGI's launcher and router logs: `Args { model_id: "...", num_shard: Some(2), ... }`, the router's "Setting max
# batch total tokens to N" (backends/v3/src/lib.rs), and the failures of warmup (flash_causal_lm.py) and of the
# token check (lib.rs NotEnoughMemory).
LOG = LogWording(
    name="TGI",
    markers=re.compile(r"text_generation_launcher|text_generation_router|text_generation_server|"
                       r"Setting max batch total tokens to|Args \{ model_id:"),
    figures=tuple(rules("kv_tokens", to_int, rf"Setting max batch total tokens to {INT}")),
    failures=(
        (re.compile(r"Not enough memory to handle (\d+) prefill tokens"), "warmup_oom"),
        (re.compile(r"Not enough memory to handle `max_total_tokens=(\d+)`"), "max_model_len"),
        CUDA_OOM,
    ),
    # TGI prints no version: the launcher's "Commit sha:" names an official build; else the wordings date it
    # (each read from the tag's source: launcher/src/main.rs, env_runtime.rs, server/.../flash_causal_lm.py,
    # models/globals.py, backends/v3/src/lib.rs; the launcher's Debug print of Args lists every field it has)
    commit_line=re.compile(r"Commit sha: ([0-9a-f]{7,40})"),
    commits=tuple(TGI_COMMITS.items()),
    release_clues=(
        clue(r"Args \{ model_id:", None, "2.0.2", "the launcher's Args on one line"),
        clue(r"Args \{$", "2.0.2", None, "the launcher's Args one field per line"),
        clue(r"Model supports up to \d+ but tgi will now set its default", "2.0.0", "2.4.1",
             "\"Model supports up to N but tgi will now set its default\""),
        clue(r"Default `max_batch_prefill_tokens` to", "2.0.0", None, "\"Default `max_batch_prefill_tokens` to\""),
        clue(r"Reducing the max batch prefill from", "3.0.0", None, "\"Reducing the max batch prefill\""),
        clue(r"Using default cuda graphs", "2.0.0", None, "\"Using default cuda graphs\""),
        clue(r"main\.rs:317: Warming up model|main\.rs:354: Setting max batch total tokens", "2.0.2", "2.1.0",
             "the router's lines main.rs:317 / :354 (router/src/main.rs v2.0.2-v2.0.4; 311 / 348 in v2.0.0, "
             "314 / 351 in v2.0.1, 291 / 328 in v1.4.5)"),
        clue(r"Cuda Graphs are disabled", "2.0.2", None, "\"Cuda Graphs are disabled\""),
        clue(r"Using prefix caching = |Using Attention = |Using attention \w+ - Prefix caching", "2.3.0", None,
             "the prefix-caching / attention backend line"),
        clue(r"Forcing attention to '", "2.3.1", None, "\"Forcing attention to\""),
        clue(r"Using backend V3", "2.3.0", None, "\"Using backend V3\""),
        clue(r"KV-cache blocks: \d+, size: \d+", "2.4.0", None, "\"KV-cache blocks: N, size: B\""),
        clue(r"Using prefill chunking = ", "3.0.0", None, "\"Using prefill chunking\""),
        clue(r"Starting check and download process for", "2.1.1", None, "\"Starting check and download process\""),
        clue(r"Not enough memory to handle \d+ prefill tokens", "0.9.0", None,
             "\"Not enough memory to handle N prefill tokens\" (every tag from 0.9.0)"),
        clue(r"\benable_cuda_graphs: ", "1.4.1", "2.0.0", "Args field enable_cuda_graphs"),
        clue(r"\bdisable_usage_stats: ", "2.2.0", "2.3.0", "Args field disable_usage_stats"),
        *(clue(rf"\b{field}: ", since, None, f"Args field {field}", absent_after=r"Args \{")
          for field, since in (("rope_scaling", "1.0.1"), ("max_top_n_tokens", "1.0.3"), ("speculate", "1.3.0"),
                               ("tokenizer_config_path", "1.4.0"), ("max_batch_size", "1.4.1"),
                               ("max_input_tokens", "2.0.0"), ("max_client_batch_size", "2.0.1"),
                               ("lora_adapters", "2.1.0"), ("api_key", "2.3.0"), ("kv_cache_dtype", "2.4.0"),
                               ("payload_limit", "2.4.1"), ("enable_prefill_logprobs", "3.0.0"),
                               ("graceful_termination_timeout", "3.2.2"), ("prometheus_port", "3.3.0"))),
    ),
    settings=(
        *rules("tensor_parallel", int, r"\bnum_shard: Some\((\d+)\)"),
        *rules("max_model_len", int, r"\bmax_total_tokens: Some\((\d+)\)"),
        *rules("max_num_batched_tokens", int, r"\bmax_batch_prefill_tokens: Some\((\d+)\)"),
        *rules("cuda_memory_fraction", float, rf"\bcuda_memory_fraction: {DEC}"),
        *rules("kv_cache_dtype", str, r'\bkv_cache_dtype: Some\("?(\w+)"?\)'),
    ),
)
FLASHINFER_HEAD_DIMS = (64, 128, 256)
# f16 TFLOPs of the cards the launcher recognizes by their nvidia-smi name (launcher/src/main.rs Gpu / f16_flop),
# keyed by kvplan GPU alias. Names TGI does not match ("Tesla T4", "NVIDIA GeForce RTX 4090", "NVIDIA H100 PCIe")
# are left out: the launcher falls back to 4096 prefill tokens on them.
CARD_TFLOPS = {"l4": 121, "l40": 181, "l40s": 363, "a10g": 125, "a40": 149, "a100": 312, "a100-40g": 312,
               "a100-pcie": 312, "h100": 900, "h100-nvl": 900, "h200": 989}


@dataclass(frozen=True)
class TgiRules:
    wiggle: str  # how memory is kept back: "none", "after" (x W after the free memory), "fraction" (in the formula)
    wiggle_room: float  # TGI_WIGGLE_ROOM
    attention_backends: bool  # flashinfer / flashdecoding block sizes (else paged attention, BLOCK_SIZE 16)
    flashdecoding_types: tuple[str, ...]  # model types forced to flashdecoding (BLOCK_SIZE 256)
    paged_below_ampere: bool  # compute capability < 8: paged attention (BLOCK_SIZE 16)
    launcher: str  # the launcher's token defaults (default_tokens): "1.0", "2.0", "2.4.1" or "3.0"
    max_input_from_tokens: bool  # max input + total tokens default to what the cache holds
    prefill_logprobs: bool  # the warmup asks prefill logprobs: logits for every prompt token
    log_softmax_copy: bool  # ... and their log_softmax is a new tensor (in place from 2.4.0)
    warmup_reserved: bool  # free memory is read with the warmup's allocator cache held: its peaks add up
    warm_request_total: bool  # a warmup request's blocks cover max_total_tokens - 1 (else its input + 1: < 1.1.1)


TGI_RULES = RuleTable(
    TgiRules,
    row("0.0.0", "server/text_generation_server/models/flash_causal_lm.py warmup before v1.4.1: no wiggle room; "
        "layers/tensor_parallel.py TensorParallelHead and PyTorch's CUDA host_softmax (aten/src/ATen/native/cuda/"
        "SoftMax.cu, which makes its input contiguous): under TP the transposed gathered logits are copied "
        "contiguous in every release (warmup_logits); utils/import_utils.py get_cuda_free_memory (max(0, ...) read "
        "in v2.0.4, v2.2.0, v3.0.0; earlier releases assumed alike): where the memory fraction runs out TGI starts "
        "with the warm-up batch's blocks (TGI.pool); "
        "flash_causal_lm.py warmup (read in v2.0.0, v2.0.3, v2.0.4, v2.2.0; the other releases assumed alike): no "
        "torch.cuda.empty_cache() between the warmup prefill and get_free_memory, so the logits chain adds to the "
        "forward's reserve",
        wiggle="none", wiggle_room=1.0, attention_backends=False, flashdecoding_types=(), paged_below_ampere=False,
        launcher="1.0", max_input_from_tokens=False,
        prefill_logprobs=True, log_softmax_copy=True, warmup_reserved=True, warm_request_total=False),
    row("1.1.1", "router/client/src/client.rs v1.1.1 warmup: each warmup request asks max_total_tokens - "
        "truncate new tokens, so its blocks cover max_total_tokens - 1 (v1.0.x: 2 new tokens)",
        warm_request_total=True),
    row("1.4.1", "utils/import_utils.py v1.4.1: free x 0.95 after warmup", wiggle="after", wiggle_room=0.95),
    row("2.0.0", "launcher/src/main.rs v2.0.0 main: max_input_tokens = max_position_embeddings - 1 and "
        "max_total_tokens = max_position_embeddings (both capped at 4096), max_batch_prefill_tokens = "
        "max_input_tokens + 50", launcher="2.0"),
    row("2.2.0", "launcher/src/main.rs v2.2.0: FLASH_DECODING=1 for gemma2 (models/globals.py v2.1.1: BLOCK_SIZE "
        "256 under it)", flashdecoding_types=("gemma2",)),
    row("2.3.0", "models/globals.py + launcher/src/main.rs resolve_attention v2.3.0: flashinfer by default, "
        "flashdecoding for other head sizes and for gemma2, falcon, deepseek_v2", attention_backends=True,
        flashdecoding_types=("gemma2", "falcon", "deepseek_v2")),
    row("2.3.1", "launcher/src/main.rs v2.3.1 resolve_attention: paged attention below compute capability 8",
        paged_below_ampere=True),
    row("2.4.0", "utils/import_utils.py v2.4.0: TGI_WIGGLE_ROOM 0.90; models/flash_causal_lm.py v2.4.0: the prefill "
        "log_softmax in place (out=); launcher/src/main.rs v2.4.0: gemma2 off the forced list", wiggle_room=0.90,
        log_softmax_copy=False, flashdecoding_types=("falcon", "deepseek_v2")),
    row("2.4.1", "launcher/src/main.rs v2.4.1: max_batch_prefill_tokens = min(4096, max_position_embeddings); input "
        "and total tokens left unset (the warmup batch: the prefill tokens)", launcher="2.4.1"),
    row("3.0.0", "models/flash_causal_lm.py v3.0.0: free = mem free - (1 - f x W) x total, W 0.95; launcher "
        "compute_optimal prefill tokens and max_input_tokens from the cache; models/flash_causal_lm.py v3.0.0 "
        "FlashCausalLMBatch.from_pb: prefill logprobs off (REQUEST_LOGPROBS 0), logits for the last token only",
        wiggle="fraction", wiggle_room=0.95, launcher="3.0", max_input_from_tokens=True, prefill_logprobs=False),
    row("3.1.0", "utils/import_utils.py v3.1.0: W 0.93", wiggle_room=0.93),
    row("3.3.0", "utils/import_utils.py v3.3.0: W 0.90", wiggle_room=0.90),
)


@dataclass(frozen=True)
class TgiOptions:
    """TGI's launcher flags."""

    max_total_tokens: int | None = None  # --max-total-tokens (a request's prompt + output)
    max_batch_prefill_tokens: int | None = None
    max_concurrent_requests: int | None = None
    block_size: int | None = None  # BLOCK_SIZE, set by the attention backend


def block_size(dep: Deployment, rules: TgiRules, gpu: GPU | None = None) -> tuple[int, str]:
    """BLOCK_SIZE and the attention backend (models/globals.py, launcher/src/main.rs resolve_attention)."""
    cap = compute_capability(gpu) if gpu is not None else None
    if dep.model.model_type in rules.flashdecoding_types and not (rules.paged_below_ampere and cap and cap < 80):
        return 256, "flashdecoding"
    if not rules.attention_backends or (rules.paged_below_ampere and cap is not None and cap < 80):
        return 16, "paged"
    head_dims = {layer.kv.head_dim for layer in dep.model.layers if layer.kv.retention in SELF_ATTENTION
                 and layer.kv.kind != MLAKV.kind}
    if not head_dims <= set(FLASHINFER_HEAD_DIMS):
        return 256, "flashdecoding"
    return 1, "flashinfer"


def default_prefill_tokens(dep: Deployment, gpu: GPU | None, rules: TgiRules, fraction: float) -> tuple[int, str]:
    """TGI's default --max-batch-prefill-tokens (launcher/src/main.rs, see the module docstring)."""
    m = dep.model
    if rules.launcher != "3.0":
        return launcher_tokens(dep, rules)[1], f"TGI {rules.launcher} launcher default"
    default, how = 4096, "default 4096"
    if m.model_type in ("qwen2_vl", "qwen2_5_vl"):
        default, how = 10_000, "default 10000 for Qwen2-VL"
    elif m.model_type == "gemma3":
        default, how = 8000, "default 8000 for Gemma 3"
    dims = m.dims
    dense = dims is not None and not m.moe and not any(t.role in TOWER_ROLES for t in m.tensors) and bool(
        dims.heads and dims.hidden and dims.intermediate and dims.head_dim)
    card = CARD_TFLOPS.get(gpu.alias) if gpu is not None else None
    heads, layers = m.num_attention_heads or 0, m.num_layers
    if dense and card:
        assert dims is not None
        hidden, head_dim, inter, kv_heads = dims.hidden, dims.head_dim, dims.intermediate, dims.kv_heads or heads
        attn = 2 * head_dim * hidden * (3 * heads + 2 * kv_heads)
        flop = (attn + 2 * 3 * hidden * inter) * layers
        optimal = card * 10**12 * dep.tp // flop
        if optimal > 100:
            default, how = optimal, f"{card} TFLOPs x {dep.tp} / {flop:,} model FLOPs per token"
    value = default
    if m.max_context and m.max_context < value:
        value, how = m.max_context, f"{how}, capped by max_position_embeddings"
    if dense and gpu is not None and m.quant is None:  # the launcher skips quantized configs
        assert dims is not None
        hidden, head_dim, inter, kv_heads = dims.hidden, dims.head_dim, dims.intermediate, dims.kv_heads or heads
        available = int(gpu.memory_bytes * dep.tp * fraction * 0.95)
        model = ((3 * inter * hidden + (heads + 2 * kv_heads) * head_dim + heads * head_dim * hidden) * layers
                 + 2 * m.vocab_size * hidden) * 2
        per_token = kv_heads * 2 * head_dim * 2 * layers + (inter + inter // 2) * 2 * 3
        if available > model and (available - model) // per_token < value:
            value, how = (available - model) // per_token, f"{how}, capped by vram_maximum"
    return value, how


def launcher_tokens(dep: Deployment, rules: TgiRules) -> tuple[int | None, int]:
    """(max_total_tokens, max_batch_prefill_tokens) the launcher sets when neither is given, before 3.0
    (launcher/src/main.rs): 1.x clap defaults 2048 and 4096; 2.0-2.4.0 the model's max_position_embeddings capped
    at 4096 (4096 when the config has none), prefill = max_input_tokens + 50; 2.4.1 no total (the shard infers it)
    and prefill min(4096, max_position_embeddings)."""
    positions = min(dep.model.max_context or 4096, 4096)
    if rules.launcher == "1.0":
        return 2048, 4096
    if rules.launcher == "2.0":
        return positions, positions - 1 + 50
    return None, positions


def warmup_input(rules: TgiRules, context: int) -> int:
    """A warmup request's most prompt tokens (max_input): the 1.x launcher's 1024, else max_total_tokens - 1."""
    return 1024 if rules.launcher == "1.0" else max(1, context - 1)


def warmup_blocks(rules: TgiRules, options: TgiOptions, context: int) -> int:
    """Blocks the warmup batch holds while free memory is read (router/client/src/client.rs warmup, v1.0.0-v2.0.4;
    v3/client.rs v2.2.0-v2.4.0; models/flash_causal_lm.py FlashCausalLMBatch.from_pb): requests of min(max_input,
    the prefill tokens left) tokens until the prefill tokens are sent (warmup_input), each holding
    ceil((max_total_tokens - 1) / BLOCK_SIZE) blocks from 1.1.1 (its input + 1 before)."""
    block, prefill = options.block_size, options.max_batch_prefill_tokens
    max_input = warmup_input(rules, context)
    if rules.warm_request_total:
        return -(-prefill // max_input) * -(-(context - 1) // block)
    full, last = divmod(prefill, max_input)
    return full * -(-(max_input + 1) // block) + (-(-(last + 1) // block) if last else 0)


def warmup_logits(dep: Deployment, rules: TgiRules) -> SamplerPeak:
    """The warmup's logits phase (models/flash_causal_lm.py, layers/tensor_parallel.py TensorParallelHead): with
    prefill logprobs (< 3.0) the lm_head runs on every prompt token; under TP each shard's [vocab / TP, tokens]
    output is all-gathered into [vocab, tokens], in the model dtype, and returned transposed (not contiguous); under
    TP the log_softmax first copies that transposed input contiguous (PyTorch's CUDA host_softmax,
    aten/src/ATen/native/cuda/SoftMax.cu, makes its input contiguous, in place or not), and before 2.4.0 it writes a
    new tensor (from 2.4.0 out= the logits). From 3.0
    the last token's logits only (the sampler's B x vocab is small). The warmup reads free memory after the prefill
    without emptying the allocator's cache (flash_causal_lm.py warmup, v2.0.4 and v2.2.0), so these add to the
    forward's peak (activation_peak's `reserved`)."""
    d = DTYPE_BYTES[dep.activation_dtype]
    gather = d / dep.tp + d if dep.tp > 1 else 0.0  # the shard's output and the contiguous copy
    per_entry = gather + (d if rules.log_softmax_copy else 0.0)
    return SamplerPeak("TGI warmup logits" + (" with prefill logprobs" if rules.prefill_logprobs else ""),
                       no_sort_from=1, no_sort=per_entry, buffer=False)


def cache_block_bytes(dep: Deployment, stage: Stage, block: int) -> int:
    """Bytes of one cache block on one shard: layers x BLOCK_SIZE x kv_heads/shard x head_size x 2 x dtype; the
    one mapping from kvplan's KV specs to TGI's cache."""
    total = 0.0
    for layer in stage.layers:
        kv = layer.kv
        if kv.retention == Retention.NONE:
            continue
        if kv.retention not in (Retention.FULL, Retention.SLIDING, Retention.CHUNKED) or kv.kind == MLAKV.kind:
            raise UnsupportedModelError(f"kvplan does not model TGI's cache for {kv.kind} layers "
                                        "(TGI caches MLA decompressed per head; Mamba hybrids differ)")
        total += heads_per_rank(kv.num_kv_heads, dep.tp) * 2 * max(kv.head_dim, kv.v_head_dim) * dep.kv_bytes
    if total <= 0:
        raise UnsupportedModelError("the model has no attention layer: TGI would allocate no KV cache")
    return round(total * block)


class TGI(Engine):
    name = "tgi"
    label = "TGI"
    default_version = "3.3.7"
    newest_read = "3.3.7"
    default_util = DEFAULT_MEMORY_FRACTION
    options_class = TgiOptions
    rule_table = TGI_RULES
    csv_names = ("tgi",)
    log_wordings = (LOG,)
    log_util_key = "cuda_memory_fraction"
    flags: ClassVar[dict[str, str]] = {
        "util": "--cuda-memory-fraction",
        "tp": "--num-shard",
        "max_model_len": "--max-total-tokens",
        "kv_fp8": "--kv-cache-dtype fp8_e4m3fn",
        "quant_fp8": "--quantize fp8",
        "max_batched_tokens": "--max-batch-prefill-tokens",
    }

    def options(self, settings: EngineSettings) -> TgiOptions:
        return TgiOptions(settings.max_model_len, settings.max_num_batched_tokens, settings.max_num_seqs,
                          settings.block_size)

    def resolve(self, setup: Setup) -> None:
        dep = setup.dep
        if dep.pp > 1:
            raise InputError("TGI shards by tensor parallelism only (--num-shard): use --tp, not --pp")
        if dep.kv_dtype in ("int8", "int4", "fp32"):
            raise InputError(f"TGI has no {dep.kv_dtype} KV cache (--kv-cache-dtype fp8 or the model dtype)")

    def fraction(self, setup: Setup, util: float | None) -> float:
        """CUDA_MEMORY_FRACTION; it also settles BLOCK_SIZE and max_batch_prefill_tokens into the options, as the
        launcher's default prefill tokens depend on the fraction (vram_maximum)."""
        fraction = DEFAULT_MEMORY_FRACTION if util is None else check_util(util)
        o = setup.options
        block, attention = block_size(setup.dep, setup.rules, setup.gpu)
        if o.max_batch_prefill_tokens:
            prefill, source = o.max_batch_prefill_tokens, "--max-batch-prefill-tokens"
        else:
            prefill, source = default_prefill_tokens(setup.dep, setup.gpu, setup.rules, fraction)
        setup.options = replace(o, block_size=o.block_size or block, max_batch_prefill_tokens=prefill)
        setup.notes.append(f"attention {attention}, BLOCK_SIZE {setup.options.block_size}; max_batch_prefill_tokens "
                           f"{prefill:,} ({source})")
        if util is None:
            setup.notes.append(f"CUDA_MEMORY_FRACTION {fraction} (TGI's default)")
        return fraction

    def stage_layout(self, setup: Setup, stage: Stage) -> int:
        return cache_block_bytes(setup.dep, stage, setup.options.block_size)

    def _context(self, setup: Setup) -> int:
        r = setup.rules
        defaults = launcher_tokens(setup.dep, r)[0] if r.launcher in ("1.0", "2.0") else None
        context = setup.options.max_total_tokens or defaults or setup.dep.model.max_context
        if not context:
            raise InputError("the config states no context length: give --max-model-len")
        return context

    def budget(self, setup: Setup, stage: Stage, layout: int, fraction: float) -> Budget:
        dep, o, r = setup.dep, setup.options, setup.rules
        prefill = o.max_batch_prefill_tokens
        context = self._context(setup)
        in_use, in_use_source = startup_in_use(dep.tp, 1, setup.gpu)
        requests = -(-prefill // warmup_input(r, context))
        rows = prefill if r.prefill_logprobs else requests  # logits rows: every prompt token, or one per request
        act, act_source = activation_peak(dep, stage, prefill, rows, warmup_logits(dep, r),
                                          reserved=r.warmup_reserved)
        terms = [Term(TermKind.STARTUP, in_use, in_use_source, "CUDA context + NCCL"),
                 Term(TermKind.WEIGHTS, stage.weights_bytes, "tensor inventory x bytes per element (this shard)"),
                 Term(TermKind.ACTIVATION, act, f"estimate, vLLM's fitted forward factor at {prefill:,} prefill "
                      f"tokens, the logits from source: {act_source}", "warmup activation peak")]
        if setup.reserve:
            terms.append(Term(TermKind.RESERVE, setup.reserve, "--reserve"))
        if r.wiggle == "fraction":
            return Budget.of(setup.total, fraction * r.wiggle_room,
                             math.floor(setup.total * fraction * r.wiggle_room), terms)
        usable = math.floor(setup.total * fraction)
        if r.wiggle == "after":
            warm = warmup_blocks(r, o, context) * layout  # the warmup blocks, held while free memory is read
            rest = usable - sum(t.bytes for t in terms) - warm
            terms.append(Term(TermKind.WIGGLE, math.ceil((1 - r.wiggle_room) * max(rest, 0)),
                              f"(1 - {r.wiggle_room}) x the free memory after warmup (TGI {setup.version_text})"))
        return Budget.of(setup.total, fraction, usable, terms)

    def pool(self, setup: Setup, layouts: list[int], budgets: list[Budget]) -> TokenPool:
        """The free memory after warmup goes to blocks, and the warmup batch's own blocks are added back; a free term
        at or below zero (mem_get_info's free less (1 - CUDA_MEMORY_FRACTION) x total: utils/import_utils.py
        get_cuda_free_memory, max(0, ...) from v2.0.4; in the formula from 3.0, W under 1) leaves those blocks alone
        (flash_causal_lm.py warmup): where the kept-back share, not the device, runs out, TGI starts with them."""
        block, block_bytes = setup.options.block_size, layouts[0]
        blocks = max(0, budgets[0].kv_pool) // block_bytes
        if self._held_back(setup):
            warm = warmup_blocks(setup.rules, setup.options, self._context(setup))
            held = sum(t.bytes for t in budgets[0].terms if t.kind != TermKind.WIGGLE)
            if setup.total - held - warm * block_bytes >= 0:  # the device holds the warmup and its blocks
                blocks = max(blocks, warm)
        return TokenPool(budgets, blocks * block, [block_bytes // block], block)

    @staticmethod
    def _held_back(setup: Setup) -> bool:
        """The free term keeps a share of the device back (CUDA_MEMORY_FRACTION x, from 3.0, TGI_WIGGLE_ROOM < 1)."""
        r = setup.rules
        return setup.fraction * (r.wiggle_room if r.wiggle == "fraction" else 1.0) < 1

    def context(self, setup: Setup, pool: Pool) -> tuple[int | None, LimitedBy, bool]:
        label = LimitedBy.MAX_MODEL_LEN if setup.settings.max_model_len else LimitedBy.MODEL_CONTEXT
        return self._context(setup), label, True

    def request_cap(self, setup: Setup, pool: Pool) -> int | None:
        return setup.options.max_concurrent_requests

    def startup(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Startup:
        """The warmup prefill of max_batch_prefill_tokens must fit (models/flash_causal_lm.py warmup: "Not enough
        memory to handle N prefill tokens"), and max_total_tokens must fit in the cache (backends/v3/src/lib.rs:
        "Not enough memory to handle `max_total_tokens`"; checked where kvplan knows max_total_tokens: given, or
        TGI >= 3.0's own default)."""
        assert isinstance(pool, TokenPool) and context
        o = setup.options
        if budgets[0].kv_pool < 0 and not (self._held_back(setup) and pool.tokens > 0):
            return Startup(False, f"{self.label} will not start: not enough memory to handle "
                                  f"{o.max_batch_prefill_tokens:,} prefill tokens at warmup; lower "
                                  "--max-batch-prefill-tokens, use more GPUs (--num-shard) or smaller weights", 0)
        total = o.max_total_tokens or (min(pool.tokens, context) if setup.rules.max_input_from_tokens else None)
        if total is not None and total > pool.tokens:
            return Startup(False, f"{self.label} will not start: not enough memory to handle max_total_tokens="
                                  f"{total:,} (the cache holds {pool.tokens:,} tokens); lower --max-total-tokens to "
                                  f"{pool.tokens:,}", pool.tokens)
        if pool.tokens <= 0:
            return Startup(False, f"{self.label} will not start: the cache holds no token", 0)
        return Startup(True, longest_context=min(context, pool.tokens))

    def batching(self, printed: Printed) -> tuple[bool, bool] | None:
        """Whole prompts in prefill passes that the running batch waits for (the router's batching loop, read in
        2.x: a new batch is prefilled, then concatenated to the running one); 3.x's prefill chunking is not read."""
        return False, False

    def printed(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Printed:
        assert isinstance(pool, TokenPool) and context
        o = setup.options
        tokens = pool.tokens
        max_model_len = o.max_total_tokens or (min(tokens, context) if setup.rules.max_input_from_tokens
                                               else context)
        return Printed(
            engine=self.name, version=setup.version_text, total_bytes=setup.total, total_source=setup.total_source,
            max_model_len=max_model_len, block_size=o.block_size, num_blocks=tokens // o.block_size,
            kv_tokens=tokens, max_concurrency=tokens / max_model_len if max_model_len else None,
            max_num_seqs=o.max_concurrent_requests, max_num_batched_tokens=o.max_batch_prefill_tokens,
            notes=tuple(setup.notes),
        )

    def launch_command(self, launch: Launch) -> str:
        """text-generation-launcher's flags (launcher/src/main.rs): shards, token limits, memory fraction."""
        parts = [f"text-generation-launcher --model-id {launch.model()}", f"--num-shard {launch.tp}",
                 f"--max-total-tokens {launch.max_model_len}"]
        parts += [f"--max-batch-prefill-tokens {launch.max_batched_tokens}"] if launch.max_batched_tokens else []
        parts += [f"--max-concurrent-requests {launch.max_running}"] if launch.max_running else []
        parts += [f"--cuda-memory-fraction {launch.util:g}"] if launch.util != DEFAULT_MEMORY_FRACTION else []
        parts += ["--kv-cache-dtype fp8_e4m3fn"] if launch.kv_dtype == "fp8" else []
        parts += ["--quantize fp8"] if launch.quant == "fp8" else []
        return " ".join(parts)

    def derivation(self, scenario: Scenario) -> list[str]:
        c, e = scenario.capacity, scenario.printed
        assert e is not None and e.block_size
        cap = f", --max-concurrent-requests {e.max_num_seqs}" if e.max_num_seqs else ""
        return [f"  blocks = floor(pool / {c.request_bytes // -(-c.seq // e.block_size):,} B per block of "
                f"{e.block_size} token(s)) = {e.num_blocks:,}; printed max batch total tokens {e.kv_tokens:,} "
                f"(max_batch_prefill_tokens {e.max_num_batched_tokens:,})",
                f"  max concurrent requests of {c.seq:,} tokens = floor({e.kv_tokens:,} / {c.seq:,} tokens rounded "
                f"up to blocks{cap})" + (f" x {c.replicas} replicas" if c.replicas > 1 else "")
                + f" = {c.max_concurrent_requests:,}"]
