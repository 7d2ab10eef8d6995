"""RunState: the pure state of one run, built from the core's events (no drawing here).

Drawers (text, HTML, widget) read it; tests drive it with events and no frontend at all, as dask's
``diagnostics/progress.py`` keeps its state apart from its bars. Counts by status and the overall
progress are kept up to date on every event (O(1) each), so reading them for a redraw costs the
same for ten tasks or a hundred thousand; ``visible()`` picks the few hundred rows a view draws.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

from apflow_nb.core.events import Event, EventType

FINAL = ("completed", "failed", "cancelled")
STATUS_ORDER = ("pending", "in_progress", "completed", "failed", "cancelled")
ICONS = {"pending": "○", "in_progress": "◔", "completed": "✔", "failed": "✘", "cancelled": "⊘"}
COLORS = {"pending": "#9e9e9e", "in_progress": "#1565c0", "completed": "#2e7d32", "failed": "#c62828",
          "cancelled": "#616161"}


@dataclass
class TaskRow:
    """What a view shows for one task. Read it; RunState alone changes it (it keeps counts)."""

    id: str
    name: str
    parent_id: str | None = None
    key: str = ""  # the id the user wrote (the stored id may carry a run tag); set from id when empty
    depth: int = 0
    executor: str = ""
    status: str = "pending"
    progress: float = 0.0
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.id

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds run so far (or in all, once finished); None before it starts."""
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else (now or time.time())) - self.started

    @property
    def error_line(self) -> str:
        """The error's first line (``RuntimeError: boom``); the traceback follows it in ``error``."""
        return self.error.strip().splitlines()[0] if self.error and self.error.strip() else ""


#: ``visible()`` yields rows, and ints where that many rows in tree order are left out
Visible = list[Union[TaskRow, int]]


def _weight(status: str, progress: float) -> float:
    """A task's share of the overall progress: finished ones count fully, running and cancelled ones
    by the progress they reached (a cancelled run's bar stops where the work stopped)."""
    if status in ("completed", "failed"):
        return 1.0
    if status in ("in_progress", "cancelled"):
        return progress
    return 0.0


@dataclass
class RunState:
    """Task rows in tree order, counts by status, overall progress, the run's own status."""

    root_id: str
    rows: dict[str, TaskRow] = field(default_factory=dict)
    status: str = "pending"
    started: float | None = None
    ended: float | None = None
    finished: bool = False
    version: int = 0  # bumped on every change; drawers redraw when it moved
    events_seen: int = 0
    blocked: str | None = None  # a task that blocked the event loop, when one did
    error: str | None = None  # the run itself could not run (e.g. the tree is already running)
    _members: dict[str, dict[str, None]] = field(default_factory=dict, repr=False)  # status -> ids
    _partial: float = field(default=0.0, repr=False)  # sum of _weight over every row
    _index: dict[str, int] = field(default_factory=dict, repr=False)  # id -> position in tree order

    def __post_init__(self) -> None:
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
                          depth=depth, executor=executor_id_of(t), status=str(t.status),
                          progress=float(t.progress or 0.0), error=t.error)
            if t.started_at is not None:
                row.started = t.started_at.timestamp()
            if t.completed_at is not None and row.status in FINAL:
                row.ended = t.completed_at.timestamp()
            state._add(row)
        state.status = node.tree_status
        state.finished = state.status in FINAL and not state._members.get("pending") \
            and not state._members.get("in_progress")
        return state

    # -- keeping counts -------------------------------------------------------------------
    def _add(self, row: TaskRow) -> None:
        self._index[row.id] = len(self.rows)
        self.rows[row.id] = row
        self._members.setdefault(row.status, {})[row.id] = None
        self._partial += _weight(row.status, row.progress)

    def _set(self, row: TaskRow, status: str, progress: float) -> None:
        """Change a row's status and progress, keeping counts and the progress sum right."""
        self._partial += _weight(status, progress) - _weight(row.status, row.progress)
        if status != row.status:
            self._members[row.status].pop(row.id, None)
            self._members.setdefault(status, {})[row.id] = None
            row.status = status
        row.progress = progress

    def _recount(self) -> None:
        """Exact sums again (float additions drift; the final frame must say 100% exactly)."""
        self._partial = sum(_weight(r.status, r.progress) for r in self.rows.values())

    # -- feeding -------------------------------------------------------------------------
    def apply(self, event: Event) -> bool:
        """Update from one event; True when something visible changed."""
        self.events_seen += 1
        kind = event.type
        if kind is EventType.TASK_PROGRESS:  # by far the most frequent: first, and short
            row = self.rows.get(event.task_id)  # type: ignore[arg-type]
            if row is None or event.progress is None or row.status != "in_progress":
                return False
            self._partial += event.progress - row.progress
            row.progress = event.progress
        elif kind is EventType.TREE_STARTED:
            self.started = event.timestamp
            self.status = "in_progress"
            self.finished = False
            self.ended = None
            self.error = None
            for item in event.data.get("tasks", ()):
                row = self.rows.get(item["id"])
                if row is None:
                    row = TaskRow(id=item["id"], name=item["name"], key=item.get("key") or item["id"])
                    self._add(row)
                row.parent_id, row.depth = item.get("parent_id"), item.get("depth", 0)
                row.executor = item.get("executor", "")
                status = item.get("status", "pending")
                self._set(row, status, 1.0 if status == "completed" else 0.0)
                if status == "pending":
                    row.started = row.ended = None
                    row.error = row.message = None
            self._recount()
        elif kind is EventType.TREE_FINISHED:
            self.status = event.status or self.status
            self.ended = event.timestamp
            self.finished = True
            self._recount()
        else:
            row = self.rows.get(event.task_id or "")
            if row is None:
                return False
            if kind is EventType.TASK_STARTED:
                self._set(row, "in_progress", 0.0)
                row.started, row.ended, row.error = event.timestamp, None, None
            elif kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED):
                status = event.status or kind.value.replace("task_", "")
                self._set(row, status, 1.0 if status == "completed" else row.progress)
                row.ended = event.timestamp
                row.error = event.data.get("error") if status == "failed" else None
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
        self.version += 1
        return True

    def apply_all(self, events: Iterable[Event]) -> bool:
        changed = False
        for event in events:
            changed |= self.apply(event)
        return changed

    def fail(self, message: str) -> None:
        """The run could not run at all (its coroutine raised): show why, as a final state."""
        self.error = message
        self.status = "failed"
        self.finished = True
        self.ended = time.time()
        self.version += 1

    # -- reading -------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """Tasks per status, in a fixed order, zeros included."""
        out = dict.fromkeys(STATUS_ORDER, 0)
        for status, ids in self._members.items():
            out[status] = len(ids)
        return out

    def ids(self, status: str) -> list[str]:
        """Ids of the tasks now in ``status``, in the order they got there."""
        return list(self._members.get(status, ()))

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def done(self) -> int:
        """Tasks in a final state."""
        return sum(len(self._members.get(s, ())) for s in FINAL)

    @property
    def progress(self) -> float:
        """Overall progress 0..1: completed and failed tasks count fully, running and cancelled ones
        by the progress they reached (so a cancelled run's bar stops where the work stopped)."""
        if not self.rows:
            return 1.0 if self.finished else 0.0
        return max(0.0, min(1.0, self._partial / len(self.rows)))

    @property
    def errors(self) -> dict[str, str]:
        """Failed tasks' errors (first line and traceback), by task id, in the order they failed."""
        return {tid: self.rows[tid].error or "" for tid in self._members.get("failed", ())}

    def elapsed(self, now: float | None = None) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else (now or time.time())) - self.started

    def summary(self) -> str:
        """``in_progress · 12/30 done (2 failed) · 40% · 3.2 s``."""
        c = self.counts
        extra = ", ".join(f"{c[s]} {s}" for s in ("failed", "cancelled", "in_progress") if c.get(s))
        return (f"{self.status} · {self.done}/{self.total} done" + (f" ({extra})" if extra else "")
                + f" · {self.progress:.0%} · {self.elapsed():.1f} s")

    def visible(self, limit: int = 100, start: int | None = None) -> Visible:
        """The rows a view draws, in tree order, with an int where that many rows are left out.

        ``start=None`` (focus): every row when there are at most ``limit``; else failed and running
        tasks first, then cancelled ones, then the tree from its top, each with its ancestors so the
        indentation reads right. ``start=k``: the page of ``limit`` rows from position k.
        """
        rows = self.rows
        n = len(rows)
        if n <= limit and not start:
            return list(rows.values())
        if start is not None:
            start = max(0, min(start, max(0, n - 1)))
            order = list(rows.values())
            page: Visible = order[start:start + limit]
            return ([start] if start else []) + page + ([n - start - len(page)] if start + len(page) < n else [])
        picked: dict[str, None] = {}

        def take(task_id: str) -> bool:
            chain = []
            while task_id is not None and task_id not in picked and task_id in rows:
                chain.append(task_id)
                task_id = rows[task_id].parent_id  # type: ignore[assignment]
            if len(picked) + len(chain) > limit:
                return False
            picked.update(dict.fromkeys(chain))
            return True

        for status, share in (("failed", limit // 4), ("in_progress", limit // 2), ("cancelled", limit // 8)):
            budget = len(picked) + share
            for task_id in self._members.get(status, ()):
                if len(picked) >= budget or not take(task_id):
                    break
        for task_id in rows:
            if len(picked) >= limit:
                break
            take(task_id)
        index = self._index
        out: Visible = []
        last = -1
        for position, task_id in sorted((index[t], t) for t in picked):
            if position > last + 1:
                out.append(position - last - 1)
            out.append(rows[task_id])
            last = position
        if last < n - 1:
            out.append(n - 1 - last)
        return out
