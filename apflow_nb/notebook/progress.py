"""RunState: the pure state of one run, built from the core's events (no drawing here).

Drawers (text, HTML, widget) read it through a frame (``views.frame``); tests drive it with events
and no frontend at all, as dask's ``diagnostics/progress.py`` keeps its state apart from its bars.
Counts by shown status, per executor group and the overall progress are kept up to date on every
event (O(1) each), so reading them for a redraw costs the same for ten tasks or a hundred thousand.

A task the engine never ran because a required dependency failed or was cancelled is stored
``failed``/``cancelled`` with an error type saying so; here it counts as ``skipped`` (with the
upstream key), apart from the tasks that really failed or were cancelled. Unknown statuses (a
shared store may hold anything) count as ``unknown``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from apflow_nb.core.events import Event, EventType
from apflow_nb.core.types import (
    CANCELLED, COMPLETED, DEPENDENCY_CANCELLED, DEPENDENCY_FAILED, FAILED, FINAL_STATUSES, IN_PROGRESS, PENDING,
)
from apflow_nb.analysis.palette import CACHED, SHOWN, SKIPPED, UNKNOWN, known

FINAL = tuple(sorted(FINAL_STATUSES))
SKIP_TYPES = (DEPENDENCY_FAILED, DEPENDENCY_CANCELLED)


@dataclass
class TaskRow:
    """What a view shows for one task. Read it; RunState alone changes it (it keeps counts)."""

    id: str
    name: str
    parent_id: str | None = None
    key: str = ""  # the id the user wrote (the stored id may carry a run tag); set from id when empty
    depth: int = 0
    executor: str = ""
    status: str = PENDING
    progress: float = 0.0
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    message: str | None = None
    upstream: str | None = None  # skipped: the key of the required dependency that failed or was cancelled
    cached_from: str | None = None  # completed from the cache: the task whose result it reused
    cancel_asked: float | None = None  # when this view asked to cancel it (cleared once it ends)

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.id
        self.status = known(self.status)

    @property
    def bucket(self) -> str:
        """The shown status it is counted under: ``skipped`` or its (known) stored status."""
        if self.upstream is not None:
            return SKIPPED
        return CACHED if self.cached_from is not None and self.status == COMPLETED else self.status

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds run so far (or in all, once finished); None before it starts."""
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else (now or time.time())) - self.started

    @property
    def error_line(self) -> str:
        """The error's first line (``RuntimeError: boom``); the traceback follows it in ``error``."""
        return self.error.strip().splitlines()[0] if self.error and self.error.strip() else ""


@dataclass
class Group:
    """Counts of one executor's tasks: total, per shown status, and their summed progress."""

    name: str
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    partial: dict[str, float] = field(default_factory=dict)  # shown status -> summed progress weight

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in (COMPLETED, CACHED, FAILED, SKIPPED, CANCELLED))

    def share(self, bucket: str) -> float:
        """The part (0..1) of this group's bar that its tasks under ``bucket`` fill."""
        return max(0.0, self.partial.get(bucket, 0.0) / self.total) if self.total else 0.0

    @property
    def progress(self) -> float:
        return max(0.0, min(1.0, sum(self.partial.values()) / self.total)) if self.total else 0.0


def _weight(status: str, progress: float) -> float:
    """A task's share of the overall progress: finished ones count fully, running and cancelled ones
    by the progress they reached (a cancelled run's bar stops where the work stopped)."""
    if status in (COMPLETED, FAILED):
        return 1.0
    if status in (IN_PROGRESS, CANCELLED):
        return progress
    return 0.0


def _upstream(data: Any) -> str | None:
    """The upstream key when a final event's (or stored result's) data says the task was skipped."""
    if isinstance(data, dict) and data.get("error_type") in SKIP_TYPES:
        return str(data.get("upstream") or "?")
    return None


def _result_of(task: Any) -> Any:
    """A stored task's result, or None when it was read without one (a light read of the task table)."""
    try:
        return task.result
    except AttributeError:  # also SQLAlchemy's NoSuchColumnError for a row read without that column
        return None


@dataclass
class RunState:
    """Task rows in tree order, counts by shown status and by executor, overall progress, the run's status."""

    root_id: str
    rows: dict[str, TaskRow] = field(default_factory=dict)
    status: str = PENDING
    started: float | None = None
    ended: float | None = None
    finished: bool = False
    version: int = 0  # bumped on every change; drawers redraw when it moved
    events_seen: int = 0
    blocked: str | None = None  # a task that blocked the event loop, when one did
    error: str | None = None  # the run itself could not run (e.g. the tree is already running)
    grace: float = 3.0  # the cancel grace period the views announce ("cancelling… (grace 3 s)")
    cancel_run_asked: bool = False
    _members: dict[str, dict[str, None]] = field(default_factory=dict, repr=False)  # bucket -> ids
    _partial: dict[str, float] = field(default_factory=dict, repr=False)  # bucket -> sum of _weight
    _groups: dict[str, Group] = field(default_factory=dict, repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False)  # id -> position in tree order

    def __post_init__(self) -> None:
        self.status = known(self.status)
        rows, self.rows = self.rows, {}
        for row in rows.values():
            self._add(row)

    @classmethod
    def from_tree(cls, node: Any) -> "RunState":
        """The state of a stored TaskTreeNode, before (or without) any event."""
        from apflow_nb.core.types import executor_id_of, key_of

        state = cls(root_id=node.task.id)
        for n, depth in node.walk_with_depth():
            t = n.task
            parent = n.parent  # compared with None: a TaskTreeNode's truth is its len(), a walk of its tree
            row = TaskRow(id=t.id, name=t.name, key=key_of(t), parent_id=parent.task.id if parent is not None else None,
                          depth=depth, executor=executor_id_of(t) or "", status=str(t.status),
                          progress=float(t.progress or 0.0), error=t.error)
            if row.status in FINAL_STATUSES:
                result = _result_of(t)
                row.upstream = _upstream(result)
                row.cached_from = getattr(t, "cached_from", None)
                if isinstance(result, dict) and result.get("message"):
                    row.message = str(result["message"])
                if t.completed_at is not None:
                    row.ended = t.completed_at.timestamp()
            if t.started_at is not None:
                row.started = t.started_at.timestamp()
            state._add(row)
        state.status = known(node.tree_status)
        state.finished = state.status in FINAL_STATUSES and not state._members.get(PENDING) \
            and not state._members.get(IN_PROGRESS)
        return state

    # -- keeping counts -------------------------------------------------------------------
    def _count(self, row: TaskRow, sign: int) -> None:
        bucket, weight = row.bucket, _weight(row.status, row.progress)
        if sign > 0:
            self._members.setdefault(bucket, {})[row.id] = None
        else:
            self._members[bucket].pop(row.id, None)
        self._partial[bucket] = self._partial.get(bucket, 0.0) + sign * weight
        group = self._groups.get(row.executor)
        if group is None:
            group = self._groups[row.executor] = Group(row.executor)
        count = group.counts.get(bucket, 0) + sign
        if count:
            group.counts[bucket] = count
        else:
            group.counts.pop(bucket, None)
        group.partial[bucket] = group.partial.get(bucket, 0.0) + sign * weight
        group.total += sign

    def _add(self, row: TaskRow) -> None:
        self._index[row.id] = len(self.rows)
        self.rows[row.id] = row
        self._count(row, +1)

    def _set(self, row: TaskRow, status: str, progress: float, upstream: str | None = None,
             executor: str | None = None) -> None:
        """Change a row's status, progress, skip reason (and group), keeping every count right."""
        self._count(row, -1)
        row.status, row.progress, row.upstream = known(status), progress, upstream
        if executor is not None:
            row.executor = executor
        self._count(row, +1)

    def _recount(self) -> None:
        """Exact sums again (float additions drift; the final frame must say 100% exactly)."""
        self._partial = {b: 0.0 for b in self._partial}
        for group in self._groups.values():
            group.partial = {b: 0.0 for b in group.partial}
        for row in self.rows.values():
            weight = _weight(row.status, row.progress)
            self._partial[row.bucket] = self._partial.get(row.bucket, 0.0) + weight
            partial = self._groups[row.executor].partial
            partial[row.bucket] = partial.get(row.bucket, 0.0) + weight

    # -- feeding -------------------------------------------------------------------------
    def apply(self, event: Event) -> bool:
        """Update from one event; True when something visible changed."""
        self.events_seen += 1
        kind = event.type
        if kind is EventType.TASK_PROGRESS:  # by far the most frequent: first, and short
            row = self.rows.get(event.task_id)  # type: ignore[arg-type]
            if row is None or event.progress is None or row.status != IN_PROGRESS:
                return False
            delta = event.progress - row.progress
            self._partial[IN_PROGRESS] += delta
            self._groups[row.executor].partial[IN_PROGRESS] += delta
            row.progress = event.progress
        elif kind is EventType.TREE_STARTED:
            self._started(event)
        elif kind is EventType.TREE_FINISHED:
            self.status = known(event.status or self.status)
            self.ended = event.timestamp
            self.finished = True
            self._recount()
        elif not self._task_event(kind, event):
            return False
        self.version += 1
        return True

    def _started(self, event: Event) -> None:
        self.started = event.timestamp
        self.status = IN_PROGRESS
        self.finished = self.cancel_run_asked = False
        self.ended = self.error = None
        for item in event.data.get("tasks", ()):
            row = self.rows.get(item["id"])
            if row is None:
                row = TaskRow(id=item["id"], name=item["name"], key=item.get("key") or item["id"])
                self._add(row)
            row.parent_id, row.depth = item.get("parent_id"), item.get("depth", 0)
            status = known(item.get("status", PENDING))
            upstream = row.upstream if status in (FAILED, CANCELLED) else None
            self._set(row, status, 1.0 if status == COMPLETED else 0.0, upstream, item.get("executor", ""))
            if status == PENDING:
                row.started = row.ended = row.cancel_asked = row.cached_from = None
                row.error = row.message = None
        self._recount()

    def _task_event(self, kind: EventType, event: Event) -> bool:
        row = self.rows.get(event.task_id or "")
        if row is None:
            return False
        if kind is EventType.TASK_STARTED:
            self._set(row, IN_PROGRESS, 0.0)
            row.started, row.ended, row.error, row.cancel_asked = event.timestamp, None, None, None
        elif kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED):
            status = known(event.status or kind.value.replace("task_", ""))
            upstream = _upstream(event.data) if status in (FAILED, CANCELLED) else None
            self._count(row, -1)
            row.cached_from = event.data.get("cached_from") if status == COMPLETED else None
            self._count(row, +1)
            self._set(row, status, 1.0 if status == COMPLETED else row.progress, upstream)
            row.ended, row.cancel_asked = event.timestamp, None
            row.error = event.data.get("error") if status == FAILED else None
            row.message = event.data.get("message")
        elif kind is EventType.EXECUTOR:
            message = event.data.get("message")
            if not message:
                return False
            row.message = str(message)
            if event.data.get("type") == "blocked":
                self.blocked = str(message)
        else:
            return False
        return True

    def apply_all(self, events: Iterable[Event]) -> bool:
        """Apply events in order; True when any changed something visible."""
        changed = False
        for event in events:
            changed |= self.apply(event)
        return changed

    def ask_cancel(self, task_id: str | None = None) -> None:
        """Note that a cancel was asked (of one task, or of the whole run with None): running
        tasks show "cancelling…" until their final event arrives. The request itself goes to the core."""
        now = time.time()
        if task_id is None:
            self.cancel_run_asked = True
            targets = list(self._members.get(IN_PROGRESS, ()))
        else:
            targets = [task_id] if task_id in self._members.get(IN_PROGRESS, ()) else []
        for tid in targets:
            if self.rows[tid].cancel_asked is None:
                self.rows[tid].cancel_asked = now
        self.version += 1

    def fail(self, message: str) -> None:
        """The run could not run at all (its coroutine raised): show why, as a final state."""
        self.error = message
        self.status = FAILED
        self.finish()

    def finish(self) -> None:
        """The run is over although no ``tree_finished`` arrived (e.g. cancelled in the store before
        it started): its status follows from the tasks' own, by the core's rule."""
        if self.error is None:
            self.status = self.outcome
        self.finished = True
        self.ended = self.ended or time.time()
        self.version += 1

    # -- reading -------------------------------------------------------------------------
    @property
    def outcome(self) -> str:
        """The run's status as the tasks say it: failed if any failed, else cancelled if any was
        cancelled (or skipped), else in_progress or pending while work remains, else completed."""
        m = self._members
        for bucket, status in ((FAILED, FAILED), (CANCELLED, CANCELLED), (SKIPPED, CANCELLED),
                               (IN_PROGRESS, IN_PROGRESS), (PENDING, PENDING)):
            if m.get(bucket):
                return status
        return COMPLETED

    @property
    def counts(self) -> dict[str, int]:
        """Tasks per shown status (completed, failed, skipped, cancelled, in_progress, pending,
        unknown), zeros included: skipped tasks are not counted as failed or cancelled."""
        return {s: len(self._members.get(s, ())) for s in SHOWN}

    def ids(self, status: str) -> list[str]:
        """Ids of the tasks now counted under ``status`` (a shown status), in the order they got there."""
        return list(self._members.get(status, ()))

    def iter_ids(self, status: str) -> Iterator[str]:
        """Like ``ids`` without building a list (read the first few of a big run cheaply)."""
        return iter(self._members.get(status, ()))

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def done(self) -> int:
        """Tasks in a final state (skipped ones included)."""
        return sum(len(self._members.get(s, ())) for s in (COMPLETED, CACHED, FAILED, SKIPPED, CANCELLED))

    def share(self, bucket: str) -> float:
        """The part (0..1) of the overall bar that tasks under ``bucket`` fill."""
        return max(0.0, self._partial.get(bucket, 0.0) / len(self.rows)) if self.rows else 0.0

    @property
    def progress(self) -> float:
        """Overall progress 0..1: completed and failed tasks count fully, running and cancelled ones
        by the progress they reached (so a cancelled run's bar stops where the work stopped)."""
        if not self.rows:
            return 1.0 if self.finished else 0.0
        return max(0.0, min(1.0, sum(self._partial.values()) / len(self.rows)))

    @property
    def groups(self) -> list[Group]:
        """One Group per executor, in the order the tree first uses it."""
        return [g for g in self._groups.values() if g.total > 0]

    @property
    def errors(self) -> dict[str, str]:
        """Failed tasks' errors (first line and traceback), by task id, in the order they failed
        (skipped tasks are not here: they did not fail themselves)."""
        return {tid: self.rows[tid].error or "" for tid in self._members.get(FAILED, ())}

    def position(self, task_id: str) -> int:
        """The task's position in tree order."""
        return self._index[task_id]

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the run started (until it ended)."""
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else (now or time.time())) - self.started

    def summary(self) -> str:
        """``in_progress · 12/30 done (2 failed, 1 skipped) · 40% · 3.2 s``."""
        c = self.counts
        extra = ", ".join(f"{c[s]} {s}" for s in (CACHED, FAILED, SKIPPED, CANCELLED, IN_PROGRESS, UNKNOWN) if c.get(s))
        return (f"{self.status} · {self.done}/{self.total} done" + (f" ({extra})" if extra else "")
                + f" · {self.progress:.0%} · {self.elapsed():.1f} s")
