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
(vram_maximum); 4096 before 3.0.

Not derivable from a config, so estimated: the CUDA context and NCCL buffers (the figures SGLang's startup log
shows, kvplan.engines.sglang) and the warmup activation peak (vLLM's fitted forward-pass peak at
max_batch_prefill_tokens, kvplan.engines.vllm.activation). TGI caches every layer at full length (windowed
layers too); DeepSeek's MLA is cached decompressed per head and Mamba hybrids are not served this way:
both raise UnsupportedModelError.
"""

from __future__ import annotations

import math

from kvplan.budget import Budget, Term, check_util
from kvplan.capacity import token_capacity
from kvplan.deployment import Deployment, Stage
from kvplan.engines import EngineSettings, Printed, Scenario, engine_total, parse_version
from kvplan.engines.sglang import startup_in_use
from kvplan.engines.vllm import activation
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import GPU
from kvplan.model.spec import TOWER_ROLES, AttentionKV, NoKV, heads_per_rank

DEFAULT_VERSION = "3.3.7"
DEFAULT_MEMORY_FRACTION = 1.0  # CUDA_MEMORY_FRACTION / --cuda-memory-fraction
FLASHINFER_HEAD_DIMS = (64, 128, 256)
# f16 TFLOPs of the cards the launcher recognizes by their nvidia-smi name (launcher/src/main.rs Gpu / f16_flop),
# keyed by kvplan GPU alias. Names TGI does not match ("Tesla T4", "NVIDIA GeForce RTX 4090", "NVIDIA H100 PCIe")
# are left out: the launcher falls back to 4096 prefill tokens on them.
CARD_TFLOPS = {"l4": 121, "l40": 181, "l40s": 363, "a10g": 125, "a40": 149, "a100": 312, "a100-40g": 312,
               "a100-pcie": 312, "h100": 900, "h100-nvl": 900, "h200": 989}


def wiggle(version: tuple[int, int, int]) -> tuple[str, float]:
    """('none' | 'after' | 'fraction', W): how TGI at `version` keeps memory back from the KV cache."""
    if version < (1, 4, 1):
        return "none", 1.0
    if version < (2, 4, 0):
        return "after", 0.95
    if version < (3, 0, 0):
        return "after", 0.90
    if version < (3, 1, 0):
        return "fraction", 0.95
    if version < (3, 3, 0):
        return "fraction", 0.93
    return "fraction", 0.90


def block_size(dep: Deployment, version: tuple[int, int, int]) -> tuple[int, str]:
    if version < (2, 3, 0):
        return 16, "paged"
    head_dims = {layer.kv.head_dim for layer in dep.model.layers if isinstance(layer.kv, AttentionKV)}
    if dep.model.model_type in ("falcon", "deepseek_v2") or not head_dims <= set(FLASHINFER_HEAD_DIMS):
        return 256, "flashdecoding"
    return 1, "flashinfer"


def _dense_shape(dep: Deployment) -> tuple[int, int, int, int] | None:
    """(hidden, head_dim, intermediate, kv_heads) as TGI's launcher reads them from config.json; None for MoE
    and vision models, whose raw keys (num_experts_per_token, vision_config) kvplan does not keep."""
    m = dep.model
    if m.moe or any(t.role in TOWER_ROLES for t in m.tensors) or not m.num_attention_heads:
        return None
    embeddings = [t for t in m.tensors if t.role == "embedding" and len(t.shape) == 2]
    attention = [layer.kv for layer in m.layers if isinstance(layer.kv, AttentionKV)]
    if not embeddings or not attention:
        return None
    hidden = embeddings[0].shape[1]
    inter = next((t.shape[1] for t in m.tensors if t.layer == 0 and t.role == "mlp" and len(t.shape) == 2
                  and t.shape[0] == hidden and t.shape[1] != hidden), None)
    if inter is None:
        return None
    return hidden, attention[0].head_dim, inter, m.num_kv_heads or m.num_attention_heads


def default_prefill_tokens(dep: Deployment, gpu: GPU | None, version: tuple[int, int, int],
                           fraction: float) -> tuple[int, str]:
    """TGI's default --max-batch-prefill-tokens (launcher/src/main.rs, see the module docstring)."""
    m = dep.model
    if version < (3, 0, 0):
        return 4096, "TGI < 3.0 default"
    default, how = 4096, "default 4096"
    if m.model_type in ("qwen2_vl", "qwen2_5_vl"):
        default, how = 10_000, "default 10000 for Qwen2-VL"
    elif m.model_type == "gemma3":
        default, how = 8000, "default 8000 for Gemma 3"
    shape = _dense_shape(dep)
    card = CARD_TFLOPS.get(gpu.alias) if gpu is not None else None
    heads, layers = m.num_attention_heads or 0, m.num_layers
    if shape and card:
        hidden, head_dim, inter, kv_heads = shape
        attn = 2 * head_dim * hidden * (3 * heads + 2 * kv_heads)
        flop = (attn + 2 * 3 * hidden * inter) * layers
        optimal = card * 10**12 * dep.tp // flop
        if optimal > 100:
            default, how = optimal, f"{card} TFLOPs x {dep.tp} / {flop:,} model FLOPs per token"
    value = default
    if m.max_context and m.max_context < value:
        value, how = m.max_context, f"{how}, capped by max_position_embeddings"
    if shape and gpu is not None and m.quant is None:  # the launcher skips quantized configs
        hidden, head_dim, inter, kv_heads = shape
        available = int(gpu.memory_bytes * dep.tp * fraction * 0.95)
        model = ((3 * inter * hidden + (heads + 2 * kv_heads) * head_dim + heads * head_dim * hidden) * layers
                 + 2 * m.vocab_size * hidden) * 2
        per_token = kv_heads * 2 * head_dim * 2 * layers + (inter + inter // 2) * 2 * 3
        if available > model and (available - model) // per_token < value:
            value, how = (available - model) // per_token, f"{how}, capped by vram_maximum"
    return value, how


def cache_block_bytes(dep: Deployment, stage: Stage, block: int) -> int:
    """Bytes of one cache block on one shard: layers x BLOCK_SIZE x kv_heads/shard x head_size x 2 x dtype."""
    total = 0.0
    for layer in stage.layers:
        kv = layer.kv
        if isinstance(kv, AttentionKV):
            total += heads_per_rank(kv.num_kv_heads, dep.tp) * 2 * max(kv.head_dim, kv.v_head_dim) * dep.kv_bytes
        elif not isinstance(kv, NoKV):
            raise UnsupportedModelError(f"kvplan does not model TGI's cache for {kv.kind} layers "
                                        "(TGI caches MLA decompressed per head; Mamba hybrids differ)")
    if total <= 0:
        raise UnsupportedModelError("the model has no attention layer: TGI would allocate no KV cache")
    return round(total * block)


def scenario(dep: Deployment, gpu: GPU | None, util: float | None, settings: EngineSettings, seq: int, batch: int,
             replicas: int, reserve: int = 0, kv_memory: int | None = None) -> Scenario:
    if reserve < 0:
        raise InputError(f"--reserve must not be negative (got {reserve})")
    if dep.pp > 1:
        raise InputError("TGI shards by tensor parallelism only (--num-shard): use --tp, not --pp")
    if dep.kv_dtype in ("int8", "int4", "fp32"):
        raise InputError(f"TGI has no {dep.kv_dtype} KV cache (--kv-cache-dtype fp8 or the model dtype)")
    version = parse_version(settings.version, DEFAULT_VERSION)
    fraction = DEFAULT_MEMORY_FRACTION if util is None else check_util(util)
    block, attention = block_size(dep, version)
    block = settings.block_size or block
    stage = dep.stages[0]
    block_bytes = cache_block_bytes(dep, stage, block)
    total, total_source = engine_total(gpu, settings, kv_memory)
    if settings.max_num_batched_tokens:
        prefill, prefill_source = settings.max_num_batched_tokens, "--max-batch-prefill-tokens"
    else:
        prefill, prefill_source = default_prefill_tokens(dep, gpu, version, fraction)
    context = settings.max_model_len or dep.model.max_context
    if not context:
        raise InputError("the config states no context length: give --max-model-len")
    notes = [f"attention {attention}, BLOCK_SIZE {block}; max_batch_prefill_tokens {prefill:,} ({prefill_source})"]
    rule, room = wiggle(version)
    if kv_memory is not None:
        budget = Budget(None, None, None, (), kv_memory, pool_given=True)
    else:
        in_use, in_use_source = startup_in_use(dep.tp, 1)
        requests = max(1, -(-prefill // max(1, context - 1)))
        act, act_source = activation(dep, stage, prefill, requests, (0, 19))
        terms = [Term("CUDA context + NCCL", in_use, in_use_source),
                 Term("weights", stage.weights_bytes, "tensor inventory x bytes per element (this shard)"),
                 Term("warmup activation peak", act,
                      f"estimate, vLLM's fitted forward peak at {prefill:,} prefill tokens: {act_source}")]
        if reserve:
            terms.append(Term("reserve", reserve, "--reserve"))
        used = sum(t.bytes for t in terms)
        if rule == "fraction":
            usable = math.floor(total * fraction * room)
            budget = Budget(total, fraction * room, usable, tuple(terms), usable - used)
        else:
            usable = math.floor(total * fraction)
            if rule == "after":
                warm = -(-prefill // block) * block_bytes  # the warmup blocks, held while free memory is read
                rest = usable - used - warm
                terms.append(Term("wiggle room", math.ceil((1 - room) * max(rest, 0)),
                                  f"(1 - {room}) x the free memory after warmup (TGI {'.'.join(map(str, version))})"))
            budget = Budget(total, fraction, usable, tuple(terms), usable - sum(t.bytes for t in terms))
    num_blocks = max(0, budget.kv_pool) // block_bytes
    tokens = num_blocks * block
    max_model_len = settings.max_model_len or (min(tokens, context) if version >= (3, 0, 0) else context)
    cap = token_capacity(tokens, [block_bytes // block], [budget], seq, batch, replicas, context,
                         settings.max_num_seqs, block, "max_model_len" if settings.max_model_len else "model context")
    if util is None:
        notes.append(f"CUDA_MEMORY_FRACTION {fraction} (TGI's default)")
    printed = Printed(
        engine="tgi", version=".".join(map(str, version)), total_bytes=total, total_source=total_source,
        max_model_len=max_model_len, block_size=block, num_blocks=num_blocks, kv_tokens=tokens,
        max_concurrency=tokens / max_model_len if max_model_len else None, max_num_seqs=settings.max_num_seqs,
        max_num_batched_tokens=prefill, notes=tuple(notes),
    )
    return Scenario(gpu, fraction, (budget,), cap, printed)

