"""Building blocks shared by the family adapters: each adds the tensors one module stores.

Names follow the Hugging Face checkpoints (`model.layers.3.self_attn.q_proj.weight`) so quantization
`ignore` lists match them. Shapes are (out, in) for linear weights, (E, out, in) for stacked experts.
Tensor-parallel split: column-parallel weights split dim 0 (their bias too), row-parallel weights split the
input dim (their bias is replicated), vocab-parallel embeddings split the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvplan.model.spec import LayerSpec, MoE, Role, Tensor


@dataclass
class Inventory:
    tensors: list[Tensor] = field(default_factory=list)
    layers: list[LayerSpec] = field(default_factory=list)

    def add(self, name: str, shape: tuple[int, ...], role: Role, split: int | None = None,
            linear: bool = False, layer: int | None = None) -> None:
        self.tensors.append(Tensor(name, tuple(int(d) for d in shape), role, split, linear, layer))

    def linear(self, name: str, out: int, inp: int, role: Role, parallel: str | None, layer: int | None,
               bias: bool = False) -> None:
        """A Linear layer: `parallel` is "column", "row" or None (replicated)."""
        split = {"column": 0, "row": 1, None: None}[parallel]
        self.add(f"{name}.weight", (out, inp), role, split, True, layer)
        if bias:
            self.add(f"{name}.bias", (out,), role, 0 if parallel == "column" else None, False, layer)

    def norm(self, name: str, dim: int, layer: int | None, bias: bool = False, role: Role = "norm") -> None:
        self.add(f"{name}.weight", (dim,), role, None, False, layer)
        if bias:
            self.add(f"{name}.bias", (dim,), role, None, False, layer)

    def embedding(self, name: str, vocab: int, hidden: int) -> None:
        self.add(name, (vocab, hidden), "embedding", 0, False, None)

    def head(self, norm: str, lm_head: str, vocab: int, hidden: int, tie: bool, bias: bool = False,
             norm_bias: bool = False) -> None:
        """The final norm, then lm_head unless it is tied to the input embedding."""
        self.norm(norm, hidden, None, norm_bias)
        if not tie:
            self.add(f"{lm_head}.weight", (vocab, hidden), "lm_head", 0, False, None)
            if bias:
                self.add(f"{lm_head}.bias", (vocab,), "lm_head", 0, False, None)


def attention(inv: Inventory, p: str, i: int | None, hidden: int, heads: int, kv_heads: int, head_dim: int,
              qkv_bias: bool = False, o_bias: bool = False, v_head_dim: int | None = None,
              o_name: str = "o_proj", fused_qkv: str | None = None, role: Role = "attention") -> None:
    """q/k/v/o projections (column, column, column, row); `fused_qkv` names one fused projection."""
    v_head_dim = v_head_dim or head_dim
    q, k, v = heads * head_dim, kv_heads * head_dim, kv_heads * v_head_dim
    if fused_qkv:
        inv.linear(f"{p}.{fused_qkv}", q + k + v, hidden, role, "column", i, qkv_bias)
    else:
        inv.linear(f"{p}.q_proj", q, hidden, role, "column", i, qkv_bias)
        inv.linear(f"{p}.k_proj", k, hidden, role, "column", i, qkv_bias)
        inv.linear(f"{p}.v_proj", v, hidden, role, "column", i, qkv_bias)
    inv.linear(f"{p}.{o_name}", hidden, heads * v_head_dim, role, "row", i, o_bias)


def gated_mlp(inv: Inventory, p: str, i: int | None, hidden: int, inter: int, bias: bool = False,
              role: Role = "mlp", fused: bool = False,
              names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> None:
    """SwiGLU/GeGLU MLP: gate and up (column), down (row)."""
    gate, up, down = names
    if fused:
        inv.linear(f"{p}.gate_up_proj", 2 * inter, hidden, role, "column", i, bias)
    else:
        inv.linear(f"{p}.{gate}", inter, hidden, role, "column", i, bias)
        inv.linear(f"{p}.{up}", inter, hidden, role, "column", i, bias)
    inv.linear(f"{p}.{down}", hidden, inter, role, "row", i, bias)


def plain_mlp(inv: Inventory, p: str, i: int | None, hidden: int, inter: int, bias: bool = False,
              role: Role = "mlp", names: tuple[str, str] = ("fc1", "fc2")) -> None:
    """Two-matrix MLP (GELU): up (column), down (row)."""
    inv.linear(f"{p}.{names[0]}", inter, hidden, role, "column", i, bias)
    inv.linear(f"{p}.{names[1]}", hidden, inter, role, "row", i, bias)


def experts(inv: Inventory, p: str, i: int, num: int, hidden: int, inter: int, gated: bool = True,
            bias: bool = False) -> None:
    """Routed experts stacked as (E, out, in); TP splits each expert's intermediate dim (vLLM FusedMoE)."""
    up = 2 * inter if gated else inter
    inv.add(f"{p}.experts.gate_up_proj", (num, up, hidden), "experts", 1, True, i)
    if bias:
        inv.add(f"{p}.experts.gate_up_proj_bias", (num, up), "experts", 1, False, i)
    inv.add(f"{p}.experts.down_proj", (num, hidden, inter), "experts", 2, True, i)
    if bias:
        inv.add(f"{p}.experts.down_proj_bias", (num, hidden), "experts", None, False, i)


def router(inv: Inventory, name: str, i: int, num: int, hidden: int, bias: bool = False) -> None:
    """The MoE gate: a small replicated linear that quantization leaves in 16-bit."""
    inv.add(f"{name}.weight", (num, hidden), "router", None, False, i)
    if bias:
        inv.add(f"{name}.bias", (num,), "router", None, False, i)


def moe_info(num_experts: int, top_k: int, shared: int = 0) -> MoE:
    return MoE(num_experts=num_experts, experts_per_token=top_k, shared_experts=shared)
