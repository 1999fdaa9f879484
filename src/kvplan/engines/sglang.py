"""SGLang's memory accounting (static memory fraction + token pool), read from SGLang's own source.

Sources (PyPI wheels, which pin the source exactly): sglang 0.4.9.post2 and sglang 0.5.23.

Pool (0.4.9.post2 `srt/model_executor/model_runner.py` profile_max_num_token; unchanged in 0.5.23
`srt/mem_cache/kv_cache_configurator.py` _profile_available_bytes):
    rest_memory = free memory after loading weights - free memory at startup x (1 - mem_fraction_static)
so, with F = the free memory at startup (CUDA total - CUDA context - torch.distributed/NCCL buffers),
    pool = mem_fraction_static x F - weights
    max_total_num_tokens = pool // cell_size, then rounded down to --page-size (1 by default)
    cell_size = per-token KV bytes over this rank's layers:
        MHA/GQA: kv_heads/tp x head_dim x 2 x layers x bytes;  MLA: (kv_lora_rank + qk_rope_head_dim) x layers x bytes
The log prints it as "KV Cache is allocated. #tokens: N, K size: X GB, V size: Y GB" and
"max_total_num_tokens=N"; SGLang's "GB" are GiB (it divides by 1 << 30).
The request-to-token table, CUDA graphs and activations live outside the fraction (the 1 - fraction remainder).

Free memory at startup is not derivable from a config. kvplan takes it from a public SGLang startup log
(sgl-project/sglang#11716, H200 TP8): the CUDA context costs 0.50 GiB and "Init torch distributed ends.
mem usage=1.77-2.01 GB" (2.01 GiB on most ranks) when more than one GPU serves a replica.

Default --mem-fraction-static (used when no --util is given):
- 0.5.23 `srt/arg_groups/memory_hook.py` handle_gpu_memory_settings (CUDA, no DP attention / speculative /
  disaggregation; gpu_mem = nvidia-smi memory.total in MiB):
      reserved = 512 + 1.5 x max(chunked_prefill_size, 2048) + tp x pp / 8 x 1024
                 + 2 x decode cuda_graph max_bs + prefill-graph reserve (8 MiB per captured size, 1.5 GiB with MLA;
                   none with PP, which disables breakable prefill graphs)
      reserved = max(reserved, 10 GiB) when gpu_mem > 60 GiB;   fraction = round((gpu_mem - reserved) / gpu_mem, 3)
  chunked_prefill_size / max_bs by gpu_mem: <20 GiB 2048/8; <35 GiB 4096/48 (160 at TP>=4); <60 GiB 4096/32 (160);
  <90 GiB 8192/256 (512); <160 GiB 8192/256 (512); else 16384/512.
- 0.4.9.post2 `srt/server_args.py` __post_init__: reserved = (2.8 + tp x pp / 10) GiB below 35 GiB, (9.5 + tp x pp / 2)
  below 90 GiB, (12 + tp x pp / 2) below 160 GiB, else 32 GiB; multimodal models x 0.90.
Hybrid-SWA architectures (Llama-4, gpt-oss, ... in 0.5.x) and Mamba / linear-attention hybrids get separate pools
whose default split kvplan does not model: those raise UnsupportedModelError. Other sliding-window models
(Mistral, Gemma-2/3) get one full-length pool, as SGLang allocates it.
"""

from __future__ import annotations

import math

from kvplan.budget import Budget, Term, check_util
from kvplan.capacity import token_capacity
from kvplan.deployment import Deployment, Stage
from kvplan.engines import EngineSettings, Printed, Scenario, engine_total, parse_version
from kvplan.engines.vllm import loaded_weights
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import GPU
from kvplan.model.spec import (
    MLAKV,
    TOWER_ROLES,
    AttentionKV,
    CrossAttentionKV,
    GatedDeltaNetState,
    Mamba1State,
    Mamba2State,
    NoKV,
)
from kvplan.units import GiB, MiB

DEFAULT_VERSION = "0.5.23"
DEFAULT_PAGE_SIZE = 1

# Memory in use before SGLang measures "free memory at startup" (see the module docstring).
CUDA_CONTEXT_GIB = 0.50
DISTRIBUTED_INIT_GIB = 2.01
STARTUP_SOURCE = ("public SGLang log sgl-project/sglang#11716 (H200 TP8, CUDA total 139.80 GiB): "
                  "'Load weight begin. avail mem=137.29 GB' after 'Init torch distributed ends. mem usage=2.01 GB'")

# Architectures SGLang 0.5.x serves with its hybrid SWA pool (srt/configs/model_config.py is_hybrid_swa_model),
# by config model_type.
HYBRID_SWA_MODEL_TYPES = frozenset({"llama4", "gpt_oss", "mimo_v2_flash", "step3p5", "gemma4", "gemma4_text"})





# --------------------------------------------------------------------------------------- default fraction

def _gpu_defaults(gpu_mem_mib: float, tp: int) -> tuple[int, int]:
    """(chunked_prefill_size, decode cuda graph max_bs) of SGLang 0.5.23 for a GPU of `gpu_mem_mib` MiB."""
    if gpu_mem_mib < 20 * 1024:
        return 2048, 8
    if gpu_mem_mib < 35 * 1024:
        return 4096, 48 if tp < 4 else 160
    if gpu_mem_mib < 60 * 1024:
        return 4096, 32 if tp < 4 else 160
    if gpu_mem_mib < 160 * 1024:
        return 8192, 256 if tp < 4 else 512
    return 16384, 512


def prefill_graph_sizes(max_bs: int) -> list[int]:
    """Token counts SGLang 0.5.23 captures prefill CUDA graphs for (cuda_graph_hook.py)."""
    sizes = (list(range(4, 33, 4)) + list(range(48, 257, 16)) + list(range(288, 513, 32))
             + list(range(576, 1025, 64)) + list(range(1280, 4097, 256)) + list(range(4608, max_bs + 1, 512)))
    return [s for s in sizes if s <= max_bs]


def chunked_prefill_size(total_bytes: int, tp: int) -> int:
    return _gpu_defaults(total_bytes / MiB, tp)[0]


def default_mem_fraction_static(total_bytes: int, tp: int, *, pp: int = 1, mla: bool = False,
                                multimodal: bool = False, version: str | None = None) -> float:
    """SGLang's --mem-fraction-static when none is given, for a GPU whose nvidia-smi total is `total_bytes`.

    0.5.x: the 0.5.23 rule; 0.4.x: the 0.4.9.post2 rule (see the module docstring). The 0.5.x adjustment for
    vision-language models (which depends on the ViT's size) is not applied.
    """
    gpu_mem = total_bytes / MiB
    if gpu_mem <= 0:
        raise InputError("the GPU memory must be positive")
    parallel = tp * pp
    if parse_version(version, DEFAULT_VERSION) < (0, 5, 0):
        if gpu_mem < 35 * 1024:
            reserved = (2.8 + parallel / 10) * 1024
        elif gpu_mem < 90 * 1024:
            reserved = (9.5 + parallel / 2) * 1024
        elif gpu_mem < 160 * 1024:
            reserved = (12 + parallel / 2) * 1024
        else:
            reserved = 32 * 1024
        fraction = round((gpu_mem - reserved) / gpu_mem, 3)
        return fraction * 0.90 if multimodal else fraction
    chunk, max_bs = _gpu_defaults(gpu_mem, tp)
    reserved = 512 + max(chunk, 2048) * 1.5 + parallel / 8 * 1024 + max_bs * 2
    if pp == 1:  # breakable prefill CUDA graphs are on by default on CUDA, off with PP
        reserved += 1.5 * 1024 if mla else len(prefill_graph_sizes(min(chunk, 8192) if mla else chunk)) * 8
    if gpu_mem > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((gpu_mem - reserved) / gpu_mem, 3)


# ----------------------------------------------------------------------------------------------- the pool

def startup_in_use(tp: int, pp: int) -> tuple[int, str]:
    """Memory already in use when SGLang measures the free memory at startup (one GPU)."""
    gib = CUDA_CONTEXT_GIB + (DISTRIBUTED_INIT_GIB if tp * pp > 1 else 0.0)
    parts = f"CUDA context {CUDA_CONTEXT_GIB} GiB" + (
        f" + torch.distributed init {DISTRIBUTED_INIT_GIB} GiB" if tp * pp > 1 else "")
    return round(gib * GiB), f"estimate: {parts} ({STARTUP_SOURCE})"


def _check_kv_dtype(dep: Deployment) -> None:
    if dep.kv_dtype in ("int8", "int4"):
        raise InputError(f"SGLang has no {dep.kv_dtype} KV cache (--kv-cache-dtype auto, fp8_e4m3, fp8_e5m2): "
                         "use --kv-dtype auto or fp8")


def cell_size(dep: Deployment, stage: Stage, version: tuple[int, int, int]) -> int:
    """Bytes one token takes on one GPU of `stage`, over all its attention layers (SGLang's cell_size)."""
    if version >= (0, 5, 0) and dep.model.model_type in HYBRID_SWA_MODEL_TYPES and any(
            isinstance(layer.kv, AttentionKV) and layer.kv.window for layer in dep.model.layers):
        raise UnsupportedModelError(
            f"SGLang serves {dep.model.model_type} with a hybrid sliding-window pool (swa_full_tokens_ratio) "
            "that kvplan does not model")
    cell = 0.0
    for layer in stage.layers:
        kv = layer.kv
        if isinstance(kv, Mamba1State | Mamba2State | GatedDeltaNetState):
            raise UnsupportedModelError("SGLang sizes a separate Mamba / linear-attention state pool for hybrid "
                                        "models (max_mamba_cache_size) by rules kvplan does not model")
        if isinstance(kv, CrossAttentionKV):
            raise UnsupportedModelError("kvplan does not model SGLang's encoder cache for cross-attention models")
        if isinstance(kv, AttentionKV | MLAKV):  # windowed layers too: SGLang keeps them at full length
            cell += kv.bytes_per_token(dep.kv_bytes, dep.tp)
        elif not isinstance(kv, NoKV):
            raise UnsupportedModelError(f"kvplan does not model SGLang's cache for {kv.kind} layers")
    if cell <= 0:
        raise UnsupportedModelError("this stage holds no attention layer: SGLang would allocate no KV pool")
    return round(cell)





def _context(dep: Deployment, settings: EngineSettings, engine: str) -> int:
    context = settings.max_model_len or dep.model.max_context
    if not context:
        raise InputError("the config states no context length: give --max-model-len")
    if dep.model.max_context and context > dep.model.max_context:
        raise InputError(f"--max-model-len {context} exceeds the model's context length {dep.model.max_context}; "
                         f"{engine} refuses it")
    return context


def max_running_requests(tokens: int, context: int, requested: int | None) -> int:
    """SGLang 0.5.23 resolve_max_num_reqs: clamp(tokens / context_len x 512, 2048, 4096), never above tokens // 2."""
    if requested is not None:
        return max(1, min(requested, tokens // 2))
    estimated = max(min(int(tokens / context * 512), 4096), 2048)
    return max(0, min(estimated, tokens // 2))


def scenario(dep: Deployment, gpu: GPU | None, util: float | None, settings: EngineSettings, seq: int, batch: int,
             replicas: int, reserve: int = 0, kv_memory: int | None = None) -> Scenario:
    if reserve < 0:
        raise InputError(f"--reserve must not be negative (got {reserve})")
    _check_kv_dtype(dep)
    version = parse_version(settings.version, DEFAULT_VERSION)
    page = settings.block_size or DEFAULT_PAGE_SIZE
    total, total_source = engine_total(gpu, settings, kv_memory)
    smi_total = gpu.memory_bytes if gpu is not None else total
    multimodal = any(t.role in TOWER_ROLES for t in dep.model.tensors)
    mla = any(isinstance(layer.kv, MLAKV) for layer in dep.model.layers)
    notes: list[str] = []
    fraction = check_util(util) if util is not None else 0.9
    if util is None and smi_total:
        fraction = default_mem_fraction_static(smi_total, dep.tp, pp=dep.pp, mla=mla, multimodal=multimodal,
                                               version=settings.version)
        notes.append(f"--mem-fraction-static {fraction} is SGLang {'.'.join(map(str, version))}'s default for "
                     f"{smi_total / MiB:,.0f} MiB at TP {dep.tp}")
        if multimodal and version >= (0, 5, 0):
            notes.append("SGLang 0.5.x lowers the default fraction further for vision models (by ViT size): "
                         "not applied")
    cells = [cell_size(dep, stage, version) for stage in dep.stages]
    budgets = []
    if kv_memory is not None:
        budgets = [Budget(None, None, None, (), kv_memory, pool_given=True) for _ in dep.stages]
    else:
        in_use, in_use_source = startup_in_use(dep.tp, dep.pp)
        usable = math.floor(total * fraction)
        for stage in dep.stages:
            weights, w_source = loaded_weights(dep, stage)
            terms = [Term("in use at startup x fraction", round(in_use * fraction),
                          f"{fraction} x {in_use:,} B: the fraction applies to the free memory at startup; "
                          f"{in_use_source}"),
                     Term("weights", weights, f"as loaded: {w_source}")]
            if reserve:
                terms.append(Term("reserve", reserve, "--reserve"))
            budgets.append(Budget(total, fraction, usable, tuple(terms), usable - sum(t.bytes for t in terms)))
    per_stage = [max(0, b.kv_pool) // c for b, c in zip(budgets, cells, strict=True)]
    tokens = min(per_stage) // page * page
    context = _context(dep, settings, "SGLang")
    running = max_running_requests(tokens, context, settings.max_num_seqs)
    cap = token_capacity(tokens, cells, budgets, seq, batch, replicas, context, running, page,
                         "max_model_len" if settings.max_model_len else "model context")
    printed = Printed(
        engine="sglang", version=".".join(map(str, version)), total_bytes=total, total_source=total_source,
        max_model_len=context, block_size=page, kv_tokens=tokens, max_concurrency=tokens / context,
        max_num_seqs=running, max_num_batched_tokens=settings.max_num_batched_tokens or (
            chunked_prefill_size(smi_total, dep.tp) if smi_total else None),
        notes=tuple(notes),
    )
    return Scenario(gpu, fraction, tuple(budgets), cap, printed)


