"""Pictures of plans (optional extra: `pip install kvplan[plot]`): the data come from the library calls, the
drawing from matplotlib (Agg backend, PNG or SVG by the file's suffix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kvplan.engines import DEFAULT_ENGINE
from kvplan.errors import InputError
from kvplan.fit import Workload, search
from kvplan.hardware import get_gpu
from kvplan.model.spec import ModelSpec
from kvplan.planning import plan
from kvplan.units import GiB


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plots need matplotlib: pip install 'kvplan[plot]'") from None
    return plt


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"-o {out}: write a .png or .svg file")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return out


def concurrency_series(spec: ModelSpec, gpus: list[str], utils: list[float] | None, points: int = 24,
                       tp: int = 1, engine: str = DEFAULT_ENGINE, dtype: str | None = None,
                       kv_dtype: str = "auto") -> dict[str, Any]:
    """Requests the KV cache holds against context length, per (GPU, util) under `engine` (not capped by its
    request limit: `caps` gives that limit per series), and the article's naive formula (MHA over d_model,
    2 bytes per parameter, no overheads) on the same GPUs. No `utils`: each GPU at the fraction plan resolves
    for the engine there (SGLang's default depends on the GPU's memory and the TP)."""
    top = min(spec.max_context or 131072, 131072)
    lengths = sorted({round(128 * (top / 128) ** (i / (points - 1))) for i in range(points)})
    series, naive, caps = {}, {}, {}
    for g in gpus:
        gpu = get_gpu(g)
        own = utils or [plan(spec, gpu=gpu, tp=tp, engine=engine, dtype=dtype, kv_dtype=kv_dtype).scenarios[0].util]
        for u in own:
            ys = []
            for length in lengths:
                s = plan(spec, gpu=gpu, util=u, seq=length, max_model_len=length, tp=tp, engine=engine,
                         dtype=dtype, kv_dtype=kv_dtype).scenarios[0]
                ys.append(s.printed.max_concurrency if s.printed else s.capacity.max_concurrent_requests)
                caps[f"{gpu.alias} @ {u:.0%}"] = s.printed.max_num_seqs if s.printed else None
            series[f"{gpu.alias} @ {u:.0%}"] = ys
            pool = tp * gpu.memory_bytes * u - 2 * spec.params
            per_token = 2 * 2 * spec.num_layers * spec.hidden_size
            naive[f"{gpu.alias} @ {u:.0%}"] = [max(0, pool // (per_token * n)) for n in lengths]
    return {"lengths": lengths, "series": series, "naive": naive, "caps": caps}


def plot_concurrency(spec: ModelSpec, gpus: list[str], utils: list[float], out: str | Path, tp: int = 1) -> Path:
    plt = _pyplot()
    data = concurrency_series(spec, gpus, utils, tp=tp)
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, ys in data["series"].items():
        (line,) = ax.plot(data["lengths"], ys, label=f"{label} (vLLM)")
        ax.plot(data["lengths"], data["naive"][label], linestyle="--", color=line.get_color(), alpha=0.6,
                label=f"{label} (article formula)")
    title = f"{spec.name}: concurrency vs context" + (f", TP {tp}" if tp > 1 else "")
    ax.set(xscale="log", yscale="log", xlabel="tokens per request (max_model_len)",
           ylabel="concurrent requests the KV cache holds", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, out)


def memory_breakdown(spec: ModelSpec, gpus: list[str], utils: list[float], seq: int,
                     tp: int = 1) -> dict[str, dict[str, float]]:
    """Per (GPU, util): GiB of each budget term on the fullest GPU, the KV pool, what the utilization leaves
    unused, and the device's total (bars above it do not fit)."""
    out = {}
    for g in gpus:
        for u in utils:
            s = plan(spec, gpu=g, util=u, seq=seq, max_model_len=seq, tp=tp).scenarios[0]
            b = min(s.budgets, key=lambda x: x.kv_pool)
            total = s.printed.total_bytes if s.printed else b.memory
            parts = {t.label: t.bytes / GiB for t in b.terms}
            parts["KV pool"] = max(0, b.kv_pool) / GiB
            parts["left by utilization"] = (total - b.usable) / GiB
            out[f"{s.gpu.alias} @ {s.util:.0%}"] = {"parts": parts, "device": total / GiB}
    return out


def plot_memory(spec: ModelSpec, gpus: list[str], utils: list[float], seq: int, out: str | Path,
                tp: int = 1) -> Path:
    plt = _pyplot()
    data = memory_breakdown(spec, gpus, utils, seq, tp)
    labels = list(dict.fromkeys(k for bar in data.values() for k in bar["parts"]))
    fig, ax = plt.subplots(figsize=(8, 5))
    bottoms = [0.0] * len(data)
    for label in labels:
        values = [bar["parts"].get(label, 0.0) for bar in data.values()]
        ax.bar(list(data), values, bottom=bottoms, label=label)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    for i, (bar, height) in enumerate(zip(data.values(), bottoms, strict=True)):
        ax.hlines(bar["device"], i - 0.45, i + 0.45, colors="black", linestyles="--")
        if height > bar["device"] * 1.0001:
            ax.annotate("does not fit", (i, bar["device"]), ha="center", va="bottom", color="red")
    ax.set(ylabel="GiB per GPU (dashed: the device's total)",
           title=f"{spec.name}: memory per GPU (vLLM, TP {tp}, max_model_len {seq:,})")
    ax.legend(fontsize=8)
    return _save(fig, out)


def cost_series(spec: ModelSpec, users: list[int], prompt: int, output: int, gpus: list[str] | None,
                allow_quant: bool, top: int = 4) -> dict[str, Any]:
    """Cost per million output tokens against users for the GPU types whose best candidate is cheapest."""
    best: dict[str, list[float | None]] = {}
    for i, n in enumerate(users):
        result = search(spec, Workload(n, prompt, output), gpus, allow_quant=allow_quant)
        for c in result.candidates:
            if c.cost_per_million_tokens is None:
                continue
            row = best.setdefault(c.gpu.alias, [None] * len(users))
            if row[i] is None or c.cost_per_million_tokens < row[i]:
                row[i] = c.cost_per_million_tokens
    ranked = sorted(best, key=lambda g: min(v for v in best[g] if v is not None))[:top]
    return {"users": users, "series": {g: best[g] for g in ranked}}


def plot_cost(spec: ModelSpec, users: list[int], prompt: int, output: int, gpus: list[str] | None,
              allow_quant: bool, out: str | Path) -> Path:
    plt = _pyplot()
    data = cost_series(spec, users, prompt, output, gpus, allow_quant)
    fig, ax = plt.subplots(figsize=(8, 5))
    for gpu, ys in data["series"].items():
        ax.plot(data["users"], [y if y is not None else float("nan") for y in ys], marker="o", label=gpu)
    ax.set(xscale="log", xlabel="concurrent users", ylabel="USD per million output tokens (estimate)",
           title=f"{spec.name}: cost per million tokens, {prompt:,} + {output:,} tokens per request")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out)
