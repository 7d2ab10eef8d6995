"""Indexes for where= filters: ``apflow_nb.index(store, "inputs.model")`` and ``explain()`` to see the plan.

An index is created only by this explicit call (history() never writes). On SQLite it is an expression
index on exactly the expression where= compiles a key to (``json_extract(inputs, '$."model"')``), so
equality, IN and range comparisons on that key use it, for strings and numbers alike. On PostgreSQL two
expression indexes: the key as text (``inputs #>> '{model}'``, used by string comparisons) and as a
number (the guarded cast numeric comparisons use). A plain column (``status``, ``user_id``, a custom
column) gets an ordinary index; a computed one (``executor``, ``key``) an expression index.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from apflow_nb.analysis.errors import HistoryQueryError, WhereError
from apflow_nb.analysis.refs import parse_ref
from apflow_nb.analysis.stores import TASKS, resolve_engine, table_of


def _fields(conn: Any, engine: Any) -> tuple[Any, Any, list[tuple[str, str]]]:
    from apflow_nb.analysis import query as q
    from apflow_nb.analysis.filtersql import store_fields

    tbl = table_of(conn, TASKS)
    if tbl is None:
        raise HistoryQueryError(f"the store has no {TASKS} table yet: run something first, then index it")
    custom = [(col.name, q.kind_of(col.type)) for col in tbl.c if col.name not in q.STANDARD]
    tbl, fields = store_fields(engine.dialect.name, tbl, custom)
    return tbl, fields, custom


def index(store: Any, column: str) -> list[str]:
    """Create the index(es) that make ``where=`` comparisons on ``column`` fast (idempotent) and return their
    names. ``column``: ``"inputs.model"``, ``"result.metrics.f1"``, ``'inputs["a.b"]'``, ``"status"``..."""
    engine = resolve_engine(store)
    if engine is None:
        raise HistoryQueryError(f"no store at {store!r}: nothing to index")
    if engine.dialect.name == "duckdb":
        raise HistoryQueryError("DuckDB stores of the original project are opened read-only: they cannot be "
                                "indexed from here")
    ref = parse_ref(column, "index")
    created = []
    with engine.begin() as conn:
        tbl, fields, _ = _fields(conn, engine)
        field = fields.resolve(ref, column, "index")
        for suffix, expr in _expressions(fields, field, ref):
            name = _name(ref.name + suffix)
            sql = expr.compile(dialect=engine.dialect,
                               compile_kwargs={"literal_binds": True, "include_table": False})
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {TASKS} (({sql}))")
            created.append(name)
    return created


def _expressions(fields: Any, field: Any, ref: Any) -> list[tuple[str, Any]]:
    from apflow_nb.analysis.filtersql import JSON

    if field.kind != JSON:
        return [("", field.expr)]
    if not ref.path:
        raise WhereError("index a key inside the JSON column, e.g. inputs.model", ref.name, 0, "index")
    access = fields.json_access(field)
    if fields.dialect == "sqlite":
        return [("", access.extract(field.expr, ref.path))]
    return [(":text", access.string(field.expr, ref.path)), (":number", access.number(field.expr, ref.path))]


def _name(text_: str) -> str:
    """ix_apflow_<readable part>_<hash>: unique per column, within PostgreSQL's 63-character limit."""
    readable = re.sub(r"[^A-Za-z0-9]+", "_", text_).strip("_")[:30]
    digest = hashlib.sha1(text_.encode("utf-8")).hexdigest()[:8]
    return f"ix_apflow_{readable}_{digest}".lower()


def explain(store: Any = None, *, prefer_indexes: bool = False, **history_kwargs: Any) -> str:
    """The database's plan for the query ``history(store, **history_kwargs)`` runs (SQLite: EXPLAIN QUERY
    PLAN, PostgreSQL: EXPLAIN), to check that a where= uses an index. ``prefer_indexes`` turns PostgreSQL's
    sequential scans off for this plan (a small table is scanned whatever its indexes)."""
    from apflow_nb.analysis import plan as p
    from apflow_nb.analysis.history import check_refs, make_request

    defaults = dict(status=None, executor=None, root_id=None, key=None, user_id=None, since=None, until=None,
                    where=None, order_by=None, columns=None, limit=None, offset=None, flatten=True)
    request = make_request(**{**defaults, **history_kwargs})
    engine = resolve_engine(store)
    if engine is None:
        raise HistoryQueryError(f"no store at {store!r}")
    with engine.connect() as conn:
        tbl, fields, custom = _fields(conn, engine)
        check_refs(request, fields)
        selection = p.selection_for(request, tbl, custom)
        stmt = p.task_select(engine, tbl, fields, request, p.select_items(engine, tbl, fields, selection, custom))
        compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
        if engine.dialect.name == "sqlite":
            params: Any = tuple(compiled.params[k] for k in compiled.positiontup)
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)
            return "\n".join(str(r[-1]) for r in rows)
        if prefer_indexes:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
        return "\n".join(str(r[0]) for r in rows)
