"""function_executor: turn a plain (async) Python function into an executor.

The function's signature becomes the input schema (a pydantic model: annotations are checked,
defaults filled). Parameters named ``task_id``, ``event_queue`` or ``cancellation_checker`` are
not inputs: they receive the TaskManager's values, so a function can stream progress and stop
when cancelled. A dict return value is the result; anything else becomes ``{"result": value}``.
"""
from __future__ import annotations

import asyncio
import inspect
import typing
from typing import Any, Callable

from apflow_nb.core.base.base_task import BaseTask

RUNTIME_PARAMS = ("task_id", "event_queue", "cancellation_checker")


def _input_model(fn: Callable[..., Any], model_name: str) -> tuple[type, bool, tuple[str, ...]]:
    from pydantic import ConfigDict, create_model

    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    accepts_extra = False
    runtime: list[str] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            accepts_extra = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        if p.name in RUNTIME_PARAMS:
            runtime.append(p.name)
            continue
        annotation = hints.get(p.name, Any)
        default = p.default if p.default is not p.empty else ...
        fields[p.name] = (annotation, default)
    config = ConfigDict(arbitrary_types_allowed=True, extra="allow" if accepts_extra else "ignore")
    return create_model(model_name, __config__=config, **fields), accepts_extra, tuple(runtime)


def function_executor(fn: Callable[..., Any], *, executor_id: str | None = None, name: str | None = None,
                      description: str | None = None, thread: bool = False) -> type[BaseTask]:
    """An executor class that calls ``fn(**inputs)``; register it with ``executor_register``.

    ``executor_id`` defaults to the function's name. A sync function runs on the event loop
    (fast, keeps output in order); ``thread=True`` runs it in a worker thread instead, so a
    blocking call does not freeze live views.
    """
    if not callable(fn):
        raise TypeError(f"function_executor expects a function, got {fn!r}")
    fn_name = getattr(fn, "__name__", "function")
    the_id = executor_id or fn_name
    model, accepts_extra, runtime = _input_model(fn, f"{fn_name}_inputs")
    is_async = inspect.iscoroutinefunction(fn)
    field_names = tuple(model.model_fields)
    doc = (inspect.getdoc(fn) or "").split("\n")[0]

    async def execute(self: BaseTask, inputs: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(inputs) if accepts_extra else {k: inputs[k] for k in field_names if k in inputs}
        for param in runtime:
            kwargs[param] = getattr(self, param, None)
        if is_async:
            out = await fn(**kwargs)
        elif thread:
            out = await asyncio.to_thread(fn, **kwargs)
        else:
            out = fn(**kwargs)
            if inspect.isawaitable(out):
                out = await out
        return out if isinstance(out, dict) else {"result": out}

    attrs = {
        "id": the_id,
        "name": name or fn_name,
        "description": description if description is not None else doc,
        "inputs_schema": model,
        "execute": execute,
        "function": staticmethod(fn),
        "__module__": getattr(fn, "__module__", __name__),
        "__doc__": f"Executor {the_id!r} calling {fn_name}().",
    }
    cls = type(f"FunctionExecutor_{fn_name}", (BaseTask,), attrs)
    return cls  # type: ignore[return-value]
