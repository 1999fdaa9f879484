"""Speculative decoding: what the drafter adds to weights and the KV cache, and the lookahead slots, each against
a hand derivation from the engine's source (the release named in each test)."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from kvplan.budget import TermKind
from kvplan.cli import main
from kvplan.deployment import Deployment
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.model.load import load_model
from kvplan.planning import plan

HIDDEN = 7168  # DeepSeek-V3 hidden_size


def _weights(p):
    """The weights term less the caching allocator's blocks over the tensors (common.allocator_rounding, its own
    test in test_vllm.py): the tensors' bytes, which the drafter's derivations below add up."""
    from kvplan.engines.common import allocator_rounding

    dep = p.deployment
    rounding = allocator_rounding(dep, dep.stages[0])[0] if p.engine.engine.startswith("vllm") else 0
    return p.scenarios[0].budgets[0].term(TermKind.WEIGHTS) - rounding


def test_deepseek_mtp_layer_counted_only_with_speculative_decoding():
    """vLLM 0.19.0 model_executor/models/deepseek_mtp.py: the MTP layer (61) is enorm + hnorm + eh_proj, a plain
    nn.Linear(2 x 7168, 7168) in bf16 (replicated, never quantized), one full decoder layer (MLA + the MoE: layer
    61 >= first_k_dense_replace) and shared_head's norm; embed_tokens and shared_head.head are the target's
    (v1/spec_decode/eagle.py _maybe_share_embeddings / _maybe_share_lm_head), so not loaded again. Its decoder
    layer has the shape of layer 60, whose bytes per GPU the target already holds. The latent KV cache gains one
    layer: 62 x (512 + 64) x 2 B = 71,424 B per token, instead of 61 x 576 x 2 = 70,272."""
    base = plan("deepseek-v3", gpu="h200", tp=8, seq=8192, engine_version="0.33.0")
    mtp = plan("deepseek-v3", gpu="h200", tp=8, seq=8192, speculative_method="mtp", num_speculative_tokens=1,
               engine_version="0.33.0")
    dep = base.deployment
    layer60 = sum(size for t, size in zip(dep.model.tensors, dep.tensor_sizes, strict=True) if t.layer == 60)
    added = layer60 + HIDDEN * 2 * HIDDEN * 2 + 3 * HIDDEN * 2  # + eh_proj + enorm, hnorm, shared_head.norm
    assert _weights(mtp) - _weights(base) == round(added)
    assert base.kv_bytes_per_token == 61 * 576 * 2 == 70_272
    assert mtp.kv_bytes_per_token == 62 * 576 * 2 == 71_424
    # one pool holds both: the printed blocks are the (smaller) budget over 62 layers' pages
    b0, b1 = base.scenarios[0], mtp.scenarios[0]
    assert b1.budgets[0].kv_pool < b0.budgets[0].kv_pool
    assert b1.printed.num_blocks == b1.budgets[0].kv_pool // (16 * 71_424)
    # said both ways
    assert any("loaded only for speculative decoding" in n for n in base.notes)
    assert any("drafter" in n and "counted in the weights and the KV cache" in n for n in mtp.notes)
    assert mtp.to_dict()["speculative"]["served_kv_layer_kinds"] == {"mla": 62}
    assert base.to_dict()["speculative"] is None


def test_mtp_layer_parameters_against_the_published_total():
    """DeepSeek-V3's model card: 671B main-model parameters plus 14B of MTP module; the 14B include the MTP
    module's own copies of the embedding and head (2 x 129,280 x 7,168 = 1.853B) that vLLM shares instead."""
    m = load_model("deepseek-v3")
    assert m.mtp is not None and m.mtp.num_layers == 1
    stored = m.mtp.params + 2 * 129_280 * HIDDEN
    assert abs(stored - 14e9) / 14e9 < 0.05
    assert Deployment(m).model.params == m.params  # the plain model does not carry them


def test_lookahead_slots_per_request():
    """v1/core/sched/scheduler.py (0.19.0): a running request's blocks are allocated for its tokens plus
    num_lookahead_tokens = num_speculative_tokens. With ngram proposals (no drafter: the pool is unchanged), a
    request of 8,000 tokens at K = 4 needs ceil(8004 / 16) = 501 blocks instead of 500."""
    base = plan("llama-3.1-8b", gpu="l4", seq=8000, max_model_len=8192, engine_version="0.33.0")  # 16-token blocks
    ng = plan("llama-3.1-8b", gpu="l4", seq=8000, max_model_len=8192, speculative_method="ngram",
              num_speculative_tokens=4, engine_version="0.33.0")
    blocks = base.scenarios[0].printed.num_blocks
    assert ng.scenarios[0].printed.num_blocks == blocks
    assert base.scenarios[0].capacity.max_concurrent_requests == blocks // math.ceil(8000 / 16)
    assert ng.scenarios[0].capacity.max_concurrent_requests == blocks // math.ceil(8004 / 16)
    assert ng.scenarios[0].capacity.max_seq_len == base.scenarios[0].capacity.max_seq_len  # max_model_len-bound


def test_speculative_settings_refused_with_a_reason():
    with pytest.raises(UnsupportedModelError, match="no multi-token-prediction layers"):
        plan("llama-3.1-8b", gpu="h100", speculative_method="mtp", num_speculative_tokens=1)
    with pytest.raises(UnsupportedModelError, match="pipeline parallelism"):
        plan("deepseek-v3", gpu="h200", tp=8, pp=2, speculative_method="mtp", num_speculative_tokens=1)
    with pytest.raises(InputError, match="num-speculative-tokens"):
        plan("deepseek-v3", gpu="h200", tp=8, speculative_method="mtp")
    with pytest.raises(UnsupportedModelError, match=r"kvplan reads it from 0\.5\.3"):
        plan("deepseek-v3", gpu="h200", tp=8, engine="sglang", engine_version="0.4.9", speculative_method="nextn",
             num_speculative_tokens=1)
    with pytest.raises(InputError, match="not modelled for TGI"):
        plan("llama-3.1-8b", gpu="h100", engine="tgi", speculative_method="ngram", num_speculative_tokens=2)
    with pytest.raises(InputError, match="need --speculative-method"):
        plan("llama-3.1-8b", gpu="h100", num_speculative_tokens=2)
    with pytest.raises(InputError, match="unknown speculative-decoding method"):
        plan("llama-3.1-8b", gpu="h100", speculative_method="medusa-ish", num_speculative_tokens=2)


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_speculative_config_json_and_launch_line():
    """vLLM's own spelling is accepted, and the launch line carries it back."""
    out = run_cli("plan", "deepseek-v3", "--gpu", "h200", "--tp", "8", "--seq", "8192", "--json",
                  "--speculative-config", '{"method": "deepseek_mtp", "num_speculative_tokens": 2}')
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["speculative"]["method"] == "mtp" and data["speculative"]["num_speculative_tokens"] == 2
    line = data["scenarios"][0]["launch_command"]
    assert """--speculative-config '{"method": "mtp", "num_speculative_tokens": 2}'""" in line
    bad = run_cli("plan", "llama-3.1-8b", "--gpu", "h100", "--speculative-config", "{bad")
    assert bad.exit_code != 0 and "not JSON" in bad.output and "Traceback" not in bad.output
    odd = run_cli("plan", "deepseek-v3", "--gpu", "h200", "--tp", "8", "--speculative-config",
                  '{"method": "mtp", "num_speculative_tokens": 1, "draft_tensor_parallel_size": 1}')
    assert odd.exit_code != 0 and "does not model draft_tensor_parallel_size" in odd.output


@pytest.mark.parametrize(("log", "model", "gpu"), [
    ("vllm-v0_0.5.5_llama3.1-8b-notebook.log", "llama-3.1-8b", "a10g"),
    ("vllm-v0_0.6.6_ui-tars-7b-24gb.log", "qwen2.5-7b", "a10g"),  # UI-TARS-7B: Qwen2-VL-7B's text dims
    ("vllm-v0_0.6.4.post1_rho1b-h200.log", "tinyllama-1.1b-chat-v1.0", "h200"),  # rho-1b: TinyLlama's dims
])
def test_v0_swap_space_in_cpu_blocks_matches_the_logs(log, model, gpu):
    """vLLM V0 worker/worker.py determine_num_available_blocks: num_cpu_blocks = int(swap_space_bytes //
    cache_block_size), swap_space 4 GiB by default, the block over every layer: Llama-3.1-8B 16 x 131,072 B ->
    2,048; Qwen2-7B dims 16 x 57,344 B -> 4,681; TinyLlama dims 16 x 22,528 B -> 11,915. The logged figure is read
    from the public log itself (tests/logs/releases; its first line cites the source)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parent / "logs" / "releases" / log).read_text(encoding="utf-8")
    logged = int(re.search(r"# CPU blocks: (\d+)", text).group(1))
    p = plan(model, gpu=gpu, engine="vllm-v0", seq=2048, max_model_len=2048)
    assert p.scenarios[0].printed.cpu_blocks == logged


def test_swap_space_flag():
    """--swap-space G scales V0's CPU blocks (Llama-3.2-3B: 16 x 114,688 B a block; the public T4 log of 0.8.2
    prints 1,170, which is 2 GiB's worth: int(2 x 2^30 / 1,835,008) = 1,170); V1 allocates none and says so."""
    p = plan("llama-3.2-3b", gpu="t4", engine="vllm-v0", seq=2048, max_model_len=2048, swap_space=2)
    assert p.scenarios[0].printed.cpu_blocks == (2 * 2**30 // (16 * 114_688)) == 1170
    v1 = plan("llama-3.2-3b", gpu="t4", seq=2048, max_model_len=2048, swap_space=8)
    assert v1.scenarios[0].printed.cpu_blocks is None
    assert any("allocates no CPU swap" in n for n in v1.scenarios[0].printed.notes)
    with pytest.raises(InputError, match="vLLM only"):
        plan("llama-3.2-3b", gpu="t4", engine="sglang", swap_space=2)


def test_fit_sizes_candidates_with_the_drafter():
    """fit --speculative-method mtp: each candidate is the plan of the same layout with the MTP layer (its
    requests per replica equal plan's), PP 1 only, and the launch line carries the speculative config."""
    from kvplan.fit import Workload, search

    w = Workload.from_options(100, 8192, None, None, None, None)
    spec = load_model("deepseek-v3")
    got = search(spec, w, ["h200"], 8, speculative=("mtp", 1))
    assert got.candidates and all(c.pp == 1 for c in got.candidates)
    best = got.candidates[0]
    p = plan("deepseek-v3", gpu="h200", tp=best.tp, dp_attention=best.dp_attention,
             expert_parallel=best.expert_parallel, seq=8192, max_model_len=8192, speculative_method="mtp",
             num_speculative_tokens=1)
    assert best.max_concurrent_requests == p.scenarios[0].capacity.max_concurrent_requests
    assert '"method": "mtp"' in best.command
    assert any("speed-up" in n for n in got.notes)


def test_v0_swap_blocks_count_cross_attention_layers():
    """vllm-project/vllm#12126 (youkaichao, 2025-01-16) logs Llama-3.2-11B-Vision under V0 with
    '# CUDA blocks: 6001, # CPU blocks: 1638': a V0 block spans all 40 decoder layers, the 8 cross-attention
    ones included (16 x 8 KV heads x 128 x 2 x 2 B x 40 = 2.5 MiB), so 4 GiB make int(1638.4) = 1638 blocks.
    """
    p = plan("llama-3.2-11b-vision-instruct", gpu="h100", engine="vllm-v0", max_model_len=65536, max_num_seqs=128,
             enforce_eager=True)
    assert p.scenarios[0].printed.cpu_blocks == 4 * 2**30 // (16 * 8 * 128 * 2 * 2 * 40) == 1638


def test_v0_mllama_vision_tower_profiling_peak():
    """V0's profile (enc_dec_model_runner.py profile_run, 0.6.6-0.10) sends max_num_seqs sequences with
    --limit-mm-per-prompt images each (default 1) through Mllama's tower at once; every image is 4 tiles of
    3 x 560 x 560, 1601 patches padded to 1608. Per image: two fp32 pixel copies 2 x 4 x 3 x 560^2 x 4 =
    30,105,600 B, the bf16 mask 2 x 6432^2 = 82,741,248 B, four 1280-wide states plus fc1 and its GELU (5120
    each) 2 x 6432 x (4 x 1280 + 2 x 5120) = 197,591,040 B: 310,437,888 B, x 128 = 37.01 GiB against the 36.63
    GiB vllm-project/vllm#12126 logged. It replaces the text model's smaller peak; image=0 drops it."""
    kw = dict(gpu="h100", engine="vllm-v0", max_model_len=65536, max_num_seqs=128, enforce_eager=True)
    act = lambda p: p.scenarios[0].budgets[0].term(TermKind.ACTIVATION)  # noqa: E731
    p = plan("llama-3.2-11b-vision-instruct", **kw)
    per_image = 30_105_600 + 82_741_248 + 197_591_040
    assert act(p) == 128 * per_image and abs(128 * per_image / 2**30 - 37.01) < 0.005
    two = plan("llama-3.2-11b-vision-instruct", images_per_prompt=2, max_num_seqs=64,
               **{k: v for k, v in kw.items() if k != "max_num_seqs"})
    assert act(two) == act(p)  # 64 sequences x 2 images
    none = plan("llama-3.2-11b-vision-instruct", images_per_prompt=0, **kw)
    assert act(none) < act(p) / 4 and "--limit-mm-per-prompt" in none.launch_command(none.scenarios[0])
    with pytest.raises(UnsupportedModelError, match="does not serve cross-attention"):
        plan("llama-3.2-11b-vision-instruct", gpu="h100")  # V1 never served Mllama


def test_draft_model_weights_and_kv_join_the_target():
    """vLLM 0.19.0 v1/spec_decode/draft_model.py: the draft checkpoint loads whole (its own embedding and head) at
    the target's TP inside "Model loading took", and its 16 layers join the KV cache spec: per token on each of 8
    GPUs 80 x 2 x 1 KV head x 128 x 2 B + 16 x 2 x 1 x 64 x 2 B = 40,960 + 4,096 = 45,056 B. The weights grow by
    the draft's own TP-8 shard (its standalone deployment)."""
    kw = dict(gpu="h100", tp=8, seq=8192)
    base = plan("llama-3.1-70b", **kw)
    drafted = plan("llama-3.1-70b", speculative_method="draft_model", draft_model="llama-3.2-1b-instruct",
                   num_speculative_tokens=4, **kw)
    assert base.kv_bytes_per_token == 40_960 and drafted.kv_bytes_per_token == 45_056
    draft_shard = Deployment(load_model("llama-3.2-1b-instruct"), tp=8).weights_bytes_per_gpu
    assert _weights(drafted) - _weights(base) == draft_shard
    assert '"model": "meta-llama/Llama-3.2-1B-Instruct"' in drafted.launch_command(drafted.scenarios[0])
    with pytest.raises(UnsupportedModelError, match="does not serve a separate draft model"):
        plan("llama-3.1-70b", engine_version="0.11.0", speculative_method="draft_model",
             draft_model="llama-3.2-1b-instruct", num_speculative_tokens=4, **kw)
    with pytest.raises(UnsupportedModelError, match="vocabulary"):
        plan("llama-3.1-70b", speculative_method="draft_model", draft_model="qwen2.5-0.5b-instruct",
             num_speculative_tokens=4, **kw)
    with pytest.raises(InputError, match="needs --draft-model"):
        plan("llama-3.1-70b", speculative_method="draft_model", num_speculative_tokens=4, **kw)


def test_kv_offloading_tier():
    """vLLM 0.19.0 --kv-offloading-size S (native: OffloadingConnector, cpu_bytes_to_use = S x 2^30;
    v1/kv_offload/cpu/spec.py blocks = cpu_bytes // (block bytes x world size)). Llama-3.1-70B at TP 4: a block
    on one rank is 16 x 80 layers x 2 KV heads x 128 x 2 x 2 B = 1,310,720 B; S = 100 gives
    107,374,182,400 // (1,310,720 x 4) = 20,480 blocks = 327,680 tokens; each rank pins 20,480 x 1,310,720 B =
    25 GiB, which the pinned allocator rounds up to 32 GiB. The GPU pool is the same with and without it."""
    base = plan("llama-3.1-70b", gpu="h100", tp=4, seq=8192, max_model_len=8192)
    tier = plan("llama-3.1-70b", gpu="h100", tp=4, seq=8192, max_model_len=8192, kv_offloading_size=100)
    e = tier.scenarios[0].printed
    assert e.cpu_tier_tokens == 20_480 * 16 == 327_680 and e.cpu_tier_pinned_bytes == 32 * 2**30
    assert e.num_blocks == base.scenarios[0].printed.num_blocks
    assert "--kv-offloading-size 100" in tier.launch_command(tier.scenarios[0])
    with pytest.raises(InputError, match="V1 only"):
        plan("llama-3.1-70b", gpu="h100", tp=4, engine="vllm-v0", kv_offloading_size=10)


def test_lmcache_cpu_tier():
    """--kv-offloading-backend lmcache (vLLM 0.19.0 config/vllm.py: lmcache.max_local_cpu_size = S / (TP x PP) GB
    per rank; LMCache 0.5.6 pins int(GB x 1024^3) bytes and stores 256-token chunks). Llama-3.1-70B at TP 4, S = 90:
    22.5 GiB = 24,159,191,040 B per rank; a chunk is 256 x 80 x 2 x 2 x 128 x 2 B = 20,971,520 B; 1,152 chunks =
    294,912 tokens (the native tier of 90 GiB: 90 x 2^30 // (1,310,720 x 4) = 18,432 blocks = 294,912 tokens too,
    pinned as 32 GiB after power-of-two rounding instead of 22.5)."""
    kw = dict(gpu="h100", tp=4, seq=8192, max_model_len=8192, kv_offloading_size=90)
    lm = plan("llama-3.1-70b", kv_offloading_backend="lmcache", **kw)
    native = plan("llama-3.1-70b", **kw)
    e, n = lm.scenarios[0].printed, native.scenarios[0].printed
    assert e.cpu_tier_tokens == (24_159_191_040 // 20_971_520) * 256 == 294_912 == n.cpu_tier_tokens
    assert e.cpu_tier_pinned_bytes == 24_159_191_040 and n.cpu_tier_pinned_bytes == 32 * 2**30
    assert e.num_blocks == n.num_blocks
    assert "--kv-offloading-backend lmcache" in lm.launch_command(lm.scenarios[0])
    assert any("LMCache's CPU tier" in note for note in e.notes)
    with pytest.raises(InputError, match="native or lmcache"):
        plan("llama-3.1-70b", kv_offloading_backend="mooncake", **kw)


# The published EAGLE-3 head for Llama-3.1-8B-Instruct (yuhuili/EAGLE3-LLaMA3.1-Instruct-8B config.json, as
# copied in public test suites): a one-layer Llama with a 32,000-token draft vocabulary.
EAGLE3_LLAMA31_8B = {
    "architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 1,
    "max_position_embeddings": 2048, "rms_norm_eps": 1e-05, "tie_word_embeddings": False,
    "torch_dtype": "float16", "vocab_size": 128256, "draft_vocab_size": 32000,
}


@pytest.mark.parametrize("method", ["eagle", "eagle3"])
def test_eagle_heads_weights_and_kv(tmp_path, method):
    """vLLM 0.19.0 model_executor/models/llama_eagle.py and llama_eagle3.py, v1/spec_decode/eagle.py load_model.
    Hand count for the 8B head (h = 4096, q 4096, k = v 1024, MLP 14336):
      one decoder layer: q/k/v/o = (4096 + 1024 + 1024) x in + 4096 x 4096, MLP 3 x 4096 x 14336 = 176,160,768;
      EAGLE-1: in = 4096 (28,966,912 + 16,777,216 attention), the first layer's input norm is nn.Identity (one
        norm of 4096 left), fc 2h x h = 33,554,432, no final norm, embedding and lm_head the target's;
      EAGLE-3: the first layer's q/k/v read 2h (6144 x 8192 = 50,331,648), two norms + hidden_norm (3 x 4096),
        fc 3 x 4096 x 4096 = 50,331,648, the final norm, its own lm_head 32,000 x 4096 = 131,072,000; the
        embedding the target's.
    The head's one attention layer joins the KV spec: 33 x 2 x 8 x 128 x 2 B = 135,168 B per token."""
    path = tmp_path / "eagle.json"
    eagle1 = {k: v for k, v in EAGLE3_LLAMA31_8B.items() if k != "draft_vocab_size"}  # EAGLE-1 heads: no draft vocab
    path.write_text(json.dumps(EAGLE3_LLAMA31_8B if method == "eagle3" else eagle1))
    kw = dict(gpu="h100", seq=8192)
    base = plan("llama-3.1-8b-instruct", **kw)
    head = plan("llama-3.1-8b-instruct", speculative_method=method, draft_model=str(path), num_speculative_tokens=3,
                **kw)
    layer = 176_160_768 + 4096 * 4096
    if method == "eagle":
        params = layer + (4096 + 1024 + 1024) * 4096 + 4096 + 2 * 4096 * 4096
    else:
        params = layer + (4096 + 1024 + 1024) * 8192 + 3 * 4096 + 3 * 4096 * 4096 + 4096 + 32_000 * 4096
    assert _weights(head) - _weights(base) == 2 * params  # bf16, TP 1
    assert base.kv_bytes_per_token == 32 * 2 * 8 * 128 * 2 and head.kv_bytes_per_token == 135_168
    assert any("shares the target's token embedding" in n for n in head.notes)
    spec = head.to_dict()["speculative"]
    assert spec["method"] == method and spec["drafter_params"] == params and spec["drafter_kv_layers"] == 1


def test_sglang_speculative_drafter_by_release():
    """SGLang with NEXTN (DeepSeek-V3's MTP layer) on 8 x H200 (nvidia-smi 143,771 MiB), --seq 8192.
    0.5.10 (srt/server_args.py _handle_gpu_memory_settings): reserved = max(512 + 1.5 x 8192 + 8 / 8 x 1024
    + 2 x 512 (decode graphs) + 1536 (MLA prefill graphs), 10240) = 16,384 MiB, + 4,096 for the EAGLE-family
    drafter after the floor: fraction round((143771 - 20480) / 143771, 3) = 0.858 instead of 0.886; the target's
    pool alone (cell 61 layers x 576 x 2 B = 70,272). 0.5.23 (pool_configurator.py): the fraction unchanged, the
    MTP weights loaded before the pool is sized, cell += int(70,272 x 1 / 61) = 71,424. Both: max_running_requests
    reset to 48 (_handle_speculative_decoding / _handle_eagle_family)."""
    kw = dict(gpu="h200", tp=8, engine="sglang", seq=8192)
    spec = dict(speculative_method="nextn", num_speculative_tokens=3)
    old_base, old = plan("deepseek-v3", engine_version="0.5.10", **kw), plan("deepseek-v3", engine_version="0.5.10",
                                                                                **kw, **spec)
    assert old_base.scenarios[0].util == round((143771 - 16384) / 143771, 3) == 0.886
    assert old.scenarios[0].util == round((143771 - 16384 - 4096) / 143771, 3) == 0.858
    assert old.kv_bytes_per_token == 70_272 and _weights(old) == _weights(old_base)
    assert old.scenarios[0].printed.kv_tokens == old.scenarios[0].budgets[0].kv_pool // 70_272
    new_base, new = plan("deepseek-v3", **kw), plan("deepseek-v3", **kw, **spec)
    assert new.scenarios[0].util == new_base.scenarios[0].util == 0.886
    assert new.kv_bytes_per_token == 70_272 + int(70_272 * 1 / 61) == 71_424
    added = _weights(new) - _weights(new_base)
    dep = new_base.deployment
    layer60 = sum(size for t, size in zip(dep.model.tensors, dep.tensor_sizes, strict=True) if t.layer == 60)
    # as the first test derives it, plus PyTorch's allocator rounding each parameter of 10 MiB or more up to
    # 2 MiB, which SGLang's load line measures (sglang_weights): less than 2 MiB per such parameter
    hand = round(layer60 + HIDDEN * 2 * HIDDEN * 2 + 3 * HIDDEN * 2)
    big = sum(size >= 10 * 2**20 for t, size in zip(dep.model.tensors, dep.tensor_sizes, strict=True)
              if t.layer == 60) + 1  # + eh_proj
    assert 0 <= added - hand < big * 2 * 2**20
    assert new.scenarios[0].budgets[0].kv_pool == new_base.scenarios[0].budgets[0].kv_pool - added
    assert new.scenarios[0].printed.kv_tokens == new.scenarios[0].budgets[0].kv_pool // 71_424
    for p in (old, new):
        assert p.scenarios[0].printed.max_running_requests == 48
        assert ("--speculative-algorithm NEXTN --speculative-num-steps 3 --speculative-eagle-topk 1 "
                "--speculative-num-draft-tokens 4") in p.launch_command(p.scenarios[0])
    assert new_base.scenarios[0].printed.max_running_requests > 48


def test_an_eagle_head_must_match_the_targets_width():
    """An EAGLE head shares the target's embedding: a drafter of another width is not an EAGLE head (a whole
    small model named by mistake), refused with what to give instead."""
    with pytest.raises(UnsupportedModelError, match="hidden size"):
        plan("llama-3.1-8b-instruct", gpu="h100", speculative_method="eagle3", num_speculative_tokens=3,
             draft_model="llama-3.2-1b-instruct")
