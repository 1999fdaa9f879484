"""The long hostile-input fuzz (issue #11): python benchmarks/fuzz.py [--n 100000] [--seed 0] [--workers 2].

Five families of seeded random inputs, each call checked the same way:
  configs  catalog config.json files with one to three fields (nested ones too) replaced by junk, planned
           under a random engine, GPU and TP through the Python API, with the derivation built;
  cli      `kvplan plan|inspect|perf|fit|models|gpus` with random flags, valid values mixed with junk;
  logs     the fixture startup logs in tests/logs with lines dropped, duplicated, truncated, numbers
           replaced, junk lines inserted, through the explain diagnosis;
  csvs     benchmarks/engine_logs.csv with rows and cells mangled, through the validator;
  web      random bodies to every POST endpoint of `kvplan serve` (in process, FastAPI's test client).

It counts, per family: exceptions that are not kvplan's own errors (a CLI run must exit 0, 1 or 2 with no
exception), results holding NaN or infinity (JSON is dumped with allow_nan=False), negative byte counts other
than a KV pool that is documented as negative when the weights do not fit (`kv_pool_bytes` and the derivation's
pool line), calls over 2 s (fit past its default search size, --max-gpus over 8, is counted apart), and
HTTP 5xx. Hub lookups are off (HF_HUB_OFFLINE=1): a mutated log can name a model outside the catalog, and the
time a network takes to fail is not kvplan's. The first few failures of each kind are printed with their
seed, so `--only FAMILY --seed S --n 1` replays one.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = {"configs": 0.40, "cli": 0.20, "logs": 0.20, "csvs": 0.10, "web": 0.10}
NEGATIVE_OK = {"kv_pool_bytes"}
SLOW = 2.0

JUNK = [None, True, False, 0, -1, 1, 2, 3, 7, 1.5, -0.5, 1e300, -1e300, 2**63, 10**18, 10**5, "", "8x", "auto",
        "four", "fp8", "bf16", [], [0], [1], [0, 0], [128], ["x"], [["x"]], {}, {"a": 1}, {"rope_type": "linear",
        "factor": -1e6}, {"factor": "8x"}, {"type": "dynamic", "factor": 0}, "x" * 300, list(range(2000))]
VALUES = {
    "--gpu": ["a10g", "h100", "H100 80GB HBM3", "l4", "mi300x", "nope", "", "a100-80g"],
    "--gpu-memory": ["24GiB", "24GB", "0GiB", "-1GiB", "1e400GiB", "80 GB", "x", "2EiB"],
    "--gpus": ["1", "2", "0", "-3", "1000000", "x"],
    "--tp": ["1", "2", "4", "8", "3", "0", "-1", "1000000"],
    "--pp": ["1", "2", "0", "7", "99999"],
    "--dtype": ["fp16", "bf16", "fp8", "int4", "float99", ""],
    "--kv-dtype": ["auto", "fp8", "int8", "x"],
    "--quant": ["fp8", "awq", "gptq", "nf4", "mxfp4", "w4a16", "q4", ""],
    "--util": ["0.9", "1", "0", "1.5", "-0.1", "nan", "inf", "0.5"],
    "--seq": ["1000", "8k", "128K", "1M", "0", "-5", "1e9", "2^40", "x", "4096"],
    "--batch": ["1", "8", "100", "0", "-1", "1000000000"],
    "--reserve": ["0GiB", "1GiB", "1e400GiB", "-1GiB", "x", "2 GB"],
    "--kv-memory": ["10GiB", "0GiB", "-1GiB", "1PiB", "x"],
    "--layers": ["32", "0", "100000", "-1"],
    "--hidden": ["4096", "0", "8191", "999999999"],
    "--params": ["7B", "7e9", "0", "-7B", "1e400", "x"],
    "--heads": ["32", "0", "10000", "7"],
    "--kv-heads": ["1", "8", "0", "33"],
    "--head-dim": ["128", "0", "8192"],
    "--vocab": ["32000", "0", "10000000000"],
    "--engine": ["vllm", "vllm-v0", "sglang", "tgi", "llamacpp", "none", "llama.cpp", "trt", ""],
    "--engine-version": ["0.19", "0.10.1.1", "0.5.4", "99", "x", "0.4.6"],
    "--max-model-len": ["auto", "4096", "0", "-1", "10M", "x"],
    "--max-num-batched-tokens": ["8192", "0", "1", "1G"],
    "--max-num-seqs": ["256", "0", "1", "100000"],
    "--block-size": ["16", "0", "7", "1024"],
    "--prompt": ["1024", "0", "1M", "x"],
    "--context": ["1024", "0", "10M"],
    "--users": ["1", "100", "0", "-2", "100000"],
    "--output": ["256", "0", "-1"],
    "--min-tokens-per-sec": ["10", "0", "-1", "nan", "1e9"],
    "--max-ttft": ["1", "0", "inf", "-1"],
    "--max-gpus": ["1", "4", "8", "0", "64", "1000"],
    "--price": ["h100=2.5", "h100=inf", "h100=-1", "nope=1", "h100", "a10g=nan"],
    "--top": ["1", "5", "0", "-1", "1000"],
}
FLAGS = {"plan": ["--gpu", "--gpu-memory", "--gpus", "--tp", "--pp", "--dtype", "--kv-dtype", "--quant", "--util",
                  "--seq", "--batch", "--reserve", "--kv-memory", "--engine", "--engine-version",
                  "--max-model-len", "--max-num-batched-tokens", "--max-num-seqs", "--block-size", "--layers",
                  "--hidden", "--params", "--heads", "--kv-heads", "--head-dim", "--vocab"],
         "inspect": ["--tp", "--dtype", "--quant", "--kv-dtype"],
         "perf": ["--gpu", "--tp", "--pp", "--dtype", "--quant", "--kv-dtype", "--batch", "--prompt", "--context"],
         "fit": ["--users", "--seq", "--prompt", "--output", "--min-tokens-per-sec", "--max-ttft", "--gpu",
                 "--max-gpus", "--engine", "--price", "--top"]}
SWITCHES = {"plan": ["--json", "--explain", "--require-fit", "--enforce-eager"], "inspect": ["--json"],
            "perf": ["--json"], "fit": ["--json", "--allow-quant", "--allow-fp8-kv"]}
MODELS = ["falcon-7b", "llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "deepseek-v3", "gemma-3-27b",
          "qwen3-30b-a3b", "gpt-oss-20b", "nope", "meta-llama/Llama-3.1-8B", "./missing.json", "a" * 300]


# ---------------------------------------------------------------------------------------------- checks
def _bad_numbers(data, path: str = "") -> list[str]:
    """NaN / infinity anywhere, and negative byte counts other than the documented negative pool."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                if isinstance(value, float) and not math.isfinite(value):
                    found.append(f"non-finite {path}{key}")
                elif value < 0 and "bytes" in str(key) and key not in NEGATIVE_OK:
                    found.append(f"negative {path}{key}={value}")
            else:
                found += _bad_numbers(value, f"{path}{key}.")
    elif isinstance(data, list):
        for value in data:
            found += _bad_numbers(value, path)
    return found


def _strict(data) -> list[str]:
    json.dumps(data, allow_nan=False)  # raises ValueError on NaN / infinity
    return _bad_numbers(data)


# ------------------------------------------------------------------------------------------- families
def mutate(config: dict, rng: random.Random, junk: list) -> dict:
    """A copy of config with one to three fields (nested ones too) replaced by a value from junk."""
    cfg = copy.deepcopy(config)
    for _ in range(rng.randint(1, 3)):
        node = cfg
        while True:
            key = rng.choice(list(node))
            if isinstance(node[key], dict) and node[key] and rng.random() < 0.3:
                node = node[key]
                continue
            node[key] = copy.deepcopy(rng.choice(junk))
            break
    return cfg


class Family:
    def __init__(self) -> None:
        import kvplan
        from kvplan.engines import engine_names
        from kvplan.model.catalog import DATA_PATH, models

        self.kvplan = kvplan
        self.engines = engine_names()
        self.configs = [json.loads((DATA_PATH / f"{e.config}.json").read_text(encoding="utf-8")) for e in models()]
        self.logs = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "logs").glob("*.log"))]
        self.csv = (ROOT / "benchmarks" / "engine_logs.csv").read_text(encoding="utf-8").splitlines()
        self._client = None
        self._runner = None
        self.outcomes: Counter = Counter()  # CLI exit codes, HTTP statuses
        self.untimed = False  # the case asked for more than the 2 s target covers

    # each returns a list of problems (empty: fine); kvplan's own errors are caught by the caller
    def configs_case(self, rng: random.Random) -> list[str]:
        from kvplan.derivation import derivation

        cfg = mutate(rng.choice(self.configs), rng, JUNK)
        p = self.kvplan.plan(cfg, gpu=rng.choice(["a10g", "h100", "l4"]), engine=rng.choice(self.engines),
                             tp=rng.choice([1, 2, 4]), seq=rng.choice([None, 1000, 32768]))
        derivation(p)
        return _strict(p.to_dict())

    def cli_case(self, rng: random.Random) -> list[str]:
        from click.testing import CliRunner

        from kvplan.cli import main

        self._runner = self._runner or CliRunner()
        command = rng.choice(["plan"] * 4 + ["inspect", "perf", "perf", "fit", "models", "gpus"])
        args = [command]
        if command in FLAGS:
            if rng.random() < 0.9:
                args.append(rng.choice(MODELS))
            for flag in rng.sample(FLAGS[command], rng.randint(0, min(5, len(FLAGS[command])))):
                args += [flag, rng.choice(VALUES[flag])]
            if command == "perf" and "--gpu" not in args and rng.random() < 0.8:
                args += ["--gpu", "h100"]
            if command == "fit" and "--users" not in args and rng.random() < 0.8:
                args += ["--users", "8", "--seq", "2048"]
            args += [s for s in SWITCHES[command] if rng.random() < 0.3]
        else:
            args += [rng.choice(["", "llama", "h100", "x" * 200])]
        # the 2 s target covers fit at its default search size (--max-gpus 8); up to 64 is allowed, and slower
        max_gpus = args[args.index("--max-gpus") + 1] if "--max-gpus" in args else "8"
        self.untimed = command == "fit" and (not max_gpus.isdigit() or int(max_gpus) > 8)
        result = self._runner.invoke(main, args)
        self.outcomes[f"exit {result.exit_code}"] += 1
        problems = []
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            problems.append(f"exception {type(result.exception).__name__}: {result.exception} in {args}")
        if result.exit_code not in (0, 1, 2):
            problems.append(f"exit {result.exit_code} in {args}")
        if result.exit_code == 0 and "--json" in args:
            problems += _strict(json.loads(result.output))
        elif result.exit_code != 0 and "Traceback" in result.output:
            problems.append(f"traceback in {args}")
        return problems

    def logs_case(self, rng: random.Random) -> list[str]:
        lines = rng.choice(self.logs).splitlines()
        for _ in range(rng.randint(1, 6)):
            if not lines:
                break
            i = rng.randrange(len(lines))
            move = rng.randrange(6)
            if move == 0:
                del lines[i]
            elif move == 1:
                lines.insert(i, lines[i])
            elif move == 2:
                lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
            elif move == 3:
                words = lines[i].split(" ")
                j = rng.randrange(len(words))
                words[j] = rng.choice(["0", "-1", "nan", "inf", "1e400", "0.9.", "99999999999999", "x", "1,2"])
                lines[i] = " ".join(words)
            elif move == 4:
                lines.insert(i, rng.choice(["1" * 5000, "on NVIDIA " * 500, "\x00\xff", "GiB GiB GiB"]))
            else:
                rng.shuffle(lines)
        kwargs = {}
        if rng.random() < 0.3:
            kwargs["model"] = rng.choice(MODELS)
        if rng.random() < 0.3:
            kwargs["gpu"] = rng.choice(VALUES["--gpu"])
        return _strict(self.kvplan.diagnose("\n".join(lines), **kwargs).to_dict())

    def csvs_case(self, rng: random.Random) -> list[str]:
        import tempfile

        from kvplan.validate import validate_text

        header, rows = self.csv[0], self.csv[1:]
        rows = rng.sample(rows, min(len(rows), rng.randint(1, 12)))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(rows))
            cells = rows[i].split(",")
            j = rng.randrange(len(cells))
            cells[j] = rng.choice(["", "nan", "inf", "-1", "0", "1e400", "x", '"', "a10g", "99", "0.9.", "\x00"])
            rows[i] = ",".join(cells if rng.random() < 0.8 else cells[: rng.randrange(len(cells) + 1)])
        if rng.random() < 0.1:
            header = ",".join(rng.sample(header.split(","), len(header.split(","))))
        text = "\n".join([header, *rows])
        if rng.random() < 0.2:
            with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
                f.write(text)
            try:
                return _strict(self.kvplan.validate_csv(f.name).to_dict())
            finally:
                Path(f.name).unlink()
        return _strict(validate_text(text).to_dict())

    def web_case(self, rng: random.Random) -> list[str]:
        if self._client is None:
            from fastapi.testclient import TestClient

            from kvplan.web.app import create_app

            self._client = TestClient(create_app(), raise_server_exceptions=False)
        path = rng.choice(["/api/plan", "/api/plan", "/api/inspect", "/api/fit", "/api/concurrency",
                           "/api/explain", "/api/validate"])
        fields = {"model": MODELS, "gpu": [*VALUES["--gpu"], ["a10g", "h100"], [], None, 3],
                  "util": [0.9, 0, 1.5, -1, "x", [0.5, 0.9], None], "tp": [1, 2, 0, -1, 1e9, "2"],
                  "seq": [1000, "8k", 0, -1, "1e9", None, 2**63], "batch": [1, 64, 0, -1],
                  "engine": VALUES["--engine"], "reserve": VALUES["--reserve"], "users": [8, 0, -1, 10**9],
                  "max_gpus": [1, 8, 0, 100], "explain": [True, False, "yes"], "points": [2, 50, 0, 10**6],
                  "log": [rng.choice(self.logs), "", "x" * 1000, None], "csv": ["\n".join(self.csv[:20]), "", "a,b"],
                  "config": [rng.choice(self.configs), {}, [], "x"], "quant": VALUES["--quant"],
                  "kv_dtype": VALUES["--kv-dtype"], "price": [["h100=2"], ["h100=inf"], "x"],
                  "top": [1, 200, 0, 10**6], "max_model_len": ["auto", 4096, 0, "x"]}
        body = {k: copy.deepcopy(rng.choice(v)) for k, v in rng.sample(sorted(fields.items()), rng.randint(0, 7))}
        if path in ("/api/explain",) and "log" not in body and rng.random() < 0.8:
            body["log"] = rng.choice(self.logs)
        if "model" not in body and "config" not in body and rng.random() < 0.8:
            body["model"] = rng.choice(MODELS)
        # Python's JSON writer (Infinity allowed): some real configs hold it (Mamba's time_step_limit)
        content = json.dumps(body).encode() if rng.random() < 0.95 else rng.choice(
            [b"{", b"\xff\xfe", b"[]", b"null", b'{"model": "falcon-7b"', b'{"model": "falcon-7b", "util": NaN}'])
        r = self._client.post(path, content=content, headers={"content-type": "application/json"})
        self.outcomes[f"HTTP {r.status_code}"] += 1
        if r.status_code >= 500:
            return [f"HTTP {r.status_code} {path} {json.dumps(body)[:200]}: {r.text[:200]}"]
        if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
            return _strict(r.json())
        if r.status_code >= 400 and "\n" in r.json().get("detail", ""):
            return [f"multi-line {r.status_code} {path}"]
        return []


def _work(task: tuple[str, int, int]) -> dict:
    family_name, first, count = task
    from kvplan.errors import KvplanError

    family = Family()
    case = getattr(family, f"{family_name}_case")
    tally: Counter = Counter()
    examples: list[str] = []
    slowest = 0.0
    for seed in range(first, first + count):
        rng = random.Random(f"{family_name}-{seed}")
        start = time.perf_counter()
        try:
            problems = case(rng)
            tally["ok"] += 1
        except KvplanError:
            problems = []
            tally["kvplan error"] += 1
        except ValueError as e:
            problems = [f"ValueError {e}"[:300]] if "Out of range float" not in str(e) else [f"non-finite: {e}"]
        except Exception as e:  # counting what escapes is the point
            problems = [f"{type(e).__name__}: {e}"[:300]]
        took = time.perf_counter() - start
        if not family.untimed:
            slowest = max(slowest, took)
        if took > SLOW and not family.untimed:
            problems.append(f"slow {took:.1f} s")
        tally["untimed (fit past its default search)"] += family.untimed
        for p in problems:
            kind = p.split(" ")[0].rstrip(":")
            tally[f"problem: {kind}"] += 1
            if len(examples) < 5:
                examples.append(f"{family_name} seed {seed}: {p}")
    tally.update(family.outcomes)
    return {"family": family_name, "tally": tally, "examples": examples, "slowest": slowest, "count": count}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="inputs in all, split across the families")
    ap.add_argument("--seed", type=int, default=0, help="first seed of each family")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=sorted(FAMILIES), help="one family only")
    args = ap.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"  # inherited by the spawned workers
    shares = {args.only: 1.0} if args.only else FAMILIES
    chunk = 250
    tasks = []
    for name, share in shares.items():
        total = max(1, round(args.n * share))
        tasks += [(name, args.seed + i, min(chunk, total - i)) for i in range(0, total, chunk)]
    start = time.perf_counter()
    results: dict[str, dict] = {}
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for r in pool.imap_unordered(_work, tasks):
            agg = results.setdefault(r["family"], {"tally": Counter(), "examples": [], "slowest": 0.0, "count": 0})
            agg["tally"].update(r["tally"])
            agg["examples"] += r["examples"][: max(0, 5 - len(agg["examples"]))]
            agg["slowest"] = max(agg["slowest"], r["slowest"])
            agg["count"] += r["count"]
    took = time.perf_counter() - start
    bad = 0
    print(f"{sum(a['count'] for a in results.values()):,} inputs in {took:.0f} s ({args.workers} workers)")
    for name in shares:
        agg = results[name]
        problems = {k: v for k, v in agg["tally"].items() if k.startswith("problem")}
        bad += sum(problems.values())
        print(f"  {name:8s} {agg['count']:7,} inputs: {agg['tally']['ok']:,} answers, "
              f"{agg['tally']['kvplan error']:,} kvplan errors, slowest timed {agg['slowest']:.2f} s, "
              f"problems {dict(problems) or 0}")
        outcomes = sorted((k, v) for k, v in agg["tally"].items() if k.startswith(("exit", "HTTP", "untimed")) and v)
        if outcomes:
            print("      " + ", ".join(f"{k}: {v:,}" for k, v in outcomes))
        for example in agg["examples"]:
            print(f"      {example}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
