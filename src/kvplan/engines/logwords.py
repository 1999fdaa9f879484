"""The wordings of engines' startup logs: each engine declares its own (`Engine.log_wordings`), kvplan.logs reads
logs with all of them.

A `LogWording` names what kvplan.logs reports as the log's engine ("vLLM V1"), the config line that states the
engine and its version, the wordings only its logs use (counted to tell engines apart), and its figure rules:
regular expressions in priority order, each filling a figure (weights_gib, kv_available_gib, kv_tokens, ...)
from the printed number, as printed (vLLM and SGLang print GiB even where they write "GB").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Value = object
Extract = Callable[[re.Match[str]], dict[str, Value]]
Rule = tuple[re.Pattern[str], Extract]

KEY = r"(?<![\w'.])"  # a config key starts here: not inside a longer name such as kv_cache_dtype
NUM = r"(-?[\d,]*\.?\d+)"
INT = r"(\d(?:[\d,]*\d)?)"
DEC = r"(\d+(?:\.\d+)?)"  # a decimal number, never its sentence-ending period ("0.9.")
GAP = r"[^\n]{0,400}?"  # the rest of a line between two wordings: bounded, so a repeated prefix stays linear


def to_float(s: str) -> float:
    return float(s.replace(",", ""))


def to_int(s: str) -> int:
    return int(s.replace(",", ""))


def _one(name: str, conv: Callable[[str], Value], group: int = 1) -> Extract:
    return lambda m: {name: conv(m.group(group))}


def rules(name: str, conv: Callable[[str], Value], *patterns: str) -> list[Rule]:
    """One rule per pattern, all filling `name` from group 1, in priority order."""
    return [(re.compile(p), _one(name, conv)) for p in patterns]


@dataclass(frozen=True)
class ReleaseClue:
    """A wording only some releases print, read from each release's source: seen in a log, the release is in
    [since, until). With `absent_after` the clue is the wording's absence: where `absent_after` matches (a block
    that prints every field, such as TGI's launcher Args) but the wording does not, the release is before
    `since`."""

    pattern: re.Pattern[str]
    since: str | None  # the first release that prints it (None: every release read)
    until: str | None  # the first release that no longer prints it (None: the newest read still does)
    what: str  # how explain names it
    absent_after: re.Pattern[str] | None = None


def clue(pattern: str, since: str | None, until: str | None, what: str, absent_after: str | None = None
         ) -> ReleaseClue:
    return ReleaseClue(re.compile(pattern), since, until, what,
                       re.compile(absent_after) if absent_after else None)


@dataclass(frozen=True)
class LogWording:
    name: str  # what kvplan.logs reports as the engine of a log written this way
    markers: re.Pattern[str]  # wordings only this engine's logs use
    figures: tuple[Rule, ...]  # figure rules, priority order
    config_line: re.Pattern[str] | None = None  # states the engine for sure; group 1: its version
    version_lines: tuple[re.Pattern[str], ...] = ()  # other lines that print the version (group 1)
    recognized: re.Pattern[str] | None = None  # lines that show this engine even without memory figures
    failures: tuple[tuple[re.Pattern[str], str], ...] = ()  # a failed startup's line -> its kind (FAILURES)
    settings: tuple[Rule, ...] = ()  # settings only this engine prints that way
    release_clues: tuple[ReleaseClue, ...] = ()  # wordings that date a log which does not print its version
    commit_line: re.Pattern[str] | None = None  # group 1: the build's commit, looked up in `commits`
    commits: tuple[tuple[str, str], ...] = ()  # (commit prefix, release) of official builds


# Kinds of failed startup kvplan recognises, and what each means.
FAILURES = {
    "max_model_len": "one request of max_model_len does not fit in the KV cache",
    "no_kv_memory": "no memory is left for the KV cache after the weights and the profile run",
    "free_memory": "the GPU had less free memory at startup than the utilization asks",
    "warmup_oom": "the warmup prefill ran out of memory",
    "oom": "CUDA ran out of memory while loading or profiling",
}

# CUDA's out-of-memory error as PyTorch prints it, whatever the engine.
CUDA_OOM = (re.compile(r"OutOfMemoryError|CUDA out of memory"), "oom")
