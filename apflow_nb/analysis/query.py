"""The SQL behind history() and events(): every filter becomes a WHERE clause.

Values are selected in the form that is cheapest to turn into columns: JSON as text (decoded
later by orjson, not per value by the driver), timestamps as SQLite's text or as epoch
microseconds (PostgreSQL, DuckDB), and the executor computed in SQL. Results are read as plain
cursor tuples, skipping SQLAlchemy's per-value processing.
"""
from __future__ import annotations

import operator
from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import (JSON, BigInteger, Engine, Integer, String, Text, and_, cast, func, literal, or_, select,
                        type_coerce)

from apflow_nb.analysis import duckdb_compat
from apflow_nb.analysis.columns import STANDARD, TIMES  # noqa: F401 - STANDARD is used by history()


def as_list(value: Any) -> list[str] | None:
    """A filter value: one string, or several (any iterable; enums give their value)."""
    if value is None:
        return None
    if isinstance(value, str) or hasattr(value, "value"):
        value = [value]
    return [str(getattr(v, "value", v)) for v in value]


def check_limit(limit: Any) -> int | None:
    """``limit`` as an int (None: no limit); a negative or non-integer limit is a ValueError."""
    if limit is None:
        return None
    try:
        value = operator.index(limit)
    except TypeError:
        value = -1
    if isinstance(limit, bool) or value < 0:
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    return value


def as_utc(value: datetime | str | Any) -> datetime:
    """A bound for since/until as an aware UTC datetime (naive values and strings mean UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"since/until must be a datetime or an ISO 8601 string, not {type(value).__name__}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def time_column(engine: Engine, col: Any, name: str) -> Any:
    """Timestamps as SQLite's ISO text, or as epoch microseconds (integers convert to datetime64
    many times faster than the timezone-aware datetimes psycopg and duckdb would build)."""
    if duckdb_compat.is_duckdb(engine):
        return duckdb_compat.timestamp_expr(col).label(name)
    if engine.dialect.name == "postgresql":
        return cast(func.extract("epoch", col) * 1_000_000, BigInteger).label(name)
    return type_coerce(col, String).label(name)  # the driver's value, without SQLAlchemy's per-row processing


def json_column(engine: Engine, col: Any, name: str) -> Any:
    if engine.dialect.name == "postgresql":  # psycopg would json.loads every value itself
        return cast(col, Text).label(name)
    return type_coerce(col, String).label(name)


def number_column(engine: Engine, col: Any, name: str) -> Any:
    if duckdb_compat.is_duckdb(engine):
        return duckdb_compat.number_expr(col).label(name)
    return col.label(name)


def kind_of(type_: Any) -> str:
    """How a (custom) column's values become a frame column: json, time, bool, int, float, text or object."""
    from sqlalchemy import types as t

    if isinstance(type_, t.JSON):
        return "json"
    if isinstance(type_, (t.DateTime, t.Date)):
        return "time"
    if isinstance(type_, t.Boolean):
        return "bool"
    if isinstance(type_, t.Integer):
        return "int"
    if isinstance(type_, t.Numeric):  # Float is a Numeric
        return "float"
    if isinstance(type_, t.String):  # Text, VARCHAR, Enum...
        return "text"
    return "object"


def custom_column(engine: Engine, col: Any, kind: str) -> Any:
    if kind == "json":
        return json_column(engine, col, col.name)
    if kind == "time":
        return time_column(engine, col, col.name)
    if kind == "float":
        return number_column(engine, col, col.name)
    return col


def time_bound(engine: Engine, col: Any, bound: Any, op: str) -> Any:
    """``col >= bound`` / ``col < bound`` in the column's stored form."""
    value = as_utc(bound)
    if duckdb_compat.is_duckdb(engine):
        micros = round(value.timestamp() * 1_000_000)
        lhs, rhs = duckdb_compat.timestamp_expr(col), literal(micros, Integer)
    elif engine.dialect.name == "sqlite":  # stored as naive UTC text: compare with the same text form
        lhs, rhs = col, value.replace(tzinfo=None)
    else:
        lhs, rhs = col, value
    return lhs >= rhs if op == ">=" else lhs < rhs


def executor_column(c: Any) -> Any:
    """Which executor ran the task, as core's ``executor_id_of``: params.executor_id, else
    schemas.method, else the name (empty strings count as missing)."""
    by_params = func.nullif(type_coerce(c.params, JSON)["executor_id"].as_string(), "")
    by_method = func.nullif(type_coerce(c.schemas, JSON)["method"].as_string(), "")
    return func.coalesce(by_params, by_method, c.name)


def task_columns(engine: Engine, tbl: Any, custom: Iterable[tuple[str, str]] = (),
                 with_json: Iterable[str] = ("inputs", "result")) -> list[Any]:
    """What history() selects: the fixed columns, the executor (computed), times and JSON in their
    cheapest form, root_id when the store has it, and the custom columns ((name, kind) pairs)."""
    c = tbl.c
    key = func.coalesce(c.key, c.id) if "key" in c else c.id
    cols = [c.id, key.label("key"), c.parent_id, c.name, executor_column(c).label("executor"), c.status,
            c.priority, c.user_id, number_column(engine, c.progress, "progress"), c.error,
            c.attempts if "attempts" in c else literal(None, Integer).label("attempts"),
            c.cached_from if "cached_from" in c else literal(None, String).label("cached_from")]
    cols += [time_column(engine, c[n], n) for n in TIMES]
    cols += [json_column(engine, c[n], n) for n in with_json]
    if "root_id" in c:
        cols.append(c.root_id)
    cols += [custom_column(engine, c[name], kind) for name, kind in custom]
    return cols


def task_filters(engine: Engine, tbl: Any, *, status: Any = None, executor: Any = None, key: Any = None,
                 user_id: str | None = None, since: Any = None, until: Any = None) -> list[Any]:
    """The WHERE clauses of history()'s filters."""
    c = tbl.c
    where = []
    keys = as_list(key)
    if keys is not None:
        where.append((func.coalesce(c.key, c.id) if "key" in c else c.id).in_(keys))
    statuses = as_list(status)
    if statuses is not None:
        where.append(c.status.in_(statuses))
    executors = as_list(executor)
    if executors is not None:
        where.append(executor_column(c).in_(executors))
    if user_id is not None:
        where.append(c.user_id == user_id)
    if since is not None:
        where.append(time_bound(engine, c.created_at, since, ">="))
    if until is not None:
        where.append(time_bound(engine, c.created_at, until, "<"))
    return where


def newest_first(tbl: Any) -> tuple[Any, Any]:
    return tbl.c.created_at.desc(), tbl.c.id


def task_query(engine: Engine, tbl: Any, *, custom: Iterable[tuple[str, str]] = (), root_id: str | None = None,
               limit: int | None = None, ordered: bool = True, **filters: Any) -> Any:
    """The one SELECT behind history(), every filter in SQL.

    Without ``root_id``: newest first (unless not ``ordered``: history() sorts all rows itself,
    faster than SQLite sorting wide rows); with ``limit``, the newest ids are picked by a subquery
    that sorts only (created_at, id), so the JSON columns of rows that are not kept are never read.
    With ``root_id``: the run's rows (by the stored root_id column, or for stores without one by a
    recursive walk down parent_id), in no particular order (history() puts them in tree order).
    """
    c = tbl.c
    cols = task_columns(engine, tbl, custom)
    where = task_filters(engine, tbl, **filters)
    if root_id is not None:
        if "root_id" in c:
            where.append(or_(c.root_id == root_id, c.id == root_id))
        else:
            where.append(c.id.in_(subtree_ids(tbl, root_id)))
        return select(*cols).where(and_(*where)) if where else select(*cols)
    if limit is None:
        query = select(*cols)
        query = query.where(and_(*where)) if where else query
        return query.order_by(*newest_first(tbl)) if ordered else query
    newest = select(c.id).order_by(*newest_first(tbl)).limit(limit)
    newest = (newest.where(and_(*where)) if where else newest).subquery("newest")
    return select(*cols).join_from(tbl, newest, c.id == newest.c.id).order_by(*newest_first(tbl))


def subtree_ids(tbl: Any, root_id: str, max_depth: int = 10_000) -> Any:
    """A recursive CTE of the ids under ``root_id`` (itself included), for stores without root_id."""
    c = tbl.c
    tree = select(c.id, literal(0, Integer).label("level")).where(c.id == root_id).cte("subtree", recursive=True)
    tree = tree.union_all(select(c.id, (tree.c.level + 1).label("level"))
                          .where(c.parent_id == tree.c.id, tree.c.level < max_depth))
    return select(tree.c.id)


def event_query(engine: Engine, tbl: Any, *, root_id: str | None = None, task_id: str | None = None,
                types: Any = None, since: Any = None, until: Any = None) -> Any:
    c = tbl.c
    cols = [c.id.label("event_id"), c.event_type, c.task_id, c.root_id, c.name, c.status,
            number_column(engine, c.progress, "progress"), time_column(engine, c.timestamp, "timestamp"),
            json_column(engine, c.payload, "payload")]
    where = []
    if root_id is not None:
        where.append(c.root_id == root_id)
    if task_id is not None:
        where.append(c.task_id == task_id)
    kinds = as_list(types)
    if kinds is not None:
        where.append(c.event_type.in_(kinds))
    if since is not None:
        where.append(time_bound(engine, c.timestamp, since, ">="))
    if until is not None:
        where.append(time_bound(engine, c.timestamp, until, "<"))
    query = select(*cols)
    return query.where(and_(*where)) if where else query
