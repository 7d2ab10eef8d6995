"""Planning a tree run: the checks before anything is written, which tasks re-run, and each
task's bookkeeping (what it waits for, who waits for it).

Nothing here touches the store or the loop: ``plan_run`` turns a TaskTreeNode into a TreeRun
whose TaskStates the scheduler and the task runs then drive.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, AbstractSet, Any, Sequence

from apflow_nb.core.errors import TreeAlreadyRunningError
from apflow_nb.core.storage.task_fields import normalize_dependencies
from apflow_nb.core.tree_check import check_dependencies, check_unique
from apflow_nb.core.types import COMPLETED, PENDING, TaskTreeNode

if TYPE_CHECKING:
    from apflow_nb.core.execution.runner import ExecutionContext

# task id -> the run that owns it, across every TaskManager of the process
ACTIVE: dict[str, "TreeRun"] = {}


NO_DEPS: tuple[dict[str, Any], ...] = ()  # the dependencies of every task that has none (read, never changed)


class TaskState:
    """One task's bookkeeping during one run."""

    __slots__ = ("task", "run", "id", "key", "name", "priority", "progress", "deps", "dependents", "waiting",
                 "status", "aio_task", "executor", "cancel_requested", "started", "holds_slot", "seq", "context",
                 "entry", "executor_id", "policy", "attempts", "wakeup", "cached_from", "prepared")

    def __init__(self, task: Any, run: "TreeRun", deps: Sequence[dict[str, Any]]):
        self.task = task
        self.run = run
        # read once: these do not change during a run (progress is kept here as it changes)
        self.id: str = task.id
        self.name: str = task.name
        self.key: str = getattr(task, "key", None) or self.id
        self.priority: int | None = task.priority
        self.progress: float = task.progress or 0.0
        self.deps = deps
        self.dependents: Sequence[tuple[TaskState, bool]] = ()  # (dependent, is it required); a list once any
        self.waiting = 0
        self.status = str(task.status)
        self.aio_task: asyncio.Task[Any] | None = None
        self.executor: Any = None
        self.cancel_requested = False
        self.started = False
        self.holds_slot = False
        self.seq = 0
        self.context: ExecutionContext | None = None
        self.entry: Any = None  # the registry entry, executor id and run policy, found when the run starts
        self.executor_id: str = ""
        self.policy: Any = None
        self.attempts = 0
        self.cached_from: str | None = None
        self.prepared: tuple[Any, ...] | None = None  # (executor, inputs, validated, cache key, inputs changed) of a miss
        self.wakeup: asyncio.Future[None] | None = None  # resolved to end a wait for the next attempt

    def is_cancel_requested(self) -> bool:
        """What the executor's ``cancellation_checker`` answers."""
        return self.cancel_requested


class TreeRun:
    """One call of ``distribute_task_tree``: its tasks' states and how many are unfinished."""

    def __init__(self, manager: Any, root: TaskTreeNode):
        self.manager = manager
        self.root = root
        self.root_id: str = root.task.id
        self.states: dict[str, TaskState] = {}
        self.unfinished = 0
        self.done: asyncio.Future[None] | None = None
        self.side_tasks: set[asyncio.Task[Any]] = set()
        self.results: dict[str, Any] = {}  # results of completed tasks that have dependents (merged into inputs)
        self.started_at = time.time()
        self.storages: list[Any] = []
        self.cache_index: dict[str, Any] | None = None  # key -> (result, task id) of the run's executors
        self.class_facts: dict[type, Any] = {}  # executor class -> its secret paths, when fixed (task_run)
        self.pre_hooks: list[Any] = []  # hooks and the writer are taken when the run starts
        self.post_hooks: list[Any] = []
        self.writer: Any = None
        self.started: asyncio.Event | None = None  # set once the run started (or could not start)
        self.aborted = False  # the run could not start (another process holds its lease)

    def status(self) -> str:
        """The tree's outcome now: failed if any task failed, else cancelled, in_progress, pending, completed."""
        seen = {s.status for s in self.states.values()}
        for status in ("failed", "cancelled", "in_progress", "pending"):
            if status in seen:
                return status
        return COMPLETED

    def counts(self) -> dict[str, int]:
        """How many tasks are in each status now."""
        out: dict[str, int] = {}
        for s in self.states.values():
            out[s.status] = out.get(s.status, 0) + 1
        return out


def plan_run(manager: Any, root: TaskTreeNode) -> TreeRun:
    """Check the tree and plan its run; raises a named error (nothing written) when it cannot run.

    Completed tasks keep their results; every other task, and whatever depends on it, runs again. Call it with
    the collector paused (``gc_paused``): a large plan allocates an object or two per task.
    """
    tasks = [n.task for n in root.walk()]
    check_unique((t.id for t in tasks), where=f"the tree of {root.task.id!r}")
    for t in tasks:
        if t.id in ACTIVE:
            raise TreeAlreadyRunningError(
                f"task {getattr(t, 'key', None) or t.id!r} ({t.id}) is already running in this process; "
                f"await that run (or cancel it) before starting the tree again.")
    run = TreeRun(manager, root)
    states = run.states
    for t in tasks:
        deps = t.dependencies
        s = TaskState(t, run, normalize_dependencies(deps, where="task dependencies") if deps else NO_DEPS)
        states[s.id] = s
    check_dependencies({tid: [d["id"] for d in s.deps] if s.deps else () for tid, s in states.items()},
                       {tid: s.key for tid, s in states.items()})
    for s in states.values():
        for dep in s.deps:
            upstream = states[dep["id"]]
            if not upstream.dependents:
                upstream.dependents = []  # most tasks have none: they share the empty tuple
            upstream.dependents.append((s, dep.get("required", True)))  # type: ignore[union-attr]
    rerun = _to_run(states)
    for tid, s in states.items():
        if tid in rerun:
            s.status = PENDING
            s.progress = 0.0
        elif s.dependents:  # a completed dependency of a task that runs again: its result is merged
            run.results[tid] = s.task.result
    run.unfinished = len(rerun)
    return run


def _to_run(states: dict[str, TaskState]) -> AbstractSet[str]:
    """The ids of the tasks that run: every task not completed, and whatever depends on one (all of them, at
    once, when no task is completed: a new tree)."""
    stack = [s for s in states.values() if s.status != COMPLETED]
    if len(stack) == len(states):
        return states.keys()
    rerun: set[str] = set()
    while stack:
        s = stack.pop()
        if s.id not in rerun:
            rerun.add(s.id)
            stack.extend(d for d, _ in s.dependents)
    return rerun


def describe(run: TreeRun) -> list[dict[str, Any]]:
    """The tree's tasks in tree order, as the ``tree_started`` event lists them."""
    from apflow_nb.core.types import executor_id_of

    out = []
    for node, depth in run.root.walk_with_depth():
        t = node.task
        s = run.states[t.id]
        out.append({"id": t.id, "key": s.key, "name": t.name, "depth": depth,
                    "parent_id": node.parent.task.id if node.parent is not None else None,
                    "status": s.status, "executor": executor_id_of(t), "priority": t.priority,
                    "dependencies": [d["id"] for d in s.deps], "progress": 1.0 if s.status == COMPLETED else 0.0})
    return out
