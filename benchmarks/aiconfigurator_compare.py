"""NVIDIA aiconfigurator's estimates beside the published measurements in benchmarks/perf_measurements.csv.

Optional: a second opinion on the rows benchmarks/perf_compare.py answers with kvplan. It runs NVIDIA's
aiconfigurator (https://github.com/ai-dynamo/aiconfigurator, PyPI `aiconfigurator`, written against 0.12.0) on
every row whose model, GPU and engine it has data for, writes benchmarks/aiconfigurator_results.csv (the
answered rows: row_index, the 0-based data row of perf_measurements.csv, source, metric, measured,
aiconfigurator, backend, backend_version, system, note) and prints the median |relative error| per metric
family, and the count of the rows it could not answer by reason. It does not import kvplan.

Install it apart from the project (it pins numpy/pandas/pydantic of its own), then run:

    python3 -m venv /tmp/aic && /tmp/aic/bin/pip install aiconfigurator
    /tmp/aic/bin/python benchmarks/aiconfigurator_compare.py          # all rows, under a minute on a CPU
    /tmp/aic/bin/python benchmarks/aiconfigurator_compare.py --rows   # ... and print each answered row
    /tmp/aic/bin/python benchmarks/aiconfigurator_compare.py --loads static,concurrency   # only those loads
    /tmp/aic/bin/python benchmarks/aiconfigurator_compare.py --isl-ctx   # ctx_tokens = input_len in every agg run

The call: `aiconfigurator.cli.api.cli_estimate`, the function behind `aiconfigurator cli estimate`, the
single-point estimate (no search over configurations), in SILICON database mode (its collected kernel tables
only; a configuration they do not cover is not answered rather than extrapolated):
- `static` rows (one fixed batch, gptSessionBenchmark / benchmark_latency): mode `static`, batch = the row's
  batch (InferenceSession.run_static: prefill of the whole batch, then decode steps). ttft_ms -> ttft,
  decode_tpot_ms -> tpot, output_tokens_per_sec_total -> its tokens/s (batch x output_len / request latency,
  the benchmarks' definition).
- `concurrency` rows: mode `agg` (InferenceSession.run_agg, in-flight batching) with batch_size = the row's
  concurrency (capped at num_prompts and max_num_seqs where the row states them). aiconfigurator's agg model is
  a mean-field steady state with exactly that many requests resident: a closed loop with no ramp-up/drain and
  no queueing; its TTFT is one request's prefill times a backend-specific queueing factor (vllm 1 + log2(B)/8;
  sglang and trtllm min(2 + (steps - 3) / 20, 4), 1.9 already at concurrency 1). ctx_tokens (prefill tokens
  per step) = input_len, aiconfigurator's default (one arriving prompt per step, as in a steady state), or the
  row's max_num_batched_tokens where smaller (chunked prefill), or 8192 for prompts longer than that. Where
  aiconfigurator finds the KV cache of that many requests does not fit (it raises OOM), the engine would
  queue the rest: throughput and TPOT are asked at its KV capacity (below), TTFT and E2E latency are not.
- `offline` rows and `rate` rows at an infinite rate (every request at once): mode `agg` at the largest batch
  the engine would hold: min(num_prompts, max_num_seqs, or the engine's default cap: vLLM 1024, V1's on a GPU of
  70 GB or more, 256 on l40s and for rows of vLLM before 0.8 or its V0 engine; TensorRT-LLM 2048; SGLang none)
  capped by aiconfigurator's own KV-cache capacity (aiconfigurator_core.sdk.memory.estimate_kv_cache at the
  backend's default memory fraction, tokens // (input_len + output_len)). ctx_tokens =
  the engines' default prefill budget, 8192 (TensorRT-LLM max_num_tokens, SGLang chunked_prefill_size, vLLM V1
  max_num_batched_tokens), or the row's max_num_batched_tokens, at most input_len x batch: a backlog of
  waiting prompts fills it (with input_len, 128-token prompts at batch 2048 came out prefill-bound at a third of
  the measured throughput). Throughput metrics only: their TTFT / E2E latency are dominated by the wait in the
  queue, which agg does not model.
- `rate` rows at a finite rate: if the rate is at least 98% of agg's request throughput at the cap above (with
  the burst ctx_tokens), the server is saturated: throughput at the cap is answered, latencies are not.
  Otherwise Little's law, concurrency C = rate x E2E latency(C), solved by fixed-point iteration on agg from C = 1
  (steady-state ctx_tokens, C rounded to an integer), then agg at C. An unsaturated rate row's throughput then
  equals the offered rate by construction (the summary shows loads apart); its latencies are the real test.
Metric mapping for agg: request_throughput -> seq/s; output_tokens_per_sec_total -> seq/s x output_len
(aiconfigurator's own tokens/s counts output_len - 1 per request); output_tokens_per_sec_per_gpu -> that / TP;
total_tokens_per_sec -> seq/s x (input_len + output_len); ttft_ms_{mean,median} -> ttft; tpot_ms_* and
itl_ms_{mean,median} -> tpot; e2el_ms_{mean,median} -> request_latency (ttft + tpot x (output_len - 1)).
aiconfigurator gives one value per quantity (no distribution), so mean and median rows get the same figure
and p99 rows are not answered. Fractional lengths (dataset means) are rounded.

Engines -> backends: vLLM -> vllm, SGLang -> sglang, TensorRT-LLM and NVIDIA NIM -> trtllm (NIM for LLMs runs
TensorRT-LLM on these GPUs, a guess where the row does not say). vLLM on ROCm, LMDeploy and unstated engines are
not answered. The backend version is always the newest complete ("current") data set aiconfigurator holds for
that system (perf_database.get_latest_database_version: vllm 0.24.0, sglang 0.5.14, trtllm 1.3.0rc20; on
a100_sxm vllm 0.14.0, sglang 0.5.10, trtllm 1.0.0), not the row's engine release: a 2023 TensorRT-LLM 0.5 or
a vLLM 0.6 row is estimated with 2025-26 kernels and schedulers.

GPUs -> systems: any H100 not named PCIe -> h100_sxm (the sources mostly do not say SXM), H200 -> h200_sxm,
B200 -> b200_sxm, A100 -> a100_sxm (an 80GB SXM part, also for "A100" of unstated memory), L40S -> l40s.
aiconfigurator 0.12.0 ships no tables for l4, a30, h100_pcie or a100_pcie (system files only), and has no AMD
or GeForce systems, so those rows are not answered.

Models -> aiconfigurator's bundled configs (it cannot download others here): Llama 3 / 3.1 / 3.3 70B -> meta-
llama/Meta-Llama-3.1-70B (same layers; Llama 3 70B differs only in RoPE scaling and context), 8B -> Meta-
Llama-3.1-8B, 405B -> Meta-Llama-3.1-405B, DeepSeek-R1(-0528) -> deepseek-ai/DeepSeek-R1, Mixtral 8x7B Instruct ->
mistralai/Mixtral-8x7B-v0.1, "NVIDIA Nemotron Nano 30B" -> nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16 (the HF id is
not stated), gpt-oss as named, nvidia/Llama-3.3-70B-Instruct-FP4 -> Meta-Llama-3.1-70B with NVFP4 GEMMs. Llama 2 7B
/ 13B / 70B and Qwen3-14B(-AWQ) are not bundled: their real config.json (kvplan's embedded copies,
src/kvplan/data/models, from ../shared) is copied to a temporary directory and passed as a local model path (so is
the bundled Mixtral config, which aiconfigurator ships but does not list, and would try to download). Quantization:
fp8 weights -> GEMM (and MoE) fp8, NVFP4 -> nvfp4, AWQ int4 -> int4_wo, fp8 KV -> kvcache fp8; otherwise, and for
checkpoints that carry their own quantization (DeepSeek-R1 fp8 blocks, gpt-oss mxfp4), aiconfigurator infers it from
the config. fp16 rows run its bf16 tables. MoE layers use the engines' default of tensor-parallel experts (moe_tp =
TP, no expert parallelism) even where a source enabled EP. """

from __future__ import annotations

import argparse
import csv
import logging
import math
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSV_IN = ROOT / "benchmarks" / "perf_measurements.csv"
CSV_OUT = ROOT / "benchmarks" / "aiconfigurator_results.csv"

FAMILIES = {
    "request_throughput": "throughput", "output_tokens_per_sec_total": "throughput",
    "total_tokens_per_sec": "throughput", "output_tokens_per_sec_per_gpu": "throughput",
    "ttft_ms": "ttft", "ttft_ms_mean": "ttft", "ttft_ms_median": "ttft",
    "decode_tpot_ms": "tpot", "tpot_ms_mean": "tpot", "tpot_ms_median": "tpot",
    "itl_ms_mean": "tpot", "itl_ms_median": "tpot",
    "e2el_ms_mean": "e2el", "e2el_ms_median": "e2el",
}
STATIC_METRICS = {"ttft_ms", "decode_tpot_ms", "output_tokens_per_sec_total"}

# perf_measurements model -> (aiconfigurator model path or LOCAL_CONFIGS key, GEMM quant forced by the checkpoint)
MODELS = {
    "meta-llama/Llama-3.3-70B-Instruct": ("meta-llama/Meta-Llama-3.1-70B", None),
    "meta-llama/Llama-3.1-70B-Instruct": ("meta-llama/Meta-Llama-3.1-70B", None),
    "meta-llama/Meta-Llama-3-70B-Instruct": ("meta-llama/Meta-Llama-3.1-70B", None),
    "meta-llama/Llama-3.1-405B-Instruct": ("meta-llama/Meta-Llama-3.1-405B", None),
    "meta-llama/Llama-3.1-8B-Instruct": ("meta-llama/Meta-Llama-3.1-8B", None),
    "meta-llama/Meta-Llama-3.1-8B-Instruct": ("meta-llama/Meta-Llama-3.1-8B", None),
    "meta-llama/Meta-Llama-3-8B": ("meta-llama/Meta-Llama-3.1-8B", None),
    "deepseek-ai/DeepSeek-R1": ("deepseek-ai/DeepSeek-R1", None),
    "deepseek-ai/DeepSeek-R1-0528": ("deepseek-ai/DeepSeek-R1", None),
    "openai/gpt-oss-20b": ("openai/gpt-oss-20b", None),
    "openai/gpt-oss-120b": ("openai/gpt-oss-120b", None),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ("mistralai/Mixtral-8x7B-v0.1", None),
    "NVIDIA Nemotron Nano 30B": ("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", None),
    "nvidia/Llama-3.3-70B-Instruct-FP4": ("meta-llama/Meta-Llama-3.1-70B", "nvfp4"),
    "meta-llama/Llama-2-7b-hf": ("local:Llama-2-7b-hf", None),
    "meta-llama/Llama-2-13b-hf": ("local:Llama-2-13b-hf", None),
    "meta-llama/Llama-2-70b-hf": ("local:Llama-2-70b-hf", None),
    "Qwen/Qwen3-14B": ("local:Qwen3-14B", None),
    "Qwen/Qwen3-14B-AWQ": ("local:Qwen3-14B", "int4_wo"),
}
# checkpoints whose config.json carries their quantization: leave it to aiconfigurator's inference
SELF_QUANTIZED = {"deepseek-ai/DeepSeek-R1", "openai/gpt-oss-20b", "openai/gpt-oss-120b"}
MOE = {"deepseek-ai/DeepSeek-R1", "openai/gpt-oss-20b", "openai/gpt-oss-120b", "mistralai/Mixtral-8x7B-v0.1",
       "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"}


# the real config.json of models aiconfigurator 0.12.0 does not bundle: kvplan's embedded copies (from ../shared)
LOCAL_CONFIGS = {"Llama-2-7b-hf": "meta-llama--Llama-2-7b-hf.json", "Llama-2-13b-hf": "meta-llama--Llama-2-13b-hf.json",
                 "Llama-2-70b-hf": "meta-llama--Llama-2-70b-hf.json", "Qwen3-14B": "Qwen--Qwen3-14B.json"}
MODELS_DIR = ROOT / "src" / "kvplan" / "data" / "models"
DEFAULT_CTX_TOKENS = 8192  # prefill tokens per step: TensorRT-LLM max_num_tokens, SGLang chunked_prefill_size, vLLM V1


def backend_of(engine: str) -> tuple[str | None, str]:
    name = engine.lower()
    if not name.strip():
        return None, "engine not stated"
    if "rocm" in name:
        return None, "vLLM on ROCm (no AMD system in aiconfigurator)"
    if "sglang" in name:
        return "sglang", ""
    if "vllm" in name:
        return "vllm", ""
    if "tensorrt" in name or "nim" in name:
        return "trtllm", ""
    return None, f"engine {engine} has no aiconfigurator backend"


def system_of(gpu: str) -> tuple[str | None, str]:
    g = gpu.upper()
    if re.search(r"MI\d{3}|AMD", g):
        return None, "AMD GPU (no aiconfigurator system)"
    if "RTX" in g or "GEFORCE" in g:
        return None, "GeForce GPU (no aiconfigurator system)"
    if re.search(r"\bL4\b", g):
        return None, "L4: aiconfigurator 0.12.0 ships no perf tables for l4"
    if "PCIE" in g:
        return None, "PCIe part: aiconfigurator 0.12.0 ships no perf tables for h100_pcie/a100_pcie"
    for pattern, system in (("H100", "h100_sxm"), ("H200", "h200_sxm"), ("B200", "b200_sxm"), ("A100", "a100_sxm"),
                            ("L40S", "l40s")):
        if pattern in g:
            return system, ""
    return None, f"GPU {gpu} not mapped to an aiconfigurator system"


def _int(text: str) -> int | None:
    text = text.strip()
    return max(1, round(float(text))) if text and text.lower() != "inf" else None


class Estimator:
    """cli_estimate with every result cached, and the few helpers the load mappings need."""

    def __init__(self, local_dir: Path):
        from aiconfigurator.cli.api import cli_estimate
        from aiconfigurator.sdk.backends.factory import get_backend
        from aiconfigurator.sdk.common import DefaultHFModels
        from aiconfigurator.sdk.perf_database import get_latest_database_version
        from aiconfigurator_core.sdk.memory import estimate_kv_cache

        self._estimate, self._backend, self._latest, self._kv = (
            cli_estimate, get_backend, get_latest_database_version, estimate_kv_cache)
        self._listed = set(DefaultHFModels)
        self.local_dir, self.cache, self.calls, self.seconds = local_dir, {}, 0, 0.0

    def version(self, system: str, backend: str) -> str | None:
        if (system, backend) not in self.cache:  # slow: it re-reads every collection_meta.yaml
            self.cache[system, backend] = self._latest(system=system, backend=backend)
        return self.cache[system, backend]

    def model_path(self, name: str) -> str:
        """An HF id aiconfigurator lists, else a local folder with the config.json: one of LOCAL_CONFIGS, or a
        config it bundles without listing the id (Mixtral 8x7B: it would try to download it)."""
        if name in self._listed:
            return name
        folder = self.local_dir / name.replace("/", "--").replace("local:", "")
        if not folder.exists():
            if name.startswith("local:"):
                config = (MODELS_DIR / LOCAL_CONFIGS[name[6:]]).read_text(encoding="utf-8")
            else:
                import aiconfigurator_core

                bundled = Path(aiconfigurator_core.__file__).parent / "model_configs"
                config = (bundled / f"{name.replace('/', '--')}_config.json").read_text(encoding="utf-8")
            folder.mkdir(parents=True)
            (folder / "config.json").write_text(config, encoding="utf-8")
        return str(folder)

    def run(self, cfg: dict, mode: str, isl: int, osl: int, batch: int, ctx_tokens: int | None = None):
        key = (tuple(sorted(cfg.items())), mode, isl, osl, batch, ctx_tokens)
        if key not in self.cache:
            start = time.time()
            try:
                self.cache[key] = self._estimate(
                    self.model_path(cfg["model"]), cfg["system"], mode=mode, backend_name=cfg["backend"],
                    backend_version=cfg["version"], isl=isl, osl=osl, batch_size=batch, ctx_tokens=ctx_tokens,
                    tp_size=cfg["tp"], moe_tp_size=cfg["moe_tp"], moe_ep_size=cfg["moe_ep"],
                    gemm_quant_mode=cfg["gemm"], moe_quant_mode=cfg["moe"], kvcache_quant_mode=cfg["kv"])
            except Exception as e:  # every failure is a reason the row is not answered
                self.cache[key] = e
            self.calls += 1
            self.seconds += time.time() - start
        result = self.cache[key]
        if isinstance(result, Exception):
            raise result
        return result

    def kv_batch_cap(self, cfg: dict, isl: int, osl: int, ctx_tokens: int) -> int:
        """The most requests of isl + osl tokens aiconfigurator's KV-cache estimate holds at once."""
        key = ("kv", tuple(sorted(cfg.items())), isl, osl)
        if key not in self.cache:
            start = time.time()
            backend = self._backend(cfg["backend"])
            fraction = backend.get_default_free_gpu_memory_fraction(cfg["version"]) or 0.9
            kind = "of_free" if backend.memory_fraction_of_free() else "of_total"
            found = self._kv(self.model_path(cfg["model"]), cfg["system"], cfg["backend"], cfg["version"],
                             max_num_tokens=max(ctx_tokens, 8192), max_batch_size=4096, memory_fraction_kind=kind,
                             memory_fraction_value=fraction, tp_size=cfg["tp"], moe_tp_size=cfg["moe_tp"],
                             moe_ep_size=cfg["moe_ep"], gemm_quant_mode=cfg["gemm"], moe_quant_mode=cfg["moe"],
                             kvcache_quant_mode=cfg["kv"])
            self.cache[key] = max(1, int(found["total_kv_size_tokens"]) // (isl + osl))
            self.calls += 1
            self.seconds += time.time() - start
        return self.cache[key]


def configure(row: dict, est: Estimator) -> tuple[dict | None, str]:
    """The aiconfigurator settings of a row, or the reason it has none."""
    backend, why = backend_of(row["engine"])
    if backend is None:
        return None, why
    system, why = system_of(row["gpu"])
    if system is None:
        return None, why
    if row["model"] not in MODELS:
        return None, f"model {row['model']} not in aiconfigurator's bundled configs"
    model, forced = MODELS[row["model"]]
    version = est.version(system, backend)
    if version is None:
        return None, f"no {backend} data for {system}"
    weight, kv = row["weight_dtype"].lower(), row["kv_dtype"].lower()
    gemm = forced
    if gemm is None and model not in SELF_QUANTIZED:
        if weight.startswith("fp8"):
            gemm = "fp8"
        elif "nvfp4" in weight:
            gemm = "nvfp4"
        elif "awq" in weight or "gptq" in weight:
            gemm = "int4_wo"
        elif "mxfp4" in weight:
            return None, "mxfp4 weights of a checkpoint without them"
    tp = int(row["tp"] or 1)
    moe = model in MOE
    return {"model": model, "system": system, "backend": backend, "version": version, "tp": tp,
            "moe_tp": tp if moe else None, "moe_ep": 1 if moe else None,
            "gemm": gemm, "moe": gemm if moe and gemm in ("fp8", "nvfp4") else None,
            "kv": "fp8" if kv.startswith("fp8") else None}, ""


def agg_figure(metric: str, result, isl: int, osl: int, tp: int) -> float:
    raw = result.raw
    seq_s = raw["seq/s"]
    return {"request_throughput": lambda: seq_s, "output_tokens_per_sec_total": lambda: seq_s * osl,
            "output_tokens_per_sec_per_gpu": lambda: seq_s * osl / tp,
            "total_tokens_per_sec": lambda: seq_s * (isl + osl), "ttft": lambda: result.ttft,
            "tpot": lambda: result.tpot, "e2el": lambda: raw["request_latency"]}[
        metric if metric in ("request_throughput", "output_tokens_per_sec_total", "output_tokens_per_sec_per_gpu",
                             "total_tokens_per_sec") else FAMILIES[metric]]()


def engine_cap(row: dict, backend: str, system: str) -> int | None:
    """The engine's default limit on running requests: vLLM V1 1024 on a GPU of 70 GB or more (256 before V1,
    0.8, and on smaller GPUs), TensorRT-LLM max_batch_size 2048; SGLang's follows its KV pool (None)."""
    if backend == "vllm":
        m = re.search(r"(\d+)\.(\d+)", row["engine_version"])
        old = (m and (int(m.group(1)), int(m.group(2))) < (0, 8)) or "v0 engine" in row["engine_version"].lower()
        return 256 if old or system == "l40s" else 1024
    return 2048 if backend == "trtllm" else None


def answer(row: dict, cfg: dict, est: Estimator, isl_ctx: bool = False) -> tuple[float, str]:
    """aiconfigurator's figure for the row and a note on how it was asked; ValueError: not answerable."""
    metric, load = row["metric"], row["load"]
    isl, osl = _int(row["input_len"]), _int(row["output_len"])
    if not isl or not osl:
        raise ValueError("input or output length not stated")
    if metric not in FAMILIES:
        raise ValueError("p99 not modelled (aiconfigurator gives one value)" if metric.endswith("_p99")
                         else f"metric {metric} not mapped")
    if load == "static":
        if metric not in STATIC_METRICS:
            raise ValueError(f"static metric {metric} not mapped")
        batch = _int(row["batch"]) or 1
        result = est.run(cfg, "static", isl, osl, batch)
        value = {"ttft_ms": result.ttft, "decode_tpot_ms": result.tpot,
                 "output_tokens_per_sec_total": result.raw["tokens/s"]}[metric]
        return value, f"static batch {batch}"
    prompts, max_seqs = _int(row["num_prompts"]), _int(row["max_num_seqs"])
    budget = _int(row["max_num_batched_tokens"]) or DEFAULT_CTX_TOKENS
    tp = cfg["tp"]

    def agg(batch: int, burst: bool = False):
        """Steady state: one prompt's tokens a step (a chunk of it where the row's budget is smaller); a burst
        of waiting prompts fills the engine's budget."""
        ctx = min(budget, isl * batch) if burst and not isl_ctx else min(budget, isl)
        return est.run(cfg, "agg", isl, osl, batch, ctx)

    def cap() -> int:
        limit = max_seqs or engine_cap(row, cfg["backend"], cfg["system"]) or 1 << 20
        return min(limit, prompts or limit, est.kv_batch_cap(cfg, isl, osl, budget))

    if load == "concurrency":
        batch = min(x for x in (_int(row["concurrency"]), prompts, max_seqs) if x)
        try:
            result, note = agg(batch), f"agg batch {batch}"
        except RuntimeError as e:  # OOM: the KV cache of `batch` requests does not fit, the engine queues the rest
            limit = est.kv_batch_cap(cfg, isl, osl, budget)
            if "OOM" not in str(e) or limit >= batch:
                raise
            if FAMILIES[metric] in ("ttft", "e2el"):
                raise ValueError("concurrency above aiconfigurator's KV capacity: latency includes a queue") from e
            result, note = agg(limit), f"agg batch {limit} (KV cap; concurrency {batch} does not fit)"
        kv = "; batch exceeds aiconfigurator's KV-cache estimate" if result.kv_cache_warning else ""
        return agg_figure(metric, result, isl, osl, tp), note + kv
    rate = row["request_rate"].strip().lower()
    if load == "offline" or rate == "inf":
        if FAMILIES[metric] != "throughput":
            raise ValueError("latency of an offline / infinite-rate burst (queueing) not mapped")
        batch = cap()
        return agg_figure(metric, agg(batch, True), isl, osl, tp), f"agg batch {batch} (engine/KV cap, {load} load)"
    if load == "rate" and rate:
        lam, limit = float(rate), cap()
        at_cap = agg(limit, True)
        if lam >= 0.98 * at_cap.raw["seq/s"]:  # offered more than it serves at the most it holds: a queue grows
            if FAMILIES[metric] != "throughput":
                raise ValueError("latency of a saturated rate run (queue grows) not mapped")
            return agg_figure(metric, at_cap, isl, osl, tp), f"agg batch {limit} (saturated at the cap, rate {rate}/s)"
        conc = 1
        for _ in range(30):  # C = rate x latency(C), from below: converges to the least fixed point
            nxt = min(limit, max(1, round(lam * agg(conc).raw["request_latency"] / 1000)))
            if nxt == conc:
                break
            conc = nxt
        return agg_figure(metric, agg(conc), isl, osl, tp), f"agg batch {conc} (Little's law, rate {rate}/s)"
    raise ValueError(f"load {load} not mapped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", action="store_true", help="print each answered row")
    parser.add_argument("--loads", default="static,concurrency,rate,offline", help="loads to run, comma-separated")
    parser.add_argument("--out", type=Path, default=CSV_OUT)
    parser.add_argument("--isl-ctx", action="store_true",
                        help="agg with aiconfigurator's default ctx_tokens = input_len, not the engines' budget")
    args = parser.parse_args()
    loads = set(args.loads.split(","))

    logging.disable(logging.WARNING)  # aiconfigurator logs every database fallback it loads
    warnings.filterwarnings("ignore")
    with open(CSV_IN, encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))

    out, skipped = [], defaultdict(int)
    with tempfile.TemporaryDirectory(prefix="aic-models-") as tmp:
        est = Estimator(Path(tmp))
        for index, row in enumerate(table):
            if row["load"] not in loads:
                skipped[f"load {row['load']} not selected (--loads)"] += 1
                continue
            cfg, why = configure(row, est)
            if cfg is None:
                skipped[why] += 1
                continue
            try:
                value, note = answer(row, cfg, est, args.isl_ctx)
            except Exception as e:  # aiconfigurator's errors are reasons too
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                reason = re.sub(r"/tmp/\S+/", "", reason)
                skipped[f"{type(e).__name__}: {reason[:170]}"] += 1
                continue
            if not (value and math.isfinite(value)):
                skipped["aiconfigurator returned no figure (zero or NaN)"] += 1
                continue
            measured = float(row["value"])
            out.append({"row_index": index, "source": row["source"], "metric": row["metric"], "measured": measured,
                        "aiconfigurator": round(value, 4), "backend": cfg["backend"],
                        "backend_version": cfg["version"], "system": cfg["system"], "note": note})
            if args.rows:
                err = (value - measured) / measured
                print(f"{index:4d} {row['metric']:28s} {row['model'][:32]:32s} {cfg['system']:9s} {cfg['backend']:6s}"
                      f" TP{cfg['tp']:<2d} {row['input_len']:>6s}/{row['output_len']:<6s} measured {measured:>10.2f}"
                      f" aic {value:>10.2f} ({err:+.0%})  {note}")

    with open(args.out, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(out[0]) if out else ["row_index"])
        writer.writeheader()
        writer.writerows(out)

    print(f"\n{len(out)} rows answered, {sum(skipped.values())} not ({est.calls} aiconfigurator calls, "
          f"{est.seconds:.0f} s); wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    for why, n in sorted(skipped.items(), key=lambda x: (-x[1], x[0])):
        print(f"  not answered ({n}): {why}")
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in out:
        err = abs(r["aiconfigurator"] - r["measured"]) / r["measured"]
        family, load = FAMILIES[r["metric"]], table[r["row_index"]]["load"]
        groups[(family, "all")].append(err)
        groups[(family, load)].append(err)
    print("\n| family | load | rows | median abs. error |\n|---|---|---|---|")
    for (family, load), errs in sorted(groups.items(), key=lambda x: (x[0][0], x[0][1] != "all", x[0][1])):
        print(f"| {family} | {load} | {len(errs)} | {statistics.median(errs):.1%} |")


if __name__ == "__main__":
    sys.exit(main())
