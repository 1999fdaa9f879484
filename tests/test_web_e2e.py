"""The page in a real headless Chromium (Debian's, driven by Playwright): inputs change, numbers match the library
and the CLI's --json, and axe-core (vendored in tests/vendor/axe-core) finds no serious accessibility violation.

Screenshots of the page at 1400 and 390 px are kept in test-artifacts/ (web-page-1400.png, web-page-390.png).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import live_server

from kvplan.cli import main
from kvplan.explain import diagnose
from kvplan.planning import plan

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "tests/vendor/axe-core/axe.min.js"  # axe-core 4.14.1 (MPL-2.0, its LICENSE beside it), for tests only
WIDE, NARROW = 1400, 390
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)
# the flags a closed network needs (no background connections, no first-run work)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server():
    with live_server() as (host, port):  # the configuration `kvplan serve` runs
        yield f"http://{host}:{port}/"


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is not installed: apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": WIDE, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        page.wait_for_selector("body[data-ready]", timeout=30_000)
        yield page
        assert errors == []
        browser.close()


def settle(page, change) -> None:
    """Apply an input change and wait for the page to redraw from a fresh API answer."""
    before = page.get_attribute("body", "data-ready")
    change()
    page.wait_for_function(f"document.body.dataset.ready !== '{before}'", timeout=30_000)


def shown(page, gpu: str, field: str) -> str:
    return page.inner_text(f"#scenarios tr[data-gpu='{gpu}'] td[data-field='{field}']")


def back_to_the_default_model(page) -> None:
    """The model and GPUs the later tests start from (a test that changes them restores them)."""
    settle(page, lambda: page.select_option("#model", "llama-3.1-8b"))
    settle(page, lambda: page.select_option("#gpu", ["a10g", "h100"]))


def reveal(page, *ids: str) -> None:
    """Open the collapsed groups ("Engine settings", "Serving features", ...) holding these fields."""
    for id_ in ids:
        page.evaluate("id => { const d = document.getElementById(id).closest('details'); if (d) d.open = true; }",
                      id_)


def cli_json(*args: str):
    """The CLI's --json for the same inputs, through the CLI itself."""
    r = CliRunner().invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def chart_datasets(page):
    return page.evaluate("""() => Chart.getChart('chart').data.datasets.map(d => ({
        label: d.label, kind: d.kind, series: d.series, color: d.borderColor, dash: d.borderDash || [],
        points: d.data.length}))""")


def library(source, gpu: str, seq: int, users: int, engine: str = "vllm"):
    return plan(source, gpu=gpu, seq=seq, batch=users, max_model_len=seq, engine=engine).scenarios[0]


def test_default_view_matches_the_library(page):
    for gpu in ("a10g", "h100"):
        s = library("falcon-7b", gpu, 1000, 18)
        assert shown(page, gpu, "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
        assert shown(page, gpu, "fits") == ("yes" if s.capacity.fits else
                                            f"no: short {s.capacity.shortfall_bytes / 2**30:.2f} GiB")
        assert shown(page, gpu, "starts") == ("yes" if s.startup.starts else "no")
    assert "6,921,720,704 parameters" in page.inner_text("#summary")
    assert page.locator("#memory rect").count() >= 10
    kinds = [d["kind"] for d in chart_datasets(page)]
    assert kinds.count("article") == 2 and kinds.count("kvplan") == 2  # per GPU: kvplan and the article's line
    assert "vllm serve tiiuae/falcon-7b" in page.inner_text("#fit")
    assert "KV per token" in page.inner_text("#derivation")


def test_speed_under_load_matches_the_library(page):
    from kvplan import batching

    # the default view: falcon-7b, 18 users of 1,000 tokens on the first GPU (a10g), 128 output tokens, 200 requests
    lib = batching.load_for("falcon-7b", batching.Workload(872, 128, 200, concurrency=18), gpu="a10g",
                            kv_dtype="auto")
    rows = page.locator("#load tbody tr")
    assert rows.count() == 4
    ttft = rows.nth(0).locator("td")
    assert ttft.nth(0).inner_text() == "TTFT (ms)"
    assert ttft.nth(2).inner_text() == f"{lib.ttft_ms.median:.2f}"
    assert rows.nth(1).locator("td").nth(1).inner_text() == f"{lib.tpot_ms.mean:.2f}"
    assert f"{lib.output_tokens_per_sec:.1f} output tok/s" in page.inner_text("#load-summary")


def test_changing_inputs_updates_the_numbers(page):
    settle(page, lambda: page.fill("#seq", "2000"))
    assert shown(page, "a10g", "max_concurrent_requests") == \
        f"{library('falcon-7b', 'a10g', 2000, 18).capacity.max_concurrent_requests:,}"
    settle(page, lambda: page.select_option("#engine", "sglang"))
    # no utilization given: SGLang's own default mem_fraction_static for the GPU, as `kvplan plan` uses it
    s = plan("falcon-7b", gpu="h100", seq=2000, batch=18, max_model_len=2000, engine="sglang").scenarios[0]
    assert shown(page, "h100", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
    assert "python -m sglang.launch_server" in page.inner_text("#fit")
    settle(page, lambda: page.select_option("#engine", "vllm"))
    settle(page, lambda: page.select_option("#model", "llama-3.1-8b"))
    s = library("llama-3.1-8b", "h100", 2000, 18)
    assert shown(page, "h100", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"


def test_fit_options_reach_the_search(page):
    """The page's deployment search asks what `kvplan fit` asks: --max-gpus and --rank-by, and shows the layout
    (data-parallel attention past one node for DeepSeek-V3 on H100s)."""
    from kvplan.fit import Workload, search
    from kvplan.model.load import load_model

    reveal(page, "max-gpus")
    settle(page, lambda: page.select_option("#model", "deepseek-v3"))
    settle(page, lambda: page.select_option("#gpu", ["h100"]))
    settle(page, lambda: page.fill("#seq", "8192"))
    settle(page, lambda: page.fill("#users", "100"))
    settle(page, lambda: page.fill("#max-gpus", "16"))
    first = page.inner_text("#fit tbody tr:first-child")
    best = search(load_model("deepseek-v3"), Workload.from_options(100, 8192), ["h100"], max_gpus=16).candidates[0]
    assert best.layout in first and "--data-parallel-size-local 8" in first
    settle(page, lambda: page.select_option("#rank-by", "gpus"))
    by_gpus = search(load_model("deepseek-v3"), Workload.from_options(100, 8192), ["h100"], max_gpus=16,
                     rank_by="gpus").candidates[0]
    assert by_gpus.layout in page.inner_text("#fit tbody tr:first-child")
    settle(page, lambda: page.fill("#max-gpus", "8"))
    settle(page, lambda: page.select_option("#rank-by", "cost-per-token"))
    # back to the state the earlier tests left (the next ones start from it)
    settle(page, lambda: page.fill("#seq", "2000"))
    settle(page, lambda: page.fill("#users", "18"))
    back_to_the_default_model(page)


def test_fit_speed_targets_are_judged_at_load(page):
    """The page's fit takes --max-ttft and --load-stat and shows each judged candidate's TTFT under load, as the
    library's search gives it."""
    from kvplan.fit import Workload, search
    from kvplan.model.load import load_model

    reveal(page, "max-ttft")
    settle(page, lambda: page.fill("#max-ttft", "5"))
    result = search(load_model("llama-3.1-8b"), Workload.from_options(18, 2000, max_ttft=5), ["a10g", "h100"])
    first = result.candidates[0]
    assert first.load is not None
    cells = page.locator("#fit tbody tr:first-child td")
    assert cells.nth(8).inner_text() == f"{first.load.ttft_ms.median / 1000:.3f}"
    settle(page, lambda: page.select_option("#load-stat", "none"))
    assert page.locator("#fit tbody tr:first-child td").nth(8).inner_text() == "-"
    settle(page, lambda: page.select_option("#load-stat", "median"))
    settle(page, lambda: page.fill("#max-ttft", ""))


def test_serving_features_reach_the_plan(page):
    """The page's serving features are the CLI's flags: LoRA slots shrink the pool as plan's do, and MTP
    speculative decoding on DeepSeek-V3 gives plan's request count and fit's launch line."""
    reveal(page, "max-loras")
    settle(page, lambda: page.fill("#max-loras", "4"))
    settle(page, lambda: page.fill("#max-lora-rank", "64"))
    s = plan("llama-3.1-8b", gpu="h100", seq=2000, batch=18, max_model_len=2000, max_loras=4,
             max_lora_rank=64).scenarios[0]
    assert shown(page, "h100", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
    settle(page, lambda: page.fill("#max-loras", "0"))
    settle(page, lambda: page.select_option("#model", "deepseek-v3"))
    settle(page, lambda: page.select_option("#gpu", ["h200"]))
    settle(page, lambda: page.fill("#tp", "8"))
    settle(page, lambda: page.select_option("#spec-method", "mtp"))
    s = plan("deepseek-v3", gpu="h200", tp=8, seq=2000, batch=18, max_model_len=2000,
             speculative_method="mtp", num_speculative_tokens=1).scenarios[0]
    assert shown(page, "h200", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
    assert '"method": "mtp"' in page.inner_text("#fit")
    # back to the state the earlier tests left
    settle(page, lambda: page.select_option("#spec-method", ""))
    settle(page, lambda: page.fill("#tp", "1"))
    back_to_the_default_model(page)


def test_pasted_config(page):
    config = json.loads((ROOT / "src/kvplan/data/models/Qwen--Qwen3-8B.json").read_text())
    page.click("#config-box summary")
    settle(page, lambda: page.fill("#config", json.dumps(config)))
    s = plan(config, gpu="a10g", seq=2000, batch=18, max_model_len=2000).scenarios[0]
    assert shown(page, "a10g", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
    # a config.json written by Python may hold bare Infinity (Nemotron-H's time_step_limit): JSON.parse
    # refuses it, the page must not
    text = (ROOT / "src/kvplan/data/models/nvidia--Nemotron-H-56B-Base-8K.json").read_text()
    assert "Infinity" in text
    settle(page, lambda: page.fill("#config", text))
    s = plan(json.loads(text), gpu="h100", seq=2000, batch=18, max_model_len=2000).scenarios[0]
    assert page.is_hidden("#error")
    assert shown(page, "h100", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
    page.fill("#config", "{not json")
    page.wait_for_selector("#error:not([hidden])")
    assert "not JSON" in page.inner_text("#error")
    settle(page, lambda: page.click("#config-clear"))
    assert page.is_hidden("#error")


def test_bad_input_shows_one_line(page):
    page.fill("#seq", "0")
    page.wait_for_selector("#error:not([hidden])")
    assert "tokens per request must be a positive whole number" in page.inner_text("#error")
    settle(page, lambda: page.fill("#seq", "1000"))
    page.fill("#tp", "3")  # falcon's 71 heads / llama's 32: the API's own message comes through
    page.wait_for_selector("#error:not([hidden])")
    assert "does not divide" in page.inner_text("#error")
    settle(page, lambda: page.fill("#tp", "1"))


def test_explain_a_pasted_log(page):
    text = (ROOT / "tests/logs/vllm_v1_0.19_tp1_debug.log").read_text()
    page.fill("#log", text)  # the GPU's total comes from the log itself
    page.wait_for_selector("#explain-table tr[data-figure='kv_tokens']", timeout=30_000)
    expected = diagnose(text)
    row = page.inner_text("#explain-table tr[data-figure='kv_tokens']")
    assert f"{round(expected.predicted['kv_tokens']):,}" in row and f"{round(expected.logged['kv_tokens']):,}" in row
    assert abs(expected.predicted["kv_tokens"] / expected.logged["kv_tokens"] - 1) < 0.01
    page.select_option("#log-gpu", "a10g")  # "what if it had been an A10G": the prediction follows
    other = f"{round(diagnose(text, gpu='a10g').predicted['kv_tokens']):,}"
    page.wait_for_function(f"document.querySelector(\"#explain-table tr[data-figure='kv_tokens']\")"
                           f"?.innerText.includes('{other}')", timeout=30_000)


def test_screenshot_artifact(page):
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / f"web-page-{WIDE}.png"
    page.screenshot(path=str(out), full_page=True)
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 20_000


def test_legend_colours_match_their_series(page, server):
    """Each legend entry is drawn in its series' colour and dash; one colour per GPU, shared by its three lines;
    at 1400 and at 390 px."""
    legend_matches_series(page)
    narrow = page.context.browser.new_page(viewport={"width": NARROW, "height": 900})
    narrow.goto(server)
    narrow.wait_for_selector("body[data-ready]", timeout=30_000)
    legend_matches_series(narrow)
    narrow.close()


def legend_matches_series(page) -> None:
    items = page.evaluate("""() => Chart.getChart('chart').legend.legendItems.map(i => ({
        text: i.text, stroke: i.strokeStyle, dash: i.lineDash || []}))""")
    datasets = chart_datasets(page)
    assert [i["text"] for i in items] == [d["label"] for d in datasets]
    assert all(i["stroke"] == d["color"] and i["dash"] == d["dash"] for i, d in zip(items, datasets, strict=True))
    by_series: dict[str, set[str]] = {}
    for d in datasets:
        by_series.setdefault(d["series"], set()).add(d["color"])
    assert len(by_series) == 2 and all(len(c) == 1 for c in by_series.values())
    assert len({next(iter(c)) for c in by_series.values()}) == 2


def test_chart_ticks_sit_on_round_values(page):
    for axis in ("x", "y"):
        labelled = page.evaluate(f"Chart.getChart('chart').scales.{axis}.ticks.filter(t => t.label).map(t => t.value)")
        assert len(labelled) >= 3
        for v in labelled:
            mantissa = v / 10 ** math.floor(math.log10(v) + 1e-9)
            assert any(abs(mantissa - m) < 1e-9 for m in (1, 2, 5)), (axis, labelled)


def test_chart_says_when_a_series_is_capped_by_max_num_seqs(page):
    """llama-3.1-8b on H100 holds more short requests than vLLM's max_num_seqs runs: the cap is drawn (dotted,
    in the series' colour) and named."""
    from kvplan.model.load import load_model
    from kvplan.plots import concurrency_series

    data = concurrency_series(load_model("llama-3.1-8b"), ["a10g", "h100"], None, points=16)  # the engine's default
    cap = data["caps"]["h100 @ 100%"]  # vLLM 0.34: 1.0 with the extensible KV cache
    assert max(data["series"]["h100 @ 100%"]) > cap
    caps = [d for d in chart_datasets(page) if d["kind"] == "cap"]
    assert [d["label"] for d in caps] == [f"{k} max_num_seqs {n:,}" for k, n in data["caps"].items()]
    assert f"h100 @ 100% is capped at {cap:,} running requests" in page.inner_text("#chart-caps")
    rows = page.locator("#chart-table tbody tr")
    assert rows.count() == len(data["lengths"])


def test_an_error_marks_every_result_stale(page):
    page.fill("#tp", "3")  # falcon-7b's 71 heads do not split over 3 GPUs
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "stale" in page.get_attribute("body", "class")
    assert page.is_visible("#stale")
    assert float(page.evaluate("getComputedStyle(document.querySelector('#scenarios')).opacity")) < 0.5
    settle(page, lambda: page.fill("#tp", "1"))
    assert "stale" not in (page.get_attribute("body", "class") or "")
    assert not page.is_visible("#stale") and not page.is_visible("#error")


def test_launch_lines_do_not_break_inside_a_flag(page):
    style = page.evaluate("getComputedStyle(document.querySelector('#fit td.cmd')).wordBreak")
    assert style != "break-all"
    # each flag with its value is one unit on one line (its box one line high), the command's text unchanged
    heights = page.evaluate("""() => [...document.querySelectorAll('#fit .flag, #launch .flag')]
        .filter(s => s.textContent.startsWith('--'))
        .map(s => [s.textContent, s.getBoundingClientRect().height / parseFloat(getComputedStyle(s).fontSize)])""")
    assert heights and all(h < 2 for _, h in heights), heights  # one line: about 1.2 x the font size
    flags = page.evaluate("[...document.querySelectorAll('#fit code.command .flag')].map(s => s.textContent)")
    assert any(f.startswith("--gpu-memory-utilization ") for f in flags)


def test_narrow_screen_has_no_horizontal_overflow(page, server):
    narrow = page.context.browser.new_page(viewport={"width": NARROW, "height": 900})
    narrow.goto(server)
    narrow.wait_for_selector("body[data-ready]", timeout=30_000)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= NARROW
    assert narrow.inner_text("#gpu-chosen") == "chosen: a10g, h100"  # the list may scroll; the choice shows
    # stacked: the results below the inputs; wide: beside them
    assert narrow.evaluate("document.getElementById('results').getBoundingClientRect().top > "
                           "document.getElementById('inputs').getBoundingClientRect().bottom")
    assert page.evaluate("document.getElementById('results').getBoundingClientRect().left > "
                         "document.getElementById('inputs').getBoundingClientRect().right")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDE  # nor at 1400 px
    ARTIFACTS.mkdir(exist_ok=True)
    narrow.screenshot(path=str(ARTIFACTS / f"web-page-{NARROW}.png"), full_page=True)
    narrow.close()


def test_the_url_keeps_and_restores_the_inputs(page, server):
    settle(page, lambda: page.fill("#users", "32"))
    assert "users=32" in page.url and "model=llama-3.1-8b" in page.url
    settle(page, lambda: page.fill("#users", "18"))
    shared = page.context.browser.new_page(viewport={"width": WIDE, "height": 1400})
    shared.goto(f"{server}?model=llama-3.1-8b&gpu=h100&seq=4096&users=32&kv-dtype=fp8&allow-quant=1")
    shared.wait_for_selector("body[data-ready]", timeout=30_000)
    assert shared.input_value("#users") == "32" and shared.input_value("#kv-dtype") == "fp8"
    assert shared.is_checked("#allow-quant")
    s = plan("llama-3.1-8b", gpu="h100", seq=4096, batch=32, max_model_len=4096,
             kv_dtype="fp8").scenarios[0]
    cell = shared.inner_text("#scenarios tr[data-gpu='h100'] td[data-field='max_concurrent_requests']")
    assert cell == f"{s.capacity.max_concurrent_requests:,}"
    assert shared.locator("#scenarios tr[data-gpu='a10g']").count() == 0
    shared.close()


# ------------------------------------------------------------------------------ the page's numbers = the CLI's --json
def scenario_cells(page, s: dict) -> None:
    """The verdict row of a CLI --json scenario shows its numbers."""
    assert float(shown(page, s["gpu"], "util")) == s["util"]  # the page writes 1.0 as JavaScript does: "1"
    assert shown(page, s["gpu"], "kv_pool") == gib(s["kv_pool_bytes"])
    assert shown(page, s["gpu"], "max_concurrent_requests") == f"{s['max_concurrent_requests']:,}"
    assert shown(page, s["gpu"], "max_seq_len") == f"{s['max_seq_len']:,}"
    assert shown(page, s["gpu"], "fits") == ("yes" if s["fits"] else f"no: short {gib(s['shortfall_bytes'])}")
    if s["launch_command"]:
        assert s["launch_command"] in page.inner_text(f"#launch li[data-gpu='{s['gpu']}']")


def test_verdict_uses_the_engines_default_utilization(page):
    """No utilization given: the verdict under SGLang uses its own default mem_fraction_static per GPU, as
    `kvplan plan` does without --util (not vLLM's 0.9)."""
    assert page.input_value("#util") == ""
    settle(page, lambda: page.select_option("#engine", "sglang"))
    cli = cli_json("plan", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "1000", "--batch", "18",
                   "--max-model-len", "1000", "--engine", "sglang")
    assert {s["util"] for s in cli["scenarios"]} != {0.9}
    for s in cli["scenarios"]:
        scenario_cells(page, s)
    # the chart follows: each GPU at the fraction the verdict uses
    series = {d["series"] for d in chart_datasets(page)}
    assert series == {f"{s['gpu']} @ {s['util']:.0%}" for s in cli["scenarios"]}
    settle(page, lambda: page.fill("#util", "0.8, 0.9"))  # several: one column each, as --util repeated
    cli = cli_json("plan", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "1000", "--batch", "18",
                   "--max-model-len", "1000", "--engine", "sglang", "--util", "0.8", "--util", "0.9")
    assert page.locator("#scenarios tbody tr").count() == 4 == len(cli["scenarios"])
    settle(page, lambda: page.fill("#util", ""))
    settle(page, lambda: page.select_option("#engine", "vllm"))


def test_multi_node_layout_matches_the_cli(page):
    """PP and GPUs in all (data-parallel replicas) reach plan: two replicas of TP 4 x PP 2 of Llama-3.1-70B."""
    reveal(page, "pp")
    settle(page, lambda: page.select_option("#model", "llama-3.1-70b"))
    settle(page, lambda: page.select_option("#gpu", ["h100"]))
    settle(page, lambda: page.fill("#tp", "4"))
    settle(page, lambda: page.fill("#pp", "2"))
    settle(page, lambda: page.fill("#gpus-all", "16"))
    cli = cli_json("plan", "llama-3.1-70b", "--gpu", "h100", "--tp", "4", "--pp", "2", "--gpus", "16", "--seq",
                   "1000", "--batch", "18", "--max-model-len", "1000")
    scenario_cells(page, cli["scenarios"][0])
    assert "--pipeline-parallel-size 2 --data-parallel-size 2" in page.inner_text("#launch")
    assert "PP 2, 2 replica(s) over 16 GPUs" in page.inner_text("#summary")
    settle(page, lambda: page.fill("#gpus-all", ""))
    settle(page, lambda: page.fill("#pp", "1"))
    settle(page, lambda: page.fill("#tp", "1"))
    back_to_the_default_model(page)


def test_engine_settings_and_serving_features_match_the_cli(page):
    """The collapsed groups' fields are plan's flags: max-num-seqs, block size, eager mode, a shared prefix, CPU
    offload and LoRA give the CLI's JSON."""
    reveal(page, "max-num-seqs", "shared-prefix")
    page.fill("#max-lora-rank", "16")  # an earlier test left 64 (LoRA off: no change)
    settle(page, lambda: page.fill("#max-num-seqs", "12"))
    settle(page, lambda: page.fill("#block-size", "32"))
    settle(page, lambda: page.check("#enforce-eager"))
    settle(page, lambda: page.fill("#shared-prefix", "512"))
    settle(page, lambda: page.fill("#cpu-offload-gb", "4"))
    settle(page, lambda: page.fill("#max-loras", "2"))
    cli = cli_json("plan", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "1000", "--batch", "18",
                   "--max-model-len", "1000", "--max-num-seqs", "12", "--block-size", "32", "--enforce-eager",
                   "--shared-prefix", "512", "--cpu-offload-gb", "4", "--enable-lora", "--max-loras", "2")
    for s in cli["scenarios"]:
        scenario_cells(page, s)
    assert "--enable-lora --max-loras 2" in page.inner_text("#fit")  # the search sizes them too
    settle(page, lambda: page.fill("#max-model-len", "auto"))  # the largest that starts, as --max-model-len auto
    cli = cli_json("plan", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "1000", "--batch", "18",
                   "--max-model-len", "auto", "--max-num-seqs", "12", "--block-size", "32", "--enforce-eager",
                   "--shared-prefix", "512", "--cpu-offload-gb", "4", "--enable-lora", "--max-loras", "2")
    for s in cli["scenarios"]:
        scenario_cells(page, s)
    for field, value in (("max-model-len", ""), ("max-num-seqs", ""), ("block-size", ""), ("shared-prefix", "0"),
                         ("cpu-offload-gb", "0"), ("max-loras", "0")):
        settle(page, lambda f=field, v=value: page.fill(f"#{f}", v))
    settle(page, lambda: page.uncheck("#enforce-eager"))


def test_kv_cache_sizing_matches_the_cli(page):
    """vLLM 0.34's --no-enable-extensible-kv-cache from the engine settings: the profile's estimate at 0.92, as
    the CLI gives it, and the launch line carries the flag."""
    reveal(page, "extensible-kv-cache")
    settle(page, lambda: page.select_option("#extensible-kv-cache", "off"))
    cli = cli_json("plan", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "1000", "--batch", "18",
                   "--max-model-len", "1000", "--no-enable-extensible-kv-cache")
    assert {s["util"] for s in cli["scenarios"]} == {0.92}
    for s in cli["scenarios"]:
        scenario_cells(page, s)
    assert "--no-enable-extensible-kv-cache" in page.inner_text("#launch")
    settle(page, lambda: page.select_option("#extensible-kv-cache", ""))


def test_explicit_dimensions_match_the_cli(page):
    """The article's view: a model by layers, d_model and parameters (kvplan plan --layers --hidden --params)."""
    reveal(page, "dim-layers")
    page.fill("#dim-layers", "32")
    page.fill("#dim-hidden", "4096")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "explicit dimensions need parameters as well" in page.inner_text("#error")
    settle(page, lambda: page.fill("#dim-params", "7B"))
    cli = cli_json("plan", "--layers", "32", "--hidden", "4096", "--params", "7B", "--gpu", "a10g", "--gpu", "h100",
                   "--seq", "1000", "--batch", "18", "--max-model-len", "1000")
    for s in cli["scenarios"]:
        scenario_cells(page, s)
    assert page.inner_text("#summary").startswith(cli["model"]["name"])
    assert "explicit dimensions give the verdict only" in page.inner_text("#fit-error")
    page.fill("#dim-params", "")  # an error until every dimension is gone
    page.fill("#dim-hidden", "")
    settle(page, lambda: page.fill("#dim-layers", ""))
    assert page.is_hidden("#error") and page.is_hidden("#fit-error")

def speed_at_rate_matches_the_cli(page, rate: str) -> None:
    """The page's speed under load at arrival rate `rate` equals `kvplan perf --rate` on the first GPU."""
    reveal(page, "load-rate", "max-model-len")
    settle(page, lambda: page.fill("#load-rate", rate))
    settle(page, lambda: page.fill("#max-model-len", "4096"))  # at the model's 131,072 the A10G would not start
    cli = cli_json("perf", "llama-3.1-8b", "--gpu", "a10g", "--prompt", "872", "--output", "128", "--num-prompts",
                   "200", "--rate", rate, "--max-model-len", "4096")
    rows = page.locator("#load tbody tr")
    for i, key in enumerate(("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms")):
        cells = rows.nth(i).locator("td")
        assert [cells.nth(j).inner_text() for j in (1, 2, 3)] == [f"{cli[key][s]:.2f}" for s in
                                                                  ("mean", "median", "p99")]
    assert f"{cli['request_throughput']:.2f} req/s" in page.inner_text("#load-summary")


def test_speed_at_a_rate_matches_the_cli(page):
    """An arrival rate instead of closed-loop users."""
    speed_at_rate_matches_the_cli(page, "2")
    settle(page, lambda: page.fill("#load-rate", ""))
    settle(page, lambda: page.fill("#max-model-len", ""))


def test_fit_matches_the_cli(page):
    """The deployment search's options (prompt / output split, price overrides, ranking, candidates shown,
    cross-node TP) give `kvplan fit --json`'s candidates."""
    reveal(page, "price")
    settle(page, lambda: page.fill("#fit-output", "200"))
    settle(page, lambda: page.fill("#price", "h100=1.5"))
    settle(page, lambda: page.select_option("#rank-by", "cost-per-hour"))
    settle(page, lambda: page.fill("#top", "3"))
    settle(page, lambda: page.check("#allow-cross-node-tp"))
    cli = cli_json("fit", "llama-3.1-8b", "--users", "18", "--prompt", "800", "--output", "200", "--gpu", "a10g",
                   "--gpu", "h100", "--price", "h100=1.5", "--rank-by", "cost-per-hour", "--top", "3",
                   "--allow-cross-node-tp")
    rows = page.locator("#fit tbody tr")
    assert rows.count() == len(cli["candidates"]) == 3
    for i, c in enumerate(cli["candidates"]):
        cells = rows.nth(i).locator("td")
        assert cells.nth(1).inner_text() == c["gpu"] and cells.nth(2).inner_text() == c["layout"]
        assert cells.nth(10).inner_text() == f"{c['cost_per_hour']:.2f}"
        assert cells.nth(11).inner_text() == f"{c['cost_per_million_tokens']:.3f}"
        assert c["command"] in cells.nth(12).inner_text()
    settle(page, lambda: page.uncheck("#allow-cross-node-tp"))
    settle(page, lambda: page.fill("#top", "5"))
    settle(page, lambda: page.select_option("#rank-by", "cost-per-token"))
    settle(page, lambda: page.fill("#price", ""))
    settle(page, lambda: page.fill("#fit-output", ""))


def test_offload_options_match_the_cli(page):
    """The KV offloading backend on the verdict (LMCache's tier does not shrink the pool, its launch line says
    so) and fit's CPU-offload dimension (its candidates carry --cpu-offload-gb): as `kvplan plan` / `fit`."""
    reveal(page, "kv-offloading-backend", "allow-cpu-offload")
    settle(page, lambda: page.fill("#kv-offloading-size", "40"))
    settle(page, lambda: page.select_option("#kv-offloading-backend", "lmcache"))
    cli = cli_json("plan", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "1000", "--batch", "18",
                   "--max-model-len", "1000", "--kv-offloading-size", "40", "--kv-offloading-backend", "lmcache")
    for s in cli["scenarios"]:
        scenario_cells(page, s)
    assert "--kv-offloading-backend lmcache" in page.inner_text("#launch")
    settle(page, lambda: page.fill("#kv-offloading-size", ""))
    settle(page, lambda: page.select_option("#kv-offloading-backend", "native"))
    settle(page, lambda: page.fill("#allow-cpu-offload", "8"))
    cli = cli_json("fit", "llama-3.1-8b", "--users", "18", "--seq", "1000", "--gpu", "a10g", "--gpu", "h100",
                   "--allow-cpu-offload", "8")
    rows = page.locator("#fit tbody tr")
    assert rows.count() == len(cli["candidates"])
    for i, c in enumerate(cli["candidates"]):
        assert c["command"] in rows.nth(i).locator("td").nth(12).inner_text()
    settle(page, lambda: page.fill("#allow-cpu-offload", "0"))


def test_explain_suggestions_match_the_cli(page):
    """The explain form takes the CLI's targets; its "what each change would give" table is `kvplan explain
    --json`'s suggestions, figure by figure."""
    log = ROOT / "tests/logs/vllm_v1_0.19_tp1_debug.log"
    page.select_option("#log-gpu", "l40s")  # what if it had run on an L40S, with these targets
    page.fill("#log", log.read_text())
    page.fill("#target-concurrency", "64")
    page.fill("#target-len", "8192")
    cli = cli_json("explain", str(log), "--gpu", "l40s", "--target-concurrency", "64", "--target-len", "8192")
    assert cli["suggestions"]
    first = cli["suggestions"][0]
    page.wait_for_function("([n, c, v]) => document.querySelectorAll('#suggestions tbody tr').length === n && "
                           "document.querySelector('#suggestions tbody tr').dataset.change === c && "
                           "document.querySelector('#suggestions tbody tr td[data-field=kv_tokens]')"
                           "?.dataset.value === v",
                           arg=[len(cli["suggestions"]), first["change"], str(first["predicted"]["kv_tokens"])],
                           timeout=30_000)
    for i, s in enumerate(cli["suggestions"]):
        row = page.locator("#suggestions tbody tr").nth(i)
        assert row.get_attribute("data-change") == s["change"]
        if "error" in s:
            assert s["error"] in row.inner_text()
            continue
        for key, value in s["predicted"].items():
            assert float(row.locator(f"td[data-field='{key}']").get_attribute("data-value")) == value
        assert row.locator("td[data-field='meets_target']").inner_text() == \
            {True: "yes", False: "no", None: "-"}[s["meets_target"]]
    for field in ("#target-concurrency", "#target-len", "#log"):
        page.fill(field, "")
    page.select_option("#log-gpu", "")


def test_errors_name_the_pages_fields_not_cli_flags(page):
    """An error the library words for the CLI ("give --gpu (e.g. --gpu h100)") names the page's field."""
    page.fill("#log", (ROOT / "tests/logs/sglang_server_args_gemma3.log").read_text())
    page.wait_for_selector("#explain-error", timeout=30_000)
    message = page.inner_text("#explain-error")
    assert "give “GPU the log ran on” (e.g. h100)" in message and "--gpu" not in message
    page.select_option("#log-gpu", "h100")  # the field named: the log is explained
    page.wait_for_selector("#explain-table", timeout=30_000)
    page.fill("#log", "")
    page.select_option("#log-gpu", "")
    reveal(page, "shared-prefix")
    page.fill("#shared-prefix", "5000")  # longer than the 1,000-token requests
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    message = page.inner_text("#error")
    assert "“shared prefix tokens”" in message and "--shared-prefix" not in message
    settle(page, lambda: page.fill("#shared-prefix", "0"))


# ------------------------------------------------------------------------------------------ accessibility
def axe_violations(page) -> list[str]:
    """axe-core's violations of impact serious or critical on the page as it stands (every group opened and an
    explained log on it, so their fields are checked too)."""
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']}: " + ", ".join(str(n["target"]) for n in v["nodes"][:5])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_no_serious_accessibility_violation(page, server, width):
    fresh = page.context.browser.new_page(viewport={"width": width, "height": 1200})
    fresh.goto(server)
    fresh.wait_for_selector("body[data-ready]", timeout=30_000)
    fresh.fill("#log", (ROOT / "tests/logs/vllm_v1_0.19_tp1_debug.log").read_text())
    fresh.fill("#target-concurrency", "64")
    fresh.wait_for_selector("#suggestions tbody tr", timeout=30_000)
    problems = axe_violations(fresh)
    fresh.close()
    assert not problems, "\n".join(problems)


# -------------------------------------------------- the static speed estimate, all-at-once runs, the manifest
def speed_cells(page, cli: dict) -> None:
    """The speed estimate's rows show `kvplan perf --json`'s figures (without a load)."""
    page.wait_for_selector("#speed tbody tr", timeout=30_000)

    def value(field: str) -> str:
        return page.inner_text(f"#speed tr[data-field='{field}'] td:nth-child(2)")

    d, p, m = cli["decode"], cli["prefill"], cli["memory"]
    assert value("step_ms") == f"{d['step_seconds'] * 1000:.2f}"
    assert value("tokens_per_sec_per_user") == f"{d['tokens_per_sec_per_user']:.1f}"
    assert value("tokens_per_sec_total") == f"{d['tokens_per_sec_total']:.1f}"
    assert value("decode_bound") == d["bound"]
    assert value("ttft_seconds") == f"{p['ttft_seconds']:.3f}"
    assert value("prefill_bound") == p["bound"]
    assert value("fits") == ("yes" if m["fits"] else "no")
    assert value("max_batch") == f"{m['max_batch']:,}"
    summary = page.inner_text("#speed-summary")
    assert summary.startswith(f"{cli['model']} on {cli['tp'] * cli['pp']} x {cli['gpu']}")
    assert f"batch {cli['batch']:,} at {cli['context']:,} tokens, a prompt of {cli['prompt']:,} tokens" in summary
    assert ("does not fit" in summary) == (not m["fits"])


def test_static_speed_matches_the_cli(page):
    """The speed estimate is `kvplan perf --batch USERS --prompt TOKENS-OUTPUT --context TOKENS --json` on the
    first GPU: the default view, then other users, GPU and TP, and a batch that does not fit."""
    cli = cli_json("perf", "llama-3.1-8b", "--gpu", "a10g", "--batch", "18", "--prompt", "872", "--context", "1000")
    speed_cells(page, cli)
    settle(page, lambda: page.select_option("#gpu", ["h100"]))
    settle(page, lambda: page.fill("#users", "64"))
    settle(page, lambda: page.fill("#tp", "2"))
    cli = cli_json("perf", "llama-3.1-8b", "--gpu", "h100", "--tp", "2", "--batch", "64", "--prompt", "872",
                   "--context", "1000")
    speed_cells(page, cli)
    settle(page, lambda: page.fill("#tp", "1"))
    settle(page, lambda: page.fill("#users", "2000"))
    cli = cli_json("perf", "llama-3.1-8b", "--gpu", "h100", "--batch", "2000", "--prompt", "872", "--context", "1000")
    assert cli["memory"]["fits"] is False
    speed_cells(page, cli)
    settle(page, lambda: page.fill("#users", "18"))
    settle(page, lambda: page.select_option("#gpu", ["a10g", "h100"]))


def test_speed_all_at_once_matches_the_cli(page):
    """An arrival rate of inf: every request at once (`--rate inf`); a bad rate is one line."""
    speed_at_rate_matches_the_cli(page, "inf")
    page.fill("#load-rate", "fast")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "arrival rate must be a number above 0, inf" in page.inner_text("#error")
    settle(page, lambda: page.fill("#load-rate", ""))
    settle(page, lambda: page.fill("#max-model-len", ""))
    assert page.is_hidden("#error")


def manifest_is(page, text: str) -> None:
    page.wait_for_function("t => document.getElementById('manifest').textContent === t", arg=text, timeout=30_000)


def test_kubernetes_manifest_matches_the_cli(page):
    """The manifest box under the candidates shows `kvplan fit --emit k8s`'s text, follows the inputs while open,
    and gives the CLI's one line when no candidate meets the targets."""
    def emitted(*args: str) -> str:
        r = CliRunner().invoke(main, ["fit", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "1000",
                                      *args, "--emit", "k8s"])
        assert r.exit_code == 0, r.output
        return r.output

    assert not page.evaluate("document.getElementById('manifest-box').open")
    page.click("#manifest-box summary")
    manifest_is(page, emitted("--users", "18"))
    assert page.inner_text("#manifest").startswith("apiVersion: leaderworkerset.x-k8s.io/v1")
    assert page.is_hidden("#manifest-error")
    settle(page, lambda: page.fill("#users", "200"))
    manifest_is(page, emitted("--users", "200"))
    reveal(page, "max-ttft")
    settle(page, lambda: page.fill("#max-ttft", "0.0001"))
    page.wait_for_selector("#manifest-error:not([hidden])", timeout=30_000)
    refused = CliRunner().invoke(main, ["fit", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "1000",
                                        "--users", "200", "--max-ttft", "0.0001", "--emit", "k8s"])
    assert refused.exit_code != 0
    message = page.inner_text("#manifest-error").removeprefix("kvplan fit --emit k8s: ")
    assert "nothing to write a manifest for" in message and message in refused.output
    settle(page, lambda: page.fill("#max-ttft", ""))
    settle(page, lambda: page.fill("#users", "18"))
    manifest_is(page, emitted("--users", "18"))
    page.click("#manifest-box summary")  # closed again, as the earlier tests left it
    assert not page.evaluate("document.getElementById('manifest-box').open")


def test_memory_bars_are_readable_on_a_narrow_screen(page, server):
    """At 390 px the memory bars are drawn at the column's width: every label at least 11 px high on screen and
    inside the drawing (the legend wraps); at 1400 px the drawing keeps its 900-unit layout."""
    assert page.get_attribute("#memory", "viewBox").startswith("0 0 900 ")
    narrow = page.context.browser.new_page(viewport={"width": NARROW, "height": 900})
    narrow.goto(server)
    narrow.wait_for_selector("body[data-ready]", timeout=30_000)
    boxes = narrow.evaluate("""() => { const svg = document.getElementById('memory').getBoundingClientRect();
        return [...document.querySelectorAll('#memory text')].map(t => { const r = t.getBoundingClientRect();
          return {text: t.textContent, size: parseFloat(getComputedStyle(t).fontSize) * svg.width /
                  document.getElementById('memory').viewBox.baseVal.width,
                  inside: r.left >= svg.left - 0.5 && r.right <= svg.right + 0.5}; }); }""")
    assert boxes and all(b["size"] >= 11 and b["inside"] for b in boxes), boxes
    texts = [b["text"] for b in boxes]
    assert any(t.startswith("a10g @ 100%: ") and t.endswith(" GiB") for t in texts)
    assert {"weights", "KV pool", "left by utilization"} <= set(texts)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= NARROW
    narrow.close()
