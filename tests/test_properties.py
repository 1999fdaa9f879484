"""Invariants over random inputs (hypothesis): more memory never lowers capacity, longer requests never raise
it, and tensor parallelism never raises what one GPU holds."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from kvplan.deployment import Deployment
from kvplan.errors import InputError
from kvplan.model.load import load_model
from kvplan.planning import plan

MODELS = ["falcon-7b", "llama-3.1-8b", "gemma-2-9b", "gemma-3-1b-it", "deepseek-v2-lite", "qwen3-next-80b-a3b",
          "nemotron-h-56b", "gpt-oss-20b", "falcon-mamba-7b", "mistral-7b", "llama-3.2-11b-vision"]
models = st.sampled_from(MODELS)
engines = st.sampled_from(["none", "vllm", "vllm-v0"])
memory = st.integers(min_value=1, max_value=2000).map(lambda g: g * 2**30)
seqs = st.integers(min_value=1, max_value=300_000)


def unbounded(n: int | None) -> float:
    return float("inf") if n is None else n


@cache
def spec(alias: str):
    return load_model(alias)


def engine_for(alias: str, engine: str) -> str:
    """vLLM V1 no longer serves Mllama's cross-attention: those cases use V0."""
    return "vllm-v0" if engine == "vllm" and "vision" in alias else engine


@settings(max_examples=60, deadline=None)
@given(models, engines, memory, memory, seqs, st.floats(min_value=0.05, max_value=1.0))
def test_more_memory_never_lowers_capacity(alias, engine, m1, m2, seq, util):
    if engine == "vllm-v0" and alias not in ("falcon-7b", "llama-3.1-8b", "llama-3.2-11b-vision"):
        engine = "vllm"  # V0 is modelled for attention-only models
    engine = engine_for(alias, engine)
    lo, hi = sorted((m1, m2))
    # vLLM V1 picks its scheduler defaults by device memory (engine/arg_utils.py: >= 70 GiB 8192 tokens and 1024
    # sequences), and a sliding-window group holds window - 1 + the batched tokens per request, so more memory
    # can hold fewer requests of a length under the defaults (gpt-oss-20b at 55 vs 70 GiB: 256 vs 254). That is
    # vLLM's behaviour, not a regression: the property holds with those settings fixed.
    fixed = dict(max_num_seqs=256, max_num_batched_tokens=8192) if engine == "vllm" else {}
    a = plan(spec(alias), gpu_memory=lo, util=util, seq=seq, engine=engine, **fixed).scenarios[0].capacity
    b = plan(spec(alias), gpu_memory=hi, util=util, seq=seq, engine=engine, **fixed).scenarios[0].capacity
    assert b.max_concurrent_requests >= a.max_concurrent_requests
    assert unbounded(b.max_seq_len) >= unbounded(a.max_seq_len)
    assert b.kv_pool_bytes >= a.kv_pool_bytes
    assert b.fits or not a.fits


@settings(max_examples=60, deadline=None)
@given(models, engines, memory, seqs, seqs)
def test_longer_requests_never_raise_capacity(alias, engine, mem, s1, s2):
    if engine == "vllm-v0" and alias not in ("falcon-7b", "llama-3.1-8b", "llama-3.2-11b-vision"):
        engine = "vllm"
    engine = engine_for(alias, engine)
    short, long_ = sorted((s1, s2))
    a = plan(spec(alias), gpu_memory=mem, seq=short, engine=engine).scenarios[0].capacity
    b = plan(spec(alias), gpu_memory=mem, seq=long_, engine=engine).scenarios[0].capacity
    assert b.max_concurrent_requests <= a.max_concurrent_requests
    assert b.request_bytes >= a.request_bytes


@settings(max_examples=60, deadline=None)
@given(models, st.sampled_from([1, 2, 4, 8, 16]), st.sampled_from(["auto", "fp8"]))
def test_tp_never_raises_per_gpu_bytes(alias, tp, kv_dtype):
    try:
        wide = Deployment(spec(alias), tp=tp * 2, kv_dtype=kv_dtype)
        narrow = Deployment(spec(alias), tp=tp, kv_dtype=kv_dtype)
        wide_weights, wide_kv, wide_req = wide.weights_bytes_per_gpu, wide.kv_bytes_per_token, wide.request_bytes(4096)
    except InputError:  # this TP does not divide the model's heads: refused, nothing to compare
        return
    assert wide_weights <= narrow.weights_bytes_per_gpu
    assert wide_kv <= narrow.kv_bytes_per_token
    assert wide_req <= narrow.request_bytes(4096)
