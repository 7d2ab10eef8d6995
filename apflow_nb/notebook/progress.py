"""RunState: the pure state of one run, built from the core's events (no drawing here).

Drawers (text, HTML, widget) read it; tests can drive it with events and no frontend at all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from apflow_nb.core.events import Event, EventType

FINAL = ("completed", "failed", "cancelled")
STATUS_ORDER = ("pending", "in_progress", "completed", "failed", "cancelled")
ICONS = {"pending": "○", "in_progress": "◔", "completed": "✔", "failed": "✘", "cancelled": "⊘"}
COLORS = {"pending": "#9e9e9e", "in_progress": "#1565c0", "completed": "#2e7d32", "failed": "#c62828",
          "cancelled": "#616161"}


@dataclass
class TaskRow:
    """What a view shows for one task."""

    id: str
    name: str
    parent_id: str | None = None
    depth: int = 0
    executor: str = ""
    status: str = "pending"
    progress: float = 0.0
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    message: str | None = None

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds run so far (or in all, once finished); None before it starts."""
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else (now or time.time())) - self.started


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

    @classmethod
    def from_tree(cls, node: Any) -> "RunState":
        """The state of a stored TaskTreeNode, before (or without) any event."""
        from apflow_nb.core.execution.task_manager import executor_id_of

        state = cls(root_id=node.task.id)
        for n, depth in node.walk_with_depth():
            t = n.task
            row = TaskRow(id=t.id, name=t.name, parent_id=n.parent.task.id if n.parent else None, depth=depth,
                          executor=executor_id_of(t), status=str(t.status), progress=float(t.progress or 0.0),
                          error=t.error)
            if t.started_at is not None:
                row.started = t.started_at.timestamp()
            if t.completed_at is not None and row.status in FINAL:
                row.ended = t.completed_at.timestamp()
            state.rows[t.id] = row
        state.status = node.tree_status
        state.finished = state.status in FINAL and all(r.status in FINAL for r in state.rows.values())
        return state

    # -- feeding -------------------------------------------------------------------------
    def apply(self, event: Event) -> bool:
        """Update from one event; True when something visible changed."""
        self.events_seen += 1
        kind = event.type
        if kind is EventType.TREE_STARTED:
            self.started = event.timestamp
            self.status = "in_progress"
            self.finished = False
            self.ended = None
            for item in event.data.get("tasks", ()):
                row = self.rows.get(item["id"])
                if row is None:
                    row = self.rows[item["id"]] = TaskRow(id=item["id"], name=item["name"])
                row.parent_id, row.depth, row.executor = item.get("parent_id"), item.get("depth", 0), item.get("executor", "")
                row.status = item.get("status", "pending")
                row.progress = 1.0 if row.status == "completed" else 0.0
                if row.status == "pending":
                    row.started = row.ended = None
                    row.error = None
        elif kind is EventType.TREE_FINISHED:
            self.status = event.status or self.status
            self.ended = event.timestamp
            self.finished = True
        else:
            row = self.rows.get(event.task_id or "")
            if row is None:
                return False
            if kind is EventType.TASK_STARTED:
                row.status, row.started, row.ended, row.progress, row.error = "in_progress", event.timestamp, None, 0.0, None
            elif kind is EventType.TASK_PROGRESS:
                if event.progress is None or row.status != "in_progress":
                    return False
                row.progress = float(event.progress)
            elif kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED):
                row.status = event.status or kind.value.replace("task_", "")
                row.ended = event.timestamp
                row.progress = 1.0 if row.status == "completed" else row.progress
                row.error = event.data.get("error") if row.status == "failed" else None
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

    # -- reading -------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """Tasks per status, in a fixed order, zeros included."""
        out = dict.fromkeys(STATUS_ORDER, 0)
        for row in self.rows.values():
            out[row.status] = out.get(row.status, 0) + 1
        return out

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def done(self) -> int:
        """Tasks in a final state."""
        return sum(1 for r in self.rows.values() if r.status in FINAL)

    @property
    def progress(self) -> float:
        """Overall progress 0..1: completed and failed tasks count fully, running and cancelled ones
        by the progress they reached (so a cancelled run's bar stops where the work stopped)."""
        if not self.rows:
            return 1.0 if self.finished else 0.0
        total = 0.0
        for row in self.rows.values():
            if row.status in ("completed", "failed"):
                total += 1.0
            elif row.status in ("in_progress", "cancelled"):
                total += row.progress
        return total / len(self.rows)

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
