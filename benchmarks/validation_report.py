"""The README's validation tables, from `kvplan validate --leave-one-version-out` (and --leave-one-source-out).

    python benchmarks/validation_report.py [benchmarks/engine_logs.csv]

Prints, as Markdown: every figure in sample beside held out (one release band left out), the held-out KV pool
and tokens with one source left out, one line per release band, and the rows predicted worst.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from script_args import parser, run  # noqa: E402

from kvplan.validate import FIGURES, FigureSummary, validate  # noqa: E402


def pct(s: FigureSummary | None, n: bool = False) -> str:
    if s is None or not s.n:
        return "-"
    text = f"{s.median_abs_rel_err:.2%} / {s.p90_abs_rel_err:.1%}"
    return f"{text} ({s.n})" if n else text


def main() -> None:
    path = parser(__doc__, engine_logs=True).parse_args().csv
    by_version = validate(path, "version")
    by_source = validate(path, "source")
    c = by_version.counts
    print(f"rows read {c.read}, modelled {c.modelled}, skipped {c.skipped}\n")
    print("| figure (all rows) | rows | in sample: median / p90 | held out, one band left out | one source left out |")
    print("|---|---|---|---|---|")
    for name in FIGURES:
        s = by_version.summary[name]
        if s.n:
            print(f"| {name} | {s.n} | {pct(s)} | {pct(by_version.held_out.summary[name])} | "
                  f"{pct(by_source.held_out.summary[name])} |")
    print("\n| band | rows (fitted on) | KV pool in sample | KV pool held out | KV tokens held out |")
    print("|---|---|---|---|---|")
    for band, g in by_version.by_band.items():
        h = by_version.held_out.groups[band]
        print(f"| {band} | {g.rows} ({g.fitted_rows}) | {pct(g.summary.get('kv_pool'), True)} | "
              f"{pct(h.summary.get('kv_pool'))} | {pct(h.summary.get('kv_tokens'), True)} |")
    print("\nworst KV pool (in sample):")
    rows = sorted((r for r in by_version.rows if "kv_pool" in r.figures),
                  key=lambda r: -r.figures["kv_pool"]["rel_err"])
    for r in rows[:10]:
        f = r.figures["kv_pool"]
        terms = ", ".join(f"{k} {v['rel_err']:.0%}" for k, v in r.figures.items() if k in ("weights", "non_torch",
                                                                                           "activation_peak"))
        print(f"- row {r.index} ({r.band}; {r.model[:40]}; {r.gpu[:40]}): logged {f['logged']} GiB, predicted "
              f"{f['predicted']:.2f} ({f['rel_err']:.0%}){'; ' + terms if terms else ''}")


if __name__ == "__main__":
    run(main)
