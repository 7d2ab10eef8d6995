"""``events()``: the store's append-only event log as a DataFrame."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import String, and_, select, type_coerce

from apflow_nb.analysis.flatten import decode
from apflow_nb.analysis.history import _as_list, _as_utc
from apflow_nb.analysis.stores import EVENTS, reflect, resolve_engine

EVENT_COLUMNS = ["event_id", "event_type", "task_id", "root_id", "name", "status", "progress", "timestamp", "payload"]


def events(store: Any = None, *, root_id: str | None = None, task_id: str | None = None,
           types: str | Iterable[str] | None = None, since: datetime | str | None = None,
           until: datetime | str | None = None, limit: int | None = None) -> Any:
    """The event log (``apflow_task_events``), oldest first: event_type, task_id, root_id, name,
    status, progress, timestamp (UTC) and the payload dict. Filters run in SQL; a task's progress
    events were coalesced per write batch when they were recorded."""
    import pandas as pd

    engine = resolve_engine(store)
    table = reflect(engine, EVENTS)
    if table is None:
        return _frame(pd, [])
    c = table.c
    query = select(c.id, c.event_type, c.task_id, c.root_id, c.name, c.status, c.progress,
                   type_coerce(c.timestamp, String).label("timestamp"), type_coerce(c.payload, String).label("payload"))
    conditions = []
    if root_id is not None:
        conditions.append(c.root_id == root_id)
    if task_id is not None:
        conditions.append(c.task_id == task_id)
    kinds = _as_list(types)
    if kinds:
        conditions.append(c.event_type.in_([str(getattr(k, "value", k)) for k in kinds]))
    sqlite = engine.dialect.name == "sqlite"
    for bound, op in ((since, "ge"), (until, "lt")):
        if bound is not None:
            value = _as_utc(bound)
            value = value.replace(tzinfo=None) if sqlite else value
            conditions.append(c.timestamp >= value if op == "ge" else c.timestamp < value)
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(c.id)
    if limit is not None:
        query = query.limit(int(limit))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return _frame(pd, rows)


def _frame(pd: Any, rows: list[Any]) -> Any:
    frame = pd.DataFrame({
        "event_id": pd.array([r.id for r in rows], dtype="int64"),
        "event_type": [r.event_type for r in rows],
        "task_id": [r.task_id for r in rows],
        "root_id": [r.root_id for r in rows],
        "name": [r.name for r in rows],
        "status": [r.status for r in rows],
        "progress": pd.array([r.progress for r in rows], dtype="float64"),
        "timestamp": pd.to_datetime([r.timestamp for r in rows], utc=True, format="ISO8601") if rows
        else pd.to_datetime([], utc=True),
        "payload": [decode(r.payload) for r in rows],
    }, columns=EVENT_COLUMNS)
    for col in ("event_type", "task_id", "root_id", "name", "status", "payload"):
        frame[col] = frame[col].astype("object")
    return frame
