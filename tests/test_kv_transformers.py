"""KV bytes per token against the cache transformers really allocates.

Each real config is cut to two layers with a small MLP and vocabulary (attention dimensions untouched), run
forward over a short prompt in bf16 on the CPU, and the key/value tensors of its cache are summed. kvplan must
predict the same bytes from the same config. (MLA is excluded: transformers caches decompressed K/V where
serving engines cache the latent; Mamba is excluded: transformers keeps `conv_kernel` columns of conv state
where engines keep `conv_kernel - 1`; Falcon-40B is excluded: transformers caches its 8 KV heads broadcast
to all 128 query heads, where vLLM caches the 8.)
"""

from __future__ import annotations

import copy

import pytest
from oracle import transformers_config

from kvplan.deployment import Deployment
from kvplan.model import catalog
from kvplan.model.config import read_json
from kvplan.model.load import from_config

PROMPT = 12
MODELS = ["llama-3.1-8b", "falcon-7b", "qwen3-8b", "qwen2.5-7b", "gemma-2-9b", "gemma-3-1b-it",
          "phi-3-mini", "olmo-2-1124-7b", "starcoder2-7b", "mistral-7b", "mixtral-8x7b", "gpt-oss-20b", "phi-2",
          "granite-3.1-8b"]


def shrink(data: dict) -> dict:
    d = copy.deepcopy(data)
    d.pop("quantization_config", None)
    for key in ("num_hidden_layers", "n_layer"):
        if key in d:
            d[key] = 2
    if "layer_types" in d:
        d["layer_types"] = d["layer_types"][:2]
    d["vocab_size"] = 512
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if key in d:
            d[key] = 0
    for key in ("intermediate_size", "moe_intermediate_size", "ffn_hidden_size"):
        if key in d:
            d[key] = 64
    for key in ("num_local_experts", "num_experts"):
        if key in d:
            d[key] = 2
    for key in ("num_experts_per_tok", "experts_per_token"):
        if key in d:
            d[key] = 1
    if d.get("model_type") in ("RefinedWeb", "RefinedWebModel"):
        d["ffn_hidden_size"] = 64
    return d


def transformers_cache_bytes(data: dict) -> int:
    import torch

    config, cls = transformers_config(data)
    torch.manual_seed(0)
    model = cls._from_config(config, dtype=torch.bfloat16).eval()
    with torch.no_grad():
        out = model(torch.randint(0, 512, (1, PROMPT)), use_cache=True)
    cache = out.past_key_values
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)


@pytest.mark.parametrize("alias", MODELS)
def test_kv_bytes_equal_transformers_cache(alias):
    data = shrink(read_json(catalog.lookup(alias).path()))
    predicted = Deployment(from_config(data), kv_dtype="bf16").request_bytes(PROMPT)
    assert predicted == transformers_cache_bytes(data)
