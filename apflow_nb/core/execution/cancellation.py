"""Cancelling tasks and trees: the executor is asked, then given a grace period, then cut off.

For a running task: its ``cancellation_checker()`` turns true, its ``cancel()`` is awaited, and
after the grace period its asyncio task is cancelled. An executor that swallows even that is
reported and abandoned: the task is recorded cancelled, its slot is free, and nobody waits for
its coroutine again. A task that has not started ends cancelled at once (and so do its
dependents). A task of a tree another live process runs is cancelled by that process: a cancel
request in the store reaches it within a second (its keeper polls them), and it writes the
``task_cancelled`` events. A tree whose process is gone is ended as orphan recovery ends it. A
stored task that no process runs is marked cancelled in the store and the event log.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any

from apflow_nb.core.events import EventType
from apflow_nb.core.execution.lifecycle import HookTimeout, apply_values
from apflow_nb.core.execution.outcome import cancelled
from apflow_nb.core.execution.plan import TaskState, TreeRun
from apflow_nb.core.clock import utcnow
from apflow_nb.core.types import CANCELLED, FINAL_STATUSES

if TYPE_CHECKING:
    from apflow_nb.core.execution.task_manager import TaskManager

ABANDON_WAIT = 1.0  # seconds a cancelled asyncio task gets to end before it is abandoned


def _answer(s: TaskState, message: str) -> dict[str, Any]:
    return {"task_id": s.task.id, "status": s.status, "message": message}


async def cancel_state(manager: "TaskManager", s: TaskState, reason: str, grace: float) -> dict[str, Any]:
    """Cancel one task of a running tree; returns ``{"task_id", "status", "message"}``."""
    if s.status in FINAL_STATUSES:
        return _answer(s, "already finished")
    if not s.started:
        manager.lifecycle.finish_unstarted(s, cancelled(reason))
        return _answer(s, reason)
    if s.cancel_requested:  # a cancel is already under way: wait for it
        if s.aio_task is not None and not s.aio_task.done():
            await asyncio.wait({s.aio_task}, timeout=grace + ABANDON_WAIT)
        return _answer(s, reason)
    s.cancel_requested = True
    if s.context is not None:
        s.context.cancel_requested.set()
    deadline = time.monotonic() + grace
    if s.wakeup is not None and not s.wakeup.done():  # waiting to retry: it ends at once
        s.wakeup.set_result(None)
    else:
        await ask_executor(manager, s, s.executor, grace)
    aio = s.aio_task
    if aio is not None and not aio.done():
        await asyncio.wait({aio}, timeout=max(0.0, deadline - time.monotonic()))
        if not aio.done():
            aio.cancel()
            await asyncio.wait({aio}, timeout=ABANDON_WAIT)
            if not aio.done():
                _abandon(manager, s, reason, grace)
    if s.status not in FINAL_STATUSES:  # the executor returned without a final state being recorded
        manager.lifecycle.finalize(s, cancelled(reason))
    return _answer(s, reason)


async def ask_executor(manager: "TaskManager", s: TaskState, executor: Any, grace: float) -> None:
    """Await the executor's ``cancel()`` for at most the grace period."""
    cancel = getattr(executor, "cancel", None)
    if cancel is None:
        return
    try:
        out = cancel()
        if inspect.isawaitable(out):
            future = asyncio.ensure_future(out)
            done, _ = await asyncio.wait({future}, timeout=grace)
            if not done:
                future.cancel()
                raise HookTimeout(f"cancel() did not return within the grace period ({grace:g} s)")
            future.result()
    except Exception as exc:
        manager.lifecycle.report_hook_error(s.run, f"cancel() of executor {type(executor).__name__}", exc, s.id)


def _abandon(manager: "TaskManager", s: TaskState, reason: str, grace: float) -> None:
    """The executor swallowed the cancellation: record the task cancelled and stop waiting for it."""
    manager.lifecycle.finalize(s, cancelled(f"{reason}; the executor ignored cancellation and was abandoned"))
    manager.lifecycle.warn(s.run, s.task.id,
                           f"executor of task {s.key!r} ignored cancellation (it caught asyncio.CancelledError) "
                           f"and still runs after the {grace:g} s grace period and {ABANDON_WAIT:g} s more; "
                           f"it was abandoned: its slot is free and nothing waits for it",
                           kind="abandoned", task_key=s.key)


async def cancel_run(manager: "TaskManager", run: TreeRun, reason: str, grace: float) -> list[dict[str, Any]]:
    """Cancel every unfinished task of a running tree: waiting ones first, so nothing new starts."""
    states = [s for s in run.states.values() if s.status not in FINAL_STATUSES]
    for s in states:
        if not s.started:
            manager.lifecycle.finish_unstarted(s, cancelled(reason))
    running = [s for s in states if s.started and s.status not in FINAL_STATUSES]
    out = await asyncio.gather(*(cancel_state(manager, s, reason, grace) for s in running))
    return list(out) + [_answer(s, reason) for s in states if not s.started]


async def cancel_stored(manager: "TaskManager", task_id: str, reason: str) -> dict[str, Any]:
    """Mark a stored task that no run of this process owns as cancelled, in the store and the event log."""
    task = manager.task_repository.get_task(task_id)
    status = str(task.status)
    if status in FINAL_STATUSES:
        return {"task_id": task_id, "status": status, "message": "already finished"}
    now = utcnow()
    values = {"status": CANCELLED, "completed_at": now, "updated_at": now,
              "result": {"status": CANCELLED, "message": reason}}
    apply_values(task, values)
    manager.writer.mark(task_id, values)
    manager.lifecycle.emit(EventType.TASK_CANCELLED, task_id, task.root_id, CANCELLED, task.progress,
                           {"message": reason}, task.name)
    await manager.writer.drain()
    return {"task_id": task_id, "status": CANCELLED, "message": reason}


def cancel_elsewhere(manager: "TaskManager", root_id: str, task_id: str | None,
                     reason: str) -> list[dict[str, Any]] | None:
    """Cancel a tree (``task_id`` None) or one of its tasks that another process runs: ask that
    process through a cancel request, or end the tree as orphan recovery does when the process is
    gone. None when no other process holds the tree's lease (the caller cancels it in the store)."""
    from apflow_nb.core.storage import runs
    from apflow_nb.core.storage.recovery import recover_tree

    engine = manager.db.get_bind()
    held = runs.running_owner(engine, root_id)
    if held is None or held[0] == manager.owner:
        return None
    owner, gone = held
    if gone:
        ended = recover_tree(engine, manager.task_repository.model, root_id, owner)
        return [{"task_id": tid, "status": "failed", "action": "recovered",
                 "message": f"{runs.describe_owner(owner)}, which ran this tree, is gone: its unfinished tasks "
                            f"were marked failed"} for tid in ended]
    runs.request_cancel(engine, root_id, task_id, reason)
    from sqlalchemy import select  # loaded with the store, not with TaskManager

    table = manager.task_repository.model.__table__
    with engine.connect() as conn:
        status = conn.execute(select(table.c.status).where(table.c.id == (task_id or root_id))).scalar()
    return [{"task_id": task_id or root_id, "status": status, "action": "requested", "owner": owner,
             "message": f"cancel requested from {runs.describe_owner(owner)}, which runs this tree; it cancels "
                        f"within a second through its own cancel path"}]


def abort_run(manager: "TaskManager", run: TreeRun, reason: str) -> None:
    """Synchronous teardown on interrupt: every unfinished task ends cancelled."""
    for s in run.states.values():
        if s.status in FINAL_STATUSES:
            continue
        if s.aio_task is not None and not s.aio_task.done():
            s.cancel_requested = True
            s.aio_task.cancel()
        manager.lifecycle.finalize(s, cancelled(reason))
    manager.scheduler.forget(run)
    manager.lifecycle.emit(EventType.TREE_FINISHED, run.root_id, run.root_id, CANCELLED, None, {"reason": reason},
                           run.root.task.name)
