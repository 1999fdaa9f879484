"""vLLM's memory accounting (V1 engine, and V0 for old logs), read from vLLM's own source.

Budget (`v1/worker/gpu_worker.py` determine_available_memory):
    requested = ceil(CUDA total x gpu_memory_utilization)
    available KV = requested - weights - non-torch increase - activation peak [- CUDA-graph estimate, >= 0.20]
Weights are what `Model loading took` measures: the tensors as loaded (vocab padded to 64, quantized layouts)
plus RoPE cos/sin tables. Non-torch memory and the activation peak are not derivable from a config: they are
constants fitted on public startup logs by `benchmarks/fit_vllm_constants.py` (data/vllm-constants.toml).

Blocks (`v1/core/kv_cache_utils.py`): layers with the same KV spec share one group; hybrid models (sliding +
full, Mamba + attention) are split into groups of equal size with one page size (Mamba pages padded,
attention blocks enlarged). num_blocks = available // page // layers per group, the minimum over stages.
The printed lines: "GPU KV cache size: N tokens" and "Maximum concurrency for L tokens per request: C x".
Rules that changed between versions are keyed by version below; docs/vllm-rules.md has the source lines.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from kvplan.budget import Budget, Term, check_util
from kvplan.capacity import SEARCH_LIMIT, Capacity, largest, per_replica
from kvplan.deployment import Deployment, Stage
from kvplan.engines import EngineSettings, Printed, Scenario, engine_total, parse_version
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import GPU
from kvplan.model.quant import DTYPE_BYTES
from kvplan.model.spec import (
    MLAKV,
    AttentionKV,
    CrossAttentionKV,
    GatedDeltaNetState,
    Mamba1State,
    Mamba2State,
    NoKV,
)
from kvplan.units import GiB

DEFAULT_VERSION = "0.19.0"  # the newest release with public startup logs in shared/bench (validated)
DEFAULT_V0_VERSION = "0.6.4"  # a V0 release of the public V0 logs (vllm-project/vllm#10517)
DEFAULT_BLOCK_SIZE = 16
DEFAULT_UTIL = 0.9  # --gpu-memory-utilization
VOCAB_PADDING = 64


@cache
def constants() -> dict:
    """Fitted constants (data/vllm-constants.toml), written by benchmarks/fit_vllm_constants.py."""
    return tomllib.loads((resources.files("kvplan") / "data" / "vllm-constants.toml").read_text(encoding="utf-8"))


def _pad(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# ------------------------------------------------------------------------------------------------- defaults

def scheduler_defaults(total_bytes: int, gpu: GPU | None) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) of `vllm serve` (engine/arg_utils.py get_batch_defaults):
    8192 / 1024 on GPUs with >= 70 GiB that are not A100s, else 2048 / 256."""
    name = f"{gpu.alias} {gpu.name}".lower() if gpu else ""
    if total_bytes >= 70 * GiB and "a100" not in name:
        return 8192, 1024
    return 2048, 256


# -------------------------------------------------------------------------------------------------- weights

def loaded_weights(dep: Deployment, stage: Stage) -> tuple[int, str]:
    """What "Model loading took" reports for one GPU of `stage`: the shard as loaded, vocab rows padded to 64,
    plus the RoPE tables (one per distinct rope, in the model dtype unless vLLM keeps it in fp32)."""
    return dep.memo(("vllm.loaded_weights", stage.index), lambda: _loaded_weights(dep, stage))


def _loaded_weights(dep: Deployment, stage: Stage) -> tuple[int, str]:
    extra = 0
    for t in dep.model.tensors:
        if t.role not in ("embedding", "lm_head") or len(t.shape) != 2:
            continue
        on_stage = (t.role == "embedding" and stage.index == 0) or (
            t.role == "lm_head" and stage.index == len(dep.stages) - 1)
        if dep.model.tie_word_embeddings and t.role == "embedding" and stage.index == len(dep.stages) - 1:
            on_stage = True
        if on_stage:
            rows, hidden = t.shape
            padded = _pad(rows, VOCAB_PADDING) // dep.tp
            extra += (padded - t.shard_shape(dep.tp)[0]) * hidden * dep.dense_bytes
    padding = _mxfp4_padding(dep, stage)
    rope = 0.0
    if any(isinstance(layer.kv, AttentionKV | MLAKV) for layer in stage.layers):
        rope = sum(r.positions * r.dim * (4 if r.fp32 else dep.dense_bytes) for r in dep.model.rope)
    total = stage.weights_bytes + extra + padding + rope
    parts = [f"tensors {stage.weights_bytes:,}"]
    if extra:
        parts.append(f"vocab padding to {VOCAB_PADDING} {extra:,.0f}")
    if padding:
        parts.append(f"mxfp4 expert padding {padding:,.0f}")
    if rope:
        parts.append(f"RoPE tables {rope:,.0f}")
    return round(total), " + ".join(parts) + " B"


def _mxfp4_padding(dep: Deployment, stage: Stage) -> float:
    """mxfp4 experts as the Marlin MoE kernel stores them on Hopper (model_executor/layers/fused_moe/oracle/
    mxfp4.py): each rank's intermediate dim rounded up to 128 and the hidden dim to 256."""
    fmt = dep.weight_format
    if not (fmt.experts_only and fmt.bits == 4):
        return 0.0
    layers = {layer.index for layer in stage.layers}
    extra = 0.0
    for t in dep.model.tensors:
        if t.role != "experts" or t.layer not in layers:
            continue
        shape = list(t.shard_shape(dep.tp))
        padded = list(shape)
        if t.name.endswith("gate_up_proj") or t.name.endswith("gate_up_proj_bias"):
            padded[1] = 2 * _pad(shape[1] // 2, 128)
            if len(shape) == 3:
                padded[2] = _pad(shape[2], 256)
        else:  # down_proj (E, H, I) and its bias (E, H)
            padded[1] = _pad(shape[1], 256)
            if len(shape) == 3:
                padded[2] = _pad(shape[2], 128)
        extra += fmt.tensor_bytes(t, tuple(padded), dep.dense_bytes) - fmt.tensor_bytes(t, tuple(shape),
                                                                                        dep.dense_bytes)
    return extra


# ------------------------------------------------------------------------------------------------ overheads

def non_torch(version: tuple[int, int], tp: int, pp: int, nvlink: bool = True, v0: bool = False) -> tuple[int, str]:
    """NCCL / cuBLAS / all-reduce workspace memory that appears during profiling (fitted per setup).

    The ~2 GiB at TP >= 2 was measured on NVLink GPUs (H100 SXM), where vLLM's symmetric-memory and NCCL
    NVLink buffers exist; without NVLink no public log shows it, so the TP 1 figure is used.
    """
    c = constants()["non_torch"]
    if tp > 1 and nvlink:
        gib = c["tp_base_gib"] + c["tp_per_rank_gib"] * tp
        return round(gib * GiB), f"fitted: {c['tp_base_gib']} + {c['tp_per_rank_gib']} x TP GiB ({c['tp_source']})"
    if pp > 1:
        return round(c["pp_gib"] * GiB), f"fitted: {c['pp_gib']} GiB with PP and TP 1 ({c['pp_source']})"
    key = "v0_tp1_gib" if v0 else "tp1_gib" if version >= (0, 18) else "tp1_old_gib"
    return round(c[key] * GiB), f"fitted: {c[key]} GiB at TP 1 ({c[key.replace('gib', 'source')]})"


def _activation_width(dep: Deployment) -> int:
    """Activation elements per token at the forward's peak on one GPU, counted as eager PyTorch holds them in
    the widest layer: the up-projection output (gate + up, or routed experts x top-k + shared experts), the
    activated half of it, and the residual stream (input, output, residual: 3 x hidden); an attention layer
    holds its q/k/v output instead when that is wider."""
    m = dep.model
    hidden = dep.model.hidden_size
    widest = 0.0
    per_layer: dict[int, dict[str, float]] = {}
    for t in m.tensors:
        if t.layer is None or not t.linear or t.split != (len(t.shape) - 2):
            continue
        w = per_layer.setdefault(t.layer, {"attention": 0, "up": 0})
        out = t.shard_shape(dep.tp)[-2]
        if t.role == "attention":
            w["attention"] += out
        elif t.role == "experts":
            w["up"] += out * (m.moe.experts_per_token if m.moe else 1)
        elif t.role in ("mlp", "shared_experts", "ssm"):
            w["up"] += out
    for w in per_layer.values():
        widest = max(widest, 1.5 * w["up"], w["attention"])
    return round(widest + 3 * hidden)


@dataclass(frozen=True)
class ActivationFeatures:
    """What the profiling run's peak scales with (bytes, before the fitted factors)."""

    forward: float  # max_num_batched_tokens x activation dtype x widest per-token activation
    logits: float  # sampler requests x padded vocabulary (fp32 logits and their sorted copies follow it)
    hidden: float  # the forward's hidden states, still alive while the sampler runs
    last_stage: bool
    width: int
    tokens: int
    requests: int
    vocab: int


def activation_features(dep: Deployment, stage: Stage, mnbt: int, max_num_seqs: int) -> ActivationFeatures:
    dtype = DTYPE_BYTES[dep.activation_dtype]
    width = dep.memo(("vllm.activation_width",), lambda: _activation_width(dep))
    requests = min(max_num_seqs, mnbt)
    vocab = _pad(dep.model.vocab_size, VOCAB_PADDING)
    return ActivationFeatures(mnbt * dtype * width, requests * vocab, mnbt * dep.model.hidden_size * dtype,
                              stage.index == len(dep.stages) - 1, width, mnbt, requests, vocab)


def activation(dep: Deployment, stage: Stage, mnbt: int, max_num_seqs: int,
               version: tuple[int, int], v0: bool = False) -> tuple[int, str]:
    """Peak of the profiling run: a forward pass of max_num_batched_tokens, then (last stage only) the
    sampler on max_num_seqs dummy requests over the padded vocabulary.

    V1's two factors are fitted; V0 (eager, no compiled graphs) takes the forward width as counted, and its own
    fitted sampler factor."""
    c = constants()["activation_v0" if v0 else "activation"]
    f = activation_features(dep, stage, mnbt, max_num_seqs)
    factor = 1.0 if v0 else c["forward_factor"]
    peak = factor * f.forward
    source = f"forward {factor} x {mnbt} tokens x width {f.width:,} x dtype"
    if f.last_stage:
        sampler = c["sampler_bytes_per_logit"] * f.logits + f.hidden
        if version[:2] == (0, 16):  # 0.16's profile held logits for the whole batch (fitted on its one public log)
            sampler += c["v016_bytes_per_token_logit"] * mnbt * f.vocab
        source = (f"max({source}, sampler {c['sampler_bytes_per_logit']} B x {f.requests} requests x "
                  f"vocab {f.vocab:,})")
        peak = max(peak, sampler)
    return round(peak), f"fitted: {source} ({c['source']})"


def cudagraph(version: tuple[int, int], enforce_eager: bool) -> tuple[int, str]:
    """Subtracted before sizing the pool only from 0.20 (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 default)."""
    if enforce_eager or version < (0, 20):
        return 0, ""
    c = constants()["cudagraph"]
    return round(c["estimate_gib"] * GiB), f"estimate {c['estimate_gib']} GiB ({c['source']})"


# ------------------------------------------------------------------------------------------------ KV blocks

@dataclass(frozen=True)
class _Spec:
    kind: str  # "full", "sliding", "chunked", "mamba"
    per_token: float  # attention: bytes per token per layer; mamba: state bytes per layer
    window: int = 0


@dataclass(frozen=True)
class KVLayout:
    """The block layout of one stage (vLLM get_kv_cache_groups + get_kv_cache_config_from_groups)."""

    specs: tuple[tuple[_Spec, int], ...]  # (spec, number of layers)
    block_size: int  # attention block size (after hybrid adjustment)
    page: int  # bytes of one block of one layer (uniform after unification)
    group_size: int  # layers per group = tensors sharing one block index
    n_groups: int
    groups_per_spec: tuple[int, ...]
    max_model_len: int
    mnbt: int

    def num_blocks(self, available: int) -> int:
        return max(0, int(available // self.page // self.group_size))

    def bytes_per_block(self) -> int:
        return self.page * self.group_size

    def blocks_per_request(self, seq: int) -> int:
        total = 0
        for (spec, _), groups in zip(self.specs, self.groups_per_spec, strict=True):
            total += groups * self._blocks(spec, seq)
        return total

    def _blocks(self, spec: _Spec, seq: int) -> int:
        bs = self.block_size
        if spec.kind == "mamba":
            return 1
        if spec.kind == "sliding":
            return -(-min(spec.window - 1 + self.mnbt, seq) // bs) + 1
        if spec.kind == "chunked":
            return -(-min(spec.window + self.mnbt, seq) // bs)
        return -(-seq // bs)

    @property
    def min_block_size(self) -> int:
        """The smallest block of any group: a pure Mamba model's block is max_model_len."""
        if all(spec.kind == "mamba" for spec, _ in self.specs):
            return self.max_model_len
        return self.block_size


def _layer_spec(kv, dep: Deployment) -> _Spec | None:
    tp, e = dep.tp, dep.kv_bytes
    if isinstance(kv, NoKV):
        return None
    if isinstance(kv, CrossAttentionKV):
        raise UnsupportedModelError(
            "vLLM's V1 engine does not serve cross-attention (Mllama) models; use --engine vllm-v0 for old releases")
    if isinstance(kv, Mamba1State | Mamba2State | GatedDeltaNetState):
        return _Spec("mamba", kv.state_bytes(e, dep.state_bytes, tp))
    if isinstance(kv, MLAKV):
        return _Spec("full", kv.bytes_per_token(e, tp))
    kind = "full" if not kv.window else ("chunked" if kv.chunked else "sliding")
    return _Spec(kind, kv.bytes_per_token(e, tp), kv.window or 0)


def kv_layout(dep: Deployment, stage: Stage, block_size: int | None, max_model_len: int, mnbt: int,
              version: tuple[int, int]) -> KVLayout:
    counts: dict[_Spec, int] = {}
    for layer in stage.layers:
        spec = _layer_spec(layer.kv, dep)
        if spec is not None:
            counts[spec] = counts.get(spec, 0) + 1
    if not counts:
        raise UnsupportedModelError("this stage holds no layer with a KV cache: vLLM would allocate nothing")
    bs = block_size or DEFAULT_BLOCK_SIZE
    attention = [s for s in counts if s.kind != "mamba"]
    mamba = [s for s in counts if s.kind == "mamba"]
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
        return KVLayout(((spec, n),), bs, page, n, 1, (1,), max_model_len, mnbt)
    sizes = sorted(counts.values())
    ratio = 1.5 if version >= (0, 18) else 1.25
    group_size = sizes[-1] if sizes[-1] < sizes[0] * ratio else sizes[0]
    specs = tuple(counts.items())
    groups = tuple(-(-n // group_size) for _, n in specs)
    return KVLayout(specs, bs, page, group_size, sum(groups), groups, max_model_len, mnbt)


# ------------------------------------------------------------------------------------------------- scenario

def _settings_defaults(dep: Deployment, gpu: GPU | None, settings: EngineSettings,
                       total: int) -> tuple[int, int, int]:
    max_model_len = settings.max_model_len or dep.model.max_context
    if not max_model_len:
        raise InputError("the config states no context length: give --max-model-len")
    if dep.model.max_context and max_model_len > dep.model.max_context:
        raise InputError(f"--max-model-len {max_model_len} exceeds the model's context length "
                         f"{dep.model.max_context}; vLLM refuses it")
    mnbt_default, seqs_default = scheduler_defaults(total, gpu)
    max_num_seqs = settings.max_num_seqs or seqs_default
    if settings.max_num_batched_tokens:
        mnbt = settings.max_num_batched_tokens
    elif settings.engine == "vllm-v0":  # V0 without chunked prefill profiles a whole max_model_len prompt
        mnbt = max(max_model_len, mnbt_default)
    else:  # V1: chunked prefill on; the default is clamped to max_num_seqs x max_model_len
        mnbt = min(mnbt_default, max_num_seqs * max_model_len)
    return max_model_len, mnbt, max_num_seqs


def scenario(dep: Deployment, gpu: GPU | None, util: float | None, settings: EngineSettings, seq: int, batch: int,
             replicas: int, reserve: int = 0, kv_memory: int | None = None) -> Scenario:
    util = DEFAULT_UTIL if util is None else check_util(util)
    v0 = settings.engine == "vllm-v0"
    version = parse_version(settings.version, DEFAULT_V0_VERSION if v0 else DEFAULT_VERSION)
    total, total_source = engine_total(gpu, settings, kv_memory)
    max_model_len, mnbt, max_num_seqs = _settings_defaults(dep, gpu, settings, total)
    requested = math.ceil(total * util)
    budgets, layouts = [], []
    nt, nt_source = non_torch(version, dep.tp, dep.pp, gpu.nvlink if gpu and gpu.interconnect else True, v0)
    cg, cg_source = cudagraph(version, settings.enforce_eager or v0)
    for stage in dep.stages:
        if v0:
            layout = _v0_layout(dep, stage, settings.block_size)
        else:
            key = ("vllm.kv_layout", stage.index, settings.block_size, max_model_len, mnbt, version)
            layout = dep.memo(key, lambda s=stage: kv_layout(dep, s, settings.block_size, max_model_len, mnbt,
                                                              version))
        layouts.append(layout)
        if kv_memory is not None:
            budgets.append(Budget(None, None, None, (), kv_memory, pool_given=True))
            continue
        weights, w_source = loaded_weights(dep, stage)
        act, act_source = activation(dep, stage, mnbt, max_num_seqs, version, v0)
        terms = [Term("weights", weights, f"as loaded: {w_source}"),
                 Term("non-torch", nt, nt_source),
                 Term("activation peak", act, act_source)]
        if cg:
            terms.append(Term("CUDA graphs", cg, cg_source))
        if reserve:
            terms.append(Term("reserve", reserve, "--reserve"))
        available = requested - sum(t.bytes for t in terms)
        budgets.append(Budget(total, util, requested, tuple(terms), available))
    per_stage = [layout.num_blocks(b.kv_pool) for layout, b in zip(layouts, budgets, strict=True)]
    binding = per_stage.index(min(per_stage))
    blocks, layout = per_stage[binding], layouts[binding]
    capacity = _capacity(layout, budgets, blocks, seq, batch, replicas, max_model_len, max_num_seqs, binding)
    concurrency = blocks / layout.blocks_per_request(max_model_len)
    if v0:
        tokens = blocks * layout.block_size
        concurrency = tokens / max_model_len
    elif version >= (0, 21):
        tokens = int(concurrency * max_model_len)
    else:
        tokens = blocks // layout.n_groups * layout.min_block_size
    printed = Printed(
        engine=settings.engine, version=".".join(map(str, version)), total_bytes=total, total_source=total_source,
        max_model_len=max_model_len, block_size=layout.block_size, num_blocks=blocks, kv_groups=layout.n_groups,
        kv_tokens=tokens, max_concurrency=concurrency, max_num_seqs=max_num_seqs, max_num_batched_tokens=mnbt,
    )
    return Scenario(gpu, util, tuple(budgets), capacity, printed)


def _capacity(layout: KVLayout, budgets: list[Budget], blocks: int, seq: int, batch: int, replicas: int,
              max_model_len: int, max_num_seqs: int, binding: int) -> Capacity:
    local = per_replica(batch, replicas)
    per_request = layout.blocks_per_request(seq)
    concurrent = min(blocks // per_request, max_num_seqs) if per_request else max_num_seqs

    memory = largest(lambda length: local * layout.blocks_per_request(length) <= blocks)
    longest = min(memory, max_model_len)
    need = local * per_request * layout.bytes_per_block()
    pool = budgets[binding].kv_pool
    ok = all(b.kv_pool >= 0 for b in budgets) and local * per_request <= blocks and seq <= max_model_len
    return Capacity(
        seq=seq, batch=batch, replicas=replicas, request_bytes=per_request * layout.bytes_per_block(),
        kv_cache_bytes=need, kv_pool_bytes=pool, max_concurrent_requests=concurrent * replicas,
        max_seq_len=longest, max_seq_len_limited_by="max_model_len" if memory > max_model_len else "memory",
        max_seq_len_memory=None if memory == SEARCH_LIMIT else memory, max_tokens=blocks * layout.block_size, fits=ok,
        shortfall_bytes=max(0, need - max(pool, 0)) if not ok else 0,
    )


def _v0_layout(dep: Deployment, stage: Stage, block_size: int | None) -> KVLayout:
    """V0: one cache block covers every attention layer (cross-attention included) at full length."""
    per_token = 0.0
    for layer in stage.layers:
        kv = layer.kv
        if isinstance(kv, CrossAttentionKV):
            per_token += AttentionKV(kv.num_kv_heads, kv.head_dim, kv.head_dim).bytes_per_token(dep.kv_bytes, dep.tp)
        elif isinstance(kv, AttentionKV | MLAKV):
            per_token += kv.bytes_per_token(dep.kv_bytes, dep.tp)
        elif not isinstance(kv, NoKV):
            raise UnsupportedModelError("kvplan models vLLM V0 for attention models only")
    bs = block_size or DEFAULT_BLOCK_SIZE
    spec = _Spec("full", per_token)
    return KVLayout(((spec, 1),), bs, int(bs * per_token), 1, 1, (1,), 1 << 40, 0)
