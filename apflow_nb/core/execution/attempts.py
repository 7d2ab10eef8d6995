"""Attempts: one executor call under a timeout, and retries with delays and jitter.

A timeout stops the attempt through the normal cancellation path: the attempt's
``cancellation_checker()`` turns true and ``cancel()`` is awaited; after the grace period the
asyncio task is cancelled. It counts as a failure with error type ``TaskTimeout``. A failed attempt
(an exception, a ``{"status": "failed"}`` result or a timeout) is tried again while retries remain,
after ``retry_delay`` seconds (one value, or one per attempt, the last repeating) stretched by up to
``retry_jitter`` of itself; each retry is announced by a ``task_retrying`` event. Cancelling a task
that waits for its next attempt ends it at once.
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any, Callable

from apflow_nb.core.events import EventType
from apflow_nb.core.execution.cancellation import ABANDON_WAIT, ask_executor
from apflow_nb.core.execution.outcome import Outcome, cancelled, failure
from apflow_nb.core.execution.plan import TaskState
from apflow_nb.core.policy import Policy
from apflow_nb.core.types import FAILED

if TYPE_CHECKING:
    from apflow_nb.core.execution.task_manager import TaskManager

Call = Callable[[Any, "Attempt"], Any]  # (executor, attempt) -> awaitable Outcome


class Attempt:
    """One call of the executor: whether its timeout fired, and when it ended."""

    __slots__ = ("state", "number", "timed_out", "done")

    def __init__(self, state: TaskState, number: int):
        self.state = state
        self.number = number
        self.timed_out = False
        self.done = asyncio.get_running_loop().create_future()

    def checker(self) -> bool:
        """What the attempt's ``cancellation_checker`` answers: a cancel was asked or time ran out."""
        return self.state.cancel_requested or self.timed_out


async def run_attempts(manager: "TaskManager", s: TaskState, policy: Policy, make_executor: Callable[[], Any],
                       call: Call) -> Outcome:
    """Call the executor until an attempt does not fail or no retry is left; returns the last outcome."""
    number = 1
    executor = s.executor
    while True:
        outcome = await timed(manager, s, policy.timeout, executor, Attempt(s, number), call)
        s.attempts = number
        if outcome.status != FAILED or number > policy.retries or s.cancel_requested:
            return outcome
        delay = policy.delay(number) * (1 + policy.retry_jitter * random.random())
        manager.lifecycle.emit(EventType.TASK_RETRYING, s.id, s.run.root_id, s.status, s.progress,
                               {"attempt": number, "next_attempt": number + 1, "delay_s": round(delay, 6),
                                "error": outcome.error, "error_type": (outcome.result or {}).get("error_type")},
                               s.name, s.run.writer)
        if await _wait_or_cancel(s, delay):
            return cancelled(f"cancelled while waiting to retry (after attempt {number})")
        number += 1
        executor = make_executor()


async def _wait_or_cancel(s: TaskState, delay: float) -> bool:
    """Wait ``delay`` seconds; True when the task was cancelled meanwhile (it ends at once)."""
    if s.cancel_requested:
        return True
    s.wakeup = asyncio.get_running_loop().create_future()
    try:
        await asyncio.wait({s.wakeup}, timeout=delay)
    finally:
        s.wakeup = None
    return s.cancel_requested


async def timed(manager: "TaskManager", s: TaskState, timeout: float | None, executor: Any, attempt: Attempt,
                call: Call) -> Outcome:
    """One attempt, stopped through the cancellation path when it runs longer than ``timeout`` seconds."""
    executor.cancellation_checker = attempt.checker
    handle = None
    if timeout is not None:
        handle = asyncio.get_running_loop().call_later(
            timeout, lambda: asyncio.ensure_future(_stop(manager, s, executor, attempt, timeout)))
    try:
        outcome = await call(executor, attempt)
    except asyncio.CancelledError:
        if not attempt.timed_out:
            raise
        outcome = _timed_out(timeout)
    finally:
        if handle is not None:
            handle.cancel()
        if not attempt.done.done():
            attempt.done.set_result(None)
    if attempt.timed_out and not s.cancel_requested:
        return _timed_out(timeout)
    return outcome


def _timed_out(timeout: float | None) -> Outcome:
    return failure(f"TaskTimeout: the attempt ran longer than its timeout ({timeout:g} s) and was stopped",
                   "TaskTimeout")


async def _stop(manager: "TaskManager", s: TaskState, executor: Any, attempt: Attempt, timeout: float) -> None:
    """The timeout fired: ask the executor to stop, then cut it off after the grace period."""
    if attempt.done.done() or s.cancel_requested:
        return
    attempt.timed_out = True
    if s.context is not None:
        s.context.cancel_requested.set()
    grace = manager.cancel_grace_period
    deadline = time.monotonic() + grace
    await ask_executor(manager, s, executor, grace)
    await asyncio.wait({attempt.done}, timeout=max(0.0, deadline - time.monotonic()))
    if attempt.done.done() or s.aio_task is None:
        return
    s.aio_task.cancel()
    await asyncio.wait({attempt.done}, timeout=ABANDON_WAIT)
    if not attempt.done.done():
        manager.lifecycle.finalize(s, _timed_out(timeout))
        manager.lifecycle.warn(s.run, s.id, f"executor of task {s.key!r} ignored cancellation after its "
                                            f"{timeout:g} s timeout and was abandoned", kind="abandoned")
