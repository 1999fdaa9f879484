"""llama.cpp's memory accounting: the whole KV cache is allocated up front, read from llama.cpp's own source.

Source: ggml-org/llama.cpp at 0c1e57098 (the copy vendored in the llama-cpp-python 0.3.36 sdist on PyPI).

Context (`src/llama-context.cpp` llama_context::llama_context):
    n_ctx = -c, or the model's training context when -c is 0 (common/common.h: `n_ctx = 0`, the default since
            PR #16653, Dec 2025, which also added `--fit` to shrink an unset context to free memory; from PR #10136,
            Nov 2024, until then the default was 4096)
    n_ctx = GGML_PAD(n_ctx, 256);  with -np N slots and no --kv-unified: n_ctx_seq = GGML_PAD(n_ctx / N, 256),
            n_ctx = n_ctx_seq x N.  kvplan: -c = seq x batch, -np = batch.
Cache (`src/llama-kv-cache.cpp`): per layer, K is a [n_embd_k_gqa, kv_size, n_stream] tensor of type_k and V the same
with n_embd_v_gqa and type_v; n_stream = N (one stream per slot), kv_size = n_ctx_seq, so every layer holds n_ctx
cells:  bytes = n_ctx x sum over layers (row(type_k, n_kv_heads x head_dim_k) + row(type_v, n_kv_heads x head_dim_v)).
MLA (DeepSeek) caches K only: kv_lora_rank + qk_rope_head_dim. type_k / type_v default f16 (2 B, whatever the model
dtype); --cache-type-k/v q8_0 is 34 B per 32 elements, q4_0 18 B per 32 (ggml/src/ggml.c type traits), and
quantized V needs flash attention.
Sliding-window layers (`src/llama-kv-cache-iswa.cpp`), in architectures that interleave them with full layers
(Gemma-2/3, Cohere2, gpt-oss, OLMo-2/3, Llama-4 chunked, ...): the SWA cache holds
    GGML_PAD(min(n_ctx_seq, n_swa + n_ubatch), 256) cells per stream (n_ubatch 512), unless --swa-full.
Architectures whose every layer carries the config's window (Mistral, Phi-3, Qwen2) get a full cache: their graphs
set no SWA type. Recurrent (Mamba) state is not modeled: UnsupportedModelError.

Weights: the deployment's tensors less the input embedding, which llama.cpp always keeps in host memory
(`src/llama-model.cpp`: "there is very little benefit to offloading the input layer"); a tied embedding is
loaded again on the GPU as the output layer. Multi-GPU is a layer split (--split-mode layer), modeled as --pp.
Not modeled: the compute buffers (sized by n_ubatch and n_ctx), left to the headroom of --util.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from kvplan.budget import Budget, Term, check_util
from kvplan.capacity import Capacity, largest, per_replica
from kvplan.deployment import Deployment, Stage
from kvplan.engines import EngineSettings, Printed, Scenario, engine_total
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import GPU
from kvplan.model.spec import MLAKV, AttentionKV, NoKV

DEFAULT_VERSION = "0c1e57098"
DEFAULT_HEADROOM = 0.9  # llama.cpp has no utilization flag: kvplan leaves 10% for its compute buffers
PAD = 256  # GGML_PAD of n_ctx and n_ctx_seq, and of the SWA cache
N_UBATCH = 512  # common_params.n_ubatch default
# kvplan --kv-dtype -> (ggml type, bytes per block, elements per block)
CACHE_TYPES = {"auto": ("f16", 2, 1), "fp16": ("f16", 2, 1), "bf16": ("bf16", 2, 1), "fp32": ("f32", 4, 1),
               "int8": ("q8_0", 34, 32), "int4": ("q4_0", 18, 32)}


def _pad(n: int, multiple: int = PAD) -> int:
    return -(-n // multiple) * multiple


def cache_type(kv_dtype: str) -> tuple[str, int, int]:
    if kv_dtype not in CACHE_TYPES:
        raise InputError(f"llama.cpp has no {kv_dtype} KV cache type: use --kv-dtype auto (f16), bf16, fp32, "
                         "int8 (q8_0) or int4 (q4_0)")
    return CACHE_TYPES[kv_dtype]


def row_bytes(n: int, kv_dtype: str) -> int:
    """ggml_row_size: bytes of `n` elements of the cache type."""
    name, size, block = cache_type(kv_dtype)
    if n % block:
        raise InputError(f"{name} needs rows of a multiple of {block} elements; this model's are {n}")
    return n // block * size


def context(seq: int, slots: int, unified: bool = False) -> tuple[int, int]:
    """(n_ctx, n_ctx_seq) llama.cpp allocates for -c seq x slots -np slots."""
    n_ctx = _pad(seq * slots)
    if unified or slots == 1:
        return n_ctx, n_ctx
    n_ctx_seq = _pad(n_ctx // slots)
    return n_ctx_seq * slots, n_ctx_seq


def _interleaved(dep: Deployment) -> bool:
    windows = [bool(layer.kv.window) for layer in dep.model.layers if isinstance(layer.kv, AttentionKV)]
    return any(windows) and not all(windows)


def layer_cells(dep: Deployment, stage: Stage) -> list[tuple[int, int | None]]:
    """(bytes per cell, SWA window or None) of each cached layer of `stage`."""
    out: list[tuple[int, int | None]] = []
    iswa = _interleaved(dep)
    for layer in stage.layers:
        kv = layer.kv
        if isinstance(kv, AttentionKV):
            k = row_bytes(kv.num_kv_heads * kv.head_dim, dep.kv_dtype)
            v = row_bytes(kv.num_kv_heads * kv.v_head_dim, dep.kv_dtype)
            out.append((k + v, kv.window if iswa and kv.window else None))
        elif isinstance(kv, MLAKV):
            out.append((row_bytes(kv.kv_lora_rank + kv.qk_rope_head_dim, dep.kv_dtype), None))
        elif not isinstance(kv, NoKV):
            raise UnsupportedModelError(f"kvplan does not model llama.cpp's memory for {kv.kind} layers")
    if not out:
        raise UnsupportedModelError("this stage holds no attention layer: llama.cpp would allocate no KV cache")
    return out


def kv_bytes(cells: list[tuple[int, int | None]], seq: int, slots: int) -> int:
    """Bytes llama.cpp allocates on one GPU for `slots` parallel sequences of `seq` tokens."""
    n_ctx, n_ctx_seq = context(seq, slots)
    total = 0
    for size, window in cells:
        if window:
            total += size * _pad(min(n_ctx_seq, window + N_UBATCH)) * (n_ctx // n_ctx_seq)
        else:
            total += size * n_ctx
    return total


def gpu_weights(dep: Deployment, stage: Stage) -> tuple[int, str]:
    """Weights on the GPU: the stage's tensors, less the input embedding on the first stage (kept on the host)."""
    if stage.index != 0:
        return stage.weights_bytes, "tensor inventory x bytes per element (this GPU's layers)"
    embedding = round(sum(dep.tensor_bytes(t) for t in dep.model.tensors if t.role == "embedding"))
    if dep.model.tie_word_embeddings and len(dep.stages) == 1:
        return stage.weights_bytes, "tensor inventory (tied embedding loaded on the GPU as the output layer)"
    return (stage.weights_bytes - embedding,
            f"tensor inventory {stage.weights_bytes:,} B less the input embedding {embedding:,} B (host memory)")


def scenario(dep: Deployment, gpu: GPU | None, util: float | None, settings: EngineSettings, seq: int, batch: int,
             replicas: int, reserve: int = 0, kv_memory: int | None = None) -> Scenario:
    util = check_util(util) if util is not None else DEFAULT_HEADROOM
    if reserve < 0:
        raise InputError(f"--reserve must not be negative (got {reserve})")
    if dep.tp > 1:
        raise InputError("llama.cpp splits a model across GPUs by layers (--split-mode layer): use --pp, not --tp")
    cache_type(dep.kv_dtype)
    slots = per_replica(batch, replicas)
    cells = [layer_cells(dep, stage) for stage in dep.stages]
    n_ctx, n_ctx_seq = context(seq, slots)
    memory, source = engine_total(gpu, settings, kv_memory)
    budgets = []
    for stage in dep.stages:
        if kv_memory is not None:
            budgets.append(Budget(None, None, None, (), kv_memory, pool_given=True))
            continue
        usable = math.floor(memory * util)
        weights, w_source = gpu_weights(dep, stage)
        terms = [Term("weights", weights, w_source)]
        if reserve:
            terms.append(Term("reserve", reserve, "--reserve (compute buffers, CUDA context)"))
        budgets.append(Budget(memory, util, usable, tuple(terms), usable - sum(t.bytes for t in terms)))
    model_context = settings.max_model_len or dep.model.max_context
    cap = _capacity(cells, budgets, seq, batch, replicas, model_context)
    notes = [f"-c {seq * slots} -np {slots}: n_ctx {n_ctx:,} (n_ctx_seq {n_ctx_seq:,}), "
             f"cache type {cache_type(dep.kv_dtype)[0]}"]
    if any(window for stage_cells in cells for _, window in stage_cells):
        notes.append("sliding-window layers hold min(n_ctx_seq, n_swa + 512) cells per slot (no --swa-full)")
    printed = Printed(
        engine="llamacpp", version=settings.version or DEFAULT_VERSION, total_bytes=memory, total_source=source,
        max_model_len=n_ctx_seq, kv_tokens=n_ctx, max_concurrency=float(slots), max_num_seqs=slots,
        max_num_batched_tokens=N_UBATCH, notes=tuple(notes),
    )
    return Scenario(gpu, util, tuple(budgets), cap, printed)


def _capacity(cells: list[list[tuple[int, int | None]]], budgets: list[Budget], seq: int, batch: int,
              replicas: int, model_context: int | None) -> Capacity:
    local = per_replica(batch, replicas)
    pools = [b.kv_pool for b in budgets]

    def fits_all(need: Callable[[list[tuple[int, int | None]]], int]) -> bool:
        return all(need(c) <= pool for c, pool in zip(cells, pools, strict=True))

    needs = [kv_bytes(c, seq, local) for c in cells]
    binding = min(range(len(pools)), key=lambda s: pools[s] - needs[s])
    concurrent = largest(lambda n: fits_all(lambda c: kv_bytes(c, seq, n)), 1 << 24)
    memory = largest(lambda length: fits_all(lambda c: kv_bytes(c, length, local)), 1 << 32)
    tokens = largest(lambda length: fits_all(lambda c: kv_bytes(c, length, 1)), 1 << 32)
    if model_context and memory > model_context:
        longest, limited_by = model_context, "model context"
    else:
        longest, limited_by = memory, "memory"
    ok = all(p >= 0 for p in pools) and all(n <= p for n, p in zip(needs, pools, strict=True))
    if model_context:
        ok = ok and seq <= model_context
    return Capacity(
        seq=seq, batch=batch, replicas=replicas, request_bytes=max(kv_bytes(c, seq, 1) for c in cells),
        kv_cache_bytes=max(needs), kv_pool_bytes=pools[binding], max_concurrent_requests=concurrent * replicas,
        max_seq_len=longest, max_seq_len_limited_by=limited_by, max_seq_len_memory=memory, max_tokens=tokens,
        fits=ok, shortfall_bytes=max(0, max(n - max(p, 0) for n, p in zip(needs, pools, strict=True))),
    )
