"""history()'s arguments, checked, and the one SELECT they become.

``Request`` holds the checked arguments (see checks.py and where.py); ``Selection`` says which values
the SELECT reads (everything, or only what ``columns=`` needs); ``task_select`` builds the statement:
filters and ``where=`` in WHERE, ``order_by=`` in ORDER BY (ties: newest first, then id), ``limit`` /
``offset`` in SQL, with the kept ids picked by a subquery so JSON columns of skipped rows are never read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Engine, Integer, String, and_, func, literal, or_, select

from apflow_nb.analysis import query as q
from apflow_nb.analysis.columns import TIMES
from apflow_nb.analysis.filtersql import JSON, StoreFields, compile_where, order_terms
from apflow_nb.analysis.refs import Ref
from apflow_nb.analysis.where import Node

# what each frame column needs from the SELECT (besides id)
NEEDS = {"task_id": (), "key": ("key",), "parent_id": ("parent_id",), "name": ("name",),
         "executor": ("executor",), "status": ("status",), "priority": ("priority",), "user_id": ("user_id",),
         "progress": ("progress",), "created_at": ("created_at",), "started_at": ("started_at",),
         "completed_at": ("completed_at",), "duration_s": ("started_at", "completed_at"),
         "depth": ("parent_id",), "root_id": ("parent_id", "root_id"),
         "error": ("error", "status", "result:error"), "error_type": ("status", "result:error"),
         "traceback": ("error", "status", "result:error")}
ERROR_KEYS = ("error_type", "traceback", "message")


@dataclass
class Request:
    """history()'s checked arguments."""

    status: list[str] | None = None
    executor: list[str] | None = None
    key: list[str] | None = None
    user_id: list[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    root_id: str | None = None
    where: Node | None = None
    where_text: str = ""
    order: list[tuple[Ref, bool]] = field(default_factory=list)
    columns: list[Ref] | None = None
    limit: int | None = None
    offset: int | None = None
    flatten: bool = True

    @property
    def sql_order(self) -> bool:
        """Rows are ordered (and cut) in SQL: with order_by, and without a root_id (tree order) when some rows
        are cut (limit, offset) or the frame lacks created_at to sort by (columns=)."""
        if self.order:
            return True
        return self.root_id is None and (self.limit is not None or self.offset is not None or
                                         self.columns is not None)


@dataclass
class Selection:
    """The SELECT's values: plain columns by name, and JSON pieces (label -> (column, path))."""

    names: list[str]
    json: dict[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)


def selection_for(request: Request, tbl: Any, custom: Sequence[tuple[str, str]]) -> Selection:
    """Everything (columns=None), or what the requested columns need."""
    stored_root = "root_id" in tbl.c
    if request.columns is None:
        names = ["key", "parent_id", "name", "executor", "status", "priority", "user_id", "progress", "error",
                 "attempts", "cached_from", *TIMES, "inputs", "result"] + (["root_id"] if stored_root else []) \
            + [n for n, _ in custom]
        return Selection(names)
    needed: list[str] = ["parent_id"] if request.root_id is not None and not request.order else []
    json: dict[str, tuple[str, tuple[Any, ...]]] = {}
    kinds = dict(custom)
    for ref in request.columns:
        if ref.column in ("inputs", "result") or kinds.get(ref.column) == "json":
            json[f"j{len(json)}"] = (ref.column, ref.path)
            if ref.column == "result":
                needed.append("status")  # a failed task's result loses the engine's error keys
            continue
        for need in NEEDS.get(ref.column, (ref.column,)):
            if need == "result:error":
                for key in ERROR_KEYS:
                    json.setdefault(f"e_{key}", ("result", (key,)))
            elif need != "root_id" or stored_root:
                needed.append(need)
    if request.root_id is not None and not request.order:
        needed.append("created_at")  # siblings in creation order
    return Selection(list(dict.fromkeys(needed)), json)


def select_items(engine: Engine, tbl: Any, fields: StoreFields, selection: Selection,
                 custom: Sequence[tuple[str, str]]) -> list[Any]:
    """The labelled SQL items of a selection, ``id`` first."""
    c, kinds = tbl.c, dict(custom)
    items = [c.id]
    for name in selection.names:
        if name == "key":
            items.append(fields.fields["key"].expr.label("key"))
        elif name == "executor":
            items.append(fields.fields["executor"].expr.label("executor"))
        elif name == "progress":
            items.append(q.number_column(engine, c.progress, "progress"))
        elif name in TIMES:
            items.append(q.time_column(engine, c[name], name))
        elif name in ("inputs", "result"):
            items.append(q.json_column(engine, c[name], name))
        elif name in kinds:
            items.append(q.custom_column(engine, c[name], kinds[name]).label(name))
        elif name not in c:  # attempts, cached_from: not in stores written before them (or the original's)
            items.append(literal(None, Integer if name == "attempts" else String).label(name))
        else:
            items.append(c[name])
    for label, (column, path) in selection.json.items():
        field_ = fields.fields[column]
        access = fields.json_access(field_)
        items.append(access.json_text(field_.expr, path).label(label))
    return items


def conditions(engine: Engine, tbl: Any, fields: StoreFields, request: Request) -> list[Any]:
    """The WHERE clauses: every filter argument, then ``where=``."""
    c = tbl.c
    where = []
    if request.key is not None:
        where.append(fields.fields["key"].expr.in_(request.key))
    if request.status is not None:
        where.append(c.status.in_(request.status))
    if request.executor is not None:
        where.append(fields.fields["executor"].expr.in_(request.executor))
    if request.user_id is not None:
        where.append(c.user_id.in_(request.user_id))
    if request.since is not None:
        where.append(q.time_bound(engine, c.created_at, request.since, ">="))
    if request.until is not None:
        where.append(q.time_bound(engine, c.created_at, request.until, "<"))
    if request.root_id is not None:
        if "root_id" in c:
            where.append(or_(c.root_id == request.root_id, c.id == request.root_id))
        else:
            where.append(c.id.in_(q.subtree_ids(tbl, request.root_id)))
    if request.where is not None:
        where.append(compile_where(request.where, fields, request.where_text))
    return where


def task_select(engine: Engine, tbl: Any, fields: StoreFields, request: Request, items: list[Any]) -> Any:
    """The SELECT: in SQL order (order_by, else newest first) when ``request.sql_order``, else unordered
    (history() sorts: tree order for a run, newest first otherwise, faster than SQL for wide rows)."""
    c = tbl.c
    where = conditions(engine, tbl, fields, request)
    query = select(*items)
    if not request.sql_order:
        return query.where(and_(*where)) if where else query
    order = order_terms(request.order, fields) + list(q.newest_first(tbl))
    if request.limit is None and request.offset is None:
        query = query.where(and_(*where)) if where else query
        return query.order_by(*order)
    kept = select(c.id).order_by(*order)
    kept = kept.where(and_(*where)) if where else kept
    if request.limit is not None:
        kept = kept.limit(request.limit)
    if request.offset:
        kept = kept.offset(request.offset)
    kept = kept.subquery("kept")
    return query.join_from(tbl, kept, c.id == kept.c.id).order_by(*order)


def count_select(engine: Engine, tbl: Any, fields: StoreFields, request: Request) -> Any:
    """SELECT count(*) of the rows a request matches (before limit and offset)."""
    where = conditions(engine, tbl, fields, request)
    query = select(func.count()).select_from(tbl)
    return query.where(and_(*where)) if where else query


def is_json(fields: StoreFields, ref: Ref) -> bool:
    return fields.fields.get(ref.column) is not None and fields.fields[ref.column].kind == JSON
