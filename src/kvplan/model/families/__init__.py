"""Family adapters, registered by config `model_type`: config.json -> tensor inventory + KV spec per layer."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from kvplan.errors import UnsupportedModelError
from kvplan.model.config import Config
from kvplan.model.families import deepseek, falcon, gpt_oss, hybrid, multimodal
from kvplan.model.families.common import Built
from kvplan.model.families.decoder import TRAITS, build_decoder

Builder = Callable[[Config], Built]

BUILDERS: dict[str, Builder] = {mt: partial(build_decoder, model_type=mt) for mt in TRAITS}
BUILDERS.update({
    "falcon": falcon.build,
    "RefinedWeb": falcon.build,
    "RefinedWebModel": falcon.build,
    "deepseek_v2": deepseek.build,
    "deepseek_v3": deepseek.build,
    "gpt_oss": gpt_oss.build,
    "mamba": hybrid.build_mamba,
    "falcon_mamba": hybrid.build_mamba,
    "nemotron_h": hybrid.build_nemotron_h,
    "qwen3_next": hybrid.build_qwen3_next,
    "gemma3": multimodal.build_gemma3,
    "mllama": multimodal.build_mllama,
    "llama4": multimodal.build_llama4,
    "mistral3": multimodal.build_mistral3,
})

SUPPORTED = tuple(sorted(BUILDERS, key=str.lower))

# Keys that mean "not a plain dense decoder": an unknown model_type carrying any of them is refused.
_EXOTIC_KEYS = (
    "num_experts", "num_local_experts", "n_routed_experts", "moe_intermediate_size", "kv_lora_rank",
    "ssm_cfg", "state_size", "mamba_d_state", "text_config", "vision_config", "audio_config",
    "hybrid_override_pattern", "layers_block_type", "attn_layer_indices", "cross_attention_layers",
)
_STANDARD_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")


def builder_for(cfg: Config) -> tuple[Builder, str | None]:
    """The adapter for this config, and a warning when an unknown type is counted as a standard decoder."""
    model_type = cfg.str("model_type", default=None)
    if model_type in BUILDERS:
        return BUILDERS[model_type], None
    supported = ", ".join(SUPPORTED)
    if model_type is None:
        raise UnsupportedModelError(f"{cfg.where} has no 'model_type': add it (kvplan supports {supported})")
    arch = (cfg.list("architectures", default=None) or [""])[0]
    plain = (
        all(k in cfg for k in _STANDARD_KEYS)
        and not any(k in cfg for k in _EXOTIC_KEYS)
        and str(arch).endswith("ForCausalLM")
    )
    if not plain:
        raise UnsupportedModelError(
            f"model_type {model_type!r} is not supported and does not look like a plain decoder: "
            f"kvplan supports {supported}"
        )
    warning = (
        f"model_type {model_type!r} is not one kvplan knows; it was counted as a standard Llama-style decoder "
        "(gated MLP, no biases, RMSNorm): check the parameter count against the checkpoint"
    )
    return partial(build_decoder, model_type="llama"), warning
