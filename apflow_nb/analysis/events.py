"""``events()``: the store's append-only event log as a DataFrame."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from apflow_nb.analysis import checks, query as q
from apflow_nb.core.gc_pause import gc_paused
from apflow_nb.analysis.stores import EVENTS, resolve_engine, table_of


def events(store: Any = None, *, root_id: str | None = None, task_id: str | None = None,
           types: str | Iterable[str] | None = None, since: datetime | str | None = None,
           until: datetime | str | None = None, limit: int | None = None) -> Any:
    """The event log (table ``apflow_task_events``) in the order it was written, oldest first.

    Columns: event_id, event_type, task_id, root_id, name, status, progress, timestamp
    (``datetime64[us, UTC]``) and payload (a dict or None). Filters run in SQL: ``root_id``,
    ``task_id``, ``types`` (one event type or several, e.g. ``"task_failed"`` or
    ``EventType.TASK_FAILED``), ``since`` <= timestamp < ``until``; ``limit`` keeps the first
    events. A bad argument is a FilterError naming it. A task's progress events were coalesced per write batch when they were recorded.
    A store without an event log (an original aipartnerupflow store) gives an empty frame.
    """
    from apflow_nb.core.events import EventType

    f = "events"
    root_id = checks.one_text(f, "root_id", root_id)
    task_id = checks.one_text(f, "task_id", task_id)
    kinds = checks.texts(f, "types", types, "an event type", [t.value for t in EventType])
    since, until = checks.moment(f, "since", since), checks.moment(f, "until", until)
    limit = checks.count(f, "limit", limit)
    with gc_paused():
        return _events(store, root_id=root_id, task_id=task_id, types=kinds, since=since, until=until, limit=limit)


def _events(store: Any, *, root_id: str | None, task_id: str | None, types: Any, since: Any, until: Any,
            limit: int | None) -> Any:
    from apflow_nb.analysis import frame as f
    from apflow_nb.analysis.flatten import decode_all

    engine = resolve_engine(store)
    if engine is None:
        return f.events_frame({k: [] for k in f.EVENT_COLUMNS})
    with engine.connect() as conn:
        tbl = table_of(conn, EVENTS)
        if tbl is None:
            return f.events_frame({k: [] for k in f.EVENT_COLUMNS})
        stmt = q.event_query(engine, tbl, root_id=root_id, task_id=task_id, types=types, since=since,
                             until=until).order_by(tbl.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        result = conn.execute(stmt)
        keys = list(result.keys())
        rows = result.cursor.fetchall() if result.cursor is not None else result.all()
        result.close()
    cols = dict(zip(keys, (list(c) for c in zip(*rows)))) if rows else {k: [] for k in keys}
    cols["payload"] = decode_all(cols["payload"])
    return f.events_frame(cols)
