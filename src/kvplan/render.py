"""Terminal views of library results (rich tables). No computation happens here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from kvplan.hardware import GPU, memory_label
from kvplan.model.catalog import Entry
from kvplan.model.spec import ModelSpec
from kvplan.planning import Plan
from kvplan.units import fmt_bytes, fmt_count, fmt_dec, fmt_gib

if TYPE_CHECKING:
    from kvplan.batching import LoadResult
    from kvplan.explain import Diagnosis
    from kvplan.fit import FitResult
    from kvplan.inventory import Inventory, LayerRow
    from kvplan.validate import Group, ValidationReport


def _both(n: float | None) -> str:
    """Bytes in binary and decimal units side by side: the two are never mixed."""
    return "-" if n is None else f"{fmt_bytes(n)}  ({fmt_dec(n)})"


def model_summary(console: Console, m: ModelSpec) -> None:
    lines = [f"[bold]{m.name}[/bold]  ({m.model_type}, {m.source})"]
    breakdown = ", ".join(f"{role} {fmt_count(n)}" for role, n in m.params_by_role().items())
    lines.append(f"  parameters: {m.params:,} ({fmt_count(m.params)}): {breakdown}")
    if m.moe:
        lines.append(f"  active per token: {m.active_params:,} ({fmt_count(m.active_params)}), "
                     f"{m.moe.experts_per_token} of {m.moe.num_experts} experts")
    if m.tower_params:
        lines.append(f"  language model {fmt_count(m.language_params)} + tower {fmt_count(m.tower_params)}")
    lines.append(f"  KV layout: {m.describe_kv()}")
    for line in lines:
        console.print(line, soft_wrap=True)


def plan_table(console: Console, p: Plan) -> None:
    model_summary(console, p.model)
    spec = p.speculative_dict()
    if spec and spec["drafter_kv_layers"]:
        console.print(f"  with its speculative drafter: {spec['drafter_params']:,} more parameters; KV layout "
                      f"as served: {p.deployment.model.describe_kv()}", soft_wrap=True)
    d = p.deployment
    layout = f"TP {d.tp} x PP {d.pp}" + (f" x {p.replicas} replicas" if p.replicas > 1 else "")
    if d.dp_attention > 1:
        layout += (f" ({d.dp_attention} data-parallel attention groups of TP {d.attn_tp}"
                   + (", expert parallel" if d.expert_parallel else "") + ")")
    version = next((sc.printed.version for sc in p.scenarios if sc.printed), "")
    console.print(f"  deployment: {layout} = {p.gpus} GPU(s); weights {d.weight_format.name}; "
                  f"KV {d.kv_dtype} ({d.kv_bytes:g} B/element); engine {p.engine.engine} {version}".rstrip())
    table = Table(show_header=bool(p.scenarios), header_style="bold")
    table.add_column("per GPU", style="bold")
    columns = [_label(s.gpu, s.util, s.budgets[0].pool_given) for s in p.scenarios] or ["value"]
    for label in columns:
        table.add_column(label, justify="right")

    def row(name: str, values: list[str] | str) -> None:
        table.add_row(name, *([values] * len(columns) if isinstance(values, str) else values))

    scenarios = p.scenarios
    binding = [min(sc.budgets, key=lambda b: b.kv_pool) for sc in scenarios]
    if scenarios:
        row("GPU memory shown", [memory_label(sc.gpu) if sc.gpu else "-" for sc in scenarios])
        if any(sc.printed for sc in scenarios):
            row("total as the engine sees it", [_both(sc.printed.total_bytes) if sc.printed and sc.printed.total_bytes
                                                else "- (KV pool given)" if sc.printed else "-" for sc in scenarios])
        row("usable (x util)", [_both(b.usable) if b.usable is not None else "-" for b in binding])
        kinds = list(dict.fromkeys((t.kind, t.label) for b in binding for t in b.terms))
        for kind, label in kinds:
            row(f"- {label}", [_both(next((t.bytes for t in b.terms if (t.kind, t.label) == (kind, label)), None))
                               for b in binding])
        row("KV pool", [_both(sc.capacity.kv_pool_bytes) for sc in scenarios])
    else:
        row("weights", _both(p.weights_bytes))
    row("KV per token", f"{p.kv_bytes_per_token:,.0f} B = {fmt_bytes(p.kv_bytes_per_token)}")
    row(f"KV per request ({p.seq:,} tok)", _both(p.request_bytes))
    row(f"KV for {p.batch:,} x {p.seq:,} tok", _both(p.kv_cache_bytes))
    if scenarios:
        if any(sc.printed and sc.printed.kv_tokens is not None for sc in scenarios):
            row("engine prints: KV cache", [f"{sc.printed.kv_tokens:,} tokens" if sc.printed else "-"
                                            for sc in scenarios])
            row("engine prints: concurrency", [
                f"{sc.printed.max_concurrency:,.2f}x at {sc.printed.max_model_len:,}"
                if sc.printed and sc.printed.max_concurrency is not None else "-" for sc in scenarios])
        row(f"max requests at {p.seq:,} tok", [_requests(sc, p.replicas) for sc in scenarios])
        if p.context_assumed:  # no stated context: what the pool allows
            row(f"max context at batch {p.batch:,}", [
                f"{sc.capacity.max_seq_len_memory:,} (by memory)" if sc.capacity.max_seq_len_memory is not None
                else "unlimited by memory" for sc in scenarios])
        else:
            row(f"max context at batch {p.batch:,}", [_context(sc.capacity.max_seq_len,
                                                               sc.capacity.max_seq_len_limited_by) for sc in scenarios])
        row("fits", ["yes" if sc.capacity.fits else f"[red]no: short {fmt_gib(sc.capacity.shortfall_bytes)}[/red]"
                     for sc in scenarios])
        if any(sc.startup.modelled for sc in scenarios):
            row("starts", [("yes" if sc.startup.starts else "[red]no[/red]") if sc.startup.modelled else "-"
                           for sc in scenarios])
    console.print(table)
    for sc, label in zip(scenarios, columns, strict=False):
        if not sc.startup.starts:
            console.print(f"  [red]{label}: {sc.startup.reason}[/red]", soft_wrap=True)
    lines = {label: p.launch_command(sc) for sc, label in zip(scenarios, columns, strict=False)}
    for label, line in lines.items():
        if line:
            prefix = "launch" if len(set(lines.values())) == 1 else f"launch on {label}"
            console.print(f"  {prefix}: {line}", soft_wrap=True, markup=False)
            if len(set(lines.values())) == 1:
                break
    for note in dict.fromkeys(n for sc in scenarios if sc.printed for n in sc.printed.notes):
        console.print(f"  engine: {note}", soft_wrap=True, markup=False)
    for note in p.notes:
        console.print(f"  note: {note}", soft_wrap=True)


def _requests(sc, replicas: int) -> str:
    """Concurrent requests, and which limit applies: the scheduler's cap or the KV cache."""
    n, e = sc.capacity.max_concurrent_requests, sc.printed
    if e is None or e.max_num_seqs is None:
        return f"{n:,}"
    return f"{n:,} (max_num_seqs cap)" if n == e.max_num_seqs * replicas else f"{n:,} (KV cache)"


def _label(gpu: GPU | None, util: float, pool_given: bool) -> str:
    if pool_given:
        return f"{gpu.alias} (given pool)" if gpu else "given KV pool"
    return f"{gpu.alias if gpu else '?'} @ {util:.0%}"


def _context(n: int | None, limited_by: str) -> str:
    if n is None:
        return "unlimited"
    return f"{n:,}" + {"model context": " (model limit)", "max_model_len": " (max_model_len)"}.get(limited_by, "")


def inventory_table(console: Console, m: ModelSpec, inv: Inventory) -> None:
    model_summary(console, m)
    console.print(f"  weights {inv.weight_format}, TP {inv.tp}: {_both(inv.weights_bytes)} per GPU")
    table = Table(header_style="bold")
    table.add_column("tensor group", overflow="fold")
    for col in ("layers", "shape", "role", "params", "bytes per GPU"):
        table.add_column(col, justify="right" if col in ("params", "bytes per GPU") else "left", no_wrap=True)
    for r in inv.tensor_groups:
        table.add_row(r.name, r.layers, " x ".join(map(str, r.shape)), r.role, f"{r.params:,}",
                      fmt_bytes(r.bytes_per_gpu) + (" q" if r.quantized else ""))
    console.print(table)
    layers = Table(header_style="bold")
    for col in ("layers", "block", "KV kind", "KV spec", "KV B/token"):
        layers.add_column(col)
    for span, block, kind, spec, per_token in _layer_runs(inv.layers):
        layers.add_row(span, block, kind, spec, f"{per_token:,.0f}")
    console.print(layers)


def _layer_runs(layers: list[LayerRow]) -> list[tuple[str, str, str, str, float]]:
    """Consecutive layers with the same block and KV spec, collapsed to one row."""
    runs: list[tuple[str, str, str, str, float]] = []
    start = 0
    for i, layer in enumerate(layers):
        key = (layer.block, layer.kv_kind, layer.kv_spec, layer.kv_bytes_per_token)
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if nxt is None or (nxt.block, nxt.kv_kind, nxt.kv_spec, nxt.kv_bytes_per_token) != key:
            runs.append((f"{start}" if start == i else f"{start}-{i}", *key))
            start = i + 1
    return runs


def models_table(console: Console, entries: list[Entry]) -> None:
    table = Table(header_style="bold")
    table.add_column("alias", no_wrap=True, overflow="ignore")  # whole aliases: they are what people type
    table.add_column("Hugging Face id", overflow="fold")
    table.add_column("other names", overflow="fold")
    for e in entries:
        table.add_row(e.alias, e.hf_id, ", ".join(a for a in e.aliases if a != e.alias))
    console.print(table)


def gpus_table(console: Console, gpus: list[GPU]) -> None:
    table = Table(header_style="bold")
    for col in ("alias", "name", "memory shown", "sold as", "GB/s", "bf16 TFLOPS", "$/h"):
        table.add_column(col, justify="right" if col in ("GB/s", "bf16 TFLOPS", "$/h") else "left")
    for g in gpus:
        table.add_row(g.alias, g.name, f"{fmt_gib(g.memory_bytes)} ({g.memory_source})", g.marketing,
                      f"{g.bandwidth_gbps:,.0f}" if g.bandwidth_gbps else "-",
                      f"{g.bf16_tflops:,.1f}" if g.bf16_tflops else "-",
                      f"{g.price_per_hour:.2f}" if g.price_per_hour else "-")
    console.print(table)


def validation_table(console: Console, report: ValidationReport) -> None:
    table = Table(header_style="bold", title="predicted / logged (relative error)")
    for col in ("row", "engine", "model", "GPU", "weights GiB", "KV tokens given pool", "KV pool GiB", "KV tokens",
                "max concurrency"):
        table.add_column(col, overflow="fold")
    names = ("weights", "kv_tokens_given_pool", "kv_pool", "kv_tokens", "max_concurrency")
    tokens = {"kv_tokens_given_pool", "kv_tokens"}  # counts: printed as integers
    for r in report.rows:
        cells = []
        for name in names:
            f = r.figures.get(name)
            if f is None:
                cells.append("-")
            elif name in tokens:
                cells.append(f"{round(f['predicted']):,} / {round(f['logged']):,} ({f['rel_err']:.1%})")
            else:
                cells.append(f"{f['predicted']:,.4g} / {f['logged']:,.4g} ({f['rel_err']:.1%})")
        model = r.model if r.modelled else f"{r.model}: skipped, {r.reason}"
        table.add_row(str(r.index), r.engine, model, r.gpu or "-", *cells)
    console.print(table)
    summary = Table(header_style="bold", title="summary: absolute relative error")
    for col in ("figure", "n", "median", "p90"):
        summary.add_column(col, justify="right" if col != "figure" else "left")
    for name, s in report.summary.items():
        summary.add_row(name, str(s.n), _pct(s.median_abs_rel_err), _pct(s.p90_abs_rel_err))
    console.print(summary)
    _band_table(console, "per release band (in sample: the shipped constants)", report.by_band)
    if report.held_out is not None:
        title = f"held out: each {'release band' if report.held_out.by == 'version' else 'source'} on constants " \
                "refitted without its rows"
        _band_table(console, title, report.held_out.groups)
        console.print("held out, all rows: " + ", ".join(
            f"{name} n {s.n} median {_pct(s.median_abs_rel_err)} p90 {_pct(s.p90_abs_rel_err)}"
            for name, s in report.held_out.summary.items() if s.n and name in BAND_FIGURES), soft_wrap=True)
    c = report.counts
    console.print(f"rows read {c.read}, modelled {c.modelled}, skipped {c.skipped}")
    for r in report.rows:
        if not r.modelled:
            console.print(f"  skipped row {r.index} ({r.model}): {r.reason}", soft_wrap=True)


BAND_FIGURES = ("weights", "kv_pool", "kv_tokens", "max_concurrency", "non_torch", "activation_peak",
                "free_after_weights")


def _band_table(console: Console, title: str, groups: dict[str, Group]) -> None:
    """One line per group: its row counts and each figure's n / median / p90."""
    table = Table(header_style="bold", title=title)
    for col in ("band", "rows (fitted)", "weights", "KV pool", "KV tokens", "concurrency", "non-torch", "activation",
                "free after weights"):
        table.add_column(col, overflow="fold")
    for name, g in groups.items():
        cells = []
        for figure in BAND_FIGURES:
            s = g.summary.get(figure)
            cells.append("-" if s is None or not s.n else
                         f"{_pct1(s.median_abs_rel_err)} / {_pct1(s.p90_abs_rel_err)} ({s.n})")
        table.add_row(name, f"{g.rows} ({g.fitted_rows})" + (f": {g.unscored}" if g.unscored else ""), *cells)
    console.print(table)
    console.print("cells: median / p90 absolute relative error (rows with the figure)")


def _pct1(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def diagnosis_view(console: Console, d: Diagnosis) -> None:
    p = d.parsed
    console.print(f"[bold]{p.get('model') or '?'}[/bold]  {p.get('engine') or '?'} {p.get('engine_version') or ''}"
                  f" on {p.get('gpu')} at utilization {p.get('util')}", soft_wrap=True)
    table = Table(header_style="bold")
    for col in ("figure", "logged", "predicted"):
        table.add_column(col, justify="right" if col != "figure" else "left")
    units = {"weights": "GiB", "kv_pool": "GiB", "kv_tokens": "tokens", "max_concurrency": "x"}
    for name, unit in units.items():
        if name in d.logged or name in d.predicted:
            table.add_row(f"{name} ({unit})", _fmt(d.logged.get(name)), _fmt(d.predicted.get(name)))
    console.print(table)
    for line in d.assumptions:
        console.print(f"  assumed: {line}", soft_wrap=True)
    for line in d.flags:
        console.print(f"  [yellow]differs[/yellow] {line}", soft_wrap=True)
    if d.failure:
        f = d.failure
        console.print(f"  [red]the engine did not start[/red]: {f.what}", soft_wrap=True)
        if f.line:
            console.print(f"    {f.line}", soft_wrap=True, markup=False)
        console.print(f"  smallest change that starts: {f.fix or 'none of the changes below (see each)'}",
                      soft_wrap=True, markup=False)
    if d.suggestions:
        s = Table(header_style="bold", title="what each change would give")
        for col in ("change", "KV pool GiB", "KV tokens", "max concurrency", "starts", "meets target"):
            s.add_column(col)
        yes_no = {True: "yes", False: "no", None: "-"}
        for item in d.suggestions:
            if item.error is not None:
                s.add_row(item.change, item.error, "", "", "", "")
                continue
            f = item.predicted or {}
            s.add_row(item.change, _fmt(f.get("kv_pool")), _fmt(f.get("kv_tokens")),
                      _fmt(f.get("max_concurrency")), yes_no[item.starts], yes_no[item.meets_target])
        console.print(s)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if float(x).is_integer() and abs(x) >= 1000 else f"{x:,.2f}"


def fit_view(console: Console, spec: ModelSpec, result: FitResult, top: int) -> None:
    w = result.workload
    targets = []
    if w.min_tokens_per_sec:
        targets.append(f">= {w.min_tokens_per_sec:g} tok/s per user")
    if w.max_ttft:
        targets.append(f"TTFT <= {w.max_ttft:g} s")
    console.print(f"[bold]{spec.name}[/bold]: {w.users:,} users x {w.seq:,} tokens ({w.prompt:,} prompt + "
                  f"{w.output:,} output)" + (f", targets {', '.join(targets)}" if targets else ""), soft_wrap=True)
    console.print(f"  {result.evaluated:,} candidates evaluated in {result.seconds:.2f} s, each sized with "
                  f"{result.engine}'s accounting; ranked by {result.rank_by}"
                  + (f"; {result.pruned:,} pruned (another layout of the same GPU is at least as good on cost, "
                     "tokens/s, TTFT and users served)" if result.pruned else ""), soft_wrap=True)
    best = [c for c in result.candidates if c.meets_targets][:top]
    if not best:
        miss = result.nearest_miss
        console.print("[red]no candidate meets every target[/red]"
                      + (f"; nearest miss: {miss.gpus_total} x {miss.gpu.alias} ({miss.layout.split(' (', 1)[1]}: "
                         f"{'; '.join(miss.misses)}" if miss else ": nothing fits at all"), soft_wrap=True)
        shown = result.candidates[:top]
    else:
        shown = best
    table = Table(header_style="bold")
    loaded = any(c.load is not None for c in shown)
    for col in ("#", "GPU", "per replica", "replicas", "weights", "KV", "requests/replica", "tok/s/user",
                "TTFT s", *(("load TTFT s", "load tok/s/user") if loaded else ()), "$/hour", "$/M tokens"):
        table.add_column(col, justify="left" if col in ("GPU", "weights", "KV") else "right")
    for i, c in enumerate(shown, 1):
        at_load = () if not loaded else ("-", "-") if c.load is None else (
            f"{c.load.ttft_ms.median / 1000:.3f}",
            f"{1000 / c.load.tpot_ms.median:,.1f}" if c.load.tpot_ms.median else "-")
        table.add_row(str(i), c.gpu.alias, c.layout, str(c.replicas),
                      c.weight_scheme, c.kv_dtype, f"{c.max_concurrent_requests:,}",
                      f"{c.decode.tokens_per_sec_per_user:,.1f}", f"{c.ttft_seconds:.3f}", *at_load,
                      "-" if c.cost_per_hour is None else f"{c.cost_per_hour:,.2f}",
                      "-" if c.cost_per_million_tokens is None else f"{c.cost_per_million_tokens:,.3f}")
    console.print(table)
    for i, c in enumerate(shown[:3], 1):
        console.print(f"  {i}. {c.command}", soft_wrap=True, markup=False)
        if c.closes_with:
            console.print(f"     setting: {c.closes_with}", soft_wrap=True, markup=False)
        console.print(f"     price {c.price.usd_per_hour if c.price.usd_per_hour is not None else '-'} USD per GPU-hour"
                      f" ({c.price.source})", soft_wrap=True, markup=False)
    if result.rejected:
        console.print("rejected:", soft_wrap=True)
        for r in result.rejected:
            console.print(f"  {r.family}: {r.reason}", soft_wrap=True, markup=False)
    if result.skipped:  # one line: how many layouts the model's shapes rule out, and the first reasons
        reasons = sorted(result.skipped.items(), key=lambda kv: -kv[1])
        shown = "; ".join(f"{n} x {reason}" for reason, n in reasons[:2])
        more = f"; and {len(reasons) - 2} other reason(s)" if len(reasons) > 2 else ""
        console.print(f"  skipped {sum(result.skipped.values())} layout(s) the model cannot split into: {shown}{more}",
                      soft_wrap=True, markup=False)
    for note in result.notes:
        console.print(f"  note: {note}", soft_wrap=True)


def load_view(console: Console, r: LoadResult) -> None:
    """kvplan perf under load: the figures a serving benchmark prints, then how the scheduler ran."""
    a, w, s = r.about, r.workload, r.scheduler
    parts = ([f"{w.concurrency:,} concurrent clients"] if w.concurrency else []) + (
        [f"Poisson {w.rate:g} req/s"] if w.rate else [])
    load = ", ".join(parts) or "all requests at once"
    copies = f"{a['replicas']} replicas of " if a.get("replicas", 1) > 1 else ""
    def span(bounds: tuple[int, int] | None, fixed: int) -> str:
        return f"{bounds[0]:,}-{bounds[1]:,}" if bounds else f"{fixed:,}"

    sizes = (f"{span(w.prompt_range, w.prompt)} + {span(w.output_range, w.output)} tokens (drawn uniformly)"
             if w.prompt_range or w.output_range else f"{w.prompt:,} + {w.output:,} tokens")
    console.print(f"[bold]{a['model']}[/bold] on {copies}{a['tp'] * a['pp']} x {a['gpu']} "
                  f"(TP {a['tp']}, PP {a['pp']}), "
                  f"{a['engine']} {a['engine_version']}, weights {a['weights']}, KV {a['kv_dtype']}: {w.num_prompts:,} "
                  f"requests of {sizes}, {load}", soft_wrap=True)
    table = Table(show_header=True, header_style="bold")
    for column in ("figure", "mean", "median", "p99"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for label, st in (("TTFT (ms)", r.ttft_ms), ("TPOT (ms)", r.tpot_ms), ("ITL (ms)", r.itl_ms),
                      ("E2E latency (ms)", r.e2el_ms)):
        table.add_row(label, f"{st.mean:,.2f}", f"{st.median:,.2f}", f"{st.p99:,.2f}")
    console.print(table)
    console.print(f"  request throughput {r.request_throughput:,.2f} req/s, output {r.output_tokens_per_sec:,.1f} "
                  f"tok/s, total {r.total_tokens_per_sec:,.1f} tok/s over {r.duration_seconds:,.2f} s", soft_wrap=True)
    mix = "prefill chunks beside the decodes" if s.mixes_prefill else "prefill passes of their own"
    console.print(f"  scheduler: max_num_seqs {s.max_num_seqs:,}, {s.token_budget:,} tokens per pass, KV pool "
                  f"{s.kv_tokens:,} tokens in blocks of {s.block_size}, {mix}; {r.passes:,} passes, "
                  f"{r.mean_batch:,.1f} requests per pass on average, at most {r.peak_running:,} running, "
                  f"{r.preemptions:,} preemptions", soft_wrap=True)
    for line in a.get("assumptions", ()):
        console.print(f"  {line}", soft_wrap=True)
