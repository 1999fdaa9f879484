"""The model as kvplan sees it: an inventory of tensors and one KV-cache spec per decoder layer.

Everything downstream (deployment, budget, capacity) reads only these types, never a config.json.
The KV specs follow vLLM's `vllm/v1/kv_cache_interface.py`: each layer kind knows its own bytes per token
and per request, so sliding windows, MLA, Mamba state and cross-attention are never forced into one formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from kvplan.errors import InputError

if TYPE_CHECKING:
    from kvplan.model.checkpoint import Checkpoint
    from kvplan.model.quant import WeightFormat

Role = Literal[
    "embedding", "attention", "mlp", "experts", "shared_experts", "router", "norm", "lm_head",
    "ssm", "vision", "audio", "projector", "other",
]
# Report order of the parameter breakdown.
ROLES: tuple[Role, ...] = (
    "embedding", "attention", "mlp", "experts", "shared_experts", "router", "ssm", "norm", "lm_head",
    "vision", "projector", "audio", "other",
)
# Parts of a multimodal checkpoint that are not the language model.
TOWER_ROLES = frozenset({"vision", "audio", "projector"})


@dataclass(frozen=True, slots=True)
class Tensor:
    """One stored tensor (or one fused group, e.g. all experts of a layer as shape (E, out, in)).

    `shape` is (out, in) for linear weights, (E, out, in) for stacked experts.
    `split` is the dimension tensor parallelism divides (None: replicated on every rank).
    `linear` marks a matmul weight that weight quantization applies to.
    `layer` is the decoder layer (None outside the layer stack); pipeline parallelism assigns by it.
    """

    name: str
    shape: tuple[int, ...]
    role: Role
    split: int | None = None
    linear: bool = False
    layer: int | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def module(self) -> str:
        """The module path quantization configs name (`model.layers.0.mlp.gate` for `...gate.weight`)."""
        for suffix in (".weight", ".bias"):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name

    def shard_shape(self, tp: int) -> tuple[int, ...]:
        """Shape held by one of `tp` ranks (ceil division: a padded shard is never smaller)."""
        if self.split is None or tp == 1:
            return self.shape
        dims = list(self.shape)
        dims[self.split] = -(-dims[self.split] // tp)
        return tuple(dims)


# ---------------------------------------------------------------------------------------------- KV specs


def heads_per_rank(num_kv_heads: int, tp: int) -> int:
    """KV heads one TP rank holds: split evenly, never below one (replicated when TP > heads).

    Mirrors vLLM `ModelConfig.get_num_kv_heads`: max(1, total_num_kv_heads // tp), after checking that
    heads divide TP or TP divides heads.
    """
    if num_kv_heads >= tp:
        if num_kv_heads % tp:
            raise InputError(
                f"tensor parallel size {tp} does not divide the {num_kv_heads} KV heads: "
                f"choose a TP that divides {num_kv_heads}"
            )
        return num_kv_heads // tp
    if tp % num_kv_heads:
        raise InputError(
            f"tensor parallel size {tp} is not a multiple of the {num_kv_heads} KV heads: "
            f"choose a TP that divides or is a multiple of {num_kv_heads}"
        )
    return 1


class _KVBase:
    """Protocol shared by the layer specs.

    bytes_per_token(kv_bytes, tp): cache growth per token held, on one TP rank.
    tokens_held(seq): how many of a request's `seq` tokens the layer keeps.
    state_bytes(kv_bytes, state_bytes, tp): constant bytes per request on one rank (Mamba state, encoder KV).
    """

    __slots__ = ()

    def bytes_per_token(self, kv_bytes: float, tp: int = 1) -> float:
        return 0.0

    def tokens_held(self, seq: int) -> int:
        return 0

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        return 0


@dataclass(frozen=True, slots=True)
class AttentionKV(_KVBase):
    """Full attention (MHA / GQA / MQA), or attention to the last `window` tokens only.

    `chunked` marks Llama-4's chunked local attention: a request keeps at most one chunk of `window` tokens.
    """

    num_kv_heads: int
    head_dim: int
    v_head_dim: int
    window: int | None = None
    chunked: bool = False

    @property
    def kind(self) -> str:
        if not self.window:
            return "full_attention"
        return "chunked_local_attention" if self.chunked else "sliding_window"

    def bytes_per_token(self, kv_bytes: float, tp: int = 1) -> float:
        return heads_per_rank(self.num_kv_heads, tp) * (self.head_dim + self.v_head_dim) * kv_bytes

    def tokens_held(self, seq: int) -> int:
        return min(seq, self.window) if self.window else seq

    def describe(self) -> str:
        k = f"{self.num_kv_heads} KV heads x (K {self.head_dim} + V {self.v_head_dim})"
        return f"{k}, window {self.window}" if self.window else k


@dataclass(frozen=True, slots=True)
class MLAKV(_KVBase):
    """Multi-head latent attention (DeepSeek-V2/V3): one compressed latent + the RoPE key, no factor 2.

    The latent is the same on every TP rank (replicated, not split).
    """

    kv_lora_rank: int
    qk_rope_head_dim: int
    kind: str = "mla"

    def bytes_per_token(self, kv_bytes: float, tp: int = 1) -> float:
        return (self.kv_lora_rank + self.qk_rope_head_dim) * kv_bytes

    def tokens_held(self, seq: int) -> int:
        return seq

    def describe(self) -> str:
        return f"latent {self.kv_lora_rank} + rope {self.qk_rope_head_dim}"


def _divide(n: int, tp: int, what: str) -> int:
    if n % tp:
        raise InputError(f"tensor parallel size {tp} does not divide the {n} {what}: choose a TP that divides {n}")
    return n // tp


class _RecurrentState(_KVBase):
    """A state per request: conv elements in the state dtype, SSM elements in `ssm_bytes` when pinned."""

    __slots__ = ()

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        conv, ssm = self.elems(tp)  # type: ignore[attr-defined]
        return round(conv * state_bytes + ssm * (self.ssm_bytes or state_bytes))  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Mamba1State(_RecurrentState):
    """Mamba-1 (Mamba, Falcon-Mamba): conv state (kernel-1) x d_inner, SSM state d_inner x d_state.

    Shapes as vLLM `MambaStateShapeCalculator.mamba1_state_shape`; d_inner is split by TP.
    """

    intermediate: int
    state_size: int
    conv_kernel: int
    ssm_bytes: float | None = None  # None: the state dtype the deployment uses
    kind: str = "mamba"

    def elems(self, tp: int) -> tuple[int, int]:
        d_inner = _divide(self.intermediate, tp, "Mamba channels")
        return (self.conv_kernel - 1) * d_inner, d_inner * self.state_size


    def describe(self) -> str:
        return f"conv ({self.conv_kernel}-1) x {self.intermediate} + ssm {self.intermediate} x {self.state_size}"


@dataclass(frozen=True, slots=True)
class Mamba2State(_RecurrentState):
    """Mamba-2 (Nemotron-H): conv over x, B, C and an SSM state per head.

    Shapes as vLLM `mamba2_state_shape`: groups are replicated up to TP when they do not divide it
    (`extra_groups_for_head_shards`), conv_dim = d_inner + 2 x groups x d_state, split by TP.
    """

    intermediate: int
    n_groups: int
    state_size: int
    num_heads: int
    head_dim: int
    conv_kernel: int
    ssm_bytes: float | None = None
    kind: str = "mamba"

    def elems(self, tp: int) -> tuple[int, int]:
        groups = self.n_groups if self.n_groups % tp == 0 else tp
        conv_dim = self.intermediate + 2 * groups * self.state_size
        conv = (self.conv_kernel - 1) * _divide(conv_dim, tp, "Mamba conv channels")
        ssm = _divide(self.num_heads, tp, "Mamba heads") * self.head_dim * self.state_size
        return conv, ssm


    def describe(self) -> str:
        return (f"conv ({self.conv_kernel}-1) x ({self.intermediate} + 2x{self.n_groups}x{self.state_size})"
                f" + ssm {self.num_heads} heads x {self.head_dim} x {self.state_size}")


@dataclass(frozen=True, slots=True)
class GatedDeltaNetState(_RecurrentState):
    """Gated DeltaNet linear attention (Qwen3-Next): conv over q, k, v and a head_k x head_v state per V head.

    Shapes as vLLM `gated_delta_net_state_shape`.
    """

    num_k_heads: int
    num_v_heads: int
    head_k_dim: int
    head_v_dim: int
    conv_kernel: int
    ssm_bytes: float | None = None
    kind: str = "linear_attention"

    def elems(self, tp: int) -> tuple[int, int]:
        conv_dim = 2 * self.num_k_heads * self.head_k_dim + self.num_v_heads * self.head_v_dim
        conv = (self.conv_kernel - 1) * _divide(conv_dim, tp, "linear-attention conv channels")
        ssm = _divide(self.num_v_heads, tp, "linear-attention V heads") * self.head_k_dim * self.head_v_dim
        return conv, ssm


    def describe(self) -> str:
        return (f"conv ({self.conv_kernel}-1) x (2x{self.num_k_heads}x{self.head_k_dim} + "
                f"{self.num_v_heads}x{self.head_v_dim}) + state {self.num_v_heads} x {self.head_k_dim} x "
                f"{self.head_v_dim}")


@dataclass(frozen=True, slots=True)
class CrossAttentionKV(_KVBase):
    """Cross-attention to encoder outputs (Mllama): a fixed number of encoder tokens per request."""

    num_kv_heads: int
    head_dim: int
    encoder_tokens: int
    kind: str = "cross_attention"

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        return round(self.encoder_tokens * heads_per_rank(self.num_kv_heads, tp) * 2 * self.head_dim * kv_bytes)

    def describe(self) -> str:
        return f"{self.num_kv_heads} KV heads x {self.head_dim}, {self.encoder_tokens} encoder tokens per request"


@dataclass(frozen=True, slots=True)
class NoKV(_KVBase):
    """A layer that keeps nothing per request (an MLP-only or MoE-only block)."""

    kind: str = "none"

    def describe(self) -> str:
        return "no cache"


KVSpec = AttentionKV | MLAKV | Mamba1State | Mamba2State | GatedDeltaNetState | CrossAttentionKV | NoKV


@dataclass(frozen=True, slots=True)
class LayerSpec:
    index: int
    kv: KVSpec
    block: str  # what the layer computes, for the inventory: "attention+mlp", "mamba", "attention+moe", ...


@dataclass(frozen=True, slots=True)
class RopeTable:
    """A precomputed RoPE cos/sin table of [positions, dim]; fp32 when the engine keeps it in float32."""

    positions: int
    dim: int
    fp32: bool = False


@dataclass(frozen=True, slots=True)
class MoE:
    num_experts: int
    experts_per_token: int
    shared_experts: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """A model reduced to what memory depends on."""

    name: str
    source: str
    model_type: str
    tensors: tuple[Tensor, ...]
    layers: tuple[LayerSpec, ...]
    dtype: str  # checkpoint dtype as the config states it: "bfloat16", "float16", "float32"
    num_attention_heads: int | None
    num_kv_heads: int | None
    max_context: int | None = None
    moe: MoE | None = None
    quant: WeightFormat | None = None  # the checkpoint's weight format, when quantized
    tie_word_embeddings: bool = False
    kv_dtype_hint: str | None = None  # a KV dtype the checkpoint was calibrated for (ModelOpt fp8), informational
    notes: tuple[str, ...] = ()
    rope: tuple[RopeTable, ...] = ()  # RoPE tables an engine precomputes (not parameters)
    checkpoint: Checkpoint | None = None  # the stored tensors, when their headers were read

    def with_notes(self, *notes: str) -> ModelSpec:
        return replace(self, notes=self.notes + notes)

    @cached_property
    def derived(self) -> dict:
        """Figures deployments compute from this spec, kept to be shared by deployments that agree on them."""
        return {}

    # ------------------------------------------------------------------ parameters
    @property
    def params(self) -> int:
        return sum(t.numel for t in self.tensors)

    def params_by_role(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.role] = out.get(t.role, 0) + t.numel
        return {r: out[r] for r in ROLES if r in out}

    @cached_property
    def hidden_size(self) -> int:
        """Width of the text model's residual stream: the embedding's columns (not a vision tower's)."""
        return next((t.shape[-1] for t in self.tensors if t.role == "embedding"), 0)

    @cached_property
    def vocab_size(self) -> int:
        """Rows of the output projection (the embedding when tied): the sampler's logits width."""
        head = [t for t in self.tensors if t.role == "lm_head" and t.name.endswith("weight")]
        table = head or [t for t in self.tensors if t.role == "embedding"]
        return table[-1].shape[0] if table else 0

    @property
    def language_params(self) -> int:
        return sum(t.numel for t in self.tensors if t.role not in TOWER_ROLES)

    @property
    def tower_params(self) -> int:
        return self.params - self.language_params

    @property
    def active_params(self) -> int:
        """Parameters one token touches: routed experts count top-k of E."""
        if self.moe is None:
            return self.params
        routed = sum(t.numel for t in self.tensors if t.role == "experts")
        active = routed * self.moe.experts_per_token // self.moe.num_experts
        return self.params - routed + active

    # ------------------------------------------------------------------ KV cache
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def kv_kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in self.layers:
            out[layer.kv.kind] = out.get(layer.kv.kind, 0) + 1
        return out

    def describe_kv(self) -> str:
        parts = []
        for kind, n in self.kv_kinds().items():
            spec = next(layer.kv for layer in self.layers if layer.kv.kind == kind)
            parts.append(f"{n} x {kind} ({spec.describe()})")
        return "; ".join(parts)

