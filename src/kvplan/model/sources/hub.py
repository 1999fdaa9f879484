"""Models on the Hugging Face Hub by repo id: `org/name`, `org/name@revision`, `org/name:file.gguf`.

config.json and the quantization side files (`quantize_config.json`, `hf_quant_config.json`) come through
`huggingface_hub.hf_hub_download`, so its cache, `HF_TOKEN`, `HF_HUB_OFFLINE` and `HF_ENDPOINT` apply (read
at call time). The weights are never downloaded: the safetensors headers are read with HTTP range requests
(the index first for sharded checkpoints) and their summary is cached next to the HF cache, per commit. A
repo without config.json but with a GGUF file is read from the GGUF header instead. Every failure a user
can meet becomes one line saying what to do.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kvplan.errors import InputError
from kvplan.model.sources.checkpoint import StoredTensor, header_length, parse_header

REPO_RE = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+?))?(?::(?P<file>[^:@]+\.gguf))?$")
SIDE_FILES = ("quantize_config.json", "hf_quant_config.json")
GGUF_CHUNK = 1 << 20
GGUF_LIMIT = 256 << 20


def is_repo_id(text: str) -> bool:
    """Whether text names a Hub repository by the Hub's own rules (each part at most 96 characters of
    letters, digits, '_', '-', '.', with no '--' or '..' and no '-' or '.' at either end)."""
    match = REPO_RE.match(text)
    if not match or text.startswith((".", "/", "~")):
        return False
    return all(len(part) <= 96 and "--" not in part and ".." not in part and not part.startswith(("-", "."))
               and not part.endswith(("-", ".")) for part in match["repo"].split("/"))


@dataclass(frozen=True)
class HubModel:
    repo: str
    revision: str  # the commit the files came from
    config: dict[str, Any]
    side: dict[str, dict[str, Any]]
    tensors: list[StoredTensor] | None  # None: no safetensors headers available
    source: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Env:
    endpoint: str
    token: str | None
    offline: bool
    timeout: float
    cache_dir: str | None


def _env() -> _Env:
    return _Env(
        endpoint=(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/"),
        token=os.environ.get("HF_TOKEN") or None,
        offline=os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"),
        timeout=float(os.environ.get("KVPLAN_HUB_TIMEOUT", "10")),
        cache_dir=os.environ.get("HF_HUB_CACHE") or (
            str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None),
    )


def _error(e: Exception, repo: str, revision: str | None, env: _Env) -> InputError:
    """One actionable line for each failure huggingface_hub reports."""
    from huggingface_hub import errors

    rev = f"@{revision}" if revision else ""
    status = getattr(getattr(e, "response", None), "status_code", None)
    if isinstance(e, errors.GatedRepoError) or status in (401, 403):
        return InputError(f"{repo} is gated or private (HTTP {status or 401}): set HF_TOKEN to a token of an account "
                          "that accepted the model's license on huggingface.co")
    if isinstance(e, errors.RevisionNotFoundError):
        return InputError(f"revision {revision!r} of {repo} not found (HTTP 404): check the branch, tag or commit")
    if isinstance(e, errors.RepositoryNotFoundError) or status == 404:
        return InputError(f"{repo}{rev} not found on {env.endpoint} (HTTP 404): check the repo id "
                          "(and set HF_TOKEN if it is private)")
    if isinstance(e, errors.LocalEntryNotFoundError):
        if env.offline:
            return InputError(f"HF_HUB_OFFLINE is set and {repo}{rev} is not in the local cache: run once with the "
                              "network, or pass a local config.json or model folder")
        return InputError(f"cannot reach {env.endpoint} for {repo}{rev} ({e.__class__.__name__}): check the network, "
                          "or pass a local config.json or model folder")
    name = type(e).__name__
    if "Timeout" in name or "timeout" in str(e).lower():
        return InputError(f"{env.endpoint} did not answer within {env.timeout:g} s for {repo}{rev}: retry, set "
                          "KVPLAN_HUB_TIMEOUT, or pass a local config.json")
    if "Connect" in name or "Network" in name:
        return InputError(f"cannot reach {env.endpoint} for {repo}{rev} ({name}): check the network, or pass a "
                          "local config.json or model folder")
    return InputError(f"the Hub refused {repo}{rev} ({name}: {str(e).splitlines()[0][:200]})")


def _download(repo: str, filename: str, revision: str | None, env: _Env) -> Path | None:
    """A small file through the HF cache; None when the repo has no such file."""
    from huggingface_hub import errors, hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, revision=revision, endpoint=env.endpoint, token=env.token,
                                    local_files_only=env.offline, etag_timeout=env.timeout,
                                    cache_dir=env.cache_dir))
    except errors.LocalEntryNotFoundError as e:  # a subclass of EntryNotFoundError: not cached / unreachable
        if env.offline and filename != "config.json":
            return None  # side files are optional: absent from the cache means absent here
        raise _error(e, repo, revision, env) from None
    except errors.EntryNotFoundError:
        return None
    except Exception as e:
        raise _error(e, repo, revision, env) from None


def _get(url: str, repo: str, revision: str | None, env: _Env, headers: dict[str, str] | None = None):
    """A GET with the user's token; transport failures become one line."""
    from huggingface_hub.utils import build_hf_headers, get_session

    try:
        return get_session().get(url, headers={**build_hf_headers(token=env.token), **(headers or {})},
                                 timeout=env.timeout, follow_redirects=True)
    except Exception as e:
        raise _error(e, repo, revision, env) from None


def _range(repo: str, filename: str, revision: str, start: int, end: int, env: _Env) -> bytes | None:
    """Bytes [start, end] of a repo file by an HTTP range request; None when the file does not exist."""
    from huggingface_hub import hf_hub_url

    url = hf_hub_url(repo, filename, revision=revision, endpoint=env.endpoint)
    response = _get(url, repo, revision, env, {"Range": f"bytes={start}-{end}"})
    if response.status_code == 404 and response.headers.get("X-Error-Code") in (None, "EntryNotFound"):
        return None
    if response.status_code >= 400:
        _raise(response, repo, revision, env)
    return response.content


def _raise(response, repo: str, revision: str | None, env: _Env) -> None:
    from huggingface_hub.utils import hf_raise_for_status

    try:
        hf_raise_for_status(response)
    except Exception as e:
        raise _error(e, repo, revision, env) from None
    raise InputError(f"the Hub answered HTTP {response.status_code} for {repo}")


def _cache_path(repo: str, commit: str) -> Path:
    base = Path(os.environ.get("KVPLAN_CACHE") or Path.home() / ".cache" / "kvplan")
    return base / "safetensors" / f"{repo.replace('/', '--')}@{commit}.json"


def _safetensors(repo: str, commit: str, env: _Env) -> list[StoredTensor] | None:
    """Every tensor of the repo's safetensors, from headers only (cached per commit)."""
    cache = _cache_path(repo, commit)
    if cache.is_file():
        return [StoredTensor(*t) for t in json.loads(cache.read_text(encoding="utf-8"))]
    if env.offline:
        return None
    index = _download(repo, "model.safetensors.index.json", commit, env)
    if index is not None:
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{repo}: model.safetensors.index.json has no valid weight_map") from None
    else:
        shards = ["model.safetensors"]
    tensors: list[StoredTensor] = []
    for shard in shards:
        first = _range(repo, shard, commit, 0, 7, env)
        if first is None:
            if index is None:
                return None  # neither an index nor a single file: not a safetensors repo
            raise InputError(f"{repo}: shard {shard} named by the index is missing")
        n = header_length(first)
        raw = _range(repo, shard, commit, 8, 8 + n - 1, env) or b""
        tensors.extend(parse_header(raw, f"{repo}/{shard}"))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([[t.name, t.dtype, t.numel, t.nbytes] for t in tensors]), encoding="utf-8")
    return tensors


_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


def _pick_gguf(repo: str, revision: str | None, env: _Env, wanted: str | None) -> list[str]:
    """The GGUF file(s) of one model, from the Hub's tree listing (GET /api/models/{repo}/tree/{revision}):
    the named file or the repo's only model, with every shard of a split model."""
    if env.offline:
        raise InputError(f"{repo} has no config.json in the cache and HF_HUB_OFFLINE is set: pass a local path")
    response = _get(f"{env.endpoint}/api/models/{repo}/tree/{revision or 'main'}?recursive=true", repo, revision,
                    env)
    if response.status_code >= 400:
        _raise(response, repo, revision, env)
    try:
        files = [f["path"] for f in response.json() if f.get("type") == "file"]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise InputError(f"the Hub's file list of {repo} is not the expected JSON") from None
    models: dict[str, list[str]] = {}  # one entry per model: a single file, or a split model's shards
    for f in sorted(f for f in files if f.endswith(".gguf")):
        m = _SPLIT.match(f)
        models.setdefault(m.group("stem") if m else f, []).append(f)
    if not models:
        raise InputError(f"{repo} has neither a config.json nor a .gguf file: kvplan cannot read its architecture")
    if wanted:
        m = _SPLIT.match(wanted)
        key = m.group("stem") if m else wanted
        if key not in models:
            raise InputError(f"{repo} has no {wanted}: it holds {', '.join(sorted(models)[:6])}")
        return models[key]
    if len(models) > 1:
        names = [v[0] for v in models.values()]
        raise InputError(f"{repo} holds {len(models)} GGUF models ({', '.join(names[:4])}...): name one, "
                         f"e.g. {repo}:{names[0]}")
    return next(iter(models.values()))


def _gguf_header(repo: str, filename: str, revision: str, env: _Env):
    """One GGUF file's header, read by growing range requests."""
    from kvplan.model.sources import gguf

    size = GGUF_CHUNK
    while True:
        data = _range(repo, filename, revision, 0, size - 1, env)
        if data is None:
            raise InputError(f"{repo} has no {filename}")
        try:
            return gguf.parse_header(data)
        except gguf.NeedMoreBytes as more:
            if len(data) < size or size >= GGUF_LIMIT:
                raise InputError(f"{repo}/{filename}: the GGUF header is truncated or larger than "
                                 f"{GGUF_LIMIT >> 20} MiB") from None
            size = min(GGUF_LIMIT, max(size * 2, more.needed))


def _gguf(repo: str, revision: str | None, filename: str | None, env: _Env) -> tuple[dict, str, int]:
    """(config, file, stored bytes) from a GGUF model's header(s); a split model's shards are merged."""
    files = _pick_gguf(repo, revision, env, filename)
    from kvplan.model.sources import gguf, gguf_arch

    headers = [_gguf_header(repo, f, revision or "main", env) for f in files]
    header = gguf.merge_shards(headers) if len(headers) > 1 else headers[0]
    name = files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} shards)"
    return gguf_arch.config_from_gguf(header), name, header.total_bytes


def _probe(repo: str, revision: str | None, env: _Env) -> str | None:
    """None when the endpoint answers at all (any HTTP status); else why not. One try, no retries: the
    huggingface_hub client retries a refused connection for ~25 s and prints each retry."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import get_session

    url = hf_hub_url(repo, "config.json", revision=revision, endpoint=env.endpoint)
    try:
        get_session().head(url, timeout=env.timeout)
    except Exception as e:
        timeout = "Timeout" in type(e).__name__ or "timed out" in str(e).lower()
        return f"no answer within {env.timeout:g} s" if timeout else type(e).__name__
    return None


def fetch(text: str) -> HubModel:
    m = REPO_RE.match(text)
    if not m:
        raise InputError(f"{text!r} is not a Hugging Face repo id like org/name or org/name@revision")
    repo, revision, filename = m.group("repo"), m.group("rev"), m.group("file")
    env = _env()
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # its retry chatter is not one line
    unreachable = None if env.offline else _probe(repo, revision, env)
    if unreachable:  # use a cached copy if there is one, as huggingface_hub itself would
        env = replace(env, offline=True)
        try:
            found = _fetch(repo, revision, filename, env)
        except InputError:
            raise InputError(f"cannot reach {env.endpoint} for {repo} ({unreachable}) and it is not in the "
                             "local cache: check the network, or pass a local config.json or model folder") from None
        return replace(found, notes=(*found.notes, f"{env.endpoint} unreachable ({unreachable}): cached copy used"))
    return _fetch(repo, revision, filename, env)


def _fetch(repo: str, revision: str | None, filename: str | None, env: _Env) -> HubModel:
    config_path = None if filename else _download(repo, "config.json", revision, env)
    if config_path is None:
        config, gguf_file, stored = _gguf(repo, revision, filename, env)
        return HubModel(repo, revision or "main", config, {}, [StoredTensor(gguf_file, "GGUF", 0, stored)],
                        f"GGUF header of {repo}/{gguf_file}",
                        (f"architecture and sizes read from the GGUF header of {gguf_file}; weights as stored",))
    commit = config_path.parent.name
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{repo}: config.json is not valid JSON ({e.msg})") from None
    side = {}
    for name in SIDE_FILES:
        path = _download(repo, name, commit, env)
        if path is not None:
            side[name.removesuffix(".json")] = json.loads(path.read_text(encoding="utf-8"))
    tensors = _safetensors(repo, commit, env)
    notes = () if tensors is not None else (
        "no safetensors headers (offline and not cached, or not a safetensors repo): weights from the config",)
    return HubModel(repo, commit, config, side, tensors, f"Hugging Face Hub {repo}@{commit[:12]}", notes)
