"""StoreFeed: the events of a run another process executes, read from the store's event log.

The spine of a watched run is the same as of a local one: Events applied to one pure RunState,
drawn by the same drawers. Only the source differs: instead of the in-process bus, the feed reads
``apflow_task_events`` incrementally by event id (``core.storage.reading.EventLogReader``), never
writing to the store. It starts from the task table (``RunState.from_tree`` of the stored tree)
and applies every event committed after the newest one it saw then.

Polling adapts: every ``FAST`` seconds while events arrive, slower by ``BACKOFF`` per quiet poll up
to ``SLOWEST`` (so an event reaches the view within about ``SLOWEST`` + the owner's flush interval,
50 ms, even after a quiet spell). The run's lease (``apflow_runs``) is checked every ``LEASE_EVERY``
seconds: a lease finished without a ``tree_finished`` event (an orphan recovery, a takeover) ends
the feed with the stored outcome, and an owner that is gone ends it with a note saying so.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from apflow_nb.core.events import Event, EventType
from apflow_nb.core.storage import runs
from apflow_nb.core.storage.reading import EventLogReader, read_tree
from apflow_nb.core.types import FINAL_STATUSES, executor_id_of, key_of
from apflow_nb.notebook.progress import RunState

FAST = 0.05  # seconds between polls while events arrive
SLOWEST = 0.2  # seconds between polls after a quiet spell
BACKOFF = 1.5  # each quiet poll waits this much longer than the last
LEASE_EVERY = 1.0  # seconds between looks at the run's lease


@dataclass
class PollSchedule:
    """Fast while events arrive, backing off (geometrically, bounded) while the run is quiet."""

    fast: float = FAST
    slowest: float = SLOWEST
    backoff: float = BACKOFF
    delay: float = FAST

    def next(self, got_events: bool) -> float:
        """Seconds to wait before the next poll, after a poll that did (or did not) find events."""
        self.delay = self.fast if got_events else min(self.slowest, self.delay * self.backoff)
        return self.delay


def tree_tasks(node: Any) -> list[dict[str, Any]]:
    """A stored tree's tasks in tree order, as a live ``tree_started`` event lists them."""
    out = []
    for n, depth in node.walk_with_depth():
        t = n.task
        out.append({"id": t.id, "key": key_of(t), "name": t.name, "depth": depth,
                    "parent_id": n.parent.task.id if n.parent is not None else None,
                    "status": str(t.status), "executor": executor_id_of(t)})
    return out


class StoreFeed:
    """One run's events from the store, for a view in another process. ``poll()`` blocks (call it
    from a worker thread); nothing here draws or writes."""

    def __init__(self, engine: Engine, root_id: str):
        self.engine = engine
        self.root_id = root_id
        self.reader = EventLogReader(engine, root_id)
        self.finished = False
        self.gone: str | None = None  # why the run ended without an outcome (its process is gone)
        self._lease_checked = 0.0

    def snapshot(self) -> RunState:
        """The run's state now, from the task table; events after it come from ``poll()``."""
        self.reader.cursor = self.reader.last_id()  # first the cursor: later events replay onto the tree
        node = read_tree(self.engine, self.root_id)
        state = RunState.from_tree(node)
        lease = self._lease()
        if lease is not None:
            state.started = lease.started_at.timestamp()
        running = lease is not None and lease.finished_at is None
        if running and runs.owner_gone(lease.owner, lease.heartbeat_at):
            self.gone = self._gone_note(lease.owner)
            running = False
        if running:
            state.status, state.finished, state.ended = "in_progress", False, None
        else:  # over (or never run, or nobody runs it any more): the final frame, at once
            self.finished = True
            state.finished = True
            state.ended = _ended(node, lease)
            if self.gone:
                state.fail(self.gone)
        self._lease_checked = time.monotonic()
        return state

    def poll(self) -> list[Event]:
        """The events committed since the last poll (with ``tree_started`` completed from the task
        table, which holds its task list); a ``tree_finished`` ends the feed."""
        events = self.reader.read()
        for i, event in enumerate(events):
            if event.type is EventType.TREE_STARTED and "tasks" not in event.data:
                events[i] = _with_tasks(event, read_tree(self.engine, self.root_id))
            elif event.type is EventType.TREE_FINISHED:
                self.finished = True
        if not self.finished and time.monotonic() - self._lease_checked >= LEASE_EVERY:
            events.extend(self._check_lease())
        return events

    def _check_lease(self) -> list[Event]:
        """The lease ended or its owner is gone, with no ``tree_finished`` logged: end the feed."""
        self._lease_checked = time.monotonic()
        lease = self._lease()
        if lease is not None and lease.finished_at is None and not runs.owner_gone(lease.owner, lease.heartbeat_at):
            return []
        late = self.reader.read()  # what the owner (or a recovery) wrote before letting go
        if any(e.type is EventType.TREE_FINISHED for e in late):
            self.finished = True
            return late
        self.finished = True
        if lease is not None and lease.finished_at is None:
            self.gone = self._gone_note(lease.owner)
            return late
        status = (lease.status if lease is not None and lease.status in FINAL_STATUSES
                  else read_tree(self.engine, self.root_id).tree_status)
        at = lease.finished_at.timestamp() if lease is not None and lease.finished_at else time.time()
        return late + [Event(EventType.TREE_FINISHED, self.root_id, self.root_id, status, 1.0, timestamp=at,
                             data={"reason": "the run's lease ended without a tree_finished event"})]

    def _lease(self) -> Any:
        try:
            return runs.lease_of(self.engine, self.root_id)
        except SQLAlchemyError:  # a store without the runs table (written by an older version)
            return None

    def _gone_note(self, owner: str) -> str:
        return (f"{runs.describe_owner(owner)}, which ran this tree, is gone; the next process that opens the "
                f"store marks its unfinished tasks failed (or cancel it: apflow_nb.cancel({self.root_id!r}))")


def _with_tasks(event: Event, node: Any) -> Event:
    data = dict(event.data, tasks=tree_tasks(node))
    return Event(event.type, event.task_id, event.root_id, event.status, event.progress, event.timestamp, data,
                 event.name)


def _ended(node: Any, lease: Any) -> float | None:
    if lease is not None and lease.finished_at is not None:
        return lease.finished_at.timestamp()
    done = [n.task.completed_at for n in node.walk() if n.task.completed_at is not None]
    return max(done).timestamp() if done else None
