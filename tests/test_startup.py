"""Engines' startup checks (#10.2): "fits" where the engine would refuse to start is not a verdict a user can act
on. Each expected figure is derived by hand from vLLM's check (v1/core/kv_cache_utils.py
_check_enough_kv_cache_memory: one request of max_model_len must fit in the KV cache of every worker)."""

from __future__ import annotations

import json

from click.testing import CliRunner

import kvplan
from kvplan.cli import main
from kvplan.units import GiB


def test_llama_8b_on_an_l4_fits_8k_but_vllm_will_not_start_at_its_default_context():
    s = kvplan.plan("llama-3.1-8b", gpu="l4", seq=8192).scenarios[0]
    assert s.capacity.fits  # 8K requests would fit in the cache ...
    st = s.startup
    assert not st.starts and "vLLM will not start" in st.reason  # ... but max_model_len 131072 does not
    # 131,072 tokens x 32 layers x 8 KV heads x (128 + 128) x 2 B = 16 GiB; the pool is a few GiB
    assert "needs 16.00 GiB" in st.reason
    # the largest max_model_len that starts: every block the pool holds (64 tokens from 0.34), for one request
    assert st.longest_context == s.printed.num_blocks * s.printed.block_size < 131072 and s.printed.block_size == 64
    r = CliRunner().invoke(main, ["plan", "llama-3.1-8b", "--gpu", "l4", "--seq", "8192", "--require-fit"])
    assert r.exit_code == 1 and "will not start" in r.output
    data = json.loads(CliRunner().invoke(main, ["plan", "llama-3.1-8b", "--gpu", "l4", "--seq", "8192",
                                                "--json"]).stdout)["scenarios"][0]
    assert data["starts"] is False and data["largest_max_model_len_that_starts"] == st.longest_context
    assert "will not start" in data["start_error"]


def test_gpt_oss_120b_on_one_h100_holds_under_one_request_of_its_context():
    s = kvplan.plan("gpt-oss-120b", gpu="h100", seq=8192, engine_version="0.19.0").scenarios[0]  # the issue's
    assert s.capacity.fits and not s.startup.starts
    # vLLM's own ratio: available KV memory / what one 131,072-token request needs (the 0.45 was kvplan's
    # under Marlin's expert padding; Hopper runs the Triton layout, 1.41 GiB smaller: 0.60)
    available = s.budgets[0].kv_pool
    needed = float(s.startup.reason.split("needs ")[1].split(" GiB")[0])
    assert needed == 4.79 and available / GiB / needed < 1


def test_a_max_model_len_that_fits_starts():
    s = kvplan.plan("llama-3.1-8b", gpu="l4", seq=8192, max_model_len=8192).scenarios[0]
    assert s.startup.starts and s.startup.longest_context == 8192


def test_max_model_len_auto_is_the_largest_that_starts():
    first = kvplan.plan("llama-3.1-8b", gpu="l4").scenarios[0].startup.longest_context
    p = kvplan.plan("llama-3.1-8b", gpu=["l4", "h100"], max_model_len="auto")
    l4, h100 = p.scenarios
    assert l4.printed.max_model_len == first and l4.startup.starts
    assert h100.printed.max_model_len == 131072  # the whole context starts on an H100
    assert p.seq == first  # no --seq: requests as long as the shortest fitted context
    r = CliRunner().invoke(main, ["plan", "llama-3.1-8b", "--gpu", "l4", "--max-model-len", "auto", "--require-fit"])
    assert r.exit_code == 0, r.output


def test_free_memory_at_startup_from_0_9_1():
    """v1/worker/utils.py request_memory: ceil(total x util) must be free at startup; with util 1.0 it never is
    (the CUDA context alone takes memory). Before 0.9.1 V1 had no such check; from 0.34 the extensible KV cache skips
    it (the budget is only a cap), unless it is switched off."""
    s = kvplan.plan("falcon-7b", gpu="a10g", util=1.0, seq=1000, engine_version="0.33.0").scenarios[0]
    assert not s.startup.starts and "free memory at startup" in s.startup.reason
    assert kvplan.plan("falcon-7b", gpu="a10g", util=1.0, seq=1000).scenarios[0].startup.starts
    off = kvplan.plan("falcon-7b", gpu="a10g", util=1.0, seq=1000, extensible_kv_cache=False).scenarios[0]
    assert not off.startup.starts and "free memory at startup" in off.startup.reason
    old = kvplan.plan("falcon-7b", gpu="a10g", util=1.0, seq=1000, engine_version="0.9.0").scenarios[0]
    assert old.startup.starts


def test_v0_without_chunked_prefill_needs_max_num_batched_tokens_of_max_model_len():
    """config.py SchedulerConfig: max_num_batched_tokens < max_model_len without chunked prefill is refused; above
    32K tokens V0 turns chunked prefill on by itself, and then it is not."""
    short = kvplan.plan("llama-3.1-8b", gpu="h100", engine="vllm-v0", max_model_len=8192,
                        max_num_batched_tokens=4096).scenarios[0]
    assert not short.startup.starts and "smaller than max_model_len" in short.startup.reason
    long = kvplan.plan("llama-3.1-8b", gpu="h100", engine="vllm-v0", engine_version="0.6.4",
                       max_num_batched_tokens=4096).scenarios[0]
    assert "smaller than" not in (long.startup.reason or "")


def test_weights_that_do_not_fit_leave_no_memory_for_the_cache_blocks():
    s = kvplan.plan("llama-3.1-70b", gpu="h100", seq=4096).scenarios[0]
    assert not s.startup.starts and "no available memory for the cache blocks" in s.startup.reason


def test_sglang_tgi_and_llamacpp_startup_refusals():
    """SGLang: no token in the pool (pool_configurator.py "Not enough memory"); TGI: the warmup prefill does not fit,
    or --max-total-tokens beyond the cache (backends/v3 "Not enough memory to handle `max_total_tokens`"); llama.cpp:
    the whole cache is allocated at start."""
    sg = kvplan.plan("llama-3.1-70b", gpu="h100", seq=4096, engine="sglang").scenarios[0]
    assert not sg.startup.starts and "--mem-fraction-static" in sg.startup.reason
    tgi = kvplan.plan("llama-3.1-70b", gpu="h100", seq=4096, engine="tgi").scenarios[0]
    assert not tgi.startup.starts and "prefill tokens at warmup" in tgi.startup.reason
    over = kvplan.plan("llama-3.1-8b", gpu="a10g", engine="tgi", max_model_len=131072).scenarios[0]
    assert not over.startup.starts and over.startup.longest_context == over.printed.kv_tokens
    fits = kvplan.plan("llama-3.1-8b", gpu="a10g", engine="tgi").scenarios[0]  # TGI 3.x sizes max_total_tokens itself
    assert fits.startup.starts and fits.printed.max_model_len == fits.printed.kv_tokens
    cpp = kvplan.plan("llama-3.1-8b", gpu="rtx4090", engine="llamacpp", seq=131072, batch=4).scenarios[0]
    assert not cpp.startup.starts and not cpp.capacity.fits
    # the largest context per slot: 4 slots of it fit, one more 256-cell step does not
    assert 0 < cpp.startup.longest_context < 131072
    ok = kvplan.plan("llama-3.1-8b", gpu="rtx4090", engine="llamacpp", seq=cpp.startup.longest_context, batch=4)
    assert ok.scenarios[0].startup.starts


def test_sglang_pool_shorter_than_its_context_starts_with_a_warning():
    s = kvplan.plan("llama-3.1-8b", gpu="rtx4090", engine="sglang", seq=8192).scenarios[0]
    assert s.startup.starts and s.printed.kv_tokens < 131072
    assert s.startup.longest_context == s.printed.kv_tokens
    assert any("SGLang warns" in n for n in s.printed.notes)


def test_quantized_formats_need_the_compute_capability_vllm_checks():
    """model_executor/layers/quantization/*.py get_min_capability (0.19.0): fp8 (Marlin from Turing) 7.5, mxfp4 8.0,
    ModelOpt fp8 8.9; T4 = 7.5, V100 = 7.0, A100 = 8.0 (NVIDIA's CUDA GPU list)."""
    assert kvplan.plan("llama-3.1-8b", gpu="t4", quant="fp8", max_model_len=2048).scenarios[0].startup.starts
    v100 = kvplan.plan("llama-3.1-8b", gpu="v100", quant="fp8", max_model_len=2048).scenarios[0].startup
    assert not v100.starts and "needs compute capability 7.5" in v100.reason
    t4 = kvplan.plan("gpt-oss-20b", gpu="t4", max_model_len=2048).scenarios[0].startup
    assert not t4.starts and "mxfp4" in t4.reason
    a100 = kvplan.plan("llama-3.1-70b-fp8", gpu="a100", tp=2, max_model_len=2048).scenarios[0].startup
    assert not a100.starts and "8.9" in a100.reason
    r = kvplan.search(kvplan.load_model("llama-3.1-8b"), kvplan.Workload(4, 1500, 500), ["v100", "t4"],
                      allow_quant=True)
    assert all(c.gpu.alias != "v100" or c.quant != "fp8" for c in r.candidates)
    assert any("needs compute capability" in x.reason for x in r.rejected if x.family.startswith("v100 / fp8"))


def test_explicit_dimensions_show_what_the_pool_allows_not_an_invented_limit():
    """#10.6: the article's model states no context; kvplan sets max_model_len to the request's for the engine and
    says so, shows the longest context the pool allows, and no 0 B device total when only the pool is given."""
    r = CliRunner().invoke(main, ["plan", "--layers", "32", "--hidden", "4544", "--params", "7B", "--kv-memory",
                                  "10GiB"])
    assert "(max_model_len)" not in r.output and "(by memory)" in r.output
    assert "0 B" not in r.output and "KV pool given" in r.output and "states no context length" in r.output
    data = json.loads(CliRunner().invoke(main, ["plan", "--layers", "32", "--hidden", "4544", "--params", "7B",
                                                "--kv-memory", "10GiB", "--json"]).stdout)
    s = data["scenarios"][0]
    # 10 GiB of 64-token blocks (0.34's default) of 32 layers x 2 x 4544 x 2 B: floor(10 GiB / (64 x 581,632 B)) x 64
    assert data["context_assumed"] and s["max_seq_len_limited_by"] == "memory"
    assert s["max_seq_len"] == (10 * GiB // (64 * 581_632)) * 64


def test_perf_says_when_the_batch_does_not_fit():
    r = CliRunner().invoke(main, ["perf", "llama-3.1-8b", "--gpu", "l4", "--batch", "64", "--context", "8192"])
    assert r.exit_code == 0 and "does not fit" in r.output
    data = json.loads(CliRunner().invoke(main, ["perf", "llama-3.1-8b", "--gpu", "l4", "--batch", "64",
                                                "--context", "8192", "--json"]).stdout)
    assert data["memory"]["fits"] is False and 0 < data["memory"]["max_batch"] < 64


def test_the_table_says_which_limit_caps_the_requests():
    """#10.7: the scheduler's cap or the KV cache; a hybrid model's worst case per group is explained."""
    r = CliRunner().invoke(main, ["plan", "falcon-7b", "--gpu", "a10g"])
    assert "256 (max_num_seqs cap)" in r.output
    g = CliRunner().invoke(main, ["plan", "gemma-3-27b", "--gpu", "h100", "--seq", "8192"])
    assert "(KV cache)" in g.output and "KV groups" in g.output and "worst case" in g.output
