"""TaskManager: runs task trees on the event loop, in dependency order, and reports every change.

One tree run, in short (each step lives in its own module):
1. ``plan``: the tree is checked (duplicate ids, unknown dependencies, cycles) before anything is
   written; completed tasks keep their results, every other task and whatever depends on it runs;
2. a lease on the root id in the store (``storage/runs.py``) keeps two processes from running the
   same tree at once;
3. ``scheduler``: a task becomes ready when each of its dependencies reached a final state, and
   starts at once (or, under ``max_concurrency``, lowest priority number first);
4. ``task_run``: resolve → create → merge inputs → pre-hooks → validate → execute → classify;
5. ``lifecycle``: each state change updates the task's row object in memory, is published as an
   Event and written behind in batches (``persistence``); a final state releases or ends the
   dependents and hands the task to storages and post-hooks;
6. ``cancellation``: cancel requests, the grace period, interrupts.
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from apflow_nb.core.events import EventBus, EventType, default_bus
from apflow_nb.core.execution import cancellation
from apflow_nb.core.execution.inputs import DeclaredFields
from apflow_nb.core.execution.keeper import keeper_for
from apflow_nb.core.execution.lifecycle import Lifecycle, apply_values
from apflow_nb.core.execution.plan import ACTIVE, TreeRun, describe, plan_run
from apflow_nb.core.execution.runner import as_runner, resume
from apflow_nb.core.execution.scheduler import Scheduler
from apflow_nb.core.gc_pause import gc_paused, heap_held
from apflow_nb.core.execution.task_run import resolve, run_task, settle_from_cache
from apflow_nb.core.policy import PLAIN, Policy
from apflow_nb.core.policy import resolve as resolve_policy
from apflow_nb.core.extensions.decorators import get_hooks
from apflow_nb.core.extensions.hooks import TREE_ARGS, hook_label, invoke_hook
from apflow_nb.core.extensions.registry import get_registry
from apflow_nb.core.extensions.types import ExtensionCategory
from apflow_nb.core.storage.processes import process_identity
from apflow_nb.core.clock import utcnow
from apflow_nb.core.types import CANCELLED, COMPLETED, IN_PROGRESS, PENDING, TaskTreeNode

if TYPE_CHECKING:  # the store's modules load when a TaskManager is made, not when this module is imported
    from sqlalchemy.orm import Session

    from apflow_nb.core.execution.persistence import StateWriter

logger = logging.getLogger("apflow_nb.execution")

DEFAULT_GRACE_PERIOD = 3.0
DEFAULT_HOOK_TIMEOUT = 30.0
HOLD_HEAP_AT = 2_000  # tasks from which a run keeps the collector off the heap it holds (core/gc_pause.py)
FINAL_WRITE_WAIT = 30.0  # seconds a finished tree waits for its last writes before returning anyway
OWNER = process_identity()


class TaskManager:
    """Runs task trees stored through ``db`` (a SQLAlchemy Session from ``create_session``).

    ``max_concurrency`` bounds how many tasks run at once (None: no bound); ``cancel_grace_period``
    is how long a cancelled executor may take to stop before its asyncio task is cancelled;
    ``hook_timeout`` how long a hook or storage extension may take before it is abandoned;
    ``event_bus`` defaults to the process-wide bus; ``flush_interval`` is the longest a state
    change waits before it is written; ``event_log`` appends every event to the store's
    ``apflow_task_events`` table; ``runner`` says where executors run: None (this process, on
    the loop) or a Runner (e.g. ``apflow_nb.distributed.DaskRunner.from_client(client)``);
    ``cache`` turns result caching on for every task whose task or executor does not say otherwise.
    """

    def __init__(self, db: "Session", *, max_concurrency: int | None = None,
                 cancel_grace_period: float = DEFAULT_GRACE_PERIOD, event_bus: EventBus | None = None,
                 flush_interval: float = 0.05, task_model_class: type | None = None, event_log: bool = True,
                 user_id: str | None = None, runner: Any = None, hook_timeout: float = DEFAULT_HOOK_TIMEOUT,
                 cache: bool = False):
        if max_concurrency is not None and (isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int)
                                            or max_concurrency < 1):
            raise ValueError(f"max_concurrency must be a positive integer or None, got {max_concurrency!r}")
        from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository

        self.db = db
        self.task_repository = TaskRepository(db, task_model_class)
        self.events = event_bus or default_bus
        self.cancel_grace_period = cancel_grace_period
        self.hook_timeout = hook_timeout
        self.flush_interval = flush_interval
        self.user_id = user_id
        self.event_log = event_log
        self.cache = cache
        self.owner = OWNER
        self.runner = as_runner(runner)
        check = getattr(self.runner, "check_store", None)
        if check is not None:
            check(db.get_bind().url.render_as_string(hide_password=False))
        self.scheduler = Scheduler(max_concurrency, self._start)
        self.lifecycle = Lifecycle(self)
        self.declared_fields = DeclaredFields()
        self._writer: "StateWriter | None" = None
        self._runs: dict[str, TreeRun] = {}

    # -- public API ----------------------------------------------------------------------
    @property
    def max_concurrency(self) -> int | None:
        """How many tasks may run at once (None: no bound)."""
        return self.scheduler.max_concurrency

    @property
    def writer(self) -> "StateWriter":
        """The write-behind buffer of this manager's store."""
        from apflow_nb.core.execution.persistence import StateWriter

        table = self.task_repository.model.__table__
        if self._writer is None or self._writer.table is not table:
            if self._writer is not None:
                self._writer.flush(timeout=FINAL_WRITE_WAIT)
            self._writer = StateWriter(self.db, table, self.flush_interval, on_problem=self._store_problem)
        return self._writer

    def active_tree_ids(self) -> list[str]:
        """Root ids of the trees this manager is running now."""
        return list(self._runs)

    def is_running(self, task_id: str) -> bool:
        """True while the task belongs to a tree that this process is running."""
        return task_id in ACTIVE

    async def distribute_task_tree(self, task_tree: TaskTreeNode, *, use_callback: bool = True) -> TaskTreeNode:
        """Run the tree and return its root node once every task reached a final state.

        ``node["status"]`` (or ``node.status``) is the root task's status; ``node.tree_status``
        summarises the whole tree. Cancelling the awaiting coroutine (or a KeyboardInterrupt)
        cancels the tree: no task is left in_progress. Another process running the same tree is
        a TreeAlreadyRunningError naming it.
        """
        task_tree = _as_node(task_tree)
        with ExitStack() as held:
            with gc_paused():  # what planning allocated is held with the heap, not collected at once
                run = plan_run(self, task_tree)
                held.enter_context(heap_held(len(run.states) >= HOLD_HEAP_AT))
            return await self._run_planned(run, task_tree)

    async def _run_planned(self, run: TreeRun, task_tree: TaskTreeNode) -> TaskTreeNode:
        run.done = asyncio.get_running_loop().create_future()
        run.started = asyncio.Event()
        self._runs[run.root_id] = run
        for tid in run.states:
            ACTIVE[tid] = run
        keeper = None
        try:
            keeper = await self._take_lease(run)
        except BaseException:
            run.aborted = True
            self._forget(run)
            raise
        finally:
            if run.aborted:
                run.started.set()
        try:
            await self._start_tree(run)
            run.started.set()
            if run.unfinished == 0 and not run.done.done():
                run.done.set_result(None)
            await asyncio.shield(run.done)
            if run.side_tasks:
                await asyncio.gather(*run.side_tasks, return_exceptions=True)
            await self._finish_tree(run)
        except BaseException:
            cancellation.abort_run(self, run, "the run was interrupted")
            self.writer.flush(timeout=5.0)
            raise
        finally:
            run.started.set()
            self._forget(run)
            if keeper is not None:
                keeper.release(run.root_id, run.status())
        return task_tree

    def _forget(self, run: TreeRun) -> None:
        self._runs.pop(run.root_id, None)
        for tid in run.states:
            if ACTIVE.get(tid) is run:
                del ACTIVE[tid]

    async def cancel_task(self, task_id: str, *, reason: str = "cancelled by request",
                          grace_period: float | None = None) -> dict[str, Any]:
        """Cancel one task: its checker turns true, ``cancel()`` is awaited, and after the grace
        period its asyncio task is cancelled. Pending dependents end cancelled. Returns
        ``{"task_id", "status", "message"}``."""
        run = await _started(ACTIVE.get(task_id))
        if run is None:
            task = self.task_repository.get_task(task_id)
            elsewhere = cancellation.cancel_elsewhere(self, task.root_id or task_id, task_id, reason)
            if elsewhere is not None:
                return elsewhere[0] if elsewhere else {"task_id": task_id, "status": str(task.status),
                                                       "message": "already finished"}
            return await cancellation.cancel_stored(self, task_id, reason)
        manager = run.manager
        return await cancellation.cancel_state(manager, run.states[task_id], reason, manager._grace(grace_period))

    async def cancel_tree(self, root_id: str, *, reason: str = "tree cancelled by request",
                          grace_period: float | None = None) -> list[dict[str, Any]]:
        """Cancel every unfinished task of a running tree: here, through another process that runs it
        (a cancel request it picks up within a second), or in the store when nobody runs it."""
        run = await _started(self._runs.get(root_id) or ACTIVE.get(root_id))
        if run is None:
            elsewhere = cancellation.cancel_elsewhere(self, root_id, None, reason)
            if elsewhere is not None:
                return elsewhere
            tree = self.task_repository.get_task_tree_sync(root_id)
            return [await cancellation.cancel_stored(self, n.task.id, reason) for n in tree.walk()
                    if str(n.task.status) not in (COMPLETED, "failed", CANCELLED)]
        return await cancellation.cancel_run(run.manager, run, reason, run.manager._grace(grace_period))

    def request_cancel(self, task_or_root_id: str) -> "asyncio.Task[Any]":
        """Schedule a cancel from sync code on the loop's thread (a button callback): a tree if the
        id is a running root, else a task."""
        run = ACTIVE.get(task_or_root_id)
        if task_or_root_id in self._runs or (run is not None and run.root_id == task_or_root_id):
            return asyncio.ensure_future(self.cancel_tree(task_or_root_id))
        return asyncio.ensure_future(self.cancel_task(task_or_root_id))

    # -- the tree's life -----------------------------------------------------------------------
    def _grace(self, grace_period: float | None) -> float:
        return self.cancel_grace_period if grace_period is None else grace_period

    def _start(self, s: Any) -> None:
        run = s.run
        if s.policy.cache and run.cache_index is not None and not run.pre_hooks and settle_from_cache(self, s):
            return
        coro = run_task(self, s)
        if run.storages or run.post_hooks:
            s.aio_task = asyncio.ensure_future(coro)
            return
        # step it here: an executor that finishes without waiting needs no asyncio Task of its own
        try:
            first = coro.send(None)
        except StopIteration:
            return
        s.aio_task = asyncio.ensure_future(resume(coro, first))

    async def _take_lease(self, run: TreeRun) -> Any:
        """The store-wide lease on this tree (none for in-memory stores, which no other process sees)."""
        if not self.writer.threaded:
            return None
        keeper = keeper_for(self.db.get_bind(), self.owner)
        await asyncio.to_thread(keeper.acquire, run.root_id)
        keeper.watch(run.root_id, asyncio.get_running_loop(), self._remote_cancel, self._lease_lost)
        return keeper

    async def _start_tree(self, run: TreeRun) -> None:
        writer = self.writer
        now = utcnow()
        root_id = run.root_id
        run.storages = [e.obj for e in get_registry().list(ExtensionCategory.STORAGE)]
        run.pre_hooks, run.post_hooks, run.writer = get_hooks("pre"), get_hooks("post"), writer
        for s in run.states.values():
            task = s.task
            values: dict[str, Any] = {}
            if task.root_id != root_id:
                values["root_id"] = root_id
            if s.status == PENDING and (str(task.status) != PENDING or task.result is not None
                                        or task.error is not None or task.progress):
                values.update(status=PENDING, progress=0.0, result=None, error=None, started_at=None,
                              completed_at=None, updated_at=now, attempts=None, cached_from=None)
            if values:
                apply_values(task, values)
                writer.mark(task.id, values)
        await self._resolve_executors(run)
        self.lifecycle.emit(EventType.TREE_STARTED, root_id, root_id, IN_PROGRESS, 0.0,
                            lambda full: {"tasks": describe(run), "total": len(run.states)} if full
                            else {"total": len(run.states)}, run.root.task.name)
        await self._tree_hooks(run, "on_tree_started", IN_PROGRESS)
        if run.storages:
            for s in run.states.values():
                if s.status == PENDING:
                    await self.lifecycle.save_to_storages(s)
        for s in run.states.values():
            if s.status == PENDING:
                s.waiting = sum(1 for d in s.deps if run.states[d["id"]].status != COMPLETED) if s.deps else 0
                if s.waiting == 0:
                    self.scheduler.enqueue(s)
        self.scheduler.pump()

    async def _resolve_executors(self, run: TreeRun) -> None:
        """Each waiting task's executor and run policy; the cache entries of executors that cache."""
        memo: dict[int, Policy] = {}
        caching: set[str] = set()
        for s in run.states.values():
            if s.status != PENDING:
                continue
            s.entry, s.executor_id = resolve(s.task)
            options = s.task.options
            if options or s.entry is None:
                s.policy = PLAIN if s.entry is None else resolve_policy(options, s.entry.meta.get("policy"),
                                                                       s.entry.cls, self.cache)
            else:
                s.policy = memo.get(id(s.entry)) or memo.setdefault(id(s.entry), resolve_policy(
                    None, s.entry.meta.get("policy"), s.entry.cls, self.cache))
            if s.policy.cache:
                caching.add(s.executor_id)
        if caching:
            from apflow_nb.core.storage.cache import load_index

            engine = self.db.get_bind()
            run.cache_index = (await asyncio.to_thread(load_index, engine, caching) if self.writer.threaded
                               else load_index(engine, caching))

    async def _finish_tree(self, run: TreeRun) -> None:
        status = run.status()
        self.lifecycle.emit(EventType.TREE_FINISHED, run.root_id, run.root_id, status, 1.0,
                            {"counts": run.counts(), "duration_s": time.time() - run.started_at},
                            run.root.task.name)
        if not await self.writer.drain(FINAL_WRITE_WAIT):
            self.lifecycle.warn(run, run.root_id, f"the store did not take the run's last changes within "
                                                  f"{FINAL_WRITE_WAIT:g} s; they are still being retried")
        await self._tree_hooks(run, "on_tree_completed" if status == COMPLETED else "on_tree_failed", status)
        await self.events.flush(timeout=0.2)

    async def _tree_hooks(self, run: TreeRun, event: str, status: str) -> None:
        for hook in get_hooks("tree", event):
            values = {"task": run.root.task, "status": status, "event": event}
            await self.lifecycle.bounded(run, f"tree hook {hook_label(hook)}", run.root_id,
                                         lambda hook=hook, values=values: invoke_hook(hook, TREE_ARGS, values))

    # -- messages from other threads -------------------------------------------------------------
    def _remote_cancel(self, root_id: str, task_id: str | None, reason: str | None) -> None:
        """A cancel request from another process (the keeper calls this on the loop's thread)."""
        if root_id not in self._runs:
            return
        why = reason or "cancelled from another process"
        if task_id is None or task_id == root_id:
            asyncio.ensure_future(self.cancel_tree(root_id, reason=why))
        else:
            asyncio.ensure_future(self.cancel_task(task_id, reason=why))

    def _lease_lost(self, root_id: str) -> None:
        run = self._runs.get(root_id)
        if run is not None:
            self.lifecycle.warn(run, root_id, f"another process took over the run of {root_id!r} (this process "
                                              f"looked gone to it); this run is cancelled")
            asyncio.ensure_future(self.cancel_tree(root_id, reason="another process took this run over"))

    def _store_problem(self, message: str, task_id: str | None) -> None:
        """The writer repaired or dropped a row: publish a warning from the loop's thread."""
        for run in list(self._runs.values()):
            loop = run.done.get_loop() if run.done is not None else None
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self.lifecycle.warn, None, task_id, message)
                return


async def _started(run: TreeRun | None) -> TreeRun | None:
    """The run once it started (None when it could not start: its tasks are not ours to cancel)."""
    if run is not None and run.started is not None:
        await run.started.wait()
    return None if run is None or run.aborted else run


def _as_node(task_tree: Any) -> TaskTreeNode:
    if isinstance(task_tree, TaskTreeNode):
        return task_tree
    if hasattr(task_tree, "id") and hasattr(task_tree, "name"):
        return TaskTreeNode(task_tree)
    raise TypeError(f"distribute_task_tree expects a TaskTreeNode, got {type(task_tree).__name__}. "
                    "Wrap the root task: TaskTreeNode(task).")


def cancel_running(task_or_root_id: str) -> "asyncio.Task[Any] | None":
    """Schedule the cancel of a running tree (by its root id) or task, whichever manager runs it;
    None when nothing with that id runs in this process. Call it on the loop's thread."""
    run = ACTIVE.get(task_or_root_id)
    if run is None:
        return None
    return run.manager.request_cancel(task_or_root_id)
