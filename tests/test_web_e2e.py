"""The page in a real headless Chromium (Debian's, driven by Playwright): inputs change, numbers match the library.

A screenshot of the page is kept in test-artifacts/web-page.png.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import live_server

from kvplan.explain import diagnose
from kvplan.planning import plan

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
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
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
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


def library(source, gpu: str, seq: int, users: int, engine: str = "vllm"):
    return plan(source, gpu=gpu, util=0.9, seq=seq, batch=users, max_model_len=seq, engine=engine).scenarios[0]


def test_default_view_matches_the_library(page):
    for gpu in ("a10g", "h100"):
        s = library("falcon-7b", gpu, 1000, 18)
        assert shown(page, gpu, "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
        assert shown(page, gpu, "fits") == ("yes" if s.capacity.fits else
                                            f"no: short {s.capacity.shortfall_bytes / 2**30:.2f} GiB")
        assert shown(page, gpu, "starts") == ("yes" if s.startup.starts else "no")
    assert "6,921,720,704 parameters" in page.inner_text("#summary")
    assert page.locator("#memory rect").count() >= 10
    assert page.locator("#chart polyline[stroke-dasharray]").count() == 2  # the article's line per GPU
    assert "vllm serve tiiuae/falcon-7b" in page.inner_text("#fit")
    assert "KV per token" in page.inner_text("#derivation")


def test_speed_under_load_matches_the_library(page):
    from kvplan import batching

    # the default view: falcon-7b, 18 users of 1,000 tokens on the first GPU (a10g), 128 output tokens, 200 requests
    lib = batching.load_for("falcon-7b", batching.Workload(872, 128, 200, concurrency=18), gpu="a10g", util=0.9,
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
    s = library("falcon-7b", "h100", 2000, 18, engine="sglang")
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
    settle(page, lambda: page.select_option("#model", "llama-3.1-8b"))
    settle(page, lambda: page.select_option("#gpu", ["a10g", "h100"]))


def test_fit_speed_targets_are_judged_at_load(page):
    """The page's fit takes --max-ttft and --load-stat and shows each judged candidate's TTFT under load, as the
    library's search gives it."""
    from kvplan.fit import Workload, search
    from kvplan.model.load import load_model

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
    settle(page, lambda: page.fill("#max-loras", "4"))
    settle(page, lambda: page.fill("#max-lora-rank", "64"))
    s = plan("llama-3.1-8b", gpu="h100", util=0.9, seq=2000, batch=18, max_model_len=2000, max_loras=4,
             max_lora_rank=64).scenarios[0]
    assert shown(page, "h100", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
    settle(page, lambda: page.fill("#max-loras", "0"))
    settle(page, lambda: page.select_option("#model", "deepseek-v3"))
    settle(page, lambda: page.select_option("#gpu", ["h200"]))
    settle(page, lambda: page.fill("#tp", "8"))
    settle(page, lambda: page.select_option("#spec-method", "mtp"))
    s = plan("deepseek-v3", gpu="h200", tp=8, util=0.9, seq=2000, batch=18, max_model_len=2000,
             speculative_method="mtp", num_speculative_tokens=1).scenarios[0]
    assert shown(page, "h200", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
    assert '"method": "mtp"' in page.inner_text("#fit")
    # back to the state the earlier tests left
    settle(page, lambda: page.select_option("#spec-method", ""))
    settle(page, lambda: page.fill("#tp", "1"))
    settle(page, lambda: page.select_option("#model", "llama-3.1-8b"))
    settle(page, lambda: page.select_option("#gpu", ["a10g", "h100"]))


def test_pasted_config(page):
    config = json.loads((ROOT / "src/kvplan/data/models/Qwen--Qwen3-8B.json").read_text())
    page.click("#config-box summary")
    settle(page, lambda: page.fill("#config", json.dumps(config)))
    s = plan(config, gpu="a10g", util=0.9, seq=2000, batch=18, max_model_len=2000).scenarios[0]
    assert shown(page, "a10g", "max_concurrent_requests") == f"{s.capacity.max_concurrent_requests:,}"
    # a config.json written by Python may hold bare Infinity (Nemotron-H's time_step_limit): JSON.parse
    # refuses it, the page must not
    text = (ROOT / "src/kvplan/data/models/nvidia--Nemotron-H-56B-Base-8K.json").read_text()
    assert "Infinity" in text
    settle(page, lambda: page.fill("#config", text))
    s = plan(json.loads(text), gpu="h100", util=0.9, seq=2000, batch=18, max_model_len=2000).scenarios[0]
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
    out = ARTIFACTS / "web-page.png"
    page.screenshot(path=str(out), full_page=True)
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 20_000


def test_legend_colours_match_their_series(page):
    # each legend entry is drawn in its series' colour (a CSS rule on svg text once turned them all grey)
    pairs = page.evaluate("""() => {
        const lines = [...document.querySelectorAll('#chart polyline:not([stroke-dasharray])')];
        const texts = [...document.querySelectorAll('#chart text[fill]')];
        return texts.map((t, i) => [getComputedStyle(t).fill, lines[i] && getComputedStyle(lines[i]).stroke]);
    }""")
    assert len(pairs) == 2 and all(fill == stroke for fill, stroke in pairs), pairs


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


def test_narrow_screen_has_no_horizontal_overflow(page, server):
    narrow = page.context.browser.new_page(viewport={"width": 390, "height": 900})
    narrow.goto(server)
    narrow.wait_for_selector("body[data-ready]", timeout=30_000)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 390
    assert narrow.inner_text("#gpu-chosen") == "chosen: a10g, h100"  # the list may scroll; the choice shows
    ARTIFACTS.mkdir(exist_ok=True)
    narrow.screenshot(path=str(ARTIFACTS / "web-page-390.png"), full_page=True)
    narrow.close()


def test_the_url_keeps_and_restores_the_inputs(page, server):
    settle(page, lambda: page.fill("#users", "32"))
    assert "users=32" in page.url and "model=llama-3.1-8b" in page.url
    settle(page, lambda: page.fill("#users", "18"))
    shared = page.context.browser.new_page(viewport={"width": 1100, "height": 1400})
    shared.goto(f"{server}?model=llama-3.1-8b&gpu=h100&seq=4096&users=32&kv-dtype=fp8&allow-quant=1")
    shared.wait_for_selector("body[data-ready]", timeout=30_000)
    assert shared.input_value("#users") == "32" and shared.input_value("#kv-dtype") == "fp8"
    assert shared.is_checked("#allow-quant")
    s = plan("llama-3.1-8b", gpu="h100", util=0.9, seq=4096, batch=32, max_model_len=4096,
             kv_dtype="fp8").scenarios[0]
    cell = shared.inner_text("#scenarios tr[data-gpu='h100'] td[data-field='max_concurrent_requests']")
    assert cell == f"{s.capacity.max_concurrent_requests:,}"
    assert shared.locator("#scenarios tr[data-gpu='a10g']").count() == 0
    shared.close()
