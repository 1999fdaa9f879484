"""Speed estimates (first-order rooflines), labelled as estimates with their assumptions.

Decode, one step of `batch` sequences at `context` tokens, per pipeline stage on one GPU of its TP group:
    memory time  = (weights read + KV read) / (bandwidth x bandwidth_efficiency)
                   weights read: dense weights once; routed experts only in the share a batch touches,
                   1 - (1 - k/E)^batch of them (each token picks k of E experts)
                   KV read: batch x one request's cache at `context`
    compute time = (2 x active parameters x batch + attention 4 x batch x context x heads x head_dim)
                   / (peak FLOP/s x decode_compute_efficiency)
    step = sum over stages of max(memory, compute) + TP all-reduces (one per attention, SSM mixer and MLP / MoE
           of each layer: 2 per Llama layer) + PP hand-offs
Prefill of `prompt` tokens (time to first token of one request):
    (2 x active parameters x prompt + causal attention 2 x prompt^2 x heads x head_dim per layer)
    / (peak FLOP/s x prefill_compute_efficiency), at least one read of the weights, plus all-reduces.
All-reduce (ring): 2 x (TP - 1) / TP x bytes / link bandwidth + a fixed latency; link bandwidth from the
catalog's interconnect text (NVLink total / 2 per direction, PCIe by generation), or the network between nodes
(data/gpu-nodes.csv, per GPU) where the TP group or a pipeline hand-off crosses nodes. Each forward pass (a decode
step, a prefill) also pays a fixed overhead: kernel launches and scheduling.
The efficiencies are stated constants (data/perf-constants.toml, with their sources); benchmarks/perf_compare.py
sets the estimates beside published measurements.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from kvplan.caching import derived
from kvplan.deployment import Deployment, Stage
from kvplan.errors import InputError
from kvplan.hardware import GPU, generation
from kvplan.model.quant import DTYPE_BYTES
from kvplan.model.spec import MLAKV, SELF_ATTENTION, TOWER_ROLES, ModelSpec, Retention

PCIE_GBPS = {"3": 16.0, "4": 32.0, "5": 64.0, "6": 128.0}  # per direction, x16


@cache
def constants() -> dict:
    return tomllib.loads((resources.files("kvplan") / "data" / "perf-constants.toml").read_text(encoding="utf-8"))


# The host's share of a pass and of a request by the runtime that schedules and streams: "python" for the engines
# kvplan models (vLLM, SGLang and TGI schedule, sample and detokenize in Python), "cpp" for C++ executors
# (TensorRT-LLM's batch manager, NIM on it, LMDeploy's TurboMind), which perf_compare answers with vLLM's
# scheduler standing in. Both are fitted (benchmarks/perf_compare.py --fit), each on its own runtime's rows.
RUNTIMES = ("python", "cpp")


def host_overheads(runtime: str = "python") -> tuple[float, float]:
    """(seconds per sequence in a pass, seconds per request before the engine sees it) of the runtime: [comm]'s
    for "python", [runtime.cpp]'s for "cpp" (its own fit; [comm]'s where the file has none)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r} is not one of {RUNTIMES}")
    k = constants()["comm"]
    own = constants().get("runtime", {}).get(runtime, {}) if runtime != "python" else {}
    return (own.get("sequence_overhead_us", k.get("sequence_overhead_us", 0.0)) * 1e-6,
            own.get("request_overhead_ms", k.get("request_overhead_ms", 0.0)) * 1e-3)


def link_gbps(gpu: GPU) -> tuple[float, str]:
    """Per-direction GPU-to-GPU bandwidth in GB/s, and what it was read from."""
    return _link(gpu.interconnect)


@cache
def _link(text: str) -> tuple[float, str]:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(TB|GB)/s", text)
    if m and re.search(r"nvlink|infinity fabric|ici", text[: m.end()].lower()):
        value = float(m.group(1)) * (1000 if m.group(2) == "TB" else 1)
        per_dir = "/dir" in text[m.end(): m.end() + 6] or "per dir" in text.lower()
        return (value if per_dir else value / 2), f"{text.split(';')[0]} ({'per direction' if per_dir else 'half'})"
    return _pcie(text)


def _pcie(text: str) -> tuple[float, str]:
    """The PCIe x16 link an interconnect text names, per direction (Gen4 when it names none)."""
    gen = re.search(r"PCIe Gen(\d)", text)
    if gen and gen.group(1) in PCIE_GBPS:
        return PCIE_GBPS[gen.group(1)], f"PCIe Gen{gen.group(1)} x16"
    return PCIE_GBPS["4"], "not stated: PCIe Gen4 x16 assumed"


def host_link_gbps(gpu: GPU) -> tuple[float, str]:
    """Per-direction CPU-to-GPU bandwidth in GB/s: NVLink-C2C where the GPU has it (GH200, GB200: half the
    stated total), else its PCIe link."""
    m = re.search(r"NVLink-C2C (\d+(?:\.\d+)?)\s*GB/s", gpu.interconnect)
    if m:
        return float(m.group(1)) / 2, "NVLink-C2C (half the stated total)"
    return _pcie(gpu.interconnect)


# a generation without fitted rows takes the scale of its vendor's nearest fitted one
GENERATION_FALLBACK = {"volta": "ampere", "turing": "ampere", "cdna2": "cdna3"}


def efficiency(gpu: GPU) -> dict[str, float]:
    """The achieved fractions for this GPU: the constants (fitted on Hopper, the generation most measurements
    ran on), times its generation's bandwidth and compute scales where they are fitted ([generation_scale]:
    the same kernels reach a different share of the peak figures on other generations)."""
    c = constants()["efficiency"]
    scales = constants().get("generation_scale", {})
    gen = generation(gpu)
    scale = scales.get(gen) or scales.get(GENERATION_FALLBACK.get(gen, ""), {})
    bw, fl = scale.get("bandwidth", 1.0), scale.get("compute", 1.0)
    return {"bandwidth": c["bandwidth"] * bw, "decode_compute": c["decode_compute"] * fl,
            "prefill_compute": c["prefill_compute"] * fl}


def _peak_tflops(dep: Deployment, gpu: GPU) -> tuple[float, str]:
    """The tensor throughput the linear layers run at: fp4 for fp4 formats of every linear layer on a GPU with fp4
    tensor cores (W4A4), fp8 for fp8 formats, else bf16 (weight-only formats dequantize to bf16)."""
    math_kind = dep.weight_format.tensor_math
    if math_kind == "fp4" and gpu.fp4_tflops:
        return gpu.fp4_tflops, "fp4 dense"
    if math_kind == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops, "fp8 dense"
    if gpu.bf16_tflops:
        return gpu.bf16_tflops, "bf16 dense"
    raise InputError(f"the catalog has no TFLOPS figure for {gpu.alias}: speed cannot be estimated")


def _require(gpu: GPU) -> None:
    if not gpu.bandwidth_gbps:
        raise InputError(f"the catalog has no memory bandwidth for {gpu.alias}: speed cannot be estimated")


@dataclass(frozen=True)
class StageWork:
    """What one forward pass costs on one GPU of a pipeline stage, over the tensors it multiplies by: all the
    stage holds but the vision / audio towers, and the embedding table only where it serves as the (tied)
    lm_head (a lookup reads one row per token)."""

    active_params: float  # parameters one token touches outside the routed experts
    expert_active: float  # routed-expert parameters one token touches on this GPU (top-k of E, its shard)
    dense_bytes: float  # weights read whatever the batch
    expert_bytes: float  # routed experts: read in the share a batch touches
    expert_share: float  # k / E (1 without experts)
    attention_width: int  # query width x layers attending over the context
    moe_layers: int = 0  # layers with routed experts (the all-to-all of data-parallel attention)

    def weight_read(self, tokens: int, expert_tokens: int | None = None) -> float:
        """Weights one pass reads: the dense ones, and the experts `expert_tokens` (all the groups' tokens
        under data-parallel attention; else `tokens`) touch."""
        routed = tokens if expert_tokens is None else expert_tokens
        return self.dense_bytes + self.expert_bytes * (1 - (1 - self.expert_share) ** routed)


@derived
def _work(dep: Deployment) -> tuple[StageWork, ...]:
    return tuple(_stage_work(dep, s) for s in dep.stages)


def _attends(kv: Any) -> bool:
    """Layers whose attention over the context kvplan counts: self-attention with per-head K/V (MLA's
    absorbed attention is not modelled here) and cross-attention."""
    return (kv.retention in SELF_ATTENTION and kv.kind != MLAKV.kind) or kv.retention == Retention.ENCODER


def _stage_work(dep: Deployment, stage: Stage) -> StageWork:
    m, last = dep.model, len(dep.stages) - 1
    share = m.moe.experts_per_token / m.moe.num_experts if m.moe else 1.0
    active = routed = dense = experts = 0.0
    for t, size in dep.stage_tensors[stage.index]:
        if t.role in TOWER_ROLES or (t.role == "embedding" and not (m.tie_word_embeddings and stage.index == last)):
            continue
        n = t.numel / (dep.sharding.ranks(t) if t.split is not None else 1)
        if t.role == "experts" and m.moe:
            routed += n * share
            experts += size
        else:
            active += n
            dense += size
    first = next((la.kv for la in m.layers if _attends(la.kv) and la.kv.retention in SELF_ATTENTION), None)
    width = (m.num_attention_heads or 0) * first.head_dim // dep.attn_tp if first else 0
    attending = sum(_attends(layer.kv) for layer in stage.layers)
    moe_layers = len({t.layer for t, _ in dep.stage_tensors[stage.index] if t.role == "experts"})
    return StageWork(active, routed, dense, experts, share, width * attending, moe_layers)


def alltoall_seconds(dep: Deployment, gpu: GPU, tokens: int, spread: bool = True) -> float:
    """Data-parallel attention: each MoE layer dispatches every token's hidden state to its top-k experts'
    GPUs and combines the results back (2 all-to-alls), each GPU sending its group's share of the tokens x
    top-k x hidden, (TP - 1) / TP of it to other GPUs; over the network when the TP group spans nodes."""
    if dep.dp_attention == 1 or dep.model.moe is None:
        return 0.0
    c = constants()["comm"]
    local = -(-tokens // dep.dp_attention) if spread else tokens
    nbytes = local * dep.model.moe.experts_per_token * dep.model.hidden_size * DTYPE_BYTES[dep.activation_dtype]
    bw = (link_gbps(gpu)[0] if dep.tp <= gpu.node.gpus else inter_node_gbps(gpu)) * 1e9
    one = (dep.tp - 1) / dep.tp * nbytes / bw + c["allreduce_latency_us"] * 1e-6
    return 2 * sum(w.moe_layers for w in _work(dep)) * one


def inter_node_gbps(gpu: GPU) -> float:
    """Per-GPU network bandwidth between nodes, GB/s per direction (data/gpu-nodes.csv)."""
    if gpu.node.inter_gbps is None:
        raise InputError(f"the catalog has no network between {gpu.alias} nodes: a deployment past one node "
                         f"({gpu.node.gpus} GPUs) cannot be estimated")
    return gpu.node.inter_gbps


# The sub-blocks of a decoder layer whose row-parallel output projection ends in one all-reduce under TP
# (vLLM's RowParallelLinear / FusedMoE reduce_results): the attention, the SSM mixer, and the MLP or the MoE
# (the routed and shared experts summed, then reduced once: model_executor/models/deepseek_v2.py, qwen3_moe.py)
_REDUCED_BLOCKS = (frozenset({"attention"}), frozenset({"ssm"}), frozenset({"mlp", "experts", "shared_experts"}))


@derived
def allreduces_per_pass(model: ModelSpec) -> int:
    """All-reduces one forward pass runs under TP: one per reduced sub-block of every decoder layer (a Llama
    layer 2; a Nemotron-H or Jamba layer, which holds one mixer or one MLP, 1)."""
    blocks: dict[int, set[str]] = {}
    for t in model.tensors:
        if t.layer is not None and t.role not in TOWER_ROLES:
            blocks.setdefault(t.layer, set()).add(t.role)
    return sum(bool(roles & block) for roles in blocks.values() for block in _REDUCED_BLOCKS)


def allreduce_seconds(dep: Deployment, gpu: GPU, tokens: int, spread: bool = True) -> float:
    """The all-reduces of tokens x hidden activations (ring) of every decoder layer's reduced sub-blocks
    (allreduces_per_pass); over the network between nodes when the TP group spans nodes (the ring runs at its
    slowest link)."""
    tp = dep.attn_tp  # under data-parallel attention, within each attention group (the experts: all-to-all)
    if tp == 1:
        return 0.0
    c = constants()["comm"]
    # `spread`: the tokens are shared out over the attention groups (a decode batch), not one request's
    local = -(-tokens // dep.dp_attention) if spread else tokens
    nbytes = local * dep.model.hidden_size * DTYPE_BYTES[dep.activation_dtype]
    bw = (link_gbps(gpu)[0] if tp <= gpu.node.gpus else inter_node_gbps(gpu)) * 1e9
    one = 2 * (tp - 1) / tp * nbytes / bw + c["allreduce_latency_us"] * 1e-6
    return allreduces_per_pass(dep.model) * one


def pp_seconds(dep: Deployment, gpu: GPU, tokens: int) -> float:
    """The hand-offs of tokens x hidden activations between pipeline stages: those between nodes over the
    network (stages fill nodes in order: nodes - 1 of the PP - 1 hand-offs cross one)."""
    if dep.pp == 1:
        return 0.0
    nbytes = tokens * dep.model.hidden_size * DTYPE_BYTES[dep.activation_dtype]
    latency = constants()["comm"]["allreduce_latency_us"] * 1e-6
    nodes = -(-dep.tp * dep.pp // gpu.node.gpus)
    crossing = min(dep.pp - 1, nodes - 1)
    inside = (dep.pp - 1 - crossing) * (nbytes / (link_gbps(gpu)[0] * 1e9) + latency)
    return inside + (crossing * (nbytes / (inter_node_gbps(gpu) * 1e9) + latency) if crossing else 0.0)


@dataclass(frozen=True)
class Step:
    """One forward pass of a continuous-batching engine: `decodes` requests each adding a token at a mean
    `context`, beside prefill chunks of `prefill_tokens` tokens in all (`chunks`: (tokens already cached,
    chunk length) each). A pure decode step and a pure prefill are its two ends."""

    seconds: float
    bytes_read: float  # per GPU, all stages
    flops: float  # per GPU, all stages
    comm_seconds: float
    memory_bound_stages: int


def step(dep: Deployment, gpu: GPU, decodes: int = 0, context: int = 0,
         chunks: tuple[tuple[int, int], ...] = (), spread_prefill: bool = False, host_bytes: float = 0.0,
         runtime: str = "python") -> Step:
    """The time of one pass, per pipeline stage on one GPU of its TP group (the module docstring's terms):
    memory = weights read (the experts the pass's tokens touch) + the decodes' KV at `context` + the KV the
    chunks attend over; compute = 2 x active parameters x tokens + attention (decode 4 x context x width per
    request, a chunk of c tokens after s cached ones 4 x c x (s + c / 2) x width), at the decode or prefill
    compute efficiency weighted by their tokens; plus the all-reduces, hand-offs and all-to-alls of the pass's
    tokens, the fixed per-pass overhead and one per sequence in the pass (scheduling, sampling, output
    processing); the routed experts' grouped GEMMs run at the compute fraction x moe_compute_scale.
    `spread_prefill`: the chunks are shared out over the data-parallel
    attention groups (a batch of prompts), not one request's. `host_bytes`: weights per GPU (all stages) held in
    CPU memory (--cpu-offload-gb), read over the host link every pass at the bandwidth fraction, added to the
    pass (vLLM's UVA offloader reads them in place, model_executor/offloader/uva.py 0.19.0). `runtime`: whose
    per-sequence overhead the pass pays (host_overheads)."""
    _require(gpu)
    c = efficiency(gpu)
    peak = _peak_tflops(dep, gpu)[0] * 1e12
    bw = gpu.bandwidth_gbps * 1e9 * c["bandwidth"]
    prefill_tokens = sum(n for _, n in chunks)
    total = decodes + prefill_tokens
    rate = peak * (c["decode_compute"] * decodes + c["prefill_compute"] * prefill_tokens) / total
    groups = dep.dp_attention
    local_decodes = -(-decodes // groups)  # the requests one data-parallel attention group decodes
    local = local_decodes + (-(-prefill_tokens // groups) if spread_prefill else prefill_tokens)
    pairs = sum(n * (s + n / 2) for s, n in chunks)
    moe_scale = constants()["efficiency"].get("moe_compute_scale", 1.0)
    seconds = read_total = flops_total = 0.0
    memory_bound = 0
    decode_kv = dep.stage_request_bytes(context) if decodes else (0.0,) * len(dep.stages)
    prefix_kv = [dep.stage_request_bytes(s) for s, _ in chunks if s]
    for i, (work, request) in enumerate(zip(_work(dep), decode_kv, strict=True)):
        read = work.weight_read(total, total) + local_decodes * request + sum(kv[i] for kv in prefix_kv)
        flops = (2 * work.active_params * (local_decodes + prefill_tokens) + 2 * work.expert_active * total
                 + 4 * local_decodes * context * work.attention_width + 4 * pairs * work.attention_width)
        routed = 2 * work.expert_active * total  # the grouped expert GEMMs run at their own fraction
        t_mem = read / bw
        t_cmp = flops / rate if moe_scale == 1 else (flops - routed) / rate + routed / (rate * moe_scale)
        memory_bound += t_mem >= t_cmp
        seconds += max(t_mem, t_cmp)
        read_total += read
        flops_total += flops
    comm = (allreduce_seconds(dep, gpu, local, spread=False) + pp_seconds(dep, gpu, total)
            + alltoall_seconds(dep, gpu, local, spread=False))
    k = constants()["comm"]
    if host_bytes:
        # at the stated bandwidth fraction, not a generation's HBM scale (the link is PCIe / C2C, not HBM)
        seconds += host_bytes / (host_link_gbps(gpu)[0] * 1e9 * constants()["efficiency"]["bandwidth"])
    seconds += comm + k["step_overhead_ms"] * 1e-3 + host_overheads(runtime)[0] * (decodes + len(chunks))
    return Step(seconds, read_total, flops_total, comm, memory_bound)


@dataclass(frozen=True)
class Decode:
    batch: int
    context: int
    step_seconds: float
    tokens_per_sec_per_user: float
    tokens_per_sec_total: float
    bound: str  # "memory" or "compute"
    bytes_read: float  # per GPU per step, all stages
    flops: float  # per GPU per step, all stages
    comm_seconds: float
    assumptions: str


def decode(dep: Deployment, gpu: GPU, batch: int, context: int, host_bytes: float = 0.0,
           runtime: str = "python") -> Decode:
    """One decode step of `batch` requests at `context` tokens each (`host_bytes`, `runtime`: as in `step`)."""
    s = step(dep, gpu, decodes=batch, context=context, host_bytes=host_bytes, runtime=runtime)
    c = {**efficiency(gpu), "source": constants()["efficiency"]["source"]}
    peak, peak_kind = _peak_tflops(dep, gpu)
    bound = "memory" if s.memory_bound_stages * 2 >= len(dep.stages) else "compute"
    assumptions = (f"estimate: {gpu.bandwidth_gbps:,.0f} GB/s x {c['bandwidth']:.3g} achieved, {peak:,.0f} TFLOPS "
                   f"{peak_kind} x {c['decode_compute']:.3g}; {c['source']}")
    return Decode(batch, context, s.seconds, 1 / s.seconds, batch / s.seconds, bound, s.bytes_read, s.flops,
                  s.comm_seconds, assumptions)


@dataclass(frozen=True)
class Prefill:
    tokens: int
    seconds: float
    flops: float
    bound: str
    assumptions: str


def prefill(dep: Deployment, gpu: GPU, prompt: int, batch: int = 1, host_bytes: float = 0.0,
            runtime: str = "python") -> Prefill:
    """Time to process `batch` prompts of `prompt` tokens at once (batch 1: the time to first token)."""
    s = step(dep, gpu, chunks=((0, prompt),) * batch, spread_prefill=batch > 1, host_bytes=host_bytes,
             runtime=runtime)
    c = {**efficiency(gpu), "source": constants()["efficiency"]["source"]}
    peak, peak_kind = _peak_tflops(dep, gpu)
    bound = "memory" if s.memory_bound_stages * 2 > len(dep.stages) else "compute"
    assumptions = (f"estimate: {peak:,.0f} TFLOPS {peak_kind} x {c['prefill_compute']:.3g} achieved; "
                   f"{c['source']}")
    return Prefill(prompt * batch, s.seconds, s.flops, bound, assumptions)


@dataclass(frozen=True)
class StaticEstimate:
    """`kvplan perf` without a load: one decode step of `batch` requests at `context` tokens, the time to first
    token of one `prompt`, and whether that batch fits at `length` tokens under the default engine's accounting."""
    dep: Deployment
    gpu: GPU
    batch: int
    prompt: int
    context: int
    length: int  # the tokens each request holds for the fit check (max_model_len = that length)
    memory: dict[str, Any]
    decode: Decode
    prefill: Prefill
    host_bytes: float

    def to_dict(self) -> dict[str, Any]:
        """`kvplan perf --json` without --concurrency / --rate."""
        d, p = self.decode, self.prefill
        return {"model": self.dep.model.name, "gpu": self.gpu.alias, "tp": self.dep.tp, "pp": self.dep.pp,
                "dp_attention": self.dep.dp_attention, "expert_parallel": self.dep.expert_parallel,
                "batch": self.batch, "context": self.context, "prompt": self.prompt, "memory": self.memory,
                "decode": {"step_seconds": d.step_seconds, "tokens_per_sec_per_user": d.tokens_per_sec_per_user,
                           "tokens_per_sec_total": d.tokens_per_sec_total, "bound": d.bound,
                           "bytes_read_per_step": d.bytes_read, "flops_per_step": d.flops,
                           "comm_seconds": d.comm_seconds},
                "prefill": {"ttft_seconds": p.seconds, "flops": p.flops, "bound": p.bound},
                "host_weights_bytes": self.host_bytes,
                "assumptions": [d.assumptions, p.assumptions]}


def static_estimate(model: Any, gpu: str | GPU, tp: int = 1, pp: int = 1, dtype: str | None = None,
                    quant: str | None = None, kv_dtype: str = "auto", dp_attention: int = 1,
                    expert_parallel: bool = False, batch: int = 1, prompt: int = 1024, context: int | None = None,
                    cpu_offload_gb: float = 0.0) -> StaticEstimate:
    """The decode speed at `batch` and the time to first token of `prompt` (first-order rooflines), with whether
    the batch fits at max(context, prompt) tokens (the default engine's accounting, via planning.plan): what
    `kvplan perf` prints without --concurrency / --rate. `model`: anything load_model takes."""
    from kvplan.engines import DEFAULT_ENGINE, get_engine
    from kvplan.hardware import get_gpu
    from kvplan.model.load import load_model
    from kvplan.planning import plan as make_plan

    for label, value in (("--batch", batch), ("--prompt", prompt), ("--context", context)):
        if value is not None and value < 1:
            raise InputError(f"{label} must be a positive integer (got {value})")
    kv_dtype = kv_dtype.lower()
    dep = Deployment(load_model(model), tp=tp, pp=pp, dtype=dtype, quant=quant, kv_dtype=kv_dtype,
                     dp_attention=dp_attention, expert_parallel=expert_parallel)
    device = gpu if isinstance(gpu, GPU) else get_gpu(gpu)
    length = max(context or prompt, prompt)  # does the batch fit? vLLM's accounting at max_model_len = that length
    held = make_plan(dep.model, gpu=device, tp=tp, pp=pp, dtype=dtype, quant=quant, kv_dtype=kv_dtype,
                     seq=length, batch=batch, max_model_len=min(length, dep.model.max_context or length),
                     dp_attention=dp_attention, expert_parallel=expert_parallel,
                     cpu_offload_gb=cpu_offload_gb).scenarios[0]
    host = sum(b.host_weights for b in held.budgets)  # --cpu-offload-gb: read over the host link every pass
    d = decode(dep, device, batch, context or prompt, host)
    p = prefill(dep, device, prompt, host_bytes=host)
    memory = {"engine": get_engine(DEFAULT_ENGINE).name, "fits": held.capacity.fits and held.startup.starts,
              "max_batch": held.capacity.max_concurrent_requests, "kv_pool_bytes": held.capacity.kv_pool_bytes,
              "start_error": held.startup.reason}
    return StaticEstimate(dep, device, batch, prompt, context or prompt, length, memory, d, p, host)
