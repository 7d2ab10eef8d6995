"""Stable columns: the ``inputs.*`` / ``result.*`` columns each executor gives, read from the key catalog
(``apflow_nb.core.storage.key_catalog``) and from registered executors' declared input schemas.

Reading never writes: a store without the catalog table (written before it existed, or an original
aipartnerupflow DuckDB file) gives the columns of the rows read, as before. ``rebuild_key_catalog(store)``
fills the catalog once from the stored rows (a write, so it is a call of its own).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import Connection, func, select

from apflow_nb.core.storage.key_catalog import (KINDS, MAX_KEYS, TABLE_NAME, WIDE, KeyCatalog, insert_ignoring,
                                                 key_catalog)

BATCH = 500


@dataclass
class Shapes:
    """One executor's known key paths per kind: leaves (one column each) and wide levels (one dict column)."""

    leaves: dict[str, set[tuple[str, ...]]] = field(default_factory=lambda: {k: set() for k in KINDS})
    wide: dict[str, set[tuple[str, ...]]] = field(default_factory=lambda: {k: set() for k in KINDS})

    memo: dict[str, list[tuple[str, ...]]] = field(default_factory=dict, repr=False)

    def columns(self, kind: str) -> list[tuple[str, ...]]:
        """The column paths of ``kind``: wide levels, and leaves not under a wide level or under a level
        with more than MAX_KEYS known keys (keys that vary per run, not yet called wide by the writer: the
        rows' own values still become columns, but no empty columns are added for them)."""
        known = self.memo.get(kind)
        if known is None:
            wide = self.wide[kind]
            children: dict[tuple[str, ...], set[str]] = {}
            for path in self.leaves[kind]:
                for i in range(len(path)):
                    children.setdefault(path[:i], set()).add(path[i])
            big = {level for level, keys in children.items() if len(keys) > MAX_KEYS} | set(wide)
            out = set(wide)
            for path in self.leaves[kind]:
                if not any(path[:i] in big for i in range(len(path))) and path not in wide:
                    out.add(path)
            known = self.memo[kind] = sorted(out)
        return known


_cache: dict[tuple[str, str], tuple[int, dict[str, Shapes]]] = {}


def read_catalog(conn: Connection, executors: Iterable[str]) -> dict[str, Shapes]:
    """The catalog's rows for ``executors`` (empty when the store has no catalog table). The catalog only
    grows, so what was read is kept per store and executor set until the table's row count changes."""
    from apflow_nb.analysis.flatten import decode
    from apflow_nb.analysis.stores import table_of

    wanted = sorted({e for e in executors if e is not None})
    found: dict[str, Shapes] = {}
    if not wanted or table_of(conn, TABLE_NAME) is None:
        return found
    c = key_catalog.c
    count = conn.execute(select(func.count()).select_from(key_catalog)).scalar()
    key = (repr(conn.engine.url), "\x00".join(wanted))
    cached = _cache.get(key)
    if cached is not None and cached[0] == count:
        return cached[1]
    for i in range(0, len(wanted), BATCH):
        rows = conn.execute(select(c.executor, c.kind, c.path, c.shape).where(c.executor.in_(wanted[i:i + BATCH])))
        for executor, kind, path, shape in rows:
            if kind not in KINDS:
                continue
            shapes = found.setdefault(executor, Shapes())
            (shapes.wide if shape == WIDE else shapes.leaves)[kind].add(tuple(decode(path)))
    if len(_cache) > 256:
        _cache.clear()
    _cache[key] = (count, found)
    return found


def declared_inputs(executors: Iterable[str]) -> dict[str, list[str]]:
    """Top-level input names registered executors declare (pydantic ``inputs_schema`` or JSON Schema
    ``properties``); executors that are not registered here, or declare nothing, are left out."""
    from apflow_nb.core.extensions.registry import get_registry
    from apflow_nb.core.extensions.types import ExtensionCategory

    registry = get_registry()
    out: dict[str, list[str]] = {}
    for executor in executors:
        if executor is None:
            continue
        try:
            entry = registry.get(ExtensionCategory.EXECUTOR, executor)
        except Exception:  # a registry that raises for unknown ids
            entry = None
        if entry is None:
            continue
        names = _schema_names(entry)
        if names:
            out[executor] = names
    return out


def _schema_names(entry: Any) -> list[str]:
    target = getattr(entry, "cls", None) or getattr(entry, "factory", None) or getattr(entry, "obj", None)
    model = getattr(target, "inputs_schema", None)
    if model is not None and hasattr(model, "model_fields"):
        return list(model.model_fields)
    try:
        instance = entry.create()
        model = getattr(instance, "inputs_schema", None)
        if model is not None and hasattr(model, "model_fields"):
            return list(model.model_fields)
        props = (instance.get_input_schema() or {}).get("properties")
    except Exception:  # an executor that cannot be built here: no declared columns
        return []
    return list(props) if isinstance(props, dict) else []


def rebuild_key_catalog(store: Any = None) -> int:
    """Fill the key catalog from every stored task (once, for a store written before the catalog existed, or
    by other writers than the engine) and return how many catalog rows it added. Idempotent; it writes to the
    store, which history() never does, so it is a call of its own."""
    from apflow_nb.analysis.flatten import decode_all
    from apflow_nb.analysis.query import executor_column, json_column
    from apflow_nb.analysis.stores import TASKS, resolve_engine, table_of

    engine = resolve_engine(store)
    if engine is None:
        return 0
    if engine.dialect.name == "sqlite" and (store is None or isinstance(store, str)):
        from apflow_nb.core.storage.session import get_engine

        engine = get_engine(store)  # history() reads a file it did not open read-only; this call writes
    if engine.dialect.name == "duckdb":
        from apflow_nb.analysis.errors import HistoryQueryError

        raise HistoryQueryError("DuckDB stores of the original project are opened read-only; their columns come "
                                "from the rows read, no catalog is kept")
    key_catalog.create(engine, checkfirst=True)
    catalog, added = KeyCatalog(), 0
    with engine.begin() as conn:
        tbl = table_of(conn, TASKS)
        if tbl is None:
            return 0
        c = tbl.c
        query = select(executor_column(c, engine.dialect.name), c.status, json_column(engine, c.inputs, "inputs"),
                       json_column(engine, c.result, "result"))
        rows = conn.execute(query).all()
        for i in range(0, len(rows), 10_000):
            chunk = rows[i:i + 10_000]
            inputs, results = decode_all([r[2] for r in chunk]), decode_all([r[3] for r in chunk])
            new: list[dict[str, str]] = []
            for (executor, status, _, _), inp, res in zip(chunk, inputs, results):
                new += catalog.observe(executor, inp, res if status == "completed" else None)
            if new:
                added += max(conn.execute(insert_ignoring(engine.dialect.name), new).rowcount, 0)
    return added
