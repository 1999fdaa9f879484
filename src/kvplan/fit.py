"""`kvplan fit`: search GPU types x GPUs per replica x TP/PP layouts x weight precision x KV dtype for the cheapest
deployment that serves a workload, every candidate sized with an engine's accounting (vLLM by default, SGLang)
and the speed estimates.

For each candidate: the engine's KV pool gives the concurrent requests one replica holds at the workload's
length (capped by its running-request limit); replicas = ceil(users / that); when a per-user decode speed is
asked, replicas grow until the batch per replica is small enough. Cost per hour = GPUs x price; cost per
million output tokens = cost per hour / (aggregate decode tokens per second x 3600) x 10^6.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kvplan import batching, perf
from kvplan.batching import LoadResult
from kvplan.capacity import largest
from kvplan.deployment import Deployment
from kvplan.engines import DEFAULT_ENGINE, EngineSettings, Launch, canonical_name, fit_engines, get_engine, scenario
from kvplan.errors import InputError, KvplanError
from kvplan.hardware import GPU, get_gpu
from kvplan.model.spec import ModelSpec
from kvplan.planning import served_model
from kvplan.pricing import Price, price

# The common datacenter set, cheapest first in the catalog's prices.
DEFAULT_GPUS = ("t4", "l4", "a10g", "l40s", "a100-40g", "a100-80g", "h100", "h200", "b200", "mi300x")
# --rank-by: what the ranking minimises first (after meeting every target)
RANKINGS = ("cost-per-token", "cost-per-hour", "gpus", "latency")


@dataclass(frozen=True)
class Workload:
    users: int
    prompt: int
    output: int
    min_tokens_per_sec: float | None = None  # per user, decode
    max_ttft: float | None = None  # seconds

    def __post_init__(self) -> None:
        for label, value in (("--users", self.users), ("--prompt", self.prompt), ("--output", self.output)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{label} must be a positive integer (got {value!r})")
        for label, value in (("--min-tokens-per-sec", self.min_tokens_per_sec), ("--max-ttft", self.max_ttft)):
            if value is not None and value <= 0:
                raise InputError(f"{label} must be positive (got {value!r})")

    @classmethod
    def from_options(cls, users: int, seq: int | None = None, prompt: int | None = None, output: int | None = None,
                     min_tokens_per_sec: float | None = None, max_ttft: float | None = None) -> Workload:
        """--seq L (the output a quarter unless --output says), or --prompt P --output O."""
        if prompt is None:
            if seq is None:
                raise InputError("give --seq, or --prompt and --output")
            output = output or max(1, seq // 4)
            prompt = seq - output
            if prompt < 1:
                raise InputError(f"--output {output} leaves no prompt in --seq {seq}")
        elif output is None:
            raise InputError("--prompt needs --output too")
        return cls(users, prompt, output, min_tokens_per_sec, max_ttft)

    @property
    def seq(self) -> int:
        return self.prompt + self.output

    @property
    def context(self) -> int:
        """The average length a decoding request holds."""
        return self.prompt + self.output // 2


@dataclass
class Candidate:
    gpu: GPU
    tp: int
    pp: int
    replicas: int
    weight_scheme: str
    quant: str | None
    kv_dtype: str
    max_concurrent_requests: int  # per replica
    batch: int  # users per replica
    decode: perf.Decode
    ttft_seconds: float
    price: Price
    misses: list[str] = field(default_factory=list)
    model_id: str = ""
    max_model_len: int = 0
    engine: str = DEFAULT_ENGINE
    util: float = 0.9  # the memory fraction the engine's accounting applied
    output_tokens: int = 0  # per request: what the latency figure adds to the TTFT
    closes_with: str | None = None  # an engine setting that serves the users on one replica fewer
    dp_attention: int = 1  # data-parallel attention groups per replica (with expert parallelism)
    expert_parallel: bool = False
    settings: EngineSettings | None = None  # the serving features its launch line turns on (speculative decoding)
    load: LoadResult | None = None  # its replica under the workload's load (kvplan.batching), when judged at load

    @property
    def layout(self) -> str:
        """'16 (TP 8 x PP 2)', '16 (DP attention 16 x TP 1, EP)'; past one node '... 2 nodes'."""
        inner = (f"DP attention {self.dp_attention} x TP {self.tp // self.dp_attention}" if self.dp_attention > 1
                 else f"TP {self.tp}") + (f" x PP {self.pp}" if self.pp > 1 or self.dp_attention == 1 else "")
        inner += ", EP" if self.expert_parallel else ""
        return f"{self.gpus_per_replica} ({inner}" + (f", {self.nodes} nodes)" if self.nodes > 1 else ")")

    @property
    def nodes(self) -> int:
        """Nodes one replica spans."""
        return -(-self.gpus_per_replica // self.gpu.node.gpus)

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def gpus_total(self) -> int:
        return self.gpus_per_replica * self.replicas

    @property
    def meets_targets(self) -> bool:
        return not self.misses

    @property
    def tokens_per_sec_total(self) -> float:
        return self.replicas * self.decode.tokens_per_sec_total

    @property
    def cost_per_hour(self) -> float | None:
        return None if self.price.usd_per_hour is None else self.price.usd_per_hour * self.gpus_total

    @property
    def cost_per_million_tokens(self) -> float | None:
        cost = self.cost_per_hour
        return None if cost is None else cost / (self.tokens_per_sec_total * 3600) * 1e6

    @property
    def latency_seconds(self) -> float:
        """One request end to end: the time to first token + its output at the per-user decode speed."""
        return self.ttft_seconds + self.output_tokens / max(self.decode.tokens_per_sec_per_user, 1e-9)

    @property
    def served(self) -> int:
        """Requests served at once (all replicas)."""
        return self.replicas * self.batch

    def dominates(self, other: Candidate) -> bool:
        """At least as good on every axis (GPUs, which on one GPU type is the cost; total tokens/s, TTFT, users
        served) and better on one."""
        mine = (self.gpus_total, -self.tokens_per_sec_total, self.ttft_seconds, -self.served)
        theirs = (other.gpus_total, -other.tokens_per_sec_total, other.ttft_seconds, -other.served)
        return all(a <= b for a, b in zip(mine, theirs, strict=True)) and mine != theirs

    def launch(self) -> Launch:
        """What the engine's launch line needs (per replica)."""
        return Launch(self.model_id, self.tp, self.pp, self.replicas, self.util, self.max_model_len,
                        -(-self.batch // self.dp_attention), self.kv_dtype, self.quant, batch=self.batch,
                        dp_attention=self.dp_attention, expert_parallel=self.expert_parallel,
                        gpus_per_node=self.gpu.node.gpus, settings=self.settings)

    @property
    def command(self) -> str:
        """The engine's launch line that realises this candidate (one per node past one)."""
        return get_engine(self.engine).launch_command(self.launch())

    @property
    def vllm_command(self) -> str | None:
        return self.command if self.engine == DEFAULT_ENGINE else None  # the vLLM line, as the field promises

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu.alias, "gpus_per_replica": self.gpus_per_replica, "tp": self.tp, "pp": self.pp,
            "layout": self.layout, "dp_attention": self.dp_attention, "expert_parallel": self.expert_parallel,
            "nodes_per_replica": self.nodes,
            "replicas": self.replicas, "gpus_total": self.gpus_total, "weight_scheme": self.weight_scheme,
            "kv_dtype": self.kv_dtype, "cpu_offload_gb": self.settings.cpu_offload_gb if self.settings else 0.0,
            "max_concurrent_requests": self.max_concurrent_requests,
            "batch_per_replica": self.batch, "meets_targets": self.meets_targets, "misses": self.misses,
            "cost_per_hour": _round(self.cost_per_hour), "price_per_gpu_hour": self.price.usd_per_hour,
            "price_source": self.price.source, "cost_per_million_tokens": _round(self.cost_per_million_tokens),
            "decode_tokens_per_sec_per_user": round(self.decode.tokens_per_sec_per_user, 2),
            "decode_tokens_per_sec_total": round(self.tokens_per_sec_total, 1),
            "decode_bound": self.decode.bound, "ttft_seconds": round(self.ttft_seconds, 4),
            "latency_seconds": round(self.latency_seconds, 3), "closes_with": self.closes_with,
            "engine": self.engine, "gpu_memory_utilization": self.util, "command": self.command,
            "vllm_command": self.vllm_command,
            **({"under_load": self.load.to_dict()} if self.load is not None else {}),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass(frozen=True)
class Rejection:
    """A family (GPU / weights / KV) none of whose layouts serves the workload, and why."""

    family: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"family": self.family, "reason": self.reason}


@dataclass
class FitResult:
    workload: Workload
    candidates: list[Candidate]  # ranked: meeting every target first, cheapest first
    rejected: list[Rejection]  # families (gpu, weights, KV) none of whose layouts serves the workload, searched order
    skipped: dict[str, int]  # invalid layouts by reason
    evaluated: int
    seconds: float
    engine: str = DEFAULT_ENGINE
    notes: list[str] = field(default_factory=list)
    rank_by: str = RANKINGS[0]
    pruned: int = 0  # candidates another of the same GPU type beats on every axis

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates and self.candidates[0].meets_targets else None

    @property
    def nearest_miss(self) -> Candidate | None:
        """When none meets every target: the candidate whose worst target is missed by the least."""
        if self.best is not None or not self.candidates:
            return None
        return min(self.candidates, key=lambda c: (_shortfall(c, self.workload), _rank(c, self.rank_by)))

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        w = self.workload
        return {
            "workload": {"users": w.users, "prompt": w.prompt, "output": w.output, "seq": w.seq,
                         "min_tokens_per_sec": w.min_tokens_per_sec, "max_ttft": w.max_ttft},
            "candidates": [c.to_dict() for c in self.candidates[:top]],
            "rank_by": self.rank_by, "pruned": self.pruned,
            "nearest_miss": None if self.nearest_miss is None else self.nearest_miss.to_dict(),
            "engine": self.engine, "rejected": {r.family: r.reason for r in self.rejected},
            "skipped_layouts": self.skipped,
            "evaluated": self.evaluated,
            "search_seconds": round(self.seconds, 3), "notes": self.notes,
        }


def layouts(n: int, layers: int, per_node: int | None = None, cross_node_tp: bool = False) -> list[tuple[int, int]]:
    """(TP, PP) pairs with TP x PP = n GPUs, PP <= layers. With `per_node` GPUs per node, a replica larger than
    a node fills whole nodes (n a multiple of the node) and keeps TP within one (PP spans the nodes) unless
    `cross_node_tp` (its all-reduces then go over the network)."""
    if per_node is not None and n > per_node:
        if n % per_node:
            return []
        return [(n // pp, pp) for pp in range(1, n + 1)
                if n % pp == 0 and pp <= layers and (cross_node_tp or n // pp <= per_node)]
    return [(n // pp, pp) for pp in range(1, n + 1) if n % pp == 0 and pp <= layers]


SEARCH_LIMIT_GPUS = 64  # the most GPUs per replica fit searches (--max-gpus) or looks to when nothing fits


def _schemes(spec: ModelSpec, allow_quant: bool) -> list[tuple[str | None, str]]:
    """(--quant scheme, short label): the checkpoint's own format, then fp8 and int4 when allowed."""
    own = spec.quant.name.split()[0] if spec.quant else ("bf16" if spec.dtype == "float32" else
                                                         {"bfloat16": "bf16", "float16": "fp16"}[spec.dtype])
    out: list[tuple[str | None, str]] = [(None, own)]
    if allow_quant and spec.quant is None:
        out += [("fp8", "fp8"), ("w4a16", "int4-g128")]
    return out


def _fastest_batch(dep: Deployment, gpu: GPU, most: int, context: int, target: float, host: int) -> int:
    """The largest batch (<= most) whose per-user decode speed still reaches `target`; 0 if even 1 does not."""
    return largest(lambda b: perf.decode(dep, gpu, b, context, host).tokens_per_sec_per_user >= target, most)


def _evaluate(dep: Deployment, gpu: GPU, w: Workload, settings: EngineSettings, label: str, cost: Price,
              model_id: str) -> Candidate | str:
    """The candidate `dep` on `gpu` makes for the workload, or why it makes none."""
    sc = scenario(settings, dep, gpu, None, w.seq, 1, 1)
    if not sc.startup.starts and sc.capacity.max_concurrent_requests:  # a hardware or startup refusal
        return str(sc.startup.reason)
    per_replica = sc.capacity.max_concurrent_requests
    if per_replica == 0:
        pool = min(b.kv_pool for b in sc.budgets)
        if pool < 0:
            return (f"weights and engine overheads exceed {sc.util:.0%} of {dep.gpus_per_replica} x {gpu.alias} "
                    f"by {-pool / 2**30:.2f} GiB per GPU")
        return f"the KV pool ({pool / 2**30:.2f} GiB per GPU) holds no request of {w.seq:,} tokens"
    replicas = math.ceil(w.users / per_replica)
    batch = math.ceil(w.users / replicas)
    misses = []
    host = sum(b.host_weights for b in sc.budgets)  # --cpu-offload-gb: read over the host link every pass
    if w.min_tokens_per_sec is not None:
        fastest = _fastest_batch(dep, gpu, batch, w.context, w.min_tokens_per_sec, host)
        if fastest == 0:
            speed = perf.decode(dep, gpu, 1, w.context, host).tokens_per_sec_per_user
            misses.append(f"decode {speed:.1f} tok/s per user even at batch 1 < {w.min_tokens_per_sec:g}")
        else:
            batch = fastest
            replicas = math.ceil(w.users / batch)
            batch = math.ceil(w.users / replicas)
    ttft = perf.prefill(dep, gpu, w.prompt, host_bytes=host).seconds
    if w.max_ttft is not None and ttft > w.max_ttft:
        misses.append(f"time to first token {ttft:.3f} s > {w.max_ttft:g} s")
    candidate = Candidate(gpu, dep.tp, dep.pp, replicas, label, dep.quant, dep.kv_dtype, per_replica, batch,
                          perf.decode(dep, gpu, batch, w.context, host), ttft, cost, misses, model_id, w.seq,
                          settings.engine, sc.util, w.output, dp_attention=dep.dp_attention,
                          expert_parallel=dep.expert_parallel, settings=settings)
    if replicas > 1 and not misses:
        candidate.closes_with = _closing_setting(dep, gpu, w, settings, sc.util, replicas)
    return candidate


CLOSE_MARGIN = 0.15  # a replica fewer is worth a setting when the users fall short by at most this fraction


def _closing_setting(dep: Deployment, gpu: GPU, w: Workload, settings: EngineSettings, util: float,
                     replicas: int) -> str | None:
    """An engine setting under which one replica fewer serves the users, when they are within CLOSE_MARGIN of
    its capacity: a higher memory fraction, an fp8 KV cache, then a larger running-request cap."""
    need = math.ceil(w.users / (replicas - 1))
    now = scenario(settings, dep, gpu, util, w.seq, 1, 1)
    have = now.capacity.max_concurrent_requests
    if need > have * (1 + CLOSE_MARGIN):
        return None
    eng = get_engine(settings.engine)
    tries: list[tuple[str, Deployment, float, EngineSettings]] = []
    if util < 0.95:
        tries.append((f"{eng.flags.get('util', '--util')} 0.95", dep, 0.95, settings))
    if dep.kv_dtype != "fp8" and "kv_fp8" in eng.flags:
        tries.append((eng.flags["kv_fp8"], Deployment(dep.model, tp=dep.tp, pp=dep.pp, quant=dep.quant,
                                                      kv_dtype="fp8"), util, settings))
    cap = now.printed
    if cap is not None and cap.max_num_seqs is not None and cap.max_num_seqs < need:
        tries.append((f"--max-num-seqs {need}", dep, util, replace(settings, max_num_seqs=need)))
    for label, d, u, st in tries:
        try:
            got = scenario(st, d, gpu, u, w.seq, 1, 1).capacity.max_concurrent_requests
        except KvplanError:
            continue
        if got >= need:
            return f"{label} serves the {w.users:,} users on {replicas - 1} replica(s) instead of {replicas}"
    return None


LOAD_STATS = ("median", "p99", "none")
LOAD_CHECKS = 8  # candidates simulated under load at most, best first


def judge_at_load(spec: ModelSpec, w: Workload, c: Candidate, stat: str) -> None:
    """Run the candidate's replica under the workload's load: its users as closed-loop clients (as `vllm bench
    serve --max-concurrency` runs them), each sending prompt + output, three rounds; the targets are then
    judged on the run's TTFT and TPOT at `stat` (median or p99), and misses added."""
    dep = Deployment(spec, tp=c.tp, pp=c.pp, quant=c.quant, kv_dtype=c.kv_dtype, dp_attention=c.dp_attention,
                     expert_parallel=c.expert_parallel)
    settings = c.settings or EngineSettings(engine=c.engine, max_model_len=w.seq)
    sc = scenario(settings, dep, c.gpu, None, w.seq, 1, 1)
    work = batching.Workload(w.prompt, w.output, max(3 * c.batch, 30), concurrency=c.batch)
    c.load = batching.on_scenario(dep, sc, get_engine(c.engine), work)
    ttft = getattr(c.load.ttft_ms, stat) / 1000
    if w.max_ttft is not None and ttft > w.max_ttft:
        c.misses.append(f"time to first token under load ({stat}) {ttft:.3f} s > {w.max_ttft:g} s")
    tpot = getattr(c.load.tpot_ms, stat)
    if w.min_tokens_per_sec is not None and tpot and 1000 / tpot < w.min_tokens_per_sec:
        c.misses.append(f"decode under load ({stat}) {1000 / tpot:.1f} tok/s per user < {w.min_tokens_per_sec:g}")


def search(spec: ModelSpec, workload: Workload, gpus: list[str] | None = None, max_gpus: int = 8,
           allow_quant: bool = False, allow_fp8_kv: bool = False, prices: dict[str, Price] | None = None,
           model_id: str | None = None, engine: str = DEFAULT_ENGINE, rank_by: str = RANKINGS[0],
           cross_node_tp: bool = False, speculative: tuple[str, int] | None = None,
           load_stat: str = "median", draft_model: str | None = None, cpu_offload_gb: float = 0.0,
           features: Mapping[str, Any] | None = None) -> FitResult:
    """Every candidate deployment of `spec` for `workload` under `engine`'s accounting, ranked by `rank_by`;
    candidates another of the same GPU type beats on every axis are pruned (and counted). With speed targets,
    the best candidates that meet them by the per-request estimates are then judged at the workload's load
    (`load_stat`: median or p99 of the simulation; none: not). `draft_model`: the drafter of a draft_model /
    eagle / eagle3 method. `cpu_offload_gb` > 0: every family is also sized with that many GiB of weights per GPU
    in CPU memory (vLLM --cpu-offload-gb), its speeds paying the host-link read every pass. `features`: further
    EngineSettings fields every candidate runs with (LoRA slots, images per prompt, a shared prefix)."""
    if load_stat not in LOAD_STATS:
        raise InputError(f"--load-stat must be one of {', '.join(LOAD_STATS)} (got {load_stat!r})")
    start = time.perf_counter()
    if rank_by not in RANKINGS:
        raise InputError(f"--rank-by must be one of {', '.join(RANKINGS)} (got {rank_by!r})")
    engine = canonical_name(engine)
    if engine not in fit_engines():
        raise InputError(f"kvplan fit plans {' or '.join(fit_engines())} deployments, not {engine!r}: size one "
                         f"layout under {engine} with kvplan plan --engine {engine}")
    if not 1 <= max_gpus <= SEARCH_LIMIT_GPUS:
        raise InputError(f"--max-gpus must be between 1 and {SEARCH_LIMIT_GPUS} (got {max_gpus})")
    if spec.max_context and workload.seq > spec.max_context:
        raise InputError(f"prompt + output = {workload.seq:,} tokens exceeds the model's context of "
                         f"{spec.max_context:,}: shorten the requests")
    devices = [get_gpu(g) for g in (gpus or DEFAULT_GPUS)]
    method, k = speculative or (None, 0)
    settings = EngineSettings(engine=engine, max_model_len=workload.seq, speculative_method=method,
                              num_speculative_tokens=k, draft_model=draft_model, **(features or {}))
    spec = served_model(spec, settings)  # with the drafter speculative decoding loads (PP 1 only, as plan says)
    kv_dtypes = ["auto", "fp8"] if allow_fp8_kv else ["auto"]
    offloads = [0.0, float(cpu_offload_gb)] if cpu_offload_gb else [0.0]
    if cpu_offload_gb < 0:
        raise InputError(f"--allow-cpu-offload must be a number of GiB >= 0 (got {cpu_offload_gb:g})")
    if cpu_offload_gb and not get_engine(engine).cpu_offload:
        raise InputError(f"--allow-cpu-offload is modelled for vLLM only, not {get_engine(engine).label}: drop it")
    deployments: dict[tuple, Deployment | str] = {}
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    skipped: dict[str, int] = {}
    evaluated = 0
    eng = get_engine(engine)
    lm_over_tp = eng.dp_attention_lm_head_over_tp

    def modes(n: int, gpu: GPU) -> list[tuple[int, int, int]]:
        """(TP, PP, data-parallel attention groups): every layout, and for a MoE model under an engine that
        serves it, data-parallel attention over the whole TP group with expert parallelism (attention TP 1,
        PP 1: how DeepSeek-V3 / R1, Qwen3-235B and Llama 4 are served)."""
        out = [(tp, pp, 1) for tp, pp in layouts(n, spec.num_layers, gpu.node.gpus, cross_node_tp)
               if pp == 1 or method is None]
        fills = n <= gpu.node.gpus or n % gpu.node.gpus == 0  # past one node, whole nodes
        if spec.moe is not None and eng.serves_dp_attention and n > 1 and fills:
            out.append((n, 1, n))
        return out

    def family(gpu: GPU, quant: str | None, label: str, kv: str, counts: range, offload: float,
               first_only: bool = False) -> tuple[list[Candidate], str | None]:
        """The candidates of one (GPU, weights, KV) family over `counts` GPUs per replica, and the last reason a
        layout failed; `first_only`: stop at the smallest count that serves the workload."""
        nonlocal evaluated
        found: list[Candidate] = []
        reason = None
        for n in counts:
            for tp, pp, groups in modes(n, gpu):
                key = (tp, pp, quant, kv, groups)
                if key not in deployments:
                    try:
                        dep = Deployment(spec, tp=tp, pp=pp, quant=quant, kv_dtype=kv, dp_attention=groups,
                                         expert_parallel=groups > 1, lm_head_over_tp=groups > 1 and lm_over_tp)
                        dep.stages  # noqa: B018 - validates the split
                        deployments[key] = dep
                    except KvplanError as e:
                        deployments[key] = str(e)
                dep = deployments[key]
                if isinstance(dep, str):
                    if not first_only:
                        skipped[dep] = skipped.get(dep, 0) + 1
                    continue
                evaluated += not first_only
                try:
                    result = _evaluate(dep, gpu, workload, replace(settings, cpu_offload_gb=offload), label,
                                       price(gpu, prices or {}), model_id or spec.name)
                except KvplanError as e:
                    result = str(e)
                if isinstance(result, str):
                    reason = result
                    continue
                found.append(result)
            if first_only and found:
                break
        return found, reason

    for gpu, (quant, label), kv, offload in itertools.product(devices, _schemes(spec, allow_quant), kv_dtypes,
                                                              offloads):
        family_label = f"{label} + {offload:g} GiB in CPU" if offload else label
        name = f"{gpu.alias} / {family_label} / KV {kv}"
        found, reason = family(gpu, quant, family_label, kv, range(1, max_gpus + 1), offload)
        candidates += found
        if not found:
            more, _ = family(gpu, quant, family_label, kv, range(max_gpus + 1, SEARCH_LIMIT_GPUS + 1), offload,
                             True)
            if more:
                c = min(more, key=lambda x: _rank(x, rank_by))
                layout = c.layout.split(" (", 1)[1].rstrip(")").split(", ")[0]
                reason = (f"{reason or 'no valid layout'}; the smallest that would: {c.gpus_per_replica} x "
                          f"{gpu.alias} per replica ({layout}"
                          + (f", {c.nodes} nodes of {gpu.node.gpus}" if c.nodes > 1 else "")
                          + f"; --max-gpus {c.gpus_per_replica})")
            _reject(rejected, name, reason or "no valid layout")
    kept = _prune(candidates)
    kept.sort(key=lambda c: _rank(c, rank_by))
    notes = ["speeds are estimates: roofline with achieved fractions fitted on published measurements "
             "(benchmarks/perf_compare.py); TTFT is one request's prefill, without queueing"]
    targets = workload.max_ttft is not None or workload.min_tokens_per_sec is not None
    if targets and load_stat != "none":
        judged = [c for c in kept if c.meets_targets][:LOAD_CHECKS]
        for c in judged:
            judge_at_load(spec, workload, c, load_stat)
        kept.sort(key=lambda c: _rank(c, rank_by))
        notes.append(f"the targets were judged again at the workload's load ({load_stat} TTFT and TPOT of "
                     f"{workload.users:,} closed-loop clients, kvplan.batching) for the {len(judged)} best "
                     "candidate(s) that met them per request; the others were not simulated")
    if method is not None:
        notes.append(f"speculative decoding ({method}, {k} token(s) a step): its memory (drafter, lookahead slots) "
                     "sizes every candidate, PP 1 only; the speeds do not include its speed-up (acceptance rates "
                     "are not modelled)")
    return FitResult(workload, kept, rejected, skipped, evaluated, time.perf_counter() - start, engine, notes,
                     rank_by, len(candidates) - len(kept))


def _prune(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates no other layout of the same GPU type, weights and KV dtype (meeting at least the targets it
    meets) dominates; precisions are a quality choice, never pruned against each other."""
    by_gpu: dict[tuple[str, str, str], list[Candidate]] = {}
    for c in candidates:
        by_gpu.setdefault((c.gpu.alias, c.weight_scheme, c.kv_dtype), []).append(c)
    kept = []
    for group in by_gpu.values():
        for c in group:
            if not any(o is not c and len(o.misses) <= len(c.misses) and o.dominates(c) for o in group):
                kept.append(c)
    return kept


def _shortfall(c: Candidate, w: Workload) -> float:
    """How far the candidate's worst target is missed, as a fraction of the target (0: met)."""
    gaps = [0.0]
    if w.min_tokens_per_sec:
        gaps.append(max(0.0, 1 - c.decode.tokens_per_sec_per_user / w.min_tokens_per_sec))
    if w.max_ttft:
        gaps.append(max(0.0, c.ttft_seconds / w.max_ttft - 1))
    return max(gaps)


def _reject(rejected: list[Rejection], family: str, reason: str) -> None:
    """Record a rejected family once (a GPU given twice keeps its first place and the latest reason)."""
    for i, r in enumerate(rejected):
        if r.family == family:
            rejected[i] = Rejection(family, reason)
            return
    rejected.append(Rejection(family, reason))


def _rank(c: Candidate, rank_by: str = RANKINGS[0]) -> tuple:
    """Targets met first; then `rank_by` (cost per million output tokens at the workload, cost per hour, GPUs,
    end-to-end latency), unknown prices last; ties by the other axes."""
    per_token = c.cost_per_million_tokens
    per_hour = c.cost_per_hour
    primary = {"cost-per-token": (per_token is None, per_token or 0.0),
               "cost-per-hour": (per_hour is None, per_hour or 0.0),
               "gpus": (False, c.gpus_total), "latency": (False, c.latency_seconds)}[rank_by]
    return (not c.meets_targets, len(c.misses), *primary, per_token is None, per_token or 0.0, c.gpus_total,
            -c.decode.tokens_per_sec_per_user)
