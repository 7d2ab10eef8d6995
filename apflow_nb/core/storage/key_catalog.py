"""The key catalog: which keys each executor's inputs and results have ever had (table ``apflow_result_keys``).

history() takes a frame's ``inputs.*`` / ``result.*`` columns from it, so the same executor always gives the
same columns, whichever rows a filter returns. The engine's write path keeps it up to date: ``observe()``
runs when a task's final state is recorded and costs a few set look-ups per key (an in-memory tree of the
keys this process knows per store); only keys never seen before become rows, which ``write()`` inserts in
the same transaction as the task rows, idempotently (ON CONFLICT DO NOTHING), so several writer processes
can record the same key at once.

A row is (executor, kind, path, shape): kind ``inputs`` or ``result`` (results of completed tasks only:
failed and cancelled tasks hold the engine's error details, shown in history()'s error columns); path the
keys from the top, as JSON text (``["opts", "timeout"]``; ``[]`` for a result that is not a dict); shape
``leaf`` (a value that is not a dict, or an empty dict, was stored there) or ``wide``: a dict level whose
keys vary from task to task (results keyed by task id): once it has more than ``max(MAX_KEYS, 2 x the
largest such dict seen)`` distinct keys, and at most ``WIDE_AT`` (128), it is recorded as one column
holding the dict, and its keys are no longer recorded, so the catalog stays small (a fan-in over 10,000
tasks adds a few hundred rows once, not 10,000).
"""
from __future__ import annotations

import json
import logging
import threading
import weakref
from typing import Any, Iterable

from sqlalchemy import Connection, insert, inspect, select

from apflow_nb.core.storage.sqlalchemy.models import key_catalog  # defined with every table, on Base

logger = logging.getLogger("apflow_nb.storage")
TABLE_NAME = key_catalog.name
MAX_KEYS = 64
WIDE_AT = 2 * MAX_KEYS  # distinct keys at which a level is wide, however large its dicts
MAX_PATH = 500  # characters of a path's JSON text; deeper or longer paths are not recorded
KINDS = ("inputs", "result")
LEAF, WIDE = "leaf", "wide"
CATALOG_COLUMNS = ("executor", "kind", "path", "shape")



def encode_path(path: Iterable[str]) -> str:
    """A key path as the catalog stores it: compact JSON text of the list of keys."""
    return json.dumps(list(path), ensure_ascii=False, separators=(",", ":"))


def decode_path(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


class _Level:
    """One dict level of one executor's inputs or result: the keys seen under it."""

    __slots__ = ("children", "leaf", "leaves", "wide", "widest")

    def __init__(self) -> None:
        self.children: dict[str, _Level] = {}
        self.leaves: set[str] = set()  # the children's keys that are leaves: a dict of known scalars is checked at once
        self.leaf = False
        self.wide = False
        self.widest = 0


class KeyCatalog:
    """The keys one store's catalog holds, as far as this process knows (see the module docstring)."""

    def __init__(self) -> None:
        self._roots: dict[tuple[str, str], _Level] = {}
        self._lock = threading.Lock()
        self.loaded = False
        self.disabled = False

    def observe(self, executor_id: str, inputs: Any, result: Any) -> list[dict[str, str]]:
        """The catalog rows a task with these inputs and result adds (usually none): pass ``result=None``
        for a task that did not complete."""
        if executor_id is None:
            return []
        rows: list[dict[str, str]] = []
        with self._lock:
            for kind, value in (("inputs", inputs), ("result", result)):
                if value is None or (type(value) is dict and not value):
                    continue
                root = self._roots.get((executor_id, kind))
                if root is None:
                    root = self._roots[(executor_id, kind)] = _Level()
                if type(value) is dict:
                    if root.wide or (len(value) <= root.widest and value.keys() <= root.leaves
                                     and dict not in map(type, value.values())):
                        continue  # known keys holding values that are not dicts (most tasks): nothing new
                    self._walk(executor_id, kind, value, root, (), rows)
                elif not root.leaf:  # a result that is not a dict: the column "result" itself
                    root.leaf = True
                    rows.append(_row(executor_id, kind, (), LEAF))
        return [r for r in rows if len(r["path"]) <= MAX_PATH] if rows else rows

    def _walk(self, executor: str, kind: str, value: dict, level: _Level, path: tuple[str, ...],
              rows: list[dict[str, str]]) -> None:
        if level.wide:
            return
        if len(value) > level.widest:
            level.widest = len(value)
        children = level.children
        for key, item in value.items():
            child = children.get(key)
            if child is None:
                if len(children) >= min(max(MAX_KEYS, 2 * level.widest), WIDE_AT):
                    level.wide = True
                    rows.append(_row(executor, kind, path, WIDE))
                    return
                key = key if type(key) is str else str(key)  # JSON object keys are text
                child = children[key] = _Level()
            if type(item) is dict and item:
                self._walk(executor, kind, item, child, path + (key,), rows)
            elif not child.leaf:
                child.leaf = True
                level.leaves.add(key)
                rows.append(_row(executor, kind, path + (key,), LEAF))

    def load(self, connection: Connection) -> None:
        """Learn the rows already in the store (once per process and store), so wide levels are counted
        over every process's keys and known keys are not inserted again."""
        if self.loaded:
            return
        if not inspect(connection).has_table(TABLE_NAME):  # a schema made without create_session(): skip
            logger.warning("apflow_nb: the store has no %s table (create_session() adds it); history() will "
                           "take its columns from the rows it reads", TABLE_NAME)
            self.loaded = self.disabled = True
            return
        stored = connection.execute(select(key_catalog.c.executor, key_catalog.c.kind, key_catalog.c.path,
                                           key_catalog.c.shape)).all()
        with self._lock:
            for executor, kind, path, shape in stored:
                level = parent = self._roots.setdefault((executor, kind), _Level())
                keys = decode_path(path)
                for key in keys:
                    parent, level = level, level.children.setdefault(key, _Level())
                if shape == WIDE:
                    level.wide = True
                else:
                    level.leaf = True
                    if keys:
                        parent.leaves.add(keys[-1])
            for root in self._roots.values():
                _assume_widest(root)
            self.loaded = True

    def write(self, connection: Connection, rows: list[dict[str, str]]) -> None:
        """Insert ``rows`` (from observe) in the caller's transaction; keys another process stored first are
        skipped by the database (ON CONFLICT DO NOTHING), never an error."""
        if not self.loaded:
            self.load(connection)
        if rows and not self.disabled:
            connection.execute(insert_ignoring(connection.dialect.name), rows)


def _row(executor: str, kind: str, path: tuple[str, ...], shape: str) -> dict[str, str]:
    return {"executor": executor, "kind": kind, "path": encode_path(path), "shape": shape}


def _assume_widest(level: _Level) -> None:
    """After loading, a level's stored keys may all occur in one dict: do not call it wide for them."""
    stack = [level]
    while stack:
        node = stack.pop()
        node.widest = max(node.widest, len(node.children))
        stack.extend(node.children.values())


def insert_ignoring(dialect: str) -> Any:
    """INSERT into the catalog that leaves existing rows alone (SQLite OR IGNORE, PostgreSQL ON CONFLICT)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(key_catalog).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(key_catalog).on_conflict_do_nothing()
    return insert(key_catalog).prefix_with("OR IGNORE") if dialect == "duckdb" else insert(key_catalog)


_catalogs: "weakref.WeakKeyDictionary[Any, KeyCatalog]" = weakref.WeakKeyDictionary()
_catalogs_lock = threading.Lock()


def catalog_for(engine: Any) -> KeyCatalog:
    """The in-memory catalog of the store behind ``engine`` (one per engine object in this process)."""
    with _catalogs_lock:
        catalog = _catalogs.get(engine)
        if catalog is None:
            catalog = _catalogs[engine] = KeyCatalog()
        return catalog
