"""`kvplan serve`: a JSON API and an interactive page over the same library calls as the CLI.

Responses are the CLI's `--json` output. Request bodies use the CLI's option names in snake_case; a pasted
config goes in "config" as an object. Safety: requests never name server-side files (local model paths are
refused in every request), Hub lookups happen only when the app is made with allow_hub, bodies are size-limited
(413), and invalid input answers 422 with one line a person can act on.
"""

from __future__ import annotations

import inspect
import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from kvplan.engines import DEFAULT_ENGINE, canonical_name, engine_names, engines, fit_engines
from kvplan.errors import InputError, KvplanError
from kvplan.model.load import model_sources

MB = 1_000_000
CONFIG_LIMIT = 1 * MB  # bytes of a request body holding a config (every endpoint but explain / validate)
TEXT_LIMIT = 5 * MB  # bytes of a request body holding a startup log or a CSV
SLACK = 64 * 1024  # the other fields of such a body
TEXT_PATHS = ("/api/explain", "/api/validate")
CACHE_ENTRIES = 512  # answers kept
CACHE_BYTES = 64 * MB  # ... and their bytes at most (answers larger than a quarter of it are not kept)
FIT_TOP = 200  # fit candidates an answer carries at most (the ranking is best first)
INLINE_SCENARIOS = 8  # plans of a catalog model over at most this many GPU x utilization scenarios run inline
CACHE_KEY_LIMIT = 64 * 1024  # bodies larger than this (pasted logs, CSVs, big configs) are not kept
# the page's assets, a fixed list (no path from a request reaches the file system); the chart library is vendored
# with its licence (Chart.js 4, MIT: vendor/chartjs/LICENSE.md), so the page needs no network
STATIC = ("index.html", "app.js", "app.css", "vendor/chartjs/chart.umd.min.js", "vendor/chartjs/LICENSE.md")
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
                 "css": "text/css; charset=utf-8", "md": "text/plain; charset=utf-8"}
YAML = "application/yaml; charset=utf-8"  # kvplan fit --emit k8s's manifest (RFC 9512)
PAGE_HEADER = "x-kvplan-page"  # the page's requests carry it: their errors name the page's fields, not CLI flags
# kvplan's CLI flags as the page names their fields (errors from the library name the flags)
PAGE_FIELDS = {
    "--gpu": "GPUs to compare", "--gpu-memory": "custom GPU memory", "--gpus": "GPUs in all",
    "--tp": "GPUs per replica (TP)", "--pp": "pipeline stages (PP)", "--util": "memory utilization",
    "--engine": "engine", "--engine-version": "engine version", "--dtype": "weights dtype",
    "--quant": "quantize weights", "--kv-dtype": "KV dtype", "--seq": "tokens per request",
    "--batch": "concurrent users", "--users": "concurrent users", "--reserve": "reserve per GPU",
    "--kv-memory": "KV pool per GPU", "--max-model-len": "max model length", "--max-num-seqs": "max running requests",
    "--max-num-batched-tokens": "max batched tokens", "--block-size": "KV block size",
    "--entry-point": "entry point", "--dp-attention": "data-parallel attention groups",
    "--expert-parallel": "expert parallel", "--enable-lora": "LoRA slots", "--max-loras": "LoRA slots",
    "--max-lora-rank": "LoRA max rank", "--lora-dtype": "LoRA dtype", "--cpu-offload-gb": "CPU offload GiB",
    "--swap-space": "swap space GiB", "--kv-offloading-size": "KV offloading GiB",
    "--kv-offloading-backend": "KV offloading backend", "--limit-mm-per-prompt": "images per prompt",
    "--enable-extensible-kv-cache": "extensible KV cache", "--no-enable-extensible-kv-cache": "extensible KV cache",
    "--allow-cpu-offload": "GiB of weights per GPU in CPU memory",
    "--shared-prefix": "shared prefix tokens", "--speculative-method": "speculative decoding",
    "--num-speculative-tokens": "speculative tokens", "--draft-model": "draft model",
    "--speculative-config": "speculative config JSON", "--max-gpus": "max GPUs per replica",
    "--rank-by": "rank by", "--price": "price overrides", "--min-tokens-per-sec": "min tok/s per user",
    "--max-ttft": "max TTFT", "--load-stat": "judge targets at load by", "--prompt": "tokens per request",
    "--output": "output tokens per request", "--num-prompts": "requests in the run", "--rate": "arrival rate",
    "--concurrency": "concurrent users", "--context": "tokens per request", "--layers": "layers",
    "--hidden": "d_model", "--params": "parameters",
    "--heads": "attention heads", "--kv-heads": "KV heads", "--head-dim": "head dimension", "--vocab": "vocabulary",
}
# the explain form's own fields
EXPLAIN_FIELDS = {"--model": "model the log ran", "--gpu": "GPU the log ran on", "--util": "utilization the log ran",
                  "--tp": "TP the log ran", "--target-concurrency": "target concurrency",
                  "--target-len": "target context length"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![a-z0-9-])")
EXAMPLE = re.compile(r"\be\.g\. (--[a-z][a-z0-9-]*) (?=[^\s-])")


def page_message(message: str, path: str) -> str:
    """An error as the page shows it: kvplan's flags named as the page's fields ("give --gpu (e.g. --gpu h100)"
    -> "give “GPU the log ran on” (e.g. h100)"); engine flags (--gpu-memory-utilization) and the rest unchanged."""
    fields = {**PAGE_FIELDS, **(EXPLAIN_FIELDS if path == "/api/explain" else {})}
    text = EXAMPLE.sub(lambda m: "e.g. " if m.group(1) in fields else m.group(0), message)
    return FLAG.sub(lambda m: f"“{fields[m.group(0)]}”" if m.group(0) in fields else m.group(0), text)

Positive = Field(default=None, ge=1)
B = TypeVar("B", bound=BaseModel)


def _registered(fit_only: bool) -> Any:
    """A field validator: the value must name a registered engine (one `kvplan fit` plans, with fit_only)."""
    def check(value: str) -> str:
        names = fit_engines() if fit_only else engine_names()
        if canonical_name(value) not in names:
            raise ValueError(f"unknown engine {value!r}: use one of {', '.join(names)}")
        return canonical_name(value)
    return AfterValidator(check)


EngineName = Annotated[str, _registered(False), Field(description="A registered engine (GET /api/engines).")]
FitEngineName = Annotated[str, _registered(True), Field(description="An engine kvplan fit plans.")]


class _Body(BaseModel):
    # NaN and infinity are refused here (422), before the answer cache, whose key would write them as null
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


MAX_CONFIG_DEPTH = 32  # a config.json nests a few levels (text_config / quantization_config / rope_scaling)
MAX_CONFIG_ITEMS = 200_000


def _bounded(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """A pasted config, refused (422) when nested deeper or larger than any real config.json: walked without
    recursion, before anything else reads it."""
    if config is None:
        return None
    stack, items = [(config, 1)], 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"the config is nested deeper than {MAX_CONFIG_DEPTH} levels: paste the model's "
                             "config.json")
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            items += 1
            if items > MAX_CONFIG_ITEMS:
                raise ValueError(f"the config holds more than {MAX_CONFIG_ITEMS:,} values: paste the model's "
                                 "config.json")
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return config


class ModelInput(_Body):
    model: str | None = Field(default=None, description="Catalog alias or HF id (Hub ids need --allow-hub).")
    config: Annotated[dict[str, Any] | None, AfterValidator(_bounded)] = Field(
        default=None, description="A pasted config.json, as an object (at most 32 levels deep).")

    def source(self) -> Any:
        if (self.model is None) == (self.config is None):
            raise InputError("give either \"model\" (a catalog name) or \"config\" (a config.json object)")
        return self.config if self.config is not None else self.model


class DeploymentInput(ModelInput):
    tp: int = Field(default=1, ge=1)
    dtype: Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"] | None = None
    quant: str | None = None
    kv_dtype: Literal["auto", "fp32", "fp16", "bf16", "fp8", "int8", "int4"] = "auto"


class Dims(_Body):
    """A model known by its dimensions only (kvplan plan --layers / --hidden / --params ...)."""
    layers: int = Field(ge=1, le=10_000)
    hidden: int = Field(ge=1, le=1_000_000)
    params: str = Field(max_length=32, description="Parameter count, e.g. 7B or 7e9.")
    heads: int | None = Field(default=None, ge=1, le=100_000)
    kv_heads: int | None = Field(default=None, ge=1, le=100_000)
    head_dim: int | None = Field(default=None, ge=1, le=100_000)
    vocab: int | None = Field(default=None, ge=1, le=100_000_000)


class ServingFeatures(_Body):
    """The serving features plan and fit both size (kvplan plan / fit's feature flags)."""
    shared_prefix: int = Field(default=0, ge=0, description="Tokens every request shares (prefix caching).")
    max_loras: int = Field(default=0, ge=0, le=1024, description="vLLM --enable-lora --max-loras (0: off).")
    max_lora_rank: int = Field(default=16, ge=1, le=1024)
    lora_dtype: str = Field(default="auto", max_length=16)
    images_per_prompt: int | None = Field(default=None, ge=0, le=64,
                                          description="vLLM --limit-mm-per-prompt image=N (default: V0 1, V1 999).")

    def features(self) -> dict[str, Any]:
        """As EngineSettings fields."""
        return {"shared_prefix": self.shared_prefix, "max_loras": self.max_loras, "max_lora_rank": self.max_lora_rank,
                "lora_dtype": self.lora_dtype, "images_per_prompt": self.images_per_prompt}


class PlanRequest(DeploymentInput, ServingFeatures):
    dims: Dims | None = Field(default=None, description="Explicit dimensions instead of model / config.")
    gpu: str | list[str] = Field(default_factory=list)
    gpu_memory: str | None = None
    gpus: int | None = Positive
    pp: int = Field(default=1, ge=1)
    util: float | list[float] | None = None
    seq: int | None = Positive
    batch: int = Field(default=1, ge=1)
    reserve: str = "0GiB"
    kv_memory: str | None = None
    engine: EngineName = DEFAULT_ENGINE
    engine_version: str | None = None
    max_model_len: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
        default=None, description="Tokens, or \"auto\": the largest that starts (kvplan plan --max-model-len auto).")
    max_num_batched_tokens: int | None = Positive
    max_num_seqs: int | None = Positive
    block_size: int | None = Positive
    enforce_eager: bool = False
    dp_attention: int = Field(default=1, ge=1, le=64)
    cpu_offload_gb: float = Field(default=0.0, ge=0, lt=1e6, description="vLLM --cpu-offload-gb.")
    speculative_method: str | None = Field(default=None, max_length=32,
                                           description="Speculative decoding: mtp or ngram (vLLM).")
    num_speculative_tokens: int = Field(default=0, ge=0, le=64)
    draft_model: str | None = Field(default=None, max_length=200)
    swap_space: float | None = Field(default=None, ge=0, lt=1e6, description="vLLM --swap-space (GiB per GPU).")
    kv_offloading_size: float = Field(default=0.0, ge=0, lt=1e6, description="vLLM --kv-offloading-size (GiB).")
    kv_offloading_backend: Literal["native", "lmcache"] = Field(
        default="native", description="vLLM --kv-offloading-backend: native or lmcache.")
    disable_hybrid_kv_cache_manager: bool = Field(default=False, description="vLLM --disable-hybrid-kv-cache-manager.")
    disable_radix_cache: bool = Field(default=False, description="SGLang --disable-radix-cache.")
    max_mamba_cache_size: int | None = Field(default=None, ge=1, description="SGLang --max-mamba-cache-size.")
    chunked_local_hybrid: bool | None = Field(
        default=None, description="vLLM VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE (default: the release's).")
    extensible_kv_cache: bool | None = Field(
        default=None, description="vLLM >= 0.34 --[no-]enable-extensible-kv-cache (default: on).")
    expert_parallel: bool = False
    entry_point: str = Field(default="serve", max_length=32,
                             description="vLLM: serve (`vllm serve`) or llm (the offline LLM class).")
    speculative_config: str | None = Field(default=None, max_length=4096,
                                           description="vLLM's --speculative-config JSON (instead of the three above).")
    explain: bool = False

    def source(self) -> Any:
        """The model, the config, or (as the CLI's --layers / --hidden / --params) the explicit dimensions."""
        if self.dims is None:
            return super().source()
        from kvplan.model.load import model_from_dims
        from kvplan.units import parse_count

        if self.model is not None or self.config is not None:
            raise InputError("give either MODEL or explicit dimensions (--layers/--hidden/--params), not both")
        d = self.dims
        return model_from_dims(d.layers, d.hidden, parse_count(d.params, "--params"), d.heads, d.kv_heads,
                               d.head_dim, d.vocab)


class FitRequest(ModelInput, ServingFeatures):
    users: int = Field(ge=1)
    seq: int | None = Positive
    prompt: int | None = Positive
    output: int | None = Positive
    min_tokens_per_sec: float | None = Field(default=None, gt=0)
    max_ttft: float | None = Field(default=None, gt=0)
    gpu: list[str] = Field(default_factory=list)
    max_gpus: int = Field(default=8, ge=1, le=64)
    allow_quant: bool = False
    allow_fp8_kv: bool = False
    engine: FitEngineName = DEFAULT_ENGINE
    price: list[str] = Field(default_factory=list, description='Overrides as on the CLI: ["h100=2.49"].')
    top: int = Field(default=FIT_TOP, ge=1, le=FIT_TOP,
                     description=f"Candidates returned, best first (at most {FIT_TOP}, the default).")
    rank_by: Literal["cost-per-token", "cost-per-hour", "gpus", "latency"] = "cost-per-token"
    allow_cross_node_tp: bool = False
    speculative_method: str | None = Field(default=None, max_length=32)
    num_speculative_tokens: int = Field(default=0, ge=0, le=64)
    draft_model: str | None = Field(default=None, max_length=200)
    allow_cpu_offload: float = Field(default=0.0, ge=0, lt=1e6,
                                     description="kvplan fit --allow-cpu-offload: GiB per GPU (0: not searched).")
    load_stat: Literal["median", "p99", "none"] = Field(
        default="median", description="Judge the speed targets again at the workload's load (kvplan fit --load-stat).")
    emit: Literal["k8s"] | None = Field(
        default=None, description="k8s: the best candidate's Kubernetes LeaderWorkerSet (+ Service) as YAML "
                                  "(kvplan fit --emit k8s), answered as application/yaml.")


def _rate(value: Any) -> Any:
    """An arrival rate as kvplan perf --rate takes it: requests per second above 0, or "inf" (all at once)."""
    if isinstance(value, str) and value.strip().lower() == "inf":
        return "inf"
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
        return value
    raise ValueError('give requests per second (a number above 0) or "inf" (all at once)')


class LoadRequest(DeploymentInput):
    gpu: str = Field(max_length=64, description="A catalog GPU.")
    pp: int = Field(default=1, ge=1)
    util: float | None = Field(default=None, gt=0, le=1)
    engine: EngineName = DEFAULT_ENGINE
    engine_version: str | None = None
    prompt: int = Field(default=1024, ge=1)
    output: int = Field(default=128, ge=1)
    num_prompts: int = Field(default=200, ge=1, le=5000, description="Requests in the run (at most 5,000 here).")
    random_range_ratio: float | None = Field(default=None, ge=0, le=1, description=(
        "Lengths drawn as the benchmark's random dataset draws them at this --random-range-ratio (kvplan perf "
        "--random-range-ratio); none: every request has prompt and output tokens."))
    bench: EngineName | None = Field(default=None, description=(
        "The engine whose benchmark's --random-range-ratio rule applies (default: the engine's)."))
    concurrency: int | None = Field(default=None, ge=1, description="Closed-loop clients.")
    rate: Annotated[Annotated[float, Field(gt=0)] | Literal["inf"] | None, BeforeValidator(_rate)] = Field(
        default=None, description="Poisson requests per second, or \"inf\": all at once (kvplan perf --rate inf; "
                                  "also with neither rate nor concurrency).")
    max_model_len: int | None = Positive
    max_num_batched_tokens: int | None = Positive
    max_num_seqs: int | None = Positive
    dp_attention: int = Field(default=1, ge=1, le=64)
    expert_parallel: bool = False
    gpus: int | None = Field(default=None, ge=1, description="GPUs in all: replicas sharing the load evenly.")
    cpu_offload_gb: float = Field(default=0.0, ge=0, lt=1e6, description="vLLM --cpu-offload-gb.")
    disable_radix_cache: bool = Field(default=False, description="SGLang --disable-radix-cache.")


class SpeedRequest(DeploymentInput):
    """kvplan perf without --concurrency / --rate: one replica's decode step and time to first token."""
    gpu: str = Field(max_length=64, description="A catalog GPU.")
    pp: int = Field(default=1, ge=1)
    dp_attention: int = Field(default=1, ge=1, le=64)
    expert_parallel: bool = False
    batch: int = Field(default=1, ge=1, description="Sequences decoded together.")
    prompt: int = Field(default=1024, ge=1, description="Prompt tokens (time to first token).")
    context: int | None = Field(default=None, ge=1, description="Tokens each decoding sequence holds (none: the "
                                                                "prompt).")
    cpu_offload_gb: float = Field(default=0.0, ge=0, lt=1e6, description="vLLM --cpu-offload-gb.")


class ConcurrencyRequest(ModelInput):
    gpu: list[str] = Field(default_factory=lambda: ["a10g", "h100"])
    util: list[float] | None = Field(default=None, description="None: the engine's own default on each GPU.")
    tp: int = Field(default=1, ge=1)
    engine: EngineName = DEFAULT_ENGINE
    dtype: Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"] | None = None
    kv_dtype: Literal["auto", "fp32", "fp16", "bf16", "fp8", "int8", "int4"] = "auto"
    points: int = Field(default=16, ge=2, le=64)


class ExplainRequest(_Body):
    log: str
    model: str | None = None
    gpu: str | None = None
    util: float | None = Field(default=None, gt=0, le=1)
    tp: int | None = Positive
    target_concurrency: int | None = Positive
    target_len: int | None = Positive


class ValidateRequest(_Body):
    csv: str


class Problem(BaseModel):
    detail: str = Field(description="One line: what is wrong and what to do.")


ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "the body is over its size limit"},
    422: {"model": Problem, "description": "invalid input"},
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _problems(errors: Any) -> JSONResponse:
    """A 422 naming the first few invalid fields, one clause each."""
    parts = []
    for err in list(errors)[:5]:
        if err.get("type") == "json_invalid":
            why = str(err.get("ctx", {}).get("error", "decode error"))
            parts.append("the body is nested too deeply to read: send a config of at most 32 levels"
                         if "recursion limit" in why else f"the body is not valid JSON ({why})")
            continue
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return _error(422, "; ".join(parts))


def _documented(model: type[BaseModel]) -> Callable[..., Any]:
    """An endpoint signature taking `model` as the JSON body: what the OpenAPI document describes."""
    async def endpoint(body: Any) -> Response:  # never called: the route that serves is a plain one
        raise NotImplementedError
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=model)],
        return_annotation=Response)
    return endpoint


class AnswerCache:
    """The latest answers by request key, bounded in entries and in bytes (an answer over a quarter of the
    bytes is not kept); the least recently asked go first."""

    def __init__(self, entries: int, limit: int) -> None:
        self.entries, self.limit, self.bytes = entries, limit, 0
        self._kept: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        content = self._kept.get(key)
        if content is not None:
            self._kept.move_to_end(key)
        return content

    def put(self, key: str, content: bytes) -> None:
        if len(content) > self.limit // 4 or key in self._kept:
            return
        self._kept[key] = content
        self.bytes += len(content)
        while len(self._kept) > self.entries or self.bytes > self.limit:
            self.bytes -= len(self._kept.popitem(last=False)[1])

    def __len__(self) -> int:
        return len(self._kept)


class BodyLimit:
    """ASGI middleware: reads a request body up to its path's limit and answers 413 past it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        text = scope["path"] in TEXT_PATHS
        limit = (TEXT_LIMIT if text else CONFIG_LIMIT) + SLACK
        what = "a startup log or CSV" if text else "a request (config included)"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = _error(413, f"{what} over {(limit - SLACK) // MB} MB is refused: send less")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_big(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_big(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(allow_hub: bool = False) -> FastAPI:
    app = FastAPI(title="kvplan", version=_version(),
                  description="Will this LLM fit on this GPU? The kvplan CLI's JSON, over HTTP.")
    app.add_middleware(BodyLimit)

    @app.exception_handler(KvplanError)
    async def _kvplan_error(request: Request, e: KvplanError) -> JSONResponse:
        if request.headers.get(PAGE_HEADER):
            return _error(422, page_message(str(e), request.url.path))
        return _error(422, str(e))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        return _problems(e.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 400:  # FastAPI could not parse the body (nested too deeply, bad encoding)
            return _error(422, "the body could not be read as JSON: send an object of the documented fields")
        answer = _error(e.status_code, str(e.detail))
        answer.headers.update(e.headers or {})  # 405 names the methods allowed
        return answer

    @app.exception_handler(RecursionError)
    async def _deep(_: Request, e: RecursionError) -> JSONResponse:
        return _error(422, "input nested too deeply to read")

    documented: list[APIRoute] = []

    def post(path: str, model: type[B], summary: str) -> Callable[[Callable[[B], Awaitable[Response]]], Any]:
        """A JSON POST endpoint: its body validated by pydantic straight from the bytes, then `handler(body)`.
        It is served by a plain Starlette route (FastAPI's per-request dependency machinery cost about as much as
        a plan itself under load) and documented in /openapi.json as FastAPI would document `handler(body:
        model)`."""
        def register(handler: Callable[[B], Awaitable[Response]]) -> Any:
            async def endpoint(request: Request) -> Response:
                try:
                    body = model.model_validate_json(await request.body())
                except ValidationError as e:
                    return _problems(e.errors())
                return await handler(body)

            app.router.routes.append(Route(path, endpoint, methods=["POST"]))
            documented.append(APIRoute(path, _documented(model), methods=["POST"], responses=ERRORS,
                                       summary=summary, response_class=JSONResponse))
            return handler
        return register

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                             routes=[*app.routes, *documented])
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    answers = AnswerCache(CACHE_ENTRIES, CACHE_BYTES)  # the latest answers by request: the page re-asks them

    async def run(call: Any, body: BaseModel | None = None, inline: bool = False,
                  media_type: str = "application/json") -> Response:
        """The library call with local files off and the Hub as the server was started, as JSON (a call answering
        text, such as a manifest, is sent as that text in `media_type`), in a worker thread (on the event loop
        when `inline`: a call known to be about a millisecond, which the thread hop and the GIL's hand-offs
        would double); answers to small bodies are kept and given again from the event loop (the library is
        deterministic), errors never."""
        # Python's JSON writer, not pydantic's: that one writes Infinity and NaN (real configs hold them in
        # fields such as time_step_limit) as null, so two different configs would share an answer
        key = (f"{type(body).__name__}:{json.dumps(body.model_dump(), separators=(',', ':'), default=str)}"
               if body is not None else None)
        if key is not None and len(key) > CACHE_KEY_LIMIT:
            key = None
        if key is not None and (kept := answers.get(key)) is not None:
            return Response(kept, media_type=media_type)

        def compute() -> bytes:
            with model_sources(local_files=False, hub_lookups=allow_hub):
                answer = call()
            return answer.encode() if isinstance(answer, str) else json.dumps(answer, separators=(",", ":")).encode()

        content = compute() if inline else await run_in_threadpool(compute)
        if key is not None:
            answers.put(key, content)
        return Response(content, media_type=media_type)

    @app.get("/api/models", summary="The embedded model catalog (kvplan models --json)")
    async def api_models() -> Response:
        from kvplan.model.catalog import models

        return await run(lambda: [e.to_dict() for e in models()])

    @app.get("/api/gpus", summary="The GPU catalog (kvplan gpus --json)")
    async def api_gpus() -> Response:
        from dataclasses import asdict

        from kvplan.hardware import gpus

        return await run(lambda: [asdict(g) for g in gpus()])

    @app.get("/api/engines", summary="The registered engines: name, label, default version, what fit plans")
    async def api_engines() -> Response:
        return await run(lambda: {"default": DEFAULT_ENGINE, "engines": [e.describe() for e in engines()]})

    @post("/api/plan", PlanRequest, "kvplan plan --json (with \"explain\": the derivation too)")
    async def api_plan(body: PlanRequest) -> Response:
        from kvplan.derivation import derivation
        from kvplan.planning import plan

        gpus = [body.gpu] if isinstance(body.gpu, str) else body.gpu
        utils = [body.util] if isinstance(body.util, float | int) else body.util

        def call() -> dict[str, Any]:
            method, tokens, draft = body.speculative_method, body.num_speculative_tokens, body.draft_model
            if body.speculative_config is not None:  # as the CLI reads --speculative-config
                from kvplan.engines.base import parse_speculative_config

                if method or tokens or draft:
                    raise InputError("give --speculative-config or --speculative-method / --num-speculative-tokens "
                                     "/ --draft-model, not both")
                method, tokens, draft = parse_speculative_config(body.speculative_config)
            result = plan(body.source(), gpu=gpus, gpu_memory=body.gpu_memory, gpus=body.gpus, tp=body.tp,
                          pp=body.pp, util=utils or None, seq=body.seq, batch=body.batch, dtype=body.dtype,
                          kv_dtype=body.kv_dtype, quant=body.quant, reserve=body.reserve,
                          kv_memory=body.kv_memory, engine=body.engine, engine_version=body.engine_version,
                          max_model_len=body.max_model_len, max_num_batched_tokens=body.max_num_batched_tokens,
                          max_num_seqs=body.max_num_seqs, block_size=body.block_size,
                          enforce_eager=body.enforce_eager, entry_point=body.entry_point,
                          dp_attention=body.dp_attention, expert_parallel=body.expert_parallel,
                          cpu_offload_gb=body.cpu_offload_gb, **body.features(),
                          speculative_method=method, num_speculative_tokens=tokens, draft_model=draft,
                          swap_space=body.swap_space, kv_offloading_size=body.kv_offloading_size,
                          kv_offloading_backend=body.kv_offloading_backend,
                          extensible_kv_cache=body.extensible_kv_cache,
                          chunked_local_hybrid=body.chunked_local_hybrid,
                          disable_hybrid_kv_cache_manager=body.disable_hybrid_kv_cache_manager,
                          disable_radix_cache=body.disable_radix_cache,
                          max_mamba_cache_size=body.max_mamba_cache_size)
            data = result.to_dict()
            if body.explain:
                data["derivation"] = derivation(result)
            return data

        # a catalog model over a few scenarios costs about a millisecond: computed on the event loop
        few = body.config is None and max(1, len(gpus)) * max(1, len(utils or [])) <= INLINE_SCENARIOS
        return await run(call, body, inline=few)

    @post("/api/inspect", DeploymentInput, "kvplan inspect --json")
    async def api_inspect(body: DeploymentInput) -> Response:
        from kvplan.deployment import Deployment
        from kvplan.inventory import inventory
        from kvplan.model.load import load_model

        return await run(lambda: inventory(Deployment(load_model(body.source()), tp=body.tp, dtype=body.dtype,
                                                quant=body.quant, kv_dtype=body.kv_dtype)).to_dict(), body)

    @post("/api/fit", FitRequest, "kvplan fit --json (with \"emit\": \"k8s\", kvplan fit --emit k8s's YAML)")
    async def api_fit(body: FitRequest) -> Response:
        from kvplan.engines.base import serve_name
        from kvplan.fit import Workload, search
        from kvplan.model.load import load_model
        from kvplan.pricing import parse_overrides

        def call() -> dict[str, Any]:
            workload = Workload.from_options(body.users, body.seq, body.prompt, body.output,
                                             body.min_tokens_per_sec, body.max_ttft)
            spec = load_model(body.source())
            name = serve_name(body.model, spec) if body.model else spec.name
            result = search(spec, workload, body.gpu or None, body.max_gpus, body.allow_quant, body.allow_fp8_kv,
                            parse_overrides(body.price), name, body.engine, body.rank_by, body.allow_cross_node_tp,
                            (body.speculative_method, body.num_speculative_tokens)
                            if body.speculative_method or body.num_speculative_tokens else None, body.load_stat,
                            body.draft_model, body.allow_cpu_offload, body.features())
            if body.emit == "k8s":  # as kvplan fit --emit k8s
                from kvplan.manifest import leader_worker_set, to_yaml

                if result.best is None:
                    raise InputError("no candidate meets every target: nothing to write a manifest for (see kvplan "
                                     "fit without --emit)")
                return to_yaml(leader_worker_set(result.best))
            return result.to_dict(top=body.top)

        return await run(call, body, media_type=YAML if body.emit else "application/json")

    @post("/api/perf", LoadRequest, "kvplan perf --concurrency / --rate --json: speed under load")
    async def api_perf(body: LoadRequest) -> Response:
        from kvplan import batching

        def call() -> dict[str, Any]:
            work = batching.workload(body.prompt, body.output, body.num_prompts, body.concurrency, body.rate,
                                     body.random_range_ratio, body.bench, body.engine)
            return batching.load_for(body.source(), work, gpu=body.gpu, tp=body.tp, pp=body.pp, dtype=body.dtype,
                                     quant=body.quant, kv_dtype=body.kv_dtype, util=body.util, engine=body.engine,
                                     engine_version=body.engine_version, max_model_len=body.max_model_len,
                                     max_num_batched_tokens=body.max_num_batched_tokens,
                                     max_num_seqs=body.max_num_seqs, dp_attention=body.dp_attention,
                                     expert_parallel=body.expert_parallel, gpus=body.gpus,
                                     cpu_offload_gb=body.cpu_offload_gb,
                                     disable_radix_cache=body.disable_radix_cache).to_dict()

        return await run(call, body)

    @post("/api/speed", SpeedRequest, "kvplan perf --json without a load: decode step and time to first token")
    async def api_speed(body: SpeedRequest) -> Response:
        from kvplan.perf import static_estimate

        return await run(lambda: static_estimate(
            body.source(), body.gpu, tp=body.tp, pp=body.pp, dtype=body.dtype, quant=body.quant,
            kv_dtype=body.kv_dtype, dp_attention=body.dp_attention, expert_parallel=body.expert_parallel,
            batch=body.batch, prompt=body.prompt, context=body.context,
            cpu_offload_gb=body.cpu_offload_gb).to_dict(), body)

    @post("/api/concurrency", ConcurrencyRequest, "Concurrency vs context length, and the article's line")
    async def api_concurrency(body: ConcurrencyRequest) -> Response:
        from kvplan.model.load import load_model
        from kvplan.plots import concurrency_series

        def call() -> dict[str, Any]:
            # no utilization given: each GPU at the fraction plan resolves for the engine (SGLang's default
            # mem_fraction_static depends on the GPU's memory and the TP), as the verdict uses it
            return concurrency_series(load_model(body.source()), body.gpu, body.util or None, body.points, body.tp,
                                      body.engine, body.dtype, body.kv_dtype)

        return await run(call, body)

    @post("/api/explain", ExplainRequest, "kvplan explain --json: a startup log in \"log\"")
    async def api_explain(body: ExplainRequest) -> Response:
        from kvplan.explain import diagnose

        return await run(lambda: diagnose(body.log, model=body.model, gpu=body.gpu, util=body.util, tp=body.tp,
                                    target_concurrency=body.target_concurrency,
                                    target_len=body.target_len).to_dict())

    @post("/api/validate", ValidateRequest, "kvplan validate --json: a CSV of logged figures (in \"csv\")")
    async def api_validate(body: ValidateRequest) -> Response:
        from kvplan.validate import validate_text

        return await run(lambda: validate_text(body.csv).to_dict())

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(_asset("index.html"))

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name:path}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC:  # a fixed list: no path from a request reaches the file system
            return _error(404, f"no asset {name!r}")
        return Response(_asset(name), media_type=CONTENT_TYPES[name.rsplit(".", 1)[1]])

    return app


def _asset(name: str) -> str:
    return (resources.files("kvplan.web") / "static" / name).read_text(encoding="utf-8")


def _version() -> str:
    from importlib.metadata import version

    return version("kvplan")
