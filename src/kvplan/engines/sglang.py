"""SGLang's memory accounting (static memory fraction + token pool), read from SGLang's own source.

Sources (PyPI wheels, which pin the source exactly): sglang 0.4.9.post2 and sglang 0.5.23.

Pool (0.4.9.post2 `srt/model_executor/model_runner.py` profile_max_num_token; unchanged in 0.5.23
`srt/mem_cache/kv_cache_configurator.py` _profile_available_bytes):
    rest_memory = free memory after loading weights - free memory at startup x (1 - mem_fraction_static)
so, with F = the free memory at startup (CUDA total - CUDA context - torch.distributed/NCCL buffers),
    pool = mem_fraction_static x F - weights
    max_total_num_tokens = pool // cell_size, then rounded down to --page-size (1 by default)
    cell_size = per-token KV bytes over this rank's layers:
        MHA/GQA: kv_heads/tp x head_dim x 2 x layers x bytes;  MLA: (kv_lora_rank + qk_rope_head_dim) x layers x bytes
The log prints it as "KV Cache is allocated. #tokens: N, K size: X GB, V size: Y GB" and
"max_total_num_tokens=N"; SGLang's "GB" are GiB (it divides by 1 << 30).
The request-to-token table, CUDA graphs and activations live outside the fraction (the 1 - fraction remainder).

Free memory at startup is not derivable from a config. kvplan takes it from a public SGLang startup log
(kvplan.engines.common.startup_in_use: sgl-project/sglang#11716, H200 TP8): the CUDA context costs 0.50 GiB and
"Init torch distributed ends. mem usage=1.77-2.01 GB" (2.01 GiB on most ranks) when more than one GPU serves a
replica: NCCL's NVLink SHARP buffers, so not on NVIDIA GPUs without NVSwitch, whose public logs show the context
alone (rows 133 and 134 of benchmarks/engine_logs.csv, L4 and RTX 4090 at TP 4).

Default --mem-fraction-static (used when no --util is given):
- 0.5.23 `srt/arg_groups/memory_hook.py` handle_gpu_memory_settings (CUDA, no DP attention / speculative /
  disaggregation; gpu_mem = nvidia-smi memory.total in MiB):
      reserved = 512 + 1.5 x max(chunked_prefill_size, 2048) + tp x pp / 8 x 1024
                 + 2 x decode cuda_graph max_bs + prefill-graph reserve (8 MiB per captured size, 1.5 GiB with MLA;
                   none with PP, which disables breakable prefill graphs)
      reserved = max(reserved, 10 GiB) when gpu_mem > 60 GiB;   fraction = round((gpu_mem - reserved) / gpu_mem, 3)
  chunked_prefill_size / max_bs by gpu_mem: <20 GiB 2048/8; <35 GiB 4096/48 (160 at TP>=4); <60 GiB 4096/32 (160);
  <90 GiB 8192/256 (512); <160 GiB 8192/256 (512); else 16384/512.
- 0.4.9.post2 `srt/server_args.py` __post_init__: reserved = (2.8 + tp x pp / 10) GiB below 35 GiB, (9.5 + tp x pp / 2)
  below 90 GiB, (12 + tp x pp / 2) below 160 GiB, else 32 GiB; multimodal models x 0.90.
Hybrid models (SGLANG_RULES rows): the model types a release gives a sliding-window pool split it into full and
SWA tokens (cell = full + 0.8 x SWA bytes per token; max_total_num_tokens is the full tokens); Mamba / gated-
DeltaNet hybrids (0.5.2+) charge a state pool first (0.9 / 1.9 of the rest, in states of conv bf16 + SSM fp32),
then the full-attention layers take the rest; other sliding-window models (Mistral, Gemma-2/3 in 0.5.x) get one
full-length pool, as SGLang allocates it. A model of Mamba layers only raises UnsupportedModelError.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

from kvplan.budget import Budget, Term, TermKind
from kvplan.caching import derived
from kvplan.capacity import Pool, TokenPool
from kvplan.deployment import Deployment, Stage
from kvplan.engines.base import (
    Engine,
    EngineSettings,
    Launch,
    OutputReserve,
    Printed,
    RuleTable,
    Setup,
    Startup,
    parse_version,
    row,
)
from kvplan.engines.common import ALLOC_LARGE_FROM, ALLOC_ROUND_LARGE, loaded_weights, parameters, startup_in_use
from kvplan.engines.logwords import CUDA_OOM, GAP, INT, NUM, LogWording, clue, rules, to_float, to_int
from kvplan.errors import InputError, UnsupportedModelError
from kvplan.model.drafters import eagle_head
from kvplan.model.spec import MLAKV, SELF_ATTENTION, TOWER_ROLES, ModelSpec, Retention
from kvplan.units import MiB

DEFAULT_PAGE_SIZE = 1


def _k_plus_v(m: re.Match[str]) -> dict[str, object]:
    """SGLang's pool is K size + V size, as SGLang itself sums mem_usage."""
    return {"kv_available_gib": round(to_float(m.group(1)) + to_float(m.group(2)), 2)}


LOG = LogWording(
    name="SGLang",
    markers=re.compile(
        r"KV Cache is allocated|Load weight (?:begin|end)|server_args=ServerArgs\(|max_total_num_tokens="
        r"|Memory pool end|Capture cuda graph (?:begin|end)|^\[\d{4}-\d\d-\d\d [\d:]+ TP\d+\]"),
    recognized=re.compile(r"server_args=ServerArgs\("),
    # SGLang prints no version at startup: its wordings date a log (read in every PyPI release 0.3.0-0.5.23:
    # srt/model_executor/model_runner.py, srt/mem_cache/memory_pool.py, srt/managers/scheduler.py,
    # srt/entrypoints/engine.py). Bounds are releases without their .postN: a wording that starts or ends at a
    # post release is dated from that release's base or to the next release (the range widens, never narrows).
    release_clues=(
        clue(r"server_args=ServerArgs\(", "0.3.0", "0.5.19", "server_args printed as ServerArgs(...)"),
        clue(r"server_args=\{'", "0.5.19", None, "server_args printed as a dict"),
        clue(r"Init torch distributed ends\. mem usage=", "0.4.3", "0.5.9",
             "\"Init torch distributed ends. mem usage\""),
        clue(r"Init torch distributed ends\. elapsed=", "0.5.9", "0.5.21", "\"Init torch distributed ends. elapsed\""),
        clue(r"Memory baseline taken\.|Init parallel begin\.", "0.5.21", None,
             "\"Init parallel\" / \"Memory baseline\""),
        clue(r"Load weight end\. type=[^,\n]+, dtype=[^,\n]+, avail mem=[\d.]+ GB\.?$", "0.3.0", "0.4.4",
             "\"Load weight end\" without mem usage"),
        clue(r"Load weight end\. type=[^,\n]+, dtype=[^,\n]+, avail mem=[\d.]+ GB, mem usage=", "0.4.3", "0.5.9",
             "\"Load weight end. type=..., mem usage\""),
        clue(r"Load weight end\. elapsed=[^,\n]+, type=[^,\n]+, dtype=", "0.5.9", "0.5.10",
             "\"Load weight end. elapsed=..., dtype=\""),
        clue(r"Load weight end\. elapsed=[^,\n]+, type=[^,\n]+, (?:quant=|avail mem=)", "0.5.10", None,
             "\"Load weight end. elapsed=...\" without dtype"),
        clue(r"KV Cache is allocated\. K size: ", "0.4.1", "0.4.4",
             "\"KV Cache is allocated. K size\" without #tokens"),
        clue(r"KV Cache is allocated\. #tokens: ", "0.4.3", "0.5.13", "\"KV Cache is allocated. #tokens\""),
        clue(r"KV Cache is allocated\. dtype: ", "0.5.13", None, "\"KV Cache is allocated. dtype\""),
        clue(r"Mamba Cache is allocated\. conv_state size", "0.5.2", "0.5.4",
             "\"Mamba Cache is allocated. conv_state\""),
        clue(r"Mamba Cache is allocated\. max_mamba_cache_size", "0.5.3", None, "\"max_mamba_cache_size\""),
        clue(r"Using KV cache dtype: ", "0.5.3", "0.5.13", "\"Using KV cache dtype\""),
        clue(r"max_total_num_tokens=\d+, max_prefill_tokens=", "0.3.0", "0.4.2",
             "\"max_total_num_tokens\" without chunked_prefill_size"),
        clue(r"max_total_num_tokens=\d+, chunked_prefill_size=[^\n]*context_len=\d+$", "0.4.2", "0.4.7",
             "\"max_total_num_tokens\" without available_gpu_mem"),
        clue(r"max_total_num_tokens=\d+, [^\n]*available_gpu_mem=", "0.4.7", None, "available_gpu_mem"),
        clue(r"Capture cuda graph begin\. This can take up to several minutes\.$", "0.3.0", "0.4.4",
             "\"Capture cuda graph begin\" without avail mem"),
        clue(r"Capture cuda graph begin\. This can take up to several minutes\. avail mem=", "0.4.3", "0.5.14",
             "\"Capture cuda graph begin ... avail mem\""),
        clue(r"Capture cuda graph end\. Time elapsed: [\d.]+ s\.?$", "0.4.0", "0.4.4",
             "\"Capture cuda graph end\" without memory"),
        clue(r"Capture cuda graph end\. Time elapsed: [\d.]+ s\. avail mem=", "0.4.3", "0.4.7",
             "\"Capture cuda graph end\" with avail mem first"),
        clue(r"Capture cuda graph end\. Time elapsed: [\d.]+ s\. mem usage=", "0.4.6", "0.5.14",
             "\"Capture cuda graph end\" with mem usage first"),
        clue(r"Capture target decode CUDA graph", "0.5.14", None, "\"Capture target decode CUDA graph\""),
        clue(r"Not enough memory\. Please try to increase --mem-fraction-static", "0.3.0", None,
             "\"Not enough memory. Please try to increase --mem-fraction-static\" (every release read)"),
    ),
    failures=((re.compile(r"Not enough memory\. Please try to increase --mem-fraction-static"), "no_kv_memory"),
              CUDA_OOM),
    figures=(
        *rules("weights_gib", to_float, rf"Load weight end\.{GAP}mem usage={NUM} GB"),
        (re.compile(rf"(?<![A-Za-z])KV Cache is allocated\.{GAP}\bK size: {NUM} GB, V size: {NUM} GB"), _k_plus_v),
        *rules("kv_available_gib", to_float, rf"(?<![A-Za-z])KV Cache is allocated\.{GAP}\bKV size: {NUM} GB"),
        *rules("kv_tokens", to_int, rf"(?<![A-Za-z])KV Cache is allocated\. #tokens: {INT}",
               rf"(?<![\w])max_total_num_tokens={INT}"),
        *rules("cudagraph_gib", to_float, rf"Capture cuda graph end\.{GAP}mem usage={NUM} GB"),
    ),
)

GEMMA_SWA = frozenset({"gemma2", "gemma3", "gemma3_text", "gemma3n", "gemma3n_text"})
SWA_FULL_TOKENS_RATIO = 0.8  # --swa-full-tokens-ratio (server_args.py from 0.4.9.post3)
MAMBA_FULL_MEMORY_RATIO = 0.9  # --mamba-full-memory-ratio (0.5.3.post3+)
MAMBA_RADIX_SLOTS = 3  # max_running_requests <= Mamba states // 3 with the radix cache (0.5.3.post2+)


@dataclass(frozen=True)
class SglangRules:
    default_fraction: str  # the default --mem-fraction-static rule (default_mem_fraction_static)
    small_gpu_defaults: tuple[int, int]  # (chunked_prefill_size, cuda_graph_max_bs at TP < 4) below 35 GiB (0.5.x)
    prefill_graphs: bool  # piecewise prefill CUDA graphs on by default: their reserve enters the default fraction
    multimodal_factor: float  # ModelRunner scales any fraction by it for multimodal models (even one given)
    swa_pool_types: frozenset[str]  # model types given a hybrid sliding-window pool (full + SWA tokens)
    mamba_pool: str  # Mamba / linear-attention hybrids: "none" (not served), "requests", "ratio", "ratio_padded"
    mamba_slots: int  # Mamba states a running request may hold with the radix cache (max_running <= states // it)
    running: str  # how max_running_requests resolves (max_running_requests): "0.4.0", "0.4.7", "0.5.10", "0.5.15"
    speculative: str  # where a drafter lives: "none" (not modelled), "reserve" (outside the fraction, which
    # its default keeps 4 / 6 GiB more for), "in_pool" (its weights and KV layers inside the fraction)


SGLANG_RULES = RuleTable(
    SglangRules,
    row("0.0.0", "srt/server_args.py 0.4.0 __post_init__: by TP size, 0.88 / 0.87 / 0.85 / 0.81 / 0.79 at TP 1 / 2 / "
        "4 / 8 / 16; srt/model_executor/model_runner.py 0.4.0: x 0.95 for multimodal models, given or not (rules "
        "that begin at a .postN release apply from its base release: kvplan's versions drop .postN); "
        "srt/model_executor/model_runner.py load_model and srt/utils get_available_gpu_memory (read in 0.4.3.post2 "
        "and 0.5.13.post1; the releases between assumed alike): 'mem usage' is free memory before - after loading, "
        "read after empty_cache, so it holds the parameters as the caching allocator does (c10 "
        "CUDACachingAllocator: 2 MiB rounding from 10 MiB) and srt/layers/rotary_embedding.py's fp32 cos/sin cache; "
        "srt/managers/schedule_policy.py PrefillAdder and scheduler.py new_token_ratio (read in 0.4.0 and 0.5.7): "
        "admission reserves the running requests' outputs to come (SGLang.output_reserve), exactly with the radix "
        "cache off for ignore-EOS requests (add_one_req_ignore_eos)",
        default_fraction="tp_table", small_gpu_defaults=(2048, 16), prefill_graphs=False,
        multimodal_factor=0.95, swa_pool_types=frozenset(), mamba_pool="none", running="0.4.0",
        speculative="none", mamba_slots=MAMBA_RADIX_SLOTS),
    row("0.4.4", "srt/model_executor/model_runner.py 0.4.4.post4: x 0.90 for multimodal models",
        multimodal_factor=0.90),
    row("0.4.5", "srt/server_args.py 0.4.5.post3: above 80 GiB (81920 MiB) (g - 13 GiB) / g",
        default_fraction="large_13"),
    row("0.4.6", "srt/server_args.py 0.4.6.post2: the TP table by TP x PP up to 80 GiB, else 0.88, then above 96 GiB "
        "min(f + 48 GiB x (1 - f) / g, (g - 18 GiB) / g) (0.4.7's 0.79 above 180000 MiB is taken by the next rule)",
        default_fraction="large_18"),
    row("0.4.7", "srt/server_args.py 0.4.7.post1-0.5.2 __post_init__ (read in 0.4.9.post2): reserved (2.8 + TP x PP / "
        "10) GiB below 35 GiB, (9.5 + TP x PP / 2) below 90, (12 + TP x PP / 2) below 160, else 32 GiB",
        default_fraction="reserve_0.4", running="0.4.7"),
    row("0.4.9", "srt/server_args.py 0.4.9: the multimodal factor moves to the default (x 0.90; the ViT-size formula "
        "from 0.4.9.post3 is not applied); srt/model_executor/model_runner.py 0.4.9.post3: a sliding-window pool for "
        "models defining get_attention_sliding_window_size (Gemma 2 / 3 / 3n)", multimodal_factor=1.0,
        swa_pool_types=frozenset(GEMMA_SWA)),
    row("0.4.10", "srt/model_executor/model_runner.py 0.4.10.post2: not for Gemma 2",
        swa_pool_types=frozenset(GEMMA_SWA - {"gemma2"})),
    row("0.5.1", "srt/model_executor/model_runner.py 0.5.1: the sliding-window pool off for Gemma 2 / 3 / 3n and "
        "GPT-OSS (Llama 4's needs --hybrid-kvcache-ratio)", swa_pool_types=frozenset()),
    row("0.5.2", "srt/model_executor/model_runner.py 0.5.2 profile_max_num_token: a Mamba state pool of "
        "--max-mamba-cache-size, else max_running_requests, else 512 states, before the KV tokens",
        mamba_pool="requests"),
    row("0.5.3", "srt/server_args.py 0.5.3 _handle_gpu_memory_settings: reserved 512 + 1.5 x max(chunked_prefill_size, "
        "2048) + 2 x cuda_graph_max_bs + TP x PP / 8 GiB (MiB), at least 10 GiB above 60 GiB; model_runner.py "
        "0.5.3.post3 handle_max_mamba_cache: with the radix cache, states = rest x 0.9 / 1.9 // state bytes "
        "(without it, or with --max-mamba-cache-size, the flags' count: given_states, read in 0.5.7) "
        "(mamba_full_memory_ratio 0.9; 0.5.3.post2's 0.2 is taken as 0.9); speculative decoding as read in 0.5.10 "
        "(server_args.py _handle_gpu_memory_settings: 4 GiB more reserved for EAGLE / EAGLE3 / NEXTN drafters, "
        "6 GiB for STANDALONE, after the floor; the target's pool sized over its own weights and layers "
        "(model_runner_kv_cache_mixin.py profile_max_num_token), the drafter's weights and its pool of as many "
        "tokens taken from the reserve; 0.5.3-0.5.9 and 0.5.11-0.5.16 not read, assumed alike)",
        default_fraction="reserve_0.5", mamba_pool="ratio", speculative="reserve"),
    row("0.5.7", "srt/configs/model_config.py 0.5.7: a sliding-window pool for MiMo-V2-Flash only; "
        "model_executor/model_runner_kv_cache_mixin.py 0.5.7 init_memory_pool: with the radix cache, max running "
        "requests <= Mamba states // (3 + 2), the two ping-pong slots counted unless the extra buffer and "
        "speculative decoding are both on (0.5.4-0.5.6: // 3)",
        swa_pool_types=frozenset({"mimo_v2_flash"}), mamba_slots=MAMBA_RADIX_SLOTS + 2),
    row("0.5.8", "srt/configs/model_config.py 0.5.8 is_hybrid_swa_model: Llama 4, GPT-OSS, MiMo-V2-Flash; "
        "model_runner_kv_cache_mixin.py 0.5.8: the two slots only with --mamba-scheduler-strategy extra_buffer "
        "(// 3 by default; read in 0.5.8, 0.5.10, 0.5.13, 0.5.17, 0.5.23)",
        swa_pool_types=frozenset({"llama4", "gpt_oss", "mimo_v2_flash"}), mamba_slots=MAMBA_RADIX_SLOTS),
    row("0.5.9", "srt/configs/model_config.py 0.5.9: and Step-3.5",
        swa_pool_types=frozenset({"llama4", "gpt_oss", "mimo_v2_flash", "step3p5"})),
    row("0.5.4", "srt/server_args.py 0.5.4.post1: cuda_graph_max_bs 24 below 35 GiB at TP < 4",
        small_gpu_defaults=(2048, 24)),
    row("0.5.10", "srt/server_args.py 0.5.10: piecewise prefill CUDA graphs on by default (their reserve, 8 MiB per "
        "captured size, 1.5 GiB with MLA; off with PP or for multimodal models); model_runner_kv_cache_mixin.py "
        "0.5.10 _resolve_max_num_reqs: a given --max-running-requests capped by the estimate", prefill_graphs=True,
        running="0.5.10"),
    row("0.5.11", "srt/configs/model_config.py 0.5.11: and Gemma 4; mem_cache/pool_configurator.py 0.5.11 "
        "HybridSWAPoolConfigurator", swa_pool_types=frozenset({"llama4", "gpt_oss", "mimo_v2_flash", "step3p5",
                                                              "gemma4", "gemma4_text"})),
    row("0.5.15", "mem_cache/pool_configurator.py 0.5.15 resolve_max_num_reqs: a given --max-running-requests "
        "capped by half the tokens", running="0.5.15"),
    row("0.5.17", "mem_cache/kv_cache_configurator.py 0.5.17 _handle_max_mamba_cache: one padding state more; "
        "with the radix cache off and no --max-running-requests the memory ratio, not 512 states (read in 0.5.23); "
        "server_args.py 0.5.17: no speculative reserve in the default fraction; the drafter inside it, as read in "
        "0.5.23 (kv_cache_configurator.py _profile_available_bytes: the draft weights are loaded before the "
        "target's pool is sized; pool_configurator.py: cell += cell x draft layers / target layers, the draft's "
        "pool holding as many tokens; 0.5.18-0.5.22 assumed alike)", mamba_pool="ratio_padded",
        speculative="in_pool"),
    row("0.5.20", "srt/server_args.py 0.5.20: chunked_prefill_size 4096 and cuda_graph_max_bs 48 below 35 GiB",
        small_gpu_defaults=(4096, 48)),
)


@dataclass(frozen=True)
class SglangOptions:
    """SGLang's own flags."""

    context_length: int | None = None
    chunked_prefill_size: int | None = None
    max_running_requests: int | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    disable_radix_cache: bool = False
    max_mamba_cache_size: int | None = None


# --------------------------------------------------------------------------------------- default fraction

def _gpu_defaults(gpu_mem_mib: float, tp: int, small: tuple[int, int] = (4096, 48)) -> tuple[int, int]:
    """(chunked_prefill_size, decode cuda graph max_bs) of SGLang 0.5.3+ for a GPU of `gpu_mem_mib` MiB; `small`:
    the release's values below 35 GiB at TP < 4 (SglangRules.small_gpu_defaults; 0.5.23's by default)."""
    if gpu_mem_mib < 20 * 1024:
        return 2048, 8
    if gpu_mem_mib < 35 * 1024:
        return small[0], small[1] if tp < 4 else 160
    if gpu_mem_mib < 60 * 1024:
        return 4096, 32 if tp < 4 else 160
    if gpu_mem_mib < 160 * 1024:
        return 8192, 256 if tp < 4 else 512
    return 16384, 512


def prefill_graph_sizes(max_bs: int) -> list[int]:
    """Token counts SGLang 0.5.23 captures prefill CUDA graphs for (cuda_graph_hook.py)."""
    sizes = (list(range(4, 33, 4)) + list(range(48, 257, 16)) + list(range(288, 513, 32))
             + list(range(576, 1025, 64)) + list(range(1280, 4097, 256)) + list(range(4608, max_bs + 1, 512)))
    return [s for s in sizes if s <= max_bs]


def chunked_prefill_size(total_bytes: int, tp: int, rules: SglangRules | None = None) -> int:
    """The default --chunked-prefill-size: 0.5.3+ by memory (_gpu_defaults); before, 2048 below 35 GiB (25000 MiB
    before 0.4.7), 8192 below 160 GiB, else 16384."""
    gpu_mem = total_bytes / MiB
    if rules is not None and rules.default_fraction != "reserve_0.5":
        return 2048 if gpu_mem < 35 * 1024 else 8192 if gpu_mem < 160 * 1024 else 16384
    return _gpu_defaults(gpu_mem, tp, rules.small_gpu_defaults if rules else (4096, 48))[0]


def _tp_table(parallel: int) -> float:
    """SGLang 0.4.0-0.4.5's default fraction by TP (x PP from 0.4.6) size."""
    return 0.79 if parallel >= 16 else 0.81 if parallel >= 8 else 0.85 if parallel >= 4 else (
        0.87 if parallel >= 2 else 0.88)


def default_mem_fraction_static(total_bytes: int, tp: int, *, pp: int = 1, mla: bool = False,
                                multimodal: bool = False, rules: SglangRules | None = None,
                                drafter_mib: float = 0.0) -> float:
    """SGLang's --mem-fraction-static when none is given, for a GPU whose nvidia-smi total is `total_bytes`, by the
    release's rule (SGLANG_RULES). The 0.4.9.post3+ adjustment for vision-language models (by the ViT's size) is not
    applied. `drafter_mib`: what the release reserves on top for a speculative drafter (SPECULATIVE_RESERVE_MIB)."""
    gpu_mem = total_bytes / MiB
    if gpu_mem <= 0:
        raise InputError("the GPU memory must be positive")
    parallel = tp * pp
    rules = rules or SGLANG_RULES.rules_for(parse_version(None, SGLang.default_version))
    rule = rules.default_fraction
    if rule == "tp_table":
        return _tp_table(tp)
    if rule == "large_13":
        return _tp_table(tp) if gpu_mem <= 81920 else (gpu_mem - 13 * 1024) / gpu_mem
    if rule == "large_18":
        fraction = _tp_table(parallel) if gpu_mem <= 81920 else 0.88
        if gpu_mem > 96 * 1024:
            fraction = min(fraction + 48 * 1024 * (1 - fraction) / gpu_mem, (gpu_mem - 18 * 1024) / gpu_mem)
        return fraction
    if rule == "reserve_0.4":
        if gpu_mem < 35 * 1024:
            reserved = (2.8 + parallel / 10) * 1024
        elif gpu_mem < 90 * 1024:
            reserved = (9.5 + parallel / 2) * 1024
        elif gpu_mem < 160 * 1024:
            reserved = (12 + parallel / 2) * 1024
        else:
            reserved = 32 * 1024
        fraction = round((gpu_mem - reserved) / gpu_mem, 3)
        return fraction * 0.90 if multimodal and rules.multimodal_factor == 1.0 else fraction
    chunk, max_bs = _gpu_defaults(gpu_mem, tp, rules.small_gpu_defaults)
    reserved = 512 + max(chunk, 2048) * 1.5 + parallel / 8 * 1024 + max_bs * 2
    if rules.prefill_graphs and pp == 1 and not multimodal:  # piecewise prefill graphs: off with PP, for VLMs
        reserved += 1.5 * 1024 if mla else len(prefill_graph_sizes(min(chunk, 8192) if mla else chunk)) * 8
    if gpu_mem > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((gpu_mem - reserved - drafter_mib) / gpu_mem, 3)


# ----------------------------------------------------------------------------------------------- the pool

@dataclass(frozen=True)
class Cells:
    """One stage's cache in SGLang's terms, bytes on one GPU: per token over the layers of the full pool, per
    token over the sliding-window layers where the release gives them their own pool (window: the largest), and
    per request of the Mamba / linear-attention states."""

    full: int
    swa: int = 0
    window: int = 0
    state: int = 0


def cells(dep: Deployment, stage: Stage, rules: SglangRules) -> Cells:
    """The one mapping from kvplan's KV specs to SGLang's pools. Windowed layers are kept at full length unless
    the model type gets the hybrid sliding-window pool (SglangRules.swa_pool_types); states take SGLang's dtypes
    (srt/configs/mamba_utils.py mamba2_state_dtype: conv bf16, SSM fp32 unless the config says)."""
    swa_pool = dep.model.model_type in rules.swa_pool_types
    full = swa = state = 0.0
    window = 0
    for layer in stage.layers:
        kv = layer.kv
        match kv.retention:
            case Retention.STATE:
                if rules.mamba_pool == "none":
                    raise UnsupportedModelError("SGLang before 0.5.2 serves no Mamba / linear-attention hybrid "
                                                "(0.5.2 and later do): give --engine-version")
                conv, ssm = kv.elems(dep.attn_tp)
                state += conv * 2 + ssm * (getattr(kv, "ssm_bytes", None) or 4)
            case Retention.ENCODER:
                raise UnsupportedModelError("kvplan does not model SGLang's encoder cache for cross-attention "
                                            "models")
            case Retention.NONE:
                continue
            case Retention.SLIDING | Retention.CHUNKED if swa_pool:
                swa += kv.bytes_per_token(dep.kv_bytes, dep.attn_tp)
                window = max(window, kv.window or 0)
            case Retention.FULL | Retention.SLIDING | Retention.CHUNKED:  # windowed layers kept at full length
                full += kv.bytes_per_token(dep.kv_bytes, dep.attn_tp)
            case _:
                raise UnsupportedModelError(f"kvplan does not model SGLang's cache for {kv.kind} layers")
    if full + swa <= 0:
        if state:
            raise UnsupportedModelError("a model of Mamba layers only: SGLang serves it without a KV pool (states "
                                        "only, the radix cache off), which kvplan does not model")
        raise UnsupportedModelError("this stage holds no attention layer: SGLang would allocate no KV pool")
    return Cells(round(full), round(swa), window, round(state))


def cell_size(dep: Deployment, stage: Stage, rules: SglangRules) -> int:
    """Bytes one token takes on one GPU of `stage` in a single pool (SGLang's cell_size)."""
    c = cells(dep, stage, rules)
    return c.full + c.swa


class HybridPool(TokenPool):
    """SGLang's pools for hybrid models: `tokens` full-attention tokens (what it prints, max_total_num_tokens), a
    sliding-window pool of `swa_tokens` of which a request holds at most its window, and `states` Mamba states of
    which the radix cache lets a request use one of every MAMBA_RADIX_SLOTS."""

    def __init__(self, budgets: list[Budget], tokens: int, layouts: list[Cells], page: int, swa_tokens: int,
                 states: int | None, slots_per_request: int = MAMBA_RADIX_SLOTS) -> None:
        super().__init__(budgets, tokens, [c.full + c.swa for c in layouts], page)
        self.swa_tokens, self.states, self.layouts = swa_tokens, states, layouts
        self.slots_per_request = slots_per_request  # states a running request may hold (1 with the radix cache off)
        self.window = max(c.window for c in layouts)

    def holds(self, requests: int, length: int) -> bool:
        if requests * self.slots(length) > self.tokens:
            return False
        if self.window and requests * self.slots(min(length, self.window)) > self.swa_tokens:
            return False
        return self.states is None or requests <= self.states // self.slots_per_request

    def max_requests(self, length: int) -> int:
        n = self.tokens // self.slots(length) if self.slots(length) else 0
        if self.window:
            n = min(n, self.swa_tokens // self.slots(min(length, self.window)))
        return n if self.states is None else min(n, self.states // self.slots_per_request)

    def sharing(self) -> tuple[int, int] | None:
        return None  # the sliding-window and Mamba pools share a prefix their own way: not modelled

    def request_bytes(self, length: int) -> int:
        c = max(self.layouts, key=lambda x: x.full + x.swa)
        windowed = self.slots(min(length, self.window)) * c.swa if self.window else 0
        return self.slots(length) * c.full + windowed + c.state


def given_states(options: SglangOptions, rules: SglangRules, dp: int) -> int | None:
    """Mamba states set by the flags instead of the memory ratio (model_runner_kv_cache_mixin.py 0.5.7
    handle_max_mamba_cache; mem_cache/kv_cache_configurator.py 0.5.23 _handle_max_mamba_cache): --max-mamba-cache-size,
    else with --disable-radix-cache --max-running-requests (0.5.3.post3-0.5.16: or 512 when unset; from 0.5.17 the
    ratio rule then), each divided over the data-parallel attention groups; 0.5.2 always 512."""
    if rules.mamba_pool == "requests":
        return 512
    if options.max_mamba_cache_size is not None:
        return max(1, options.max_mamba_cache_size // dp)
    if options.disable_radix_cache:
        if options.max_running_requests is not None:
            return max(1, options.max_running_requests // dp)
        if rules.mamba_pool == "ratio":
            return 512 // dp
    return None


def hybrid_split(rest: int, c: Cells, rules: SglangRules, page: int,
                 given: int | None = None) -> tuple[int, int, int | None]:
    """(full tokens, SWA tokens, Mamba states) from the bytes left after the weights (srt/mem_cache/
    pool_configurator.py 0.5.11 HybridSWAPoolConfigurator: cell = full + ratio x SWA bytes per token, full =
    rest // cell, SWA = full x ratio, both rounded down to the page; 0.4.9.post3-0.5.10 split T tokens of the
    uniform cell by layer counts, the same when the layers' widths agree. Mamba (model_runner.py
    handle_max_mamba_cache): `given` states (given_states), else states = rest x ratio / (1 + ratio) // state
    bytes, charged before the KV tokens, one padding state more from 0.5.17)."""
    states = None
    if c.state:
        if given is not None:
            states = given
        elif rules.mamba_pool == "ratio_padded":
            budget = int(rest * MAMBA_FULL_MEMORY_RATIO / (1 + MAMBA_FULL_MEMORY_RATIO))
            states = max(0, (budget - c.state) // c.state)
        else:
            states = int(rest * MAMBA_FULL_MEMORY_RATIO / (1 + MAMBA_FULL_MEMORY_RATIO) // c.state)
        rest -= (states + (rules.mamba_pool == "ratio_padded")) * c.state
    if c.swa:
        full = max(0, rest) // round(c.full + SWA_FULL_TOKENS_RATIO * c.swa) // page * page
        return full, int(full * SWA_FULL_TOKENS_RATIO) // page * page, states
    return max(0, rest) // c.full // page * page, 0, states


def max_running_requests(tokens: int, context: int, requested: int | None, rule: str = "0.5.15") -> int:
    """What SGLang prints as max_running_requests (SglangRules.running). The estimate is the same in every release:
    clamp(int(tokens / context_len x 512), 2048, 4096). Unset: min(estimate, tokens // 2), the estimate + 1 before
    0.4.7 (tp_worker.py: the request pool's rows). Given: as given before 0.5.10; capped by the estimate in
    0.5.10-0.5.14 (model_runner_kv_cache_mixin.py); by tokens // 2 from 0.5.15."""
    estimated = max(min(int(tokens / context * 512), 4096), 2048)
    if requested is None:
        return max(0, min(estimated + (rule == "0.4.0"), tokens // 2))
    if rule in ("0.4.0", "0.4.7"):
        return requested
    if rule == "0.5.10":
        return min(requested, estimated)
    return max(1, min(requested, tokens // 2))


# srt/server_args.py 0.5.10 _handle_gpu_memory_settings: MiB more reserved below the default fraction for the
# drafter (its weights, its pool and CUDA graphs) where the release keeps it outside the fraction; NGRAM none
SPECULATIVE_RESERVE_MIB = {"draft_model": 6 * 1024, "mtp": 4 * 1024, "eagle": 4 * 1024, "eagle3": 4 * 1024}
SPECULATIVE_RUNNING = 48  # max_running_requests when unset (0.5.10 and 0.5.23 _handle_speculative_decoding)


# kvplan's speculative methods as SGLang's --speculative-algorithm spells them (srt/server_args.py 0.5.23)
SPECULATIVE_ALGORITHMS = {"mtp": "NEXTN", "eagle": "EAGLE", "eagle3": "EAGLE3", "draft_model": "STANDALONE",
                          "ngram": "NGRAM"}


def speculative_flags(settings: EngineSettings | None) -> list[str]:
    """SGLang's speculative flags for kvplan's settings: K tokens a step as K chain steps of one candidate each
    (--speculative-num-steps K --speculative-eagle-topk 1 --speculative-num-draft-tokens K + 1)."""
    if settings is None or settings.speculative_method is None:
        return []
    k = settings.num_speculative_tokens
    out = [f"--speculative-algorithm {SPECULATIVE_ALGORITHMS[settings.speculative_method]}"]
    if settings.speculative_method != "ngram":
        out += [f"--speculative-num-steps {k}", "--speculative-eagle-topk 1", f"--speculative-num-draft-tokens {k + 1}"]
    else:
        out += [f"--speculative-num-draft-tokens {k}"]
    return out + ([f"--speculative-draft-model-path {settings.draft_model}"] if settings.draft_model else [])



@derived
def sglang_weights(dep: Deployment, stage: Stage) -> tuple[int, str]:
    """What SGLang's 'Load weight end ... mem usage' shows on one GPU: the weights as loaded
    (common.loaded_weights), its RoPE cos/sin cache in fp32 on CUDA (srt/layers/rotary_embedding.py
    _compute_cos_sin_cache, read in 0.4.3.post2 and 0.5.13.post1: one [max_position, rotary_dim] table shared
    by the layers) and the caching allocator's rounding: the parameters are allocated one by one under the
    target device, the free memory read after empty_cache (srt/utils get_available_gpu_memory), so each
    parameter of 10 MiB or more holds its size rounded up to 2 MiB (qkv and gate_up one parameter each).
    Every release kvplan has rules for (SGLANG_RULES row 0.0.0 cites the reading).
    Qwen3-14B at TP 4: 40 layers x 4.5 MiB + 2 x 1.07 MiB + 20 MiB = 0.197 GiB above the tensors."""
    weights, source = loaded_weights(dep, stage)
    fp32_rope = 0.0  # loaded_weights counts the tables in the model dtype unless the model keeps them in fp32
    if any(layer.kv.retention in SELF_ATTENTION for layer in stage.layers):
        fp32_rope = sum(r.positions * r.dim * (4 - dep.dense_bytes) for r in dep.model.rope if not r.fp32)
    large = [g for g in parameters(dep, stage).values() if g >= ALLOC_LARGE_FROM]
    rounding = sum(-(-g // ALLOC_ROUND_LARGE) * ALLOC_ROUND_LARGE - g for g in large)
    extra = []
    if fp32_rope:
        extra.append(f"the RoPE cache in fp32 {fp32_rope:+,.0f}")
    if rounding:
        extra.append(f"the allocator's 2 MiB rounding of {len(large)} parameters {rounding:,.0f}")
    total = round(weights + fp32_rope + rounding)
    return total, source[:-2] + "".join(f" + {e}" for e in extra) + " B" if extra else source

class SGLang(Engine):
    name = "sglang"
    label = "SGLang"
    default_version = "0.5.23"
    newest_read = "0.5.23"
    options_class = SglangOptions
    rule_table = SGLANG_RULES
    csv_names = ("sglang",)
    log_wordings = (LOG,)
    log_util_key = "mem_fraction_static"
    plans_fit = True
    serves_dp_attention = True
    prefix_cache = True  # the radix cache, on unless --disable-radix-cache
    container_image = "lmsysorg/sglang:latest"  # docs: docker run ... lmsysorg/sglang:latest
    serve_port = 30000  # srt/server_args.py ServerArgs.port
    dp_attention_lm_head_over_tp = True  # models/deepseek_v2.py ParallelLMHead: the whole TP group by default
    max_model_len_from_seq = True
    speculative_methods = frozenset({"mtp", "eagle", "eagle3", "draft_model", "ngram"})
    flags: ClassVar[dict[str, str]] = {
        "util": "--mem-fraction-static",
        "tp": "--tp-size",
        "max_model_len": "--context-length",
        "kv_fp8": "--kv-cache-dtype fp8_e4m3",
        "quant_fp8": "--quantization fp8",
    }

    def options(self, settings: EngineSettings) -> SglangOptions:
        running = settings.max_num_seqs or (SPECULATIVE_RUNNING if settings.speculative_method else None)
        return SglangOptions(settings.max_model_len, settings.max_num_batched_tokens, running,
                             settings.block_size or DEFAULT_PAGE_SIZE, settings.disable_radix_cache,
                             settings.max_mamba_cache_size)

    def served_model(self, target: ModelSpec, draft: ModelSpec | None, settings: EngineSettings) -> ModelSpec:
        """Where the release holds the drafter (SglangRules.speculative): outside the fraction, in the reserve its
        default keeps for it (the target's pool unchanged), or inside it (weights and KV layers with the
        target's: one token count for both pools). EAGLE heads are taken as built like vLLM's (a shared embedding;
        SGLang's models/llama_eagle*.py not read)."""
        version = parse_version(settings.version, self.default_version)
        rules = SGLANG_RULES.rules_for(version)
        method = settings.speculative_method
        if rules.speculative == "none":
            raise UnsupportedModelError(f"speculative decoding under SGLang {settings.version} is not modelled "
                                        "(kvplan reads it from 0.5.3): use a newer --engine-version")
        if draft is None:
            return target
        if rules.speculative == "reserve":
            return target.with_notes(f"SGLang {settings.version or self.default_version} holds the {method} drafter "
                                     "outside --mem-fraction-static, in what the fraction leaves (its default keeps "
                                     f"{SPECULATIVE_RESERVE_MIB[method] / 1024:g} GiB more for it): the KV pool is "
                                     "the target's alone; kvplan does not check that the drafter fits there")
        if method in ("eagle", "eagle3"):
            draft, notes = eagle_head(draft, target, eagle3=method == "eagle3")
            target = target.with_notes(*notes)
        return target.with_draft(draft, f"{method} drafter")

    def resolve(self, setup: Setup) -> None:
        if setup.dep.kv_dtype in ("int8", "int4"):
            raise InputError(f"SGLang has no {setup.dep.kv_dtype} KV cache (--kv-cache-dtype auto, fp8_e4m3, "
                             "fp8_e5m2): use --kv-dtype auto or fp8")

    def _smi_total(self, setup: Setup) -> int:
        return setup.gpu.memory_bytes if setup.gpu is not None else setup.total

    def fraction(self, setup: Setup, util: float | None) -> float:
        dep, smi, r = setup.dep, self._smi_total(setup), setup.rules
        multimodal = any(t.role in TOWER_ROLES for t in dep.model.tensors)
        if util is not None or not smi:
            fraction = super().fraction(setup, util)
        else:
            mla = any(layer.kv.kind == MLAKV.kind for layer in dep.model.layers)
            drafter = SPECULATIVE_RESERVE_MIB.get(setup.settings.speculative_method or "", 0.0) \
                if r.speculative == "reserve" else 0.0
            fraction = default_mem_fraction_static(smi, dep.tp, pp=dep.pp, mla=mla, multimodal=multimodal, rules=r,
                                                   drafter_mib=drafter)
            setup.notes.append(f"--mem-fraction-static {fraction:.3f} is SGLang {setup.version_text}'s default for "
                               f"{smi / MiB:,.0f} MiB at TP {dep.tp}")
            if multimodal and r.default_fraction == "reserve_0.5":
                setup.notes.append("SGLang 0.5.x lowers the default fraction further for vision models (by ViT "
                                   "size): not applied")
        if multimodal and r.multimodal_factor != 1.0:
            fraction *= r.multimodal_factor
            setup.notes.append(f"SGLang {setup.version_text} scales the fraction by {r.multimodal_factor} for "
                               "multimodal models (srt/model_executor/model_runner.py)")
        return fraction

    def stage_layout(self, setup: Setup, stage: Stage) -> Cells:
        return cells(setup.dep, stage, setup.rules)

    def budget(self, setup: Setup, stage: Stage, layout: Cells, fraction: float) -> Budget:
        in_use, in_use_source = startup_in_use(setup.dep.tp, setup.dep.pp, setup.gpu)
        weights, w_source = sglang_weights(setup.dep, stage)
        terms = [Term(TermKind.STARTUP, round(in_use * fraction),
                      f"{fraction} x {in_use:,} B: the fraction applies to the free memory at startup; "
                      f"{in_use_source}", "in use at startup x fraction"),
                 Term(TermKind.WEIGHTS, weights, f"as loaded: {w_source}")]
        if setup.reserve:
            terms.append(Term(TermKind.RESERVE, setup.reserve, "--reserve"))
        return Budget.of(setup.total, fraction, math.floor(setup.total * fraction), terms)

    def pool(self, setup: Setup, layouts: list[Cells], budgets: list[Budget]) -> TokenPool:
        page = setup.options.page_size
        if not any(c.swa or c.state for c in layouts):
            per_stage = [max(0, b.kv_pool) // c.full for b, c in zip(budgets, layouts, strict=True)]
            return TokenPool(budgets, min(per_stage) // page * page, [c.full for c in layouts], page)
        given = given_states(setup.options, setup.rules, setup.dep.dp_attention)
        splits = [hybrid_split(b.kv_pool, c, setup.rules, page, given) for b, c in zip(budgets, layouts, strict=True)]
        full, swa, states = min(splits, key=lambda x: x[0])
        pool = HybridPool(budgets, full, layouts, page, swa, states,
                          1 if setup.options.disable_radix_cache else setup.rules.mamba_slots)
        if swa:
            setup.notes.append(f"SGLang's sliding-window pool: {full:,} full-attention tokens and {swa:,} "
                               f"sliding-window tokens (--swa-full-tokens-ratio {SWA_FULL_TOKENS_RATIO}); a request "
                               f"holds at most its window ({pool.window:,}) of the latter")
        if states is not None:
            flag = "--max-mamba-cache-size" if setup.options.max_mamba_cache_size else "--max-running-requests"
            how = (f"given by {flag}" if given is not None and setup.rules.mamba_pool != "requests"
                   else "max_mamba_cache_size")
            setup.notes.append(f"SGLang's Mamba pool: {states:,} states of {layouts[0].state:,} B ({how}), at most "
                               f"{states // pool.slots_per_request:,} running requests "
                               + ("(the radix cache off: one state each)" if pool.slots_per_request == 1
                                  else "with the radix cache"))
        return pool

    def request_cap(self, setup: Setup, pool: Pool) -> int | None:
        assert isinstance(pool, TokenPool)
        cap = max_running_requests(pool.tokens, self.context(setup, pool)[0] or 1, setup.options.max_running_requests,
                                   setup.rules.running)
        if isinstance(pool, HybridPool) and pool.states is not None:  # 0.5.3.post2+: states // 3 (radix cache)
            cap = min(cap, pool.states // pool.slots_per_request)
        return cap

    def startup(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Startup:
        """srt/model_executor/pool_configurator.py (0.5.23): no token in the pool is a RuntimeError; a pool smaller
        than --context-length only warns (srt/managers/tp_worker.py: longer requests are refused when served)."""
        assert isinstance(pool, TokenPool) and context
        if pool.tokens <= 0:
            return Startup(False, f"{self.label} will not start: not enough memory (the KV pool holds no token at "
                                  f"--mem-fraction-static {setup.fraction:g}); raise --mem-fraction-static, use more "
                                  "GPUs (--tp-size) or smaller weights", 0)
        if pool.tokens < context:
            setup.notes.append(f"SGLang warns: the KV pool holds {pool.tokens:,} tokens, fewer than --context-length "
                               f"{context:,}: longer requests are refused when served")
        return Startup(True, longest_context=min(context, pool.tokens))

    def batching(self, printed: Printed) -> tuple[bool, bool] | None:
        """Prefill passes of their own, first whenever a new request can be admitted (managers/scheduler.py
        get_next_batch_to_run; --enable-mixed-chunk, off by default, would mix them), prompts chunked at
        chunked_prefill_size."""
        return False, True

    # managers/schedule_policy.py PrefillAdder (add_one_req: prompt + min(max_new_tokens, CLIP_MAX_NEW_TOKENS) must
    # stay below the free pool less the running requests' min(outputs left, CLIP) x new_token_ratio) and
    # managers/scheduler.py (new_token_ratio from SGLANG_INIT_NEW_TOKEN_RATIO 0.7 x schedule_conservativeness 1.0,
    # floor x SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR 0.14, decay over SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS 600 decode steps;
    # retract_decode sets it to (decoded + retract_decode_steps 20 x requests) / max_new_tokens, at most 1), read in
    # 0.4.0 and 0.5.7 (the same rule; CLIP 4096). With the radix cache off and ignore_eos requests SGLang checks
    # the exact future peak instead (add_one_req_ignore_eos): not modelled, the ratio rule stands in.
    output_reserve = OutputReserve(init=0.7, floor=0.14, decay_steps=600, clip=4096, retract_steps=20)
    bench_tool = "sglang.bench_serving"

    def bench_lengths(self, prompt: int, output: int, ratio: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """sglang.bench_serving (compute_random_lens, read in 0.5.7; vLLM's old benchmarks/benchmark_serving.py and
        InferenceX's copy of it draw the same): [max(int(L x r), 1), L], r in [0, 1]; its default 0.0 draws 1 to
        L, and 1 is fixed lengths."""
        if not 0.0 <= ratio <= 1.0:
            raise InputError(f"--random-range-ratio {ratio}: {self.bench_tool} takes a ratio in [0, 1]")
        return (max(int(prompt * ratio), 1), prompt), (max(int(output * ratio), 1), output)

    def printed(self, setup: Setup, pool: Pool, budgets: list[Budget], context: int | None) -> Printed:
        assert isinstance(pool, TokenPool) and context
        o, smi = setup.options, self._smi_total(setup)
        running = self.request_cap(setup, pool)
        free = setup.total - startup_in_use(setup.dep.tp, setup.dep.pp, setup.gpu)[0]
        after = free - sglang_weights(setup.dep, setup.dep.stages[0])[0]
        return Printed(
            engine=self.name, version=setup.version_text, total_bytes=setup.total, total_source=setup.total_source,
            max_model_len=context, block_size=o.page_size, kv_tokens=pool.tokens,
            max_concurrency=pool.tokens / context, max_num_seqs=running, max_running_requests=running,
            max_num_batched_tokens=o.chunked_prefill_size or (
                chunked_prefill_size(smi, setup.dep.tp, setup.rules) if smi else None),
            # a device smaller than what startup holds, or weights beyond its free memory: never printed
            notes=tuple(setup.notes), free_before_weights_bytes=free if free >= 0 else None,
            free_after_weights_bytes=after if after >= 0 else None,
        )

    def node_command(self, launch: Launch, node: int | str, head: str) -> str:
        """sglang.launch_server on node `node` (benchmark/deepseek_v3/README.md; server_args): data-parallel
        attention as --attn-dp-size D (0.5.22+; --dp-size D --enable-dp-attention before) with --ep-size TP;
        past one node --nnodes / --node-rank / --dist-init-addr HEAD:5000 on every node."""
        parts = [f"python -m sglang.launch_server --model-path {launch.model()}", f"--tp-size {launch.tp}"]
        parts += [f"--pp-size {launch.pp}"] if launch.pp > 1 else []
        if launch.dp_attention > 1:
            parts += [f"--attn-dp-size {launch.dp_attention}"]
            parts += [f"--ep-size {launch.tp}"] if launch.expert_parallel else []
        elif launch.replicas > 1 and launch.nodes == 1:
            parts += [f"--dp-size {launch.replicas}"]
        if launch.nodes > 1:
            parts += [f"--nnodes {launch.nodes}", f"--node-rank {node}", f"--dist-init-addr {head}:5000"]
        parts += [f"--mem-fraction-static {launch.util:.3f}", f"--context-length {launch.max_model_len}"]
        parts += [f"--max-running-requests {launch.max_running}"] if launch.max_running else []
        parts += [f"--chunked-prefill-size {launch.max_batched_tokens}"] if launch.max_batched_tokens else []
        parts += [f"--page-size {launch.block_size}"] if launch.block_size else []
        parts += ["--kv-cache-dtype fp8_e4m3"] if launch.kv_dtype == "fp8" else []
        parts += ["--quantization fp8"] if launch.quant == "fp8" else []
        parts += speculative_flags(launch.settings)
        line = " ".join(parts)
        return line + (f"  # one per replica: {launch.replicas} in all" if launch.replicas > 1 and (
            launch.dp_attention > 1 or launch.nodes > 1) else "")
