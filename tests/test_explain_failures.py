"""`kvplan explain` on failed startups (#10.4): the log's failure is recognised, said in one line, and the
smallest change that makes the engine start is given in the log's engine's own flags. Logs are public excerpts
(tests/logs/*.log, each citing its source)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kvplan.cli import main
from kvplan.explain import diagnose

LOGS = Path(__file__).parent / "logs"


def text(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def test_vllm_v0_max_seq_len_failure_names_the_length_the_log_gives():
    d = diagnose(text("vllm_v0_max_seq_len_failure.log"), model="llama-3.1-8b-instruct", gpu="rtx3090")
    assert d.failure.kind == "max_model_len"
    # V0's message states what the cache holds: 1,478 blocks x 16 tokens = 23,648
    assert d.failure.fix == "--max-model-len 23648 (the largest the log says fits)"
    assert all(not s.change.startswith("--kv-cache-dtype") for s in d.suggestions)  # kvplan's V0: no fp8 KV
    r = CliRunner().invoke(main, ["explain", str(LOGS / "vllm_v0_max_seq_len_failure.log"), "--model",
                                  "llama-3.1-8b-instruct", "--gpu", "rtx3090"])
    assert r.exit_code == 0 and "did not start" in r.output and "--max-model-len 23648" in r.output


def test_vllm_v1_failure_uses_the_estimated_length_vllm_prints():
    d = diagnose(text("vllm_v1_max_seq_len_failure.log"), model="llama-3.1-8b", gpu="l4")
    assert d.failure.kind == "max_model_len" and d.failure.fix.startswith("--max-model-len 5632 ")
    assert d.to_dict()["failure"]["line"].startswith("ValueError: To serve at least one request")


def test_sglang_failure_is_answered_in_sglangs_flags():
    d = diagnose(text("sglang_not_enough_memory.log"), model="llama-3.1-8b", gpu="a10g")
    assert d.parsed["engine"] == "SGLang" and d.failure.kind == "no_kv_memory"
    labels = [s.change for s in d.suggestions]
    assert "--kv-cache-dtype fp8_e4m3" in labels and "--tp-size 2 (twice the GPUs)" in labels
    assert not any(x.startswith(("--gpu-memory-utilization", "--tensor-parallel-size", "--max-model-len"))
                   for x in labels)
    # the fix is a change after which kvplan predicts SGLang starts, and it is the first such in the list
    starting = [s for s in d.suggestions if s.starts]
    assert starting and d.failure.fix == starting[0].change


def test_tgi_warmup_failure_is_answered_in_tgis_flags():
    d = diagnose(text("tgi_warmup_not_enough_memory.log"), model="llama-3.1-8b", gpu="a10g")
    assert d.parsed["engine"] == "TGI" and d.failure.kind == "warmup_oom"
    labels = [s.change for s in d.suggestions]
    assert "--num-shard 2 (twice the GPUs)" in labels and "--kv-cache-dtype fp8_e4m3fn" in labels


def test_no_suggestion_equals_the_current_value():
    """On an A10G vLLM already profiles 2,048 batched tokens and runs at 0.9: neither is suggested again."""
    d = diagnose(text("vllm_v1_max_seq_len_failure.log"), model="llama-3.1-8b", gpu="a10g")
    labels = [s.change for s in d.suggestions]
    assert "--max-num-batched-tokens 2048" not in labels and "--gpu-memory-utilization 0.9" not in labels
    assert "--gpu-memory-utilization 0.95" in labels
