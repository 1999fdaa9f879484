"""The scheduler simulation (kvplan.batching), against pass sequences derived by hand from the schedulers' rules
(vLLM V1 `v1/core/sched/scheduler.py schedule`, 0.19.0: running requests first, then waiting ones in order,
one token budget; SGLang `get_next_batch_to_run`: a prefill pass whenever one can be formed). Each expected
figure is the sum of the passes listed in the test, each timed by kvplan.perf.step on its own."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from click.testing import CliRunner

from kvplan import batching, perf
from kvplan.cli import main
from kvplan.deployment import Deployment
from kvplan.engines import get_engine
from kvplan.engines.base import OutputReserve
from kvplan.errors import InputError
from kvplan.hardware import get_gpu
from kvplan.model.load import load_model
from kvplan.planning import plan

GPU = get_gpu("h100")


def delay() -> float:
    """The API server's time per request before the engine sees it (a fitted constant): in every TTFT and E2E."""
    return perf.constants()["comm"].get("request_overhead_ms", 0.0) * 1e-3


@pytest.fixture(scope="module")
def dep() -> Deployment:
    return Deployment(load_model("llama-3.1-8b"))


def sched(mixes: bool, budget: int = 100, seqs: int = 8, kv: int = 1 << 20) -> batching.Scheduler:
    return batching.Scheduler(seqs, budget, kv, 16, mixes_prefill=mixes, chunks_prompts=True)


def t(dep: Deployment, decodes: int = 0, context: int = 0, *chunks: tuple[int, int]) -> float:
    """One pass's seconds; the decodes' mean context on the simulation's 16-token grid."""
    return perf.step(dep, GPU, decodes, -(-context // 16) * 16, tuple(chunks)).seconds


def test_one_request_chunked_prompt(dep: Deployment) -> None:
    # a 150-token prompt under a 100-token budget: chunks of 100 and 50, the first token ends the second pass;
    # then two decode passes at contexts 150 and 151 (output 3)
    r = batching.simulate(dep, GPU, sched(True), batching.Workload(150, 3, 1, concurrency=1))
    ttft = delay() + t(dep, 0, 0, (0, 100)) + t(dep, 0, 0, (100, 50))
    assert r.ttft_ms.mean == pytest.approx(ttft * 1000, rel=1e-9)
    decode = t(dep, 1, 150) + t(dep, 1, 151)
    assert r.tpot_ms.mean == pytest.approx(decode / 2 * 1000, rel=1e-9)
    assert r.e2el_ms.mean == pytest.approx((ttft + decode) * 1000, rel=1e-9)
    assert r.passes == 4 and r.request_throughput == pytest.approx(1 / (ttft + decode))


def test_v1_two_requests_share_the_budget(dep: Deployment) -> None:
    # pass 1: r1 chunk 100 (budget spent); pass 2: r1 chunk 50 (first token) + r2 chunk 50;
    # pass 3: r1 decode at 150 + r2 chunk 99; pass 4: r1 decode at 151 + r2 chunk 1 (first token)
    r = batching.simulate(dep, GPU, sched(True), batching.Workload(150, 3, 2, concurrency=2))
    p1 = t(dep, 0, 0, (0, 100))
    p2 = t(dep, 0, 0, (100, 50), (0, 50))
    p3 = t(dep, 1, 150, (50, 99))
    p4 = t(dep, 1, 151, (149, 1))
    r1, r2 = delay() + p1 + p2, delay() + p1 + p2 + p3 + p4
    assert r.ttft_ms.mean == pytest.approx((r1 + r2) / 2 * 1000, rel=1e-9)
    assert r.ttft_ms.p99 == pytest.approx((r1 + 0.99 * (r2 - r1)) * 1000, rel=1e-9)  # numpy's interpolation


def test_prefill_first_stalls_the_decodes(dep: Deployment) -> None:
    # SGLang's order: pass 1 r1 chunk 100; pass 2 r1 chunk 50 (first token) + r2 chunk 50; pass 3 r2 chunk 100
    # (first token; r1 waits); pass 4 decodes r1 at 150 and r2 at 150: r1's first gap is passes 3 + 4
    r = batching.simulate(dep, GPU, sched(False), batching.Workload(150, 3, 2, concurrency=2))
    p1 = t(dep, 0, 0, (0, 100))
    p2 = t(dep, 0, 0, (100, 50), (0, 50))
    p3 = t(dep, 0, 0, (50, 100))
    p4 = t(dep, 2, 150)
    assert r.ttft_ms.mean == pytest.approx((2 * (delay() + p1 + p2) + p3) / 2 * 1000, rel=1e-9)
    assert r.itl_ms.p99 * 1e-3 == pytest.approx(p3 + p4, rel=0.02)  # the longest gap, interpolated near the top


def test_decode_jumps_match_passes_one_by_one(dep: Deployment) -> None:
    # a long output is jumped in segments; the TPOT equals the mean of every pass timed on its own
    out = 600
    r = batching.simulate(dep, GPU, sched(True, budget=8192), batching.Workload(1000, out, 1, concurrency=1))
    passes = [t(dep, 1, 1000 + j) for j in range(out - 1)]
    assert r.tpot_ms.mean == pytest.approx(sum(passes) / (out - 1) * 1000, rel=2e-3)


def test_seat_cap_queues_requests(dep: Deployment) -> None:
    # 2 seats, 6 clients: at most 2 run; the others wait, so TTFT's median exceeds one prefill pass
    r = batching.simulate(dep, GPU, sched(True, budget=8192, seqs=2), batching.Workload(200, 20, 6, concurrency=6))
    assert r.peak_running == 2
    assert r.ttft_ms.median > 3 * t(dep, 0, 0, (0, 200)) * 1000


def test_pool_shortage_preempts_and_still_finishes(dep: Deployment) -> None:
    # a pool of 40 blocks (640 tokens) and four requests that each grow to 300 tokens: they cannot all stay
    r = batching.simulate(dep, GPU, sched(True, budget=8192, kv=640), batching.Workload(100, 200, 8, concurrency=4))
    assert r.preemptions > 0
    assert r.request_throughput * r.duration_seconds == pytest.approx(8)


def test_littles_law_closed_loop(dep: Deployment) -> None:
    # N clients always busy: throughput x mean latency = N (up to the ramp and drain of the run)
    r = batching.simulate(dep, GPU, sched(True, budget=2048, seqs=256),
                          batching.Workload(512, 128, 2000, concurrency=32))
    assert r.request_throughput * r.e2el_ms.mean / 1000 == pytest.approx(32, rel=0.03)


def test_open_loop_at_a_low_rate_is_one_request_at_a_time(dep: Deployment) -> None:
    r = batching.simulate(dep, GPU, sched(True, budget=8192), batching.Workload(500, 2, 20, rate=0.01))
    assert r.ttft_ms.mean == pytest.approx((delay() + t(dep, 0, 0, (0, 500))) * 1000, rel=1e-9)
    assert r.peak_running == 1


def test_stats_follow_numpy_interpolation() -> None:
    s = batching._stats([(1.0, 1), (2.0, 2), (10.0, 1)])  # values 1, 2, 2, 10
    assert s.mean == pytest.approx(3750.0)
    assert s.median == pytest.approx(2000.0)
    assert s.p99 == pytest.approx((2 + 0.97 * 8) * 1000)  # rank 0.99 x 3 = 2.97


def test_bad_workloads_are_one_line_errors(dep: Deployment) -> None:
    with pytest.raises(InputError, match="--concurrency"):
        batching.Workload(100, 10, 10, concurrency=0)
    with pytest.raises(InputError, match="--rate"):
        batching.parse_rate("fast")
    assert batching.parse_rate("inf") is None and batching.parse_rate("2.5") == 2.5
    with pytest.raises(InputError, match="KV blocks"):
        batching.simulate(dep, GPU, sched(True, kv=64), batching.Workload(100, 10, 1))


def test_engine_batching_rules() -> None:
    from kvplan.engines import get_engine

    v1 = plan(load_model("llama-3.1-8b"), gpu=GPU, seq=2048)
    s = batching.scheduler(get_engine("vllm"), v1.scenarios[0].printed, v1.deployment)
    e = v1.scenarios[0].printed
    assert (s.mixes_prefill, s.chunks_prompts) == (True, True)
    assert (s.max_num_seqs, s.token_budget, s.kv_tokens, s.block_size) == (
        e.max_num_seqs, e.max_num_batched_tokens, e.kv_tokens, e.block_size)
    sg = plan(load_model("llama-3.1-8b"), gpu=GPU, seq=2048, engine="sglang")
    s = batching.scheduler(get_engine("sglang"), sg.scenarios[0].printed, sg.deployment)
    assert (s.mixes_prefill, s.chunks_prompts) == (False, True)
    assert s.max_num_seqs == sg.scenarios[0].printed.max_running_requests
    v0 = plan(load_model("llama-3.1-8b"), gpu=GPU, seq=2048, engine="vllm-v0", max_model_len=8192)
    assert v0.scenarios[0].printed.chunked_prefill is False  # 8K: V0 leaves chunked prefill off
    s = batching.scheduler(get_engine("vllm-v0"), v0.scenarios[0].printed, v0.deployment)
    assert (s.mixes_prefill, s.chunks_prompts) == (False, False)


def test_cli_under_load_equals_the_library() -> None:
    args = ["perf", "llama-3.1-8b", "--gpu", "h100", "--concurrency", "8", "--prompt", "512", "--output", "64",
            "--num-prompts", "40", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    held = plan("llama-3.1-8b", gpu="h100", seq=576)
    lib = batching.under_load(held, batching.Workload(512, 64, 40, concurrency=8))
    assert data["ttft_ms"]["mean"] == pytest.approx(lib.ttft_ms.mean)
    assert data["output_tokens_per_sec"] == pytest.approx(lib.output_tokens_per_sec)
    assert data["engine"] == "vllm" and data["scheduler"]["mixes_prefill"] is True
    text = CliRunner().invoke(main, args[:-1])
    assert text.exit_code == 0 and "TTFT (ms)" in text.output and "req/s" in text.output
    bad = CliRunner().invoke(main, ["perf", "llama-3.1-8b", "--gpu", "h100", "--rate", "soon"])
    assert bad.exit_code != 0 and "not a number" in bad.output and "Traceback" not in bad.output
    assert math.isfinite(data["itl_ms"]["p99"])


def test_fit_judges_targets_at_load() -> None:
    from kvplan.fit import Workload as FitWorkload
    from kvplan.fit import search

    spec = load_model("llama-3.1-8b")
    w = FitWorkload.from_options(64, prompt=2000, output=200, max_ttft=0.5)
    judged = search(spec, w, ["h100"], max_gpus=2)
    plain = search(spec, w, ["h100"], max_gpus=2, load_stat="none")
    assert all(c.load is None for c in plain.candidates)
    loaded = [c for c in judged.candidates if c.load is not None]
    assert loaded and any("at the workload's load" in n for n in judged.notes)
    for c in loaded:
        # the same replica, simulated on its own: its users as clients, three rounds
        dep = Deployment(spec, tp=c.tp, pp=c.pp, quant=c.quant, kv_dtype=c.kv_dtype)
        held = plan(spec, gpu=c.gpu, tp=c.tp, pp=c.pp, quant=c.quant, kv_dtype=c.kv_dtype, seq=w.seq,
                    max_model_len=w.seq)
        from kvplan.engines import get_engine

        s = batching.scheduler(get_engine("vllm"), held.scenarios[0].printed, dep)
        alone = batching.simulate(dep, c.gpu, s, batching.Workload(2000, 200, max(3 * c.batch, 30),
                                                                   concurrency=c.batch))
        assert c.load.ttft_ms.median == pytest.approx(alone.ttft_ms.median)
        late = alone.ttft_ms.median / 1000 > 0.5
        assert late == any("under load (median)" in m for m in c.misses)
    res = CliRunner().invoke(main, ["fit", "llama-3.1-8b", "--users", "64", "--prompt", "2000", "--output", "200",
                                    "--max-ttft", "0.5", "--gpu", "h100", "--max-gpus", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert any("under_load" in c for c in json.loads(res.output)["candidates"])


def test_replicas_share_the_load_evenly() -> None:
    """4 replicas behind an even balancer: 64 clients and 256 prompts become 16 and 64 per replica; the
    latencies are one replica's, the throughputs four times its own."""
    work = batching.Workload(1000, 200, 256, concurrency=64)
    one = batching.under_load(plan("llama-3.1-8b", gpu="h100", seq=1200, max_model_len=4096),
                              batching.Workload(1000, 200, 64, concurrency=16))
    four = batching.under_load(plan("llama-3.1-8b", gpu="h100", gpus=4, seq=1200, max_model_len=4096), work)
    assert four.about["replicas"] == 4 and four.workload == work
    assert four.ttft_ms == one.ttft_ms and four.tpot_ms == one.tpot_ms
    assert four.output_tokens_per_sec == pytest.approx(4 * one.output_tokens_per_sec)
    assert four.request_throughput == pytest.approx(4 * one.request_throughput)
    assert batching.split(batching.Workload(10, 10, 10, rate=3.0), 4) == batching.Workload(10, 10, 3, rate=0.75)


# --- lengths drawn as the benchmarks' random datasets draw them ------------------------------------------------

def test_bench_lengths_follow_each_tools_rule() -> None:
    vllm, sglang = get_engine("vllm"), get_engine("sglang")
    # vllm bench serve (vllm/benchmarks/datasets.py, 0.11.0): [floor(L(1-r)), ceil(L(1+r))], low ends >= 1
    assert vllm.bench_lengths(1000, 100, 0.25) == ((750, 1250), (75, 125))
    assert vllm.bench_lengths(1000, 1, 0.5) == ((500, 1500), (1, 2))  # floor(0.5) = 0 -> 1; ceil(1.5) = 2
    assert vllm.bench_lengths(1024, 1024, 0.0) == ((1024, 1024), (1024, 1024))
    assert get_engine("tgi").bench_lengths(1000, 100, 0.25) == ((750, 1250), (75, 125))  # vllm bench serve at it
    # sglang.bench_serving (compute_random_lens, 0.5.7): [max(int(L r), 1), L]; its default 0.0 is 1..L
    assert sglang.bench_lengths(1024, 1024, 0.8) == ((819, 1024), (819, 1024))  # int(819.2)
    assert sglang.bench_lengths(1024, 512, 0.0) == ((1, 1024), (1, 512))
    assert sglang.bench_lengths(300, 30, 1.0) == ((300, 300), (30, 30))
    for engine, ratio in ((vllm, 1.0), (vllm, -0.1), (sglang, 1.5)):
        with pytest.raises(InputError, match="random-range-ratio"):
            engine.bench_lengths(100, 10, ratio)


def test_drawn_lengths_repeat_and_stay_in_range() -> None:
    w = batching.Workload(1000, 100, 500, concurrency=8, prompt_range=(750, 1250), output_range=(75, 125))
    lengths = w.lengths()
    assert lengths == w.lengths() and len(lengths) == 500
    assert all(750 <= p <= 1250 and 75 <= o <= 125 for p, o in lengths)
    assert len({p for p, _ in lengths}) > 100  # drawn, not fixed
    assert batching.Workload(1000, 100, 500, rate=2.0, prompt_range=(750, 1250), output_range=(75, 125)).lengths() \
        == lengths  # the arrivals' stream does not move the lengths
    assert w.longest == 1250 + 125
    assert batching.Workload(10, 5, 3).lengths() == [(10, 5)] * 3
    with pytest.raises(InputError, match="length range"):
        batching.Workload(10, 5, 3, output_range=(0, 4))


def test_one_client_runs_each_drawn_request_alone(dep: Deployment) -> None:
    # one client: every request runs alone, so its TTFT is its own prompt's passes and its E2E adds its own
    # decode passes; the run's output tokens are the sum of the drawn outputs
    w = batching.Workload(150, 3, 4, concurrency=1, prompt_range=(50, 180), output_range=(1, 4))
    r = batching.simulate(dep, GPU, sched(True), w)
    ends, ttfts, tpots = 0.0, [], []
    for prompt, output in w.lengths():
        first = delay() + sum(t(dep, 0, 0, (done, min(100, prompt - done))) for done in range(0, prompt, 100))
        decode = sum(t(dep, 1, prompt + k) for k in range(output - 1))
        ends += first + decode
        ttfts.append(first)
        if output > 1:
            tpots.append(decode / (output - 1))
    made = sum(o for _, o in w.lengths())
    assert r.ttft_ms.mean == pytest.approx(sum(ttfts) / 4 * 1000, rel=1e-9)
    assert r.tpot_ms.mean == pytest.approx(sum(tpots) / len(tpots) * 1000, rel=1e-9)  # outputs of 1 have none
    assert r.output_tokens_per_sec == pytest.approx(made / ends, rel=1e-9)
    assert r.total_tokens_per_sec == pytest.approx((made + sum(p for p, _ in w.lengths())) / ends, rel=1e-9)


def test_perf_cli_draws_lengths_by_the_engines_bench_tool() -> None:
    args = ["perf", "llama-3.1-8b", "--gpu", "h100", "--concurrency", "4", "--num-prompts", "20", "--prompt", "512",
            "--output", "64", "--random-range-ratio", "0.5", "--json"]
    out = json.loads(CliRunner().invoke(main, args).stdout)
    assert out["workload"]["prompt_range"] == [256, 768] and out["workload"]["output_range"] == [32, 96]
    out = json.loads(CliRunner().invoke(main, [*args, "--engine", "sglang"]).stdout)
    assert out["workload"]["prompt_range"] == [256, 512] and out["workload"]["output_range"] == [32, 64]
    bad = CliRunner().invoke(main, [*args[:-1], "--bench", "vllm", "--random-range-ratio", "1"])
    assert bad.exit_code != 0 and "ratio in [0, 1)" in bad.output and "Traceback" not in bad.output


# --- SGLang's admission reserves the outputs still to come ----------------------------------------------------

FULL = OutputReserve(init=1.0, floor=1.0, decay_steps=600, clip=4096, retract_steps=20)  # ratio fixed at 1


def test_reserving_outputs_keeps_a_request_waiting_instead_of_preempting(dep: Deployment) -> None:
    # pool 192 tokens (12 blocks of 16); two requests of 60 + 40. Blocks now (vLLM): both prompts fit (4 + 4
    # blocks), then both grow to 100 tokens (7 + 7 blocks > 12): a preemption. Reserving outputs at ratio 1
    # (SGLang's PrefillAdder): r1 needs 60 + 40 = 100 < 192 and leaves 192 - 100 = 92; r2 needs 100 >= 92: it
    # waits until r1 ends, so nothing is preempted and its first token comes after r1's last
    plain = batching.Scheduler(8, 100, 192, 16, mixes_prefill=False, chunks_prompts=True)
    work = batching.Workload(60, 40, 2, concurrency=2)
    blocks_now = batching.simulate(dep, GPU, plain, work)
    assert blocks_now.preemptions > 0
    reserving = batching.simulate(dep, GPU, replace(plain, reserve=FULL), work)
    assert reserving.preemptions == 0 and reserving.peak_running == 1
    first_ttft, second_ttft = two(reserving.ttft_ms)
    first_end, _ = two(reserving.e2el_ms)
    assert second_ttft > first_end > first_ttft  # the second waited for the whole of the first


def two(st: batching.Stats) -> tuple[float, float]:
    """The two values behind a two-request run's stats: mean m = (lo + hi) / 2 and numpy's p99 = lo + 0.99 x
    (hi - lo) = 0.02 x m + 0.98 x hi."""
    hi = (st.p99 - 0.02 * st.mean) / 0.98
    return 2 * st.mean - hi, hi


def test_the_reservation_bound_never_jumps_past_an_admission(dep: Deployment, monkeypatch) -> None:
    # the decode jumps stop where the queue's head could become admissible (_passes_before_admission); checking
    # admission before every pass instead must give the same run (within the jumps' midpoint timing)
    sched = batching.Scheduler(64, 512, 6000, 16, mixes_prefill=False, chunks_prompts=True,
                               reserve=get_engine("sglang").output_reserve)
    work = batching.Workload(300, 200, 60, concurrency=40, prompt_range=(100, 500), output_range=(50, 400))
    bounded = batching.simulate(dep, GPU, sched, work)
    monkeypatch.setattr(batching, "_passes_before_admission", lambda run: 1)
    stepwise = batching.simulate(dep, GPU, sched, work)
    assert bounded.preemptions == stepwise.preemptions
    assert bounded.ttft_ms.mean == pytest.approx(stepwise.ttft_ms.mean, rel=5e-3)
    assert bounded.duration_seconds == pytest.approx(stepwise.duration_seconds, rel=5e-3)


def test_sglang_without_the_radix_cache_checks_the_future_peak(dep: Deployment) -> None:
    """add_one_req_ignore_eos (schedule_policy.py 0.4.0 / 0.5.7), by hand: r1 (100 + 100) admitted, then r2 (the
    same) is checked against the pool left after both prompts: stage 0 decodes 100 steps x 2 requests, stage 1
    100 x 1 after r1 frees its 100. A pool of 400 tokens leaves 400 - 100 - 100 = 200, and 200 - 200 <= 0: r2
    waits; at 401 it runs beside r1."""
    sglang = get_engine("sglang").output_reserve
    for kv, running in ((400, 1), (401, 2)):
        s = batching.Scheduler(8, 1000, kv, 1, mixes_prefill=False, chunks_prompts=True, reserve=sglang,
                               exact_reserve=True)
        r = batching.simulate(dep, GPU, s, batching.Workload(100, 100, 2, concurrency=2))
        assert r.peak_running == running and r.preemptions == 0, kv


@pytest.fixture
def cpp_runtime():
    """A C++ executor's host overheads set apart from the Python engines' (values of the test's own choosing,
    restored after it: the shipped ones are fitted)."""
    c = perf.constants()
    before = c.get("runtime")
    c["runtime"] = {"cpp": {"sequence_overhead_us": 5.0, "request_overhead_ms": 2.0}}
    yield 5e-6, 2e-3
    if before is None:
        c.pop("runtime")
    else:
        c["runtime"] = before


def test_a_runtime_pays_its_own_host_overheads(dep: Deployment, cpp_runtime) -> None:
    """perf.host_overheads: a pass costs every sequence in it the runtime's per-sequence overhead, and a request
    reaches the engine after the runtime's per-request overhead; the rest of a pass is the same."""
    seq_cpp, req_cpp = cpp_runtime
    seq_py, req_py = perf.host_overheads("python")
    assert (seq_py, req_py) == (perf.constants()["comm"]["sequence_overhead_us"] * 1e-6, delay())
    assert perf.host_overheads("cpp") == pytest.approx((seq_cpp, req_cpp))
    python = perf.step(dep, GPU, 64, 1024).seconds
    assert perf.step(dep, GPU, 64, 1024, runtime="cpp").seconds == pytest.approx(python - 64 * (seq_py - seq_cpp))
    # one request, closed loop: TTFT = the request overhead + its one prefill pass (one sequence in it)
    work = batching.Workload(100, 2, 1, concurrency=1)
    py = batching.simulate(dep, GPU, sched(True), work)
    cpp = batching.simulate(dep, GPU, replace(sched(True), runtime="cpp"), work)
    assert (py.ttft_ms.mean - cpp.ttft_ms.mean) / 1000 == pytest.approx((req_py - req_cpp) + (seq_py - seq_cpp))
    with pytest.raises(ValueError):
        perf.host_overheads("java")
