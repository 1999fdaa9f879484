"""Speed under load: a discrete-event simulation of an engine's continuous-batching scheduler.

Why a simulation and not a steady-state formula: what a serving benchmark prints (TTFT, TPOT, ITL and their
p99) comes from the order of passes: a request waits for a slot, its prompt is cut into chunks that share
passes with the running decodes (or stall them), and the pool running out preempts requests. A closed form of
the mean hides the tails and the ramp at the start of a run; a simulation of the passes gets both, and stays
well under a second because runs of identical decode passes are taken in one jump (see `_jump`).

The scheduler, per pass (vLLM V1 `v1/core/sched/scheduler.py schedule`, read in 0.19.0):
- the running requests first, in admission order: one token each for those decoding, the next chunk of the
  prompt for those still in prefill, within the token budget (`max_num_batched_tokens`); a request that needs a
  new KV block when none is free preempts the last admitted running request (recompute: its blocks are freed,
  it goes back to the head of the queue and prefills its prompt and the tokens it had made again);
- then waiting requests in arrival order while fewer than `max_num_seqs` run, the budget lasts and blocks are
  free for their chunk (none are admitted in a pass that preempted);
- a request whose prefill completes in a pass has its first token at the end of that pass.
Engines that do not mix (SGLang by default, TGI, vLLM V0 without chunked prefill) run a pass of prefill chunks
whenever a waiting request can be admitted, the decodes waiting, and a decode pass otherwise (SGLang
`scheduler.py get_next_batch_to_run`: a new prefill batch first). Each engine states which it does in
`Engine.batching`. Pass times are kvplan.perf.step's.

Load, as the benchmarks generate it (`vllm bench serve`, `sglang.bench_serving`): closed loop at a concurrency
(N clients, each sending its next request when the last ends: `--max-concurrency N --request-rate inf`), or
open loop at a request rate (Poisson arrivals, a fixed seed so the answer repeats), or all at once (offline,
`vllm bench throughput`). Every request has the same prompt and output length, or lengths drawn uniformly from
the ranges the benchmark's random dataset draws from at its --random-range-ratio (`Engine.bench_lengths`). The
figures are those the benchmarks print: request and token throughputs over the run's duration (first send to
last token), and the mean / median / p99 of TTFT, TPOT ((end - first token) / (output - 1) per request) and ITL
(every gap between a request's tokens).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import deque
from dataclasses import asdict, dataclass, field, replace

from kvplan import perf, planning
from kvplan.deployment import Deployment
from kvplan.engines import DEFAULT_ENGINE, get_engine
from kvplan.engines.base import Engine, OutputReserve, Printed, Scenario
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.hardware import GPU
from kvplan.planning import Plan

MAX_PROMPTS = 100_000
JUMP_SEGMENTS = 8  # a jump of decode passes is timed at the midpoints of up to this many equal segments


@dataclass(frozen=True)
class Scheduler:
    """The engine's scheduler limits for one replica, as its startup prints them."""

    max_num_seqs: int
    token_budget: int  # tokens one pass processes (vLLM max_num_batched_tokens, SGLang chunked_prefill_size)
    kv_tokens: int  # the KV pool in tokens (all layers), whole blocks
    block_size: int
    mixes_prefill: bool  # prefill chunks share a pass with the decodes
    chunks_prompts: bool  # a prompt longer than the budget is split over passes
    host_bytes: float = 0.0  # weights per GPU read from CPU memory every pass (--cpu-offload-gb)
    reserve: OutputReserve | None = None  # admission reserves the outputs still to come (SGLang); None: blocks now
    exact_reserve: bool = False  # ... by their whole outputs, checked against the pool's future peak (SGLang with
    # the radix cache off: the benchmarks' requests ignore EOS)
    runtime: str = "python"  # whose host overheads the passes and requests pay (kvplan.perf.host_overheads)


@dataclass(frozen=True)
class Workload:
    prompt: int
    output: int
    num_prompts: int
    concurrency: int | None = None  # closed loop: this many clients (None: no cap)
    rate: float | None = None  # open loop: Poisson arrivals per second (None: all at once)
    seed: int = 0
    # each request's prompt / output drawn uniformly from these integers (inclusive) as the benchmarks' random
    # dataset draws them (`Engine.bench_lengths`); None: every request has `prompt` / `output` tokens
    prompt_range: tuple[int, int] | None = None
    output_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for label, value in (("--prompt", self.prompt), ("--output", self.output), ("--num-prompts", self.num_prompts)):
            if value < 1:
                raise InputError(f"{label} must be a positive integer (got {value})")
        for label, span in (("prompt", self.prompt_range), ("output", self.output_range)):
            if span is not None and not 1 <= span[0] <= span[1]:
                raise InputError(f"the {label} length range {span[0]}-{span[1]} is empty or below one token")
        if self.num_prompts > MAX_PROMPTS:
            raise InputError(f"--num-prompts {self.num_prompts:,} is more than kvplan simulates ({MAX_PROMPTS:,})")
        if self.concurrency is not None and self.concurrency < 1:
            raise InputError(f"--concurrency must be a positive integer (got {self.concurrency})")
        if self.rate is not None and not self.rate > 0:
            raise InputError(f"--rate must be a positive number of requests per second (got {self.rate})")

    @property
    def spans(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (low, high) prompt and output lengths a request can have."""
        return self.prompt_range or (self.prompt, self.prompt), self.output_range or (self.output, self.output)

    @property
    def longest(self) -> int:
        """Tokens of the longest request the run can draw (the max_model_len it needs)."""
        p, o = self.spans
        return p[1] + o[1]

    def lengths(self) -> list[tuple[int, int]]:
        """(prompt, output) of every request, in sending order: drawn with the run's seed where a range is set."""
        if self.prompt_range is None and self.output_range is None:
            return [(self.prompt, self.output)] * self.num_prompts
        rng = random.Random(self.seed + 1)  # not the arrivals' stream: the same lengths at any rate
        p, o = self.spans
        return [(rng.randint(*p), rng.randint(*o)) for _ in range(self.num_prompts)]


def workload(prompt: int, output: int, num_prompts: int, concurrency: int | None = None,
             rate: str | float | None = None, range_ratio: float | None = None, bench: str | None = None,
             engine: str | None = None) -> Workload:
    """The workload of `kvplan perf` and POST /api/perf: with --random-range-ratio, lengths drawn as the random
    dataset of the benchmark run against `bench` (default: the serving engine) draws them (Engine.bench_lengths)."""
    if range_ratio is None:
        if bench is not None:
            raise InputError("--bench names whose --random-range-ratio rule applies: give --random-range-ratio too")
        return Workload(prompt, output, num_prompts, concurrency, parse_rate(rate))
    spans = get_engine(bench or engine or DEFAULT_ENGINE).bench_lengths(prompt, output, range_ratio)
    return Workload(prompt, output, num_prompts, concurrency, parse_rate(rate), prompt_range=spans[0],
                    output_range=spans[1])


@dataclass(frozen=True)
class Stats:
    mean: float
    median: float
    p99: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class LoadResult:
    workload: Workload
    scheduler: Scheduler
    duration_seconds: float
    request_throughput: float  # requests per second
    output_tokens_per_sec: float
    total_tokens_per_sec: float  # prompt + output tokens per second
    ttft_ms: Stats
    tpot_ms: Stats
    itl_ms: Stats
    e2el_ms: Stats
    passes: int
    preemptions: int
    mean_batch: float  # requests in a pass, averaged over the passes
    peak_running: int
    about: dict = field(default_factory=dict)  # the deployment and engine it ran under (under_load)

    def to_dict(self) -> dict:
        w, s = self.workload, self.scheduler
        return {
            **self.about,
            "workload": {"prompt": w.prompt, "output": w.output, "num_prompts": w.num_prompts,
                         "concurrency": w.concurrency, "request_rate": w.rate, "seed": w.seed,
                         "prompt_range": w.prompt_range, "output_range": w.output_range},
            "scheduler": asdict(s),
            "duration_seconds": self.duration_seconds, "request_throughput": self.request_throughput,
            "output_tokens_per_sec": self.output_tokens_per_sec, "total_tokens_per_sec": self.total_tokens_per_sec,
            "ttft_ms": self.ttft_ms.to_dict(), "tpot_ms": self.tpot_ms.to_dict(), "itl_ms": self.itl_ms.to_dict(),
            "e2el_ms": self.e2el_ms.to_dict(), "passes": self.passes, "preemptions": self.preemptions,
            "mean_batch": self.mean_batch, "peak_running": self.peak_running,
        }


@dataclass
class _Request:
    index: int
    arrival: float
    prompt: int  # tokens to prefill (the prompt, plus the tokens made before a preemption)
    output: int  # tokens it generates
    asked: int = 0  # its prompt as sent
    computed: int = 0  # tokens in the KV cache
    generated: int = 0
    blocks: int = 0
    first_token: float | None = None
    last_token: float = 0.0

    @property
    def prefilling(self) -> bool:
        return self.computed < self.prompt


@dataclass
class _Run:
    dep: Deployment
    gpu: GPU
    sched: Scheduler
    work: Workload
    now: float = 0.0
    free_blocks: int = 0
    waiting: deque = field(default_factory=deque)
    running: list = field(default_factory=list)
    done: list = field(default_factory=list)
    itl: list = field(default_factory=list)  # (gap seconds, how many gaps)
    passes: int = 0
    batch_sum: int = 0
    preemptions: int = 0
    peak: int = 0
    ratio: float = 0.0  # the share of the running requests' outputs left that admission reserves (OutputReserve)

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.sched.block_size)

    def pass_seconds(self, decodes: int, context_sum: int, chunks: list[tuple[_Request, int]]) -> float:
        """One pass of `decodes` requests holding `context_sum` tokens in all, beside the prompt chunks."""
        context = round(context_sum / decodes) if decodes else 0
        context = -(-context // 16) * 16  # on a 16-token grid: perf.step's figures are cached by context
        return perf.step(self.dep, self.gpu, decodes, context, tuple((r.computed, n) for r, n in chunks),
                         host_bytes=self.sched.host_bytes, runtime=self.sched.runtime).seconds


def simulate(dep: Deployment, gpu: GPU, sched: Scheduler, work: Workload) -> LoadResult:
    """Run the workload through the scheduler (the module docstring) and return what a benchmark prints."""
    lengths = work.lengths()
    longest = max(p + o for p, o in lengths)
    need = -(-longest // sched.block_size)
    if need > sched.kv_tokens // sched.block_size:
        raise InputError(f"one request of {longest:,} tokens needs {need:,} KV blocks; the pool "
                         f"holds {sched.kv_tokens // sched.block_size:,}: the engine cannot serve it")
    if not sched.chunks_prompts and max(p for p, _ in lengths) > sched.token_budget:
        raise InputError(f"the prompt ({max(p for p, _ in lengths):,} tokens) exceeds the token budget per pass "
                         f"({sched.token_budget:,}) of an engine that does not split prompts: raise it")
    run = _Run(dep, gpu, sched, work, free_blocks=sched.kv_tokens // sched.block_size,
               ratio=sched.reserve.init if sched.reserve else 0.0)
    arrivals = _arrivals(work)
    clients = work.concurrency or work.num_prompts
    delay = perf.host_overheads(sched.runtime)[1]  # the API server, before the engine sees the request
    pending = [(t + delay, t, i) for i, t in enumerate(arrivals[:clients])]  # (engine sees it, sent, index)
    heapq.heapify(pending)
    sent = len(pending)
    while len(run.done) < work.num_prompts:
        while pending and pending[0][0] <= run.now + 1e-12:
            _, t, i = heapq.heappop(pending)
            run.waiting.append(_Request(i, t, lengths[i][0], lengths[i][1], lengths[i][0]))
        if not run.running and not run.waiting:
            run.now = pending[0][0]  # idle until the next request is sent
            continue
        finished = _jump(run, pending[0][0] if pending else math.inf) if _steady(run) else _pass(run)
        for _ in finished:
            if sent < work.num_prompts:  # the client sends its next request (closed loop), or the next arrival
                send = max(arrivals[sent], run.now if work.concurrency else 0.0)
                heapq.heappush(pending, (send + delay, send, sent))
                sent += 1
    return _result(run)


def _arrivals(work: Workload) -> list[float]:
    if work.rate is None:
        return [0.0] * work.num_prompts
    rng = random.Random(work.seed)
    t, out = 0.0, []
    for _ in range(work.num_prompts):
        out.append(t)
        t += rng.expovariate(work.rate)
    return out


def _steady(run: _Run) -> bool:
    """Only decodes can run for now: no request is in prefill and none waiting can be admitted."""
    if not run.running or any(r.prefilling for r in run.running):
        return False
    if not run.waiting or len(run.running) >= run.sched.max_num_seqs:
        return True
    head = run.waiting[0]
    if run.sched.reserve and _reserve_deficit(run, head) > 0:
        return True
    return run.free_blocks < run.blocks_for(min(head.prompt, run.sched.token_budget)) + len(run.running)


def _reserved(run: _Run) -> float:
    """Tokens the running requests' outputs still to come hold back from admission (OutputReserve)."""
    clip = run.sched.reserve.clip
    return sum(min(r.output - r.generated, clip) for r in run.running) * run.ratio


def _reserve_deficit(run: _Run, r: _Request) -> float:
    """How many tokens short the pool is of admitting r beside the reservations (> 0: not admitted)."""
    if run.sched.exact_reserve:
        return 0.0 if _future_fits(run, r) else 1.0
    need = r.prompt - r.computed + min(r.output - r.generated, run.sched.reserve.clip)
    return need - (run.free_blocks * run.sched.block_size - _reserved(run)) + 1  # admitted when need < room


def _future_fits(run: _Run, r: _Request) -> bool:
    """SGLang's admission of an ignore-EOS request with the radix cache off (schedule_policy.py PrefillAdder
    add_one_req_ignore_eos, read in 0.4.0 and 0.5.7): the running requests (those admitted this pass among them)
    and r, sorted by the outputs they have left; stage i decodes (the next one's tokens left) x (requests from i
    on) tokens, and each stage's finished request frees what it holds; every stage must leave tokens free."""
    states = sorted((q.output - q.generated, q.asked + q.generated) for q in [*run.running, r])
    room = run.free_blocks * run.sched.block_size - (r.prompt - r.computed)
    freed = 0
    for i, (left, held) in enumerate(states):
        steps = states[i + 1][0] if i + 1 < len(states) else left
        if room + freed - steps * (len(states) - i) <= 0:
            return False
        freed += held
    return True


def _decayed(run: _Run, passes: int) -> None:
    """The reservation ratio after `passes` decode passes."""
    res = run.sched.reserve
    if res:
        run.ratio = max(run.ratio - passes * res.fall, res.lowest)


def _jump(run: _Run, next_send: float) -> list[_Request]:
    """k identical decode passes at once: until a request ends, blocks could run short, or a request arrives."""
    rs, bs = run.running, run.sched.block_size
    n = len(rs)
    k = min(r.output - r.generated for r in rs)
    room = (run.free_blocks // n - 1) * bs  # passes every request can grow without a new block running short
    if room < 1 or any(r.last_token < run.now for r in rs):  # (a request that waited: its next gap is long)
        return _pass(run)
    k = min(k, room)
    if run.sched.reserve and run.waiting and len(rs) < run.sched.max_num_seqs:
        k = min(k, 1 if run.sched.exact_reserve else _passes_before_admission(run))
    held = sum(r.computed for r in rs)
    if next_send < math.inf:
        first = run.pass_seconds(n, held, [])
        k = min(k, max(1, int((next_send - run.now) / first)))
    if k <= 1:
        return _pass(run)
    segments = min(JUMP_SEGMENTS, k)
    total, done = 0.0, 0
    for s in range(segments):
        length = k * (s + 1) // segments - done
        seconds = run.pass_seconds(n, held + n * round(done + length / 2), [])  # at the segment's middle
        run.itl.append((seconds, length * n))
        total += seconds * length
        done += length
    for r in rs:
        r.computed += k
        run.free_blocks -= run.blocks_for(r.computed) - r.blocks
        r.blocks = run.blocks_for(r.computed)
        r.generated += k
    run.now += total
    run.passes += k
    run.batch_sum += k * n
    _decayed(run, k)
    for r in rs:
        r.last_token = run.now
    return _finish(run)


def _passes_before_admission(run: _Run) -> int:
    """Decode passes that cannot make the head of the queue admissible under the reservation: each pass uses one
    token per running request and frees at most (the ratio's fall) x the clipped outputs left plus the ratio x one
    token per request of reservation, so the room gains at most g = fall x S - (1 - ratio) x n tokens a pass."""
    res, rs = run.sched.reserve, run.running
    deficit = _reserve_deficit(run, run.waiting[0])
    if deficit <= 0:
        return 1
    fall = res.fall if run.ratio > res.lowest else 0.0
    gain = fall * sum(min(r.output - r.generated, res.clip) for r in rs) - (1 - run.ratio) * len(rs)
    return max(1, math.floor(deficit / gain)) if gain > 0 else math.inf


def _grow(run: _Run, r: _Request, tokens: int) -> bool:
    """Blocks for `tokens` more of request r; False when the pool has none free."""
    need = run.blocks_for(r.computed + tokens) - r.blocks
    if need > run.free_blocks:
        return False
    run.free_blocks -= need
    r.blocks += need
    return True


def _preempt(run: _Run, victim: _Request) -> None:
    """Recompute preemption of the last running request: its blocks go back to the pool, it re-queues at the
    head with the tokens it made."""
    run.running.pop()
    run.free_blocks += victim.blocks
    victim.blocks = victim.computed = 0
    victim.prompt = victim.asked + victim.generated
    run.waiting.appendleft(victim)
    run.preemptions += 1
    res = run.sched.reserve
    if res and run.running:  # retract_decode: the ratio the remaining requests' progress implies
        made = sum(r.generated for r in run.running) + res.retract_steps * len(run.running)
        run.ratio = min(1.0, made / sum(r.output for r in run.running))


def _pass(run: _Run, prefill_first: bool = True) -> list[_Request]:
    """One scheduler pass (the module docstring) and its time. An engine that does not mix runs a pass of prefill
    chunks when one can be formed (`prefill_first`), else a decode pass."""
    s = run.sched
    decodes: list[_Request] = []
    chunks: list[tuple[_Request, int]] = []
    budget = s.token_budget
    prefill_only = prefill_first and not s.mixes_prefill and (any(r.prefilling for r in run.running) or (
        bool(run.waiting) and len(run.running) < s.max_num_seqs and _admissible(run, run.waiting[0])))
    preempted = False
    running, bs = run.running, s.block_size
    i = 0
    while i < len(running) and budget > 0:
        r = running[i]
        i += 1
        prefilling = r.computed < r.prompt
        if prefilling != prefill_only and not s.mixes_prefill:
            continue  # a pass of prefill chunks, or of decodes
        if not prefilling and r.blocks * bs > r.computed:  # a decode with room in its last block
            decodes.append(r)
            budget -= 1
            continue
        n = min(r.prompt - r.computed, budget) if prefilling else 1
        while not _grow(run, r, n):  # preempt from the back (those before i keep their places)
            victim = running[-1]
            _preempt(run, victim)
            preempted = True
            if victim is r:
                break
        else:
            (chunks.append((r, n)) if prefilling else decodes.append(r))
            budget -= n
    if (s.mixes_prefill or prefill_only) and not preempted:
        room = run.free_blocks * bs - _reserved(run) if s.reserve else math.inf
        while run.waiting and budget > 0 and len(run.running) < s.max_num_seqs:
            r = run.waiting[0]
            left = r.prompt - r.computed
            if not s.chunks_prompts and left > budget and run.running:
                break
            n = min(left, budget) if s.chunks_prompts else left
            outputs = min(r.output - r.generated, s.reserve.clip) if s.reserve else 0
            if s.exact_reserve and not _future_fits(run, r):
                break
            if (not s.exact_reserve and left + outputs >= room) or not _grow(run, r, n):
                break
            room -= n + (outputs if n == left else 0)
            run.waiting.popleft()
            run.running.append(r)
            chunks.append((r, n))
            budget -= n
    if not decodes and not chunks and prefill_only and run.running:
        return _pass(run, prefill_first=False)  # the chunk's request was preempted: the others decode
    if not decodes and not chunks:
        raise InputError("the scheduler cannot place any request (the pool is too small for one prompt chunk)")
    seconds = run.pass_seconds(len(decodes), sum(r.computed for r in decodes), chunks)
    if decodes and not preempted:
        _decayed(run, 1)
    run.now += seconds
    run.passes += 1
    run.batch_sum += len(decodes) + len(chunks)
    run.peak = max(run.peak, len(run.running))
    now, steady = run.now, 0  # gaps of one pass (the request decoded in the pass before) are counted together
    for r in decodes:
        r.computed += 1
        r.generated += 1
        if now - r.last_token <= seconds * (1 + 1e-9):
            steady += 1
        else:
            run.itl.append((now - r.last_token, 1))
        r.last_token = now
    run.itl.append((seconds, steady))
    for r, n in chunks:
        r.computed += n
        if not r.prefilling:  # its prompt is in: the pass samples its next token
            if r.first_token is None:
                r.first_token = run.now
            else:  # a preempted request resumes: the gap since its last token is one long ITL
                run.itl.append((run.now - r.last_token, 1))
            r.generated += 1
            r.last_token = run.now
    return _finish(run)


def _admissible(run: _Run, r: _Request) -> bool:
    if run.sched.reserve and _reserve_deficit(run, r) > 0:
        return False
    return run.free_blocks >= run.blocks_for(min(r.prompt - r.computed, run.sched.token_budget) + r.computed) - r.blocks


def _finish(run: _Run) -> list[_Request]:
    out = [r for r in run.running if r.generated >= r.output]
    if out:
        run.running = [r for r in run.running if r.generated < r.output]
    for r in out:
        run.free_blocks += r.blocks
        r.blocks = 0
        run.done.append(r)
    return out


def _stats(values: list[tuple[float, int]]) -> Stats:
    """Mean, median and p99 of weighted values (each value counted `weight` times), by numpy's default linear
    interpolation between order statistics, as the benchmarks compute them."""
    values = sorted(v for v in values if v[1] > 0)
    ends = list(itertools.accumulate(w for _, w in values))  # the last order-statistic index + 1 of each value
    if not ends:
        return Stats(0.0, 0.0, 0.0)

    def order(i: int) -> float:
        return values[bisect.bisect_right(ends, i)][0]

    def quantile(q: float) -> float:
        rank = q * (ends[-1] - 1)
        lo, hi = order(math.floor(rank)), order(math.ceil(rank))
        return lo + (hi - lo) * (rank - math.floor(rank))

    mean = sum(v * w for v, w in values) / ends[-1]
    return Stats(mean * 1000, quantile(0.5) * 1000, quantile(0.99) * 1000)


def _result(run: _Run) -> LoadResult:
    w = run.work
    start = min(r.arrival for r in run.done)
    duration = max(r.last_token for r in run.done) - start
    ttft = [(r.first_token - r.arrival, 1) for r in run.done]
    tpot = [((r.last_token - r.first_token) / (r.output - 1), 1) for r in run.done if r.output > 1]
    e2el = [(r.last_token - r.arrival, 1) for r in run.done]
    n, made = len(run.done), sum(r.output for r in run.done)
    return LoadResult(w, run.sched, duration, n / duration, made / duration,
                      (made + sum(r.asked for r in run.done)) / duration, _stats(ttft), _stats(tpot), _stats(run.itl),
                      _stats(e2el), run.passes, run.preemptions, run.batch_sum / max(run.passes, 1), run.peak)


def scheduler(engine: Engine, printed: Printed, dep: Deployment, host_bytes: float = 0.0,
              prefix_cache: bool = True, runtime: str = "python") -> Scheduler:
    """The scheduler of one replica from what its engine prints at startup. Under data-parallel attention each
    attention group schedules its own requests into its own pool: the groups are taken as one scheduler with
    their pools and sequence caps summed (the requests spread evenly)."""
    how = engine.batching(printed)
    if how is None or printed.kv_tokens is None or printed.max_num_batched_tokens is None:
        raise UnsupportedModelError(f"speed under load is not modelled under {engine.label}: kvplan does not "
                                    "know how its scheduler batches requests")
    groups = dep.dp_attention
    seqs = printed.max_num_seqs or printed.max_running_requests or printed.kv_tokens
    return Scheduler(seqs * groups, printed.max_num_batched_tokens, printed.kv_tokens * groups,
                     printed.block_size or 1, *how, host_bytes, engine.output_reserve,
                     engine.output_reserve is not None and not prefix_cache, runtime)


def on_scenario(dep: Deployment, sc: Scenario, engine: Engine, work: Workload,
                prefix_cache: bool = True, runtime: str = "python") -> LoadResult:
    """The workload on one scenario of `dep` (a plan's, or a fit candidate's) under its engine's scheduler
    (`runtime`: another runtime's host overheads, for an engine this one's scheduler stands in for)."""
    assert sc.printed is not None and sc.gpu is not None
    host = sum(b.host_weights for b in sc.budgets)
    return simulate(dep, sc.gpu, scheduler(engine, sc.printed, dep, host, prefix_cache, runtime), work)


def parse_rate(text: str | float | None) -> float | None:
    """--rate: requests per second, or inf (all at once: None)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--rate {text!r} is not a number: give requests per second (e.g. 4) or inf") from None
    if value == math.inf:
        return None
    if not value > 0:
        raise InputError(f"--rate must be a positive number of requests per second or inf (got {text})")
    return value


def split(work: Workload, replicas: int) -> Workload:
    """One replica's share of the workload when `replicas` serve it behind a balancer that spreads requests evenly
    (vLLM's --data-parallel-size front end, SGLang's router, round-robin): the clients, the prompts and the rate
    divided, rounded up (the busiest replica)."""
    if replicas == 1:
        return work
    return replace(work, num_prompts=-(-work.num_prompts // replicas),
                   concurrency=None if work.concurrency is None else -(-work.concurrency // replicas),
                   rate=None if work.rate is None else work.rate / replicas)


def under_load(plan: Plan, work: Workload, runtime: str = "python") -> LoadResult:
    """The workload on the plan's first scenario: its engine's pool and scheduler; with replicas, one replica
    runs its even share (`split`) and the throughputs are that replica's times the replicas. `runtime`: as in
    on_scenario."""
    sc = plan.scenarios[0]
    engine = get_engine(plan.engine.engine)
    if sc.gpu is None:
        raise InputError("speed under load needs a catalog GPU (--gpu): its bandwidth and FLOPS time the passes")
    if sc.printed is None:
        raise UnsupportedModelError(f"speed under load is not modelled under {engine.label}: choose an engine "
                                    "whose scheduler kvplan simulates (vllm, vllm-v0, sglang, tgi, llamacpp)")
    if not sc.startup.starts:
        raise InputError(f"the engine will not start: {sc.startup.reason}")
    replicas = plan.replicas
    result = on_scenario(plan.deployment, sc, engine, split(work, replicas),
                         prefix_cache=not plan.engine.disable_radix_cache, runtime=runtime)
    if replicas > 1:
        result = replace(result, workload=work, request_throughput=result.request_throughput * replicas,
                         output_tokens_per_sec=result.output_tokens_per_sec * replicas,
                         total_tokens_per_sec=result.total_tokens_per_sec * replicas)
    d = plan.deployment
    about = {"model": plan.model.name, "gpu": sc.gpu.alias, "tp": d.tp, "pp": d.pp, "dp_attention": d.dp_attention,
             "replicas": replicas,
             "engine": engine.name, "engine_version": sc.printed.version, "weights": d.weight_format.name,
             "kv_dtype": d.kv_dtype, "max_model_len": sc.printed.max_model_len,
             "assumptions": [
                 "a simulation of the engine's scheduler (kvplan.batching): " + _lengths_note(work)
                 + "; pass times are kvplan.perf's roofline estimates"
                 + (f"; {replicas} replicas: one runs its even share of the clients, prompts and rate (rounded "
                    "up), and the throughputs are its own times the replicas; latencies are that replica's"
                    if replicas > 1 else ""),
                 perf.decode(d, sc.gpu, 1, work.prompt).assumptions]}
    return replace(result, about=about)


def _lengths_note(work: Workload) -> str:
    if work.prompt_range is None and work.output_range is None:
        return "every request has the same prompt and output length"
    p, o = work.spans
    return (f"each request's prompt drawn uniformly from {p[0]:,}-{p[1]:,} tokens and its output from "
            f"{o[0]:,}-{o[1]:,} (seed {work.seed}), as the benchmark's random dataset draws them")


def load_for(model, work: Workload, **plan_options) -> LoadResult:
    """kvplan perf under load: plan `model` (plan()'s options: gpu, tp, engine, util, ...) for requests of the
    workload's length, then simulate the workload on its first scenario (the CLI's and the page's call)."""
    return under_load(planning.plan(model, seq=work.longest, **plan_options), work)
