"""Read a vLLM or SGLang startup log and return the settings and memory figures it prints.

`parse_log(text)` takes a pasted log (whole or an excerpt) and returns a `ParsedLog`:
which engine printed it, the settings the log states, and the memory figures the engine
logged, each with the raw line it came from. Nothing is estimated or derived, except that
the SGLang KV pool is K size + V size, which is how SGLang itself sums `mem_usage`.

Recognized wordings (each engine declares its own, `Engine.log_wordings`: the figure lines and the markers that
tell engines apart live in kvplan/engines/vllm.py and sglang.py; the settings and model lines below are read the
same way for every engine):

- vLLM V1: `Model loading took X GiB memory and ...`, `Available KV cache memory: X GiB`,
  `GPU KV cache size: N tokens` (also the >=0.29 single line that adds `, Maximum concurrency
  for L tokens per request: Cx`, and the 0.33 `<device> KV cache size: ...`), `Maximum
  concurrency for L tokens per request: Cx`, `Memory profiling takes ... torch peak memory
  increase: ...; non-torch forward increase memory: ...; weights memory: ...`, `Graph capturing
  finished in S secs, took X GiB`, `CUDA graph pool memory: X GiB (actual)`, the `Free memory on
  device (F/T GiB) on startup ... Actual usage is ...` summary, the engine config line
  `Initializing a V1 LLM engine (vX) with config: ...` and `non-default args: {...}`.
- vLLM V0: `Loading model weights took X GB`, `Model loading took X GB and ...`, `the current vLLM
  instance can use total_gpu_memory (T) x gpu_memory_utilization (U) = ...`, `model weights take
  ...; non_torch_memory takes ...; PyTorch activation peak memory takes ...; the rest of the memory
  reserved for KV Cache is ...`, the 0.6.4 `Memory profiling results: ... non_torch_memory=...
  kv_cache_size=... gpu_memory_utilization=...`, `# GPU blocks: N` / `# cuda blocks: N`,
  and `Initializing an LLM engine (vX) with config: ...`.
- SGLang: `Load weight end. ... dtype=torch.X, ... mem usage=X GB.`, `KV Cache is allocated.
  #tokens: N, K size: X GB, V size: Y GB` (or `KV size: X GB` for MLA), `max_total_num_tokens=N,
  ... context_len=L`, `Capture cuda graph end. ... mem usage=X GB.` and `server_args=ServerArgs(...)`.

Units: vLLM prints GiB (bytes / 2**30). Old V0 lines say "GB" but divide by 2**30 as well, and
SGLang's "GB" is also bytes / 1024**3, so every `*_gib` figure is the printed number as is.

Log prefixes (`INFO 11-26 08:00:00 [gpu_worker.py:437]`, `(VllmWorker rank=0 pid=123)`,
`(EngineCore_DP0 pid=...)`, `[2025-03-27 21:33:31 TP0]`), ANSI colour codes, indentation and
thousands separators are tolerated. With TP>1 every rank prints its own copy of a line: the first
one in the text is kept. Fixture comment lines (`# source: ...`, `# note: ...`) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kvplan.engines.logwords import CUDA_OOM, DEC, KEY, LogWording, Rule, Value, rules
from kvplan.errors import InputError


@dataclass(frozen=True)
class ParsedLog:
    """What a startup log states. Keys are present only when the log prints them."""

    engine: str | None  # the LogWording name of an engine (kvplan.engines); None when the log does not tell
    engine_version: str | None  # e.g. "0.19.0"
    model: str | None  # HF id or local path, as printed
    settings: dict[str, object]  # tensor_parallel, dtype, kv_cache_dtype, max_model_len, ...
    figures: dict[str, float]  # weights_gib, kv_available_gib, kv_tokens, ...
    lines: dict[str, str]  # figure/setting name -> the log line it came from
    failure: str | None = None  # the kind of failed startup the log shows (kvplan.engines.logwords.FAILURES)
    failure_line: str | None = None
    # no version printed: the releases the log's wordings allow, [since, until) (None: unbounded), and why
    release_range: tuple[str | None, str | None] | None = None
    release_evidence: tuple[str, ...] = ()


# ---------------------------------------------------------------- line cleaning

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|(?<![\w\]])\[\d+(?:;\d+)*m")
_FIXTURE_COMMENT = re.compile(r"^#\s*(?:source|note)\s*:", re.IGNORECASE)


MAX_LINE = 16_384  # characters; a vLLM config line is a few thousand: longer lines are not log lines, skipped


def _clean_lines(text: str) -> list[str]:
    """Non-empty lines with ANSI codes and surrounding blanks removed, fixture comments and lines longer than any
    real log line (MAX_LINE) dropped."""
    out = []
    for raw in text.splitlines():
        if len(raw) > MAX_LINE:
            continue
        line = _ANSI.sub("", raw).strip()
        if line and not _FIXTURE_COMMENT.match(line):
            out.append(line)
    return out


# ---------------------------------------------------------------- value converters


def _word(s: str) -> str | None:
    """A printed setting value without quotes or a `torch.` prefix; `None` stays None."""
    s = s.strip().strip("'\"")
    if s == "None":
        return None
    return s.removeprefix("torch.")


def _bool(s: str) -> bool:
    return s == "True"


def _figure_rules() -> list[Rule]:
    """Every registered engine's figure rules, engines in registry order, each engine's in its priority order."""
    return [rule for wording in _wordings() for rule in wording.figures]


def _wordings() -> list[LogWording]:
    from kvplan.engines import engines

    return [w for e in engines() for w in e.log_wordings]




# ---------------------------------------------------------------- setting rules (priority order)

# Engine choices a log line shows (vLLM), worded so that they match a full log and the same line quoted in a
# validation row's notes (kvplan.validate.serving_features reads the notes with these rules too):
ENGINE_CHOICE_RULES: list[Rule] = [
    # the mxfp4 MoE backend (quantization/mxfp4.py "Using Triton backend"; the Marlin fallback's warning in
    # quantization/utils/marlin_utils_fp4.py)
    *rules("mxfp4_backend", lambda _: "triton", r"mxfp4\.py\S*\]?:? ?'?Using Triton backend()"),
    *rules("mxfp4_backend", lambda _: "marlin", r"FP4 compression will be used leveraging the Marlin kernel()"),
    # the model runner: gpu_worker.py "Using V2 Model Runner", or the V1 runner's own CUDA-graph estimate
    # (v1/worker/gpu_model_runner.py; V2 estimates in gpu/cudagraph_utils.py from 0.29)
    *rules("model_runner", lambda _: "v2", r"Using V2 Model Runner()"),
    *rules("model_runner", lambda _: "v1", r"gpu_model_runner\.py:\d+\] Estimated CUDA graph memory()"),
    # the CUDA-graph estimate V1's profile printed (v1/worker/gpu_model_runner.py profile_cudagraph_memory, >= 0.18)
    *rules("cudagraph_estimate_gib", float, rf"Estimated CUDA graph memory: {DEC} GiB"),
    # the dummy images V1's encoder profile ran at once (v1/worker/gpu_model_runner.py profile_run, 0.8.5-0.19
    # wording; gpu/mm/encoder_runner.py in 0.29)
    *rules("encoder_images", int, r"profiled with (\d+) image items of the maximum feature size"),
    # chunked local attention and the hybrid KV cache manager (config/vllm.py 0.10.1-0.29 warning; the env var)
    *rules("chunked_local_hybrid", lambda _: False, r"latency regression when using chunked local attention with "
           r"the hybrid KV cache manager\. Disabling it()", r"VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=0()"),
    *rules("chunked_local_hybrid", lambda _: True,  # set, not the warning's advice to set it
           r"(?<!set the environment )VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1()"),
    # the hybrid KV cache manager turned off: the flag among the non-default args, a connector's warning, or
    # kv_cache_utils.py's warning when it unifies a hybrid model's specs
    *rules("disable_hybrid_kv_cache_manager", lambda _: True, r"'disable_hybrid_kv_cache_manager': True()",
           r"Turning off hybrid kv cache manager because()",
           r"Hybrid KV cache manager is disabled for this hybrid model()"),
    # SGLang's radix cache off and its Mamba states (server_args.py; a launch line's flags)
    *rules("disable_radix_cache", lambda _: True, rf"{KEY}disable_radix_cache=True()", r"disable-radix-cache\b()"),
    *rules("max_mamba_cache_size", int, rf"{KEY}max_mamba_cache_size=(\d+)", r"max-mamba-cache-size[ =](\d+)"),
    # the top-k / top-p sampler (v1/sample/ops/topk_topp_sampler.py TopKTopPSampler, 0.8.5-0.11.0 wordings):
    # FlashInfer's, or the PyTorch-native path it falls back to (FlashInfer not installed, too old, or not enabled)
    *rules("flashinfer_sampler", lambda _: True, r"Using FlashInfer for top-p & top-k sampling()"),
    *rules("flashinfer_sampler", lambda _: False,
           r"Falling back to the PyTorch-native implementation of top-p & top-k sampling()",
           r"FlashInfer version >= 0\.2\.3 required\. Falling back to default sampling()"),
]


# their names, each an EngineSettings field
ENGINE_CHOICES = ("mxfp4_backend", "model_runner", "cudagraph_estimate_gib", "flashinfer_sampler", "encoder_images",
                  "chunked_local_hybrid", "disable_hybrid_kv_cache_manager", "disable_radix_cache",
                  "max_mamba_cache_size")


def engine_choices(text: str) -> dict[str, Value]:
    """The engine choices (ENGINE_CHOICE_RULES) that `text`, a log or a row's quoted lines, shows."""
    return _apply(ENGINE_CHOICE_RULES, text.splitlines() or [text])[0]


_SETTING_RULES: list[Rule] = [
    *rules(
        "tensor_parallel",
        int,
        rf"{KEY}tensor_parallel_size=(\d+)",
        r"'tensor_parallel_size': (\d+)",
        rf"{KEY}tp_size=(\d+)",
    ),
    *rules(
        "pipeline_parallel",
        int,
        rf"{KEY}pipeline_parallel_size=(\d+)",
        r"'pipeline_parallel_size': (\d+)",
        rf"{KEY}pp_size=(\d+)",
    ),
    *rules(
        "data_parallel",
        int,
        rf"{KEY}data_parallel_size=(\d+)",
        r"'data_parallel_size': (\d+)",
        rf"{KEY}dp_size=(\d+)",
    ),
    *rules(
        "dtype",
        _word,
        rf"{KEY}dtype=(torch\.\w+)",  # the resolved dtype: vLLM config line, SGLang "Load weight end"
        r"'dtype': '(\w+)'",
        rf"{KEY}dtype=('?\w+'?)",
    ),
    *rules(
        "kv_cache_dtype",
        _word,
        rf"{KEY}kv_cache_dtype=('?\w+'?)",
        r"'kv_cache_dtype': '(\w+)'",
        r"Using KV cache dtype: ((?:torch\.)?\w+)",
        r"Using (\w+) data type to store kv cache",
    ),
    *rules(
        "quantization",
        _word,
        rf"{KEY}quantization=(None|'[^']*'|[\w-]+)",
        r"'quantization': '([\w-]+)'",
    ),
    *rules(
        "max_model_len",
        int,
        rf"{KEY}max_seq_len=(\d+)",
        r"'max_model_len': (\d+)",
        r"Using max model len (\d+)",
        rf"{KEY}context_len=(\d+)",
        rf"{KEY}context_length=(\d+)",
    ),
    *rules(
        "gpu_memory_utilization",
        float,
        rf"gpu_memory_utilization \({DEC}\)",
        rf"{KEY}gpu_memory_utilization={DEC}",
        rf"'gpu_memory_utilization': {DEC}",
        rf"The current --gpu-memory-utilization={DEC}",
        rf"Requested memory: {DEC} \(util\)",
        rf"Desired GPU memory utilization is \({DEC},",
    ),
    *rules("mem_fraction_static", float, rf"{KEY}mem_fraction_static={DEC}"),
    *rules("block_size", int, rf"{KEY}block_size=(\d+)", r"'block_size': (\d+)"),
    *rules(
        "max_num_batched_tokens",
        int,
        r"'max_num_batched_tokens': (\d+)",
        rf"{KEY}max_num_batched_tokens=(\d+)",
        r"Defaulting max_num_batched_tokens to (\d+)",
    ),
    *rules(
        "max_num_seqs",
        int,
        r"'max_num_seqs': (\d+)",
        rf"{KEY}max_num_seqs=(\d+)",
        r"Defaulting max_num_seqs to (\d+)",
    ),
    *rules("enforce_eager", _bool, rf"{KEY}enforce_eager=(True|False)", r"'enforce_eager': (True|False)"),
    *ENGINE_CHOICE_RULES,
    # vLLM >= 0.34: the flag, or the worker's fallback (executor/abstract.py "Disabling the extensible KV cache")
    *rules("enable_extensible_kv_cache", _bool, rf"{KEY}enable_extensible_kv_cache=(True|False)",
           r"'enable_extensible_kv_cache': (True|False)", r"Disabling the extensible KV cache()"),
    *rules(
        "enable_prefix_caching",
        _bool,
        rf"{KEY}enable_prefix_caching=(True|False)",
        r"'enable_prefix_caching': (True|False)",
    ),
    *rules(
        "gpu_total_gib",
        float,
        rf"total_gpu_memory \({DEC}\s*GiB\)",
        rf"total_gpu_memory={DEC}GiB",
        rf"Free memory on device \([\d.]+/{DEC} GiB\)",
    ),
    *rules(
        "gpu_name",
        str.strip,
        r"^\|\s*\d+\s+(\S.{0,80}?)\s{2,}(?:On|Off)\s*\|",  # nvidia-smi table row
        r"\bGPU \d+: (.{1,100}?) \(UUID:",  # nvidia-smi -L
        r"^GPU \d+: ((?:NVIDIA|Tesla|Quadro|AMD)\b.{0,100}?)$",  # collect_env / torch.cuda.get_device_name
        r"^\d+, ((?:NVIDIA|Tesla|Quadro)\b[^,]*),",  # nvidia-smi --query-gpu=index,name,... csv
        r"\bDevice(?: name)?: ((?:NVIDIA|Tesla|Quadro|AMD)\b.{0,100}?)$",  # "Device name: NVIDIA H100 PCIe"
        r"\bdevice(?: name)?: ((?:NVIDIA|Tesla|Quadro|AMD)\b.{0,100}?)$",  # "Using CUDA device: NVIDIA H100 PCIe"
        r"\bon ((?:NVIDIA|Tesla|AMD Instinct) [\w -]{0,60}?\w)\s*(?:[.,;:)]|$)",  # "... on NVIDIA H100 80GB HBM3"
    ),
]

_MODEL_PATTERNS = [
    re.compile(r"(?:with config: |^)model='([^']+)'"),
    re.compile(r"'model': '([^']+)'"),
    re.compile(rf"{KEY}model_path='([^']+)'"),
    re.compile(r"Starting to load model (\S+?)\.\.\."),
    re.compile(r"█\s+model\s+(\S+)"),
    re.compile(rf"{KEY}model='([^']+)'"),
    re.compile(r'\bmodel_id: "([^"]+)"'),  # TGI's launcher Args
]

# ---------------------------------------------------------------- engine detection


def _engine(lines: list[str]) -> tuple[str | None, str | None]:
    """(engine, version) from an engine's config line, else by counting each engine's own wordings."""
    wordings = _wordings()
    for line in lines:
        for w in wordings:
            if w.config_line is not None and (m := w.config_line.search(line)):
                return w.name, m.group(1)
    version = _first_group([p for w in wordings for p in w.version_lines], lines)
    counts = {w.name: sum(1 for ln in lines if w.markers.search(ln) or any(
        p.search(ln) for p, _ in w.failures if (p, _) != CUDA_OOM)) for w in wordings}
    best = max(counts.values(), default=0)
    leaders = [name for name, n in counts.items() if n == best]
    if best == 0 or len(leaders) > 1:
        return None, version
    return leaders[0], version


# ---------------------------------------------------------------- matching


def _first_group(patterns: Iterable[re.Pattern[str]], lines: list[str]) -> str | None:
    """Group 1 of the highest-priority pattern that matches, on the first line it matches."""
    for pattern in patterns:
        for line in lines:
            if m := pattern.search(line):
                return m.group(1)
    return None


def _apply(rules: list[Rule], lines: list[str]) -> tuple[dict, dict[str, str]]:
    """Run rules in priority order; within a rule the first matching line (the first rank) wins."""
    values: dict[str, Value] = {}
    sources: dict[str, str] = {}
    for pattern, extract in rules:
        for line in lines:
            m = pattern.search(line)
            if not m:
                continue
            for key, value in extract(m).items():
                if key not in values:
                    values[key] = value
                    sources[key] = line
            break
    return values, sources


def _model(lines: list[str]) -> tuple[str | None, str | None]:
    for pattern in _MODEL_PATTERNS:
        for line in lines:
            if m := pattern.search(line):
                return m.group(1), line
    return None, None


# ---------------------------------------------------------------- entry point

_EXPECTED = '"Model loading took ... GiB", "Available KV cache memory", "# GPU blocks" or "KV Cache is allocated"'


def parse_log(text: str) -> ParsedLog:
    """Parse a vLLM (V0 or V1) or SGLang startup log; raise InputError if it holds none of their lines."""
    lines = _clean_lines(text)
    if not lines:
        raise InputError(f"empty log: expected vLLM or SGLang startup lines such as {_EXPECTED}")
    figures, figure_lines = _apply(_figure_rules(), lines)
    settings, setting_lines = _apply([r for w in _wordings() for r in w.settings] + _SETTING_RULES, lines)
    failure, failure_line = _failure(lines, figures)
    engine, version = _engine(lines)
    release: tuple[str | None, str | None] | None = None
    evidence: tuple[str, ...] = ()
    if version is None and engine is not None:
        version, release, evidence = _release(lines, engine)
    model, model_line = _model(lines)
    _check_usable(lines, engine, bool(figures), bool(figures or settings or model or version))
    sources = {**setting_lines, **figure_lines}
    if model_line is not None:
        sources["model"] = model_line
    return ParsedLog(
        engine=engine,
        engine_version=version,
        model=model,
        settings=settings,
        figures=figures,  # type: ignore[arg-type]
        lines=sources,
        failure=failure,
        failure_line=failure_line,
        release_range=release,
        release_evidence=evidence,
    )


def _release(lines: list[str], engine: str) -> tuple[str | None, tuple[str | None, str | None] | None,
                                                     tuple[str, ...]]:
    """(version, release range, evidence) of a log that does not print its version: an official build's commit
    gives the release itself; else every release clue seen (or, for block clues, missing) narrows the range."""
    from kvplan.engines.base import parse_version

    wording = next(w for w in _wordings() if w.name == engine)
    if wording.commit_line is not None:
        for line in lines:
            if m := wording.commit_line.search(line):
                sha = m.group(1).lower()
                for prefix, release in wording.commits:
                    if sha[:7] == prefix[:7]:
                        return release, (release, release), (f"commit {sha[:7]}: the official {release} build",)
    def seen(pattern: re.Pattern[str]) -> bool:
        return any(pattern.search(line) for line in lines)

    lo: str | None = None
    hi: str | None = None
    evidence: list[tuple[str, str | None, str | None]] = []  # (what was seen, its since, its until)
    for c in wording.release_clues:
        if c.absent_after is not None:
            if not seen(c.absent_after) or seen(c.pattern):
                continue
            since, until, what = None, c.since, f"no {c.what} (printed from {c.since})"
        elif seen(c.pattern):
            since, until = c.since, c.until
            what = c.what + (f" (printed {since} to <{until})" if since and until else f" (printed from {since})"
                             if since else f" (printed before {until})")
        else:
            continue
        evidence.append((what, since, until))
        if since is not None and (lo is None or parse_version(since, since) > parse_version(lo, lo)):
            lo = since
        if until is not None and (hi is None or parse_version(until, until) < parse_version(hi, hi)):
            hi = until
    if not evidence:
        return None, None, ()
    if lo is not None and hi is not None and parse_version(lo, lo) >= parse_version(hi, hi):
        return None, None, (*(e for e, _, _ in evidence),
                            "these wordings never appear together in a release: a patched build")
    # the clues that set the bounds (the others agree with them)
    binding = [e for e, since, until in evidence if (since is not None and since == lo)
               or (until is not None and until == hi)]
    return None, (lo, hi), tuple(dict.fromkeys(binding))


def _failure(lines: list[str], figures: dict) -> tuple[str | None, str | None]:
    """The first failed-startup line of any engine's wordings; a negative logged KV memory is one too."""
    for line in lines:
        for wording in _wordings():
            for pattern, kind in wording.failures:
                if pattern.search(line):
                    return kind, line
    if isinstance(figures.get("kv_available_gib"), float) and figures["kv_available_gib"] <= 0:  # type: ignore[operator]
        return "no_kv_memory", None
    return None, None


def _check_usable(lines: list[str], engine: str | None, has_figures: bool, has_data: bool) -> None:
    """Raise unless the text holds memory figures, or engine lines that state settings."""
    recognized = [w.recognized for w in _wordings() if w.recognized is not None]
    engine_seen = engine is not None or any(p.search(ln) for p in recognized for ln in lines)
    failed = any(p.search(ln) for w in _wordings() for p, _ in w.failures for ln in lines)
    if has_figures or failed or (engine_seen and has_data):
        return
    if engine_seen:
        found = engine or "vLLM/SGLang"
        raise InputError(
            f"{found} log lines found but no settings or memory figures: expected lines such as {_EXPECTED}"
        )
    raise InputError(f"no vLLM or SGLang startup lines found: expected lines such as {_EXPECTED}")
