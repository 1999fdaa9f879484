"""kvplan's parameter count equals what transformers instantiates, for every embedded config and for small
configs that exercise options the catalog does not (biases, MoE layer steps, q-LoRA, legacy Falcon)."""

from __future__ import annotations

import pytest
from conftest import embedded_configs, load_json
from oracle import transformers_param_count

from kvplan.model.load import from_config


@pytest.mark.parametrize("path", embedded_configs(), ids=lambda p: p.stem)
def test_embedded_config_matches_transformers(path):
    data = load_json(path)
    assert from_config(data).params == transformers_param_count(data)


_LLAMA_SMALL = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 160,
    "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
}
SYNTHETIC = {
    "llama-biases-tied": {**_LLAMA_SMALL, "attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True},
    "llama-head-dim": {**_LLAMA_SMALL, "head_dim": 32},
    "falcon-classic": {
        "architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "vocab_size": 500, "multi_query": False, "parallel_attn": False, "bias": True,
        "new_decoder_architecture": False, "tie_word_embeddings": False,
    },
    "falcon-new-arch": {
        "architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 8, "num_kv_heads": 2, "vocab_size": 500, "new_decoder_architecture": True,
        "ffn_hidden_size": 200,
    },
    "qwen2_moe-steps": {
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": 64,
        "intermediate_size": 128, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300,
        "num_experts": 6, "num_experts_per_tok": 2, "decoder_sparse_step": 2, "mlp_only_layers": [3],
    },
    "qwen3_moe-dense-layers": {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 64,
        "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 300, "num_experts": 4, "num_experts_per_tok": 2,
        "mlp_only_layers": [0],
    },
    "deepseek_v2-qlora-freq": {
        "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "hidden_size": 64,
        "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 4, "vocab_size": 300, "q_lora_rank": 24, "kv_lora_rank": 16,
        "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8, "n_routed_experts": 4,
        "n_shared_experts": 2, "num_experts_per_tok": 2, "first_k_dense_replace": 1, "moe_layer_freq": 1,
    },
    "starcoder2-no-bias": {
        "architectures": ["Starcoder2ForCausalLM"], "model_type": "starcoder2", "hidden_size": 64,
        "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 300, "use_bias": False, "tie_word_embeddings": False,
    },
    "mamba-biases": {
        "architectures": ["MambaForCausalLM"], "model_type": "mamba", "hidden_size": 64, "num_hidden_layers": 2,
        "vocab_size": 300, "state_size": 8, "expand": 2, "conv_kernel": 3, "use_bias": True,
        "time_step_rank": "auto",
    },
    "gpt_oss-no-layer-types": {
        "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 64,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 16, "vocab_size": 300, "num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": 8,
    },
    "gemma3_text-direct": {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 7, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 16, "vocab_size": 300, "sliding_window": 8,
    },
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_config_matches_transformers(name):
    data = SYNTHETIC[name]
    assert from_config(data).params == transformers_param_count(data)


def test_unknown_standard_decoder_is_counted_with_a_warning():
    data = {**_LLAMA_SMALL, "model_type": "my_llama_clone", "architectures": ["MyLlamaCloneForCausalLM"]}
    spec = from_config(data)
    assert spec.params == transformers_param_count(_LLAMA_SMALL)
    assert any("my_llama_clone" in n and "standard" in n for n in spec.notes)
