"""Plots: the series come from the library (checked against the article and `plan`), the files from matplotlib."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kvplan import plots
from kvplan.cli import main
from kvplan.errors import InputError
from kvplan.fit import Workload, search
from kvplan.model.load import load_model
from kvplan.planning import plan

pytest.importorskip("matplotlib")


def test_concurrency_series_and_the_article_line():
    spec = load_model("falcon-7b")
    data = plots.concurrency_series(spec, ["a10g"], [0.9], points=6)
    lengths = data["lengths"]
    assert lengths[0] == 128 and lengths[-1] == 2048  # Falcon-7B's context is 2,048
    # the article's formula: (memory x util - 2 B x params) / (2 x 2 B x 32 layers x 4544 d_model x tokens)
    pool = 23028 * 2**20 * 0.9 - 2 * 6_921_720_704
    assert data["naive"]["a10g @ 90%"] == [pool // (2 * 2 * 32 * 4544 * n) for n in lengths]
    real = [plan(spec, gpu="a10g", util=0.9, seq=n, max_model_len=n).scenarios[0].printed.max_concurrency
            for n in lengths]
    assert data["series"]["a10g @ 90%"] == real
    assert all(r > 20 * a for r, a in zip(real, data["naive"]["a10g @ 90%"], strict=True))  # MQA: far more


def test_memory_breakdown_adds_up_to_the_device():
    spec = load_model("llama-3.1-8b")
    bar = plots.memory_breakdown(spec, ["h100"], [0.9], 8192)["h100 @ 90%"]
    s = plan(spec, gpu="h100", util=0.9, seq=8192, max_model_len=8192).scenarios[0]
    assert bar["device"] == s.printed.total_bytes / 2**30
    assert sum(bar["parts"].values()) == pytest.approx(bar["device"])
    assert bar["parts"]["KV pool"] == pytest.approx(s.budgets[0].kv_pool / 2**30)
    # Llama-3.1-70B on one H100: weights alone are above the device's total
    big = plots.memory_breakdown(load_model("llama-3.1-70b"), ["h100"], [0.9], 4096)["h100 @ 90%"]
    assert big["parts"]["weights"] > big["device"] and big["parts"]["KV pool"] == 0
    tp4 = plots.memory_breakdown(load_model("llama-3.1-70b"), ["h100"], [0.9], 4096, tp=4)["h100 @ 90%"]
    assert sum(tp4["parts"].values()) == pytest.approx(tp4["device"]) and tp4["parts"]["KV pool"] > 0


@pytest.mark.parametrize("kind", ["concurrency", "memory", "cost"])
@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_files_are_written(tmp_path, kind, suffix):
    out = tmp_path / f"p.{suffix}"
    r = CliRunner().invoke(main, ["plot", kind, "llama-3.1-8b", "-o", str(out), "--gpu", "l4", "--gpu", "h100",
                                  "--users", "1,10,100"])
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in data


def test_cost_series_is_the_cheapest_candidate_per_gpu():
    spec = load_model("llama-3.1-8b")
    data = plots.cost_series(spec, [10, 100], 1024, 256, ["l4", "h100"], allow_quant=False)
    for i, n in enumerate([10, 100]):
        result = search(spec, Workload(n, 1024, 256), ["l4", "h100"])
        for gpu, ys in data["series"].items():
            assert ys[i] == min(c.cost_per_million_tokens for c in result.candidates if c.gpu.alias == gpu)


def test_plot_bad_suffix_and_users():
    with pytest.raises(InputError, match=r"write a \.png or \.svg"):
        plots.plot_memory(load_model("falcon-7b"), ["a10g"], [0.9], 1000, "out.jpg")
    r = CliRunner().invoke(main, ["plot", "cost", "falcon-7b", "-o", "x.png", "--users", "a,b"])
    assert r.exit_code == 2 and "comma-separated counts" in r.output
