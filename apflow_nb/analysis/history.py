"""``history()``: one row per stored task, filtered in SQL, JSON columns flattened."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import JSON, String, and_, func, or_, select, type_coerce

from apflow_nb.analysis.flatten import decode, flatten_column
from apflow_nb.analysis.stores import TASKS, reflect, resolve_engine

HISTORY_COLUMNS = ["task_id", "root_id", "parent_id", "depth", "name", "executor", "status", "priority", "user_id",
                   "created_at", "started_at", "completed_at", "duration_s", "progress", "error"]
# columns of the task table that are not shown as plain "custom" columns
STANDARD = {"id", "parent_id", "root_id", "user_id", "name", "status", "priority", "dependencies", "inputs", "params",
            "result", "schemas", "error", "progress", "has_children", "original_task_id", "has_copy", "owner",
            "created_at", "started_at", "updated_at", "completed_at"}
_TIMES = ("created_at", "started_at", "completed_at")
_JSON = ("inputs", "result", "params", "schemas")


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _executor_of(name: Any, params: Any, schemas: Any) -> Any:
    params, schemas = decode(params), decode(schemas)
    if isinstance(params, dict) and params.get("executor_id"):
        return str(params["executor_id"])
    if isinstance(schemas, dict) and schemas.get("method"):
        return str(schemas["method"])
    return name


def history(store: Any = None, *, status: str | Iterable[str] | None = None, executor: str | Iterable[str] | None = None,
            root_id: str | None = None, user_id: str | None = None, since: datetime | str | None = None,
            until: datetime | str | None = None, limit: int | None = None, flatten: bool = True) -> Any:
    """Stored tasks as a pandas DataFrame, one row per task.

    Columns: task_id, root_id, parent_id, depth, name, executor, status, priority, user_id,
    created_at, started_at, completed_at (UTC), duration_s, progress, error; then ``inputs.<key>`` and
    ``result.<key>`` (nested keys joined with dots; ``flatten=False`` keeps ``inputs`` and ``result``
    as dicts); then the columns a custom TaskModel adds. ``root_id`` gives one run's tree in tree
    order; otherwise the newest tasks come first. Every filter runs in SQL. ``store``: None (the
    default store), a URL (``duckdb:///file`` reads an original aipartnerupflow store read-only),
    an Engine, a Session or a TaskManager.
    """
    import pandas as pd

    engine = resolve_engine(store)
    table = reflect(engine, TASKS)
    if table is None:
        return _frame(pd, {c: [] for c in HISTORY_COLUMNS}, {}, [], flatten)
    c = table.c
    has_root = "root_id" in c
    custom = [col.name for col in table.c if col.name not in STANDARD]
    raw = lambda col: type_coerce(col, String)  # noqa: E731 - skip SQLAlchemy's per-value processing
    wanted = ["id", "parent_id", "name", "status", "priority", "user_id", "progress", "error"]
    selected = [c[n] for n in wanted] + [raw(c[n]).label(n) for n in _TIMES + _JSON]
    selected += [c.root_id] if has_root else []
    selected += [c[n] for n in custom]
    query = select(*selected)
    conditions = []
    statuses = _as_list(status)
    if statuses:
        conditions.append(c.status.in_(statuses))
    if user_id is not None:
        conditions.append(c.user_id == user_id)
    executors = _as_list(executor)
    if executors:
        by_params = type_coerce(c.params, JSON)["executor_id"].as_string()
        by_method = type_coerce(c.schemas, JSON)["method"].as_string()
        conditions.append(func.coalesce(by_params, by_method, c.name).in_(executors))
    if since is not None:
        conditions.append(c.created_at >= _as_utc(since).replace(tzinfo=None) if engine.dialect.name == "sqlite"
                          else c.created_at >= _as_utc(since))
    if until is not None:
        conditions.append(c.created_at < _as_utc(until).replace(tzinfo=None) if engine.dialect.name == "sqlite"
                          else c.created_at < _as_utc(until))
    tree_ids: set[str] | None = None
    if root_id is not None:
        if has_root:
            conditions.append(or_(c.root_id == root_id, c.id == root_id))
        else:  # an original store has no root_id column: find the tree through parent links
            tree_ids = _descendants(engine, table, root_id)
            conditions.append(c.id.in_(list(tree_ids)) if len(tree_ids) < 30000 else c.id.isnot(None))
    if conditions:
        query = query.where(and_(*conditions))
    if root_id is None:
        query = query.order_by(c.created_at.desc(), c.id)
    if limit is not None:
        query = query.limit(int(limit))
    with engine.connect() as conn:
        result = conn.execute(query)
        keys = list(result.keys())
        rows = result.cursor.fetchall() if result.cursor is not None else []  # plain tuples: no Row objects
        result.close()
    position = {k: i for i, k in enumerate(keys)}
    if tree_ids is not None:
        rows = [r for r in rows if r[position["id"]] in tree_ids]
    if root_id is not None:
        rows = _tree_order(rows, position)
    n = len(rows)
    transposed = [list(column) for column in zip(*rows)] if rows else [[] for _ in keys]
    cols = dict(zip(keys, transposed))
    col = lambda name: cols.get(name, [None] * n)  # noqa: E731
    ids = col("id")
    parents = dict(zip(ids, col("parent_id")))
    _complete_parents(engine, table, parents)
    roots = {}
    depth = {}
    for task_id in parents:
        chain = []
        node = task_id
        while node is not None and node not in depth:
            chain.append(node)
            node = parents.get(node)
            if node is not None and node not in parents:
                node = None
        base_depth = depth[node] if node is not None else -1
        base_root = roots[node] if node is not None else (chain[-1] if chain else task_id)
        for offset, item in enumerate(reversed(chain), start=1):
            depth[item] = base_depth + offset
            roots[item] = base_root
    stored_roots = col("root_id") if has_root else [None] * n
    params, schemas, names = col("params"), col("schemas"), col("name")
    executors = [name if (p is None or p == "null") and (sc is None or sc == "null") else _executor_of(name, p, sc)
                 for name, p, sc in zip(names, params, schemas)]
    base = {
        "task_id": ids,
        "root_id": [r or roots.get(t, t) for r, t in zip(stored_roots, ids)],
        "parent_id": col("parent_id"),
        "depth": [depth.get(t, 0) for t in ids],
        "name": names,
        "executor": executors,
        "status": col("status"),
        "priority": col("priority"),
        "user_id": col("user_id"),
        "created_at": col("created_at"),
        "started_at": col("started_at"),
        "completed_at": col("completed_at"),
        "duration_s": [None] * n,
        "progress": col("progress"),
        "error": col("error"),
    }
    if flatten:
        extra = {**flatten_column(col("inputs"), "inputs", n), **flatten_column(col("result"), "result", n)}
    else:
        extra = {"inputs": [decode(v) for v in col("inputs")], "result": [decode(v) for v in col("result")]}
    custom_values = {name: col(name) for name in custom}
    return _frame(pd, base, extra, custom_values, flatten)


def _frame(pd: Any, base: dict[str, list[Any]], extra: dict[str, list[Any]], custom: Any, flatten: bool) -> Any:
    frame = pd.DataFrame(base, columns=HISTORY_COLUMNS)
    for col in _TIMES:
        frame[col] = _to_utc(pd, frame[col])
    frame["duration_s"] = (frame["completed_at"] - frame["started_at"]).dt.total_seconds()
    frame["depth"] = frame["depth"].astype("int64")
    frame["priority"] = pd.to_numeric(frame["priority"]).astype("Int64")
    frame["progress"] = pd.to_numeric(frame["progress"]).astype("float64")
    for col in ("task_id", "root_id", "parent_id", "name", "executor", "status", "user_id", "error"):
        frame[col] = frame[col].astype("object")
    if not flatten and not extra:
        extra = {"inputs": [], "result": []}
    tail = {**dict(sorted((k, v) for k, v in extra.items() if k.startswith("inputs"))),
            **dict(sorted((k, v) for k, v in extra.items() if k.startswith("result"))),
            **(custom or {})}
    if tail:
        frame = pd.concat([frame, pd.DataFrame(tail, index=frame.index)], axis=1)
    return frame


def _to_utc(pd: Any, column: Any) -> Any:
    if len(column) and isinstance(column.dropna().iloc[0] if column.notna().any() else None, str):
        return pd.to_datetime(column, utc=True, format="ISO8601")
    return pd.to_datetime(column, utc=True)


def _descendants(engine: Any, table: Any, root_id: str) -> set[str]:
    c = table.c
    found = {root_id}
    level = [root_id]
    with engine.connect() as conn:
        while level:
            nxt = []
            for i in range(0, len(level), 500):
                nxt += [r[0] for r in conn.execute(select(c.id).where(c.parent_id.in_(level[i:i + 500])))]
            level = [x for x in nxt if x not in found]
            found.update(level)
    return found


def _complete_parents(engine: Any, table: Any, parents: dict[str, Any]) -> None:
    """Fetch (id, parent_id) of ancestors missing from ``parents`` so depth and root are exact."""
    c = table.c
    missing = {p for p in parents.values() if p is not None and p not in parents}
    with engine.connect() as conn:
        while missing:
            batch = list(missing)
            missing = set()
            for i in range(0, len(batch), 500):
                for task_id, parent in conn.execute(select(c.id, c.parent_id).where(c.id.in_(batch[i:i + 500]))):
                    parents[task_id] = parent
            for b in batch:
                parents.setdefault(b, None)
            missing = {p for p in parents.values() if p is not None and p not in parents}


def _tree_order(rows: list[Any], position: dict[str, int]) -> list[Any]:
    """Depth-first, parents before children, siblings by creation time."""
    id_at, parent_at, created_at = position["id"], position["parent_id"], position["created_at"]
    by_id = {r[id_at]: r for r in rows}
    children: dict[Any, list[Any]] = {}
    for r in rows:
        parent = r[parent_at] if r[parent_at] in by_id else None
        children.setdefault(parent, []).append(r)
    for kids in children.values():
        kids.sort(key=lambda r: (str(r[created_at]), r[id_at]))
    out: list[Any] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        r = stack.pop()
        out.append(r)
        stack.extend(reversed(children.get(r[id_at], [])))
    return out
