"""vLLM accounting rules, each against a hand derivation; the logged figures cited are real startup logs
(benchmarks/engine_logs.csv, a copy of shared/bench/engine_logs.csv, row numbers 0-based)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

import kvplan
from kvplan.budget import TermKind
from kvplan.deployment import Deployment
from kvplan.engines import EngineSettings, scenario
from kvplan.engines.common import fitted_constants as constants
from kvplan.engines.common import loaded_weights
from kvplan.engines.vllm import V1_RULES, scheduler_defaults
from kvplan.engines.vllm import kv_layout as _kv_layout
from kvplan.errors import UnsupportedModelError
from kvplan.hardware import get_gpu
from kvplan.model.load import from_config, load_model
from kvplan.planning import plan
from kvplan.units import GiB


def kv_layout(dep, stage, block_size, max_model_len, mnbt, version):
    """vLLM's block layout under the rules of `version`."""
    return _kv_layout(dep, stage, block_size, max_model_len, mnbt,
                      V1_RULES.rules_for((*version, 0)[:3]).hybrid_group_ratio)


ROOT = Path(__file__).resolve().parents[1]


def given_pool(alias: str, pool_gib: float, max_model_len: int = 8192, tp: int = 1, version: str = "0.19.0"):
    """vLLM's printed figures when the available KV memory is `pool_gib` (as a log prints it)."""
    dep = Deployment(load_model(alias), tp=tp)
    settings = EngineSettings(engine="vllm", version=version, max_model_len=max_model_len,
                              max_num_batched_tokens=8192, max_num_seqs=1024)
    return scenario(settings, dep, get_gpu("h100"), 0.95, max_model_len, 1, 1,
                    kv_memory=round(pool_gib * GiB)).printed


# The logged pool is rounded to 0.01 GiB: blocks can differ by a few from the engine's.
def close(predicted: float, logged: float, rel: float = 3e-4) -> bool:
    return abs(predicted - logged) <= rel * logged


def test_plain_model_llama_3_1_8b_row_21():
    # page of one block = 16 tokens x 131,072 B (2 x 8 KV heads x 128 x 2 B x 32 layers)
    p = given_pool("llama-3.1-8b-instruct", 58.11)
    blocks = math.floor(58.11 * GiB / (16 * 131_072))
    assert p.num_blocks == blocks and p.kv_groups == 1
    assert p.kv_tokens == blocks * 16 and close(p.kv_tokens, 476_016)
    assert p.max_concurrency == blocks / (8192 // 16) and close(p.max_concurrency, 58.11, 1e-3)


def test_sliding_and_full_groups_gemma_2_9b_row_14():
    # 21 sliding (4096) + 21 full layers: 2 groups of 21; a layer's block = 16 x (2 x 8 x 256 x 2 B) = 131,072 B
    p = given_pool("gemma-2-9b-it", 54.12)
    blocks = math.floor(54.12 * GiB / (21 * 131_072))
    assert (p.num_blocks, p.kv_groups) == (blocks, 2)
    assert p.kv_tokens == blocks // 2 * 16 and close(p.kv_tokens, 168_880)
    # per request: full cdiv(8192, 16) = 512 blocks; sliding cdiv(min(4096 - 1 + 8192, 8192), 16) + 1 = 513
    assert p.max_concurrency == blocks / (512 + 513) and close(p.max_concurrency, 20.60, 1e-3)


def test_gpt_oss_20b_tp2_row_29():
    # TP 2: 4 KV heads x 64 x 2 x 2 B = 1,024 B per token per layer; 12 sliding (128) + 12 full -> 2 groups of 12
    p = given_pool("gpt-oss-20b", 59.32, tp=2)
    blocks = math.floor(59.32 * GiB / (12 * 16 * 1024))
    assert p.kv_tokens == blocks // 2 * 16 and close(p.kv_tokens, 2_591_776)
    assert p.max_concurrency == blocks / (512 + (math.ceil(min(127 + 8192, 8192) / 16) + 1))
    assert close(p.max_concurrency, 316.07, 1e-3)


def test_gemma_3_4b_seven_groups_row_15():
    # 29 sliding (1024) + 5 full layers: 29 >= 1.5 x 5, so groups of 5: 6 sliding groups + 1 full group
    p = given_pool("gemma-3-4b", 62.51)
    blocks = math.floor(62.51 * GiB / (5 * 16 * 4096))
    assert (p.num_blocks, p.kv_groups) == (blocks, 7)
    assert p.kv_tokens == blocks // 7 * 16 and close(p.kv_tokens, 468_144)
    assert close(p.max_concurrency, 57.05, 1e-3)


def test_mla_deepseek_v2_lite_row_10():
    # 27 MLA layers x (512 + 64) x 2 B, no factor 2, one latent head
    p = given_pool("deepseek-v2-lite", 43.61)
    blocks = math.floor(43.61 * GiB / (27 * 16 * 576 * 2))
    assert p.kv_tokens == blocks * 16 and close(p.kv_tokens, 1_505_552)
    assert close(p.max_concurrency, 183.78, 1e-3)


@pytest.mark.parametrize(("tp", "block", "page"), [(1, 544, 1_114_112), (4, 272, 278_528)])
def test_hybrid_mamba_block_size_qwen3_next(tp, block, page):
    # docs/vllm-rules.md section 3 (HybridAttentionMambaModelConfig): the attention block grows until one page
    # holds a gated-DeltaNet state. TP 1: state (3 x 8192 + 32 x 128 x 128) x 2 B = 1,097,728 B, attention
    # 2 KV heads x 256 x 2 x 2 B = 2,048 B/token -> 16 x cdiv(1,097,728, 16 x 2,048) = 544 tokens.
    dep = Deployment(load_model("qwen3-next-80b-a3b"), tp=tp)
    layout = kv_layout(dep, dep.stages[0], None, 8192, 8192, (0, 19))
    assert (layout.block_size, layout.page) == (block, page)
    # 36 linear-attention + 12 full layers: groups of 12 -> 3 + 1 groups; a request: cdiv(L, block) + 3 pages
    assert (layout.group_size, layout.n_groups) == (12, 4)
    assert layout.blocks_per_request(8192) == math.ceil(8192 / block) + 3


def test_group_size_threshold_changed_in_0_18():
    # 20 sliding + 14 full layers: 20 < 1.5 x 14 groups by 20 from 0.18, but 20 >= 1.25 x 14 groups by 14 before
    types = ["sliding_attention"] * 20 + ["full_attention"] * 14
    cfg = {"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "hidden_size": 64,
           "intermediate_size": 128, "num_hidden_layers": 34, "num_attention_heads": 4, "num_key_value_heads": 2,
           "head_dim": 16, "vocab_size": 256, "sliding_window": 64, "layer_types": types}
    dep = Deployment(from_config(cfg))
    assert kv_layout(dep, dep.stages[0], None, 4096, 2048, (0, 19)).group_size == 20
    assert kv_layout(dep, dep.stages[0], None, 4096, 2048, (0, 17)).group_size == 14


def test_printed_tokens_changed_in_0_21():
    old = given_pool("gemma-2-9b-it", 54.12, version="0.19.0")
    new = given_pool("gemma-2-9b-it", 54.12, version="0.21.0")
    assert old.num_blocks == new.num_blocks
    assert old.kv_tokens == old.num_blocks // 2 * 16
    assert new.kv_tokens == int(new.max_concurrency * 8192)


def test_vocab_rows_padded_to_64():
    # granite-3.1-2b: vocabulary 49,155 -> 49,216 rows (tied), hidden 2048, bf16
    dep = Deployment(load_model("granite-3.1-2b"))
    stage = dep.stages[0]
    rope = sum(r.positions * r.dim * 2 for r in dep.model.rope)
    assert loaded_weights(dep, stage)[0] == stage.weights_bytes + (49_216 - 49_155) * 2048 * 2 + rope


def test_scheduler_defaults_by_gpu():
    assert scheduler_defaults(get_gpu("h100").torch_total()[0], get_gpu("h100")) == (8192, 1024)
    assert scheduler_defaults(get_gpu("a100-80g").torch_total()[0], get_gpu("a100-80g")) == (2048, 256)
    assert scheduler_defaults(get_gpu("a10g").torch_total()[0], get_gpu("a10g")) == (2048, 256)


def test_cuda_graphs_subtracted_from_0_20_unless_eager():
    def terms(**kw):
        return [t.label for t in plan("llama-3.1-8b", gpu="h100", **kw).scenarios[0].budgets[0].terms]

    assert "CUDA graphs" not in terms(engine_version="0.19.0")
    assert "CUDA graphs" in terms(engine_version="0.20.0")
    assert "CUDA graphs" not in terms(engine_version="0.20.0", enforce_eager=True)


def test_model_runner_v2_subtracts_no_cuda_graph_estimate_before_0_29():
    """gpu/model_runner.py profile_cudagraph_memory returns 0 in 0.22.0-0.28.0 (read in 0.22, 0.25, 0.26, 0.27,
    0.28) and estimates from 0.29.0; V1's runner estimates from 0.20 (envs.py). Llama runs V2 from 0.23
    (config/vllm.py), Qwen2 from 0.25, a MoE model only from 0.29. Row 174 of the canonical CSV (0.26, V2):
    the pool is 13.99 - 0.93 - 1.06 - 0.07 GiB, its 0.4 GiB of graphs left out."""
    def terms(model: str, version: str) -> list[str]:
        return [t.label for t in plan(model, gpu="h100", engine_version=version).scenarios[0].budgets[0].terms]

    assert "CUDA graphs" in terms("llama-3.1-8b", "0.22.0")  # V1's runner (V2 ran only Qwen3 in 0.22)
    for version in ("0.23.0", "0.26.0", "0.28.0"):
        assert "CUDA graphs" not in terms("llama-3.1-8b", version)
        assert "CUDA graphs" in terms("mixtral-8x7b", version)  # MoE: V1's runner until 0.29
    assert "CUDA graphs" in terms("llama-3.1-8b", "0.29.0")
    notes = plan("llama-3.1-8b", gpu="h100", engine_version="0.26.0").scenarios[0].printed.notes
    assert any("Model Runner V2 estimates no CUDA-graph memory" in n for n in notes)


def test_non_torch_grows_with_tp_only_on_nvlink():
    c = constants()["non_torch"]

    def non_torch(gpu: str, tp: int) -> int:
        budget = plan("llama-3.1-8b", gpu=gpu, tp=tp, engine_version="0.19.0").scenarios[0].budgets[0]
        return next(t.bytes for t in budget.terms if t.label == "non-torch")

    assert non_torch("h100", 2) == round((c["tp_base_gib"] + 2 * c["tp_per_rank_gib"]) * GiB)
    assert non_torch("l40s", 2) == non_torch("l40s", 1) == round(c["tp1_gib"] * GiB)
    # A100s have NVLink but no NVLS (NVSwitch + Hopper): no line either (rows 79-81, 111 of the canonical CSV)
    assert non_torch("a100", 2) == non_torch("a100", 1)


def test_mllama_needs_v0():
    with pytest.raises(UnsupportedModelError, match="cross-attention"):
        plan("llama-3.2-11b-vision", gpu="h100")
    v0 = plan("llama-3.2-11b-vision", gpu="h100", engine="vllm-v0", max_model_len=8192)
    # V0 caches all 40 layers alike: 40 x 2 x 8 x 128 x 2 B per token (row 5: 96,016 tokens in 14.65 GiB)
    assert v0.scenarios[0].printed.kv_tokens % 16 == 0


def test_max_num_seqs_caps_concurrency():
    c = plan("llama-3.1-8b", gpu="h200", seq=128, max_num_seqs=64).scenarios[0].capacity
    assert c.max_concurrent_requests == 64


def test_fitted_constants_are_reproducible():
    """The constants file is exactly what the fitting script derives from the public logs."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fit_vllm_constants.py")],
                         capture_output=True, text=True, check=True).stdout
    c = constants()
    assert f"'forward_factor': {c['activation']['forward_factor']}" in out
    assert f"'tp1_gib': {c['non_torch']['tp1_gib']}" in out
    assert f"'tp_per_rank_gib': {c['non_torch']['tp_per_rank_gib']}" in out


def test_max_context_by_memory_is_not_capped_at_max_model_len():
    """Fix: the derivation's "largest L with batch x request(L) <= pool" reported max_model_len even when the
    pool holds more. One full-attention group of 16-token blocks: the longest request is num_blocks x 16."""
    p = kvplan.plan("llama-3.1-8b", gpu="h100", seq=8192, engine_version="0.33.0")  # 16-token blocks to 0.33
    s = p.scenarios[0]
    assert s.capacity.max_seq_len == 131072  # the limit served: max_model_len
    assert s.capacity.max_seq_len_limited_by == "max_model_len"
    assert s.capacity.max_seq_len_memory == s.printed.num_blocks * 16 > 131072


def v0(alias: str, version: str, max_model_len: int | None = None):
    p = plan(alias, gpu="h100", engine="vllm-v0", engine_version=version, max_model_len=max_model_len, seq=1024)
    return p.scenarios[0].printed


def test_v0_switches_chunked_prefill_on_above_32k_tokens():
    """vLLM V0 (engine/arg_utils.py EngineArgs.create_engine_config, 0.5.4 and 0.6.4.post1): with
    enable_chunked_prefill unset and max_model_len > 32768 on CUDA, chunked prefill is on, so the profile runs at
    SchedulerConfig's chunked default (config.py: 512 tokens up to 0.6.4.post1, 2048 from 0.6.5, PR #10544)
    instead of max(max_model_len, 2048)."""
    assert v0("llama-3.1-8b", "0.6.4").max_num_batched_tokens == 512  # max_model_len 131072 (the config's)
    assert v0("llama-3.1-8b", "0.6.5").max_num_batched_tokens == 2048
    assert v0("llama-3.1-8b", "0.5.4").max_num_batched_tokens == 512
    # at 32K tokens exactly it stays off: the profile is one max_model_len prompt (H100: max(L, 8192))
    assert v0("llama-3.1-8b", "0.6.4", 32768).max_num_batched_tokens == 32768
    # releases before 0.5.4 are not read: no automatic switch
    assert v0("llama-3.1-8b", "0.5.3").max_num_batched_tokens == 131072
    # not with a sliding window in the config (gpt-oss), nor, from 0.6.4, for multimodal models (Mllama)
    assert v0("gpt-oss-20b", "0.6.4").max_num_batched_tokens == 131072
    assert v0("llama-3.2-11b-vision", "0.6.4").max_num_batched_tokens == 131072
    assert v0("llama-3.2-11b-vision", "0.5.4").max_num_batched_tokens == 512
    assert v0("llama-3.2-11b-vision", "0.6.1").max_num_batched_tokens == 512  # 0.6.1 still switched it on
    assert v0("llama-3.2-11b-vision", "0.6.2").max_num_batched_tokens == 131072  # 0.6.2 no longer does
    # an explicit --max-num-batched-tokens wins
    p = plan("llama-3.1-8b", gpu="h100", engine="vllm-v0", engine_version="0.6.4", max_num_batched_tokens=4096)
    assert p.scenarios[0].printed.max_num_batched_tokens == 4096


def test_v0_chunked_prefill_shrinks_the_activation_peak():
    """The forward pass of the profile scales with the batched tokens: 512 instead of 131,072 tokens."""
    on, off = (plan("llama-3.1-8b", gpu="h100", engine="vllm-v0", engine_version=v).scenarios[0]
               for v in ("0.6.4", "0.5.3"))
    assert on.budgets[0].term(TermKind.ACTIVATION) < off.budgets[0].term(TermKind.ACTIVATION)
    assert on.capacity.kv_pool_bytes > off.capacity.kv_pool_bytes


def test_explicit_dimensions_without_vocab_still_have_an_activation_peak():
    """Fix: the hidden width came from the embedding tensor, which an explicit model without --vocab lacks, so
    vLLM's profile peak was 0 B. Now it is dims.hidden: no layer tensors, so the widest activation is the
    residual stream, 3 x 4544, at max_num_batched_tokens 2048 (an A10G) x 2 B (fp16): as counted under Model
    Runner V2 (the default's runner; its profile skips attention), x the fitted forward factor under 0.19's V1
    runner (data/vllm-constants.toml)."""
    from kvplan.engines.common import fitted_constants

    spec = kvplan.model_from_dims(layers=32, hidden=4544, params=7_000_000_000)
    assert spec.hidden_size == spec.dims.hidden == 4544
    s = plan(spec, gpu="a10g", seq=1000).scenarios[0]
    assert s.budgets[0].term(TermKind.ACTIVATION) == 2048 * 2 * 3 * 4544
    s = plan(spec, gpu="a10g", seq=1000, engine_version="0.19.0").scenarios[0]
    factor = fitted_constants()["activation"]["forward_factor"]
    assert s.budgets[0].term(TermKind.ACTIVATION) == round(factor * 2048 * 2 * 3 * 4544)


@pytest.mark.parametrize("alias", ["llama-3.1-8b", "gemma-3-27b", "gpt-oss-20b", "llama-4-scout", "qwen3-next-80b-a3b",
                                   "mamba-2.8b", "nemotron-h-56b"])
def test_longest_request_in_closed_form_equals_the_search(alias):
    """KVLayout.longest solves requests x blocks_per_request(L) <= blocks segment by segment; a binary search
    over L with blocks_per_request itself must give the same length (None: memory never limits it)."""
    from kvplan.capacity import SEARCH_LIMIT, largest

    dep = Deployment(load_model(alias), tp=4 if alias in ("llama-4-scout", "qwen3-next-80b-a3b") else 1)
    for mnbt in (2048, 8192):
        layout = kv_layout(dep, dep.stages[0], None, 32768, mnbt, (0, 19))
        for requests in (1, 3, 64):
            for blocks in (0, 1, 7, 100, 5_000, 123_457):
                found = largest(lambda n, r=requests, b=blocks, kv=layout: r * kv.blocks_per_request(n) <= b)
                assert layout.longest(requests, blocks) == (None if found == SEARCH_LIMIT else found), \
                    (alias, mnbt, requests, blocks)


def test_llm_class_defaults_differ_from_serve():
    """engine/arg_utils.py (0.8.0 _set_default_args_v1 ... 0.19.0 get_batch_defaults): UsageContext.LLM_CLASS takes
    16384 batched tokens on the large class (8192 for OPENAI_API_SERVER) and 8192 off it (2048); max_num_seqs is
    the same for both."""
    h100, l4 = get_gpu("h100"), get_gpu("l4")
    assert scheduler_defaults(h100.torch_total()[0], h100, entry_point="llm") == (16384, 1024)
    assert scheduler_defaults(l4.torch_total()[0], l4, entry_point="llm") == (8192, 256)
    assert scheduler_defaults(l4.torch_total()[0], l4, "h100_name", entry_point="llm") == (8192, 1024)

    def printed(entry: str):
        return plan("llama-3.1-8b", gpu="l4", seq=8192, entry_point=entry).scenarios[0].printed

    assert (printed("serve").max_num_batched_tokens, printed("LLM()").max_num_batched_tokens) == (2048, 8192)
    assert printed("llm").kv_tokens < printed("serve").kv_tokens  # the profile runs 4x the tokens


def test_entry_point_spellings_and_refusals():
    from kvplan.engines.base import entry_point_name
    from kvplan.errors import InputError

    for text in ("serve", "vllm serve", "API-server", "openai"):
        assert entry_point_name(text) == "serve"
    for text in ("llm", "LLM()", "llm-class", "LLM class", "offline"):
        assert entry_point_name(text) == "llm"
    with pytest.raises(InputError, match="unknown entry point 'jupyter'"):
        EngineSettings(entry_point="jupyter")
    with pytest.raises(InputError, match="applies to vLLM only"):
        EngineSettings(engine="sglang", entry_point="llm")


def test_llm_class_launch_is_a_python_call():
    p = plan("llama-3.1-8b", gpu="h100", max_model_len=8192, entry_point="llm", max_num_seqs=64)
    line = p.launch_command(p.scenarios[0])
    assert line == ("LLM(model='meta-llama/Llama-3.1-8B', tensor_parallel_size=1, gpu_memory_utilization=1, "
                    "max_model_len=8192, max_num_seqs=64)")  # 0.34: 1.0 with the extensible KV cache


# --------------------------------------------------------------------------------------------- sampler peaks

def test_sampler_peaks_by_path_hand_derived():
    """Bytes alive at the sampler dummy run's peak (restated from v1/sample/ops/topk_topp_sampler.py and PyTorch's
    SortStable.cu): bf16 logits at the padded vocabulary, then per entry of rows x vocabulary
    - sort, 1 or >= 128 rows: fp32 copy 4 + sorted values 4 + int64 indices 8 + reverse index 8 + CUB spares 4 + 8;
    - sort, 2-127 rows: fp32 4 + values 4 + indices 8 + two int2 buffers 16 + keys_out 4 + CUB spares 12;
    - Triton: fp32 copy 4 + softmax 4 + noise q 4, and a buffer of min(next_pow2(min(SMs, rows)), SMs) rows x 4 B."""
    from kvplan.engines.vllm import SORT, TRITON, TRITON_FROM_8, V0_SORT_MODEL_DTYPE

    v, vp = 128_256, 128_256  # Llama-3's vocabulary is a multiple of 64
    assert SORT.peak(1024, v, vp, 2, 132)[0] == 1024 * vp * 2 + (4 + 4 + 8 + 8 + 4 + 8) * 1024 * v
    assert SORT.peak(64, v, vp, 2, 132)[0] == 64 * vp * 2 + (4 + 4 + 8 + 16 + 4 + 12) * 64 * v
    assert TRITON.peak(1024, v, vp, 2, 132)[0] == 1024 * vp * 2 + 12 * 1024 * v + 132 * v * 4  # min(256, 132)
    assert TRITON.peak(100, v, vp, 2, 132)[0] == 100 * vp * 2 + 12 * 100 * v + 128 * v * 4  # next_pow2(100)
    assert TRITON_FROM_8.peak(4, v, vp, 2, 132)[0] == SORT.peak(4, v, vp, 2, 132)[0]  # below 8 rows: the sort
    # V0 before 0.5.5 sorts in the model dtype: values d + indices 8 + reverse index 8 + CUB spares d + 8 (= 2d + 24)
    assert V0_SORT_MODEL_DTYPE.peak(256, 32_000, 32_000, 2, None)[0] == 256 * 32_000 * (2 + 2 * 2 + 24)


def test_model_runner_v2_by_release():
    """config/vllm.py _is_default_v2_model_runner_model: 0.22 dense unquantized Qwen3, 0.23 also Llama / Mistral,
    0.25 every model without MoE or hybrid layers, 0.29 every model."""
    from kvplan.engines.vllm import uses_runner_v2

    qwen3, llama, moe = load_model("qwen3-8b"), load_model("llama-3.1-8b"), load_model("qwen3-30b-a3b")

    def v2(version: tuple[int, int, int], m) -> bool:
        return uses_runner_v2(V1_RULES.rules_for(version).runner_v2, m)

    assert [v2((0, 21, 0), qwen3), v2((0, 22, 0), qwen3), v2((0, 22, 0), llama), v2((0, 23, 0), llama)] == [
        False, True, False, True]
    assert [v2((0, 25, 0), moe), v2((0, 29, 0), moe)] == [False, True]


def test_activation_term_is_the_forward_or_the_derived_sampler():
    """Llama-3.1-8B on an H100 under 0.19 (8192 tokens, 1024 sequences): the Triton sampler's peak plus the hidden
    states of every profiled token, against the fitted forward factor x the eager count."""
    from kvplan.engines.common import activation_features, forward_factor

    p = plan("llama-3.1-8b", gpu="h100", engine_version="0.19.0")
    term = next(t for t in p.scenarios[0].budgets[0].terms if t.kind == TermKind.ACTIVATION)
    dep = p.deployment
    f = activation_features(dep, dep.stages[0], 8192, 1024)
    sampler = 1024 * 128_256 * 2 + 12 * 1024 * 128_256 + 132 * 128_256 * 4 + 8192 * 4096 * 2
    assert term.bytes == round(max(forward_factor(False)[0] * f.forward, sampler))
    assert "Triton top-k/top-p" in term.source


def test_moe_activation_width_is_the_fused_moe_buffers():
    """fused_moe.py fused_experts_impl: cache1 / cache3 share M x top-k x max(N, hidden), cache2 is M x top-k x N/2.
    Qwen3-30B-A3B: hidden 2048, moe_intermediate 768 (N = 2 x 768 gate_up), top-k 8, no shared experts:
    8 x (max(1536, 2048) + 768) = 22,528, + the residual stream 3 x 2048 = 28,672 per token."""
    from kvplan.engines.common import activation_width

    assert activation_width(Deployment(load_model("qwen3-30b-a3b"))) == 8 * (2048 + 768) + 3 * 2048 == 28_672


def test_shared_prefix_is_held_once_at_block_granularity():
    """--shared-prefix 3000 --seq 4000: vLLM's prefix cache holds the prefix's whole blocks once (3000 // 16 =
    187 blocks; the 188th, partly shared, stays each request's); a request of 4,000 tokens takes
    ceil(4000 / 16) = 250 blocks, 63 of its own: requests = (blocks - 187) // 63 instead of blocks // 250."""
    def requests(shared: int):
        p = plan("llama-3.1-8b", gpu="l4", seq=4000, max_model_len=4000, shared_prefix=shared,
                 engine_version="0.33.0")  # 16-token blocks (64 from 0.34)
        return p.scenarios[0].capacity.max_concurrent_requests, p.scenarios[0].printed.num_blocks

    alone, blocks = requests(0)
    shared, same_blocks = requests(3000)
    assert blocks == same_blocks  # the engine's pool is the same; only what requests hold changes
    assert (alone, shared) == (min(blocks // 250, 256), min((blocks - 187) // 63, 256))
    assert shared > alone
    # 0.34's 64-token blocks: 3000 // 64 = 46 shared, ceil(4000 / 64) = 63 per request, 17 of its own
    p = plan("llama-3.1-8b", gpu="l4", seq=4000, max_model_len=4000, shared_prefix=3000, engine_version="0.34.0")
    blocks = p.scenarios[0].printed.num_blocks
    assert p.scenarios[0].capacity.max_concurrent_requests == min((blocks - 46) // 17, 256)
    # SGLang's radix cache shares token by token (page size 1): (tokens - 3000) // 1000
    s = plan("llama-3.1-8b", gpu="h100", seq=4000, max_model_len=4000, shared_prefix=3000, engine="sglang")
    tokens = s.scenarios[0].printed.kv_tokens
    assert s.scenarios[0].capacity.max_concurrent_requests == min((tokens - 3000) // 1000,
                                                                  s.scenarios[0].printed.max_num_seqs)
    with pytest.raises(UnsupportedModelError, match="shared prefix"):
        plan("gemma-3-4b", gpu="l4", seq=4000, shared_prefix=100)  # sliding-window groups: not modelled


def test_cpu_offload_moves_whole_parameters_of_the_layers_in_order():
    """model_executor/offloader/uva.py (0.19.0): decoder-layer parameters go to CPU one by one while fewer than
    10 x 2^30 bytes are offloaded; Llama-3.1-8B's largest parameter (an MLP projection, 14336 x 4096 x 2 B =
    112 MiB) bounds the overshoot; the pool grows by what left the GPU."""
    m = load_model("llama-3.1-8b")
    sizes = [size for t, size in zip(m.tensors, Deployment(m).tensor_sizes, strict=True) if t.layer is not None]
    expected, i = 0.0, 0
    while expected < 10 * GiB:
        expected += sizes[i]
        i += 1

    def weights_and_pool(gib: float):
        s = plan("llama-3.1-8b", gpu="l4", seq=4096, cpu_offload_gb=gib).scenarios[0]
        return s.budgets[0].term(TermKind.WEIGHTS), s.budgets[0].kv_pool

    (w0, pool0), (w10, pool10) = weights_and_pool(0), weights_and_pool(10)
    assert w0 - w10 == round(expected) and 10 * GiB <= w0 - w10 < 10 * GiB + 14336 * 4096 * 2
    assert pool10 - pool0 == w0 - w10
    from kvplan.errors import InputError

    with pytest.raises(InputError, match="vLLM only"):
        plan("llama-3.1-8b", gpu="l4", engine="sglang", cpu_offload_gb=4)


def test_cpu_offload_is_paid_in_speed_and_searched_by_fit():
    """The offloaded parameters stay in pinned CPU memory and are read in place every forward pass (uva.py
    0.19.0), so each pass adds their bytes over the host link: the L4's PCIe Gen4 x16 at 32 GB/s per direction
    x the 0.8 bandwidth fraction. fit --allow-cpu-offload sizes every family a second time with that offload,
    and its candidates carry the flag in their launch line and pay the read in their speeds."""
    from kvplan import perf
    from kvplan.errors import InputError
    from kvplan.fit import Workload, search
    from kvplan.hardware import get_gpu

    s = plan("llama-3.1-8b", gpu="l4", seq=4096, cpu_offload_gb=10).scenarios[0]
    host = s.budgets[0].host_weights
    assert host == plan("llama-3.1-8b", gpu="l4", seq=4096).scenarios[0].budgets[0].term(TermKind.WEIGHTS) - \
        s.budgets[0].term(TermKind.WEIGHTS)
    dep, l4 = Deployment(load_model("llama-3.1-8b")), get_gpu("l4")
    added = perf.decode(dep, l4, 4, 2048, host).step_seconds - perf.decode(dep, l4, 4, 2048).step_seconds
    assert added == pytest.approx(host / (32e9 * 0.8), rel=1e-9)
    result = search(load_model("llama-3.1-70b"), Workload.from_options(16, 4096), gpus=["l40s"], max_gpus=4,
                    cpu_offload_gb=20)
    offloaded = [c for c in result.candidates if c.settings and c.settings.cpu_offload_gb == 20]
    assert offloaded, "an offloaded family should be kept (it needs fewer GPUs)"
    c = offloaded[0]
    assert "--cpu-offload-gb 20" in c.command and c.to_dict()["cpu_offload_gb"] == 20
    slow = perf.decode(Deployment(load_model("llama-3.1-70b"), tp=c.tp, pp=c.pp), c.gpu, c.batch, 4096 - 1024)
    assert c.decode.step_seconds > slow.step_seconds  # the host read is paid
    with pytest.raises(InputError, match="vLLM only"):
        search(load_model("llama-3.1-8b"), Workload.from_options(4, 4096), gpus=["l4"], engine="sglang",
               cpu_offload_gb=4)


def test_lora_slots_shrink_the_pool_by_the_derived_reservation():
    """--enable-lora --max-loras 4 --max-lora-rank 64 on Llama-3.1-8B (lora/layers/*.py create_lora_weights,
    0.19.0): per layer and slice A = 4 x 64 x input, B = 4 x output x 64, bf16. Inputs + outputs per layer:
    q 4096 + 4096, k 4096 + 1024, v 4096 + 1024, o 4096 + 4096, gate 4096 + 14336, up 4096 + 14336,
    down 14336 + 4096 = 81,920; 32 layers; the embedding and the head each 128,256 + 4,096."""
    widths = 32 * 81_920 + 2 * (128_256 + 4_096)
    expected = 4 * 64 * widths * 2

    def pool(**kw):
        return plan("llama-3.1-8b", gpu="h100", seq=8192, **kw).scenarios[0].budgets[0].kv_pool

    assert pool() - pool(max_loras=4, max_lora_rank=64) == expected == 1_477_705_728
    from kvplan.errors import InputError

    with pytest.raises(InputError, match="vLLM only"):
        plan("llama-3.1-8b", gpu="h100", engine="sglang", max_loras=1)
    with pytest.raises(UnsupportedModelError, match="fused-MoE"):
        plan("qwen3-30b-a3b", gpu="h100", max_loras=1)


def test_moe_workspace_persists_from_0_14():
    """vLLM >= 0.14 (model_executor/layers/fused_moe/modular_kernel.py, v1/worker/workspace.py, read in 0.19.0):
    the routed experts' workspace13 (M, top-k, max(N / 2, K)) and workspace2 (M, top-k, max(N, K)) come from a
    buffer that is never freed, so they sit on top of the sampler's dummy run. Qwen3-30B-A3B on an H100 at 8192
    profiled tokens: N = 2 x 768, K = 2048, top-k 8: 8192 x 8 x (2048 + 2048) x 2 B = 536,870,912 B. In 0.13 the
    buffers are per call, inside the forward's width; 0.14-0.17 chunk at 16384 tokens (the (M, K) output apart)."""
    from kvplan.engines.common import moe_workspace

    m = load_model("qwen3-30b-a3b")
    dep = Deployment(m)
    assert moe_workspace(dep, dep.stages[0], 8192, None) == 8192 * 8 * (2048 + 2048) * 2 == 536_870_912
    assert moe_workspace(dep, dep.stages[0], 32768, 16384) == 16384 * 8 * 4096 * 2 + 32768 * 2048 * 2
    assert moe_workspace(Deployment(load_model("llama-3.1-8b")), dep.stages[0], 8192, None) == 0

    # the public logs (llm-d-planner sweep, vLLM 0.19.0, H100): Qwen3-30B-A3B logged 2.68 GiB of activations and
    # DeepSeek-V2-Lite 1.93; without the workspace kvplan was 20% and 25% short
    from kvplan.validate import read_rows, validate_row

    rows = read_rows(Path(__file__).parents[1] / "benchmarks" / "engine_logs.csv")
    for index, logged in ((35, 2.68), (10, 1.93)):
        got = validate_row(index, rows[index], Path(__file__).parents[1] / "benchmarks").figures["activation_peak"]
        assert got["logged"] == logged and abs(got["rel_err"]) < 0.03

    def act(version: str) -> int:
        s = plan(m, gpu="h100", seq=8192, max_model_len=8192, engine_version=version).scenarios[0]
        return s.budgets[0].term(TermKind.ACTIVATION)

    # 0.13 and 0.14 share the sampler (the sort, whose peak sets the term); 0.13's buffers are per call
    assert act("0.14.0") - act("0.13.0") == 536_870_912


def test_the_default_utilization_is_the_releases_own():
    """config/cache.py CacheConfig.gpu_memory_utilization: 0.9 up to 0.19.1, 0.92 from 0.20.0 (read in the wheels);
    V0 kept 0.9; an explicit --gpu-memory-utilization wins."""
    for version, util in (("0.19.1", 0.9), ("0.20.0", 0.92), ("0.33.0", 0.92)):
        assert plan("llama-3.1-8b", gpu="h100", engine_version=version).scenarios[0].util == util
    assert plan("llama-3.1-8b", gpu="h100", engine="vllm-v0").scenarios[0].util == 0.9
    assert plan("llama-3.1-8b", gpu="h100", util=0.8, engine_version="0.33.0").scenarios[0].util == 0.8


# ------------------------------------------------------------------ 0.34's extensible KV cache (source only:
# no public 0.34 startup log was found; v1/worker/extensible_kv_cache.py measure_kv_cache_bytes and
# config/cache.py resolved_gpu_memory_utilization, read in the 0.34.0 wheel)

def _terms(scenario_):
    b = scenario_.budgets[0]
    return b, {t.kind: t.bytes for t in b.terms}


def test_0_34_sizes_the_pool_from_the_memory_free_after_warmup():
    """available = min(requested - used, headroom - margin) - transient, with util unset -> 1.0: requested is the
    whole device, so the device bound binds: total - in use at startup - margin - used - transient, margin =
    max(1 GiB, 0.75 x transient); used = weights + non-torch + the captured graph pool (+ persistent workspaces)."""
    new = plan("llama-3.1-8b", gpu="h100", engine_version="0.34.0").scenarios[0]
    old = plan("llama-3.1-8b", gpu="h100", engine_version="0.33.0").scenarios[0]
    b, t = _terms(new)
    total = b.memory
    assert new.util == 1.0 and b.usable == total
    transient = t[TermKind.ACTIVATION]  # Llama: no persistent MoE workspace, so the activation term is the transient
    margin = max(GiB, int(0.75 * transient))
    in_use = round(0.5 * GiB)  # the CUDA context at TP 1 (kvplan.engines.common.startup_in_use)
    used = t[TermKind.WEIGHTS] + t[TermKind.NON_TORCH] + t[TermKind.CUDA_GRAPHS]
    assert b.kv_pool == total - in_use - margin - used - transient
    assert t[TermKind.MARGIN] == in_use + margin
    # the same weights, non-torch and transient as 0.33, which sized the pool at 0.92 of the device
    _, t33 = _terms(old)
    assert (t33[TermKind.WEIGHTS], t33[TermKind.NON_TORCH], t33[TermKind.ACTIVATION]) == (
        t[TermKind.WEIGHTS], t[TermKind.NON_TORCH], t[TermKind.ACTIVATION])
    # ... and the same graph pool (0.33 subtracts its estimate, 0.34 the pool captured): the gain is the 8% of the
    # device 0.33 left unused, less what 0.34 keeps free
    assert b.kv_pool - old.budgets[0].kv_pool == total - in_use - margin - math.ceil(0.92 * total)


def test_0_34_with_an_explicit_utilization_the_request_binds():
    """At --gpu-memory-utilization 0.9 requested - used is below headroom - margin: no margin term, the pool is
    ceil(0.9 x total) - used - transient, as 0.33's formula with the actual graph pool."""
    s = plan("llama-3.1-8b", gpu="h100", engine_version="0.34.0", util=0.9).scenarios[0]
    b, t = _terms(s)
    assert TermKind.MARGIN not in t and b.usable == math.ceil(0.9 * b.memory)
    assert b.kv_pool == b.usable - sum(t.values())


def test_0_34_blocks_are_64_tokens_in_whole_2_mib_granules():
    """DEFAULT_BLOCK_SIZE 64 (config/cache.py 0.34.0); each layer's tensor is a segment committed in 2 MiB granules
    (blocks_within): a Llama-3.1-8B block of one layer is 64 x 8 heads x (128 + 128) x 2 B = 256 KiB, so the
    blocks come in multiples of 8 and fill floor(pool / 32 layers / 2 MiB) granules per layer."""
    s = plan("llama-3.1-8b", gpu="h100", engine_version="0.34.0").scenarios[0]
    assert s.printed.block_size == 64
    per_layer = s.budgets[0].kv_pool // 32
    assert s.printed.num_blocks == per_layer // (2 << 20) * (2 << 20) // (64 * 8 * 256 * 2)
    assert s.printed.num_blocks % 8 == 0
    off = plan("llama-3.1-8b", gpu="h100", engine_version="0.34.0", extensible_kv_cache=False).scenarios[0]
    assert off.util == 0.92 and off.printed.block_size == 64  # the estimate path, at the non-extensible default
    assert off.printed.num_blocks == off.budgets[0].kv_pool // 32 // (64 * 8 * 256 * 2)


def test_the_extensible_flag_is_refused_before_0_34():
    with pytest.raises(kvplan.errors.InputError, match="no --enable-extensible-kv-cache"):
        plan("llama-3.1-8b", gpu="h100", engine_version="0.33.0", extensible_kv_cache=False)
    with pytest.raises(kvplan.errors.InputError, match="applies to vLLM V1"):
        plan("llama-3.1-8b", gpu="h100", engine="sglang", extensible_kv_cache=False)
    p = plan("llama-3.1-8b", gpu="h100", engine_version="0.34.0", extensible_kv_cache=False, max_model_len=8192)
    assert "--no-enable-extensible-kv-cache" in p.launch_command(p.scenarios[0])


def test_a_0_34_log_is_read_for_the_pool_it_sized_after_warmup():
    """The lines as v1/worker/extensible_kv_cache.py 0.34.0 formats them (measure_kv_cache_blocks' "Memory after
    warmup" and extend_kv_cache's "Extended KV cache"), after gpu_worker.py's "Available KV cache memory", which
    under the extensible cache is only the address space reserved: the pool is the blocks' GiB, and the
    wordings date the log to >= 0.34."""
    from kvplan.logs import parse_log

    prefix = "(EngineCore pid=1) INFO 11-20 10:00:0{} [{}] "
    text = "\n".join([
        prefix.format(1, "gpu_worker.py:796") + "Available KV cache memory: 62.43 GiB",
        prefix.format(2, "extensible_kv_cache.py:693") + (
            "Memory after warmup: 61.2 GiB free, 0.01 GiB committed to the KV cache, 1.77 GiB kept for transient "
            "activations (1.77 GiB allocated at peak, 0.52 GiB of torch reservation growth); 7656 KV cache blocks "
            "(59.81 GiB) fit within the requested 79.19 GiB. Torch may reserve up to 17.68 GiB."),
        prefix.format(3, "extensible_kv_cache.py:536") + "Extended KV cache to 7656 blocks (59.81 GiB).",
        prefix.format(4, "kv_cache_utils.py:1170") + (
            "GPU KV cache size: 489,984 tokens, Maximum concurrency for 131,072 tokens per request: 3.74x"),
    ])
    log = parse_log(text)
    assert log.figures["kv_available_gib"] == 59.81 and log.figures["kv_tokens"] == 489_984
    assert log.release_range is not None and log.release_range[0] == "0.34.0"
    off = parse_log(prefix.format(1, "abstract.py:175") + "Disabling the extensible KV cache: the driver lacks VMM "
                    "support. The KV cache will be sized from profiling estimates instead of measured memory.")
    assert off.settings["enable_extensible_kv_cache"] is False


def test_0_34_keeps_a_3_gib_margin_on_rocm():
    """KV_CACHE_MARGIN_FLOOR_BYTES is 3 GiB on ROCm (ROCr maps kernel scratch outside the allocator), 1 GiB on
    CUDA: a small transient leaves the floor as the margin."""
    s = plan("llama-3.1-8b", gpu="mi300x", engine_version="0.34.0", max_model_len=8192).scenarios[0]
    _, t = _terms(s)
    transient = t[TermKind.ACTIVATION]
    assert 0.75 * transient < 3 * GiB
    assert t[TermKind.MARGIN] == round(0.5 * GiB) + 3 * GiB


def test_mxfp4_experts_take_the_backends_layout():
    """gpt-oss-20b's routed experts (24 layers x 32 experts, I = H = 2880) per MoE backend (fused_moe/oracle/
    mxfp4.py 0.19.0, quantization/mxfp4.py 0.14.0, the vendored triton_kernels), per expert:
    checkpoint: gate_up 5760 x 1440 B + scales 5760 x 90 + bf16 bias 5760 x 2; down 2880 x 1440 + 2880 x 90 +
    2880 x 2 = 13,236,480 B.
    Triton (Hopper, 0.14's 32-byte layout): the same packed weights, the scales swizzled into rows padded to 256
    (5888 x 90, 3072 x 90) beside the original scales, fp32 biases = 14,060,160 B.
    Marlin (A100): I to 2944, H to 3072: 2 x 2944 x 3072 x (1/2 + 1/32) + bias 2 x 2944 x 2, 3072 x 2944 x
    (1/2 + 1/32) + 3072 x 2 = 14,431,744 B.
    Public logs: "Model loading took" 13.47 GiB on an H100 (llm-d, before 0.15) and 13.72 GiB on an A100 (0.19)."""
    from kvplan.engines.common import _mxfp4_padding

    dep = Deployment(load_model("gpt-oss-20b"))
    stage = dep.stages[0]
    layers = frozenset(layer.index for layer in stage.layers)
    args = (dep.model, dep.sharding, dep.weight_format, dep.dense_bytes, layers)
    assert _mxfp4_padding(*args, "triton_32") == (14_060_160 - 13_236_480) * 24 * 32
    assert _mxfp4_padding(*args, "marlin") == (14_431_744 - 13_236_480) * 24 * 32
    h100 = plan("gpt-oss-20b", gpu="h100", engine_version="0.14.0", max_model_len=8192).scenarios[0]
    a100 = plan("gpt-oss-20b", gpu="a100-80g", engine_version="0.19.0", max_model_len=8192).scenarios[0]
    b200 = plan("gpt-oss-20b", gpu="b200", engine_version="0.19.0", max_model_len=8192).scenarios[0]
    for s, layout, logged in ((h100, "triton_32", 13.47), (a100, "marlin", 13.72), (b200, "trtllm", None)):
        weights = next(t for t in s.budgets[0].terms if t.kind == TermKind.WEIGHTS)
        assert f"the {layout} backend" in weights.source
        if logged:
            assert abs(weights.bytes / GiB - logged) / logged < 0.003


def test_a_log_naming_its_mxfp4_backend_is_sized_with_that_layout():
    """The same gpt-oss-120b on an H100 loads 1.6 GiB apart by backend: vllm-project/vllm#23278 (2025-08-20, a
    conda install) warns that Marlin holds the experts and logs 65.9651 GiB; vllm-project/vllm#33155 (v0.14.1)
    logs "Using Triton backend" and 64.38 GiB. explain reads the backend from the log's own line; without one,
    Hopper runs the release's Triton layout."""
    from kvplan.explain import diagnose

    marlin = diagnose("\n".join([
        "(EngineCore_0 pid=5839) WARNING 08-20 18:04:08 [marlin_utils_fp4.py:196] Your GPU does not have native "
        "support for FP4 computation but FP4 quantization is being used. Weight-only FP4 compression will be used "
        "leveraging the Marlin kernel. This may degrade performance for compute-heavy workloads.",
        "(EngineCore_0 pid=5839) INFO 08-20 18:04:10 [gpu_model_runner.py:2007] Model loading took 65.9651 GiB and "
        "12.799889 seconds"]), model="gpt-oss-120b", gpu="h100")
    assert marlin.logged["weights"] == 65.9651
    assert abs(marlin.predicted["weights"] - 65.9651) / 65.9651 < 0.002
    triton = plan("gpt-oss-120b", gpu="h100", engine_version="0.14.1", max_model_len=8192).scenarios[0]
    weights = next(t for t in triton.budgets[0].terms if t.kind == TermKind.WEIGHTS)
    assert abs(weights.bytes / GiB - 64.38) / 64.38 < 0.002


def test_a_log_showing_its_model_runner_is_sized_with_that_runner():
    """Which runner ran decides the CUDA-graph estimate at 0.23-0.28 (V2 estimates none there) and the sampler's
    dummy run: a 0.26 log with the V1 runner's own "Estimated CUDA graph memory" line (v1/worker/
    gpu_model_runner.py; wording of LMCache/LMCache#3430) is sized with the estimate and V1's Triton sampler, one
    saying "Using V2 Model Runner" (gpu_worker.py) with neither (V2_LOGITS: the logits only), as 0.26 runs Llama
    by default."""
    from kvplan.explain import _run, _setup, diagnose
    from kvplan.logs import parse_log

    head = "(APIServer pid=1) INFO 05-28 08:00:00 [api_server.py:1] vLLM API server version 0.26.0\n"
    tail = "(EngineCore pid=1) INFO 05-28 08:00:26 [gpu_worker.py:462] Available KV cache memory: 60.0 GiB\n"
    lines = {"v1": "(EngineCore pid=1) INFO 05-28 08:00:25 [gpu_model_runner.py:6142] Estimated CUDA graph "
                   "memory: 0.52 GiB total\n",
             "v2": "(EngineCore pid=1) INFO 05-28 08:00:20 [gpu_worker.py:378] Using V2 Model Runner\n"}
    terms = {}
    for runner, line in lines.items():
        assert diagnose(head + line + tail, model="llama-3.1-8b", gpu="h100").parsed["model_runner"] == runner
        setup = _setup(parse_log(head + line + tail), "llama-3.1-8b", "h100", None, None, [])
        assert setup.settings.model_runner == runner
        terms[runner] = {t.label: t for t in _run(setup).budgets[0].terms}
    assert "CUDA graphs" in terms["v1"] and "CUDA graphs" not in terms["v2"]
    assert "Triton top-k/top-p" in terms["v1"]["activation peak"].source
    assert "Model Runner V2: the logits only" in terms["v2"]["activation peak"].source
    default = plan("llama-3.1-8b", gpu="h100", engine_version="0.26.0").scenarios[0].budgets[0].terms
    assert [t.label for t in default] == list(terms["v2"])


def test_a_log_showing_its_sampler_is_sized_with_it():
    """v1/sample/ops/topk_topp_sampler.py (0.8.5, 0.11.0) logs which top-k / top-p path the sampler takes: where
    FlashInfer is the default (0.9-0.11) but "is not available" (a pip install without it; vllm-project/vllm
    #27508's conda environment at 0.11), the dummy run sorts (36 B per entry, not FlashInfer's 12); where it is
    opt-in (0.11.1-0.20), "Using FlashInfer for top-p & top-k sampling" means it ran; from 0.21 a native pass
    follows it, so the release's own sampler still sets the peak."""
    from kvplan.explain import _run, _setup
    from kvplan.logs import parse_log

    def activation(version: str, line: str) -> str:
        log = (f"(APIServer pid=1) INFO 10-31 15:00:00 [api_server.py:1] vLLM API server version {version}\n"
               f"(EngineCore_DP0 pid=1) WARNING 10-31 15:00:10 [topk_topp_sampler.py:66] {line}\n")
        setup = _setup(parse_log(log), "llama-3.1-8b", "h100", None, None, [])
        return next(t.source for t in _run(setup).budgets[0].terms if t.label == "activation peak")

    missing = ("FlashInfer is not available. Falling back to the PyTorch-native implementation of top-p & top-k "
               "sampling. For the best performance, please install FlashInfer.")
    enabled = "Using FlashInfer for top-p & top-k sampling."
    assert "PyTorch sort" in activation("0.11.0", missing)
    assert "FlashInfer top-k/top-p" in activation("0.11.0", enabled)
    assert "PyTorch sort" in activation("0.14.0", missing)  # 0.14 sorts by default anyway
    assert "FlashInfer top-k/top-p" in activation("0.14.0", enabled)
    assert "Triton top-k/top-p" in activation("0.21.0", enabled)
    default = plan("llama-3.1-8b", gpu="h100", engine_version="0.11.0").scenarios[0].budgets[0].terms
    assert "FlashInfer top-k/top-p" in next(t.source for t in default if t.label == "activation peak")


def test_a_logged_cuda_graph_estimate_replaces_the_fitted_one():
    """From 0.20 the estimate V1's profile prints ("Estimated CUDA graph memory: X GiB total", gpu_model_runner.py
    profile_cudagraph_memory) is what the worker subtracts (gpu_worker.py determine_available_memory), so a log
    that prints it is sized with it, not with the fitted median; 0.19 prints it without subtracting it."""
    from kvplan.explain import _run, _setup
    from kvplan.logs import parse_log

    def graphs(version: str) -> int:
        log = (f"(APIServer pid=1) INFO 05-28 08:00:00 [api_server.py:1] vLLM API server version {version}\n"
               "(EngineCore pid=1) INFO 05-28 08:00:25 [gpu_model_runner.py:6142] Estimated CUDA graph memory: "
               "1.25 GiB total\n")
        setup = _setup(parse_log(log), "llama-3.1-8b", "h100", None, None, [])
        assert setup.settings.cudagraph_estimate_gib == 1.25
        return sum(t.bytes for t in _run(setup).budgets[0].terms if t.label == "CUDA graphs")

    assert graphs("0.21.0") == round(1.25 * GiB)
    assert graphs("0.19.0") == 0
    fitted = plan("llama-3.1-8b", gpu="h100", engine_version="0.21.0").scenarios[0].budgets[0].terms
    assert next(t.bytes for t in fitted if t.label == "CUDA graphs") == round(constants()["cudagraph"]["estimate_gib"]
                                                                             * GiB)


def test_explain_suggests_flashinfer_where_the_log_shows_the_sort_ran():
    """A 0.10.2 log warning "FlashInfer is not available" sorted in its sampler dummy run (36 B per entry over
    max_num_seqs x vocab; FlashInfer holds 12, topk_topp_sampler.py 0.11.0): explain suggests installing it, and
    the re-planned pool gains (36 - 12) B x 1024 sequences x 128,256 entries (Llama-3.1-8B on an H200, whose
    `vllm serve` defaults schedule 1024 sequences). A log where FlashInfer ran gets no such suggestion."""
    from kvplan.explain import diagnose

    head = "(APIServer pid=1) INFO 10-23 15:10:10 [api_server.py:1896] vLLM API server version 0.10.2\n"
    fallback = ("WARNING 10-23 15:10:41 [topk_topp_sampler.py:69] FlashInfer is not available. Falling back to the "
                "PyTorch-native implementation of top-p & top-k sampling.\n")
    d = diagnose(head + fallback, model="llama-3.1-8b", gpu="h200")
    fix = next(s for s in d.suggestions if "pip install flashinfer-python" in s.change)
    gain = (fix.predicted["kv_pool"] - d.predicted["kv_pool"]) * GiB
    assert gain == pytest.approx((36 - 12) * 1024 * 128_256, rel=0.005)
    ran = diagnose(head + "INFO 10-23 15:10:41 [topk_topp_sampler.py:58] Using FlashInfer for top-p & top-k "
                   "sampling.\n", model="llama-3.1-8b", gpu="h200")
    assert not any("flashinfer" in s.change for s in ran.suggestions)


def test_chunked_local_attention_turns_the_hybrid_manager_off_in_0_10_1_to_0_13():
    """config/vllm.py (0.10.1.1-0.29): a model with attention_chunk_size (Llama-4) turns the hybrid KV cache
    manager off unless VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1, whose envs.py default is 0 up to
    0.13 and 1 from 0.14; off, unify_hybrid_kv_cache_specs caches the 36 chunked layers of Llama-4-Scout as full
    attention, so a request of L tokens takes 48 full layers' blocks (one group of 48) instead of 4 groups of 12
    with the chunked ones capped at 8,192 + 8,192 batched tokens. Public log (engine_logs.csv row 193, 0.12.0 with
    the variable set): 1.86x at 8,388,608 tokens; without it the same pool prints 0.46x."""
    from kvplan.explain import _setup
    from kvplan.logs import parse_log

    kw = dict(gpu="h200", tp=8, max_model_len=8388608, util=0.9)
    off = plan("llama-4-scout", engine_version="0.12.0", **kw).scenarios[0]
    on = plan("llama-4-scout", engine_version="0.14.0", **kw).scenarios[0]
    assert any("hybrid KV cache manager off" in n for n in off.printed.notes)
    assert off.printed.kv_groups == 1 and on.printed.kv_groups == 4
    # off: tokens = blocks x 16 with one block holding 48 layers; the printed concurrency is tokens / L
    assert off.printed.max_concurrency == pytest.approx(off.printed.kv_tokens / 8388608, abs=0.01)
    assert off.printed.max_concurrency < 0.5 < 1.8 < on.printed.max_concurrency
    kept = plan("llama-4-scout", engine_version="0.12.0", chunked_local_hybrid=True, **kw)
    assert abs(kept.scenarios[0].printed.max_concurrency - on.printed.max_concurrency) < 0.05  # as 0.14 holds
    assert kept.launch_command(kept.scenarios[0]).startswith("VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1 ")
    log = ("(APIServer pid=1) INFO 12-18 14:00:00 [api_server.py:1] vLLM API server version 0.12.0\n"
           "VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1\n")
    setup = _setup(parse_log(log), "llama-4-scout", "h200", None, None, [])
    assert setup.settings.chunked_local_hybrid is True


def test_disable_hybrid_kv_cache_manager_caches_every_layer_in_full():
    """--disable-hybrid-kv-cache-manager (config/scheduler.py; kv_cache_utils.py unify_hybrid_kv_cache_specs, read
    in 0.12.0): gpt-oss-20b's 12 sliding-window layers (window 128) join its 12 full ones as full attention, one
    group of 24 layers, so a request of 131,072 tokens takes 24 x 8,192 blocks of 16 tokens instead of 12 x 8,192
    + 12 x ceil((127 + 8,192) / 16) + 12 straddle blocks; the pool is the same. A log's 'Hybrid KV cache manager
    is disabled for this hybrid model' reads as the flag, and the launch line carries it."""
    from kvplan.logs import engine_choices

    kw = dict(gpu="h100", max_model_len=131072, engine_version="0.19.0")
    on = plan("gpt-oss-20b", **kw).scenarios[0]
    off_plan = plan("gpt-oss-20b", disable_hybrid_kv_cache_manager=True, **kw)
    off = off_plan.scenarios[0]
    assert off.capacity.kv_pool_bytes == on.capacity.kv_pool_bytes
    assert off.printed.kv_groups == 1 and on.printed.kv_groups == 2
    assert off.printed.max_concurrency < on.printed.max_concurrency / 1.8
    assert "--disable-hybrid-kv-cache-manager" in off_plan.launch_command(off)
    assert engine_choices("WARNING [kv_cache_utils.py:1144] Hybrid KV cache manager is disabled for this hybrid "
                          "model, This means ...") == {"disable_hybrid_kv_cache_manager": True}


def test_the_caching_allocators_blocks_by_hand():
    """c10/cuda/CUDACachingAllocator.cpp's rules, case by case: a 24.5 MiB parameter gets a 26 MiB segment (>= 10
    MiB: rounded up to 2 MiB) split at 24.5 (1.5 MiB left > 1 MiB), whose 1.5 MiB a later 1.25 MiB request reuses
    whole (0.25 MiB would be left: too little to split); an 11 MiB + 512 B request's 12 MiB segment leaves
    1 MiB - 512 B, too little to split: charged 12 MiB; a 3.5 MiB request takes a 20 MiB segment (under 10 MiB)
    and the next 3.5 MiB shares it; a 7,000 B request rounds to 7,168 B in the small pool."""
    from kvplan.engines.common import allocated_bytes

    mib = 1 << 20
    assert allocated_bytes([24.5 * mib]) == 24.5 * mib
    assert allocated_bytes([24.5 * mib, 1.25 * mib]) == 26 * mib
    assert allocated_bytes([11 * mib + 512]) == 12 * mib
    assert allocated_bytes([3.5 * mib, 3.5 * mib]) == 7 * mib
    assert allocated_bytes([7000]) == 7168


def test_model_loading_took_counts_the_allocators_blocks():
    """vLLM's 'Model loading took' is a difference of torch.cuda.memory_allocated, so it counts blocks, not bytes:
    the public 0.8.4 log of Qwen2.5-7B on an RTX 3090 (row 102 of benchmarks/engine_logs.csv) prints 14.2717 GiB,
    59 MB above the tensors (the 26 MiB segments of the 24.5 MiB q and o projections, ...)."""
    s = plan("qwen2.5-7b", gpu="rtx3090", engine_version="0.8.4", max_model_len=8192).scenarios[0]
    assert s.budgets[0].term(TermKind.WEIGHTS) / GiB == pytest.approx(14.2717, abs=5e-4)


def test_the_v1_runners_buffers_count_before_0_9_1():
    """v1/worker/gpu_model_runner.py 0.8.4 GPUModelRunner.__init__ allocates input_ids (int32), positions (int64)
    and inputs_embeds (tokens x hidden, bf16) for max_num_batched_tokens tokens, and 0.8.x's
    determine_available_memory subtracts torch's absolute allocated peak, so they count: Qwen2.5-7B on an RTX
    3090 holds max_num_batched_tokens x (4 + 8 + 3,584 x 2) B. From 0.9.1 the profile's baseline holds them: no
    term."""
    s = plan("qwen2.5-7b", gpu="rtx3090", engine_version="0.8.4", max_model_len=8192).scenarios[0]
    tokens = s.printed.max_num_batched_tokens
    assert s.budgets[0].term(TermKind.BUFFERS) == tokens * (4 + 8 + 3584 * 2)
    later = plan("qwen2.5-7b", gpu="rtx3090", engine_version="0.9.1", max_model_len=8192).scenarios[0]
    assert later.budgets[0].term(TermKind.BUFFERS) is None
