"""The model as kvplan sees it: an inventory of tensors and one KV-cache spec per decoder layer.

Everything downstream (deployment, budget, capacity) reads only these types, never a config.json.
The KV specs follow vLLM's `vllm/v1/kv_cache_interface.py`: each layer kind knows its own bytes per token
and per request, so sliding windows, MLA, Mamba state and cross-attention are never forced into one formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, Literal

from kvplan.errors import InputError

if TYPE_CHECKING:
    from kvplan.model.dims import Dims
    from kvplan.model.quant import WeightFormat
    from kvplan.model.sources.checkpoint import Checkpoint

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
class VisionInput:
    """The largest image an engine's profile feeds a vision tower, and the tower's widths: `tiles` tiles (crops)
    of `image_size` x `image_size` x `channels` pixels, `patches` tower tokens per tile (with any class token),
    the ViT's width D and MLP width I, and what the image yields for the text model: `tokens` embeddings (what
    vLLM V1's encoder budget counts) of width `out_width`.

    What the tower's eager forward keeps alive per patch at its peak, as the family adapter reads the engine's
    forward: `attention_live` = (D-wide tensors whole on every rank, D-wide tensors split over TP) at the
    attention step, `mlp_live` = (D-wide tensors, I-wide tensors split over TP) in the MLP. `pixels_fp32`: the
    HF image processor hands over fp32 pixels (engines that cast them keep the model dtype instead).
    `placeholder`: the prompt tokens one image takes, separators included (some releases budget by it);
    `block_mask`: the tower joins all images into one sequence under a block-diagonal attention mask (Pixtral)."""

    tiles: int
    image_size: int
    channels: int
    patches: int
    hidden: int
    intermediate: int
    tokens: int
    out_width: int
    attention_live: tuple[int, int] = (3, 4)
    mlp_live: tuple[int, int] = (2, 2)
    pixels_fp32: bool = True
    placeholder: int = 0
    block_mask: bool = False

    @property
    def prompt_tokens(self) -> int:
        """The prompt tokens one image takes (its embeddings when no separators were counted)."""
        return max(self.placeholder, self.tokens)

    @property
    def padded_patches(self) -> int:
        """Patches per tile padded to a multiple of 8, as Mllama's tower pads them before its layers."""
        return -(-self.patches // 8) * 8


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


class Retention(StrEnum):
    """Which of a request's tokens a layer keeps, engine-neutral; each engine maps it onto its own pages."""

    FULL = "full"  # every token
    SLIDING = "sliding"  # the last `window` tokens
    CHUNKED = "chunked"  # at most one chunk of `window` tokens (Llama-4 chunked local attention)
    STATE = "state"  # a constant state per request (Mamba, linear attention), no per-token cache
    ENCODER = "encoder"  # a fixed number of encoder tokens per request (cross-attention)
    NONE = "none"  # nothing per request

    @property
    def uses_rope(self) -> bool:
        """Self-attention over the request's own tokens (the layers RoPE tables serve)."""
        return self in SELF_ATTENTION


SELF_ATTENTION = frozenset({Retention.FULL, Retention.SLIDING, Retention.CHUNKED})


class _KVBase:
    """What every layer spec answers, engine-neutral. Subclasses set `kind` and `retention` and implement
    every method below that raises: a spec that forgets one fails loudly instead of counting 0 bytes.

    k_width(tp), v_width(tp): elements of K and V per cached token on one TP rank.
    bytes_per_token(kv_bytes, tp): cache growth per token held, on one TP rank.
    tokens_held(seq): how many of a request's `seq` tokens the layer keeps.
    state_bytes(kv_bytes, state_bytes, tp): constant bytes per request on one rank (Mamba state, encoder KV).
    """

    __slots__ = ()
    kind: ClassVar[str]
    retention: ClassVar[Retention]
    window: int | None = None  # tokens a windowed layer keeps (sliding, chunked); None otherwise

    def _missing(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} does not define {what}")

    def k_width(self, tp: int = 1) -> int:
        raise self._missing("k_width")

    def v_width(self, tp: int = 1) -> int:
        raise self._missing("v_width")

    def bytes_per_token(self, kv_bytes: float, tp: int = 1) -> float:
        if self.retention in (Retention.STATE, Retention.ENCODER, Retention.NONE):
            return 0.0
        return (self.k_width(tp) + self.v_width(tp)) * kv_bytes

    def tokens_held(self, seq: int) -> int:
        raise self._missing("tokens_held")

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        raise self._missing("state_bytes")

    def describe(self) -> str:
        raise self._missing("describe")

    def explain(self, n: int, kv_bytes: float, state_bytes: float, tp: int) -> str:
        """The derivation line of `n` such layers."""
        raise self._missing("explain")


@dataclass(frozen=True, slots=True)
class AttentionKV(_KVBase):
    """Full attention (MHA / GQA / MQA): every token of the request is cached."""

    num_kv_heads: int
    head_dim: int
    v_head_dim: int
    kind: ClassVar[str] = "full_attention"
    retention: ClassVar[Retention] = Retention.FULL

    def k_width(self, tp: int = 1) -> int:
        return heads_per_rank(self.num_kv_heads, tp) * self.head_dim

    def v_width(self, tp: int = 1) -> int:
        return heads_per_rank(self.num_kv_heads, tp) * self.v_head_dim

    def bytes_per_token(self, kv_bytes: float, tp: int = 1) -> float:  # (k_width + v_width) x bytes, in one step
        return heads_per_rank(self.num_kv_heads, tp) * (self.head_dim + self.v_head_dim) * kv_bytes

    def tokens_held(self, seq: int) -> int:
        return seq

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        return 0

    def describe(self) -> str:
        return f"{self.num_kv_heads} KV heads x (K {self.head_dim} + V {self.v_head_dim})"

    def _held(self) -> str:
        return "every token"

    def explain(self, n: int, kv_bytes: float, state_bytes: float, tp: int) -> str:
        heads = heads_per_rank(self.num_kv_heads, tp)
        split = f" (max(1, {self.num_kv_heads} / TP {tp}))" if tp > 1 else ""
        return (f"{n} {self.kind} layers x {heads} KV heads{split} x (K {self.head_dim} + V {self.v_head_dim}) x "
                f"{kv_bytes:g} B = {n * self.bytes_per_token(kv_bytes, tp):,.0f} B per token, holding {self._held()}")


@dataclass(frozen=True, slots=True)
class SlidingWindowKV(AttentionKV):
    """Attention to the last `window` tokens only."""

    window: int  # type: ignore[assignment]
    kind: ClassVar[str] = "sliding_window"
    retention: ClassVar[Retention] = Retention.SLIDING

    def tokens_held(self, seq: int) -> int:
        return min(seq, self.window)

    def describe(self) -> str:
        return f"{self.num_kv_heads} KV heads x (K {self.head_dim} + V {self.v_head_dim}), window {self.window}"

    def _held(self) -> str:
        return f"the last {self.window:,} tokens"


@dataclass(frozen=True, slots=True)
class ChunkedLocalKV(SlidingWindowKV):
    """Llama-4's chunked local attention: a request keeps at most one chunk of `window` tokens."""

    kind: ClassVar[str] = "chunked_local_attention"
    retention: ClassVar[Retention] = Retention.CHUNKED

    def _held(self) -> str:
        return f"at most one chunk of {self.window:,} tokens"


@dataclass(frozen=True, slots=True)
class MLAKV(_KVBase):
    """Multi-head latent attention (DeepSeek-V2/V3): one compressed latent + the RoPE key, no factor 2.

    The latent is the same on every TP rank (replicated, not split).
    """

    kv_lora_rank: int
    qk_rope_head_dim: int
    kind: ClassVar[str] = "mla"
    retention: ClassVar[Retention] = Retention.FULL

    def k_width(self, tp: int = 1) -> int:
        return self.kv_lora_rank + self.qk_rope_head_dim

    def v_width(self, tp: int = 1) -> int:
        return 0

    def tokens_held(self, seq: int) -> int:
        return seq

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        return 0

    def describe(self) -> str:
        return f"latent {self.kv_lora_rank} + rope {self.qk_rope_head_dim}"

    def explain(self, n: int, kv_bytes: float, state_bytes: float, tp: int) -> str:
        return (f"{n} MLA layers x (latent {self.kv_lora_rank} + rope {self.qk_rope_head_dim}) x {kv_bytes:g} B = "
                f"{n * self.bytes_per_token(kv_bytes, tp):,.0f} B per token (one copy, replicated on every TP rank)")


def _divide(n: int, tp: int, what: str) -> int:
    if n % tp:
        raise InputError(f"tensor parallel size {tp} does not divide the {n} {what}: choose a TP that divides {n}")
    return n // tp


class _RecurrentState(_KVBase):
    """A state per request: conv elements in the state dtype, SSM elements in `ssm_bytes` when pinned."""

    __slots__ = ()
    retention: ClassVar[Retention] = Retention.STATE

    def elems(self, tp: int) -> tuple[int, int]:
        raise self._missing("elems")

    def k_width(self, tp: int = 1) -> int:
        return 0

    def v_width(self, tp: int = 1) -> int:
        return 0

    def tokens_held(self, seq: int) -> int:
        return 0

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        conv, ssm = self.elems(tp)
        return round(conv * state_bytes + ssm * (self.ssm_bytes or state_bytes))  # type: ignore[attr-defined]

    def explain(self, n: int, kv_bytes: float, state_bytes: float, tp: int) -> str:
        state = self.state_bytes(kv_bytes, state_bytes, tp)
        return f"{n} {self.kind} layers x state ({self.describe()}) = {n * state:,.0f} B per request, constant"


@dataclass(frozen=True, slots=True)
class Mamba1State(_RecurrentState):
    """Mamba-1 (Mamba, Falcon-Mamba): conv state (kernel-1) x d_inner, SSM state d_inner x d_state.

    Shapes as vLLM `MambaStateShapeCalculator.mamba1_state_shape`; d_inner is split by TP.
    """

    intermediate: int
    state_size: int
    conv_kernel: int
    ssm_bytes: float | None = None  # None: the state dtype the deployment uses
    kind: ClassVar[str] = "mamba"

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
    kind: ClassVar[str] = "mamba"

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
    kind: ClassVar[str] = "linear_attention"

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
    """Cross-attention to encoder outputs (Mllama): a fixed number of encoder tokens per request; the widths are
    per encoder token."""

    num_kv_heads: int
    head_dim: int
    encoder_tokens: int
    kind: ClassVar[str] = "cross_attention"
    retention: ClassVar[Retention] = Retention.ENCODER

    def k_width(self, tp: int = 1) -> int:
        return heads_per_rank(self.num_kv_heads, tp) * self.head_dim

    def v_width(self, tp: int = 1) -> int:
        return heads_per_rank(self.num_kv_heads, tp) * self.head_dim

    def tokens_held(self, seq: int) -> int:
        return 0

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        return round(self.encoder_tokens * (self.k_width(tp) + self.v_width(tp)) * kv_bytes)

    def describe(self) -> str:
        return f"{self.num_kv_heads} KV heads x {self.head_dim}, {self.encoder_tokens} encoder tokens per request"

    def explain(self, n: int, kv_bytes: float, state_bytes: float, tp: int) -> str:
        state = self.state_bytes(kv_bytes, state_bytes, tp)
        return (f"{n} cross-attention layers x {self.encoder_tokens:,} image tokens x 2 x {self.num_kv_heads} KV "
                f"heads x {self.head_dim} x {kv_bytes:g} B = {n * state:,.0f} B per request")


@dataclass(frozen=True, slots=True)
class NoKV(_KVBase):
    """A layer that keeps nothing per request (an MLP-only or MoE-only block)."""

    kind: ClassVar[str] = "none"
    retention: ClassVar[Retention] = Retention.NONE

    def k_width(self, tp: int = 1) -> int:
        return 0

    def v_width(self, tp: int = 1) -> int:
        return 0

    def tokens_held(self, seq: int) -> int:
        return 0

    def state_bytes(self, kv_bytes: float, state_bytes: float, tp: int = 1) -> int:
        return 0

    def describe(self) -> str:
        return "no cache"

    def explain(self, n: int, kv_bytes: float, state_bytes: float, tp: int) -> str:
        return f"{n} layers without attention: no cache"


def attention_spec(num_kv_heads: int, head_dim: int, v_head_dim: int, window: int | None = None,
                 chunked: bool = False) -> AttentionKV:
    """The attention spec for a layer: full, sliding-window or (Llama-4) chunked local."""
    if not window:
        return AttentionKV(num_kv_heads, head_dim, v_head_dim)
    if chunked:
        return ChunkedLocalKV(num_kv_heads, head_dim, v_head_dim, window)
    return SlidingWindowKV(num_kv_heads, head_dim, v_head_dim, window)


KVSpec = (AttentionKV | SlidingWindowKV | ChunkedLocalKV | MLAKV | Mamba1State | Mamba2State | GatedDeltaNetState
          | CrossAttentionKV | NoKV)


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


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A model reduced to what memory depends on. Compared and hashed by identity: caches of figures derived
    from a spec (kvplan.deployment) key on the object."""

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
    dims: Dims | None = None  # the text model's canonical dimensions, read from the config (kvplan.model.dims)
    checkpoint: Checkpoint | None = None  # the stored tensors, when their headers were read
    mtp: ModelSpec | None = None  # the multi-token-prediction layers the checkpoint stores (speculative decoding)
    vision: VisionInput | None = None  # the vision tower's largest profiling input (multimodal models)
    own_tensors: int | None = None  # with a draft added (with_draft): how many of `tensors` are the model's own

    def unquantized(self) -> ModelSpec:
        """The same architecture as an unquantized checkpoint (its stored tensors not known)."""
        return replace(self, quant=None, checkpoint=None)

    def with_notes(self, *notes: str) -> ModelSpec:
        return replace(self, notes=self.notes + notes)

    def with_draft(self, draft: ModelSpec, label: str) -> ModelSpec:
        """This model with a speculative-decoding drafter loaded beside it, as the engine serves the two: the
        draft's tensors and KV layers appended, its layers numbered after this model's (MTP layers, numbered
        after the decoder stack in the checkpoint, keep their numbers). Dimensions, context, head and sampler
        stay this model's; the checkpoint correction stays computed over this model's own tensors."""
        offset = self.num_layers - (draft.layers[0].index if draft.layers else 0)
        tensors = tuple(t if t.layer is None else replace(t, layer=t.layer + offset) for t in draft.tensors)
        layers = tuple(replace(layer, index=layer.index + offset) for layer in draft.layers)
        return replace(self, name=f"{self.name} + {label}", tensors=self.tensors + tensors,
                       layers=self.layers + layers, own_tensors=len(self.tensors), mtp=None)

    @property
    def model_tensors(self) -> tuple[Tensor, ...]:
        """The model's own tensors (without a drafter added by with_draft)."""
        return self.tensors if self.own_tensors is None else self.tensors[:self.own_tensors]

    # ------------------------------------------------------------------ parameters
    # (sums over the tensors, cached: a spec is immutable, and catalog specs live as long as the process)
    @cached_property
    def params(self) -> int:
        return sum(self._role_params.values())

    def params_by_role(self) -> dict[str, int]:
        return {r: self._role_params[r] for r in ROLES if r in self._role_params}

    @cached_property
    def _role_params(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.role] = out.get(t.role, 0) + t.numel
        return out

    @cached_property
    def hidden_size(self) -> int:
        """Width of the text model's residual stream (`dims.hidden`; else the embedding's columns)."""
        if self.dims is not None and self.dims.hidden:
            return self.dims.hidden
        return next((t.shape[-1] for t in self.tensors if t.role == "embedding"), 0)

    @cached_property
    def vocab_size(self) -> int:
        """Rows of the output projection (the embedding when tied): the sampler's logits width."""
        head = [t for t in self.model_tensors if t.role == "lm_head" and t.name.endswith("weight")]
        table = head or [t for t in self.model_tensors if t.role == "embedding"]
        return table[-1].shape[0] if table else 0

    @cached_property
    def language_params(self) -> int:
        return sum(n for role, n in self._role_params.items() if role not in TOWER_ROLES)

    @property
    def tower_params(self) -> int:
        return self.params - self.language_params

    @cached_property
    def active_params(self) -> int:
        """Parameters one token touches: routed experts count top-k of E."""
        if self.moe is None:
            return self.params
        routed = self._role_params.get("experts", 0)
        active = routed * self.moe.experts_per_token // self.moe.num_experts
        return self.params - routed + active

    # ------------------------------------------------------------------ KV cache
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def kv_kinds(self) -> dict[str, int]:
        """Layers by KV kind, in first-seen order (a fresh dict: callers may change it)."""
        return dict(self._kv_kinds)

    @cached_property
    def _kv_kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in self.layers:
            out[layer.kv.kind] = out.get(layer.kv.kind, 0) + 1
        return out

    def describe_kv(self) -> str:
        """Layers by distinct KV spec, in first-seen order ("32 x full_attention (8 KV heads x ...)")."""
        counts: dict[KVSpec, int] = {}
        for layer in self.layers:
            counts[layer.kv] = counts.get(layer.kv, 0) + 1
        return "; ".join(f"{n} x {kv.kind} ({kv.describe()})" for kv, n in counts.items())

