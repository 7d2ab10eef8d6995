"""``apflow_nb.cancel(id)``: cancel a run (its root id) or one task, wherever it runs.

- a run of this process: cancelled on its own event loop (checker, ``cancel()``, grace period);
- a run another live process owns: a cancel request in the store; that process's keeper picks it
  up within a second and cancels through the same path, and it writes the ``task_cancelled`` events;
- a run whose process is gone: ended as orphan recovery ends it (unfinished tasks failed);
- a stored tree nobody runs: its unfinished tasks are marked cancelled, each with a
  ``task_cancelled`` event in the log.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import Any

from apflow_nb.core.types import FINAL_STATUSES

DEFAULT_REASON = "cancelled with apflow_nb.cancel"


@dataclass
class CancelOutcome:
    """What ``cancel`` did: ``action`` is local, requested, recovered, cancelled or finished (nothing
    was left to cancel); ``tasks`` the per-task answers; ``message`` says it in a line."""

    id: str
    root_id: str
    action: str
    message: str
    store: str | None = None
    owner: str | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    future: Any = None  # the scheduled local cancel (an asyncio task or a concurrent future)

    def wait(self, timeout: float = 10.0, poll: float = 0.05) -> bool:
        """Block until every task ``cancel`` aimed at is final in the store (True), or ``timeout``."""
        from apflow_nb.core.storage.reading import read_tree, reader_engine

        engine = reader_engine(self.store)
        deadline = time.monotonic() + timeout
        while True:
            node = read_tree(engine, self.root_id)
            target = node.find(self.id) or node
            if all(str(n.task.status) in FINAL_STATUSES for n in target.walk()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def __str__(self) -> str:
        return self.message


def _local(task_or_root_id: str) -> CancelOutcome | None:
    """A run of this process that holds the id: cancel it on its loop."""
    from apflow_nb.core.execution.plan import ACTIVE

    run = ACTIVE.get(task_or_root_id)
    loop = run.done.get_loop() if run is not None and run.done is not None else None
    if run is None or loop is None or loop.is_closed():
        return None
    here = _running_loop()
    if here is loop:
        future: Any = run.manager.request_cancel(task_or_root_id)
    elif loop.is_running():
        future = asyncio.run_coroutine_threadsafe(_request(run.manager, task_or_root_id), loop)
    else:
        return None
    return CancelOutcome(task_or_root_id, run.root_id, "local", f"cancelling {task_or_root_id} (running in this "
                         f"process)", future=future)


async def _request(manager: Any, task_or_root_id: str) -> Any:
    return await manager.request_cancel(task_or_root_id)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def cancel(task_or_root_id: str, store: str | None = None, *, reason: str = DEFAULT_REASON,
           wait: float | None = None) -> CancelOutcome:
    """Cancel a run (by its root id) or one task of it, in whichever process runs it (see the module
    docstring); returns a CancelOutcome at once, or after up to ``wait`` seconds for the tasks to end.

    ``store``: a URL (default: the default store). TaskNotFoundError when the store has no such id.
    """
    outcome = _local(task_or_root_id)
    if outcome is None:
        outcome = _in_store(task_or_root_id, store, reason)
    if wait is not None and outcome.action != "local":
        outcome.wait(wait)
    return outcome


def _in_store(task_or_root_id: str, store: str | None, reason: str) -> CancelOutcome:
    from apflow_nb.core.execution.task_manager import TaskManager
    from apflow_nb.core.storage.session import create_session

    session = create_session(store)
    try:
        manager = TaskManager(session)
        task = manager.task_repository.get_task(task_or_root_id)
        root_id = task.root_id or task.id
        whole = task.id == root_id or not task.parent_id

        async def go() -> list[dict[str, Any]]:
            if whole:
                return await manager.cancel_tree(task.id, reason=reason)
            return [await manager.cancel_task(task.id, reason=reason)]

        answers = _run_now(go)
    finally:
        session.close()
    return _describe(task_or_root_id, root_id, store, answers)


def _run_now(make: Any) -> Any:
    """Run a coroutine to its end from sync code, also inside a running loop (in a worker thread)."""
    if _running_loop() is None:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="apflow_nb cancel") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _describe(task_id: str, root_id: str, store: str | None, answers: list[dict[str, Any]]) -> CancelOutcome:
    actions = {a.get("action") for a in answers}
    if "requested" in actions:
        a = answers[0]
        return CancelOutcome(task_id, root_id, "requested", a["message"], store, a.get("owner"), answers)
    if "recovered" in actions:
        return CancelOutcome(task_id, root_id, "recovered", f"{answers[0]['message']} ({len(answers)} task(s))",
                             store, tasks=answers)
    ended = [a for a in answers if a.get("message") != "already finished"]
    if not ended:
        return CancelOutcome(task_id, root_id, "finished", f"{task_id} had already finished: nothing to cancel",
                             store, tasks=answers)
    return CancelOutcome(task_id, root_id, "cancelled", f"{task_id} was not running: {len(ended)} unfinished "
                         f"task(s) marked cancelled in the store", store, tasks=answers)
