"""Validation per engine release band, and the held-out (leave-one-version-out / leave-one-source-out) scores."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvplan.cli import main
from kvplan.engines import get_engine, parse_version
from kvplan.engines.vllm_fit import fit, fitted_rows
from kvplan.validate import RANGE, band_of, csv_release, read_rows, report, row_setup, source_of, validate

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "benchmarks" / "engine_logs.csv"
SHIPPED = ROOT / "src" / "kvplan" / "data" / "vllm-constants.toml"


@pytest.mark.parametrize("engine", ["vllm", "vllm-v0", "sglang", "tgi"])
def test_a_band_is_the_releases_between_two_rule_rows(engine):
    """Two releases share a band exactly when no rule row of the engine starts in between (the rule table's
    rows are the only boundaries)."""
    eng = get_engine(engine)
    starts = [r.since for r in eng.rule_table.rows]
    probes = sorted({s for s in starts} | {(s[0], s[1], s[2] + 1) for s in starts} | {(0, 4, 0), (9, 0, 0)})
    for a in probes:
        for b in probes:
            if a >= b:
                continue
            boundary = any(a < s <= b for s in starts)
            same = eng.band(".".join(map(str, a))) == eng.band(".".join(map(str, b)))
            assert same == (not boundary), (a, b)


def test_band_names_carry_their_bounds():
    v1 = get_engine("vllm")
    rows = [r.since for r in v1.rule_table.rows]
    lo, hi = rows[1], rows[2]  # the second rule row's band ends where the third starts
    text = v1.band(".".join(map(str, lo)))
    assert text == f"vLLM {'.'.join(map(str, lo))} to <{'.'.join(map(str, hi))}"
    assert v1.band(None) == "vLLM, version not stated"
    assert v1.band("99.0").startswith("vLLM >=")
    assert get_engine("llamacpp").band("b1234") == "llama.cpp, every release"


def test_every_row_is_in_one_band_and_the_counts_add_up():
    r = validate(CSV)
    assert sum(g.rows for g in r.by_band.values()) == r.counts.read
    assert sum(g.modelled for g in r.by_band.values()) == r.counts.modelled
    for row in r.rows:
        assert row.band in r.by_band
    for name, g in r.by_band.items():  # each band's summary is the summary of its own rows
        mine = [row for row in r.rows if row.band == name]
        for figure, s in g.summary.items():
            assert s.n == sum(figure in row.figures for row in mine)


def test_the_shipped_constants_are_the_fit_of_the_canonical_csv():
    """data/vllm-constants.toml is what kvplan.engines.vllm_fit gives on benchmarks/engine_logs.csv: rerun
    benchmarks/fit_vllm_constants.py --write whenever the CSV changes."""
    shipped = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    fitted = fit(read_rows(CSV), lambda r: row_setup(r, CSV.parent))
    for section in ("non_torch", "activation", "cudagraph"):
        for key, value in shipped[section].items():
            assert fitted[section][key] == value, (section, key)


def test_a_refit_without_rows_never_names_them():
    rows = read_rows(CSV)
    fitted = sorted(fitted_rows(rows, lambda r: row_setup(r, CSV.parent)))
    left_out = frozenset(fitted[: len(fitted) // 2])
    constants = fit(rows, lambda r: row_setup(r, CSV.parent), left_out)
    sources = " ".join(str(v) for section in constants.values() if isinstance(section, dict)
                       for k, v in section.items() if k.endswith("source"))
    named = {int(x) for chunk in sources.split("rows ")[1:] for x in
             chunk.replace("-", ",").replace(";", ",").replace(")", ",").split(",") if x.strip().isdigit()}
    assert not named & left_out


def test_held_out_is_worse_where_only_that_band_fits_a_constant():
    """V0 0.6.4's rows are most of those the non-torch constant of its formula (all_tp1_gib, with the CUDA context)
    is fitted on: in sample its KV pool is matched; held out (the constant refitted on the V1 < 0.9.1 row left) it
    is missed by more."""
    r = validate(CSV, "version")
    band = get_engine("vllm-v0").band("0.6.4")
    inside = r.by_band[band].summary["kv_pool"].median_abs_rel_err
    held = r.held_out.groups[band].summary["kv_pool"].median_abs_rel_err
    assert inside < 0.01 < held
    # a band no fit uses scores the same in and out
    for name, g in r.held_out.groups.items():
        if g.fitted_rows == 0:
            assert g.summary == r.by_band[name].summary


def test_a_source_holding_every_row_of_a_fit_is_left_unscored():
    """With only one source's rows to fit on, leaving that source out leaves nothing to fit: no held-out score
    is invented for it (no fallback to the shipped constants, which were fitted on it)."""
    rows = [r for r in read_rows(CSV) if source_of(r) == "llm-d-incubation/llm-d-planner#205"]
    r = report(rows, CSV.parent, "source")
    sweep = r.held_out.groups["llm-d-incubation/llm-d-planner#205"]
    assert sweep.unscored and "nothing to fit" in sweep.unscored and sweep.modelled == 0
    assert all(s.n == 0 for s in r.held_out.summary.values())


@pytest.mark.parametrize("text, expected", [
    ("vllm-project/vllm#10517 (comment kaspersiminski 2024-12-02, 20k run)", "vllm-project/vllm#10517"),
    ("github.com/llm-d-incubation/llm-d-planner PR#205 accuracy/results/v0.19.0/logs/x.log",
     "llm-d-incubation/llm-d-planner#205"),
    ("https://example.org/blog/post", "https://example.org/blog/post"),
])
def test_sources_group_by_issue_or_pr(text, expected):
    assert source_of({"source": text}) == expected


def _one_row(**values: str) -> str:
    header = ["source", "engine", "engine_version", "model", "gpu", "gpu_count", "tensor_parallel",
              "gpu_memory_utilization", "max_model_len", "weights_gib", "avail_before_load_gib",
              "avail_after_load_gib", "kv_available_gib", "kv_tokens", "notes", "config"]
    out = io.StringIO()
    w = csv.DictWriter(out, header)
    w.writeheader()
    w.writerow({k: values.get(k, "") for k in header})
    return out.getvalue()


def test_sglang_free_memory_terms_are_scored():
    """SGLang's "Load weight begin / end ... avail mem" lines: free memory before the weights is the CUDA total
    less what startup holds (kvplan.engines.common.startup_in_use), after them less the weights as SGLang's load
    line measures them (kvplan.engines.sglang.sglang_weights)."""
    from kvplan.engines import scenario
    from kvplan.engines.common import startup_in_use
    from kvplan.engines.sglang import sglang_weights
    from kvplan.validate import row_setup

    text = _one_row(source="test", engine="SGLang", model="meta-llama/Llama-3.1-8B-Instruct", gpu="H100",
                    gpu_count="1", tensor_parallel="1", gpu_memory_utilization="0.85", max_model_len="8192",
                    avail_before_load_gib="78.5", avail_after_load_gib="63.5",
                    config="../model-configs/meta-llama--Llama-3.1-8B-Instruct.json")
    rows = list(csv.DictReader(io.StringIO(text)))
    r = report(rows, CSV.parent)
    figures = r.rows[0].figures
    setup = row_setup(rows[0], CSV.parent)
    total = scenario(setup.settings, setup.dep, setup.gpu, setup.util, 8192, 1, 1).printed.total_bytes  # CUDA's
    free = (total - startup_in_use(1, 1)[0]) / 2**30
    assert figures["free_before_weights"]["predicted"] == pytest.approx(free, abs=1e-4)
    weights = sglang_weights(setup.dep, setup.dep.stages[0])[0] / 2**30
    assert figures["free_after_weights"]["predicted"] == pytest.approx(free - weights, abs=1e-4)
    assert figures["free_after_weights"]["logged"] == 63.5


def test_cli_hold_out_flags():
    runner = CliRunner()
    out = runner.invoke(main, ["validate", str(CSV), "--leave-one-version-out", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["held_out"]["by"] == "version" and data["by_band"]
    assert set(data["held_out"]["groups"]) == set(data["by_band"])
    both = runner.invoke(main, ["validate", str(CSV), "--leave-one-version-out", "--leave-one-source-out"])
    assert both.exit_code != 0 and "not both" in both.output and "Traceback" not in both.output
    table = runner.invoke(main, ["validate", str(CSV), "--leave-one-source-out"])
    assert table.exit_code == 0 and "held out" in table.output


def test_versions_in_the_csv_parse():
    """Every stated version (or `<X` bound) in the canonical CSV is one kvplan reads (a typo would land in a wrong
    band)."""
    for row in read_rows(CSV):
        text = (row.get("engine_version") or "").strip()
        if m := RANGE.fullmatch(text):
            for bound in m.groups():
                if bound is not None:
                    parse_version(bound, "0.0.0")
        elif text:
            parse_version(text, "0.0.0")


def test_plan_says_which_release_it_assumed():
    from kvplan.planning import plan

    assumed = plan("llama-3.1-8b", gpu="h100")
    newest = get_engine("vllm").default_version
    assert newest == get_engine("vllm").newest_read  # the default is the newest release whose rules were read
    assert any(f"release not given: {newest}'s rules" in n for n in assumed.notes)
    stated = plan("llama-3.1-8b", gpu="h100", engine_version="0.10.1")
    assert not any("release not given" in n for n in stated.notes)
    plain = plan("llama-3.1-8b", gpu="h100", engine="none")  # no release rules: nothing to assume
    assert not any("release not given" in n for n in plain.notes)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tgi"])
def test_explain_shows_the_pool_across_release_bands(engine):
    """--explain's spread line brackets the pool of every release band (one release per rule row)."""
    import re

    from kvplan.derivation import derivation
    from kvplan.planning import plan

    p = plan("llama-3.1-8b", gpu="h100", engine=engine)
    line = next(x for x in derivation(p) if "release bands of" in x)
    low, high = (int(x.replace(",", "")) for x in re.findall(r"from ([\d,]+) B .*? to ([\d,]+) B", line)[0])
    pools = [min(b.kv_pool for b in plan("llama-3.1-8b", gpu="h100", engine=engine,
                                          engine_version=".".join(map(str, r.since))).scenarios[0].budgets)
             for r in get_engine(engine).rule_table.rows]
    assert (low, high) == (min(pools), max(pools))
    assert low <= p.scenarios[0].capacity.kv_pool_bytes <= high


@pytest.mark.parametrize("version, formula", [("0.5.4", "v0_increase_gib"), ("0.6.3", "v0_increase_gib"),
                                              ("0.6.4", "all_tp1_gib"), ("0.6.4.post1", "all_tp1_gib"),
                                              ("0.6.5", "v0_increase_gib"), ("0.10.2", "v0_increase_gib")])
def test_v0_subtracts_the_non_torch_memory_its_formula_counts(version, formula):
    """worker/worker.py determine_num_available_blocks: up to 0.6.3 and from 0.6.5 only what the profile added
    beyond the CUDA context; 0.6.4 every non-torch byte on the device (context included)."""
    from kvplan.engines.common import fitted_constants
    from kvplan.planning import plan

    v0 = get_engine("vllm-v0")
    assert v0.rules_for(parse_version(version, version)).non_torch == formula
    p = plan("llama-3.1-8b", gpu="h100", engine="vllm-v0", engine_version=version, seq=4096, max_model_len=4096)
    term = next(t for t in p.scenarios[0].budgets[0].terms if t.kind.value == "non-torch")
    assert term.bytes == round(fitted_constants()["non_torch"][formula] * 2**30)


@pytest.mark.parametrize("version, constant", [("0.8.5", "all_tp1_gib"), ("0.9.0.1", "all_tp1_gib"),
                                               ("0.9.1", "tp1_old_gib"), ("0.17.0", "tp1_old_gib"),
                                               ("0.18.0", "tp1_gib")])
def test_v1_subtracts_the_non_torch_memory_its_formula_counts(version, constant):
    """v1/worker/gpu_worker.py determine_available_memory: 0.8.0-0.9.0.1 subtract torch's peak and every
    non-torch byte on the device (as V0 0.6.4); from 0.9.1 memory_profiling's increase since the init snapshot."""
    from kvplan.engines.common import fitted_constants
    from kvplan.planning import plan

    assert get_engine("vllm").rules_for(parse_version(version, version)).non_torch_tp1 == constant
    p = plan("llama-3.1-8b", gpu="h100", engine_version=version, max_model_len=8192)
    term = next(t for t in p.scenarios[0].budgets[0].terms if t.kind.value == "non-torch")
    assert term.bytes == round(fitted_constants()["non_torch"][constant] * 2**30)


@pytest.mark.parametrize("version, gpu, expected", [
    ("0.8.3", "l4", (2048, 1024)), ("0.8.3", "h100", (8192, 1024)), ("0.8.3", "h200", (8192, 1024)),
    ("0.8.4", "l4", (2048, 256)), ("0.8.4", "a100-80g", (2048, 256)),
    ("0.8.5", "a100-80g", (8192, 1024)), ("0.8.5", "l40s", (2048, 256)),
    ("0.9.0", "a100-80g", (2048, 256)), ("0.9.0", "h100", (8192, 1024)), ("0.19.0", "b200", (8192, 1024))])
def test_vllm_serve_scheduler_defaults_by_release(version, gpu, expected):
    """engine/arg_utils.py _set_default_args_v1: up to 0.8.3 the large defaults on devices named H100 / H200 and
    1024 sequences everywhere; 0.8.4 256 sequences elsewhere; 0.8.5 by memory (>= 70 GiB); 0.9.0 not on A100s."""
    from kvplan.planning import plan

    e = plan("llama-3.1-8b", gpu=gpu, engine_version=version, max_model_len=8192).scenarios[0].printed
    assert (e.max_num_batched_tokens, e.max_num_seqs) == expected


def test_vllm_v0_schedules_256_sequences():
    """V0's EngineArgs default max_num_seqs is 256 on every device (V1 raised it to 1024 on large GPUs)."""
    from kvplan.planning import plan

    e = plan("llama-3.1-8b", gpu="h100", engine="vllm-v0", engine_version="0.6.6", max_model_len=8192)
    assert e.scenarios[0].printed.max_num_seqs == 256


@pytest.mark.parametrize("engine, newer", [("vllm", "0.40.0"), ("sglang", "0.6.0"), ("tgi", "4.0.0"),
                                           ("vllm-v0", "0.11.0")])
def test_a_release_newer_than_any_read_uses_the_newest_rules_and_says_so(engine, newer):
    from kvplan.planning import plan

    eng = get_engine(engine)
    future = plan("llama-3.1-8b", gpu="h100", engine=engine, engine_version=newer, max_model_len=8192)
    newest = plan("llama-3.1-8b", gpu="h100", engine=engine, engine_version=eng.newest_read, max_model_len=8192)
    assert any("newer than the newest release kvplan has read" in n for n in future.scenarios[0].printed.notes)
    assert not any("newer than" in n for n in newest.scenarios[0].printed.notes)
    assert future.scenarios[0].capacity.kv_pool_bytes == newest.scenarios[0].capacity.kv_pool_bytes


def test_the_cuda_graph_estimate_is_the_median_of_the_newer_logs_and_a_prior_without_them():
    """vLLM >= 0.20 subtracts its CUDA-graph estimate: fitted as the median graph memory of the >= 0.20 logs that
    print one; with them left out (held out), the 0.5 GiB prior, never the value fitted on them."""
    from statistics import median

    from kvplan.engines.vllm_fit import CUDAGRAPH_PRIOR_GIB, fit_cudagraph

    rows = read_rows(CSV)
    newer = [i for i, r in enumerate(rows) if r["engine"] == "vLLM V1" and r["cuda_graph_gib"].strip()
             and r["engine_version"].strip() and not r["engine_version"].startswith("<")
             and parse_version(r["engine_version"], "0") >= (0, 20)
             and "enforce-eager" not in r["notes"]]  # an eager run captures no graphs
    assert newer
    fitted = fit_cudagraph(list(enumerate(rows)))
    assert fitted["estimate_gib"] == round(median(float(rows[i]["cuda_graph_gib"]) for i in newer), 3)
    assert fit_cudagraph(list(enumerate(rows)), frozenset(newer))["estimate_gib"] == CUDAGRAPH_PRIOR_GIB


def test_a_non_torch_constant_left_without_rows_borrows_a_neighbour_measured_alike():
    """Held out, a TP 1 non-torch constant borrows from a neighbour: as it is where both count the same bytes
    (V0 >= 0.6.5 and V1 0.9.1-0.17 both take only what the profile added after the init snapshot: vllm/utils
    memory_profiling), with the CUDA context added where the constant counts it and the neighbour does not
    (all_tp1: every non-torch byte on the device, V0 0.6.4 worker.py determine_num_available_blocks)."""
    from kvplan.engines.common import CUDA_CONTEXT_GIB
    from kvplan.engines.vllm_fit import fit_non_torch

    rows = list(enumerate(read_rows(CSV)))
    full = fit_non_torch(rows)
    v0 = get_engine("vllm-v0")
    def formula(r: dict[str, str]) -> str | None:
        version = r["engine_version"].strip()
        if r["engine"] != "vLLM V0" or not r["non_torch_gib"].strip() or not version or version.startswith(("<", ">=")):
            return None  # a row without a stated release (or only dated) is never fitted
        return v0.rules_for(parse_version(r["engine_version"], v0.default_version)).non_torch
    increase = frozenset(i for i, r in rows if formula(r) == "v0_increase_gib")
    context = frozenset(i for i, r in rows if formula(r) == "all_tp1_gib")
    assert increase and context
    without = fit_non_torch(rows, increase)
    assert without["v0_increase_gib"] == full["tp1_old_gib"] != full["v0_increase_gib"]
    assert without["v0_increase_source"] == "no row: the tp1_old value"
    without = fit_non_torch(rows, context)
    assert without["all_tp1_gib"] == round(full["v0_increase_gib"] + CUDA_CONTEXT_GIB, 3)
    assert "+ the 0.5 GiB CUDA context" in without["all_tp1_source"]
    both = fit_non_torch(rows, increase | context)  # no V0 row left: V1 0.9.1-0.17's, the context added
    assert both["all_tp1_gib"] == round(full["tp1_old_gib"] + CUDA_CONTEXT_GIB, 3)


def test_a_row_dated_before_a_release_uses_the_newest_rules_before_it():
    """engine_version `<X` (benchmarks/engine_logs.md): the version is not stated but the source predates release
    X, so the row is predicted under the newest rule row before X and scored as "version not stated"."""
    rows = read_rows(CSV)
    dated = [r for r in rows if (r.get("engine_version") or "").startswith("<0.15.0")]
    assert dated and all(band_of(r) == "vLLM, version not stated" for r in dated)
    setup = row_setup(dated[0], CSV.parent)
    assert setup.settings.version == "0.14.0"  # the rule row 0.14.0 is the newest before 0.15.0
    assert any("predates vLLM 0.15.0: 0.14.0 rules" in a for a in setup.assumptions)


def test_a_row_dated_to_a_range_uses_the_rules_of_that_range():
    """engine_version `>=W <X`: the log prints a wording first printed in release W (row 67's file:line prefixes
    are 0.8.5's) and predates X, so the newest rule row in [W, X) applies, not the newest release's rules."""
    rows = read_rows(CSV)
    ranged = [r for r in rows if (r.get("engine_version") or "").startswith(">=")]
    assert ranged and all(band_of(r).endswith("version not stated") for r in ranged)
    row = next(r for r in ranged if r["engine_version"] == ">=0.8.5 <0.9.0")
    setup = row_setup(row, CSV.parent)
    assert setup.settings.version == "0.8.5"
    assert any("predates vLLM 0.9.0 and prints wording first printed in 0.8.5: 0.8.5 rules" in a
               for a in setup.assumptions)
    assert csv_release(get_engine("vllm"), ">=0.8.5 <0.9.0") == ("0.8.5", "0.9.0 and prints wording first printed "
                                                                  "in 0.8.5")
    assert csv_release(get_engine("vllm"), "<0.15.0") == ("0.14.0", "0.15.0")


def test_a_row_quoting_its_mxfp4_backend_is_sized_with_it():
    """Rows 190 and 191 (vllm-project/vllm#23278 at 0.10.1, #33155 at 0.14.1): gpt-oss-120b on one H100 loads
    65.9651 GiB where the log warns that Marlin holds the experts and 64.38 GiB where it says "Using Triton
    backend"; validate reads the backend from the quoted line as explain reads it from a log, so both weights
    lines are predicted within 0.1%, and the Marlin row is 2% off when its notes are dropped (Triton, Hopper's
    default)."""
    from kvplan.validate import serving_features, validate_row

    rows = read_rows(CSV)
    marlin, triton = rows[190], rows[191]
    assert "23278" in marlin["source"] and "33155" in triton["source"]
    assert serving_features(marlin["notes"])["mxfp4_backend"] == "marlin"
    assert serving_features(triton["notes"])["mxfp4_backend"] == "triton"
    for i in (190, 191):
        assert validate_row(i, rows[i], CSV.parent).figures["weights"]["rel_err"] < 0.001
    bare = validate_row(190, {**marlin, "notes": ""}, CSV.parent).figures["weights"]
    assert bare["rel_err"] > 0.02
    assert serving_features("'Using V2 Model Runner'")["model_runner"] == "v2"


def test_a_log_beyond_its_configs_context_is_sized_at_the_logged_length():
    """Row 116 (Qwen3-4B-Instruct-2507 at 131,072 tokens, a public startup log) on the Qwen3-4B config (40,960):
    the engine started at that length, so validate sizes the row there and says so; the same row at a length
    the config allows is sized as before, without the assumption."""
    from kvplan.validate import validate_row

    rows = read_rows(CSV)
    row = rows[116]
    assert row["model"] == "Qwen/Qwen3-4B-Instruct-2507" and row["max_model_len"] == "131072"
    result = validate_row(116, row, CSV.parent)
    assert result.modelled and "kv_tokens" in result.figures
    assert any("beyond the config's context 40,960" in a for a in result.assumptions)
    short = validate_row(116, {**row, "max_model_len": "32768"}, CSV.parent)
    assert short.modelled and not any("beyond the config's context" in a for a in short.assumptions)
