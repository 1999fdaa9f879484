"""Speculative-decoding heads as vLLM builds them from a drafter's config.

An EAGLE or EAGLE-3 checkpoint's config reads like a small Llama (model_type llama, one or a few decoder
layers), but the engine does not build a Llama from it: it builds the EAGLE head, which reuses the target's
embedding (and, for EAGLE-1, its lm_head) and adds a projection that mixes the target's hidden states in. These
functions turn the drafter's spec, loaded as the plain decoder its config describes, into the head the engine
holds, so its weights and KV layers are counted as loaded.
"""

from __future__ import annotations

from dataclasses import replace

from kvplan.errors import UnsupportedModelError
from kvplan.model.spec import ModelSpec, Tensor


def eagle_head(draft: ModelSpec, target: ModelSpec, eagle3: bool) -> tuple[ModelSpec, list[str]]:
    """The EAGLE (`eagle3` False) or EAGLE-3 head vLLM builds from `draft`, and notes saying what it shares.

    EAGLE-1 (model_executor/models/llama_eagle.py 0.19.0): the decoder layers, the first without its input
    norm (nn.Identity); `fc` = ReplicatedLinear(2 x hidden -> hidden) over the token embedding concatenated with
    the target's hidden state; no final norm; no lm_head of its own (v1/spec_decode/eagle.py _maybe_share_lm_head
    shares the target's).
    EAGLE-3 (llama_eagle3.py 0.19.0): the first layer's qkv_proj reads 2 x hidden (embedding and hidden state),
    each layer adds `hidden_norm`; `fc` = ReplicatedLinear(3 x target hidden -> hidden) over three of the
    target's hidden states (use_aux_hidden_state, on unless the config's eagle_config turns it off); the final
    norm; its own lm_head over draft_vocab_size rows (the target's when the checkpoint has none or an identical
    one).
    Both: the embedding is the target's whenever the checkpoint has none or an identical one
    (_maybe_share_embeddings, PP 1), which is how the published heads ship; a distinct one is not modelled.
    """
    hidden = draft.hidden_size
    if hidden != target.hidden_size:
        raise UnsupportedModelError(f"the {'EAGLE-3' if eagle3 else 'EAGLE'} head's hidden size ({hidden:,}) differs "
                                    f"from the target's ({target.hidden_size:,}): kvplan models heads that share "
                                    "the target's embedding; give the head's own config (a one- or two-layer "
                                    "checkpoint trained for this target)")
    first = draft.layers[0].index if draft.layers else 0
    tensors: list[Tensor] = []
    for t in draft.tensors:
        if t.role == "embedding":
            continue  # the target's embedding, shared
        if not eagle3 and (t.role == "lm_head" or (t.layer is None and t.role == "norm")):
            continue  # EAGLE-1: the target's lm_head; no final norm
        if not eagle3 and t.layer == first and t.name.endswith("input_layernorm.weight"):
            continue  # EAGLE-1: the first layer's input norm is nn.Identity
        if eagle3 and t.layer == first and t.role == "attention" and _is_qkv(t):
            t = replace(t, shape=(t.shape[0], 2 * t.shape[1]))  # reads [embedding, hidden state]
        tensors.append(t)
        if eagle3 and t.layer is not None and t.name.endswith("post_attention_layernorm.weight"):
            tensors.append(Tensor(t.name.replace("post_attention_layernorm", "hidden_norm"), (hidden,), "norm",
                                  None, False, t.layer))
    fc_in = (3 * target.hidden_size) if eagle3 else 2 * hidden
    tensors.append(Tensor("model.fc.weight", (hidden, fc_in), "other", None, True, None))
    kind = "EAGLE-3" if eagle3 else "EAGLE"
    notes = [f"the {kind} head shares the target's token embedding"
             + ("" if eagle3 else " and lm_head")
             + f" (vLLM v1/spec_decode/eagle.py 0.19.0); its fc mixes {'three of ' if eagle3 else ''}the "
             f"target's hidden states in ({fc_in:,} -> {hidden:,})"]
    head = replace(draft, name=f"{draft.name} ({kind} head)", tensors=tuple(tensors), tie_word_embeddings=False)
    return head, notes


def _is_qkv(t: Tensor) -> bool:
    return any(t.name.endswith(f"{p}.weight") for p in ("q_proj", "k_proj", "v_proj", "qkv_proj"))
