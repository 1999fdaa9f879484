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
from dataclasses import dataclass

from kvplan.budget import Budget, Term, TermKind
from kvplan.capacity import LimitedBy, Pool, largest, per_replica
from kvplan.deployment import Deployment, Stage
from kvplan.engines.base import Engine, EngineSettings, Launch, Printed, Setup, Startup, Version
from kvplan.engines.common import pad
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.model.spec import SELF_ATTENTION, Retention

PAD = 256  # GGML_PAD of n_ctx and n_ctx_seq, and of the SWA cache
N_UBATCH = 512  # common_params.n_ubatch default
# kvplan --kv-dtype -> (ggml type, bytes per block, elements per block)
CACHE_TYPES = {"auto": ("f16", 2, 1), "fp16": ("f16", 2, 1), "bf16": ("bf16", 2, 1), "fp32": ("f32", 4, 1),
               "int8": ("q8_0", 34, 32), "int4": ("q4_0", 18, 32)}

Cells = list[tuple[int, int | None]]  # (bytes per cell, SWA window or None) of each cached layer of a stage


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
    n_ctx = pad(seq * slots, PAD)
    if unified or slots == 1:
        return n_ctx, n_ctx
    n_ctx_seq = pad(n_ctx // slots, PAD)
    return n_ctx_seq * slots, n_ctx_seq


_context_sizes = context  # the hook `printed` has a parameter named context


def _interleaved(dep: Deployment) -> bool:
    windows = [bool(layer.kv.window) for layer in dep.model.layers if layer.kv.retention in SELF_ATTENTION]
    return any(windows) and not all(windows)


def layer_cells(dep: Deployment, stage: Stage) -> Cells:
    """(bytes per cell, SWA window or None) of each cached layer of `stage`: the one mapping from kvplan's KV
    specs to llama.cpp's cache (K and V rows per layer, unsharded; MLA caches K only)."""
    out: Cells = []
    iswa = _interleaved(dep)
    for layer in stage.layers:
        kv = layer.kv
        if kv.retention == Retention.NONE:
            continue
        if kv.retention not in (Retention.FULL, Retention.SLIDING, Retention.CHUNKED):
            raise UnsupportedModelError(f"kvplan does not model llama.cpp's memory for {kv.kind} layers")
        k, v = kv.k_width(1), kv.v_width(1)
        size = row_bytes(k, dep.kv_dtype) + (row_bytes(v, dep.kv_dtype) if v else 0)
        out.append((size, kv.window if iswa and kv.window else None))
    if not out:
        raise UnsupportedModelError("this stage holds no attention layer: llama.cpp would allocate no KV cache")
    return out


def kv_bytes(cells: Cells, seq: int, slots: int) -> int:
    """Bytes llama.cpp allocates on one GPU for `slots` parallel sequences of `seq` tokens."""
    n_ctx, n_ctx_seq = context(seq, slots)
    total = 0
    for size, window in cells:
        if window:
            total += size * pad(min(n_ctx_seq, window + N_UBATCH), PAD) * (n_ctx // n_ctx_seq)
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


class SlotPool(Pool):
    """llama.cpp's whole allocation for N slots: every stage must hold kv_bytes(cells, L, N)."""

    def __init__(self, budgets: list[Budget], cells: list[Cells], seq: int, slots: int) -> None:
        self.cells, self.pools = cells, [b.kv_pool for b in budgets]
        needs = [kv_bytes(c, seq, slots) for c in cells]
        super().__init__(budgets, min(range(len(self.pools)), key=lambda s: self.pools[s] - needs[s]))

    def holds(self, requests: int, length: int) -> bool:
        return all(kv_bytes(c, length, requests) <= pool for c, pool in zip(self.cells, self.pools, strict=True))

    def max_requests(self, length: int) -> int:
        return largest(lambda n: self.holds(n, length), 1 << 24)

    def request_bytes(self, length: int) -> int:
        return max(kv_bytes(c, length, 1) for c in self.cells)

    def need_bytes(self, requests: int, length: int) -> int:
        return max(kv_bytes(c, length, requests) for c in self.cells)

    def longest(self, requests: int) -> int | None:
        return largest(lambda length: self.holds(requests, length), 1 << 32)

    def max_tokens(self) -> int | None:
        return self.longest(1)

    def shortfall(self, requests: int, length: int) -> int:
        return max(0, max(kv_bytes(c, length, requests) - p for c, p in zip(self.cells, self.pools, strict=True)))


@dataclass(frozen=True)
class LlamacppOptions:
    """llama-server's flags as kvplan sets them: -c seq x slots, -np slots."""

    n_ctx_train: int | None = None  # the context the model states (or --max-model-len)


class LlamaCpp(Engine):
    name = "llamacpp"
    label = "llama.cpp"
    default_version = "0c1e57098"  # ggml-org/llama.cpp commit (the copy vendored in llama-cpp-python 0.3.36)
    default_util = 0.9  # llama.cpp has no utilization flag: kvplan leaves 10% for its compute buffers
    options_class = LlamacppOptions
    csv_names = ("llama.cpp",)

    def version(self, settings: EngineSettings) -> Version:
        return (0, 0, 0)  # llama.cpp is versioned by commit: no rule depends on it yet

    def options(self, settings: EngineSettings) -> LlamacppOptions:
        return LlamacppOptions(settings.max_model_len)

    def resolve(self, setup: Setup) -> None:
        if setup.dep.tp > 1:
            raise InputError("llama.cpp splits a model across GPUs by layers (--split-mode layer): use --pp, not "
                             "--tp")
        cache_type(setup.dep.kv_dtype)

    def stage_layout(self, setup: Setup, stage: Stage) -> Cells:
        return layer_cells(setup.dep, stage)

    def budget(self, setup: Setup, stage: Stage, layout: Cells, fraction: float) -> Budget:
        weights, w_source = gpu_weights(setup.dep, stage)
        terms = [Term(TermKind.WEIGHTS, weights, w_source)]
        if setup.reserve:
            terms.append(Term(TermKind.RESERVE, setup.reserve, "--reserve (compute buffers, CUDA context)"))
        return Budget.of(setup.total, fraction, math.floor(setup.total * fraction), terms)

    def pool(self, setup: Setup, layouts: list[Cells], budgets: list[Budget]) -> SlotPool:
        return SlotPool(budgets, layouts, setup.seq, per_replica(setup.batch, setup.replicas))

    def context(self, setup: Setup, pool: Pool) -> tuple[int | None, LimitedBy, bool]:
        return setup.options.n_ctx_train or setup.dep.model.max_context, LimitedBy.MODEL_CONTEXT, True

    def launch_command(self, launch: Launch) -> str:
        """llama-server (tools/server): -c is the whole context, split over -np slots; every layer on the GPU."""
        slots = launch.batch
        parts = [f"llama-server -m {launch.model('GGUF')}", f"-c {launch.max_model_len * slots}", f"-np {slots}",
                 "-ngl 999"]
        parts += [f"--split-mode layer -ts {','.join(['1'] * launch.pp)}"] if launch.pp > 1 else []
        name = cache_type(launch.kv_dtype)[0]
        parts += [f"--cache-type-k {name} --cache-type-v {name} -fa on"] if name not in ("f16",) else []
        return " ".join(parts)

    def startup(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Startup:
        """llama.cpp allocates the whole cache (and the weights) when it starts: what does not fit fails then."""
        assert isinstance(pool, SlotPool)
        slots = per_replica(setup.batch, setup.replicas)
        if any(b.kv_pool < 0 for b in budgets):
            return Startup(False, f"{self.label} will not start: the weights alone exceed the memory; quantize "
                                  "further or split over more GPUs (--split-mode layer)", 0)
        if not pool.holds(slots, setup.seq):
            longest = pool.longest(slots) or 0
            return Startup(False, f"{self.label} will not start: cannot allocate the KV cache for -c "
                                  f"{setup.seq * slots:,} -np {slots}; the largest context per slot that fits is "
                                  f"{longest:,} (or lower -np, or --cache-type-k/v q8_0)", longest)
        return Startup(True, longest_context=setup.seq)

    def batching(self, printed: Printed) -> tuple[bool, bool] | None:
        """One llama_decode batch per pass: every slot's next token and prompt tokens up to the batch size
        (tools/server/server.cpp update_slots)."""
        return True, True

    def printed(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Printed:
        assert isinstance(pool, SlotPool)
        slots = per_replica(setup.batch, setup.replicas)
        n_ctx, n_ctx_seq = _context_sizes(setup.seq, slots)
        notes = [f"-c {setup.seq * slots} -np {slots}: n_ctx {n_ctx:,} (n_ctx_seq {n_ctx_seq:,}), "
                 f"cache type {cache_type(setup.dep.kv_dtype)[0]}"]
        if any(window for stage_cells in pool.cells for _, window in stage_cells):
            notes.append("sliding-window layers hold min(n_ctx_seq, n_swa + 512) cells per slot (no --swa-full)")
        return Printed(
            engine=self.name, version=setup.settings.version or self.default_version, total_bytes=setup.total,
            total_source=setup.total_source, max_model_len=n_ctx_seq, kv_tokens=n_ctx, max_concurrency=float(slots),
            max_num_seqs=slots, max_num_batched_tokens=N_UBATCH, notes=tuple(notes),
        )
