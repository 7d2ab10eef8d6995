"""Reading a store without changing it: a read-only engine, a stored tree, the event log by event id.

What another process uses to follow a run (``apflow_nb.watch``, ``apflow-nb watch``): it never
writes. A SQLite file is opened read-only (``mode=ro``; no journal-mode switch, no schema created),
a PostgreSQL server with ``default_transaction_read_only``. The event log is read incrementally,
by event id. On PostgreSQL ids are handed out when rows are inserted, not when they commit, so a
transaction holding a lower id may commit after a higher one: the reader keeps reading back
``settle`` seconds' worth of ids and drops those it has seen, so a late commit is never skipped.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, or_, select
from sqlalchemy.pool import QueuePool

from apflow_nb.core.errors import StoreNotFoundError, TaskNotFoundError
from apflow_nb.core.events import Event, EventType
from apflow_nb.core.storage.sqlalchemy.models import TaskModel, task_events
from apflow_nb.core.types import TaskTreeNode

PG_SETTLE = 2.0  # seconds a PostgreSQL event id stays re-readable (a lower id may still commit meanwhile)
TREE_COLUMNS = ("id", "key", "parent_id", "root_id", "name", "status", "progress", "error", "params", "schemas",
                "priority", "dependencies", "user_id", "created_at", "started_at", "completed_at")

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def reader_engine(url: str | None = None) -> Engine:
    """An engine that only reads ``url`` (default: the default store); StoreNotFoundError when a
    SQLite file does not exist (reading never creates a store)."""
    from sqlalchemy.engine import make_url

    from apflow_nb.core.storage.session import default_database_url, get_engine

    url = url or default_database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            path = Path(parsed.database).expanduser().resolve()
            if not path.is_file():
                raise StoreNotFoundError(f"there is no store at {path} (the SQLite file does not exist); check the "
                                         f"store URL or APFLOW_NB_DATABASE_URL")
            engine = create_engine("sqlite://", creator=lambda: _sqlite_read_only(path), poolclass=QueuePool)
            event.listen(engine, "connect", _sqlite_reader_pragmas)
        elif backend == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine = create_engine(parsed, pool_pre_ping=True,
                                   connect_args={"options": "-c default_transaction_read_only=on"})
        else:  # in-memory SQLite (this process's own store) and other databases: the shared engine
            return get_engine(url)
        _engines[url] = engine
        return engine


def _sqlite_read_only(path: Path) -> Any:
    import sqlite3

    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False, timeout=30)


def _sqlite_reader_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout = 30000")
    cur.execute("PRAGMA query_only = ON")
    cur.close()


def dispose_readers() -> None:
    """Close every read-only engine (tests, and processes switching stores)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def root_of(engine: Engine, task_id: str) -> str:
    """The root id of the run ``task_id`` belongs to (a root's own id); TaskNotFoundError when unknown."""
    c = TaskModel.__table__.c
    with engine.connect() as conn:
        row = conn.execute(select(c.id, c.root_id, c.parent_id).where(c.id == task_id)).first()
        if row is None:
            raise TaskNotFoundError(f"no task with id {task_id!r} in the store; apflow_nb.history() (or "
                                    f"`apflow-nb history`) lists the stored ones")
        if row.root_id:
            return row.root_id
        seen = {row.id}
        while row.parent_id and row.parent_id not in seen:  # rows stored before root ids existed
            parent = conn.execute(select(c.id, c.root_id, c.parent_id).where(c.id == row.parent_id)).first()
            if parent is None:
                break
            row = parent
            seen.add(row.id)
        return row.id


def read_tree(engine: Engine, root_id: str) -> TaskTreeNode:
    """The stored tree of a run, read in one query (children in creation order); rows are read-only."""
    c = TaskModel.__table__.c
    with engine.connect() as conn:
        rows = conn.execute(select(*(c[name] for name in TREE_COLUMNS))
                            .where(or_(c.root_id == root_id, c.id == root_id)).order_by(c.created_at)).all()
    nodes = {r.id: TaskTreeNode(r) for r in rows}
    if root_id not in nodes:
        raise TaskNotFoundError(f"no task with id {root_id!r} in the store")
    for r in rows:
        if r.id != root_id and r.parent_id in nodes:
            nodes[r.parent_id].add_child(nodes[r.id])
    return nodes[root_id]


def row_event(row: Any) -> Event | None:
    """An event log row as the Event the owner published (None for a type this version does not know)."""
    try:
        kind = EventType(row.event_type)
    except ValueError:
        return None
    return Event(kind, row.task_id, row.root_id, row.status, row.progress, timestamp=row.timestamp.timestamp(),
                 data=dict(row.payload) if isinstance(row.payload, dict) else {}, name=row.name)


class EventLogReader:
    """The events of one run in the store's event log, each once, in event-id order, as they commit."""

    def __init__(self, engine: Engine, root_id: str, after: int = 0):
        self.engine = engine
        self.root_id = root_id
        self.cursor = after  # every id <= cursor was read (or is older than the run we follow)
        self.settle = PG_SETTLE if engine.dialect.name == "postgresql" else 0.0
        self._recent: dict[int, float] = {}  # ids above the cursor already read -> when first read
        self.rows_read = 0

    def last_id(self) -> int:
        """The newest event id of this run now (start reading after it to skip the past)."""
        from sqlalchemy import func

        t = task_events.c
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(t.id)).where(t.root_id == self.root_id)).scalar() or 0

    def read(self) -> list[Event]:
        """The events committed since the last read, oldest id first."""
        t = task_events.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.id, t.event_type, t.task_id, t.root_id, t.name, t.status, t.progress,
                                       t.timestamp, t.payload)
                                .where(t.root_id == self.root_id, t.id > self.cursor).order_by(t.id)).all()
        self.rows_read += len(rows)
        now = time.monotonic()
        out: list[Event] = []
        for row in rows:
            if row.id in self._recent:
                continue
            self._recent[row.id] = now
            found = row_event(row)
            if found is not None:
                out.append(found)
        self._advance(now)
        return out

    def _advance(self, now: float) -> None:
        """Move the cursor past ids read more than ``settle`` seconds ago (all of them on SQLite,
        whose writers commit one at a time, in id order)."""
        settled = [i for i, seen in self._recent.items() if now - seen >= self.settle]
        if settled:
            self.cursor = max(self.cursor, max(settled))
            self._recent = {i: s for i, s in self._recent.items() if i > self.cursor}
