"""kvplan against published figures (param_counts.csv: HF API safetensors totals and checkpoint index sizes)."""

from __future__ import annotations

import pytest

from kvplan.deployment import Deployment
from kvplan.model.load import load_model

# HF API `safetensors.total` parameter counts, where the checkpoint holds exactly the modules the engine loads.
EXACT = [
    ("meta-llama/Llama-2-7b-hf", "llama-2-7b"),
    ("meta-llama/Meta-Llama-3-8B", "llama-3-8b"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b-instruct"),
    ("meta-llama/Llama-3.2-1B-Instruct", "llama-3.2-1b"),
    ("meta-llama/Llama-3.2-3B-Instruct", "llama-3.2-3b-instruct"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "qwen2.5-0.5b-instruct"),
    ("Qwen/Qwen2.5-1.5B-Instruct", "qwen2.5-1.5b-instruct"),
    ("Qwen/Qwen2.5-3B-Instruct", "qwen2.5-3b-instruct"),
    ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b-instruct"),
    ("Qwen/Qwen3-32B", "qwen3-32b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "deepseek-r1-distill-qwen-32b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "deepseek-r1-distill-llama-8b"),
    ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "tinyllama-1.1b-chat-v1.0"),
    ("google/gemma-3-1b-it", "gemma-3-1b-it"),
    ("mistralai/Magistral-Small-2509 (related: Mistral Small 3.2 24B + vision)", "magistral-small-2509"),
]


@pytest.mark.parametrize(("row", "alias"), EXACT, ids=[a for _, a in EXACT])
def test_params_equal_hf_safetensors_total(published_counts, row, alias):
    published = published_counts[row]["params_published"]
    # Llama-2-7b's total also counts 2,048 F32 elements (rotary inv_freq buffers): the F16 part is the weights.
    expected = 6_738_415_616 if alias == "llama-2-7b" else int(published)
    assert load_model(alias).params == expected


def test_qwen3_0_6b_checkpoint_stores_tied_lm_head(published_counts):
    """Qwen3-0.6B ties lm_head (config), yet its safetensors also hold lm_head: HF counts both copies."""
    spec = load_model("qwen3-0.6b")
    assert spec.tie_word_embeddings
    published = int(published_counts["Qwen/Qwen3-0.6B"]["params_published"])
    assert published == spec.params + spec.params_by_role()["embedding"]


@pytest.mark.parametrize("alias", ["falcon-7b", "falcon-40b"])
def test_falcon_checkpoint_stores_tied_lm_head_separately(published_counts, alias):
    """pytorch_model.bin.index.json total_size (bf16) = resident params + a stored copy of the tied lm_head."""
    spec = load_model(alias)
    total_size = int(published_counts[f"tiiuae/{alias}"]["safetensors_total_bytes"])
    embedding = spec.params_by_role()["embedding"]
    assert spec.tie_word_embeddings
    assert total_size == 2 * (spec.params + embedding)
    assert Deployment(spec).weights_bytes_per_gpu == 2 * spec.params  # resident: one copy


def test_gpt_oss_mxfp4_layout_matches_hf_dtype_totals():
    """HF reports gpt-oss-20b as BF16 1,804,459,584 + U8 19,707,494,400, counting packed MXFP4 blocks as two
    values per byte plus one e8m0 scale per 32 values: U8 = E + E/32 for E expert weights."""
    spec = load_model("gpt-oss-20b")
    experts = sum(t.numel for t in spec.tensors if t.role == "experts" and t.linear)
    assert spec.params - experts == 1_804_459_584
    assert experts + experts // 32 == 19_707_494_400
    resident = 2 * 1_804_459_584 + experts // 2 + experts // 32
    assert Deployment(spec).weights_bytes_per_gpu == resident
