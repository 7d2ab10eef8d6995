"""Every state change of a task, and what follows a final state.

A change updates the task's row object in memory (without marking it dirty), goes to the
write-behind buffer and is published as an Event. A final state then gives back the task's slot,
releases or ends its dependents (iteratively: a failure at the head of a 100,000-task chain is a
loop, not a recursion), ends the run when nothing is left, and hands the task to storage
extensions and post-hooks, each waited for at most ``hook_timeout`` seconds.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from apflow_nb.core.events import Event, EventType
from apflow_nb.core.gc_pause import gc_paused
from apflow_nb.core.tracebacks import format_user_traceback
from apflow_nb.core.storage.json_text import Encoded
from apflow_nb.core.storage.records import TaskRecord
from apflow_nb.core.execution.outcome import Outcome, cancelled, failure
from apflow_nb.core.execution.plan import TaskState, TreeRun
from apflow_nb.core.extensions.hooks import POST_ARGS, hook_label, invoke_hook
from apflow_nb.core.clock import utcnow
from apflow_nb.core.types import (
    CANCELLED, COMPLETED, DEPENDENCY_CANCELLED, DEPENDENCY_FAILED, FAILED, FINAL_STATUSES, IN_PROGRESS, PENDING,
    executor_id_of,
)

if TYPE_CHECKING:
    from apflow_nb.core.execution.task_manager import TaskManager

logger = logging.getLogger("apflow_nb.execution")

HIT_INSTANT = 0.002  # seconds cache hits settled in a row may share one timestamp
FINAL_EVENT = {COMPLETED: EventType.TASK_COMPLETED, FAILED: EventType.TASK_FAILED,
               CANCELLED: EventType.TASK_CANCELLED}


class ExecutorEventQueue:
    """What executors get as ``event_queue``: ``await put(dict)`` never blocks.

    ``{"type": "progress", "data": {"progress": 0.4, ...}}`` (or a top-level ``progress``) updates
    the task's stored progress and is published as ``task_progress``; anything else is published
    as an ``executor`` event with the dict as its data. Payloads that are not JSON are converted
    when written (datetimes to ISO text, bytes to a short repr), never refused.
    """

    __slots__ = ("_lifecycle", "_state")

    def __init__(self, lifecycle: "Lifecycle", state: TaskState):
        self._lifecycle = lifecycle
        self._state = state

    async def put(self, item: Any) -> None:
        """Publish ``item`` now."""
        self._lifecycle.executor_event(self._state, item)

    def put_nowait(self, item: Any) -> None:
        """Publish ``item`` now."""
        self._lifecycle.executor_event(self._state, item)

    def qsize(self) -> int:  # asyncio.Queue look-alike
        return 0


class Lifecycle:
    """State changes and their consequences for one TaskManager."""

    def __init__(self, manager: "TaskManager"):
        self.manager = manager
        self._now: Any = None  # one timestamp for every task a cascade ends (they end in the same instant)
        self._stamp: float | None = None  # the same instant in seconds, for their events
        self._hit_instant: tuple[float, datetime] | None = None  # shared by cache hits settled one after another

    # -- changes and events ----------------------------------------------------------------
    def change(self, s: TaskState, status: str, values: dict[str, Any], kind: EventType,
               data: dict[str, Any] | None, result_text: str | None = None) -> None:
        """Set ``values`` on the task's row, buffer them for the store, publish ``kind``.

        ``result_text``: the result's JSON, already encoded: the store gets it as it is.
        """
        s.status = status
        if "progress" in values:
            s.progress = values["progress"]
        apply_values(s.task, values)
        if result_text is not None:
            values["result"] = Encoded(result_text)
        s.run.writer.mark(s.id, values)
        self.emit(kind, s.id, s.run.root_id, status, s.progress, data, s.name, s.run.writer)

    def emit(self, kind: EventType, task_id: str | None, root_id: str | None, status: str | None,
             progress: float | None, data: Any = None, name: str | None = None, writer: Any = None) -> None:
        """Publish an event on the bus and append it to the store's event log (when enabled).

        ``data`` may be a callable, so costly payloads are built only when someone listens.
        """
        manager = self.manager
        listening = manager.events.wants(root_id)
        if not listening:
            if manager.event_log:  # nobody listens: the log row only, without an Event object
                (writer or manager.writer).log_row(kind._value_, task_id, root_id, name, status, progress,
                                                   self._stamp or time.time(),
                                                   data(False) if callable(data) else data or None)
            return
        if callable(data):
            data = data(True)
        event = Event(kind, task_id, root_id, status, progress, data=data or {}, name=name,
                      timestamp=self._stamp or time.time())
        if manager.event_log:
            (writer or manager.writer).log_event(event)
        manager.events.publish(event)

    def warn(self, run: TreeRun | None, task_id: str | None, message: str, **data: Any) -> None:
        """Log and publish a ``warning`` event: something was converted, dropped or abandoned."""
        logger.warning("apflow_nb: %s", message)
        self.emit(EventType.WARNING, task_id, run.root_id if run else None, None, None,
                  {"message": message, **data})

    def start(self, s: TaskState, executor_id: str, owner: str) -> None:
        """The task is running now."""
        now = utcnow()
        self._hit_instant = None  # a cache hit after this start ends after it
        self.change(s, IN_PROGRESS, {"status": IN_PROGRESS, "started_at": now, "updated_at": now, "progress": 0.0,
                                     "error": None, "result": None, "completed_at": None, "owner": owner},
                    EventType.TASK_STARTED, {"executor": executor_id})

    # -- final states ------------------------------------------------------------------------
    def finalize(self, s: TaskState, outcome: Outcome, data: dict[str, Any] | None = None) -> bool:
        """Record a final state (once; False when the task already had one) and settle what follows."""
        if s.status in FINAL_STATUSES:
            return False
        self._record_final(s, outcome, data)
        s.aio_task = None  # nothing waits for it any more; finished tasks keep no coroutine alive
        scheduler = self.manager.scheduler
        scheduler.release(s)
        if s.dependents:
            with gc_paused():
                self._cascade(s)
        else:
            self._cascade(s)
        scheduler.pump()
        return True

    def finalize_hit(self, s: TaskState, outcome: Outcome) -> bool:
        """``finalize`` for a cache hit: hits settled one after another, with nothing else starting or ending
        between them, end in the same instant (for at most HIT_INSTANT seconds): one timestamp for the store."""
        instant = self._hit_instant
        stamp = time.time()
        if instant is None or stamp - instant[0] > HIT_INSTANT:
            instant = self._hit_instant = (stamp, datetime.fromtimestamp(stamp, timezone.utc))
        before = self._stamp, self._now
        self._stamp, self._now = instant
        try:
            return self.finalize(s, outcome)
        finally:
            self._stamp, self._now = before

    def _record_final(self, s: TaskState, outcome: Outcome, data: dict[str, Any] | None) -> None:
        if s.cached_from is None:
            self._hit_instant = None  # a cache hit after this ends after it
        now = self._now or utcnow()
        status, error = outcome.status, outcome.error
        writer = s.run.writer or self.manager.writer
        if (s.cached_from is not None and not s.attempts and (outcome.text is not None or outcome.result is None)
                and writer.takes_hits):
            self._record_hit(s, outcome, now, writer)
            if s.task.inputs:
                writer.observe_keys(s.executor_id or executor_id_of(s.task), s.task.inputs, None)
            return
        values: dict[str, Any] = {"status": status, "result": outcome.result, "error": error,
                                  "completed_at": now, "updated_at": now}
        if status == COMPLETED:
            values["progress"] = 1.0
        if s.started:
            values["attempts"] = s.attempts
        if error:
            data = dict(data or (), error=error)
        if s.cached_from is not None:
            values["cached_from"] = s.cached_from
            data = dict(data or (), cached=True, cached_from=s.cached_from)
        self.change(s, status, values, FINAL_EVENT[status], data, outcome.text)
        # a cache hit's result is the stored result of a task of the same executor and store: its keys are noted
        inputs, result = s.task.inputs, outcome.result if status == COMPLETED and s.cached_from is None else None
        if inputs or result is not None:  # the key catalog (history()'s stable columns): nothing to note else
            (s.run.writer or self.manager.writer).observe_keys(s.executor_id or executor_id_of(s.task), inputs,
                                                               result)

    def _record_hit(self, s: TaskState, outcome: Outcome, now: datetime, writer: Any) -> None:
        """A cache hit's final state, as ``change`` records a completed one, but buffered as a tuple the writer
        stores set-based (a hit is the task's last change in its run)."""
        s.status, s.progress = COMPLETED, 1.0
        source = s.cached_from
        apply_values(s.task, {"status": COMPLETED, "result": outcome.result, "error": None, "completed_at": now,
                              "updated_at": now, "progress": 1.0, "attempts": s.attempts, "cached_from": source})
        manager, root_id = self.manager, s.run.root_id
        stamp = self._stamp or time.time()
        writer.record_hit(s.id, outcome.text, source, now,
                          (s.id, root_id, s.name, stamp, source) if manager.event_log else None)
        if manager.events.wants(root_id):
            manager.events.publish(Event(EventType.TASK_COMPLETED, s.id, root_id, COMPLETED, 1.0,
                                         data={"cached": True, "cached_from": source}, name=s.name, timestamp=stamp))

    def finish_unstarted(self, s: TaskState, outcome: Outcome, data: dict[str, Any] | None = None) -> None:
        """End a task that never started (an upstream task failed, or it was cancelled while waiting)."""
        if self.finalize(s, outcome, data):
            self.after_unstarted(s)

    def _cascade(self, first: TaskState) -> None:
        """Release or end the dependents of tasks that just became final, without recursion."""
        work = [first]
        scheduler = self.manager.scheduler
        if first.dependents:
            self._stamp = time.time()
            self._now = datetime.fromtimestamp(self._stamp, timezone.utc)
        try:
            self._settle(work, scheduler)
        finally:
            self._now = self._stamp = None

    def _settle(self, work: list[TaskState], scheduler: Any) -> None:
        while work:
            s = work.pop()
            run = s.run
            run.unfinished -= 1
            if s.status == COMPLETED and s.dependents:  # kept only for tasks whose results are merged
                run.results[s.id] = s.task.result
            for d, required in s.dependents:
                if d.status != PENDING:
                    continue
                if s.status != COMPLETED and required:
                    self._skip(d, s)
                    work.append(d)
                elif d.waiting > 1:
                    d.waiting -= 1
                else:
                    d.waiting = 0
                    scheduler.enqueue(d)
            if run.unfinished == 0 and run.done is not None and not run.done.done():
                run.done.set_result(None)

    def _skip(self, d: TaskState, upstream: TaskState) -> None:
        """End ``d`` because its required dependency ``upstream`` failed or was cancelled."""
        key = upstream.key
        if upstream.status == CANCELLED:
            outcome = cancelled(f"skipped: required dependency {key!r} was cancelled",
                                error_type=DEPENDENCY_CANCELLED, upstream=key)
            error_type = DEPENDENCY_CANCELLED
        else:
            outcome = failure(f"skipped: required dependency {key!r} failed", DEPENDENCY_FAILED, upstream=key)
            error_type = DEPENDENCY_FAILED
        self._record_final(d, outcome, {"error_type": error_type, "upstream": key})
        self.after_unstarted(d)

    # -- storages and post-hooks -------------------------------------------------------------
    def after_unstarted(self, s: TaskState) -> None:
        """Storages and post-hooks of a task that ended without a coroutine of its own (in the background)."""
        run = s.run
        if run.storages or run.post_hooks:
            task = asyncio.ensure_future(self.after_final(s, s.task.inputs or {}))
            run.side_tasks.add(task)
            task.add_done_callback(run.side_tasks.discard)

    async def after_final(self, s: TaskState, inputs: dict[str, Any]) -> None:
        """Hand a final task to the storage extensions, then to the post-hooks (each bounded)."""
        if s.run.storages:
            await self.save_to_storages(s)
        task = s.task
        for hook in s.run.post_hooks:
            values = {"task": task, "inputs": inputs, "result": task.result, "status": s.status,
                      "error": task.error}
            await self.bounded(s.run, f"post-hook {hook_label(hook)}", task.id,
                               lambda hook=hook, values=values: invoke_hook(hook, POST_ARGS, values))

    async def save_to_storages(self, s: TaskState) -> None:
        """``save_task`` on every registered StorageExtension (each bounded; errors reported)."""
        for storage in s.run.storages:
            await self.bounded(s.run, f"storage {getattr(storage, 'id', storage)!r}", s.task.id,
                               lambda storage=storage: storage.save_task(s.task))

    async def bounded(self, run: TreeRun, what: str, task_id: str | None, call: Callable[[], Any],
                      *, raise_errors: bool = False) -> None:
        """Run ``call()`` and await what it returns for at most ``hook_timeout`` seconds.

        An error or a hang becomes a ``hook_error`` event naming ``what`` (re-raised with
        ``raise_errors``); a coroutine that does not return in time is cancelled and abandoned.
        """
        try:
            out = call()
            if not inspect.isawaitable(out):
                return
            future = asyncio.ensure_future(out)
            done, _ = await asyncio.wait({future}, timeout=self.manager.hook_timeout)
            if not done:
                future.cancel()
                future.add_done_callback(_consume)
                raise HookTimeout(f"{what} did not return within {self.manager.hook_timeout:g} s; it was "
                                  f"cancelled and abandoned")
            future.result()
        except Exception as exc:
            if raise_errors:
                raise
            self.report_hook_error(run, what, exc, task_id)

    def report_hook_error(self, run: TreeRun, what: str, exc: BaseException, task_id: str | None) -> None:
        """A hook, storage or executor's cancel() failed or hung: log it and publish ``hook_error``."""
        logger.warning("apflow_nb: %s raised %s: %s (the task's outcome stands)", what, type(exc).__name__, exc)
        tb = "" if isinstance(exc, HookTimeout) else format_user_traceback(exc)  # the hook's frames, not ours
        self.emit(EventType.HOOK_ERROR, task_id, run.root_id, None, None,
                  {"source": what, "error": f"{type(exc).__name__}: {exc}", "traceback": tb})

    # -- what executors report ---------------------------------------------------------------
    def executor_event(self, s: TaskState, item: Any) -> None:
        """An item an executor put on its event queue."""
        if not isinstance(item, dict):
            item = {"type": "message", "data": item}
        payload = item.get("data") if isinstance(item.get("data"), dict) else {}
        if item.get("type") == "progress":
            raw = payload.get("progress", item.get("progress"))
            try:
                progress = min(1.0, max(0.0, float(raw)))
            except (TypeError, ValueError):
                progress = None
            if progress is not None and progress == progress and s.status == IN_PROGRESS:
                s.progress = progress
                apply_values(s.task, {"progress": progress})
                s.run.writer.mark(s.id, {"progress": progress})
            self.emit(EventType.TASK_PROGRESS, s.id, s.run.root_id, s.status, s.progress,
                      dict(payload) or dict(item), s.name, s.run.writer)
        else:
            self.emit(EventType.EXECUTOR, s.id, s.run.root_id, s.status, s.progress, dict(item), s.name, s.run.writer)

    def blocked(self, s: TaskState, seconds: float) -> None:
        """An executor held the event loop for ``seconds`` without yielding: say which one."""
        self.emit(EventType.EXECUTOR, s.id, s.run.root_id, s.status, s.progress,
                  {"type": "blocked", "seconds": round(seconds, 3),
                   "message": f"task {s.key!r} blocked the event loop for {seconds:.2f} s "
                              f"(time.sleep or CPU work in an async executor?); views and other tasks "
                              f"froze meanwhile"}, s.name)


def apply_values(task: Any, values: dict[str, Any]) -> None:
    """Set ``values`` on a task's record or row object without marking it dirty: the writer stores them.

    A loaded ORM row keeps its attribute values in its ``__dict__``; writing there is what
    ``set_committed_value`` does, without its per-attribute bookkeeping (the engine's hottest path).
    """
    if isinstance(task, TaskRecord):
        for key, value in values.items():
            setattr(task, key, value)
        return
    state = getattr(task, "_sa_instance_state", None)
    if state is not None and not state.expired_attributes:
        task.__dict__.update(values)
    elif state is not None:
        from sqlalchemy.orm.attributes import set_committed_value

        for key, value in values.items():
            set_committed_value(task, key, value)
    else:
        for key, value in values.items():
            setattr(task, key, value)


class HookTimeout(Exception):
    """A hook, storage extension or cancel() did not return within the manager's hook_timeout."""


def _consume(future: "asyncio.Future[Any]") -> None:
    """Retrieve an abandoned future's outcome so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
