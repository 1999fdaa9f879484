"""The parameter-count oracle: transformers builds the model on the meta device (no weights, no memory) and
counts `model.parameters()` (tied tensors once).

Only three config rewrites happen before transformers sees a config, each independent of kvplan's code:
- 2023 Falcon configs (`RefinedWebModel`, `RefinedWeb`): keys renamed as transformers' own conversion script
  does (`models/falcon/convert_custom_code_checkpoint.py`: n_head, n_layer, n_head_kv; RefinedWeb = new decoder
  architecture), because transformers 5 no longer reads the legacy names.
- Phi-3 128k configs: transformers 5 validates `rope_scaling` and wants `original_max_position_embeddings`
  inside it; the old configs keep it at the top level. RoPE has no parameters.
- Mistral3: transformers 5 ties lm_head to the embedding through the wrapper's default
  `tie_word_embeddings=True`; the real checkpoint stores lm_head (HF safetensors total 24,011,361,280 for
  Magistral-Small-2509, param_counts.csv), so the wrapper is given the text config's own value.
"""

from __future__ import annotations

import copy
import logging
import warnings

_LEGACY_FALCON = {"n_head": "num_attention_heads", "n_layer": "num_hidden_layers", "n_head_kv": "num_kv_heads"}


def transformers_config(data: dict):
    import transformers

    d = copy.deepcopy(data)
    d.pop("quantization_config", None)
    if d.get("model_type") in ("RefinedWeb", "RefinedWebModel"):
        for old, new in _LEGACY_FALCON.items():
            if old in d:
                d[new] = d.pop(old)
        d["new_decoder_architecture"] = d.get("model_type") == "RefinedWeb"
        d["model_type"] = "falcon"
        d.pop("auto_map", None)
        return transformers.FalconConfig(**d), transformers.FalconForCausalLM
    rope = d.get("rope_scaling")
    if isinstance(rope, dict) and "original_max_position_embeddings" in d:
        rope.setdefault("original_max_position_embeddings", d["original_max_position_embeddings"])
    if d.get("model_type") == "mistral3":
        d["tie_word_embeddings"] = bool(d.get("text_config", {}).get("tie_word_embeddings", False))
    cls = getattr(transformers, d["architectures"][0])
    return transformers.AutoConfig.for_model(**d), cls


def transformers_param_count(data: dict) -> int:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config, cls = transformers_config(data)
        with torch.device("meta"):
            model = cls._from_config(config)
    logging.disable(logging.NOTSET)
    return sum(p.numel() for p in model.parameters())
