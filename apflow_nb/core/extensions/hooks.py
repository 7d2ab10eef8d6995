"""Calling user hooks: sync or async, bound by keyword and forward compatible.

Each kind of hook has named arguments in a documented order (pre: ``task``; post: ``task, inputs,
result``; tree: ``task, status``) and keyword extras a hook may take by name (``status``, ``error``,
``executor_id``, ``key``, ...). A parameter whose name matches an argument gets that argument; the
others take the remaining arguments in order (so ``def hook(t, i, r)`` still works); ``**kwargs``
receives everything not yet passed, including extras added in later versions. How a function is
bound is worked out once per function object (held weakly, so a redefined cell's new function at
a recycled address is bound afresh).
"""
from __future__ import annotations

import inspect
import weakref
from typing import Any, Callable

Plan = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]  # (positional sources, (param, source) keywords)

_plans: "weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], Plan]]" = weakref.WeakKeyDictionary()

PRE_ARGS = ("task",)
POST_ARGS = ("task", "inputs", "result")
TREE_ARGS = ("task", "status")


def bind_plan(fn: Callable[..., Any], names: tuple[str, ...], extras: tuple[str, ...] = ()) -> Plan:
    """How to call ``fn`` with the arguments ``names`` (in order) and the keyword ``extras``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: positional, as many as given
        return names, ()
    known = set(names) | set(extras)
    consumed = {p.name for p in params if p.name in known and p.kind is not p.POSITIONAL_ONLY}
    remaining = [n for n in names if n not in consumed]
    positional: list[str] = []
    keywords: list[tuple[str, str]] = []
    by_position = True
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            source = p.name if p.name in known and p.kind is not p.POSITIONAL_ONLY else (
                remaining.pop(0) if remaining else None)
            if source is None:
                by_position = False  # nothing left for it: its default applies
            elif by_position:
                positional.append(source)
            else:
                keywords.append((p.name, source))
        elif p.kind is p.VAR_POSITIONAL:
            positional.extend(remaining)
            remaining = []
        elif p.kind is p.KEYWORD_ONLY and p.name in known:
            keywords.append((p.name, p.name))
        elif p.kind is p.VAR_KEYWORD:
            passed = {p2.name for p2 in params} | set(positional)
            keywords.extend((n, n) for n in (*names, *extras) if n not in passed)
    return tuple(positional), tuple(keywords)


def _plan_for(fn: Callable[..., Any], names: tuple[str, ...], extras: tuple[str, ...]) -> Plan:
    try:
        per_fn = _plans.get(fn)
    except TypeError:  # not weakly referenceable: worked out every time
        return bind_plan(fn, names, extras)
    if per_fn is None:
        per_fn = {}
        try:
            _plans[fn] = per_fn
        except TypeError:
            return bind_plan(fn, names, extras)
    key = names + ("|",) + extras
    plan = per_fn.get(key)
    if plan is None:
        plan = per_fn[key] = bind_plan(fn, names, extras)
    return plan


def invoke_hook(fn: Callable[..., Any], names: tuple[str, ...], values: dict[str, Any]) -> Any:
    """Call ``fn`` with ``values`` bound as described above; returns what it returns (maybe awaitable)."""
    extras = tuple(k for k in values if k not in names)
    positional, keywords = _plan_for(fn, names, extras)
    return fn(*[values[s] for s in positional], **{param: values[s] for param, s in keywords})


async def call_hook(fn: Callable[..., Any], names: tuple[str, ...], values: dict[str, Any]) -> Any:
    """:func:`invoke_hook`, awaiting the result when it is awaitable."""
    out = invoke_hook(fn, names, values)
    if inspect.isawaitable(out):
        out = await out
    return out


def hook_label(fn: Callable[..., Any]) -> str:
    """``module.name`` of a hook, for error messages."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
