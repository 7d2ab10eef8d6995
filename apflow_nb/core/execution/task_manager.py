"""TaskManager: runs task trees on the event loop, in dependency order, and reports every change.

One tree run, in short:
1. the tree is checked (duplicate ids, unknown dependencies, cycles) before anything is written;
2. completed tasks keep their results; every other task, and whatever depends on it, is reset to
   pending;
3. a task becomes ready when each of its dependencies has reached a final state; a failed or
   cancelled *required* dependency ends it failed or cancelled without running it;
4. ready tasks start at once (or, under ``max_concurrency``, lowest priority number first) as
   asyncio tasks on the running loop;
5. each state change updates the task's row object in memory, is published as an Event, handed
   to registered StorageExtensions and written to the store in batches (see persistence.py).
"""
from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import logging
import time
import traceback
from typing import Any, Callable

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from apflow_nb.core.errors import InputValidationError, TreeAlreadyRunningError
from apflow_nb.core.events import Event, EventBus, EventType, default_bus
from apflow_nb.core.execution.hooks import call_hook, hook_label
from apflow_nb.core.execution.persistence import StateWriter
from apflow_nb.core.execution.runner import ExecutionContext, LocalRunner, Runner
from apflow_nb.core.tree_check import check_dependencies, check_unique
from apflow_nb.core.extensions.decorators import get_hooks
from apflow_nb.core.extensions.registry import RegistryEntry, get_registry
from apflow_nb.core.extensions.types import ExtensionCategory
from apflow_nb.core.storage.recovery import process_identity
from apflow_nb.core.storage.sqlalchemy.models import utcnow
from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository, json_problem
from apflow_nb.core.types import DEPENDENCY_CANCELLED, DEPENDENCY_FAILED, TaskTreeNode

logger = logging.getLogger("apflow_nb.execution")

PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = "pending", "in_progress", "completed", "failed", "cancelled"
FINAL = frozenset({COMPLETED, FAILED, CANCELLED})
_FINAL_EVENT = {COMPLETED: EventType.TASK_COMPLETED, FAILED: EventType.TASK_FAILED, CANCELLED: EventType.TASK_CANCELLED}

DEFAULT_GRACE_PERIOD = 3.0
OWNER = process_identity()

# task id -> the run that owns it, across every TaskManager of the process
_ACTIVE: dict[str, "_TreeRun"] = {}


def executor_id_of(task: Any) -> str:
    """Which executor runs ``task``: ``params["executor_id"]``, else ``schemas["method"]``, else its name."""
    params = task.params
    if params and isinstance(params, dict) and params.get("executor_id"):
        return str(params["executor_id"])
    schemas = task.schemas
    if schemas and isinstance(schemas, dict) and schemas.get("method"):
        return str(schemas["method"])
    return task.name


def merge_dependency_results(inputs: dict[str, Any], dependencies: list[dict[str, Any]],
                             results: dict[str, Any], field_names: frozenset[str] | None) -> dict[str, Any]:
    """The inputs a task runs with: its own inputs plus each completed dependency's result.

    For each completed dependency, in list order: when the executor declares input fields and
    the result (unwrapped from a ``"result"`` dict if it has one) has fields of those names, they
    are copied in; otherwise the whole result goes to ``inputs[<dependency id>]``. Dependency
    values override the task's own inputs of the same name.
    """
    merged = dict(inputs or {})
    for dep in dependencies:
        dep_id = dep["id"]
        if dep_id not in results:
            continue
        result = results[dep_id]
        if field_names and isinstance(result, dict):
            payload = result["result"] if isinstance(result.get("result"), dict) else result
            matched = {k: v for k, v in payload.items() if k in field_names}
            if matched:
                merged.update(matched)
                continue
        merged[dep_id] = result
    return merged


class _ExecutorEventQueue:
    """What executors get as ``event_queue``: ``await put(dict)`` never blocks.

    ``{"type": "progress", "data": {"progress": 0.4, ...}}`` (or a top-level ``progress``) updates
    the task's stored progress and is published as ``task_progress``; anything else is published
    as an ``executor`` event with the dict as its data.
    """

    __slots__ = ("_manager", "_state")

    def __init__(self, manager: "TaskManager", state: "_TaskState"):
        self._manager = manager
        self._state = state

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        """Publish ``item`` now."""
        self._manager._executor_event(self._state, item)

    def qsize(self) -> int:  # asyncio.Queue look-alike
        return 0


class _TaskState:
    """A task's bookkeeping during one run."""

    __slots__ = ("task", "run", "deps", "dependents", "waiting", "status", "aio_task", "executor",
                 "cancel_requested", "forced", "started", "seq", "blocked_by", "context")

    def __init__(self, task: Any, run: "_TreeRun"):
        self.task = task
        self.run = run
        self.deps: list[dict[str, Any]] = []
        self.dependents: list[tuple[_TaskState, bool]] = []  # (dependent, is this a required dependency)
        self.waiting = 0
        self.status = str(task.status)
        self.aio_task: asyncio.Task[Any] | None = None
        self.executor: Any = None
        self.cancel_requested = False
        self.forced = False
        self.started = False
        self.seq = 0
        self.blocked_by: str | None = None
        self.context: ExecutionContext | None = None

    def is_cancel_requested(self) -> bool:
        return self.cancel_requested


class _TreeRun:
    """One call of distribute_task_tree."""

    def __init__(self, manager: "TaskManager", root: TaskTreeNode, states: dict[str, _TaskState]):
        self.manager = manager
        self.root = root
        self.root_id: str = root.task.id
        self.states = states
        self.unfinished = 0
        self.done: asyncio.Future[None] | None = None
        self.side_tasks: set[asyncio.Task[Any]] = set()
        self.results: dict[str, Any] = {}
        self.started_at = time.time()
        self.storages: list[Any] = []


class TaskManager:
    """Runs task trees stored through ``db`` (a SQLAlchemy Session from ``create_session``).

    ``max_concurrency`` bounds how many tasks run at once (None: no bound); ``cancel_grace_period``
    is how long a cancelled executor may take to stop before its asyncio task is cancelled;
    ``event_bus`` defaults to the process-wide bus; ``flush_interval`` is the longest a state
    change waits before it is written; ``event_log`` appends every event to the store's
    ``apflow_task_events`` table; ``runner`` says where executors run: None (this process, on
    the loop), a Runner, or a Dask ``distributed.Client`` or scheduler address (see
    ``apflow_nb.distributed``).
    """

    def __init__(self, db: Session, *, max_concurrency: int | None = None,
                 cancel_grace_period: float = DEFAULT_GRACE_PERIOD, event_bus: EventBus | None = None,
                 flush_interval: float = 0.05, task_model_class: type | None = None,
                 event_log: bool = True, user_id: str | None = None, runner: Any = None):
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
            raise ValueError(f"max_concurrency must be a positive integer or None, got {max_concurrency!r}")
        self.db = db
        self.task_repository = TaskRepository(db, task_model_class)
        self.events = event_bus or default_bus
        self.max_concurrency = max_concurrency
        self.cancel_grace_period = cancel_grace_period
        self.flush_interval = flush_interval
        self.user_id = user_id
        self.event_log = event_log
        self.runner = _make_runner(runner, db)
        self._writer: StateWriter | None = None
        self._ready: list[tuple[int, int, _TaskState]] = []
        self._seq = itertools.count()
        self._running = 0
        self._runs: dict[str, _TreeRun] = {}
        self._field_cache: dict[type, frozenset[str] | None] = {}

    # -- public API ----------------------------------------------------------------------
    @property
    def writer(self) -> StateWriter:
        """The write-behind buffer of this manager's store."""
        table = self.task_repository.model.__table__
        if self._writer is None or self._writer.table is not table:
            if self._writer is not None:
                self._writer.flush()
            self._writer = StateWriter(self.db, table, self.flush_interval)
        return self._writer

    def active_tree_ids(self) -> list[str]:
        """Root ids of the trees this manager is running now."""
        return list(self._runs)

    def is_running(self, task_id: str) -> bool:
        """True while the task belongs to a tree that this process is running."""
        return task_id in _ACTIVE

    async def distribute_task_tree(self, task_tree: TaskTreeNode, *, use_callback: bool = True) -> TaskTreeNode:
        """Run the tree and return its root node once every task reached a final state.

        ``node["status"]`` (or ``node.status``) is the root task's status; ``node.tree_status``
        summarises the whole tree. Cancelling the awaiting coroutine (or a KeyboardInterrupt)
        cancels the tree: no task is left in_progress.
        """
        if not isinstance(task_tree, TaskTreeNode):
            if hasattr(task_tree, "id") and hasattr(task_tree, "name"):
                task_tree = TaskTreeNode(task_tree)
            else:
                raise TypeError(f"distribute_task_tree expects a TaskTreeNode, got {type(task_tree).__name__}. "
                                "Wrap the root task: TaskTreeNode(task).")
        run = self._prepare(task_tree)
        loop = asyncio.get_running_loop()
        run.done = loop.create_future()
        self._runs[run.root_id] = run
        for tid in run.states:
            _ACTIVE[tid] = run
        try:
            await self._start_tree(run)
            if run.unfinished == 0:
                run.done.set_result(None)
            await asyncio.shield(run.done)
            if run.side_tasks:
                await asyncio.gather(*run.side_tasks, return_exceptions=True)
            await self._finish_tree(run)
        except BaseException:
            self._abort_tree(run, "the run was interrupted")
            raise
        finally:
            self._runs.pop(run.root_id, None)
            for tid in run.states:
                if _ACTIVE.get(tid) is run:
                    del _ACTIVE[tid]
            try:
                self.writer.flush()
            except Exception:
                logger.exception("apflow_nb: final write of task state failed")
        return task_tree

    async def cancel_task(self, task_id: str, *, reason: str = "cancelled by request",
                          grace_period: float | None = None) -> dict[str, Any]:
        """Cancel one task: its checker turns true, ``cancel()`` is awaited, and after the grace
        period its asyncio task is cancelled. Pending dependents end cancelled. Returns
        ``{"task_id", "status", "message"}``."""
        run = _ACTIVE.get(task_id)
        if run is None:
            return await self._cancel_stored(task_id, reason)
        state = run.states[task_id]
        manager = run.manager
        return await manager._cancel_state(state, reason, grace_period)

    async def cancel_tree(self, root_id: str, *, reason: str = "tree cancelled by request",
                          grace_period: float | None = None) -> list[dict[str, Any]]:
        """Cancel every unfinished task of a running tree (or of a stored one)."""
        run = self._runs.get(root_id) or _ACTIVE.get(root_id)
        if run is None:
            tree = self.task_repository.get_task_tree_sync(root_id)
            return [await self._cancel_stored(n.task.id, reason) for n in tree.walk()
                    if str(n.task.status) not in FINAL]
        manager = run.manager
        states = [s for s in run.states.values() if s.status not in FINAL]
        # pending ones first, so nothing new starts while running ones wind down
        for s in states:
            if not s.started:
                manager._finish_unstarted(s, CANCELLED, reason)
        running = [s for s in states if s.started and s.status not in FINAL]
        out = await asyncio.gather(*(manager._cancel_state(s, reason, grace_period) for s in running))
        return list(out) + [{"task_id": s.task.id, "status": s.status, "message": reason}
                            for s in states if not s.started]

    def request_cancel(self, task_or_root_id: str) -> asyncio.Task[Any]:
        """Schedule a cancel from sync code on the loop's thread (a button callback): a tree if the
        id is a running root, else a task."""
        run = _ACTIVE.get(task_or_root_id)
        if task_or_root_id in self._runs or (run is not None and run.root_id == task_or_root_id):
            coro = self.cancel_tree(task_or_root_id)
        else:
            coro = self.cancel_task(task_or_root_id)
        return asyncio.ensure_future(coro)

    # -- preparing -----------------------------------------------------------------------
    def _prepare(self, root: TaskTreeNode) -> _TreeRun:
        nodes = list(root.walk())
        tasks = [n.task for n in nodes]
        check_unique((t.id for t in tasks), where=f"the tree of {root.task.id!r}")
        for t in tasks:
            if t.id in _ACTIVE:
                raise TreeAlreadyRunningError(
                    f"task {t.name!r} ({t.id}) is already running in this process; await that run "
                    f"(or cancel it) before starting the tree again.")
        from apflow_nb.core.storage.sqlalchemy.task_repository import normalize_dependencies

        deps_by_id: dict[str, list[str]] = {}
        norm: dict[str, list[dict[str, Any]]] = {}
        for t in tasks:
            deps = normalize_dependencies(t.dependencies, where=f"task {t.id!r} dependencies")
            norm[t.id] = deps
            deps_by_id[t.id] = [d["id"] for d in deps]
        check_dependencies(deps_by_id, {t.id: t.name for t in tasks})

        states: dict[str, _TaskState] = {}
        run = _TreeRun(self, root, states)
        for t in tasks:
            s = _TaskState(t, run)
            s.deps = norm[t.id]
            states[t.id] = s
        for s in states.values():
            for dep in s.deps:
                states[dep["id"]].dependents.append((s, dep.get("required", True)))
        # re-run what is not completed, and everything downstream of it
        rerun: set[str] = set()
        stack = [s for s in states.values() if s.status != COMPLETED]
        while stack:
            s = stack.pop()
            if s.task.id in rerun:
                continue
            rerun.add(s.task.id)
            stack.extend(d for d, _ in s.dependents)
        for s in states.values():
            if s.task.id in rerun:
                s.status = PENDING
            else:
                run.results[s.task.id] = s.task.result
        run.unfinished = len(rerun)
        return run

    async def _start_tree(self, run: _TreeRun) -> None:
        writer = self.writer
        now = utcnow()
        root_id = run.root_id
        run.storages = [e.obj for e in get_registry().list(ExtensionCategory.STORAGE)]
        for s in run.states.values():
            task = s.task
            values: dict[str, Any] = {}
            if task.root_id != root_id:
                values["root_id"] = root_id
            if s.status == PENDING and (str(task.status) != PENDING or task.result is not None
                                        or task.error is not None or task.progress):
                values.update(status=PENDING, progress=0.0, result=None, error=None, started_at=None,
                              completed_at=None, updated_at=now)
            if values:
                self._apply(task, values)
                writer.mark(task.id, values)
        self._emit(EventType.TREE_STARTED, root_id, root_id, IN_PROGRESS, 0.0,
                   lambda: {"tasks": self._describe(run), "total": len(run.states)}, run.root.task.name)
        for hook in get_hooks("tree", "on_tree_started"):
            await self._safe_hook(hook, run, run.root.task, IN_PROGRESS)
        for s in run.states.values():
            if s.status == PENDING and run.storages:
                await self._save_to_storages(s)
        for s in run.states.values():
            if s.status != PENDING:
                continue
            s.waiting = sum(1 for d in s.deps if run.states[d["id"]].status != COMPLETED)
            if s.waiting == 0:
                self._enqueue(s)
        self._pump()

    def _describe(self, run: _TreeRun) -> list[dict[str, Any]]:
        out = []
        for node, depth in run.root.walk_with_depth():
            t = node.task
            s = run.states[t.id]
            out.append({"id": t.id, "key": getattr(t, "key", None) or t.id, "name": t.name, "parent_id": node.parent.task.id if node.parent else None,
                        "depth": depth, "status": s.status, "executor": executor_id_of(t),
                        "priority": t.priority, "dependencies": [d["id"] for d in s.deps],
                        "progress": 1.0 if s.status == COMPLETED else 0.0})
        return out

    # -- scheduling ----------------------------------------------------------------------
    def _enqueue(self, s: _TaskState) -> None:
        s.seq = next(self._seq)
        heapq.heappush(self._ready, (s.task.priority if s.task.priority is not None else 2, s.seq, s))

    def _pump(self) -> None:
        limit = self.max_concurrency
        ready = self._ready
        while ready and (limit is None or self._running < limit):
            _, _, s = heapq.heappop(ready)
            if s.status != PENDING:
                continue
            self._running += 1
            s.started = True
            s.aio_task = asyncio.ensure_future(self._execute(s))

    def _settled(self, s: _TaskState) -> None:
        """Bookkeeping once a task reached a final state: release dependents, finish the tree."""
        run = s.run
        run.unfinished -= 1
        if s.status == COMPLETED:
            run.results[s.task.id] = s.task.result
        for d, required in s.dependents:
            if d.status != PENDING:
                continue
            if s.status != COMPLETED and required:
                upstream = getattr(s.task, "key", None) or s.task.id
                if s.status == CANCELLED:
                    self._finish_unstarted(d, CANCELLED, f"skipped: required dependency {upstream!r} was cancelled",
                                           DEPENDENCY_CANCELLED, upstream)
                else:
                    self._finish_unstarted(d, FAILED, f"skipped: required dependency {upstream!r} failed",
                                           DEPENDENCY_FAILED, upstream)
                continue
            d.waiting -= 1
            if d.waiting == 0:
                self._enqueue(d)
        if run.unfinished == 0 and run.done is not None and not run.done.done():
            run.done.set_result(None)

    # -- running one task ----------------------------------------------------------------
    def _resolve(self, task: Any) -> tuple[RegistryEntry | None, str]:
        executor_id = executor_id_of(task)
        return get_registry().get(ExtensionCategory.EXECUTOR, executor_id), executor_id

    def _field_names(self, executor: Any) -> frozenset[str] | None:
        cls = type(executor)
        if cls in self._field_cache:
            return self._field_cache[cls]
        names: frozenset[str] | None
        model = getattr(cls, "inputs_schema", None)
        if model is not None and hasattr(model, "model_fields"):
            names = frozenset(model.model_fields)
            self._field_cache[cls] = names
            return names
        try:
            props = (executor.get_input_schema() or {}).get("properties")
        except Exception:
            props = None
        names = frozenset(props) if isinstance(props, dict) and props else None
        return names  # not cached: a plain executor's schema may depend on its configuration

    async def _execute(self, s: _TaskState) -> None:
        task = s.task
        run = s.run
        inputs: dict[str, Any] = task.inputs if isinstance(task.inputs, dict) else {}
        try:
            entry, executor_id = self._resolve(task)
            now = utcnow()
            self._change(s, IN_PROGRESS, {"status": IN_PROGRESS, "started_at": now, "updated_at": now,
                                          "progress": 0.0, "error": None, "result": None,
                                          "completed_at": None, "owner": OWNER},
                         EventType.TASK_STARTED, {"executor": executor_id})
            if run.storages:
                await self._save_to_storages(s)
            if entry is None:
                known = ", ".join(get_registry().ids(ExtensionCategory.EXECUTOR)) or "none"
                msg = (f"no executor registered as {executor_id!r} for task {task.name!r} ({task.id}). "
                       f"Registered executors: {known}. Register one with executor_register(...), or set "
                       f"schemas['method'] to a registered id.")
                await self._complete(s, FAILED, {"status": FAILED, "error": msg, "error_type": "ExecutorNotFound"},
                                     msg, inputs)
                return
            try:
                executor = entry.create()
            except Exception as exc:
                msg = f"could not create executor {executor_id!r}: {type(exc).__name__}: {exc}"
                await self._complete(s, FAILED, {"status": FAILED, "error": msg, "error_type": type(exc).__name__},
                                     msg, inputs)
                return
            s.executor = executor
            inputs = merge_dependency_results(inputs, s.deps, run.results, self._field_names(executor))
            set_committed_value(task, "inputs", inputs)
            for hook in get_hooks("pre"):
                try:
                    await call_hook(hook, task)
                except Exception as exc:
                    msg = f"pre-hook {hook_label(hook)} raised {type(exc).__name__}: {exc}"
                    await self._complete(s, FAILED, {"status": FAILED, "error": msg, "error_type": "PreHookError",
                                                     "traceback": traceback.format_exc()}, msg, task.inputs)
                    return
            inputs = task.inputs if isinstance(task.inputs, dict) else {}
            bad = _json_problem(inputs)
            if bad:
                msg = f"inputs of task {task.name!r} cannot be stored as JSON ({bad}); a pre-hook or dependency put it there"
                await self._complete(s, FAILED, {"status": FAILED, "error": msg, "error_type": "InputValidationError"},
                                     msg, {})
                return
            self.writer.mark(task.id, {"inputs": inputs})
            try:
                validated = executor.validate_inputs(inputs)
            except InputValidationError as exc:
                await self._complete(s, FAILED, {"status": FAILED, "error": str(exc),
                                                 "error_type": "InputValidationError"}, str(exc), inputs)
                return
            executor.task_id = task.id
            executor.event_queue = _ExecutorEventQueue(self, s)
            executor.cancellation_checker = s.is_cancel_requested
            executor.task = task
            if s.cancel_requested:
                await self._complete(s, CANCELLED, {"status": CANCELLED, "message": "cancelled before it started"},
                                     None, inputs)
                return
            try:
                if self.runner is None:
                    result = executor.execute(validated)
                    if inspect.iscoroutine(result):
                        result = await _BlockWatch(result, lambda seconds: self._blocked(s, seconds))
                    elif inspect.isawaitable(result):
                        result = await result
                else:
                    s.context = ExecutionContext(task.id, run.root_id, executor_id, executor.event_queue.put_nowait,
                                                 loop=asyncio.get_running_loop())
                    if s.cancel_requested:
                        s.context.cancel_requested.set()
                    result = await self.runner.run(executor, validated, s.context)
            except asyncio.CancelledError:
                if not s.cancel_requested:
                    raise
                msg = (f"cancelled: the executor did not stop within the grace period "
                       f"({self._grace(None):g} s), so its asyncio task was cancelled")
                await self._complete(s, CANCELLED, {"status": CANCELLED, "message": msg}, None, inputs)
                return
            except Exception as exc:
                tb = traceback.format_exc()
                msg = f"{type(exc).__name__}: {exc}"
                await self._complete(s, FAILED, {"status": FAILED, "error": msg, "error_type": type(exc).__name__,
                                                 "traceback": tb}, f"{msg}\n\n{tb}", inputs)
                return
            if s.cancel_requested:
                await self._complete(s, CANCELLED, result if isinstance(result, dict) and _json_problem(result) is None
                                     else {"status": CANCELLED}, None, inputs)
                return
            problem = _json_problem(result)
            if problem:
                msg = (f"executor {executor_id!r} returned a result that cannot be stored as JSON ({problem}). "
                       f"Return dicts, lists, strings, numbers, booleans and None only.")
                await self._complete(s, FAILED, {"status": FAILED, "error": msg, "error_type": "ResultNotJSON"},
                                     msg, inputs)
                return
            status = COMPLETED
            error = None
            if isinstance(result, dict):
                declared = str(result.get("status", "")).lower()
                if declared == FAILED:
                    status = FAILED
                    error = str(result.get("error") or result.get("message") or "executor reported failure")
                elif declared == CANCELLED:
                    status = CANCELLED
            await self._complete(s, status, result, error, inputs)
        except asyncio.CancelledError:
            # the whole tree is being torn down (interrupt): leave nothing in progress
            if s.status not in FINAL:
                self._finalize(s, CANCELLED, {"status": CANCELLED, "message": "run interrupted"}, None)
            raise
        except Exception as exc:  # a bug of ours or of a storage extension: never leave the task running
            logger.exception("apflow_nb: internal error while running task %s", task.id)
            if s.status not in FINAL:
                msg = f"internal error: {type(exc).__name__}: {exc}"
                self._finalize(s, FAILED, {"status": FAILED, "error": msg}, msg)
        finally:
            self._running -= 1
            self._pump()

    async def _complete(self, s: _TaskState, status: str, result: Any, error: str | None,
                        inputs: dict[str, Any]) -> None:
        """Final state for a task that was started, then storages and post-hooks."""
        if s.status in FINAL:
            return
        self._finalize(s, status, result, error)
        if s.run.storages:
            await self._save_to_storages(s)
        for hook in get_hooks("post"):
            await self._safe_hook(hook, s.run, s.task, inputs, result)

    def _finalize(self, s: _TaskState, status: str, result: Any, error: str | None,
                  data: dict[str, Any] | None = None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"status": status, "result": result, "error": error, "completed_at": now,
                                  "updated_at": now}
        if status == COMPLETED:
            values["progress"] = 1.0
        if error:
            data = dict(data or (), error=error)
        self._change(s, status, values, _FINAL_EVENT[status], data)
        self.writer.observe_keys(executor_id_of(s.task), s.task.inputs, result if status == COMPLETED else None)
        self._settled(s)

    def _finish_unstarted(self, s: _TaskState, status: str, reason: str, error_type: str | None = None,
                          upstream: str | None = None) -> None:
        """End a task that never started (dependency failed or cancelled, or cancelled while waiting)."""
        if s.status in FINAL:
            return
        result = {"status": status, "error" if status == FAILED else "message": reason}
        if error_type:
            result.update(error_type=error_type, upstream=upstream)
        self._finalize(s, status, result, reason if status == FAILED else None,
                       {"error_type": error_type, "upstream": upstream} if error_type else None)
        run = s.run
        if run.storages or get_hooks("post"):
            task = asyncio.ensure_future(self._after_unstarted(s, result))
            run.side_tasks.add(task)
            task.add_done_callback(run.side_tasks.discard)

    async def _after_unstarted(self, s: _TaskState, result: Any) -> None:
        if s.run.storages:
            await self._save_to_storages(s)
        for hook in get_hooks("post"):
            await self._safe_hook(hook, s.run, s.task, s.task.inputs or {}, result)

    # -- state changes ---------------------------------------------------------------------
    @staticmethod
    def _apply(task: Any, values: dict[str, Any]) -> None:
        for key, value in values.items():
            set_committed_value(task, key, value)

    def _change(self, s: _TaskState, status: str, values: dict[str, Any], kind: EventType,
                data: dict[str, Any] | None) -> None:
        s.status = status
        task = s.task
        self._apply(task, values)
        self.writer.mark(task.id, values)
        self._emit(kind, task.id, s.run.root_id, status, task.progress, data, task.name)

    def _emit(self, kind: EventType, task_id: str | None, root_id: str | None, status: str | None,
              progress: float | None, data: Any = None, name: str | None = None) -> None:
        """Publish an event on the bus and append it to the store's event log (when enabled).

        ``data`` may be a callable, so costly payloads are built only when someone listens.
        """
        listening = self.events.has_subscribers
        if not listening and not self.event_log:
            return
        if callable(data):
            data = data() if listening else {"total": len(self._runs.get(root_id or "", _NO_RUN).states)}
        event = Event(kind, task_id, root_id, status, progress, data=data or {}, name=name)
        if self.event_log:
            self.writer.log_event(event)
        if listening:
            self.events.publish(event)

    def _blocked(self, s: _TaskState, seconds: float) -> None:
        """An executor held the event loop for ``seconds`` without yielding: say which one."""
        self._emit(EventType.EXECUTOR, s.task.id, s.run.root_id, s.status, s.task.progress,
                   {"type": "blocked", "seconds": round(seconds, 3),
                    "message": f"task {s.task.name!r} blocked the event loop for {seconds:.2f} s "
                               f"(time.sleep or CPU work in an async executor?); views and other tasks "
                               f"froze meanwhile"}, s.task.name)

    def _executor_event(self, s: _TaskState, item: Any) -> None:
        if not isinstance(item, dict):
            item = {"type": "message", "data": item}
        kind = item.get("type")
        payload = item.get("data") if isinstance(item.get("data"), dict) else {}
        if kind == "progress":
            raw = payload.get("progress", item.get("progress"))
            try:
                progress = min(1.0, max(0.0, float(raw)))
            except (TypeError, ValueError):
                progress = None
            if progress is not None and s.status == IN_PROGRESS:
                set_committed_value(s.task, "progress", progress)
                self.writer.mark(s.task.id, {"progress": progress})
            self._emit(EventType.TASK_PROGRESS, s.task.id, s.run.root_id, s.status, s.task.progress,
                       dict(payload) or dict(item), s.task.name)
        else:
            self._emit(EventType.EXECUTOR, s.task.id, s.run.root_id, s.status, s.task.progress,
                       dict(item), s.task.name)

    async def _save_to_storages(self, s: _TaskState) -> None:
        for storage in s.run.storages:
            try:
                await storage.save_task(s.task)
            except Exception as exc:
                self._report_hook_error(s.run, f"storage {getattr(storage, 'id', storage)!r}", exc, s.task.id)

    async def _safe_hook(self, hook: Callable[..., Any], run: _TreeRun, *args: Any) -> None:
        try:
            await call_hook(hook, *args)
        except Exception as exc:
            task_id = getattr(args[0], "id", None) if args else None
            self._report_hook_error(run, f"hook {hook_label(hook)}", exc, task_id)

    def _report_hook_error(self, run: _TreeRun, what: str, exc: Exception, task_id: str | None) -> None:
        logger.warning("apflow_nb: %s raised %s: %s (the task's outcome stands)", what, type(exc).__name__, exc)
        self._emit(EventType.HOOK_ERROR, task_id, run.root_id, None, None,
                   {"source": what, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})

    # -- finishing ---------------------------------------------------------------------------
    async def _finish_tree(self, run: _TreeRun) -> None:
        self.writer.flush()
        status = run.root.tree_status
        counts: dict[str, int] = {}
        for s in run.states.values():
            counts[s.status] = counts.get(s.status, 0) + 1
        self._emit(EventType.TREE_FINISHED, run.root_id, run.root_id, status, 1.0,
                   {"counts": counts, "duration_s": time.time() - run.started_at}, run.root.task.name)
        event = "on_tree_completed" if status == COMPLETED else "on_tree_failed"
        for hook in get_hooks("tree", event):
            await self._safe_hook(hook, run, run.root.task, status)
        await self.events.flush(timeout=0.2)

    def _abort_tree(self, run: _TreeRun, reason: str) -> None:
        """Synchronous teardown on interrupt: every unfinished task ends cancelled, the store is written."""
        for s in run.states.values():
            if s.status in FINAL:
                continue
            if s.aio_task is not None and not s.aio_task.done():
                s.cancel_requested = True
                s.aio_task.cancel()
            self._finalize(s, CANCELLED, {"status": CANCELLED, "message": reason}, None)
        self._ready = [item for item in self._ready if item[2].run is not run]
        heapq.heapify(self._ready)
        self._emit(EventType.TREE_FINISHED, run.root_id, run.root_id, CANCELLED, None,
                   {"reason": reason}, run.root.task.name)
        try:
            self.writer.flush()
        except Exception:
            logger.exception("apflow_nb: writing cancelled tasks failed")

    # -- cancellation ------------------------------------------------------------------------
    def _grace(self, grace_period: float | None) -> float:
        return self.cancel_grace_period if grace_period is None else grace_period

    async def _cancel_state(self, s: _TaskState, reason: str, grace_period: float | None) -> dict[str, Any]:
        if s.status in FINAL:
            return {"task_id": s.task.id, "status": s.status, "message": "already finished"}
        if not s.started:
            self._finish_unstarted(s, CANCELLED, reason)
            return {"task_id": s.task.id, "status": s.status, "message": reason}
        if s.cancel_requested:  # a cancel is already under way: wait for it
            if s.aio_task is not None:
                await asyncio.wait({s.aio_task}, timeout=self._grace(grace_period) + 1)
            return {"task_id": s.task.id, "status": s.status, "message": reason}
        s.cancel_requested = True
        if s.context is not None:
            s.context.cancel_requested.set()
        grace = self._grace(grace_period)
        deadline = time.monotonic() + grace
        executor = s.executor
        cancel = getattr(executor, "cancel", None)
        if cancel is not None:
            try:
                out = cancel()
                if inspect.isawaitable(out):
                    await asyncio.wait_for(out, timeout=grace)
            except asyncio.TimeoutError:
                pass
            except Exception as exc:
                self._report_hook_error(s.run, f"cancel() of executor {type(executor).__name__}", exc, s.task.id)
        aio = s.aio_task
        if aio is not None and not aio.done():
            await asyncio.wait({aio}, timeout=max(0.0, deadline - time.monotonic()))
            if not aio.done():
                s.forced = True
                aio.cancel()
                await asyncio.wait({aio}, timeout=1.0)
        if s.status not in FINAL:  # the executor swallowed the cancellation
            self._finalize(s, CANCELLED, {"status": CANCELLED, "message": reason}, None)
        return {"task_id": s.task.id, "status": s.status, "message": reason}

    async def _cancel_stored(self, task_id: str, reason: str) -> dict[str, Any]:
        task = self.task_repository.get_task(task_id)
        if str(task.status) in FINAL:
            return {"task_id": task_id, "status": str(task.status), "message": "already finished"}
        now = utcnow()
        values = {"status": CANCELLED, "completed_at": now, "updated_at": now,
                  "result": {"status": CANCELLED, "message": reason}}
        self._apply(task, values)
        self.writer.mark(task_id, values)
        self.writer.flush()
        self._emit(EventType.TASK_CANCELLED, task_id, task.root_id, CANCELLED, task.progress,
                   {"message": reason}, task.name)
        return {"task_id": task_id, "status": CANCELLED, "message": reason}


def cancel_running(task_or_root_id: str) -> "asyncio.Task[Any] | None":
    """Schedule the cancel of a running tree (by its root id) or task, whichever manager runs it;
    None when nothing with that id runs in this process. Call it on the loop's thread."""
    run = _ACTIVE.get(task_or_root_id)
    if run is None:
        return None
    return run.manager.request_cancel(task_or_root_id)


def _make_runner(runner: Any, db: Session) -> Any:
    """None stays None (in-process); a Dask client or address becomes a DaskRunner."""
    if runner is None or isinstance(runner, LocalRunner):
        return None
    is_dask_client = type(runner).__module__.split(".")[0] == "distributed"
    if isinstance(runner, str) or is_dask_client or not isinstance(runner, Runner):
        from apflow_nb.distributed import DaskRunner

        runner = DaskRunner(runner)
    check = getattr(runner, "check_store", None)
    if check is not None:
        check(str(db.get_bind().url))
    return runner


BLOCK_THRESHOLD = 0.2  # seconds an executor may hold the loop before it is reported


class _BlockWatch:
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


class _NoRun:
    states: dict[str, Any] = {}


_NO_RUN = _NoRun()


_json_problem = json_problem
