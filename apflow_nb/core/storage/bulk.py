"""Storing many tasks at once: checked task records inserted in batches, and returned.

No ORM object is made per task (see ``records.py``): the rows go through SQLAlchemy Core in the
session's transaction, all or nothing, with JSON encoded once per value (``batch_sql.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sqlalchemy.exc import IntegrityError

from apflow_nb.core.errors import DuplicateTaskIdError
from apflow_nb.core.secrets import hold_new_tasks
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
    """Check every spec, insert them in one transaction and return their records (in the specs' order).

    Each spec becomes its record as soon as it is checked (its row dict lives only that long), so a large
    array never holds a dict per task next to the records.
    """
    record = record_class(repository.model)
    build = repository.build_values
    tasks = [record(**build(**spec)) for spec in specs]
    hold_new_tasks(tasks)  # secret inputs are stored as "***"; their values stay in this process's memory
    by_id = {t.id: t for t in tasks}
    outside = repository._outside_parents((t.parent_id for t in tasks), by_id)
    for task in tasks:
        parent = by_id.get(task.parent_id) if task.parent_id is not None else None
        if parent is not None:
            parent.has_children = True
    for task in tasks:
        task.root_id = _root_of(task, by_id, outside)
    session = repository.session
    table = repository.model.__table__
    try:
        conn = session.connection()
        BatchWriter(conn.engine, table).insert_rows(conn, table, tasks)
        for parent in outside.values():
            parent.has_children = True
        session.commit()
    except IntegrityError:
        session.rollback()
        raise duplicate_ids_error(repository.existing_ids(by_id)) from None
    except BaseException:
        session.rollback()
        raise
    return tasks


def _root_of(task: Any, by_id: dict[str, Any], outside: dict[str, Any]) -> str:
    """The root id of a new task: up its parents among the new tasks, then a stored parent's root."""
    seen: set[str] = set()
    node = task
    while node.parent_id and node.id not in seen:
        seen.add(node.id)
        parent_id = node.parent_id
        if parent_id in outside:
            parent = outside[parent_id]
            return parent.root_id or parent.id
        parent = by_id.get(parent_id)
        if parent is None:
            break
        if parent.root_id:
            return parent.root_id
        node = parent
    return node.id
