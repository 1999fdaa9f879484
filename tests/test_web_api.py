"""The JSON API: the same JSON as the CLI's --json, 422 for bad input, 413 for big bodies, no server files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from kvplan.cli import main
from kvplan.web.app import CONFIG_LIMIT, TEXT_LIMIT, create_app

ROOT = Path(__file__).resolve().parents[1]
FALCON = json.loads((ROOT / "src/kvplan/data/models/tiiuae--falcon-7b.json").read_text())


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), raise_server_exceptions=False)


def cli_json(*args: str):
    r = CliRunner().invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_catalogs_match_the_cli(client):
    assert client.get("/api/models").json() == cli_json("models")
    assert client.get("/api/gpus").json() == cli_json("gpus")


def test_plan_is_the_cli_json(client):
    body = {"model": "falcon-7b", "gpu": ["a10g", "h100"], "util": [0.7, 1.0], "seq": 1000, "batch": 18}
    r = client.post("/api/plan", json=body)
    assert r.status_code == 200
    cli = cli_json("plan", "falcon-7b", "--gpu", "a10g", "--gpu", "h100", "--util", "0.7", "--util", "1.0",
                   "--seq", "1000", "--batch", "18")
    assert r.json() == cli


def test_plan_serving_features_are_the_cli_json(client):
    """LoRA, offload, a shared prefix and speculative decoding through the API give the CLI's JSON."""
    body = {"model": "deepseek-v3", "gpu": ["h200"], "tp": 8, "seq": 8192, "speculative_method": "mtp",
            "num_speculative_tokens": 2, "shared_prefix": 1024}
    r = client.post("/api/plan", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == cli_json("plan", "deepseek-v3", "--gpu", "h200", "--tp", "8", "--seq", "8192",
                                "--speculative-method", "mtp", "--num-speculative-tokens", "2",
                                "--shared-prefix", "1024")
    body = {"model": "llama-3.1-8b", "gpu": ["l4"], "seq": 4096, "max_loras": 2, "max_lora_rank": 32,
            "cpu_offload_gb": 4}
    assert client.post("/api/plan", json=body).json() == cli_json(
        "plan", "llama-3.1-8b", "--gpu", "l4", "--seq", "4096", "--enable-lora", "--max-loras", "2",
        "--max-lora-rank", "32", "--cpu-offload-gb", "4")
    bad = client.post("/api/plan", json={"model": "llama-3.1-8b", "gpu": ["h100"], "speculative_method": "mtp",
                                         "num_speculative_tokens": 1})
    assert bad.status_code == 422 and "multi-token-prediction" in bad.text


def test_perf_under_load_is_the_cli_json(client):
    body = {"model": "llama-3.1-8b", "gpu": "h100", "prompt": 512, "output": 64, "num_prompts": 40,
            "concurrency": 8, "engine": "sglang"}
    r = client.post("/api/perf", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == cli_json("perf", "llama-3.1-8b", "--gpu", "h100", "--prompt", "512", "--output", "64",
                                "--num-prompts", "40", "--concurrency", "8", "--engine", "sglang")
    rate = client.post("/api/perf", json={**body, "concurrency": None, "rate": 2.0, "engine": "vllm"})
    assert rate.json() == cli_json("perf", "llama-3.1-8b", "--gpu", "h100", "--prompt", "512", "--output", "64",
                                   "--num-prompts", "40", "--rate", "2")
    drawn = client.post("/api/perf", json={**body, "random_range_ratio": 0.8, "disable_radix_cache": True})
    assert drawn.json() == cli_json("perf", "llama-3.1-8b", "--gpu", "h100", "--prompt", "512", "--output", "64",
                                    "--num-prompts", "40", "--concurrency", "8", "--engine", "sglang",
                                    "--random-range-ratio", "0.8", "--disable-radix-cache")
    assert drawn.json()["workload"]["prompt_range"] == [409, 512] and drawn.json()["scheduler"]["exact_reserve"]
    too_many = client.post("/api/perf", json={**body, "num_prompts": 100_000})
    assert too_many.status_code == 422
    plain = client.post("/api/perf", json={**body, "engine": "none"})
    assert plain.status_code == 422 and "not modelled" in plain.json()["detail"]


def test_fit_load_stat_is_the_cli_json(client):
    body = {"model": "llama-3.1-8b", "users": 64, "prompt": 2000, "output": 200, "max_ttft": 0.5, "gpu": ["h100"],
            "max_gpus": 2, "load_stat": "p99"}
    r = client.post("/api/fit", json=body)
    assert r.status_code == 200, r.text
    cli = cli_json("fit", "llama-3.1-8b", "--users", "64", "--prompt", "2000", "--output", "200",
                   "--max-ttft", "0.5", "--gpu", "h100", "--max-gpus", "2", "--load-stat", "p99")
    fit = r.json()
    fit.pop("search_seconds"), cli.pop("search_seconds")
    assert fit == cli and any("under_load" in c for c in fit["candidates"])


def test_fit_features_are_the_cli_json(client):
    body = {"model": "llama-3.1-8b", "users": 100, "seq": 4000, "gpu": ["h100"], "max_gpus": 1,
            "shared_prefix": 3000, "max_loras": 2, "max_lora_rank": 32}
    r = client.post("/api/fit", json=body)
    assert r.status_code == 200, r.text
    cli = cli_json("fit", "llama-3.1-8b", "--users", "100", "--seq", "4000", "--gpu", "h100", "--max-gpus", "1",
                   "--shared-prefix", "3000", "--enable-lora", "--max-loras", "2", "--max-lora-rank", "32")
    fit = r.json()
    fit.pop("search_seconds"), cli.pop("search_seconds")
    assert fit == cli and "--max-lora-rank 32" in fit["candidates"][0]["command"]


def test_plan_article_dimensions_via_pasted_config(client):
    r = client.post("/api/plan", json={"config": FALCON, "gpu": "a10g", "util": 0.9, "seq": 1000, "engine": "none"})
    assert r.status_code == 200
    data = r.json()
    assert data["kv_bytes_per_token"] == 8192 and data["params"] == 6_921_720_704
    assert data["model"]["source"] == "config object"


def test_plan_explain_adds_the_derivation(client):
    r = client.post("/api/plan", json={"model": "llama-3.1-8b", "gpu": "h100", "seq": 4096, "explain": True})
    assert any("KV per token" in step for step in r.json()["derivation"])


def test_inspect_fit_explain_validate_match_the_cli(client):
    assert client.post("/api/inspect", json={"model": "qwen3-30b-a3b", "tp": 2}).json() == \
        cli_json("inspect", "qwen3-30b-a3b", "--tp", "2")
    fit = client.post("/api/fit", json={"model": "llama-3.1-8b", "users": 50, "seq": 2048, "gpu": ["l4", "h100"],
                                        "price": ["h100=2.5"], "rank_by": "latency", "top": 3}).json()
    cli = cli_json("fit", "llama-3.1-8b", "--users", "50", "--seq", "2048", "--gpu", "l4", "--gpu", "h100",
                   "--price", "h100=2.5", "--rank-by", "latency", "--top", "3")
    assert len(cli["candidates"]) == 3 and cli["rank_by"] == "latency"
    fit.pop("search_seconds"), cli.pop("search_seconds")
    assert fit == cli
    text = (ROOT / "tests/logs/vllm_v1_0.19_tp1_debug.log").read_text()
    r = client.post("/api/explain", json={"log": text, "gpu": "h100", "target_concurrency": 50})
    assert r.status_code == 200
    assert r.json() == cli_json("explain", str(ROOT / "tests/logs/vllm_v1_0.19_tp1_debug.log"), "--gpu", "h100",
                                "--target-concurrency", "50")
    csv = (ROOT / "benchmarks/engine_logs.csv").read_text()
    v = client.post("/api/validate", json={"csv": csv}).json()
    assert v["summary"] == cli_json("validate", str(ROOT / "benchmarks/engine_logs.csv"))["summary"]


def test_concurrency_series_has_the_article_line(client):
    r = client.post("/api/concurrency", json={"model": "falcon-7b", "gpu": ["a10g"], "util": [0.9], "points": 4})
    data = r.json()
    assert len(data["lengths"]) == 4 and set(data["series"]) == set(data["naive"]) == {"a10g @ 90%"}


def test_concurrency_series_follows_engine_and_dtypes(client):
    from kvplan.planning import plan

    body = {"model": "llama-3.1-8b", "gpu": ["h100"], "util": [0.9], "points": 3}
    auto = client.post("/api/concurrency", json=body).json()
    fp8 = client.post("/api/concurrency", json={**body, "kv_dtype": "fp8"}).json()
    sglang = client.post("/api/concurrency", json={**body, "engine": "sglang"}).json()
    for data, options in ((fp8, {"kv_dtype": "fp8"}), (sglang, {"engine": "sglang"})):
        for length, y in zip(data["lengths"], data["series"]["h100 @ 90%"], strict=True):
            s = plan("llama-3.1-8b", gpu="h100", util=0.9, seq=length, max_model_len=length, **options).scenarios[0]
            assert y == s.printed.max_concurrency
    assert fp8["series"] != auto["series"] != sglang["series"]
    assert auto["caps"] == {"h100 @ 90%": plan("llama-3.1-8b", gpu="h100", seq=2048).scenarios[0].printed.max_num_seqs}


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/api/plan", {"model": "falcon-7b", "seq": 0}, "seq: Input should be greater than or equal to 1"),
    ("/api/plan", {"model": "falcon-7b", "tp": 3}, "does not divide the 71 attention heads"),
    ("/api/plan", {"model": "no-such-model"}, "unknown model 'no-such-model'"),
    ("/api/plan", {}, 'give either "model"'),
    ("/api/plan", {"model": "falcon-7b", "config": FALCON}, 'give either "model"'),
    ("/api/plan", {"model": "falcon-7b", "gpu": "h9000"}, "unknown GPU"),
    ("/api/plan", {"model": "falcon-7b", "util": 1.5}, "util"),
    ("/api/plan", {"model": "falcon-7b", "sequence": 5}, "sequence: Extra inputs are not permitted"),
    ("/api/plan", {"config": {"model_type": "llama"}}, "hidden_size"),
    ("/api/plan", {"config": {"model_type": "no-such-arch", "hidden_size": 8}}, "no-such-arch"),
    ("/api/fit", {"model": "llama-3.1-8b", "users": 4}, "give --seq, or --prompt and --output"),
    ("/api/fit", {"model": "llama-3.1-8b", "users": 4, "seq": 100, "engine": "tgi"}, "engine"),
    ("/api/fit", {"model": "llama-3.1-8b", "users": 4, "seq": 100, "price": ["h100"]}, "GPU=USD_PER_HOUR"),
    ("/api/explain", {"log": "hello"}, ""),
    ("/api/validate", {"csv": "a,b\n1,2\n"}, "lacks the column"),
])
def test_bad_input_is_422_with_a_message(client, path, body, message):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and message in detail and "\n" not in detail


def test_malformed_and_deep_bodies_are_422(client):
    r = client.post("/api/plan", content=b"{bad", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("the body is not valid JSON")
    deep = '{"model_type": "llama", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    r = client.post("/api/plan", content=('{"config": ' + deep + "}").encode(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "nested too deeply" in r.json()["detail"]


def test_no_request_reads_a_server_file(client, tmp_path):
    secret = tmp_path / "config.json"
    secret.write_text(json.dumps(FALCON))
    for model in (str(secret), str(tmp_path), "/etc/passwd", "../../etc/passwd", "~/.bashrc", "./config.json"):
        r = client.post("/api/plan", json={"model": model, "gpu": "a10g"})
        assert r.status_code == 422, model
        assert "not read here" in r.json()["detail"] or "unknown model" in r.json()["detail"]
    # a log naming a local model path, and a CSV naming a config file next to it: neither is opened
    log = (ROOT / "tests/logs/vllm_v1_0.19_tp1_debug.log").read_text()
    r = client.post("/api/explain", json={"log": log.replace("meta-llama/Llama-3.1-8B-Instruct", str(secret)),
                                          "gpu": "h100"})
    assert r.status_code == 422 and "not read here" in r.json()["detail"]
    import csv as csvlib
    import io

    rows = list(csvlib.DictReader(io.StringIO((ROOT / "benchmarks/engine_logs.csv").read_text())))
    row = next(r for r in rows if r["config"])
    row["config"] = str(secret)
    out = io.StringIO()
    writer = csvlib.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    csv = out.getvalue()
    v = client.post("/api/validate", json={"csv": csv})
    assert v.status_code == 200 and v.json()["counts"]["modelled"] == 0
    assert "is not in the embedded catalog" in json.dumps(v.json()["rows"][0])
    for path in ("/static/../app.py", "/static/app.py", "/static/%2e%2e%2fapp.py"):
        assert client.get(path).status_code == 404


def test_hub_lookups_only_when_allowed(client, monkeypatch):
    from kvplan.model.sources import hub

    calls = []
    monkeypatch.setattr(hub, "fetch", lambda repo: calls.append(repo) or (_ for _ in ()).throw(
        hub.InputError("stub hub: no network in tests")))
    r = client.post("/api/plan", json={"model": "someorg/some-model", "gpu": "a10g"})
    assert r.status_code == 422 and "--allow-hub" in r.json()["detail"] and calls == []
    open_client = TestClient(create_app(allow_hub=True), raise_server_exceptions=False)
    r = open_client.post("/api/plan", json={"model": "someorg/some-model", "gpu": "a10g"})
    assert calls == ["someorg/some-model"] and r.status_code == 422


def test_big_bodies_are_413(client):
    big_config = {"model_type": "llama", "pad": "x" * (CONFIG_LIMIT + 70_000)}
    r = client.post("/api/plan", json={"config": big_config})
    assert r.status_code == 413 and "over 1 MB" in r.json()["detail"]
    r = client.post("/api/explain", json={"log": "x" * (TEXT_LIMIT + 70_000)})
    assert r.status_code == 413 and "over 5 MB" in r.json()["detail"]
    # a 3 MB log is accepted (and explained or refused on its content, not its size)
    r = client.post("/api/explain", json={"log": "INFO nothing here\n" * 170_000})
    assert r.status_code == 422
    # without a Content-Length header (chunked), the limit still holds
    def chunks():
        yield b'{"log": "'
        for _ in range(60):
            yield b"y" * 100_000
        yield b'"}'
    r = client.post("/api/explain", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_openapi_document_describes_every_endpoint(client):
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/models", "/api/gpus", "/api/plan", "/api/inspect", "/api/fit", "/api/explain",
            "/api/validate", "/api/perf"} <= set(doc["paths"])
    plan = doc["components"]["schemas"]["PlanRequest"]["properties"]
    assert {"model", "config", "gpu", "util", "seq", "tp", "kv_dtype", "engine", "max_model_len"} <= set(plan)
    assert doc["paths"]["/api/plan"]["post"]["requestBody"]["content"]["application/json"]
    for path in ("/api/plan", "/api/fit", "/api/explain"):  # errors are documented as they are sent
        errors = doc["paths"][path]["post"]["responses"]
        assert errors["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert "413" in errors
    assert doc["components"]["schemas"]["Problem"]["properties"]["detail"]["type"] == "string"
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_page_and_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for name, kind in (("app.js", "javascript"), ("app.css", "css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert "https://" not in r.text


def test_serve_refuses_a_bad_port():
    r = CliRunner().invoke(main, ["serve", "--port", "70000"])
    assert r.exit_code == 2 and "is not a TCP port" in r.output


def test_the_chart_library_is_vendored_with_its_licence(client):
    """Chart.js is served from the package (no CDN) with its MIT licence, and the wheel's package data ships both."""
    import tomllib
    from importlib import resources

    page = client.get("/").text
    assert '<script src="/static/vendor/chartjs/chart.umd.min.js"></script>' in page
    lib = client.get("/static/vendor/chartjs/chart.umd.min.js")
    assert lib.status_code == 200 and "javascript" in lib.headers["content-type"]
    assert lib.text.startswith("/*!\n * Chart.js v4.")
    licence = client.get("/static/vendor/chartjs/LICENSE.md")
    assert licence.status_code == 200 and "The MIT License" in licence.text
    static = resources.files("kvplan.web") / "static"
    assert (static / "vendor/chartjs/LICENSE.md").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["kvplan.web"]
    assert "static/vendor/chartjs/*.js" in data and "static/vendor/chartjs/LICENSE.md" in data
    assert client.get("/static/vendor/chartjs/chart.umd.min.js.map").status_code == 404  # a fixed list


def test_page_errors_name_the_pages_fields():
    """The page's requests (X-Kvplan-Page) get errors naming its fields; API clients get the CLI's words."""
    from kvplan.web.app import page_message

    assert page_message("the log states neither the GPU nor its total memory: give --gpu (e.g. --gpu h100)",
                        "/api/explain") == ("the log states neither the GPU nor its total memory: give “GPU the log "
                                            "ran on” (e.g. h100)")
    assert page_message("no GPU memory to budget: give --gpu, --gpu-memory or --kv-memory", "/api/plan") == \
        "no GPU memory to budget: give “GPUs to compare”, “custom GPU memory” or “KV pool per GPU”"
    assert page_message("--price 'x': write GPU=USD_PER_HOUR, e.g. --price h100=2.49", "/api/fit") == \
        "“price overrides” 'x': write GPU=USD_PER_HOUR, e.g. h100=2.49"
    # the engine's own flags (what a launch line says) stay as they are
    assert page_message("raise --gpu-memory-utilization or lower --kv-cache-dtype", "/api/plan") == \
        "raise --gpu-memory-utilization or lower --kv-cache-dtype"
    client = TestClient(create_app(), raise_server_exceptions=False)
    log = (ROOT / "tests/logs/sglang_server_args_gemma3.log").read_text()
    plain = client.post("/api/explain", json={"log": log})
    assert plain.status_code == 422 and "give --gpu (e.g. --gpu h100)" in plain.json()["detail"]
    page = client.post("/api/explain", json={"log": log}, headers={"X-Kvplan-Page": "1"})
    assert page.status_code == 422 and "give “GPU the log ran on” (e.g. h100)" in page.json()["detail"]
    body = {"model": "llama-3.1-8b", "gpu": ["h100"], "seq": 1000, "shared_prefix": 5000}
    detail = client.post("/api/plan", json=body, headers={"X-Kvplan-Page": "1"}).json()["detail"]
    assert "“shared prefix tokens”" in detail and "--" not in detail


def test_no_util_is_the_engines_default_as_the_cli(client):
    """No utilization: plan is `kvplan plan` without --util (SGLang's own fraction per GPU), and the chart uses
    the fraction plan resolves on each GPU."""
    body = {"model": "llama-3.1-8b", "gpu": ["a10g", "h100"], "seq": 2000, "batch": 18, "engine": "sglang"}
    cli = cli_json("plan", "llama-3.1-8b", "--gpu", "a10g", "--gpu", "h100", "--seq", "2000", "--batch", "18",
                   "--engine", "sglang")
    assert client.post("/api/plan", json=body).json() == cli
    utils = {s["gpu"]: s["util"] for s in cli["scenarios"]}
    assert set(utils.values()) != {0.9}
    chart = client.post("/api/concurrency", json={"model": "llama-3.1-8b", "gpu": ["a10g", "h100"],
                                                  "engine": "sglang", "points": 3}).json()
    explicit = client.post("/api/concurrency", json={"model": "llama-3.1-8b", "gpu": ["h100"], "engine": "sglang",
                                                     "points": 3, "util": [utils["h100"]]}).json()
    assert set(chart["series"]) == {f"{g} @ {u:.0%}" for g, u in utils.items()}
    assert chart["series"][f"h100 @ {utils['h100']:.0%}"] == explicit["series"][f"h100 @ {utils['h100']:.0%}"]


def test_plan_options_the_cli_has_are_the_cli_json(client):
    """--max-model-len auto, --speculative-config, --gpu-memory, --reserve, --kv-memory, --entry-point, --block-size,
    --enforce-eager, --swap-space, --kv-offloading-size and the engine version through the API."""
    cases = [
        ({"max_model_len": "auto"}, ["--max-model-len", "auto"]),
        ({"speculative_config": '{"method": "ngram", "num_speculative_tokens": 3}'},
         ["--speculative-config", '{"method": "ngram", "num_speculative_tokens": 3}']),
        ({"gpu_memory": "24GiB", "reserve": "1GiB"}, ["--gpu-memory", "24GiB", "--reserve", "1GiB"]),
        ({"kv_memory": "10GiB"}, ["--kv-memory", "10GiB"]),
        ({"entry_point": "llm", "block_size": 32, "enforce_eager": True},
         ["--entry-point", "llm", "--block-size", "32", "--enforce-eager"]),
        ({"kv_offloading_size": 8, "engine_version": "0.19.0"},
         ["--kv-offloading-size", "8", "--engine-version", "0.19.0"]),
        ({"engine": "vllm-v0", "swap_space": 2}, ["--engine", "vllm-v0", "--swap-space", "2"]),
    ]
    for extra, flags in cases:
        body = {"model": "llama-3.1-8b", "gpu": ["h100"], "seq": 4096, "batch": 8, **extra}
        r = client.post("/api/plan", json=body)
        assert r.status_code == 200, (extra, r.text)
        assert r.json() == cli_json("plan", "llama-3.1-8b", "--gpu", "h100", "--seq", "4096", "--batch", "8",
                                    *flags), extra
    both = client.post("/api/plan", json={"model": "llama-3.1-8b", "gpu": ["h100"], "speculative_method": "ngram",
                                          "speculative_config": '{"method": "ngram"}'})
    assert both.status_code == 422 and "not both" in both.json()["detail"]


def test_explain_targets_are_the_cli_json(client):
    log = ROOT / "tests/logs/vllm_v1_0.19_tp1_debug.log"
    body = {"log": log.read_text(), "gpu": "l40s", "target_concurrency": 64, "target_len": 8192}
    r = client.post("/api/explain", json=body)
    assert r.status_code == 200 and r.json()["suggestions"]
    assert r.json() == cli_json("explain", str(log), "--gpu", "l40s", "--target-concurrency", "64",
                                "--target-len", "8192")


def test_plan_by_explicit_dimensions_is_the_cli_json(client):
    body = {"dims": {"layers": 32, "hidden": 4096, "params": "7B", "kv_heads": 8}, "gpu": ["a10g"], "seq": 2048}
    r = client.post("/api/plan", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == cli_json("plan", "--layers", "32", "--hidden", "4096", "--params", "7B", "--kv-heads", "8",
                                "--gpu", "a10g", "--seq", "2048")
    both = client.post("/api/plan", json={**body, "model": "falcon-7b"})
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    bad = client.post("/api/plan", json={**body, "dims": {"layers": 32, "hidden": 4096, "params": "lots"}},
                      headers={"X-Kvplan-Page": "1"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("“parameters” 'lots' is not a number")


def test_the_newer_serving_options_are_the_cli_json(client):
    """The LMCache tier, the Mllama image limit, fit's offload dimension and drafter, and perf's replicas and
    offload through the API give the CLI's JSON."""
    body = {"model": "llama-3.1-70b", "gpu": ["h100"], "tp": 4, "seq": 8192, "max_model_len": 8192,
            "kv_offloading_size": 90, "kv_offloading_backend": "lmcache"}
    assert client.post("/api/plan", json=body).json() == cli_json(
        "plan", "llama-3.1-70b", "--gpu", "h100", "--tp", "4", "--seq", "8192", "--max-model-len", "8192",
        "--kv-offloading-size", "90", "--kv-offloading-backend", "lmcache")
    body = {"model": "llama-3.2-11b-vision", "gpu": ["h100"], "engine": "vllm-v0", "max_num_seqs": 64,
            "max_model_len": 8192, "images_per_prompt": 2}
    assert client.post("/api/plan", json=body).json() == cli_json(
        "plan", "llama-3.2-11b-vision", "--gpu", "h100", "--engine", "vllm-v0", "--max-num-seqs", "64",
        "--max-model-len", "8192", "--limit-mm-per-prompt", "image=2")
    body = {"model": "llama-3.1-70b", "users": 16, "seq": 4096, "gpu": ["l40s"], "max_gpus": 4,
            "allow_cpu_offload": 20}
    got = client.post("/api/fit", json=body).json()
    want = cli_json("fit", "llama-3.1-70b", "--users", "16", "--seq", "4096", "--gpu", "l40s", "--max-gpus", "4",
                    "--allow-cpu-offload", "20", "--top", "200")
    got.pop("search_seconds"), want.pop("search_seconds")  # timings
    assert got == want and any(c["cpu_offload_gb"] == 20 for c in got["candidates"])
    body = {"model": "llama-3.1-8b", "gpu": "h100", "prompt": 512, "output": 64, "num_prompts": 40,
            "concurrency": 16, "gpus": 2, "cpu_offload_gb": 4, "max_model_len": 4096}
    assert client.post("/api/perf", json=body).json() == cli_json(
        "perf", "llama-3.1-8b", "--gpu", "h100", "--prompt", "512", "--output", "64", "--num-prompts", "40",
        "--concurrency", "16", "--gpus", "2", "--cpu-offload-gb", "4", "--max-model-len", "4096")


def cli_text(*args: str) -> str:
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_static_speed_is_the_cli_json(client):
    """POST /api/speed: `kvplan perf --json` without --concurrency / --rate (the static estimate)."""
    cases = [
        ({"model": "llama-3.1-8b", "gpu": "h100", "batch": 32}, ["llama-3.1-8b", "--gpu", "h100", "--batch", "32"]),
        ({"model": "llama-3.1-70b", "gpu": "h100", "tp": 4, "batch": 64, "prompt": 2048, "context": 8192},
         ["llama-3.1-70b", "--gpu", "h100", "--tp", "4", "--batch", "64", "--prompt", "2048", "--context", "8192"]),
        ({"model": "qwen3-30b-a3b", "gpu": "a100-80g", "pp": 2, "batch": 16},
         ["qwen3-30b-a3b", "--gpu", "a100-80g", "--pp", "2", "--batch", "16"]),
        ({"model": "deepseek-v3", "gpu": "h200", "tp": 8, "dp_attention": 8, "expert_parallel": True, "batch": 128},
         ["deepseek-v3", "--gpu", "h200", "--tp", "8", "--dp-attention", "8", "--expert-parallel", "--batch", "128"]),
        ({"model": "llama-3.1-8b", "gpu": "l4", "quant": "w4a16", "kv_dtype": "fp8", "cpu_offload_gb": 2},
         ["llama-3.1-8b", "--gpu", "l4", "--quant", "w4a16", "--kv-dtype", "fp8", "--cpu-offload-gb", "2"]),
        ({"config": FALCON, "gpu": "a10g", "batch": 5000, "prompt": 872, "context": 1000, "dtype": "fp16"},
         None),  # a pasted config (a batch that does not fit): the CLI reads the same file
    ]
    for body, flags in cases:
        r = client.post("/api/speed", json=body)
        assert r.status_code == 200, (body, r.text)
        if flags is None:
            flags = [str(ROOT / "src/kvplan/data/models/tiiuae--falcon-7b.json"), "--gpu", "a10g", "--batch",
                     "5000", "--prompt", "872", "--context", "1000", "--dtype", "fp16"]
            got, want = r.json(), cli_json("perf", *flags)
            got.pop("model"), want.pop("model")  # the name follows the source (a file, an object)
            assert got == want and got["memory"]["fits"] is False
            continue
        assert r.json() == cli_json("perf", *flags), body
    from kvplan.perf import static_estimate

    assert static_estimate("llama-3.1-8b", "h100", batch=32).to_dict() == cli_json(
        "perf", "llama-3.1-8b", "--gpu", "h100", "--batch", "32")
    for body, message in (({"model": "llama-3.1-8b", "gpu": "h100", "batch": 0}, "batch"),
                          ({"model": "llama-3.1-8b", "gpu": "h9000"}, "unknown GPU"),
                          ({"model": "llama-3.1-8b", "gpu": "h100", "tp": 3}, "does not divide"),
                          ({"model": "llama-3.1-8b", "gpu": "h100", "concurrency": 4}, "concurrency")):
        bad = client.post("/api/speed", json=body)
        detail = bad.json()["detail"]
        assert bad.status_code == 422 and message in detail and "\n" not in detail, (body, detail)


def test_perf_rate_inf_is_the_cli_json(client):
    """"rate": "inf" is `kvplan perf --rate inf` (every request at once); a bad rate is one line."""
    body = {"model": "llama-3.1-8b", "gpu": "h100", "prompt": 512, "output": 64, "num_prompts": 40, "rate": "inf"}
    r = client.post("/api/perf", json=body)
    assert r.status_code == 200, r.text
    cli = cli_json("perf", "llama-3.1-8b", "--gpu", "h100", "--prompt", "512", "--output", "64", "--num-prompts",
                   "40", "--rate", "inf")
    assert r.json() == cli
    assert client.post("/api/perf", json={**body, "rate": "INF"}).json() == cli
    for rate in ("fast", 0, -1, True):
        bad = client.post("/api/perf", json={**body, "rate": rate})
        assert bad.status_code == 422 and bad.json()["detail"].startswith("rate: ") and "inf" in bad.text, rate
    for raw in (b'{"model": "llama-3.1-8b", "gpu": "h100", "rate": NaN}',
                b'{"model": "llama-3.1-8b", "gpu": "h100", "rate": Infinity}'):
        bad = client.post("/api/perf", content=raw, headers={"content-type": "application/json"})
        assert bad.status_code == 422 and "\n" not in bad.json()["detail"]
    doc = client.get("/openapi.json").json()
    rate = doc["components"]["schemas"]["LoadRequest"]["properties"]["rate"]
    assert {"type": "string", "const": "inf"} in rate["anyOf"]
    assert "/api/speed" in doc["paths"] and "SpeedRequest" in doc["components"]["schemas"]


def test_fit_emit_k8s_is_the_cli_manifest(client):
    """"emit": "k8s" answers `kvplan fit --emit k8s`'s YAML, and its one-line error when no candidate qualifies."""
    body = {"model": "llama-3.1-70b", "users": 32, "seq": 8192, "gpu": ["h100", "a100-80g"], "emit": "k8s"}
    r = client.post("/api/fit", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/yaml")
    assert r.text == cli_text("fit", "llama-3.1-70b", "--users", "32", "--seq", "8192", "--gpu", "h100", "--gpu",
                              "a100-80g", "--emit", "k8s")
    assert r.text.startswith("apiVersion: leaderworkerset.x-k8s.io/v1")
    again = client.post("/api/fit", json=body)  # the kept answer keeps its media type
    assert again.text == r.text and again.headers["content-type"] == r.headers["content-type"]
    assert client.post("/api/fit", json={**body, "emit": None}).headers["content-type"] == "application/json"
    none = {"model": "llama-3.1-8b", "users": 4, "seq": 1000, "gpu": ["l4"], "max_ttft": 0.0001, "emit": "k8s"}
    bad = client.post("/api/fit", json=none)
    cli = CliRunner().invoke(main, ["fit", "llama-3.1-8b", "--users", "4", "--seq", "1000", "--gpu", "l4",
                                    "--max-ttft", "0.0001", "--emit", "k8s"])
    assert bad.status_code == 422 and cli.exit_code != 0
    assert bad.json()["detail"] in cli.output and "nothing to write a manifest for" in bad.json()["detail"]
    wrong = client.post("/api/fit", json={**body, "emit": "helm"})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("emit: ")
