"""The SQL behind history() and events(): every filter becomes a WHERE clause.

Values are selected in the form that is cheapest to turn into columns: JSON as text (decoded
later by orjson, not per value by the driver), timestamps as SQLite's text or as epoch
microseconds (PostgreSQL, DuckDB), and the executor computed in SQL. Results are read as plain
cursor tuples, skipping SQLAlchemy's per-value processing.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Engine, Integer, String, Text, and_, cast, func, literal, select, type_coerce

from apflow_nb.analysis import duckdb_compat
from apflow_nb.analysis.columns import STANDARD, TIMES  # noqa: F401 - STANDARD is used by history()


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


def time_bound(engine: Engine, col: Any, value: datetime, op: str) -> Any:
    """``col >= value`` / ``col < value`` (an aware UTC datetime) in the column's stored form."""
    if duckdb_compat.is_duckdb(engine):
        micros = round(value.timestamp() * 1_000_000)
        lhs, rhs = duckdb_compat.timestamp_expr(col), literal(micros, Integer)
    elif engine.dialect.name == "sqlite":  # stored as naive UTC text: compare with the same text form
        lhs, rhs = col, value.replace(tzinfo=None)
    else:
        lhs, rhs = col, value
    return lhs >= rhs if op == ">=" else lhs < rhs


def executor_column(c: Any, dialect: str = "") -> Any:
    """Which executor ran the task, as core's ``executor_id_of``: params.executor_id, else
    schemas.method, else the name (empty strings count as missing). The JSON paths are literals, so the
    same expression in an index (``apflow_nb.index(store, "executor")``) serves the filter."""
    from apflow_nb.analysis.jsonsql import sql_string

    if dialect == "sqlite":
        by_params = func.json_extract(c.params, sql_string('$."executor_id"'))
        by_method = func.json_extract(c.schemas, sql_string('$."method"'))
    elif dialect == "postgresql":
        by_params = c.params.op("->>")(sql_string("executor_id"))
        by_method = c.schemas.op("->>")(sql_string("method"))
    else:
        by_params = type_coerce(c.params, JSON)["executor_id"].as_string()
        by_method = type_coerce(c.schemas, JSON)["method"].as_string()
    empty = sql_string("")  # a literal, not a parameter: an index on this expression must match it exactly
    return func.coalesce(func.nullif(type_coerce(by_params, String), empty),
                         func.nullif(type_coerce(by_method, String), empty), c.name)


def newest_first(tbl: Any) -> tuple[Any, Any]:
    """ORDER BY terms of the default order: newest first, then by id."""
    return tbl.c.created_at.desc(), tbl.c.id


def subtree_ids(tbl: Any, root_id: str, max_depth: int = 10_000) -> Any:
    """A recursive CTE of the ids under ``root_id`` (itself included), for stores without root_id."""
    c = tbl.c
    tree = select(c.id, literal(0, Integer).label("level")).where(c.id == root_id).cte("subtree", recursive=True)
    tree = tree.union_all(select(c.id, (tree.c.level + 1).label("level"))
                          .where(c.parent_id == tree.c.id, tree.c.level < max_depth))
    return select(tree.c.id)


def event_query(engine: Engine, tbl: Any, *, root_id: str | None = None, task_id: str | None = None,
                types: list[str] | None = None, since: datetime | None = None, until: datetime | None = None) -> Any:
    c = tbl.c
    cols = [c.id.label("event_id"), c.event_type, c.task_id, c.root_id, c.name, c.status,
            number_column(engine, c.progress, "progress"), time_column(engine, c.timestamp, "timestamp"),
            json_column(engine, c.payload, "payload")]
    where = []
    if root_id is not None:
        where.append(c.root_id == root_id)
    if task_id is not None:
        where.append(c.task_id == task_id)
    if types is not None:
        where.append(c.event_type.in_(types))
    if since is not None:
        where.append(time_bound(engine, c.timestamp, since, ">="))
    if until is not None:
        where.append(time_bound(engine, c.timestamp, until, "<"))
    query = select(*cols)
    return query.where(and_(*where)) if where else query
