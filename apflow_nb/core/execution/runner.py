"""Runners: where an executor's ``execute`` actually runs.

The TaskManager always orchestrates in its own process (scheduling, state, events, store). A
runner only decides where each ready task's executor runs: in this process on the event loop
(the default, :class:`LocalRunner`), or elsewhere (``apflow_nb.distributed.DaskRunner``). A runner
gets the executor (its ``task_id`` set; ``event_queue`` and ``cancellation_checker`` belong to this
process and must be replaced where it runs), the validated inputs and an ExecutionContext.
"""
from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable


@dataclass
class ExecutionContext:
    """What a runner may use for one task: ids, a way to publish executor events (call it on the
    loop's thread, or through ``loop.call_soon_threadsafe``), and the cancel signal."""

    task_id: str
    root_id: str
    executor_id: str
    publish: Callable[[dict[str, Any]], None]
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    loop: asyncio.AbstractEventLoop | None = None


@runtime_checkable
class Runner(Protocol):
    """Anything with ``async run(executor, inputs, context) -> result``."""

    async def run(self, executor: Any, inputs: dict[str, Any], context: ExecutionContext) -> Any: ...


class LocalRunner:
    """Runs executors in this process, on the event loop (what TaskManager does by default)."""

    async def run(self, executor: Any, inputs: dict[str, Any], context: ExecutionContext) -> Any:
        result = executor.execute(inputs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def check_store(self, url: str) -> None:
        """Every store works with the local runner."""
