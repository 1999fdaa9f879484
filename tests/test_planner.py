"""`kvplan fit`: the search, the ranking, cost, replicas, rejections, vllm serve lines and prices."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from kvplan import perf
from kvplan.cli import main
from kvplan.deployment import Deployment
from kvplan.errors import InputError
from kvplan.fit import Workload, layouts, search
from kvplan.hardware import get_gpu
from kvplan.model.load import load_model
from kvplan.planning import plan
from kvplan.pricing import Price, parse_overrides, read_file

JSON_KEYS = {"gpu", "gpus_per_replica", "tp", "pp", "replicas", "weight_scheme", "kv_dtype",
             "max_concurrent_requests", "meets_targets", "cost_per_hour", "cost_per_million_tokens",
             "decode_tokens_per_sec_per_user", "ttft_seconds", "vllm_command"}


def fit_json(*args: str) -> dict:
    r = CliRunner().invoke(main, ["fit", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.fixture(scope="module")
def llama8b():
    return load_model("llama-3.1-8b")


def test_layouts_cover_every_tp_pp_product():
    assert layouts(8, 32) == [(8, 1), (4, 2), (2, 4), (1, 8)]
    assert layouts(6, 4) == [(6, 1), (3, 2), (2, 3)]  # PP 6 > 4 layers is not offered


def test_each_candidate_is_sized_by_the_vllm_accounting(llama8b):
    w = Workload(users=300, prompt=3072, output=1024)
    result = search(llama8b, w, ["l40s", "h100"], max_gpus=2)
    assert result.candidates
    for c in result.candidates:
        # the same deployment through `kvplan plan` (vLLM, util 0.9, max_model_len = the request length)
        s = plan(llama8b, gpu=c.gpu, tp=c.tp, pp=c.pp, seq=w.seq, max_model_len=w.seq).scenarios[0]
        assert c.max_concurrent_requests == s.capacity.max_concurrent_requests
        assert c.replicas == math.ceil(300 / c.max_concurrent_requests)  # no speed target: fewest replicas
        assert c.batch * c.replicas >= 300 and c.batch <= c.max_concurrent_requests
        assert c.cost_per_hour == pytest.approx(c.gpu.price_per_hour * c.gpus_total)
        tokens_per_hour = c.replicas * c.batch / c.decode.step_seconds * 3600
        assert c.cost_per_million_tokens == pytest.approx(c.cost_per_hour / tokens_per_hour * 1e6)
        assert c.decode.context == 3072 + 1024 // 2  # a request decodes at the prompt plus half its output


def test_default_ranking_is_cost_per_token_meeting_first(llama8b):
    result = search(llama8b, Workload(64, 1024, 256, min_tokens_per_sec=30), ["l4", "a100-80g", "h100"])
    meeting = [c for c in result.candidates if c.meets_targets]
    per_token = [c.cost_per_million_tokens for c in meeting]
    assert result.rank_by == "cost-per-token" and per_token == sorted(per_token)
    # cost per million output tokens = cost per hour / (tokens per second x 3600) x 10^6
    best = meeting[0]
    assert best.cost_per_million_tokens == pytest.approx(best.cost_per_hour / (best.tokens_per_sec_total * 3600) * 1e6)


def test_other_rankings(llama8b):
    w = Workload(64, 1024, 256)
    for rank_by, key in (("gpus", lambda c: c.gpus_total), ("latency", lambda c: c.latency_seconds)):
        values = [key(c) for c in search(llama8b, w, ["l4", "h100"], rank_by=rank_by).candidates]
        assert values == sorted(values)
    with pytest.raises(InputError, match="--rank-by"):
        search(llama8b, w, ["l4"], rank_by="vibes")


def test_dominated_layouts_are_pruned_and_counted(llama8b):
    """A 7B model that one A10G serves is not offered PP layouts: PP2 / PP3 cost more for the same tokens/s, TTFT
    and users served. Every kept candidate is undominated within its GPU type and precision."""
    result = search(llama8b, Workload(10, 1536, 512), ["a10g"])
    assert result.pruned > 0 and all(c.pp == 1 for c in result.candidates)
    assert not any(o.dominates(c) for c in result.candidates for o in result.candidates)


def test_a_setting_that_saves_a_replica_is_named(llama8b):
    """Users a little beyond two replicas' capacity: a higher memory fraction (or fp8 KV) serves them on two."""
    one = search(llama8b, Workload(1, 1536, 512), ["l4"], max_gpus=1).candidates[0]
    users = math.ceil(one.max_concurrent_requests * 2 * 1.05)
    c = search(llama8b, Workload(users, 1536, 512), ["l4"], max_gpus=1).candidates[0]
    assert c.replicas == 3 and c.closes_with and "instead of 3" in c.closes_with


def test_ranking_by_cost_per_hour_is_cheapest_meeting_first(llama8b):
    result = search(llama8b, Workload(64, 1024, 256, min_tokens_per_sec=30), ["l4", "a100-80g", "h100"],
                    rank_by="cost-per-hour")
    meeting = [c for c in result.candidates if c.meets_targets]
    missing = [c for c in result.candidates if not c.meets_targets]
    assert meeting and result.candidates[: len(meeting)] == meeting
    costs = [c.cost_per_hour for c in meeting]
    assert costs == sorted(costs)
    assert result.best is meeting[0]
    assert all(c.misses for c in missing)


def test_speed_target_adds_replicas_and_is_met(llama8b):
    plain = search(llama8b, Workload(200, 1024, 256), ["h100"], max_gpus=1).candidates[0]
    # the per-request estimates alone (judging at load re-ranks: tests/test_batching.py)
    fast = search(llama8b, Workload(200, 1024, 256, min_tokens_per_sec=60), ["h100"], max_gpus=1,
                  load_stat="none").candidates[0]
    assert plain.replicas == 1 and plain.decode.tokens_per_sec_per_user < 60
    assert fast.replicas > plain.replicas and fast.meets_targets
    assert fast.decode.tokens_per_sec_per_user >= 60
    # the fewest replicas that do it: with one fewer, the batch per replica would miss the target
    dep = Deployment(llama8b)
    assert perf.decode(dep, get_gpu("h100"), math.ceil(200 / (fast.replicas - 1)), 1024 + 128) \
        .tokens_per_sec_per_user < 60


def test_missing_price_is_ranked_by_gpu_count_not_dropped(llama8b):
    # the catalog has no price for the L40 (it has one for the L40S)
    assert get_gpu("l40").price_per_hour is None
    result = search(llama8b, Workload(40, 2048, 512), ["l40", "l40s"], max_gpus=4, rank_by="cost-per-hour")
    l40 = [c for c in result.candidates if c.gpu.alias == "l40"]
    assert l40 and all(c.cost_per_hour is None and c.cost_per_million_tokens is None for c in l40)
    priced = [c for c in result.candidates if c.cost_per_hour is not None]
    assert priced and result.candidates[: len(priced)] == priced  # priced first, then the unpriced
    counts = [c.gpus_total for c in l40]
    assert counts == sorted(counts) and counts[0] == 1
    assert l40[0].price.source.startswith("no price")


def test_price_override_changes_the_winner(llama8b):
    w = Workload(40, 2048, 512)
    assert search(llama8b, w, ["a10g", "l4"], max_gpus=4, rank_by="cost-per-hour").candidates[0].gpu.alias == "l4"
    cheap = {"a10g": Price(0.01, "--price")}
    result = search(llama8b, w, ["a10g", "l4"], max_gpus=4, prices=cheap, rank_by="cost-per-hour")
    assert result.candidates[0].gpu.alias == "a10g"
    assert result.candidates[0].cost_per_hour == pytest.approx(0.01 * result.candidates[0].gpus_total)


def test_rejected_families_say_why(llama8b):
    result = search(load_model("llama-3.1-70b"), Workload(1, 1024, 128), ["t4", "h100"], max_gpus=1,
                    allow_quant=True)
    rejected = {r.family: r.reason for r in result.rejected}
    assert "exceed 100% of 1 x t4" in rejected["t4 / bf16 / KV auto"]  # 0.34: util 1.0 (extensible KV cache)
    # vLLM 0.19 serves fp8 on Turing (Fp8Config.get_min_capability 75, Marlin); 70 GB of fp8 weights on a T4 do not fit
    assert "exceed 100% of 1 x t4" in rejected["t4 / fp8 / KV auto"]
    assert "h100 / bf16 / KV auto" in rejected  # 141 GB of weights on one 80 GB H100
    assert any(c.weight_scheme == "int4-g128" and c.gpu.alias == "h100" for c in result.candidates)


def test_invalid_layouts_are_skipped_with_the_reason_counted(llama8b):
    result = search(llama8b, Workload(1, 512, 64), ["h100"], max_gpus=8)
    assert result.skipped == {f"tensor parallel size {tp} does not divide the 32 attention heads: choose a TP "
                              f"that divides 32": n for tp, n in ((3, 2), (5, 1), (6, 1), (7, 1))}
    # 1..8 GPUs: 20 (TP, PP) pairs, 5 of them with TP 3, 5, 6 or 7
    assert result.evaluated == sum(len(layouts(n, 32)) for n in range(1, 9)) - 5 == 15


def test_fp8_and_int4_change_the_command_line(llama8b):
    result = search(llama8b, Workload(8, 1024, 256), ["h100"], max_gpus=1, allow_quant=True, allow_fp8_kv=True,
                    model_id="meta-llama/Llama-3.1-8B")
    by = {(c.weight_scheme, c.kv_dtype): c.vllm_command for c in result.candidates}
    assert set(by) == {(w, k) for w in ("bf16", "fp8", "int4-g128") for k in ("auto", "fp8")}
    for (weights, kv), command in by.items():
        assert command.startswith("vllm serve") and (("--quantization fp8" in command) == (weights == "fp8"))
        assert ("--kv-cache-dtype fp8" in command) == (kv == "fp8")
    assert "int4" in by[("int4-g128", "auto")]


def test_sglang_accounting_and_launch_line(llama8b):
    w = Workload(users=300, prompt=3072, output=1024)
    result = search(llama8b, w, ["l40s"], max_gpus=2, allow_fp8_kv=True, engine="sglang")
    assert result.engine == "sglang" and result.candidates
    for c in result.candidates:
        s = plan(llama8b, gpu="l40s", tp=c.tp, pp=c.pp, seq=w.seq, max_model_len=w.seq, engine="sglang",
                 kv_dtype=c.kv_dtype).scenarios[0]
        assert c.max_concurrent_requests == s.capacity.max_concurrent_requests and c.util == s.util
        assert c.vllm_command is None
        assert c.command.startswith("python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B "
                                    f"--tp-size {c.tp}")
        assert f"--mem-fraction-static {s.util:.3f} --context-length 4096 --max-running-requests {c.batch}" \
            in c.command
        assert ("--kv-cache-dtype fp8_e4m3" in c.command) == (c.kv_dtype == "fp8")


def test_pp_and_replicas_on_the_command_line():
    result = search(load_model("llama-3.1-70b"), Workload(2000, 1024, 256), ["l40s"], max_gpus=8)
    pp = next(c for c in result.candidates if c.pp > 1)
    assert f"--pipeline-parallel-size {pp.pp}" in pp.vllm_command
    assert f"--data-parallel-size {pp.replicas}" in pp.vllm_command and pp.replicas > 1


def test_unreachable_target_names_the_nearest_miss():
    r = CliRunner().invoke(main, ["fit", "llama-3.1-8b", "--users", "4", "--seq", "2048", "--gpu", "h100",
                                  "--min-tokens-per-sec", "100000"])
    assert r.exit_code == 0, r.output
    # the nearest miss is the candidate closest to the target (the fastest), not the cheapest
    assert "no candidate meets every target; nearest miss: 8 x h100" in r.output
    assert "tok/s per user even at batch 1 < 100000" in r.output


def test_nothing_fits_at_all():
    r = CliRunner().invoke(main, ["fit", "llama-3.1-405b", "--users", "1", "--seq", "1024", "--gpu", "t4",
                                  "--max-gpus", "2"])
    assert "nothing fits at all" in r.output and "t4 / bf16 / KV auto: weights and engine overheads" in r.output


def test_fit_json_schema_and_prices_reported():
    data = fit_json("llama-3.1-8b", "--users", "50", "--prompt", "1000", "--output", "200", "--gpu", "h100",
                    "--gpu", "l4", "--price", "h100=2.5")
    assert set(data) >= {"candidates", "rejected"}
    assert data["workload"]["seq"] == 1200
    for c in data["candidates"]:
        assert c.keys() >= JSON_KEYS
    h100 = next(c for c in data["candidates"] if c["gpu"] == "h100")
    assert h100["price_per_gpu_hour"] == 2.5 and h100["price_source"] == "--price"
    l4 = next(c for c in data["candidates"] if c["gpu"] == "l4")
    assert l4["price_source"].startswith("catalog: ") and "20" in l4["price_source"]  # dated


def test_fit_table_shows_commands_and_prices():
    r = CliRunner().invoke(main, ["fit", "falcon-7b", "--users", "18", "--seq", "1000", "--gpu", "a10g",
                                  "--gpu", "l4"])
    assert r.exit_code == 0, r.output
    assert "vllm serve tiiuae/falcon-7b --tensor-parallel-size" in r.output
    assert "USD per GPU-hour (catalog:" in r.output and "estimate" in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["--users", "0", "--seq", "100"], "--users must be a positive integer"),
    (["--users", "5"], "give --seq, or --prompt and --output"),
    (["--users", "5", "--prompt", "100"], "--prompt needs --output too"),
    (["--users", "5", "--seq", "100", "--output", "100"], "leaves no prompt"),
    (["--users", "5", "--seq", "999999"], "exceeds the model's context"),
    (["--users", "5", "--seq", "100", "--max-ttft", "-1"], "--max-ttft must be positive"),
    (["--users", "5", "--seq", "100", "--max-gpus", "0"], "--max-gpus must be between 1 and 64"),
    (["--users", "5", "--seq", "100", "--gpu", "h9000"], "unknown GPU"),
    (["--users", "5", "--seq", "100", "--engine", "tgi"], "kvplan fit plans vllm or sglang deployments"),
    (["--users", "5", "--seq", "100", "--price", "h100"], "write GPU=USD_PER_HOUR"),
    (["--users", "5", "--seq", "100", "--price", "h100=-1"], "cannot be negative"),
    (["--users", "5", "--seq", "100", "--price", "h100=cheap"], "is not a price"),
    (["--users", "5", "--seq", "100", "--price-file", "/nonexistent.toml"], "cannot read price file"),
])
def test_fit_bad_input_is_one_line(args, message):
    r = CliRunner().invoke(main, ["fit", "llama-3.1-8b", *args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_price_files_toml_and_csv(tmp_path):
    toml = tmp_path / "prices.toml"
    toml.write_text("[prices]\nh100 = 2.25\n'NVIDIA L4 (24GB)' = 0.5\n")
    prices = read_file(toml)
    assert prices["h100"].usd_per_hour == 2.25 and prices["l4"].usd_per_hour == 0.5
    assert prices["h100"].source == str(toml)
    csv = tmp_path / "prices.csv"
    csv.write_text("gpu,usd_per_hour\na10g,1.01\n")
    assert read_file(csv)["a10g"].usd_per_hour == 1.01
    bad = tmp_path / "bad.csv"
    bad.write_text("name,price\na10g,1\n")
    with pytest.raises(InputError, match="needs the columns gpu,usd_per_hour"):
        read_file(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[prices\n")
    with pytest.raises(InputError, match="not valid TOML"):
        read_file(broken)
    assert parse_overrides(["H100-SXM=3"])["h100"].usd_per_hour == 3.0  # aliases resolve


def test_price_file_on_the_command_line(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[prices]\na10g = 0.75\n")
    data = fit_json("falcon-7b", "--users", "4", "--seq", "1000", "--gpu", "a10g", "--price-file", str(f))
    c = data["candidates"][0]
    assert c["price_per_gpu_hour"] == 0.75 and c["price_source"] == str(f)
    assert c["cost_per_hour"] == pytest.approx(0.75 * c["gpus_per_replica"] * c["replicas"])


def test_layouts_past_one_node_fill_nodes_and_keep_tp_inside():
    assert layouts(16, 61, 8) == [(8, 2), (4, 4), (2, 8), (1, 16)]  # TP <= 8 GPUs of an HGX node
    assert layouts(12, 61, 8) == []  # 1.5 nodes: not offered
    assert layouts(8, 61, 8) == layouts(8, 61)  # within a node: every split


def test_nothing_fits_names_the_smallest_deployment_that_would():
    """DeepSeek-V3's 671B fp8 weights exceed one 8 x H100 node; two nodes (TP 8 x PP 2) hold them."""
    r = CliRunner().invoke(main, ["fit", "deepseek-v3", "--users", "100", "--seq", "8192", "--gpu", "h100"])
    assert ("the smallest that would: 16 x h100 per replica (DP attention 16 x TP 1, 2 nodes of 8; --max-gpus 16)"
            in r.output)


def test_pipeline_hand_offs_between_nodes_use_the_network():
    """16 x H100 as TP 8 x PP 2: the one hand-off crosses the nodes, over 50 GB/s per GPU (8 x 400 Gb/s
    ConnectX-7, data/gpu-nodes.csv) instead of NVLink's 450 GB/s per direction."""
    h100 = get_gpu("h100")
    dep = Deployment(load_model("deepseek-v3"), tp=8, pp=2)
    nbytes = 64 * 7168 * 2  # 64 tokens x hidden x bf16
    latency = perf.constants()["comm"]["allreduce_latency_us"] * 1e-6
    assert perf.pp_seconds(dep, h100, 64) == pytest.approx(nbytes / 50e9 + latency)
    with pytest.raises(InputError, match="no network between a10 nodes"):
        perf.pp_seconds(Deployment(load_model("llama-3.1-8b"), tp=4, pp=2), get_gpu("a10"), 64)


def test_two_node_data_parallel_attention_ranks_first_for_deepseek_v3():
    """DeepSeek-V3 on H100s, 100 users x 8K, --max-gpus 16: the first candidate is two nodes of data-parallel
    attention with expert parallelism (vLLM -dp 16 -tp 1 --enable-expert-parallel, the docs' layout)."""
    r = search(load_model("deepseek-v3"), Workload(100, 6144, 2048), ["h100"], max_gpus=16)
    best = r.candidates[0]
    assert (best.gpus_per_replica, best.dp_attention, best.expert_parallel) == (16, 16, True)
    assert "2 nodes" in best.layout and "--data-parallel-size-local 8" in best.command
    assert "--headless --data-parallel-start-rank 8" in best.command.splitlines()[3]


def test_data_parallel_attention_weights_and_kv_by_hand():
    """Weights per GPU at DP attention 16 / EP 16: every non-expert tensor whole (attention TP 1; vLLM's head
    too) + the routed experts / 16; taken from the TP 1 sizes, which hold every tensor whole. KV per GPU: MLA's
    latent, 61 layers x (512 + 64) x 2 B = 70,272 B per token, not divided by TP; each of the 16 groups holds
    its own requests, so a replica serves 16 x one group's requests."""
    m = load_model("deepseek-v3")
    whole = Deployment(m)  # TP 1
    sizes = zip(m.tensors, whole.tensor_sizes, strict=True)
    expected = sum(size / (16 if t.role == "experts" else 1) for t, size in sizes)
    dep = Deployment(m, tp=16, dp_attention=16, expert_parallel=True)
    assert dep.stages[0].weights_bytes == round(expected)
    assert dep.kv_bytes_per_token == 61 * 576 * 2 == 70_272
    from kvplan.engines import EngineSettings, scenario

    settings = EngineSettings(max_model_len=8192)
    s = scenario(settings, dep, get_gpu("h200"), None, 8192, 1, 1)
    per_group = min(s.printed.kv_tokens // 8192, s.printed.max_num_seqs)  # one engine's pool and request cap
    assert s.capacity.max_concurrent_requests == 16 * per_group
    # a dense model has no experts to spread: refused with what to do
    with pytest.raises(InputError, match="serve MoE models"):
        Deployment(load_model("llama-3.1-8b"), tp=8, dp_attention=8)


def test_tp_across_nodes_only_when_allowed_and_priced_over_the_network():
    assert (16, 1) not in layouts(16, 61, 8) and (16, 1) in layouts(16, 61, 8, cross_node_tp=True)
    m = load_model("llama-3.1-405b")
    plain = search(m, Workload(8, 2048, 512), ["h100"], max_gpus=16)
    crossing = search(m, Workload(8, 2048, 512), ["h100"], max_gpus=16, cross_node_tp=True)
    assert all(c.tp <= 8 for c in plain.candidates)
    assert crossing.evaluated > plain.evaluated  # the TP 16 layouts were sized too
    # TP 16 over 2 nodes: each all-reduce at the network's 50 GB/s per GPU, not NVLink's 450
    dep = Deployment(m, tp=16)
    nbytes = 1 * m.hidden_size * 2
    latency = perf.constants()["comm"]["allreduce_latency_us"] * 1e-6
    one = 2 * 15 / 16 * nbytes / 50e9 + latency
    assert perf.allreduce_seconds(dep, get_gpu("h100"), 1) == pytest.approx(2 * m.num_layers * one)


def test_data_parallel_attention_decode_by_hand():
    """Decode under DP attention 16: each group decodes batch / 16 requests; the routed experts see every token;
    the MoE layers add 2 all-to-alls of (batch / 16) x top-k x hidden x 2 B, 15/16 of it to other GPUs."""
    m = load_model("deepseek-v3")
    dep = Deployment(m, tp=16, dp_attention=16, expert_parallel=True)
    h200 = get_gpu("h200")
    c = perf.constants()["comm"]
    nbytes = (256 // 16) * 8 * 7168 * 2
    # 58 MoE layers (the first 3 of 61 are dense); 16 GPUs of an HGX H200 are 2 nodes: over the network's 50 GB/s
    one = 15 / 16 * nbytes / 50e9 + c["allreduce_latency_us"] * 1e-6
    assert perf.alltoall_seconds(dep, h200, 256) == pytest.approx(2 * 58 * one)
    assert perf.allreduce_seconds(dep, h200, 256) == 0.0  # attention TP 1: nothing to all-reduce
    r = CliRunner().invoke(main, ["perf", "deepseek-v3", "--gpu", "h200", "--tp", "16", "--dp-attention", "16",
                                  "--expert-parallel", "--batch", "256", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["dp_attention"] == 16


def test_fit_sizes_serving_features_as_plan_does(llama8b):
    """fit's serving features are plan's: with a 3,000-token shared prefix (prefix caching: whole 16-token blocks
    held once, vLLM 0.19) or 4 LoRA slots of rank 64, every candidate's request count is what `kvplan plan`
    gives the same deployment with the same flags, and its launch line carries them."""
    w = Workload(users=200, prompt=3000, output=1000)
    for features, flag in (({"shared_prefix": 3000}, None), ({"max_loras": 4, "max_lora_rank": 64}, "--max-loras 4")):
        result = search(llama8b, w, ["h100"], max_gpus=2, features=features)
        assert result.candidates
        for c in result.candidates:
            s = plan(llama8b, gpu=c.gpu, tp=c.tp, pp=c.pp, seq=w.seq, max_model_len=w.seq, **features).scenarios[0]
            assert c.max_concurrent_requests == s.capacity.max_concurrent_requests
            if flag:
                assert flag in c.command
    plain = search(llama8b, w, ["h100"], max_gpus=1).candidates[0]
    shared = search(llama8b, w, ["h100"], max_gpus=1, features={"shared_prefix": 3000}).candidates[0]
    assert shared.max_concurrent_requests > plain.max_concurrent_requests


def test_fit_cli_takes_the_feature_flags():
    runner = CliRunner()
    out = runner.invoke(main, ["fit", "llama-3.1-8b", "--users", "50", "--seq", "4096", "--gpu", "h100", "--json",
                               "--enable-lora", "--max-loras", "2", "--limit-mm-per-prompt", "image=0"])
    assert out.exit_code == 0, out.output
    assert "--enable-lora --max-loras 2" in json.loads(out.output)["candidates"][0]["command"]
    bad = runner.invoke(main, ["fit", "llama-3.1-8b", "--users", "5", "--seq", "4096", "--gpu", "h100",
                               "--enable-lora", "--max-loras", "0"])
    assert bad.exit_code != 0 and "--max-loras must be" in bad.output
