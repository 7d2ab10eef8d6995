"""``history()``: one row per stored task, filtered in SQL, JSON columns flattened."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from apflow_nb.analysis import query as q
from apflow_nb.analysis.flatten import gc_paused
from apflow_nb.analysis.stores import TASKS, resolve_engine, table_of
from apflow_nb.analysis.tree import depths_and_roots, fetch_missing_ancestors, tree_order

FIELDS = ["id", "key", "parent_id", "name", "executor", "status", "priority", "user_id", "progress", "error",
          "attempts", "cached_from",
          "created_at", "started_at", "completed_at"]


def history(store: Any = None, *, status: str | Iterable[str] | None = None,
            executor: str | Iterable[str] | None = None, root_id: str | None = None,
            key: str | Iterable[str] | None = None, user_id: str | None = None,
            since: datetime | str | None = None, until: datetime | str | None = None, limit: int | None = None,
            flatten: bool = True) -> Any:
    """Stored tasks as a pandas DataFrame, one row per task (like MLflow's ``search_runs``).

    Columns: task_id, key (the id the user wrote in the task array; the same in every run of it), root_id, parent_id, depth, name, executor, status, priority, user_id,
    created_at, started_at, completed_at (``datetime64[us, UTC]``), duration_s, progress, error;
    then ``inputs.<key>`` and ``result.<key>`` (nested keys joined with dots, sorted; a result that
    is not a dict is in ``result``), or with ``flatten=False`` the dicts in ``inputs`` and ``result``;
    then the columns a custom TaskModel adds.

    Filters run in SQL: ``status``, ``executor`` and ``key`` (one value or several; the executor is
    ``params.executor_id``, else ``schemas.method``, else the name), ``user_id``, ``since`` <=
    created_at < ``until`` (naive datetimes and ISO strings are UTC). ``root_id`` gives one run's
    tree in tree order (depth first, siblings in creation order); otherwise the newest tasks come
    first. ``limit`` keeps the first rows of that order. depth and root_id are those of the whole
    stored tree, also for tasks whose ancestors a filter left out.

    ``store``: None (the default store), a URL, an Engine, a Session or a TaskManager.
    ``duckdb:///path`` reads an original aipartnerupflow store read-only.
    """
    limit = q.check_limit(limit)
    with gc_paused():
        return _history(store, status=status, executor=executor, key=key, root_id=root_id, user_id=user_id, since=since,
                        until=until, limit=limit, flatten=flatten)


def _history(store: Any, *, root_id: str | None, limit: int | None, flatten: bool, **filters: Any) -> Any:
    from apflow_nb.analysis import frame as f

    engine = resolve_engine(store)
    if engine is None:  # a SQLite file that does not exist
        return f.empty_history(flatten=flatten)
    with engine.connect() as conn:  # one connection (on PostgreSQL one transaction) for every query
        tbl = table_of(conn, TASKS)
        if tbl is None:
            return f.empty_history(flatten=flatten)
        custom = [(col.name, q.kind_of(col.type)) for col in tbl.c if col.name not in q.STANDARD]
        sort_here = root_id is None and limit is None  # all rows: sorted here, faster than SQLite sorts them
        stmt = q.task_query(engine, tbl, custom=custom, root_id=root_id, limit=limit if root_id is None else None,
                            ordered=not sort_here, **filters)
        result = conn.execute(stmt)
        keys = list(result.keys())
        rows = result.cursor.fetchall() if result.cursor is not None else result.all()  # plain tuples
        result.close()
        if not rows:
            return f.empty_history(custom, flatten)
        cols = dict(zip(keys, zip(*rows)))  # one tuple per column
        del rows
        parents = dict(zip(cols["id"], cols["parent_id"]))
        fetch_missing_ancestors(conn, tbl, parents)
    frame = _frame(f, cols, parents, custom, root_id, limit, flatten)
    return f.newest_first(frame) if sort_here else frame


def _frame(f: Any, cols: dict[str, Any], parents: dict[Any, Any], custom: list[tuple[str, str]],
           root_id: str | None, limit: int | None, flatten: bool) -> Any:
    from apflow_nb.analysis.flatten import decode_all, flatten as flatten_values

    ids = cols["id"]
    depth, roots = depths_and_roots(parents)
    stored_roots = cols.get("root_id")
    base = {name: cols[name] for name in FIELDS}
    base["task_id"] = base.pop("id")
    base["depth"] = [depth[t] for t in ids]
    base["root_id"] = ([r if r is not None else roots[t] for r, t in zip(stored_roots, ids)] if stored_roots
                       else [roots[t] for t in ids])
    inputs, results = decode_all(cols["inputs"]), decode_all(cols["result"])
    custom_values = {name: (kind, cols[name]) for name, kind in custom}
    if root_id is not None:  # tree order, then the limit
        created = f.timestamps(cols["created_at"]).array.asi8.tolist()
        order = tree_order(ids, cols["parent_id"], created)[:limit]
        pick = lambda values: [values[i] for i in order]  # noqa: E731
        base = {k: pick(v) for k, v in base.items()}
        inputs, results = pick(inputs), pick(results)
        custom_values = {k: (kind, pick(v)) for k, (kind, v) in custom_values.items()}
    if flatten:
        extra = {**flatten_values(inputs, "inputs"), **flatten_values(results, "result")}
    else:
        extra = {"inputs": inputs, "result": results}
    return f.history_frame(base, extra, custom_values)
