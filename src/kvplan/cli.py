"""The `kvplan` command: parse arguments, call the library, render. Errors are one line on stderr, exit 2."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from kvplan.errors import KvplanError

EXIT_ERROR = 2
EXIT_NO_FIT = 1


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, allow_nan=False))  # strict JSON: a NaN or infinity is a bug, not output


def _console(wide: bool = False):
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=max(140 if wide else 100, Console().width))


class _Group(click.Group):
    """Turns every kvplan error, usage error (and any unexpected one) into one line and a non-zero exit."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.UsageError as e:  # bad option values, unknown options, missing arguments: one line, exit 2
            command = f" {e.ctx.command_path.split(' ', 1)[1]}" if e.ctx and " " in e.ctx.command_path else ""
            hint = f" (kvplan{command} --help lists the options)"
            click.echo(f"kvplan: error: {e.format_message()}{hint}", err=True)
            sys.exit(EXIT_ERROR)
        except click.ClickException as e:
            click.echo(f"kvplan: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("kvplan: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KvplanError as e:
            click.echo(f"kvplan: error: {e}", err=True)
            sys.exit(EXIT_ERROR)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except RecursionError:
            click.echo("kvplan: error: input nested too deeply to read", err=True)
            sys.exit(EXIT_ERROR)
        except Exception as e:  # a bug: still one line, never a traceback
            click.echo(f"kvplan: internal error ({type(e).__name__}: {e}); please report it with the command",
                       err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kvplan")
def main() -> None:
    """Will this LLM fit on this GPU? Weights, KV cache and serving capacity from config.json."""


# ------------------------------------------------------------------------------------------------ plan
class _Dtype(click.ParamType):
    """An element type as kvplan, vLLM and transformers spell it: bf16 / bfloat16, fp16 / float16 / half,
    fp32 / float32 / float; KV: fp8 / fp8_e4m3 / fp8_e5m2 / fp8_e4m3fn, auto."""

    def __init__(self, kv: bool) -> None:
        self.kv = kv
        self.name = "auto|fp16|bf16|fp32|fp8|int8|int4" if kv else "fp16|bf16|fp32|fp8|int8|int4"

    def convert(self, value, param, ctx):
        from kvplan.model.quant import dtype_name

        if self.kv and str(value).strip().lower() == "auto":
            return "auto"
        return dtype_name(str(value).strip())


_DTYPES = _Dtype(kv=False)
_KV_DTYPES = _Dtype(kv=True)


def _with(options: list):
    """Apply click options in the order listed."""
    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f
    return apply


_deployment_options = _with([
        click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel size."),
        click.option("--dtype", type=_DTYPES, help="Element type of every weight (overrides the config)."),
        click.option("--quant", help="Quantize an unquantized model: fp8, fp8-block, w8a8, w4a16, gptq, awq, nf4, "
                                     "bnb-int8, mxfp4."),
        click.option("--kv-dtype", type=_KV_DTYPES, default="auto", show_default=True,
                     help="KV cache element type; auto = the activation dtype."),
])


class _Tokens(click.ParamType):
    """A token count as vLLM reads one: 8192, 8k (8,000), 8K (8,192), 1M (1,048,576)."""

    name = "tokens"

    def convert(self, value, param, ctx):
        from kvplan.units import parse_tokens

        return parse_tokens(value, f"--{param.name.replace('_', '-')}" if param else "tokens")


class _ContextLength(_Tokens):
    """A token count, or auto (-1): the largest max_model_len the engine starts with."""

    name = "tokens|auto"

    def convert(self, value, param, ctx):
        if str(value).strip().lower() in ("auto", "-1"):
            return "auto"
        return super().convert(value, param, ctx)


TOKENS = _Tokens()


class _EngineChoice(click.Choice):
    """The registered engines (kvplan.engines), asked when the CLI runs, so a registered plug-in is a choice."""

    def __init__(self) -> None:
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self):
        from kvplan.engines import engine_names

        return engine_names()

    @choices.setter
    def choices(self, value) -> None:
        pass

    def convert(self, value, param, ctx):
        from kvplan.engines import canonical_name

        return super().convert(canonical_name(value), param, ctx)


def _feature_options() -> list:
    """The serving features plan and fit both size (vLLM's flags; the shared prefix under any engine)."""
    return [
        click.option("--enable-lora", is_flag=True, help="vLLM: reserve LoRA slots (--max-loras, --max-lora-rank)."),
        click.option("--max-loras", type=int, default=1, show_default=True, help="vLLM: LoRA adapters at once."),
        click.option("--max-lora-rank", type=int, default=16, show_default=True, help="vLLM: the largest LoRA rank."),
        click.option("--lora-dtype", default="auto", show_default=True, help="vLLM: LoRA weights' dtype."),
        click.option("--limit-mm-per-prompt", "limit_mm_per_prompt",
                     help="vLLM: images per prompt the profile feeds the vision tower: image=N or "
                          "'{\"image\": N}' (default: V0 1, V1 999)."),
        click.option("--shared-prefix", type=TOKENS, default=0,
                     help="Tokens every request shares (a system prompt) that the prefix cache holds once."),
    ]


def _features(enable_lora: bool, max_loras: int, max_lora_rank: int, lora_dtype: str, limit_mm_per_prompt: str | None,
              shared_prefix: int) -> dict[str, Any]:
    """The serving-feature flags as EngineSettings fields (plan's and fit's)."""
    from kvplan.errors import InputError

    if enable_lora and max_loras < 1:
        raise InputError(f"--max-loras must be a whole number >= 1 with --enable-lora (got {max_loras})")
    return {"max_loras": max_loras if enable_lora else 0, "max_lora_rank": max_lora_rank, "lora_dtype": lora_dtype,
            "images_per_prompt": parse_mm_limit(limit_mm_per_prompt), "shared_prefix": shared_prefix}


_engine_options = _with([*_feature_options(),
        click.option("--engine", type=_EngineChoice(),
                     help="Whose memory accounting: a registered engine (default vLLM V1; also vLLM V0, SGLang, "
                          "TGI, llama.cpp; none is the plain budget: memory x util - weights - reserve)."),
        click.option("--engine-version", help="Engine release whose rules apply (default: each engine's own, "
                                              "as GET /api/engines and the derivation say)."),
        click.option("--max-model-len", type=_ContextLength(),
                     help="vLLM --max-model-len (default: the model's context); auto: the largest that starts."),
        click.option("--max-num-batched-tokens", type=TOKENS, help="Tokens of the profiling forward pass."),
        click.option("--max-num-seqs", type=int, help="Scheduler cap on concurrent requests."),
        click.option("--block-size", type=int, help="KV block size in tokens (vLLM default 16; 64 from 0.34)."),
        click.option("--enforce-eager", is_flag=True, help="No CUDA graphs."),
        click.option("--chunked-local-hybrid/--no-chunked-local-hybrid", "chunked_local_hybrid", default=None,
                     help="vLLM: VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1 / =0 (Llama-4's chunked layers "
                          "keep the hybrid KV cache manager; default: the release's, off in 0.10.1-0.13)."),
        click.option("--disable-hybrid-kv-cache-manager", is_flag=True,
                     help="vLLM: cache every sliding-window / chunked layer at full length (the flag vLLM takes)."),
        click.option("--disable-radix-cache", is_flag=True,
                     help="SGLang: no radix (prefix) cache; a hybrid model's Mamba states then follow "
                          "--max-running-requests (kvplan's --max-num-seqs)."),
        click.option("--max-mamba-cache-size", type=int, help="SGLang: Mamba states for a hybrid model."),
        click.option("--enable-extensible-kv-cache/--no-enable-extensible-kv-cache", "extensible_kv_cache",
                     default=None, help="vLLM >= 0.34: size the KV cache after warmup (its default; utilization "
                                        "1.0 when unset) or from the profile's estimate."),
        click.option("--cpu-offload-gb", type=float, default=0.0,
                     help="vLLM: GiB of weights per GPU held in CPU memory (whole parameters, layer by layer)."),
        click.option("--swap-space", type=float,
                     help="vLLM: GiB of CPU swap per GPU (V0 allocates it as CPU blocks, default 4; V1 none)."),
        click.option("--kv-offloading-size", type=float, default=0.0,
                     help="vLLM V1: GiB of CPU KV tier over all ranks (native offloading connector)."),
        click.option("--kv-offloading-backend", type=click.Choice(["native", "lmcache"]), default="native",
                     show_default=True, help="vLLM V1: who holds the CPU KV tier: vLLM's connector or LMCache's "
                                             "local CPU backend."),
        click.option("--entry-point", default="serve", show_default=True,
                     help="vLLM: serve (`vllm serve`) or llm (the offline LLM class: larger token budget)."),
        click.option("--speculative-method",
                     help="Speculative decoding (vLLM): mtp (the checkpoint's MTP layers), draft_model, ngram."),
        click.option("--num-speculative-tokens", type=int, default=0, help="Tokens proposed per step."),
        click.option("--draft-model", help="The drafter for draft_model / eagle / eagle3."),
        click.option("--speculative-config",
                     help="vLLM's own JSON, e.g. '{\"method\": \"mtp\", \"num_speculative_tokens\": 1}'."),
])


@main.command()
@click.argument("model", required=False)
@click.option("--gpu", "gpu", multiple=True, help="GPU alias (repeat for side-by-side columns), e.g. a10g, h100.")
@click.option("--gpu-memory", help="A custom device's memory: 24GiB (binary) or 24GB (decimal).")
@click.option("--gpus", type=int, help="GPUs in all (default TP x PP; more = data-parallel replicas).")
@_deployment_options
@click.option("--pp", type=int, default=1, show_default=True, help="Pipeline-parallel size.")
@click.option("--dp-attention", type=int, default=1, show_default=True,
              help="MoE: data-parallel attention groups in the TP group (vLLM -dp D -tp TP/D; SGLang --attn-dp-size): "
                   "each holds its own requests' KV.")
@click.option("--expert-parallel", is_flag=True, help="MoE: whole experts per GPU (--enable-expert-parallel).")
@click.option("--util", type=float, multiple=True,
              help="Fraction of GPU memory to use (default: the engine's own; repeatable).")
@click.option("--seq", type=TOKENS, help="Tokens per request (default: the model's context length).")
@click.option("--batch", type=int, default=1, show_default=True, help="Concurrent requests.")
@click.option("--reserve", default="0GiB", show_default=True, help="Memory per GPU kept back for activations etc.")
@click.option("--kv-memory", help="Set the KV pool per GPU directly, e.g. 10GiB.")
@click.option("--layers", type=int, help="Explicit model: number of layers.")
@click.option("--hidden", type=int, help="Explicit model: d_model.")
@click.option("--params", help="Explicit model: parameter count, e.g. 7B or 7e9.")
@click.option("--heads", type=int, help="Explicit model: attention heads.")
@click.option("--kv-heads", type=int, help="Explicit model: KV heads (MQA 1, GQA n).")
@click.option("--head-dim", type=int, help="Explicit model: head dimension.")
@click.option("--vocab", type=int, help="Explicit model: vocabulary size.")
@_engine_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema in the README).")
@click.option("--explain", is_flag=True, help="Print the derivation with numbers substituted.")
@click.option("--require-fit", is_flag=True, help="Exit 1 when a scenario does not fit or the engine would not start.")
def plan(model: str | None, gpu: tuple[str, ...], gpu_memory: str | None, gpus: int | None, tp: int,
         dtype: str | None, quant: str | None, kv_dtype: str, pp: int, dp_attention: int, expert_parallel: bool,
         util: tuple[float, ...], seq: int | None,
         batch: int, reserve: str, kv_memory: str | None, layers: int | None, hidden: int | None,
         params: str | None, heads: int | None, kv_heads: int | None, head_dim: int | None, vocab: int | None,
         engine: str, engine_version: str | None, max_model_len: int | str | None,
         max_num_batched_tokens: int | None,
         max_num_seqs: int | None, block_size: int | None, enforce_eager: bool, enable_lora: bool, max_loras: int,
         max_lora_rank: int, lora_dtype: str, cpu_offload_gb: float, shared_prefix: int, entry_point: str,
         speculative_method: str | None, num_speculative_tokens: int, draft_model: str | None,
         speculative_config: str | None, swap_space: float | None, kv_offloading_size: float,
         kv_offloading_backend: str, limit_mm_per_prompt: str | None, extensible_kv_cache: bool | None,
         chunked_local_hybrid: bool | None, disable_hybrid_kv_cache_manager: bool, disable_radix_cache: bool,
         max_mamba_cache_size: int | None, as_json: bool, explain: bool,
         require_fit: bool) -> None:
    """Weights, KV cache and capacity of MODEL (catalog alias, HF id, config.json or folder) on GPUs."""
    from kvplan.engines import DEFAULT_ENGINE
    from kvplan.errors import InputError
    from kvplan.model.load import model_from_dims
    from kvplan.planning import plan as make_plan
    from kvplan.units import parse_count

    explicit = {"--layers": layers, "--hidden": hidden, "--params": params}
    if any(v is not None for v in explicit.values()) or any(v is not None for v in (heads, kv_heads, head_dim)):
        if model:
            raise InputError("give either MODEL or explicit dimensions (--layers/--hidden/--params), not both")
        missing = [k for k, v in explicit.items() if v is None]
        if missing:
            raise InputError(f"explicit dimensions need {', '.join(missing)} as well")
        source: Any = model_from_dims(layers, hidden, parse_count(params, "--params"), heads, kv_heads,  # type: ignore[arg-type]
                                      head_dim, vocab)
    elif model:
        source = model
    else:
        raise InputError("give a MODEL (e.g. falcon-7b; `kvplan models` lists them) or --layers/--hidden/--params")
    if speculative_config is not None:
        from kvplan.engines.base import parse_speculative_config

        if speculative_method or num_speculative_tokens or draft_model:
            raise InputError("give --speculative-config or --speculative-method / --num-speculative-tokens / "
                             "--draft-model, not both")
        speculative_method, num_speculative_tokens, draft_model = parse_speculative_config(speculative_config)
    result = make_plan(source, gpu=list(gpu), gpu_memory=gpu_memory, gpus=gpus, tp=tp, pp=pp,
                       util=list(util) or None, seq=seq, batch=batch, dtype=dtype, kv_dtype=kv_dtype.lower(),
                       quant=quant, reserve=reserve, kv_memory=kv_memory, engine=engine or DEFAULT_ENGINE,
                       engine_version=engine_version, max_model_len=max_model_len,
                       max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                       block_size=block_size, enforce_eager=enforce_eager, entry_point=entry_point,
                       dp_attention=dp_attention, expert_parallel=expert_parallel,
                       cpu_offload_gb=cpu_offload_gb, speculative_method=speculative_method,
                       num_speculative_tokens=num_speculative_tokens, draft_model=draft_model,
                       swap_space=swap_space, kv_offloading_size=kv_offloading_size,
                       kv_offloading_backend=kv_offloading_backend, extensible_kv_cache=extensible_kv_cache,
                       chunked_local_hybrid=chunked_local_hybrid,
                       disable_hybrid_kv_cache_manager=disable_hybrid_kv_cache_manager,
                       disable_radix_cache=disable_radix_cache, max_mamba_cache_size=max_mamba_cache_size,
                       **_features(enable_lora, max_loras, max_lora_rank, lora_dtype, limit_mm_per_prompt,
                                  shared_prefix))
    if as_json:
        data = result.to_dict()
        if explain:
            from kvplan.derivation import derivation

            data["derivation"] = derivation(result)
        _emit_json(data)
    else:
        from kvplan.render import plan_table

        console = _console()
        plan_table(console, result)
        if explain:
            from kvplan.derivation import derivation

            console.print("\n[bold]derivation[/bold]")
            for step in derivation(result):
                console.print(step, markup=False, soft_wrap=True)
    if require_fit and not all(s.capacity.fits and s.startup.starts for s in result.scenarios):
        sys.exit(EXIT_NO_FIT)


# --------------------------------------------------------------------------------------------- inspect
@main.command()
@click.argument("model")
@_deployment_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(model: str, tp: int, dtype: str | None, quant: str | None, kv_dtype: str, as_json: bool) -> None:
    """Per-tensor-group and per-layer inventory of MODEL: shapes, params, bytes, KV spec."""
    from kvplan.deployment import Deployment
    from kvplan.inventory import inventory
    from kvplan.model.load import load_model

    spec = load_model(model)
    inv = inventory(Deployment(spec, tp=tp, dtype=dtype, quant=quant, kv_dtype=kv_dtype.lower()))
    if as_json:
        _emit_json(inv.to_dict())
    else:
        from kvplan.render import inventory_table

        inventory_table(_console(), spec, inv)


# ------------------------------------------------------------------------------------- planner and speed
@main.command()
@click.argument("model")
@click.option("--users", type=int, required=True, help="Concurrent requests to serve.")
@click.option("--seq", type=TOKENS, help="Tokens per request (prompt + output); the output is --output or 25%.")
@click.option("--prompt", type=TOKENS, help="Prompt tokens per request.")
@click.option("--output", type=TOKENS, help="Output tokens per request.")
@click.option("--min-tokens-per-sec", type=float, help="Target decode speed per user.")
@click.option("--max-ttft", type=float, help="Target time to first token, seconds.")
@click.option("--gpu", "gpu", multiple=True, help="GPU types to consider (repeat; default: the datacenter set).")
@click.option("--max-gpus", type=int, default=8, show_default=True, help="GPUs per replica at most.")
@click.option("--allow-quant", is_flag=True, help="Also consider fp8 and int4 weights.")
@click.option("--allow-fp8-kv", is_flag=True, help="Also consider an fp8 KV cache.")
@click.option("--allow-cross-node-tp", is_flag=True,
              help="Let TP span nodes (its all-reduces priced over the network); by default TP stays in a node.")
@click.option("--engine", help="Whose accounting sizes candidates: an engine with a launch line (default vLLM; "
                               "also SGLang).")
@click.option("--price", multiple=True, help="Override a price: GPU=USD_PER_HOUR (repeat).")
@click.option("--price-file", help="Prices from a TOML ([prices] h100 = 2.49) or CSV (gpu,usd_per_hour) file.")
@click.option("--rank-by", type=click.Choice(["cost-per-token", "cost-per-hour", "gpus", "latency"]),
              default="cost-per-token", show_default=True,
              help="What ranks candidates that meet the targets: cost per million output tokens at the workload, "
                   "cost per hour, GPUs, or one request's latency (TTFT + output at the decode speed).")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True,
              help="Candidates to show (in the table and the JSON).")
@click.option("--json", "as_json", is_flag=True, help='{"candidates": [...], "rejected": {...}}, best first.')
@click.option("--emit", type=click.Choice(["k8s"]),
              help="k8s: a Kubernetes LeaderWorkerSet (+ Service) for the best candidate, one pod per node.")
@click.option("--speculative-method",
              help="Size every candidate with speculative decoding (mtp, ngram, draft_model, eagle, eagle3).")
@click.option("--num-speculative-tokens", type=int, default=0, help="Tokens proposed per step.")
@click.option("--draft-model", help="The drafter for draft_model / eagle / eagle3.")
@click.option("--allow-cpu-offload", type=float, default=0.0, metavar="GIB",
              help="vLLM: also size every family with GIB of weights per GPU in CPU memory (--cpu-offload-gb), "
                   "its speeds paying the host-link read every pass.")
@click.option("--load-stat", type=click.Choice(["median", "p99", "none"]), default="median", show_default=True,
              help="Judge --max-ttft / --min-tokens-per-sec again at the workload's load (the best candidates, "
                   "their users as closed-loop clients in the scheduler simulation): median or p99; none: not.")
@_with(_feature_options())
def fit(model: str, users: int, seq: int | None, prompt: int | None, output: int | None,
        min_tokens_per_sec: float | None, max_ttft: float | None, gpu: tuple[str, ...], max_gpus: int,
        allow_quant: bool, allow_fp8_kv: bool, allow_cross_node_tp: bool, engine: str, price: tuple[str, ...],
        price_file: str | None, rank_by: str, top: int, as_json: bool, emit: str | None,
        speculative_method: str | None, num_speculative_tokens: int, draft_model: str | None,
        allow_cpu_offload: float, load_stat: str, enable_lora: bool, max_loras: int, max_lora_rank: int,
        lora_dtype: str, limit_mm_per_prompt: str | None, shared_prefix: int) -> None:
    """The cheapest deployment of MODEL that serves --users requests of --seq tokens (and speed targets)."""
    from kvplan.engines import DEFAULT_ENGINE
    from kvplan.engines.base import serve_name
    from kvplan.fit import Workload, search
    from kvplan.model.load import load_model
    from kvplan.pricing import parse_overrides, read_file

    workload = Workload.from_options(users, seq, prompt, output, min_tokens_per_sec, max_ttft)
    prices = {**(read_file(price_file) if price_file else {}), **parse_overrides(price)}
    spec = load_model(model)
    result = search(spec, workload, list(gpu) or None, max_gpus, allow_quant, allow_fp8_kv, prices,
                    serve_name(model, spec), (engine or DEFAULT_ENGINE).lower(), rank_by, allow_cross_node_tp,
                    (speculative_method, num_speculative_tokens) if speculative_method or num_speculative_tokens
                    else None, load_stat, draft_model, allow_cpu_offload,
                    _features(enable_lora, max_loras, max_lora_rank, lora_dtype, limit_mm_per_prompt, shared_prefix))
    if emit == "k8s":
        from kvplan.errors import InputError
        from kvplan.manifest import leader_worker_set, to_yaml

        if result.best is None:
            raise InputError("no candidate meets every target: nothing to write a manifest for (see kvplan fit "
                             "without --emit)")
        click.echo(to_yaml(leader_worker_set(result.best)), nl=False)
        return
    if as_json:
        _emit_json(result.to_dict(top))
    else:
        from kvplan.render import fit_view

        fit_view(_console(wide=True), spec, result, top)


@main.command()
@click.argument("model")
@click.option("--gpu", required=True, help="GPU type, e.g. h100.")
@_deployment_options
@click.option("--pp", type=int, default=1, show_default=True, help="Pipeline-parallel size.")
@click.option("--dp-attention", type=int, default=1, show_default=True,
              help="MoE: data-parallel attention groups in the TP group (the batch spread over them, all-to-alls).")
@click.option("--expert-parallel", is_flag=True, help="MoE: whole experts per GPU.")
@click.option("--batch", type=int, default=1, show_default=True, help="Sequences decoded together.")
@click.option("--prompt", type=TOKENS, default=1024, show_default=True, help="Prompt tokens (time to first token).")
@click.option("--context", type=TOKENS, help="Tokens each decoding sequence holds (default: the prompt).")
@click.option("--concurrency", type=int,
              help="Under load: closed-loop clients (vllm bench serve --max-concurrency), a scheduler simulation.")
@click.option("--rate", help="Under load: Poisson requests per second (vllm bench serve --request-rate); inf: all "
                             "at once (offline).")
@click.option("--output", type=TOKENS, default=128, show_default=True, help="Under load: output tokens per request.")
@click.option("--num-prompts", type=int, default=1000, show_default=True, help="Under load: requests in the run.")
@click.option("--random-range-ratio", type=float,
              help="Under load: draw each request's prompt and output length as the benchmark's random dataset does "
                   "at this --random-range-ratio (default: every request has --prompt and --output tokens).")
@click.option("--bench", type=_EngineChoice(),
              help="Under load: the engine whose benchmark's --random-range-ratio rule applies: vllm bench serve's "
                   "L x (1 +- r), or sglang.bench_serving's [L x r, L] (default: the --engine's).")
@click.option("--engine", type=_EngineChoice(), help="Under load: whose scheduler and pool (default vLLM V1).")
@click.option("--engine-version", help="Under load: engine release whose rules apply.")
@click.option("--util", type=float, help="Under load: the engine's memory fraction (default: its own).")
@click.option("--max-model-len", type=TOKENS, help="Under load: max_model_len (default: the model's context).")
@click.option("--max-num-batched-tokens", type=TOKENS, help="Under load: tokens per scheduler pass.")
@click.option("--max-num-seqs", type=int, help="Under load: requests running at once.")
@click.option("--cpu-offload-gb", type=float, default=0.0,
              help="vLLM: GiB of weights per GPU held in CPU memory, read over the host link every pass.")
@click.option("--gpus", type=int, help="Under load: GPUs in all (more than TP x PP: replicas sharing the load evenly).")
@click.option("--disable-radix-cache", is_flag=True,
              help="Under load, SGLang: no radix cache; its admission then checks each request's whole output "
                   "against the pool's future peak (the benchmarks' requests ignore EOS).")
@click.option("--json", "as_json", is_flag=True)
def perf(model: str, gpu: str, tp: int, dtype: str | None, quant: str | None, kv_dtype: str, pp: int,
         dp_attention: int, expert_parallel: bool, batch: int, prompt: int, context: int | None,
         concurrency: int | None, rate: str | None, output: int, num_prompts: int, random_range_ratio: float | None,
         bench: str | None, engine: str | None, engine_version: str | None, util: float | None,
         max_model_len: int | None, max_num_batched_tokens: int | None, max_num_seqs: int | None,
         cpu_offload_gb: float, gpus: int | None, disable_radix_cache: bool, as_json: bool) -> None:
    """Estimated decode speed at --batch and time to first token for --prompt (first-order rooflines); with
    --concurrency or --rate, what a serving benchmark prints under that load (scheduler simulation)."""
    from kvplan import perf as estimates
    from kvplan.errors import InputError

    if concurrency is not None or rate is not None:  # the workload checks its lengths, static_estimate its own
        from kvplan import batching

        work = batching.workload(prompt, output, num_prompts, concurrency, rate, random_range_ratio, bench, engine)
        _perf_load(model, gpu, tp, dtype, quant, kv_dtype, pp, dp_attention, expert_parallel, work, engine,
                   engine_version, util, max_model_len, max_num_batched_tokens, max_num_seqs, cpu_offload_gb, gpus,
                   disable_radix_cache, as_json)
        return
    if gpus is not None:
        raise InputError("--gpus applies under load (--concurrency or --rate): the static estimate is one replica's")
    if random_range_ratio is not None or bench is not None or disable_radix_cache:
        raise InputError("--random-range-ratio, --bench and --disable-radix-cache apply under load (--concurrency "
                         "or --rate)")
    est = estimates.static_estimate(model, gpu, tp=tp, pp=pp, dtype=dtype, quant=quant, kv_dtype=kv_dtype,
                                    dp_attention=dp_attention, expert_parallel=expert_parallel, batch=batch,
                                    prompt=prompt, context=context, cpu_offload_gb=cpu_offload_gb)
    dep, device, d, p, memory, length = est.dep, est.gpu, est.decode, est.prefill, est.memory, est.length
    data = est.to_dict()
    if as_json:
        _emit_json(data)
        return
    console = _console()
    groups = (f", {dp_attention} data-parallel attention groups" + (", expert parallel" if expert_parallel else "")
              if dp_attention > 1 else "")
    console.print(f"[bold]{dep.model.name}[/bold] on {tp * pp} x {device.alias} (TP {tp}, PP {pp}{groups}), "
                  f"weights {dep.weight_format.name}, KV {dep.kv_dtype}", soft_wrap=True)
    console.print(f"  decode, batch {batch} at {context or prompt:,} tokens: {d.step_seconds * 1000:.2f} ms per "
                  f"step = {d.tokens_per_sec_per_user:,.1f} tok/s per user, {d.tokens_per_sec_total:,.0f} tok/s in "
                  f"all ({d.bound}-bound; {d.bytes_read / 2**30:.2f} GiB read, {d.flops / 1e12:.2f} TFLOP per step)",
                  soft_wrap=True)
    console.print(f"  prefill of {prompt:,} tokens: time to first token {p.seconds:.3f} s ({p.bound}-bound)",
                  soft_wrap=True)
    if not memory["fits"]:
        why = memory["start_error"] or (f"vLLM's KV cache ({memory['kv_pool_bytes'] / 2**30:.2f} GiB per GPU) holds "
                                        f"{memory['max_batch']:,} requests of {length:,} tokens")
        console.print(f"  [red]batch {batch} at {length:,} tokens does not fit[/red]: {why}; the speeds above assume "
                      "it did", soft_wrap=True)
    for line in data["assumptions"]:
        console.print(f"  {line}", soft_wrap=True)


def parse_mm_limit(text: str | None) -> int | None:
    """--limit-mm-per-prompt as vLLM takes it: image=N[,video=M] (0.6-0.8) or a JSON object (0.9+); the images."""
    if text is None:
        return None
    from kvplan.errors import InputError

    try:
        data = json.loads(text) if text.strip().startswith("{") else dict(
            (k.strip(), v) for k, v in (part.split("=", 1) for part in text.split(",")))
        images = int(data.get("image", 1))
    except (ValueError, TypeError, AttributeError):
        raise InputError(f"--limit-mm-per-prompt {text!r}: give image=N or '{{\"image\": N}}'") from None
    if images < 0:
        raise InputError(f"--limit-mm-per-prompt: the image count must be >= 0 (got {images})")
    return images


def _perf_load(model: str, gpu: str, tp: int, dtype: str | None, quant: str | None, kv_dtype: str, pp: int,
               dp_attention: int, expert_parallel: bool, work, engine: str | None, engine_version: str | None,
               util: float | None, max_model_len: int | None, max_num_batched_tokens: int | None,
               max_num_seqs: int | None, cpu_offload_gb: float, gpus: int | None, disable_radix_cache: bool,
               as_json: bool) -> None:
    """kvplan perf under load: the engine's pool and scheduler from plan, then kvplan.batching's simulation."""
    from kvplan import batching
    from kvplan.engines import DEFAULT_ENGINE

    result = batching.load_for(model, work, gpu=gpu, tp=tp, pp=pp, dtype=dtype, quant=quant,
                               kv_dtype=kv_dtype.lower(), util=util, engine=engine or DEFAULT_ENGINE,
                               engine_version=engine_version, max_model_len=max_model_len,
                               max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                               dp_attention=dp_attention, expert_parallel=expert_parallel,
                               cpu_offload_gb=cpu_offload_gb, gpus=gpus, disable_radix_cache=disable_radix_cache)
    if as_json:
        _emit_json(result.to_dict())
        return
    from kvplan.render import load_view

    load_view(_console(), result)


@main.command()
@click.argument("kind", type=click.Choice(["concurrency", "memory", "cost"]))
@click.argument("model")
@click.option("-o", "--output-file", "out", required=True, help="FILE.png or FILE.svg")
@click.option("--gpu", "gpu", multiple=True, help="GPU types (repeat).")
@click.option("--util", type=float, multiple=True, help="Utilizations (repeat; default 0.9).")
@click.option("--tp", type=int, default=1, show_default=True, help="concurrency, memory: tensor-parallel size.")
@click.option("--seq", type=TOKENS, default=4096, show_default=True, help="memory: max_model_len.")
@click.option("--users", default="1,4,16,64,256", show_default=True, help="cost: comma-separated user counts.")
@click.option("--prompt", type=TOKENS, default=1024, show_default=True, help="cost: prompt tokens.")
@click.option("--output", type=TOKENS, default=256, show_default=True, help="cost: output tokens.")
@click.option("--allow-quant", is_flag=True, help="cost: consider fp8 and int4 weights.")
def plot(kind: str, model: str, out: str, gpu: tuple[str, ...], util: tuple[float, ...], tp: int, seq: int, users: str,
         prompt: int, output: int, allow_quant: bool) -> None:
    """Draw concurrency vs context, the memory breakdown, or cost vs users (needs kvplan[plot])."""
    from kvplan import plots
    from kvplan.errors import InputError
    from kvplan.model.load import load_model

    spec = load_model(model)
    gpus, utils = list(gpu) or ["a10g", "h100"], list(util) or [0.9]
    if kind == "concurrency":
        path = plots.plot_concurrency(spec, gpus, utils, out, tp)
    elif kind == "memory":
        path = plots.plot_memory(spec, gpus, utils, seq, out, tp)
    else:
        try:
            counts = [int(x) for x in users.split(",") if x.strip()]
        except ValueError:
            raise InputError(f"--users {users!r}: write comma-separated counts, e.g. 1,10,100") from None
        if not counts or min(counts) < 1:
            raise InputError("--users needs positive counts, e.g. 1,10,100")
        path = plots.plot_cost(spec, counts, prompt, output, list(gpu) or None, allow_quant, out)
    click.echo(f"wrote {path}")


# ----------------------------------------------------------------------------------- logs and validation
@main.command()
@click.argument("csv_file", metavar="CSV")
@click.option("--leave-one-version-out", "by_version", is_flag=True,
              help="Also score every release band on constants refitted without its rows (held out).")
@click.option("--leave-one-source-out", "by_source", is_flag=True,
              help="Also score every source (issue, PR, sweep) on constants refitted without its rows.")
@click.option("--json", "as_json", is_flag=True,
              help='{"rows", "summary", "by_band", "held_out"} (schema in the README).')
def validate(csv_file: str, by_version: bool, by_source: bool, as_json: bool) -> None:
    """Predict the figures of real engine startup logs (a CSV like benchmarks/engine_logs.csv) and report the
    errors, overall and per engine release band. Exits 0 whenever the file could be read."""
    from kvplan.errors import InputError
    from kvplan.validate import validate as run_validate

    if by_version and by_source:
        raise InputError("give --leave-one-version-out or --leave-one-source-out, not both")
    report = run_validate(csv_file, "version" if by_version else "source" if by_source else None)
    if as_json:
        _emit_json(report.to_dict())
        return
    from kvplan.render import validation_table

    validation_table(_console(), report)


@main.command()
@click.argument("logfile", metavar="LOGFILE")
@click.option("--model", help="The model, when the log does not name it (catalog name, HF id or config.json).")
@click.option("--gpu", help="The GPU, when the log does not say (vLLM rarely prints it), e.g. h100.")
@click.option("--util", type=float, help="--gpu-memory-utilization, when the log does not say.")
@click.option("--tp", type=int, help="Tensor-parallel size, when the log does not say.")
@click.option("--target-concurrency", type=int, help="Suggest changes that reach N concurrent requests.")
@click.option("--target-len", type=TOKENS, help="Suggest changes that reach a context of L tokens.")
@click.option("--json", "as_json", is_flag=True, help='{"parsed", "logged", "predicted", "suggestions"}.')
def explain(logfile: str, model: str | None, gpu: str | None, util: float | None, tp: int | None,
            target_concurrency: int | None, target_len: int | None, as_json: bool) -> None:
    """Read a vLLM or SGLang startup LOGFILE (- for stdin): kvplan's prediction beside each logged figure,
    the differences, and flag changes that reach a target."""
    from kvplan.errors import InputError
    from kvplan.explain import diagnose

    if logfile == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(logfile, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            raise InputError(f"cannot read {logfile}: {e.strerror or e}") from None
    result = diagnose(text, model=model, gpu=gpu, util=util, tp=tp, target_concurrency=target_concurrency,
                      target_len=target_len)
    if as_json:
        _emit_json(result.to_dict())
        return
    from kvplan.render import diagnosis_view

    diagnosis_view(_console(), result)


# ------------------------------------------------------------------------------------------------ web
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--allow-hub", is_flag=True, help="Let requests name Hugging Face repo ids outside the catalog.")
def serve(host: str, port: int, allow_hub: bool) -> None:
    """The web page and JSON API (needs kvplan[web]): http://HOST:PORT/, schema at /openapi.json."""
    from kvplan.errors import InputError

    try:
        from kvplan.web.app import create_app
        from kvplan.web.server import serve as run_server
    except ImportError:
        raise InputError("the web app needs FastAPI and uvicorn: pip install 'kvplan[web]'") from None
    if not 0 < port < 65536:
        raise InputError(f"--port {port} is not a TCP port (1-65535)")
    import socket

    try:  # refuse a busy port before saying "serving on"
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise InputError(f"cannot serve on {host}:{port} ({e.strerror or e}): choose another --port or --host"
                         ) from None
    click.echo(f"kvplan: serving on http://{host}:{port}/ (Hub lookups {'on' if allow_hub else 'off'})")
    run_server(create_app(allow_hub=allow_hub), host, port)


# ------------------------------------------------------------------------------------------- catalogs
@main.command()
@click.argument("filter", required=False, default="")
@click.option("--json", "as_json", is_flag=True)
def models(filter: str, as_json: bool) -> None:
    """Models in the embedded catalog (all resolve offline). FILTER matches alias or HF id."""
    from kvplan.model.catalog import models as catalog_models

    rows = [e for e in catalog_models() if filter.lower() in f"{e.alias} {e.hf_id} {' '.join(e.aliases)}".lower()]
    if as_json:
        _emit_json([e.to_dict() for e in rows])
        return
    from kvplan.render import models_table

    console = _console()
    models_table(console, rows)
    console.print(f"All {len(rows)} models above resolve offline, by alias or Hugging Face id (embedded configs). "
                  "Any other org/name[@revision] is read from the Hub (HF_TOKEN, HF_HUB_OFFLINE and HF_ENDPOINT "
                  "apply); a local config.json or model folder works too.", soft_wrap=True)


@main.command()
@click.argument("filter", required=False, default="")
@click.option("--json", "as_json", is_flag=True)
def gpus(filter: str, as_json: bool) -> None:
    """Accelerators in the embedded catalog. FILTER matches alias or name."""
    from dataclasses import asdict

    from kvplan.hardware import gpus as catalog_gpus

    rows = [g for g in catalog_gpus() if filter.lower() in f"{g.alias} {g.name}".lower()]
    if as_json:
        _emit_json([asdict(g) for g in rows])
        return
    from kvplan.render import gpus_table

    gpus_table(_console(), rows)


if __name__ == "__main__":
    main()
