"""kvplan.logs: parse real vLLM and SGLang startup logs (tests/logs/*.log, each citing its source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvplan.errors import InputError
from kvplan.logs import ParsedLog, parse_log

LOGS = Path(__file__).parent / "logs"


def load(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def parse(name: str) -> ParsedLog:
    return parse_log(load(name))


# Every number below is the one printed in the fixture: nothing is derived except SGLang's K + V.
CASES: dict[str, dict] = {
    "vllm_v1_0.19_tp1_debug.log": dict(
        engine="vLLM V1",
        version="0.19.0",
        model="meta-llama/Llama-3.1-8B-Instruct",
        settings=dict(
            tensor_parallel=1,
            pipeline_parallel=1,
            data_parallel=1,
            model_runner="v1",  # the V1 runner's "Estimated CUDA graph memory" line
            cudagraph_estimate_gib=0.84,  # "Estimated CUDA graph memory: 0.84 GiB total"
            dtype="bfloat16",
            kv_cache_dtype="auto",
            quantization=None,
            max_model_len=16384,
            gpu_memory_utilization=0.95,
            enforce_eager=False,
            enable_prefix_caching=False,
            gpu_total_gib=79.19,
        ),
        figures=dict(
            weights_gib=14.99,
            non_torch_gib=0.25,
            activation_peak_gib=1.89,
            kv_available_gib=58.11,
            kv_tokens=476016,
            max_concurrency_len=16384,
            max_concurrency_x=29.05,
            cudagraph_gib=0.91,
        ),
    ),
    "vllm_v1_0.19_tp2_debug.log": dict(
        engine="vLLM V1",
        version="0.19.0",
        model="RedHatAI/Llama-3.3-70B-Instruct-fp8-dynamic",
        settings=dict(
            tensor_parallel=2,
            pipeline_parallel=1,
            data_parallel=1,
            model_runner="v1",  # the V1 runner's "Estimated CUDA graph memory" line
            cudagraph_estimate_gib=1.82,  # "Estimated CUDA graph memory: 1.82 GiB total"
            dtype="bfloat16",
            kv_cache_dtype="auto",
            quantization="compressed-tensors",
            max_model_len=8192,
            gpu_memory_utilization=0.95,
            enforce_eager=False,
            enable_prefix_caching=False,
            gpu_total_gib=79.19,
        ),
        figures=dict(
            weights_gib=33.88,
            non_torch_gib=2.1,
            activation_peak_gib=1.96,
            kv_available_gib=37.28,
            kv_tokens=244304,
            max_concurrency_len=8192,
            max_concurrency_x=29.82,
            cudagraph_gib=1.79,
        ),
    ),
    "vllm_v1_0.10_full_startup.log": dict(
        engine="vLLM V1",
        version="0.10.2",
        model="llava-hf/llava-v1.6-mistral-7b-hf",
        settings=dict(
            tensor_parallel=1,
            pipeline_parallel=1,
            data_parallel=1,
            dtype="float16",
            kv_cache_dtype="auto",
            quantization=None,
            max_model_len=4096,
            gpu_memory_utilization=0.9,
            max_num_batched_tokens=16384,
            enforce_eager=False,
            enable_prefix_caching=True,
            gpu_total_gib=79.19,
            encoder_images=5,  # "profiled with 5 image items of the maximum feature size"
        ),
        figures=dict(
            weights_gib=14.0786,
            non_torch_gib=0.07,
            activation_peak_gib=1.97,
            kv_available_gib=55.15,
            kv_tokens=451744,
            max_concurrency_len=4096,
            max_concurrency_x=110.29,
            cudagraph_gib=0.67,
        ),
    ),
    "vllm_v1_0.24_non_default_args.log": dict(
        engine="vLLM V1",
        version="0.24.0",
        model="~/.cache/huggingface/qwen3.6-35b-a3b-nvfp4",  # from the args dict: the config line is cut off
        settings=dict(
            dtype="bfloat16",
            kv_cache_dtype="fp8",
            quantization="modelopt",
            max_model_len=131072,
            max_num_batched_tokens=8192,
            max_num_seqs=1,
            enable_prefix_caching=True,
        ),
        figures=dict(kv_available_gib=6.01, kv_tokens=569878, max_concurrency_len=131072, max_concurrency_x=4.35),
    ),
    "vllm_v1_cudagraph_estimate.log": dict(
        engine="vLLM V1",
        version=None,
        model=None,
        settings=dict(gpu_memory_utilization=0.9764, model_runner="v1", cudagraph_estimate_gib=0.52),
        figures=dict(kv_available_gib=6.37, kv_tokens=46368, max_concurrency_len=16384, max_concurrency_x=2.83),
    ),
    "vllm_v1_engine_core_dp0.log": dict(
        engine="vLLM V1",
        version=None,
        model=None,
        settings={},
        figures=dict(kv_available_gib=6.51, kv_tokens=42656, max_concurrency_len=32768, max_concurrency_x=1.30),
    ),
    "vllm_v1_indented_model_loading.log": dict(
        engine="vLLM V1",
        version=None,
        model=None,
        settings={},
        figures=dict(weights_gib=11.55, kv_available_gib=12.57, kv_tokens=53136),
    ),
    "vllm_v1_tp_repeated_kv_lines.log": dict(
        engine="vLLM V1",
        version=None,
        model=None,
        settings={},
        figures=dict(kv_tokens=106640, max_concurrency_len=8192, max_concurrency_x=13.02),
    ),
    "vllm_v1_tp2_graph_capture.log": dict(
        engine="vLLM V1",
        version=None,
        model=None,
        settings={},
        figures=dict(cudagraph_gib=0.10),
    ),
    "vllm_v1_config_only_truncated.log": dict(
        engine="vLLM V1",
        version="0.16.0rc1.dev20+gae5b7aff2.d20260201",
        model="gaunernst/DeepSeek-V2-Lite-Chat-FP8",
        settings=dict(
            tensor_parallel=1,
            pipeline_parallel=1,
            data_parallel=1,
            dtype="bfloat16",
            kv_cache_dtype="auto",
            quantization="fp8",
            max_model_len=4096,
            enforce_eager=False,
            enable_prefix_caching=True,  # on the second physical line of the broken config line
        ),
        figures={},
    ),
    "vllm_v0_rtx3090_profiling_results.log": dict(
        engine="vLLM V0",
        version=None,
        model=None,
        settings=dict(gpu_memory_utilization=0.90, gpu_total_gib=23.58),
        # peak_torch_memory=17.06GiB includes the weights, so no activation figure is read from it
        figures=dict(
            weights_gib=14.9888,
            non_torch_gib=0.35,
            kv_available_gib=3.81,
            gpu_blocks=1952,
            max_concurrency_len=20000,
            max_concurrency_x=1.56,
        ),
    ),
    "vllm_v0_tp_worker_profiling.log": dict(
        engine="vLLM V0",
        version=None,
        model=None,
        settings=dict(gpu_memory_utilization=0.99, gpu_total_gib=23.58),
        figures=dict(weights_gib=21.21, non_torch_gib=0.20, activation_peak_gib=0.37, kv_available_gib=1.57),
    ),
    "vllm_v0_tp_per_rank_weights.log": dict(
        engine="vLLM V0",
        version=None,
        model=None,
        settings=dict(gpu_memory_utilization=0.94, gpu_total_gib=23.58),
        figures=dict(weights_gib=19.5904),  # rank pid=282, printed first; pid=272 printed 18.3843
    ),
    "vllm_v0_0.5.4_config_only.log": dict(
        engine="vLLM V0",
        version="0.5.4",
        model="/mnt/models/models--meta-llama--llama-3-1-70b-instruct",
        settings=dict(tensor_parallel=2, dtype="float16", max_model_len=131072),
        figures={},
    ),
    "sglang_server_args_gemma3.log": dict(
        engine="SGLang",
        version=None,
        model="google/gemma-3-4b-it",
        settings=dict(
            tensor_parallel=1,
            dtype="bfloat16",  # resolved dtype from "Load weight end", not ServerArgs' dtype='auto'
            kv_cache_dtype="auto",
            quantization=None,
            mem_fraction_static=0.88,
        ),
        figures=dict(weights_gib=8.13, kv_available_gib=108.24, kv_tokens=834615),  # K 54.12 + V 54.12
    ),
    "vllm_v0_max_seq_len_failure.log": dict(
        engine="vLLM V0",
        version=None,
        model=None,
        settings=dict(gpu_memory_utilization=0.90, gpu_total_gib=23.58),
        figures=dict(weights_gib=14.9888, non_torch_gib=0.35, kv_available_gib=2.89, gpu_blocks=1478,
                     max_concurrency_len=29000, max_concurrency_x=0.82),
        failure="max_model_len",
    ),
    "vllm_v1_max_seq_len_failure.log": dict(
        engine="vLLM V1",
        version=None,
        model=None,
        settings={},
        figures={},
        failure="max_model_len",
    ),
    "sglang_not_enough_memory.log": dict(
        engine="SGLang",
        version=None,
        model=None,
        settings={},
        figures={},
        failure="no_kv_memory",
    ),
    "tgi_warmup_not_enough_memory.log": dict(
        engine="TGI",
        version=None,
        model=None,
        settings={},
        figures={},
        failure="warmup_oom",
    ),
    "sglang_tp2_hybrid_mamba.log": dict(
        engine="SGLang",
        version=None,
        model=None,
        settings=dict(dtype="bfloat16", kv_cache_dtype="bfloat16", max_model_len=8192),
        figures=dict(weights_gib=3.76, kv_available_gib=8.30, kv_tokens=580364),  # K 4.15 + V 4.15
    ),
}


def test_every_fixture_has_a_case_and_a_source():
    names = sorted(p.name for p in LOGS.glob("*.log"))
    assert names == sorted(CASES)
    for name in names:
        assert load(name).startswith("# source: "), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_values(name):
    want = CASES[name]
    got = parse(name)
    assert got.engine == want["engine"]
    assert got.engine_version == want["version"]
    assert got.model == want["model"]
    assert got.settings == want["settings"]
    assert got.figures == pytest.approx(want["figures"])
    assert got.failure == want.get("failure")


@pytest.mark.parametrize("name", sorted(CASES))
def test_source_lines_come_from_the_log(name):
    got = parse(name)
    text = load(name)
    assert set(got.lines) == set(got.settings) | set(got.figures) | ({"model"} if got.model else set())
    for line in got.lines.values():
        assert line in text


@pytest.mark.parametrize("name", sorted(CASES))
def test_comment_lines_are_ignored(name):
    text = load(name)
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith(("# source:", "# note:")))
    assert parse_log(body) == parse_log(text)


def test_count_figures_are_ints():
    got = parse("vllm_v0_rtx3090_profiling_results.log")
    for key in ("gpu_blocks", "max_concurrency_len"):
        assert isinstance(got.figures[key], int)
    assert isinstance(parse("vllm_v1_engine_core_dp0.log").figures["kv_tokens"], int)


def test_first_rank_wins_when_ranks_differ():
    got = parse("vllm_v0_tp_per_rank_weights.log")
    assert got.figures["weights_gib"] == 19.5904
    assert "pid=282" in got.lines["weights_gib"]


def test_first_rank_wins_in_sglang_tp_logs():
    got = parse("sglang_tp2_hybrid_mamba.log")
    assert "TP0] Load weight end" in got.lines["weights_gib"]


def test_lines_point_at_the_printed_figure():
    got = parse("vllm_v1_0.19_tp1_debug.log")
    assert "Available KV cache memory: 58.11 GiB" in got.lines["kv_available_gib"]
    assert "GPU KV cache size: 476,016 tokens" in got.lines["kv_tokens"]
    assert "Graph capturing finished" in got.lines["cudagraph_gib"]


def test_truncated_before_profiling_parses_with_no_figures():
    text = load("vllm_v1_0.19_tp1_debug.log")
    head = text[: text.index("Model loading took")].rsplit("\n", 1)[0]
    got = parse_log(head)
    assert got.engine == "vLLM V1"
    assert got.engine_version == "0.19.0"
    assert got.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert got.figures == {}
    assert got.settings["max_model_len"] == 16384


# Wordings without a whole real log in tests/logs: single lines quoted from public sources.


def test_single_line_kv_report_of_0_29():
    # vLLM 0.28.1rc1 dev build, quoted in a public repository file (code-search index id 69523800128)
    line = (
        "INFO 09-06 20:23:33 [kv_cache_utils.py:2312] GPU KV cache size: 23,296 tokens, "
        "Maximum concurrency for 4,096 tokens per request: 5.69x"
    )
    got = parse_log(line)
    assert got.engine == "vLLM V1"
    assert got.figures == pytest.approx({"kv_tokens": 23296, "max_concurrency_len": 4096, "max_concurrency_x": 5.69})


def test_device_prefixed_kv_report_of_0_33():
    # Built from the 0.33 format string "%s KV cache size: %s tokens, Maximum concurrency for %s tokens per
    # request: %.2fx" (docs/vllm-rules.md section 3); no real 0.33 log was found to quote.
    line = (
        "(EngineCore pid=1) INFO [kv_cache_utils.py:2481] XPU KV cache size: 152,000 tokens, "
        "Maximum concurrency for 8,192 tokens per request: 18.55x"
    )
    got = parse_log(line)
    assert got.figures["kv_tokens"] == 152000
    assert got.figures["max_concurrency_x"] == 18.55


def test_memory_profiling_repr_of_0_11():
    # From a public report (code-search index id 34802511869), vLLM V1 TP=4 worker lines with "[...]" prefixes
    text = (
        "[Worker_TP3 pid=540] DEBUG 11-19 21:09:35 [v1/worker/gpu_worker.py:297] Memory profiling takes 19.58 "
        "seconds. Total non KV cache memory: 1.56GiB; torch peak memory increase: 0.22GiB; non-torch forward "
        "increase memory: 0.09GiB; weights memory: 1.24GiB.\n"
        "[Worker_TP3 pid=540] INFO 11-19 21:09:35 [v1/worker/gpu_worker.py:298] Available KV cache memory: 17.24 GiB\n"
        "[EngineCore_DP0 pid=404] INFO 11-19 21:09:35 [v1/core/kv_cache_utils.py:1087] "
        "GPU KV cache size: 226,000 tokens"
    )
    got = parse_log(text)
    assert got.engine == "vLLM V1"
    assert got.figures == pytest.approx(
        {
            "weights_gib": 1.24,
            "activation_peak_gib": 0.22,
            "non_torch_gib": 0.09,
            "kv_available_gib": 17.24,
            "kv_tokens": 226000,
        }
    )


def test_sglang_mla_kv_size_line():
    # sgl-project/sglang#13466 (PR description): MLA models print one "KV size" instead of K and V
    got = parse_log("[2025-11-21 04:11:02 TP5] KV Cache is allocated. #tokens: 8050, KV size: 0.53 GB")
    assert got.engine == "SGLang"
    assert got.figures == pytest.approx({"kv_available_gib": 0.53, "kv_tokens": 8050})


def test_ansi_colour_codes_are_stripped():
    # A pod log quoted in a public OpenShift AI walkthrough (code-search index id 71589812318): the escape
    # characters were lost on copy, leaving "[1;36m" fragments around the worker prefix.
    copied = (
        "[1;36m(VllmWorker rank=1 pid=219)[0;0m INFO 08-31 14:45:44 [gpu_worker.py:232] "
        "Available KV cache memory: 10.04 GiB"
    )
    raw = copied.replace("[1;36m", "\x1b[1;36m").replace("[0;0m", "\x1b[0;0m")  # as the terminal receives it
    for text in (copied, raw):
        got = parse_log(text)
        assert got.figures == {"kv_available_gib": 10.04}
        assert got.engine == "vLLM V1"
        assert got.lines["kv_available_gib"].startswith("(VllmWorker rank=1 pid=219) INFO")


@pytest.mark.parametrize(
    "line, name",
    [
        # nvidia-smi table, vllm-project/vllm#13167 (comment by lv03)
        (
            "|   0  NVIDIA GeForce RTX 4090        Off |   00000000:17:00.0 Off |                  Off |",
            "NVIDIA GeForce RTX 4090",
        ),
        # nvidia-smi -L, noonghunna/club-3090#58
        (
            "[preflight]            GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-e7a4c41d-bf43-fdaa-f27a-c0baf3e1a026)",
            "NVIDIA GeForce RTX 3090",
        ),
        # nvidia-smi --query-gpu csv, noonghunna/club-3090#96
        ("  0, NVIDIA GeForce RTX 3090, 580.142", "NVIDIA GeForce RTX 3090"),
        # collect_env.py, vllm-project/vllm#13282
        ("GPU 0: Tesla V100S-PCIE-32GB", "Tesla V100S-PCIE-32GB"),
        # torch.cuda.get_device_name, 6204-Adv-Topics-in-Systems/VLM_vLLM sample_output.md
        ("Using CUDA device: NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ],
)
def test_gpu_name_is_picked_up_when_printed(line, name):
    got = parse_log(line + "\n" + load("vllm_v1_engine_core_dp0.log"))
    assert got.settings["gpu_name"] == name
    assert got.figures["kv_tokens"] == 42656


def test_gpu_name_is_optional():
    assert "gpu_name" not in parse("vllm_v1_0.19_tp2_debug.log").settings


# Errors: one line that says what was looked for.


@pytest.mark.parametrize("text", ["", "   \n\t\n", "# source: vllm-project/vllm#10517\n"])
def test_empty_input(text):
    with pytest.raises(InputError, match=r"^empty log: expected vLLM or SGLang startup lines"):
        parse_log(text)


@pytest.mark.parametrize(
    "text",
    [
        "lorem ipsum dolor sit amet\nthe quick brown fox\n12345",
        "{'a': 1, 'b': [1, 2, 3]}\nTraceback (most recent call last):\n  File \"x.py\", line 1",
        "dtype=torch.float16 appears in prose, not in an engine line",
        "|   0  NVIDIA GeForce RTX 4090        Off |   00000000:17:00.0 Off |                  Off |",
        "Loading safetensors checkpoint shards: 100% Completed | 4/4 [00:09<00:00,  2.60s/it]",
    ],
)
def test_unrelated_input(text):
    with pytest.raises(InputError) as err:
        parse_log(text)
    message = str(err.value)
    assert message.startswith("no vLLM or SGLang startup lines found: expected lines such as")
    assert "Model loading took" in message and "KV Cache is allocated" in message
    assert "\n" not in message


def test_truncated_log_without_any_usable_line():
    # vllm-project/vllm#33501: the engine died while loading; these are its traceback lines
    text = (
        "(EngineCore_DP0 pid=628168) ERROR 02-01 06:05:14 [v1/engine/core.py:946]     return loader.load_model(\n"
        "(EngineCore_DP0 pid=628168) ERROR 02-01 06:05:14 [v1/engine/core.py:946]            ^^^^^^^^^^^^^^^^^^\n"
    )
    with pytest.raises(InputError, match=r"^vLLM V1 log lines found but no settings or memory figures") as err:
        parse_log(text)
    assert "\n" not in str(err.value)


def test_every_engine_choice_a_log_shows_is_an_engine_setting():
    """The engine choices (logs.ENGINE_CHOICE_RULES) reach EngineSettings by name, in explain and validate alike."""
    import dataclasses

    from kvplan.engines.base import EngineSettings
    from kvplan.logs import ENGINE_CHOICES, engine_choices

    text = "\n".join([
        "INFO [mxfp4.py:165] Using Triton backend",
        "INFO [gpu_worker.py:378] Using V2 Model Runner",
        "INFO [gpu_model_runner.py:6142] Estimated CUDA graph memory: 0.52 GiB total",
        "INFO [topk_topp_sampler.py:58] Using FlashInfer for top-p & top-k sampling.",
        "INFO [gpu_model_runner.py:3000] Encoder cache will be initialized with a budget of 16384 tokens, and "
        "profiled with 5 image items of the maximum feature size.",
        "WARNING [vllm.py:921] There is a latency regression when using chunked local attention with the hybrid KV "
        "cache manager. Disabling it, by default. To enable it, set the environment "
        "VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1.",
        "WARNING [vllm.py:1231] Turning off hybrid kv cache manager because `--kv-transfer-config` is set.",
        "python -m sglang.launch_server --model-path x --disable-radix-cache --max-mamba-cache-size 64"])
    assert set(engine_choices(text)) == set(ENGINE_CHOICES)
    # the warning that turns the hybrid manager off names the variable that would keep it: read as off
    assert engine_choices(text)["chunked_local_hybrid"] is False
    assert engine_choices("VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1") == {"chunked_local_hybrid": True}
    assert set(ENGINE_CHOICES) <= {f.name for f in dataclasses.fields(EngineSettings)}
