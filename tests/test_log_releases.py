"""Dating a startup log that does not print its release: each engine's release clues (wordings read from every
release's source) give a range, and the range holds the release the log really came from.

tests/logs/releases/*.log are public startup logs whose release is known (printed, or stated by the page they
come from: the first line says which); the test removes every line that prints a version before parsing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kvplan.engines import by_log_name, parse_version
from kvplan.explain import diagnose, release_of
from kvplan.logs import parse_log

RELEASES = Path(__file__).parent / "logs" / "releases"
LOGS = Path(__file__).parent / "logs"
# lines that print the release itself: vLLM's banner / API server / engine config lines
PRINTS_VERSION = re.compile(r"API server version|LLM engine \(v|version \d|Commit sha:|sglang[ :]+\d")


def _known(path: Path, printed: bool = False) -> str:
    """The release the fixture's first line states (`printed:` when the build prints another label)."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    if printed and (m := re.search(r"printed: ([0-9][\w.+]*)", first)):
        return m.group(1)
    return re.search(r"version: ([0-9][\w.+]*)", first).group(1)


def _without_version(path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(ln for ln in lines if ln.startswith("#") or not PRINTS_VERSION.search(ln))


def _contains(rng: tuple[str | None, str | None], version: str) -> bool:
    v = parse_version(version, version)
    lo, hi = rng
    return (lo is None or parse_version(lo, lo) <= v) and (hi is None or v < parse_version(hi, hi))


@pytest.mark.parametrize("path", sorted(RELEASES.glob("*.log")), ids=lambda p: p.name)
def test_the_wording_dates_a_log_to_a_range_holding_its_release(path):
    log = parse_log(_without_version(path))
    assert log.engine is not None and log.engine_version is None
    assert log.release_range is not None, f"no clue dates {path.name}"
    assert _contains(log.release_range, _known(path)), (log.release_range, log.release_evidence)
    assert log.release_evidence


@pytest.mark.parametrize("path", sorted(RELEASES.glob("*.log")), ids=lambda p: p.name)
def test_a_printed_version_is_kept_as_printed(path):
    log = parse_log(path.read_text(encoding="utf-8"))
    if log.engine_version is not None:  # printed (or an official build's commit): no range needed
        assert parse_version(log.engine_version, "0") == parse_version(_known(path, printed=True), "0")


def test_tgi_official_build_commit_names_its_release():
    """The launcher's "Commit sha:" of an official image is its tag's commit (huggingface/text-generation-inference
    tags: v2.0.4 is 8f22cb9)."""
    log = parse_log("2024-06-01T00:00:00Z  INFO text_generation_launcher: Runtime environment:\n"
                    "Commit sha: 8f22cb961b7fa2a4b8d1d3b9b1c4b7e0b2c4a9d1\n"
                    "2024-06-01T00:00:01Z  INFO text_generation_router: Setting max batch total tokens to 100000\n")
    assert log.engine == "TGI" and log.engine_version == "2.0.4"


def test_wordings_of_releases_apart_are_a_patched_build():
    """A wording removed in SGLang 0.4.2 next to one added in 0.4.7 cannot come from one release: no range."""
    log = parse_log("[2025-01-01 00:00:00 TP0] max_total_num_tokens=1000, max_prefill_tokens=16384, "
                    "max_running_requests=10, context_len=2048\n"
                    "[2025-01-01 00:00:01 TP0] max_total_num_tokens=1000, chunked_prefill_size=8192, "
                    "max_prefill_tokens=16384, max_running_requests=10, context_len=2048, available_gpu_mem=10.0 GB\n")
    assert log.release_range is None and any("patched build" in e for e in log.release_evidence)


@pytest.mark.parametrize("path", sorted(RELEASES.glob("*.log")), ids=lambda p: p.name)
def test_explain_says_what_it_inferred(path):
    """explain states the range, the wordings it read it from, and the release whose rules it used."""
    log = parse_log(_without_version(path))
    eng = by_log_name(log.engine)
    version, note = release_of(log, eng)
    assert version == eng.release_in(*log.release_range)
    assert _contains(log.release_range, version) or version == eng.default_version
    assert "dates it to" in note and all(e in note for e in log.release_evidence) and f"{version} rules" in note


def test_explain_end_to_end_on_a_dated_log():
    path = RELEASES / "vllm-v0_0.8.2_llama3.2-3b-t4.log"
    d = diagnose(_without_version(path), model="llama-3.2-3b", gpu="t4")
    assert any("dates it to 0.8.0 to <0.8.3" in a for a in d.assumptions), d.assumptions
    assert d.parsed["release_range"] == ["0.8.0", "0.8.3"] and d.parsed["engine_version"] is None


def test_every_fixture_in_tests_logs_is_dated_or_prints_its_release():
    for path in sorted(LOGS.glob("*.log")):
        log = parse_log(path.read_text(encoding="utf-8"))
        if log.engine is None:
            continue
        assert log.engine_version is not None or log.release_range is not None, path.name


def test_v0_memory_profile_wording_of_0_6_5_dates_a_log():
    """V0's worker.py prints "model weights take X; non_torch_memory takes Y" from 0.6.5 (read in 0.6.5 and 0.8.3;
    0.6.4.post1 prints "Memory profiling results: total_gpu_memory=..."), so a log quoting it without the line
    before it is 0.6.5 or later."""
    log = parse_log("INFO 12-22 10:00:00 worker.py:241] model weights take 8.51GiB; non_torch_memory takes 0.26GiB; "
                    "PyTorch activation peak memory takes 0.94GiB; the rest of the memory reserved for KV Cache is "
                    "2.18GiB.\nINFO 12-22 10:00:00 gpu_executor.py:76] # GPU blocks: 715, # CPU blocks: 1310\n")
    assert log.engine == "vLLM V0" and log.release_range == ("0.6.5", "0.7.0"), log.release_range
