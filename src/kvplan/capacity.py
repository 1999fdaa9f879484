"""Capacity: KV bytes for a workload, concurrent requests at a length, longest context at a batch, fit verdict.

All figures are per GPU and per replica; data-parallel replicas multiply concurrency. A request's bytes on
a GPU come from the deployment (per layer: tokens held x bytes per token + constant state), so sliding
windows, Mamba state and MLA are counted as the layers keep them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvplan.budget import Budget
from kvplan.deployment import Deployment

# Longest context searched when memory is the only limit: 2^40 tokens.
SEARCH_LIMIT = 1 << 40


@dataclass(frozen=True)
class Capacity:
    seq: int
    batch: int
    replicas: int
    request_bytes: int  # one request of `seq` tokens, per GPU (fullest stage)
    kv_cache_bytes: int  # `batch` requests of `seq` tokens spread over the replicas, per GPU (fullest stage)
    kv_pool_bytes: int  # per GPU, on the stage that limits capacity
    max_concurrent_requests: int  # at `seq`, all replicas
    max_seq_len: int | None  # at `batch`; None: neither memory nor the model limits it
    max_seq_len_limited_by: str  # "memory", "model context", "nothing"
    max_seq_len_memory: int | None  # at `batch`, by memory alone (None: memory never limits it)
    max_tokens: int | None  # tokens the pool holds for one request (None: memory never limits)
    fits: bool
    shortfall_bytes: int  # > 0: bytes per GPU missing for the workload (or for the weights)


def per_replica(batch: int, replicas: int) -> int:
    return -(-batch // replicas)


def max_concurrent(dep: Deployment, pools: list[int], seq: int) -> int:
    """Requests of `seq` tokens that fit on every stage of one replica (stage s has `pools[s]` bytes)."""
    if any(pool <= 0 for pool in pools):
        return 0
    counts = [pool // need for pool, need in zip(pools, dep.stage_request_bytes(seq), strict=True) if need > 0]
    return int(min(counts)) if counts else 0


def max_seq_len(dep: Deployment, pools: list[int], batch: int) -> int | None:
    """Largest L with batch x request_bytes(L) <= pool on every stage; None when no L is too long."""
    def fits(seq: int) -> bool:
        return all(batch * need <= pool for pool, need in zip(pools, dep.stage_request_bytes(seq), strict=True))

    longest = largest(fits)
    return None if longest == SEARCH_LIMIT else longest


def capacity(dep: Deployment, budgets: list[Budget], seq: int, batch: int, replicas: int = 1,
             model_context: int | None = None) -> Capacity:
    """Capacity of a deployment whose stage s has budget `budgets[s]` on each of its GPUs."""
    pools = [b.kv_pool for b in budgets]
    needs = dep.stage_request_bytes(seq)
    local_batch = per_replica(batch, replicas)
    longest = max_seq_len(dep, pools, local_batch)
    if longest is None:
        limit, limited_by = model_context, ("model context" if model_context else "nothing")
    elif model_context and longest > model_context:
        limit, limited_by = model_context, "model context"
    else:
        limit, limited_by = longest, "memory"
    # The binding stage: fewest requests of `seq` tokens (ties: smallest pool).
    binding = min(range(len(pools)), key=lambda s: (pools[s] / needs[s] if needs[s] else float("inf"), pools[s]))
    shortfall = max(local_batch * need - pool for pool, need in zip(pools, needs, strict=True))
    return Capacity(
        seq=seq, batch=batch, replicas=replicas, request_bytes=round(max(needs)),
        kv_cache_bytes=round(local_batch * max(needs)), kv_pool_bytes=pools[binding],
        max_concurrent_requests=max_concurrent(dep, pools, seq) * replicas, max_seq_len=limit,
        max_seq_len_limited_by=limited_by, max_seq_len_memory=longest, max_tokens=max_seq_len(dep, pools, 1),
        fits=all(b.weights_fit for b in budgets) and shortfall <= 0, shortfall_bytes=max(0, round(shortfall)),
    )


def largest(fits: Callable[[int], bool], limit: int = SEARCH_LIMIT) -> int:
    """The largest n in [0, limit] with fits(n), for a predicate that holds up to some n and fails after."""
    if not fits(1):
        return 0
    if fits(limit):
        return limit
    lo, hi = 1, limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def token_capacity(tokens: int, cells: Sequence[int], budgets: Sequence[Budget], seq: int, batch: int,
                   replicas: int, context: int, max_requests: int | None, block: int = 1,
                   context_label: str = "model context") -> Capacity:
    """Capacity of a token pool of `tokens` slots (each `cells[s]` bytes on stage s): a request of L tokens
    takes ceil(L / block) x block slots; at most `max_requests` run at once per replica."""
    local = per_replica(batch, replicas)

    def slots(length: int) -> int:
        return -(-length // block) * block

    per_request = slots(seq)
    binding = min(range(len(cells)), key=lambda s: (max(0, budgets[s].kv_pool) // cells[s], budgets[s].kv_pool))
    concurrent = tokens // per_request if per_request else 0
    if max_requests is not None:
        concurrent = min(concurrent, max_requests)
    memory = largest(lambda length: local * slots(length) <= tokens) if tokens else 0
    longest = min(memory, context)
    need = local * per_request * max(cells)
    pool = budgets[binding].kv_pool
    ok = all(b.kv_pool >= 0 for b in budgets) and local * per_request <= tokens and seq <= context
    return Capacity(
        seq=seq, batch=batch, replicas=replicas, request_bytes=per_request * max(cells), kv_cache_bytes=need,
        kv_pool_bytes=pool, max_concurrent_requests=concurrent * replicas, max_seq_len=longest,
        max_seq_len_limited_by=context_label if longest == context and memory > context else "memory",
        max_seq_len_memory=memory, max_tokens=tokens, fits=ok,
        shortfall_bytes=0 if ok else max(0, need - max(pool, 0)),
    )
