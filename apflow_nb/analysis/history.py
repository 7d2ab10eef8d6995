"""``history()``: one row per stored task, filtered in SQL, JSON columns flattened into stable columns."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from apflow_nb.analysis import checks
from apflow_nb.analysis.columns import BASE_KINDS, HISTORY_COLUMNS
from apflow_nb.analysis.errors import WhereError
from apflow_nb.core.gc_pause import gc_paused
from apflow_nb.analysis.plan import Request
from apflow_nb.analysis.refs import Ref, parse_ref
from apflow_nb.analysis.stores import TASKS, resolve_engine, table_of
from apflow_nb.analysis.where import parse_where, refs_in

F = "history"


def history(store: Any = None, *, status: str | Iterable[str] | None = None,
            executor: str | Iterable[str] | None = None, root_id: str | None = None,
            key: str | Iterable[str] | None = None, user_id: str | Iterable[str] | None = None,
            since: datetime | str | None = None, until: datetime | str | None = None, where: str | None = None,
            order_by: str | list[str] | None = None, columns: list[str] | None = None, limit: int | None = None,
            offset: int | None = None, flatten: bool = True) -> Any:
    """Stored tasks as a pandas DataFrame, one row per task (like MLflow's ``search_runs``).

    Columns: task_id, key (the id the user wrote in the task array; the same in every run of it), root_id,
    parent_id, depth, name, executor, status, priority, user_id, created_at, started_at, completed_at
    (``datetime64[us, UTC]``), duration_s, progress, error (the message), error_type, traceback; then
    ``inputs.<key>`` and ``result.<key>`` (nested keys joined with dots, sorted; a result that is not a dict
    is in ``result``), or with ``flatten=False`` the dicts in ``inputs`` and ``result``; then the columns a
    custom TaskModel adds. The ``inputs.*`` / ``result.*`` columns depend on the executors the frame covers,
    not on which rows matched: every key an executor's tasks ever stored (the store's key catalog) and every
    input a registered executor declares, None where a row has no value.

    Filters run in SQL: ``status``, ``executor``, ``key`` and ``user_id`` (one value or a list; the executor
    is ``params.executor_id``, else ``schemas.method``, else the name), ``since`` <= created_at < ``until``
    (naive datetimes and ISO text are UTC), and ``where``: Python comparison syntax on any column, e.g.
    ``"inputs.model == 'm3' and result.score > 0.9"`` (see ``apflow_nb.analysis.where``). ``root_id`` gives
    one run's tree in tree order (depth first, siblings in creation order); otherwise the newest tasks come
    first. ``order_by=["result.score desc", "created_at"]`` sorts in SQL; ``limit`` and ``offset`` page
    through that order. ``columns=["task_id", "inputs.model", "result"]`` reads only these (a JSON key gives
    the columns below it), in that order. depth and root_id are those of the whole stored tree.

    ``store``: None (the default store), a URL, an Engine, a Session or a TaskManager; ``duckdb:///path``
    reads an original aipartnerupflow store read-only. Reading never writes to the store.
    """
    request = make_request(status=status, executor=executor, root_id=root_id, key=key, user_id=user_id,
                           since=since, until=until, where=where, order_by=order_by, columns=columns, limit=limit,
                           offset=offset, flatten=flatten)
    with gc_paused():
        return _history(store, request)


def make_request(*, status: Any, executor: Any, root_id: Any, key: Any, user_id: Any, since: Any, until: Any,
                 where: Any, order_by: Any, columns: Any, limit: Any, offset: Any, flatten: Any) -> Request:
    """history()'s arguments checked (a FilterError or WhereError names the bad one) and parsed."""
    request = Request(
        status=checks.statuses(F, status), executor=checks.texts(F, "executor", executor, "an executor id"),
        key=checks.texts(F, "key", key, "a task key"), user_id=checks.texts(F, "user_id", user_id, "a user id"),
        since=checks.moment(F, "since", since), until=checks.moment(F, "until", until),
        root_id=checks.one_text(F, "root_id", root_id, " (one run's root id; for several runs use "
                                                       "where=\"root_id in ['a', 'b']\")"),
        limit=checks.count(F, "limit", limit), offset=checks.count(F, "offset", offset),
        flatten=checks.flag(F, "flatten", flatten))
    if where is not None:
        request.where, request.where_text = parse_where(where), where
    for item in checks.text_list(F, "order_by", order_by, "a column name, optionally followed by asc or desc") or ():
        request.order.append(parse_order(item))
    names = checks.text_list(F, "columns", columns, "a column name")
    if names is not None:
        request.columns = [parse_ref(name, "columns") for name in names]
    return request


def parse_order(item: str) -> tuple[Ref, bool]:
    """``"result.score desc"`` -> (ref, descending)."""
    text, _, word = item.strip().rpartition(" ")
    if text and word.lower() in ("asc", "desc"):
        return parse_ref(text.strip(), "order_by"), word.lower() == "desc"
    return parse_ref(item.strip(), "order_by"), False


def check_refs(request: Request, fields: Any) -> None:
    """Every column the request names exists in this store (WhereError otherwise), before any query runs."""
    for ref, _ in request.order:
        fields.resolve(ref, ref.name, "order_by")
    for ref in request.columns or ():
        if ref.column in ("depth", "root_id", "attempts", "cached_from") and not ref.path:
            continue  # computed from parent links (None for stores without attempts/cached_from)
        fields.resolve(ref, ref.name, "columns")
    if request.where is not None:
        for cmp in refs_in(request.where):
            fields.resolve(cmp.ref, request.where_text, "where")


def _history(store: Any, request: Request) -> Any:
    from apflow_nb.analysis import frame as f
    from apflow_nb.analysis.filtersql import store_fields
    from apflow_nb.analysis import query as q, rows

    engine = resolve_engine(store)
    if engine is None:  # a SQLite file that does not exist
        return rows.empty(request, [])
    with engine.connect() as conn:  # one connection (on PostgreSQL one transaction) for every query
        tbl = table_of(conn, TASKS)
        if tbl is None:
            return rows.empty(request, [])
        custom = [(col.name, q.kind_of(col.type)) for col in tbl.c if col.name not in q.STANDARD]
        tbl, fields = store_fields(engine.dialect.name, tbl, custom)
        check_refs(request, fields)
        fetched = rows.fetch(conn, engine, tbl, fields, request, custom)
        if fetched is None:
            return rows.empty(request, custom, conn=conn)
        built = rows.frame_columns(conn, fetched, request, custom)
    frame = f.build(built)
    if request.root_id is None and not request.sql_order and not fetched.sorted:
        frame = f.newest_first(frame)
    return frame


__all__ = ["history", "make_request", "HISTORY_COLUMNS", "BASE_KINDS", "WhereError"]
