"""The derivation of a plan: each formula with its numbers substituted, in the order kvplan computes them."""

from __future__ import annotations

from dataclasses import replace

from kvplan.capacity import LimitedBy
from kvplan.deployment import Deployment
from kvplan.engines import get_engine, scenario, version_text
from kvplan.errors import KvplanError
from kvplan.model.spec import LayerSpec
from kvplan.planning import Plan, Scenario
from kvplan.units import fmt_bytes, fmt_count, fmt_gib


def _b(n: float) -> str:
    """'13,843,441,408 B (12.89 GiB)'."""
    return f"{n:,.0f} B ({fmt_bytes(n)})" if abs(n) >= 1 << 10 else f"{n:,.0f} B"


def _kv_line(dep: Deployment, group: list[LayerSpec]) -> str:
    return group[0].kv.explain(len(group), dep.kv_bytes, dep.state_bytes, dep.attn_tp)


def derivation(p: Plan) -> list[str]:
    m, dep = p.model, p.deployment
    steps: list[str] = []
    parts = " + ".join(f"{role} {n:,}" for role, n in m.params_by_role().items())
    tied = " (lm_head tied to the embedding)" if m.tie_word_embeddings else ""
    steps.append(f"parameters = {parts} = {m.params:,} ({fmt_count(m.params)}){tied}")
    if m.moe:
        steps.append(f"active per token = {m.active_params:,} ({fmt_count(m.active_params)}): "
                     f"{m.moe.experts_per_token} of {m.moe.num_experts} routed experts")
    fmt = dep.weight_format
    w = dep.weight_parts()
    shard = f" per GPU after TP {dep.tp} split (column/row/vocab-parallel; norms replicated)" if dep.tp > 1 else ""
    if fmt.quantized:
        total = w["quantized_bytes"] + w["overhead_bytes"] + w["dense_bytes"]
        steps.append(
            f"weights{shard} = quantized {w['quantized_params']:,.0f} x {fmt.bits / 8:g} B ({fmt.name}) "
            f"+ scales/zeros {w['overhead_bytes']:,.0f} B + unquantized {w['dense_params']:,.0f} x "
            f"{dep.dense_bytes:g} B ({dep.activation_dtype}) = {_b(total)}"
        )
    else:
        steps.append(f"weights{shard} = {w['dense_params']:,.0f} params x {fmt.bits / 8:g} B ({fmt.name}) = "
                     f"{_b(w['dense_bytes'])}")
    if dep.pp > 1:
        for s in dep.stages:
            steps.append(f"  pipeline stage {s.index}: layers {s.layers[0].index}-{s.layers[-1].index}, "
                         f"weights {_b(s.weights_bytes)} per GPU")
    groups: dict[tuple, list[LayerSpec]] = {}
    for layer in m.layers:
        groups.setdefault((layer.kv.kind, layer.kv.describe()), []).append(layer)
    kv_name = "auto = " + dep.activation_dtype if dep.kv_dtype == "auto" else dep.kv_dtype
    steps.append(f"KV cache dtype {kv_name}: {dep.kv_bytes:g} B per element")
    steps.extend("  " + _kv_line(dep, g) for g in groups.values())
    steps.append(f"KV per token (per GPU) = {p.kv_bytes_per_token:,.0f} B = {fmt_bytes(p.kv_bytes_per_token)}")
    steps.append(f"one request of {p.seq:,} tokens = {_b(p.request_bytes)} per GPU")
    steps.append(f"KV cache for {p.batch:,} x {p.seq:,} tokens = {p.batch:,} x {p.request_bytes:,} B = "
                 f"{_b(p.batch * p.request_bytes)}"
                 + (f" (spread over {p.replicas} replicas: {_b(p.kv_cache_bytes)} per GPU)" if p.replicas > 1 else ""))
    for s in p.scenarios:
        steps.extend(_scenario_steps(p, s))
    return steps


def _scenario_steps(p: Plan, s: Scenario) -> list[str]:
    c, e = s.capacity, s.printed
    b = min(s.budgets, key=lambda x: x.kv_pool)
    engine = f"{p.engine.engine}" + (f" {e.version}" if e else "")
    title = f"[{s.gpu.alias if s.gpu else 'given pool'}" + (f" @ {s.util:.0%}" if not b.pool_given else "")
    out = [f"{title}, engine {engine}]"]
    if b.pool_given:
        out.append(f"  KV pool = --kv-memory = {_b(b.kv_pool)}")
    else:
        if e:
            shown = e.total_source
            if "MiB" not in shown:
                shown = f"{e.total_bytes / (1 << 20):,.0f} MiB ({shown})"
            out.append(f"  requested = ceil({shown} x {s.util:g}) = {_b(b.usable)}")
        else:
            shown = (f"{b.memory / (1 << 20):,.0f} MiB ({s.gpu.memory_source})"
                     if s.gpu and s.gpu.memory_source != "custom" else _b(b.memory))
            out.append(f"  usable = {shown} x {s.util:g} = {_b(b.usable)}")
        for t in b.terms:
            out.append(f"  - {t.label} {_b(t.bytes)}: {t.source}")
        out.append(f"  KV pool = {_b(b.usable)} - " + " - ".join(f"{t.bytes:,}" for t in b.terms)
                   + f" = {_b(b.kv_pool)}")
    if not b.weights_fit:
        out.append(f"  the memory budget is exceeded by {fmt_gib(-b.kv_pool)} before any KV cache")
    out.extend(get_engine(p.engine.engine).derivation(s))
    batch = -(-c.batch // c.replicas)
    if c.max_seq_len_memory is None:
        out.append("  max context: memory never limits it (only windowed or constant-state layers)")
    else:
        out.append(f"  max context at batch {c.batch} = largest L with {batch} x request(L) <= pool = "
                   f"{c.max_seq_len_memory:,} tokens"
                   + (f", capped at the model's {p.model.max_context:,}"
                      if c.max_seq_len_limited_by == LimitedBy.MODEL_CONTEXT and not p.context_assumed else "")
                   + (" (= max_model_len)" if c.max_seq_len_limited_by == LimitedBy.MAX_MODEL_LEN
                      and not p.context_assumed else ""))
    verdict = "fits" if c.fits else f"does not fit: short by {fmt_gib(c.shortfall_bytes)} per GPU"
    out.append(f"  {c.batch:,} x {c.seq:,} tokens need {_b(c.kv_cache_bytes)} of {_b(c.kv_pool_bytes)}: {verdict}")
    if s.startup.modelled:
        out.append(f"  startup: {s.startup.reason}" if not s.startup.starts else
                   f"  startup: starts (one request of max_model_len {s.startup.longest_context:,} fits)")
    spread = _release_spread(p, s)
    if spread:
        out.append(spread)
    return out


def _release_spread(p: Plan, s: Scenario) -> str | None:
    """How far the KV pool moves across the engine's release bands (one release per rule row), the rest of the
    plan unchanged: the smallest and the largest, with their bands."""
    eng = get_engine(p.engine.engine)
    if eng.rule_table is None or s.budgets[0].pool_given:
        return None
    pools = []
    for since in dict.fromkeys(rule.since for rule in eng.rule_table.rows):  # rows sharing a release: one band
        version = version_text(since)
        try:
            alt = scenario(replace(p.engine, version=version), p.deployment, s.gpu, s.util_requested, p.seq,
                           p.batch, p.replicas, p.reserve)
        except KvplanError:  # that release refuses this deployment: no pool to compare
            continue
        pools.append((min(b.kv_pool for b in alt.budgets), eng.band(version)))
    if len(pools) < 2:
        return None
    (lo, lo_band), (hi, hi_band) = min(pools), max(pools)
    return (f"  across {len(pools)} release bands of {eng.label}: KV pool from {_b(lo)} ({lo_band}) to {_b(hi)} "
            f"({hi_band}); --engine-version picks one")
