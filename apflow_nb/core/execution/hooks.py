"""Calling user hooks: sync or async, with the arguments each kind takes."""
from __future__ import annotations

import inspect
from typing import Any, Callable

_arity_cache: dict[int, int] = {}


def positional_capacity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` accepts (a large number for ``*args``)."""
    key = id(fn)
    cached = _arity_cache.get(key)
    if cached is not None:
        return cached
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 99
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            count = 99
            break
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    _arity_cache[key] = count
    return count


async def call_hook(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` with as many of ``args`` as it accepts; await the result when it is awaitable."""
    capacity = positional_capacity(fn)
    out = fn(*args[:capacity])
    if inspect.isawaitable(out):
        out = await out
    return out


def hook_label(fn: Callable[..., Any]) -> str:
    """``module.name`` of a hook, for error messages."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
