"""Tensor and pipeline parallelism: what each GPU holds."""

from __future__ import annotations

import pytest

from kvplan.deployment import Deployment, pp_partition
from kvplan.errors import InputError
from kvplan.model.load import load_model


def test_tp_splits_everything_but_norms():
    # Llama-3.1-8B: every matrix (incl. vocab-parallel embedding and lm_head) splits by TP; the 65 RMSNorm
    # vectors of 4096 are replicated on every rank.
    spec = load_model("llama-3.1-8b")
    norms = (2 * 32 + 1) * 4096
    for tp in (2, 4, 8):
        assert Deployment(spec, tp=tp).weights_bytes_per_gpu == 2 * ((spec.params - norms) // tp + norms)


def test_tp_replicates_mla_down_projection_norms_and_routers():
    # DeepSeek-V2-Lite, replicated on every rank: kv_a_proj_with_mqa (576 x 2048), kv_a_layernorm (512) and the
    # two layer norms (2048) in 27 layers, the MoE router (64 x 2048) in 26 layers, the final norm (2048).
    spec = load_model("deepseek-v2-lite")
    replicated = 27 * (576 * 2048 + 512 + 2 * 2048) + 26 * 64 * 2048 + 2048
    split = spec.params - replicated
    assert Deployment(spec, tp=2).weights_bytes_per_gpu == 2 * (split // 2 + replicated)


def test_pp_partition_follows_vllm():
    # vllm get_pp_indices: 30 layers on 4 stages -> [7, 8, 8, 7] (remainder before the last stage)
    assert [len(r) for r in pp_partition(30, 4)] == [7, 8, 8, 7]
    assert [len(r) for r in pp_partition(32, 4)] == [8, 8, 8, 8]


def test_pp_places_embedding_first_and_lm_head_last():
    spec = load_model("llama-3.1-8b")
    d = Deployment(spec, pp=2)
    emb = 128256 * 4096 * 2
    layer = (spec.params - 2 * 128256 * 4096 - 4096) * 2 // 32
    first, last = d.stages
    assert first.weights_bytes == emb + 16 * layer
    assert last.weights_bytes == 16 * layer + 4096 * 2 + emb


def test_pp_tied_embedding_needs_a_second_copy_on_the_last_stage():
    spec = load_model("llama-3.2-1b")  # tie_word_embeddings: true
    assert spec.tie_word_embeddings
    one, two = Deployment(spec), Deployment(spec, pp=2)
    emb = 128256 * 2048 * 2
    assert sum(s.weights_bytes for s in two.stages) == one.weights_bytes_per_gpu + emb


def test_pp_larger_than_layers_is_refused():
    with pytest.raises(InputError, match="exceeds the model's 32 layers"):
        Deployment(load_model("llama-3.1-8b"), pp=33)


def test_tp_must_divide_attention_heads():
    with pytest.raises(InputError, match="does not divide the 71 attention heads"):
        Deployment(load_model("falcon-7b"), tp=2)


def test_data_parallel_replicas_multiply_concurrency():
    from kvplan.planning import plan

    one = plan("llama-3.1-8b", gpu="h100", seq=4096).scenarios[0].capacity
    four = plan("llama-3.1-8b", gpu="h100", gpus=4, seq=4096).scenarios[0].capacity  # TP 1 x 4 replicas
    assert four.max_concurrent_requests == 4 * one.max_concurrent_requests


def test_gpus_must_be_a_multiple_of_tp_pp():
    from kvplan.planning import plan

    with pytest.raises(InputError, match="not a multiple"):
        plan("llama-3.1-8b", gpu="h100", gpus=3, tp=2)
