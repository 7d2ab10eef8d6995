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
import time
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


def as_runner(runner: Any) -> Any:
    """None (or a LocalRunner) means "on this loop"; anything else must be a Runner.

    The core knows no engine by name: wrap a Dask client with
    ``apflow_nb.distributed.DaskRunner.from_client(client)`` (``apflow_nb.run`` does it for you).
    """
    if runner is None or isinstance(runner, LocalRunner):
        return None
    if not isinstance(runner, Runner) or not inspect.iscoroutinefunction(getattr(type(runner), "run", None)):
        raise TypeError(f"runner must be a Runner (an object with `async run(executor, inputs, context)`), "
                        f"got {type(runner).__name__}. For a Dask client use "
                        f"apflow_nb.distributed.DaskRunner.from_client(client).")
    return runner


BLOCK_THRESHOLD = 0.2  # seconds an executor may hold the loop before it is reported


class BlockWatch:
    """Awaits an executor's coroutine step by step, reporting steps that held the loop too long."""

    __slots__ = ("coro", "report")

    def __init__(self, coro: Any, report: Callable[[float], None]):
        self.coro = coro
        self.report = report

    def __await__(self):  # type: ignore[no-untyped-def]
        coro, report, clock = self.coro, self.report, time.perf_counter
        send, exc = None, None
        while True:
            started = clock()
            try:
                yielded = coro.throw(exc) if exc is not None else coro.send(send)
            except StopIteration as stop:
                if clock() - started > BLOCK_THRESHOLD:
                    report(clock() - started)
                return stop.value
            if clock() - started > BLOCK_THRESHOLD:
                report(clock() - started)
            try:
                send, exc = (yield yielded), None
            except BaseException as error:  # noqa: BLE001 - handed to the coroutine, as await does
                send, exc = None, error


class _Resumed:
    """Awaits a coroutine that was already stepped once outside any asyncio Task."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any):
        self.coro = coro
        self.first = first

    def __await__(self):  # type: ignore[no-untyped-def]
        coro, yielded = self.coro, self.first
        while True:
            try:
                sent = yield yielded
            except BaseException as error:  # noqa: BLE001 - handed to the coroutine, as await does
                try:
                    yielded = coro.throw(error)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def resume(coro: Any, first: Any) -> Any:
    """Run the rest of ``coro`` (stepped once already; ``first`` is what it yielded) as an asyncio Task's body."""
    return await _Resumed(coro, first)
