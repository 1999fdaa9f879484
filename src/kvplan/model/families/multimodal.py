"""Multimodal wrappers: the language model is counted by its own adapter, the vision tower and projector
beside it (the engine loads both, so weights include both).

Nested configs are often minimal (gemma-3-4b's `text_config` omits vocab_size and the head counts):
missing keys take transformers' config-class defaults, copied below from transformers 5.x
(`Gemma3TextConfig`, `SiglipVisionConfig`, `MllamaVisionConfig`, `Llama4TextConfig`, `Llama4VisionConfig`,
`MistralConfig`, `PixtralVisionConfig`).
"""

from __future__ import annotations

from kvplan.model.config import Config, ConfigError
from kvplan.model.families.blocks import Inventory, attention, experts, gated_mlp, moe_info, plain_mlp, router
from kvplan.model.families.common import Built, attention_kv, context_length, layer_types, rope_tables
from kvplan.model.families.decoder import build_decoder
from kvplan.model.spec import CrossAttentionKV, LayerSpec, VisionInput

GEMMA3_TEXT_DEFAULTS = {
    "vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "sliding_window": 4096,
    "sliding_window_pattern": 6, "max_position_embeddings": 131072, "attention_bias": False,
}
SIGLIP_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                   "num_attention_heads": 12, "image_size": 224, "patch_size": 16, "num_channels": 3,
                   "vision_use_head": True}
MISTRAL_DEFAULTS = {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                    "head_dim": 128, "sliding_window": 4096, "max_position_embeddings": 131072}
PIXTRAL_DEFAULTS = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                    "num_attention_heads": 16, "head_dim": 64, "image_size": 1024, "patch_size": 16,
                    "num_channels": 3}
MLLAMA_VISION_DEFAULTS = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                          "num_global_layers": 8, "attention_heads": 16, "image_size": 448, "patch_size": 14,
                          "num_channels": 3, "max_num_tiles": 4, "vision_output_dim": 7680,
                          "supported_aspect_ratios": [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1],
                                                      [4, 1]]}
LLAMA4_TEXT_DEFAULTS = {"vocab_size": 202048, "hidden_size": 5120, "intermediate_size": 8192,
                        "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
                        "num_key_value_heads": 8, "head_dim": 128, "num_local_experts": 16,
                        "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "attention_chunk_size": 8192,
                        "max_position_embeddings": 131072, "attention_bias": False}
LLAMA4_MAX_PATCHES = 16  # Llama4ImageProcessorFast's max_patches (transformers 4.57; Scout's preprocessor_config)
LLAMA4_VISION_DEFAULTS = {"hidden_size": 768, "intermediate_size": 5632, "num_hidden_layers": 34,
                          "num_attention_heads": 16, "image_size": 448, "patch_size": 14, "num_channels": 3,
                          "vision_output_dim": 7680, "projector_input_dim": 4096, "projector_output_dim": 4096,
                          "pixel_shuffle_ratio": 0.5}


def _vit_layer(inv: Inventory, p: str, d: int, inter: int, heads: int, qkv_bias: bool, o_name: str,
               mlp: str, mlp_bias: bool, norms: tuple[str, ...], norm_bias: bool,
               attn: str = "self_attn", ffn: str = "mlp") -> None:
    """One vision-encoder block (no KV cache: the encoder runs once per image)."""
    attention(inv, f"{p}.{attn}", None, d, heads, heads, d // heads, qkv_bias, qkv_bias, o_name=o_name,
              role="vision")
    if mlp == "gated":
        gated_mlp(inv, f"{p}.{ffn}", None, d, inter, mlp_bias, role="vision")
    else:
        plain_mlp(inv, f"{p}.{ffn}", None, d, inter, mlp_bias, role="vision")
    for norm in norms:
        inv.norm(f"{p}.{norm}", d, None, norm_bias, role="vision")


def _merge(text: Built, tower: Inventory, notes: list[str]) -> Built:
    text.inv.tensors = tower.tensors + text.inv.tensors
    text.notes.extend(notes)
    return text


def build_gemma3(cfg: Config) -> Built:
    """Gemma-3 4B/12B/27B: Gemma-3 text model + SigLIP vision tower + a projection to the text width."""
    tc = cfg.section("text_config", GEMMA3_TEXT_DEFAULTS)
    vc = cfg.section("vision_config", SIGLIP_DEFAULTS)
    text = build_decoder(tc, "gemma3_text", prefix="language_model.model", lm_head="language_model.lm_head",
                         tie=cfg.bool("tie_word_embeddings", default=True))
    d, inter, n = vc.int("hidden_size"), vc.int("intermediate_size"), vc.int("num_hidden_layers")
    patch, channels = vc.int("patch_size"), vc.int("num_channels")
    v = Inventory()
    e = "vision_tower.vision_model.embeddings"
    v.add(f"{e}.patch_embedding.weight", (d, channels, patch, patch), "vision")
    v.add(f"{e}.patch_embedding.bias", (d,), "vision")
    v.add(f"{e}.position_embedding.weight", ((vc.int("image_size") // patch) ** 2, d), "vision")
    for i in range(n):
        _vit_layer(v, f"vision_tower.vision_model.encoder.layers.{i}", d, inter, vc.int("num_attention_heads"),
                   True, "out_proj", "plain", True, ("layer_norm1", "layer_norm2"), True)
    v.norm("vision_tower.vision_model.post_layernorm", d, None, True, role="vision")
    if vc.bool("vision_use_head"):
        h = "vision_tower.vision_model.head"
        v.add(f"{h}.probe", (1, 1, d), "vision")
        v.add(f"{h}.attention.in_proj_weight", (3 * d, d), "vision", 0, True)
        v.add(f"{h}.attention.in_proj_bias", (3 * d,), "vision", 0)
        v.linear(f"{h}.attention.out_proj", d, d, "vision", "row", None, True)
        v.norm(f"{h}.layernorm", d, None, True, role="vision")
        plain_mlp(v, f"{h}.mlp", None, d, inter, True, role="vision")
    v.add("multi_modal_projector.mm_input_projection_weight", (d, tc.int("hidden_size")), "projector")
    v.norm("multi_modal_projector.mm_soft_emb_norm", d, None, role="projector")
    # vLLM's dummy image (gemma3_mm.py 0.19.0): one 896 x 896 crop without pan-and-scan (off by default),
    # 4,096 SigLIP patches pooled 4 x 4 into mm_tokens_per_image embeddings of the text width
    # SigLIP's forward (siglip.py 0.19.0 SiglipEncoder / SiglipEncoderLayer): the encoder's hidden_states_pool
    # holds the embeddings throughout; the attention step adds the residual, LN1 and o_proj outputs (whole), qkv
    # and the attention output (split by TP); the MLP the residual, LN2 output and fc1 / GELU outputs.
    # The prompt holds "\n\n", <start_of_image>, the image tokens, <end_of_image>, "\n\n" (4 more tokens).
    size, tokens = vc.int("image_size"), cfg.int("mm_tokens_per_image", default=256)
    text.vision = VisionInput(1, size, channels, (size // patch) ** 2, d, inter, tokens=tokens,
                              out_width=tc.int("hidden_size"), attention_live=(4, 4), mlp_live=(3, 2),
                              placeholder=tokens + 4)
    return _merge(text, v, ["vision tower (SigLIP) and projector counted separately; loaded by the engine"])


def build_mistral3(cfg: Config) -> Built:
    """Mistral-Small-3.x / Magistral: Mistral text model + Pixtral vision tower + patch-merger projector."""
    tc = cfg.section("text_config", MISTRAL_DEFAULTS)
    vc = cfg.section("vision_config", PIXTRAL_DEFAULTS)
    # The checkpoint stores lm_head (HF safetensors total 24,011,361,280 for Magistral-Small-2509);
    # the text config's own flag decides, as vLLM does.
    text = build_decoder(tc, "mistral", prefix="language_model.model", lm_head="language_model.lm_head",
                         tie=tc.bool("tie_word_embeddings", default=False))
    d, inter, n = vc.int("hidden_size"), vc.int("intermediate_size"), vc.int("num_hidden_layers")
    patch, channels = vc.int("patch_size"), vc.int("num_channels")
    merge = cfg.int("spatial_merge_size", default=2)
    bias = cfg.bool("multimodal_projector_bias", default=False)
    hidden = tc.int("hidden_size")
    v = Inventory()
    v.add("vision_tower.patch_conv.weight", (d, channels, patch, patch), "vision")
    v.norm("vision_tower.ln_pre", d, None, role="vision")
    for i in range(n):
        _vit_layer(v, f"vision_tower.transformer.layers.{i}", d, inter, vc.int("num_attention_heads"), False,
                   "o_proj", "gated", False, ("attention_norm", "ffn_norm"), False,
                   attn="attention", ffn="feed_forward")
    v.norm("multi_modal_projector.norm", d, None, role="projector")
    v.add("multi_modal_projector.patch_merger.merging_layer.weight", (d, d * merge * merge), "projector")
    v.linear("multi_modal_projector.linear_1", hidden, d, "projector", None, None, bias)
    v.linear("multi_modal_projector.linear_2", hidden, hidden, "projector", None, None, bias)
    # vLLM's dummy image (mistral3.py / pixtral.py 0.11.0, 0.19.0): image_size square, a grid of
    # (S - 1) // (patch x merge) + 1 merged tokens per side, each row closed by [IMG_BREAK] / [IMG_END] in the
    # prompt; all images run as one sequence under a block-diagonal mask (PixtralHFVisionModel). At the MLP the
    # patch conv and ln_pre outputs, the residuals and norm outputs (7 D-wide) and gate_up + SiluAndMul (3 x I,
    # split by TP); the attention step holds fewer (qkv, the rotary copies, the output). The mistral-format
    # checkpoint (PixtralForConditionalGeneration) holds one D-wide tensor less and does not split the tower.
    size = vc.int("image_size")
    grid = (size - 1) // (patch * merge) + 1
    text.vision = VisionInput(1, size, channels, (grid * merge) ** 2, d, inter, tokens=grid * grid,
                              out_width=hidden, attention_live=(5, 6), mlp_live=(7, 3),
                              placeholder=grid * (grid + 1), block_mask=True)
    return _merge(text, v, ["vision tower (Pixtral) and projector counted separately; loaded by the engine"])


def build_mllama(cfg: Config) -> Built:
    """Llama-3.2-Vision: a Llama text model with gated cross-attention layers + a tiled ViT (transformers
    `models/mllama/modeling_mllama.py`). Cross-attention layers cache the image tokens' K/V per request."""
    tc = cfg.section("text_config")
    vc = cfg.section("vision_config", MLLAMA_VISION_DEFAULTS)
    hidden, n = tc.int("hidden_size"), tc.int("num_hidden_layers")
    heads = tc.int("num_attention_heads")
    kv_heads = tc.int("num_key_value_heads", default=heads)
    head_dim = hidden // heads
    vocab = tc.int("vocab_size")
    cross = set(tc.int_list("cross_attention_layers", default=[]))
    d, patch, tiles = vc.int("hidden_size"), vc.int("patch_size"), vc.int("max_num_tiles")
    patches = (vc.int("image_size") // patch) ** 2 + 1  # + class token
    encoder_tokens = tiles * patches

    inv = Inventory()
    # Eight extra rows in the input embedding hold the image special tokens.
    inv.embedding("language_model.model.embed_tokens.weight", vocab + 8, hidden)
    for i in range(n):
        p = f"language_model.model.layers.{i}"
        if i in cross:
            attention(inv, f"{p}.cross_attn", i, hidden, heads, kv_heads, head_dim)
            inv.norm(f"{p}.cross_attn.q_norm", head_dim, i)
            inv.norm(f"{p}.cross_attn.k_norm", head_dim, i)
            inv.add(f"{p}.cross_attn_attn_gate", (1,), "attention", None, False, i)
            inv.add(f"{p}.cross_attn_mlp_gate", (1,), "mlp", None, False, i)
            kv = CrossAttentionKV(kv_heads, head_dim, encoder_tokens)
        else:
            attention(inv, f"{p}.self_attn", i, hidden, heads, kv_heads, head_dim)
            kv = attention_kv("full_attention", kv_heads, head_dim, None)
        gated_mlp(inv, f"{p}.mlp", i, hidden, tc.int("intermediate_size"))
        inv.norm(f"{p}.input_layernorm", hidden, i)
        inv.norm(f"{p}.post_attention_layernorm", hidden, i)
        inv.layers.append(LayerSpec(i, kv, "cross_attention+mlp" if i in cross else "attention+mlp"))
    tie = tc.bool("tie_word_embeddings", default=False)
    inv.head("language_model.model.norm", "language_model.lm_head", vocab, hidden, tie)

    v = Inventory()
    ratios = len(vc.list("supported_aspect_ratios")) + 1
    inter, vheads = vc.int("intermediate_size"), vc.int("attention_heads", "num_attention_heads")
    m = "vision_model"
    v.add(f"{m}.class_embedding", (d,), "vision")
    v.add(f"{m}.patch_embedding.weight", (d, vc.int("num_channels"), patch, patch), "vision")
    v.add(f"{m}.gated_positional_embedding.gate", (1,), "vision")
    v.add(f"{m}.gated_positional_embedding.embedding", (patches, d), "vision")
    v.add(f"{m}.gated_positional_embedding.tile_embedding.weight", (ratios, tiles * patches * d), "vision")
    for name in ("pre_tile_positional_embedding", "post_tile_positional_embedding"):
        v.add(f"{m}.{name}.gate", (1,), "vision")
        v.add(f"{m}.{name}.embedding.weight", (ratios, tiles * d), "vision")
    v.norm(f"{m}.layernorm_pre", d, None, True, role="vision")
    v.norm(f"{m}.layernorm_post", d, None, True, role="vision")
    norms = ("input_layernorm", "post_attention_layernorm")
    for i in range(vc.int("num_hidden_layers")):
        _vit_layer(v, f"{m}.transformer.layers.{i}", d, inter, vheads, False, "o_proj", "plain", True, norms, True)
    for i in range(vc.int("num_global_layers")):
        p = f"{m}.global_transformer.layers.{i}"
        _vit_layer(v, p, d, inter, vheads, False, "o_proj", "plain", True, norms, True)
        v.add(f"{p}.gate_attn", (1,), "vision")
        v.add(f"{p}.gate_ffn", (1,), "vision")
    v.linear("multi_modal_projector", hidden, vc.int("vision_output_dim"), "projector", None, None, True)
    built = Built(inv, heads, kv_heads, context_length(tc), tie, rope=rope_tables(tc, head_dim),
                  notes=[f"{len(cross)} cross-attention layers hold {encoder_tokens} image tokens of K/V per "
                         "request (max tiles x patches)"],
                  vision=VisionInput(tiles, vc.int("image_size"), vc.int("num_channels"), patches, d, inter,
                                     tokens=encoder_tokens, out_width=hidden))
    return _merge(built, v, ["vision tower (tiled ViT) and projector counted separately; loaded by the engine"])


def build_llama4(cfg: Config) -> Built:
    """Llama-4 Scout/Maverick: MoE text model with chunked local attention on RoPE layers (every fourth
    layer is global NoPE attention) + a ViT with a pixel-shuffle adapter (transformers `models/llama4`)."""
    tc = cfg.section("text_config", LLAMA4_TEXT_DEFAULTS)
    vc = cfg.section("vision_config", LLAMA4_VISION_DEFAULTS)
    hidden, n = tc.int("hidden_size"), tc.int("num_hidden_layers")
    heads = tc.int("num_attention_heads")
    kv_heads = tc.int("num_key_value_heads", default=heads)
    head_dim = tc.int("head_dim", default=hidden // heads)
    vocab = tc.int("vocab_size")
    num, top_k = tc.int("num_local_experts"), tc.int("num_experts_per_tok")
    step = tc.int("interleave_moe_layer_step")
    bias = tc.bool("attention_bias")
    chunk = tc.opt_int("attention_chunk_size")
    if "layer_types" in tc:
        types = layer_types(tc, n)
    else:  # no_rope_layers[i] == 1: RoPE layer, chunked when a chunk size is set; 0: global NoPE layer
        rope = tc.int_list("no_rope_layers", default=None) or [int((i + 1) % 4 != 0) for i in range(n)]
        types = ["chunked_attention" if rope[i] and chunk else "full_attention" for i in range(n)]

    inv = Inventory()
    inv.embedding("language_model.model.embed_tokens.weight", vocab, hidden)
    moe = None
    for i in range(n):
        p = f"language_model.model.layers.{i}"
        attention(inv, f"{p}.self_attn", i, hidden, heads, kv_heads, head_dim, bias, bias)
        if (i + 1) % step == 0:
            inter = tc.int("intermediate_size")
            router(inv, f"{p}.feed_forward.router", i, num, hidden)
            experts(inv, f"{p}.feed_forward", i, num, hidden, inter)
            gated_mlp(inv, f"{p}.feed_forward.shared_expert", i, hidden, inter, role="shared_experts")
            moe = moe_info(num, top_k, 1)
            block = "attention+moe"
        else:
            gated_mlp(inv, f"{p}.feed_forward", i, hidden, tc.int("intermediate_size_mlp"))
            block = "attention+mlp"
        inv.norm(f"{p}.input_layernorm", hidden, i)
        inv.norm(f"{p}.post_attention_layernorm", hidden, i)
        inv.layers.append(LayerSpec(i, attention_kv(types[i], kv_heads, head_dim, chunk), block))
    tie = tc.bool("tie_word_embeddings", default=False)
    inv.head("language_model.model.norm", "language_model.lm_head", vocab, hidden, tie)

    d, inter, patch = vc.int("hidden_size"), vc.int("intermediate_size"), vc.int("patch_size")
    v = Inventory()
    m = "vision_model"
    v.add(f"{m}.class_embedding", (d,), "vision")
    v.add(f"{m}.positional_embedding_vlm", ((vc.int("image_size") // patch) ** 2 + 1, d), "vision")
    v.linear(f"{m}.patch_embedding.linear", d, vc.int("num_channels") * patch * patch, "vision", "column", None)
    v.norm(f"{m}.layernorm_pre", d, None, True, role="vision")
    v.norm(f"{m}.layernorm_post", d, None, True, role="vision")
    for i in range(vc.int("num_hidden_layers")):
        _vit_layer(v, f"{m}.model.layers.{i}", d, inter, vc.int("num_attention_heads"), True, "o_proj", "plain",
                   True, ("input_layernorm", "post_attention_layernorm"), True)
    proj_in, proj_out = vc.int("projector_input_dim"), vc.int("projector_output_dim")
    v.linear(f"{m}.vision_adapter.mlp.fc1", proj_in, inter, "vision", "column", None)
    v.linear(f"{m}.vision_adapter.mlp.fc2", proj_out, proj_out, "vision", "row", None)
    v.linear("multi_modal_projector.linear_1", hidden, vc.int("vision_output_dim"), "projector", None, None)
    notes = [f"chunked local attention: RoPE layers keep at most {chunk} tokens per request"] if chunk else []
    # vLLM's dummy image (mllama4.py 0.19.0 get_image_size_with_most_features): max_patches tiles (16, the HF
    # image processor's default and Scout's preprocessor_config) of image_size, plus the global tile; pixel
    # shuffle at pixel_shuffle_ratio leaves (S / patch)^2 x ratio^2 patch tokens per tile (the separators and
    # image start / end are text tokens). Its forward (Llama4VisionEncoderLayer, llama4_vision_rope.py
    # forward_native): at the rotary step the model's layernorm_pre output, the layer input and LN1 output
    # (whole), qkv and q / k copies in fp32, complex64 and back (13 D-wide, split by TP); the MLP holds four
    # D-wide states and fc1 / GELU outputs. The processor returns bf16 pixels.
    size, ratio = vc.int("image_size"), vc.raw("pixel_shuffle_ratio")
    if not isinstance(ratio, int | float) or not 0 < ratio <= 1:
        raise ConfigError(f"{vc.where} pixel_shuffle_ratio {ratio!r} is not a number in (0, 1]: fix the config")
    tiles, grid = LLAMA4_MAX_PATCHES + 1, (size // patch) ** 2
    embeds = tiles * round(grid * ratio * ratio)
    vision = VisionInput(tiles, size, vc.int("num_channels"), grid + 1, d, inter, tokens=embeds, out_width=hidden,
                         attention_live=(3, 13), mlp_live=(4, 2), pixels_fp32=False,
                         placeholder=embeds + tiles + 2)  # tile separators, image start / <|image|> / end
    built = Built(inv, heads, kv_heads, context_length(tc), tie, moe, notes, rope_tables(tc, head_dim),
                  vision=vision)
    return _merge(built, v, ["vision tower and projector counted separately; loaded by the engine"])
