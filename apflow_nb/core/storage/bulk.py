"""Storing many tasks at once: checked rows inserted with one executemany, returned as task records.

No ORM object is made per task (see ``records.py``): the rows go through SQLAlchemy Core in the
session's transaction, all or nothing, with JSON encoded once per value (``batch_sql.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sqlalchemy.exc import IntegrityError

from apflow_nb.core.errors import DuplicateTaskIdError
from apflow_nb.core.storage.batch_sql import BatchWriter
from apflow_nb.core.storage.records import record_class

def duplicate_ids_error(taken: Iterable[str]) -> DuplicateTaskIdError:
    """The error for ids already in the store (nothing was stored)."""
    return DuplicateTaskIdError(
        f"task id(s) {', '.join(map(repr, sorted(taken)[:5])) or '(unknown)'} already exist in the store; "
        f"give new ids, or leave id out to get fresh ones. Nothing was stored.")


if TYPE_CHECKING:
    from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository


def insert_tasks(repository: "TaskRepository", specs: Sequence[dict[str, Any]]) -> list[Any]:
    """Check every spec, insert them in one transaction and return their records (in the specs' order)."""
    rows = [repository.build_values(**spec) for spec in specs]
    by_id = {r["id"]: r for r in rows}
    outside = repository._outside_parents((r["parent_id"] for r in rows), by_id)
    for row in rows:
        parent = row["parent_id"]
        if parent in by_id:
            by_id[parent]["has_children"] = True
    for row in rows:
        row["root_id"] = _root_of(row, by_id, outside)
    session = repository.session
    table = repository.model.__table__
    try:
        conn = session.connection()
        BatchWriter(conn.engine, table).insert_rows(conn, table, rows)
        for parent in outside.values():
            parent.has_children = True
        session.commit()
    except IntegrityError:
        session.rollback()
        raise duplicate_ids_error(repository.existing_ids(by_id)) from None
    except BaseException:
        session.rollback()
        raise
    record = record_class(repository.model)
    return [record(**row) for row in rows]


def _root_of(row: dict[str, Any], by_id: dict[str, dict[str, Any]], outside: dict[str, Any]) -> str:
    """The root id of a new row: up its parents among the new rows, then a stored parent's root."""
    seen: set[str] = set()
    node = row
    while node["parent_id"] and node["id"] not in seen:
        seen.add(node["id"])
        parent_id = node["parent_id"]
        if parent_id in outside:
            parent = outside[parent_id]
            return parent.root_id or parent.id
        parent = by_id.get(parent_id)
        if parent is None:
            break
        if parent.get("root_id"):
            return parent["root_id"]
        node = parent
    return node["id"]
