"""Caches tied to the life of the value they derive from.

`derived(fn)` caches `fn(owner, *args)` in a weak map keyed by `owner` (a Deployment, a ModelSpec: compared
and hashed by identity): the results go when the owner goes, so a search shares figures across the GPUs it
tries, and a long-running server holds nothing past the requests that made it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

F = TypeVar("F", bound=Callable[..., Any])


def derived(fn: F) -> F:
    store: WeakKeyDictionary[Any, dict[tuple, Any]] = WeakKeyDictionary()

    @wraps(fn)
    def cached(owner: Any, *args: Any, **kwargs: Any) -> Any:
        results = store.get(owner)
        if results is None:
            results = store[owner] = {}
        key = (args, tuple(kwargs.items())) if kwargs else args
        if key not in results:
            results[key] = fn(owner, *args, **kwargs)
        return results[key]

    cached.cache_store = store  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]
