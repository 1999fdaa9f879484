"""Broken and hostile input (#11): no crash, no silently wrong number, no request that stalls."""

from __future__ import annotations

import contextlib
import json
import re
import time

import pytest
from click.testing import CliRunner

import kvplan
from kvplan import logs
from kvplan.cli import main
from kvplan.derivation import derivation
from kvplan.engines import engine_names
from kvplan.errors import KvplanError
from kvplan.model.catalog import models


def test_explain_over_the_whole_catalog_and_every_engine():
    """#11.6: --explain (the derivation) never crashes: a catalog model under every engine, on a small and a
    large GPU, plans or refuses with kvplan's own error."""
    for entry in models():
        for engine in engine_names():
            for gpu in ("a10g", "h200"):
                try:
                    p = kvplan.plan(entry.alias, gpu=gpu, engine=engine)
                except KvplanError:
                    continue
                assert derivation(p) and json.dumps(p.to_dict(), allow_nan=False)


def test_every_log_pattern_starts_with_a_literal_and_long_lines_are_skipped():
    """#11.1: a regex without a literal prefix scans every position of a line; a line longer than any real log
    line is not matched at all."""
    patterns = [p for w in logs._wordings() for p, _ in (*w.figures, *w.settings, *w.failures)]
    patterns += [p for p, _ in logs._SETTING_RULES]
    patterns += [p for w in logs._wordings() for c in w.release_clues for p in (c.pattern, c.absent_after) if p]
    for p in patterns:
        if p.pattern.startswith("^"):
            continue  # anchored at the line's start: tried once per line
        body = re.sub(r"^(\(\?<![^)]*\)|\\b)+", "", p.pattern)  # lookbehinds and \b match no character
        assert re.match(r"[A-Za-z#'\"]|\\[(.]", body), p.pattern
    assert logs.MAX_LINE >= 4096
    assert logs.parse_log("Available KV cache memory: 1.0 GiB\n" + "9" * (logs.MAX_LINE + 1)).figures == {
        "kv_available_gib": 1.0}


@pytest.mark.parametrize("line", ["1" * 1600, "on NVIDIA " * 4000, "Load weight end. " * 4000,
                                  "Model loading took " + "9" * 3000])
def test_adversarial_lines_parse_in_linear_time(line):
    start = time.perf_counter()
    with contextlib.suppress(KvplanError):
        logs.parse_log(line + "\nAvailable KV cache memory: 1.0 GiB")
    assert time.perf_counter() - start < 1.0


def test_numbers_end_at_a_sentence_period():
    """#11.8: 'gpu_memory_utilization=0.9.' (a period ending the sentence) is 0.9, not a crash."""
    got = logs.parse_log("Initializing a V1 LLM engine (v0.19.0) with config: model='x', gpu_memory_utilization=0.9.\n"
                         "Available KV cache memory: 3.5 GiB.")
    assert got.settings["gpu_memory_utilization"] == 0.9 and got.figures["kv_available_gib"] == 3.5


def test_json_output_never_holds_nan_or_infinity():
    """#11.7: a price of inf is refused with one line; every JSON the CLI writes is strict JSON."""
    r = CliRunner().invoke(main, ["fit", "llama-3.1-8b", "--users", "4", "--seq", "2048", "--gpu", "h100",
                                  "--price", "h100=inf", "--json"])
    assert r.exit_code == 2 and r.output.startswith("kvplan: error:") and len(r.output.strip().splitlines()) == 1
    ok = CliRunner().invoke(main, ["plan", "llama-3.1-8b", "--gpu", "h100", "--json"])
    json.loads(ok.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_a_csv_with_nan_figures_skips_the_row(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("engine,model,gpu,kv_available_gib,kv_tokens,config\nvLLM V1,meta-llama/Llama-3.1-8B,H100,nan,"
                   "inf,\n")
    r = CliRunner().invoke(main, ["validate", str(csv), "--json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["rows"][0]["modelled"] is False and "not a number" in data["rows"][0]["reason"]


def test_the_web_cache_never_answers_an_invalid_body():
    """#11.3: util Infinity was written as null in the cache key and got a cached valid answer."""
    from fastapi.testclient import TestClient

    from kvplan.web.app import create_app

    client = TestClient(create_app())
    body = {"model": "falcon-7b", "gpu": "a10g", "seq": 1000}
    assert client.post("/api/plan", json=body).status_code == 200
    raw = '{"model": "falcon-7b", "gpu": "a10g", "seq": 1000, "util": Infinity}'
    r = client.post("/api/plan", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "util" in r.json()["detail"]


JUNK = [0, -1, 1, 3, 10**6, 10**9, 2**63, 1e300, -1e300, 0.5, -0.5, float("nan"), float("inf"), None, True, "x",
        "8x", "", [], [1], {}, {"a": 1}, "auto"]


def _configs() -> list[dict]:
    from kvplan.model.catalog import DATA_PATH

    return [json.loads((DATA_PATH / f"{e.config}.json").read_text(encoding="utf-8")) for e in models()]


def test_mutated_configs_end_in_a_plan_or_one_of_kvplans_errors():
    """#11.2 / #11.5: a seeded fuzz over the catalog's configs (one to three fields replaced by junk, nested
    ones too) under every engine: every call ends in a plan with finite, non-negative byte counts, or in a
    KvplanError; none runs longer than 2 s (the layer, head, vocabulary and expert counts are bounded first)."""
    import random

    from conftest import fuzz_module
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    configs = _configs()
    mutate = fuzz_module().mutate  # the long fuzz's mutation (benchmarks/fuzz.py), on this test's junk

    @settings(max_examples=1000, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 2**32))
    def check(seed: int) -> None:
        rng = random.Random(seed)
        cfg = mutate(rng.choice(configs), rng, JUNK)
        start = time.perf_counter()
        try:
            p = kvplan.plan(cfg, gpu=rng.choice(["a10g", "h100"]), engine=rng.choice(engine_names()),
                            tp=rng.choice([1, 2]))
            derivation(p)
            data = json.loads(json.dumps(p.to_dict(), allow_nan=False))
            assert data["weights_bytes"] >= 0 and data["kv_bytes_per_token"] >= 0
        except KvplanError:
            pass
        assert time.perf_counter() - start < 2.0

    check()


def test_the_web_api_answers_hostile_bodies_with_one_line_422s():
    """#11.2 / #11.4: a config nested 300 levels (in a key kvplan never reads), 300 GPUs x 300 utilizations,
    a size of 1e400 GiB: each a 422 with one line, none a 500 or a 150 MB answer."""
    from fastapi.testclient import TestClient

    from kvplan.model.catalog import DATA_PATH
    from kvplan.web.app import create_app

    client = TestClient(create_app(), raise_server_exceptions=False)
    deep: dict = {}
    node = deep
    for _ in range(300):
        node["x"] = {}
        node = node["x"]
    cfg = json.loads((DATA_PATH / "meta-llama--Llama-3.1-8B.json").read_text())
    cfg["junk"] = deep
    for body in ({"config": cfg, "gpu": "h100"},
                 {"model": "falcon-7b", "gpu": ["a10g"] * 300, "util": [0.5] * 300},
                 {"model": "falcon-7b", "gpu": "a10g", "reserve": "1e400GiB"}):
        r = client.post("/api/plan", json=body)
        assert r.status_code == 422 and "\n" not in r.json()["detail"] and len(r.content) < 1000


def test_a_fit_answer_is_bounded():
    """#11.2: every GPU x up to 16 GPUs ranks thousands of candidates; the answer carries the best 200."""
    from fastapi.testclient import TestClient

    from kvplan.hardware import gpus
    from kvplan.web.app import FIT_TOP, create_app

    client = TestClient(create_app())
    r = client.post("/api/fit", json={"model": "llama-3.1-8b", "users": 8, "seq": 2048, "max_gpus": 16,
                                      "gpu": [g.alias for g in gpus()]})
    assert r.status_code == 200 and len(r.json()["candidates"]) <= FIT_TOP and len(r.content) < 1_000_000


@pytest.mark.parametrize(("field", "value"), [
    ("bits", None), ("bits", "four"), ("bits", -4), ("group_size", 0), ("modules_to_not_convert", [1]),
    ("modules_to_not_convert", [["x"]])])
def test_awq_quantization_config_fields_are_checked(field, value):
    """#11.5: each was a crash or a negative weight size; now one line naming the field."""
    from kvplan.errors import ConfigError
    from kvplan.model.catalog import DATA_PATH

    cfg = json.loads((DATA_PATH / "PatronusAI--Llama-3.1-70B-Instruct-AWQ-INT4.json").read_text())
    cfg["quantization_config"][field] = value
    with pytest.raises(ConfigError, match=field):
        kvplan.plan(cfg, gpu="h100")


@pytest.mark.parametrize(("field", "value"), [
    ("weight_block_size", [0, 0]), ("weight_block_size", [128]), ("ignored_layers", 5), ("ignored_layers", ["re:(["])])
def test_fp8_quantization_config_fields_are_checked(field, value):
    from kvplan.errors import ConfigError
    from kvplan.model.catalog import DATA_PATH

    cfg = json.loads((DATA_PATH / "Qwen--Qwen3-30B-A3B-FP8.json").read_text())
    cfg["quantization_config"][field] = value
    with pytest.raises(ConfigError, match=field):
        kvplan.plan(cfg, gpu="h100")


def test_explicit_head_dim_wider_than_the_model_is_refused():
    r = CliRunner().invoke(main, ["plan", "--layers", "32", "--hidden", "4096", "--params", "8B", "--head-dim",
                                  "8192", "--gpu", "h100"])
    assert r.exit_code == 2 and "--head-dim 8192 exceeds --hidden 4096" in r.output


def _safetensors(path, header: dict) -> None:
    import struct

    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_local_folders_with_broken_files_give_one_line(tmp_path):
    """#11.9: a non-UTF-8 config, an index that is not a map of shard names or names a missing shard, a header
    with negative shapes or reversed offsets (it gave -820 TB of weights): each is one kvplan error."""
    from kvplan.model.catalog import DATA_PATH

    config = (DATA_PATH / "HuggingFaceTB--SmolLM2-135M-Instruct.json").read_text()
    cases = {
        "latin1": lambda d: (d / "config.json").write_bytes(b'{"model_type": "llama", "name": "\xe9\xff"}'),
        "index map": lambda d: (d / "model.safetensors.index.json").write_text('{"weight_map": [1, 2]}'),
        "missing shard": lambda d: (d / "model.safetensors.index.json").write_text(
            '{"weight_map": {"a": "model-00001.safetensors"}}'),
        "negative shape": lambda d: _safetensors(d / "model.safetensors", {
            "w": {"dtype": "BF16", "shape": [-4, 4], "data_offsets": [0, 32]}}),
        "reversed offsets": lambda d: _safetensors(d / "model.safetensors", {
            "w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [64, 0]}}),
    }
    for name, make in cases.items():
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        (folder / "config.json").write_text(config)
        make(folder)
        with pytest.raises(KvplanError):
            kvplan.load_model(folder)


@pytest.mark.parametrize("name", ["a" * 5000, "/tmp/" + "a" * 5000, "x/" + "a" * 5000, "a\x00b",
                                  "foo--bar/baz", "foo/b..ar", "-foo/bar", "foo/bar."])
def test_model_names_the_file_system_or_the_hub_cannot_hold_give_one_line(name):
    """#11.3: a name longer than the file system allows raised OSError; one the Hub refuses ('--', '..', a
    part over 96 characters) raised the Hub library's validation error. Each is kvplan's error, and the
    echoed name is clipped."""
    with pytest.raises(KvplanError) as e:
        kvplan.load_model(name)
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def test_hub_ids_follow_the_hubs_rules():
    from kvplan.model.sources.hub import is_repo_id

    assert is_repo_id("meta-llama/Llama-3.1-8B") and is_repo_id("Qwen/Qwen2.5-7B-Instruct@main")
    assert is_repo_id("a" * 96 + "/b")
    assert not is_repo_id("a" * 97 + "/b")
    assert not any(map(is_repo_id, ["foo--bar/baz", "foo/b..ar", "-foo/bar", "foo/bar.", "./x/y"]))


def test_a_wrong_method_says_which_are_allowed():
    from fastapi.testclient import TestClient

    from kvplan.web.app import create_app

    r = TestClient(create_app()).get("/api/plan")
    assert r.status_code == 405 and "POST" in r.headers["allow"] and "\n" not in r.json()["detail"]


def test_error_messages_quote_huge_or_deep_values_briefly():
    """#11.10: a 300,000-element list was quoted whole; a value nested 100,000 levels overflowed repr."""
    from kvplan.model.catalog import DATA_PATH

    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["x"] = {}
        node = node["x"]
    cfg = json.loads((DATA_PATH / "meta-llama--Llama-3.1-8B.json").read_text())
    for junk in (deep, list(range(300_000)), "x" * 10_000):
        cfg["num_hidden_layers"] = junk
        with pytest.raises(KvplanError) as e:
            kvplan.load_model(cfg)
        assert len(str(e.value)) < 200


def test_the_web_cache_tells_infinity_from_null_in_a_pasted_config():
    """#11.3: pydantic's JSON writes Infinity as null, so a config refused for an infinite
    partial_rotary_factor was answered from the cache of the same config with a null one (which plans)."""
    from fastapi.testclient import TestClient

    from kvplan.model.catalog import DATA_PATH
    from kvplan.web.app import create_app

    client = TestClient(create_app())
    cfg = json.loads((DATA_PATH / "meta-llama--Llama-3.1-8B.json").read_text())
    assert client.post("/api/plan", json={"config": {**cfg, "partial_rotary_factor": None},
                                          "gpu": "h100"}).status_code == 200
    body = json.dumps({"config": {**cfg, "partial_rotary_factor": float("inf")}, "gpu": "h100"})
    r = client.post("/api/plan", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "partial_rotary_factor" in r.json()["detail"]


def test_a_config_holding_python_infinity_plans_on_the_web():
    """Nemotron-H's config.json holds `"time_step_limit": [0.0, Infinity]` (Python's JSON writer): the server
    reads it as the CLI does (the page sends it back bare, see app.js parseConfig)."""
    from fastapi.testclient import TestClient

    from kvplan.model.catalog import DATA_PATH
    from kvplan.web.app import create_app

    text = (DATA_PATH / "nvidia--Nemotron-H-56B-Base-8K.json").read_text()
    assert "Infinity" in text
    body = '{"gpu": "h100", "config": ' + text + "}"
    r = TestClient(create_app()).post("/api/plan", content=body, headers={"content-type": "application/json"})
    want = kvplan.plan(json.loads(text), gpu="h100").to_dict()["scenarios"][0]["kv_pool_bytes"]
    assert r.status_code == 200 and r.json()["scenarios"][0]["kv_pool_bytes"] == want


def test_more_heads_than_the_hidden_size_is_refused():
    """Found by benchmarks/fuzz.py: falcon-40b with hidden_size 3 gave heads 0 wide, then a ZeroDivisionError
    in vLLM's page sizes."""
    from kvplan.model.catalog import DATA_PATH

    cfg = json.loads((DATA_PATH / "tiiuae--falcon-40b.json").read_text())
    cfg["hidden_size"] = 3
    with pytest.raises(kvplan.ConfigError, match="0 wide"):
        kvplan.plan(cfg, gpu="a10g")


@pytest.mark.parametrize("engine", ["none", "vllm", "sglang"])
def test_the_derivation_of_a_config_without_a_context_length(engine):
    """Found by benchmarks/fuzz.py: no max_position_embeddings made --explain format a None context; the
    derivation now says what the JSON says, the longest context the pool allows, capped by nothing kvplan set."""
    from kvplan.model.catalog import DATA_PATH

    cfg = json.loads((DATA_PATH / "meta-llama--Llama-3.2-1B-Instruct.json").read_text())
    cfg["max_position_embeddings"] = None
    p = kvplan.plan(cfg, gpu="a10g", engine=engine)
    line = next(x for x in derivation(p) if "max context" in x)
    longest = p.to_dict()["scenarios"][0]["max_seq_len"]
    assert f"= {longest:,} tokens" in line and "capped" not in line and "max_model_len" not in line


def test_fit_refuses_a_top_below_one():
    """Found by benchmarks/fuzz.py: `--top -1` printed every candidate but the last."""
    r = CliRunner().invoke(main, ["fit", "llama-3.1-8b", "--users", "8", "--top", "-1"])
    assert r.exit_code == 2 and "--top" in r.output


@pytest.mark.parametrize("family", ["cli", "logs", "csvs", "web"])
def test_the_long_fuzz_families_hold_on_a_seeded_sample(family, monkeypatch):
    """The fast slice of benchmarks/fuzz.py (the long run: 100,000 inputs) for the families the config fuzz
    above does not cover: 150 seeded inputs each, every one an answer with strict, non-negative figures, or
    one of kvplan's errors; the seeds are the long run's, so a failure here replays there."""
    import random

    from conftest import fuzz_module

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cases = fuzz_module().Family()
    case = getattr(cases, f"{family}_case")
    problems = []
    for seed in range(150):
        with contextlib.suppress(KvplanError):
            problems += [f"seed {seed}: {p}" for p in case(random.Random(f"{family}-{seed}"))]
    assert problems == []


def test_validate_rows_with_a_nul_config_path_or_no_model_are_skipped_not_crashed(tmp_path):
    """Found by the long fuzz (csvs seeds 3004303, 3009966): row_setup, which the fit of the constants also calls,
    raised ValueError on a config name holding a NUL byte and IndexError on an empty model."""
    from kvplan.validate import validate

    header = ("source,engine,engine_version,model,gpu,kv_available_gib,kv_tokens,non_torch_gib,activation_peak_gib,"
              "config")
    text = "\n".join([header, "s,vLLM V1,0.19.0,x,h100,1,1,0.2,1.0,a\x00b.json",
                      "s,vLLM V1,0.19.0,,h100,1,1,0.2,1.0,"])
    (tmp_path / "rows.csv").write_text(text, encoding="utf-8")
    report = validate(tmp_path / "rows.csv")  # a file: configs are resolved next to it
    assert [r.modelled for r in report.rows] == [False, False]
    assert "not found" in report.rows[0].reason and "no model named" in report.rows[1].reason


def test_sglang_prints_no_free_memory_after_weights_that_do_not_fit():
    """Found by the long fuzz (configs seed 3000166): free memory after the weights went negative in the JSON;
    SGLang never gets to print that line when the weights do not fit."""
    from kvplan.planning import plan

    s = plan("llama-3.1-70b", gpu="l4", engine="sglang").scenarios[0]
    assert s.printed.free_before_weights_bytes > 0 and s.printed.free_after_weights_bytes is None
    # cli seed 6010296: a device smaller than the memory startup holds (CUDA context, distributed init)
    tiny = plan("llama-3.2-1b", gpu_memory="1GiB", tp=2, engine="sglang").scenarios[0]
    assert tiny.printed.free_before_weights_bytes is None and tiny.printed.free_after_weights_bytes is None


@pytest.mark.parametrize("model, path, junk", [
    ("llama-3.2-11b-vision", ("text_config", "cross_attention_layers"), [["x"]]),
    ("qwen3-30b-a3b", ("mlp_only_layers",), ["3", 1.5])])
def test_layer_index_lists_must_hold_whole_numbers(model, path, junk):
    """Found by the long fuzz (configs seed 5005928): a cross_attention_layers entry that was a list raised
    TypeError; every list of layer indices kvplan reads is checked element by element."""
    import json

    from kvplan.errors import ConfigError
    from kvplan.model import catalog

    entry = catalog.entries()[model]
    config = json.loads(entry.path().read_text(encoding="utf-8"))
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = junk
    with pytest.raises(ConfigError, match="must list whole numbers"):
        kvplan.plan(config, gpu="h100")


@pytest.mark.parametrize("script, argv", [
    ("validation_report.py", ["no-such-table.csv"]),
    ("loo_vllm_constants.py", ["no-such-table.csv"]),
    ("fit_vllm_constants.py", ["no-such-table.csv"]),
    ("perf_compare.py", ["--no-such-option"]),
])
def test_benchmark_scripts_end_bad_input_in_one_line(script, argv):
    """A benchmark script given a table it cannot read, or an option it does not take: one line, non-zero exit."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / script), *argv], capture_output=True, text=True,
                         timeout=120, cwd=root)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert re.search(r"error: (cannot read .*no-such-table\.csv|unrecognized arguments: --no-such-option)",
                     out.stderr.strip().splitlines()[-1])
