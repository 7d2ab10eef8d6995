"""TaskRepository: create, read and update tasks in the store (async methods, as the seed awaits)."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from sqlalchemy.exc import IntegrityError

from apflow_nb.core.errors import TaskNotFoundError, UnknownTaskFieldError
from apflow_nb.core.storage.bulk import duplicate_ids_error, insert_tasks
from apflow_nb.core.storage.sqlalchemy.models import TaskModel, get_task_model_class, new_task_id, utcnow
from apflow_nb.core.storage.task_fields import (
    MAX_ID_LENGTH, check_custom_fields, check_json_field, check_priority, check_text, json_problem,
    normalize_dependencies, take_options,
)
from apflow_nb.core.types import TaskTreeNode

__all__ = ["TaskRepository", "json_problem", "normalize_dependencies"]


class TaskRepository:
    """Reads and writes tasks through a SQLAlchemy Session, using the current TaskModel class."""

    def __init__(self, session: Session, task_model_class: type[TaskModel] | None = None):
        self.session = session
        self._model = task_model_class
        self._columns: tuple[Any, tuple[str, ...], int] | None = None

    @property
    def model(self) -> type[TaskModel]:
        """The TaskModel class used (``set_task_model_class`` changes it unless one was given)."""
        return self._model or get_task_model_class()

    def _ensure_schema(self) -> None:
        from apflow_nb.core.storage.session import ensure_schema

        ensure_schema(self.session.get_bind(), self.model)

    # -- creating ------------------------------------------------------------------------
    def build_values(self, name: str, user_id: str | None = None, parent_id: str | None = None,
                     priority: int = 2, dependencies: Any = None, inputs: dict[str, Any] | None = None,
                     schemas: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                     id: str | None = None, key: str | None = None, **fields: Any) -> dict[str, Any]:
        """Every column of a new task's row, after checking every argument (see :meth:`create_task`).

        Raises TaskFieldError (or UnknownTaskFieldError) naming the task and field; nothing is written.
        """
        where = f"task {key or id or name!r}"
        check_text(name, "name", where, required=True)
        for label, value in (("id", id), ("key", key)):
            check_text(value, label, where, max_length=MAX_ID_LENGTH)
        check_text(user_id, "user_id", where)
        check_text(parent_id, "parent_id", where)
        check_priority(priority, where)
        for label, value in (("inputs", inputs), ("schemas", schemas), ("params", params)):
            check_json_field(value, label, where)
        deps = normalize_dependencies(dependencies, where=f"{where} dependencies")
        options = take_options(fields, where)
        if fields:
            check_custom_fields(fields, self.model, where)
        now = utcnow()
        values = dict.fromkeys(self.columns)
        values.update(id=id or new_task_id(), key=key or id or name, name=name, user_id=user_id,
                      parent_id=parent_id, priority=priority, dependencies=deps, inputs=dict(inputs or {}),
                      schemas=schemas, params=params, status="pending", progress=0.0, has_children=False,
                      has_copy=False, options=options, created_at=now, updated_at=now, **fields)
        return values

    @property
    def columns(self) -> tuple[str, ...]:
        """The mapped column names of the model in use."""
        model = self.model
        if self._columns is None or self._columns[0] is not model or len(model.__table__.columns) != self._columns[2]:
            self._columns = (model, tuple(c.key for c in model.__mapper__.column_attrs), len(model.__table__.columns))
        return self._columns[1]

    def build_task(self, name: str, **spec: Any) -> TaskModel:
        """A new, unsaved TaskModel row after checking every argument (see :meth:`create_task`)."""
        return self.model(**self.build_values(name, **spec))

    async def create_task(self, name: str, user_id: str | None = None, parent_id: str | None = None,
                          priority: int = 2, dependencies: Any = None, inputs: dict[str, Any] | None = None,
                          schemas: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                          id: str | None = None, **fields: Any) -> TaskModel:
        """Store a new pending task and return it (a TaskModel row of this session).

        ``name`` picks the executor unless ``schemas["method"]`` (or ``params["executor_id"]``)
        names one. ``dependencies`` are task ids or ``{"id", "required"}`` dicts. Extra keywords
        must be columns of the TaskModel in use; anything else raises UnknownTaskFieldError. An
        ``id`` already in the store raises DuplicateTaskIdError.
        """
        self._ensure_schema()
        task = self.build_task(name, user_id=user_id, parent_id=parent_id, priority=priority,
                               dependencies=dependencies, inputs=inputs, schemas=schemas, params=params, id=id,
                               **fields)
        parent = self._outside_parents([task.parent_id] if task.parent_id else [], {}).get(task.parent_id)
        if parent is not None:
            parent.has_children = True
        task.root_id = parent.root_id or parent.id if parent is not None else task.id
        try:
            self.session.add(task)
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            raise duplicate_ids_error(self.existing_ids([task.id])) from None
        except BaseException:
            self.session.rollback()
            raise
        return task

    def create_tasks(self, specs: Sequence[dict[str, Any]]) -> list[Any]:
        """Store many tasks in one transaction and return them as task records (bulk loading, task arrays).

        All or nothing: on any error nothing is stored and the session is left usable.
        """
        self._ensure_schema()
        return insert_tasks(self, specs)

    def _outside_parents(self, parent_ids: Iterable[str], known: Any) -> dict[str, TaskModel]:
        """Stored parents (not among ``known``) of new tasks; TaskNotFoundError for any that is missing."""
        wanted = {p for p in parent_ids if p and p not in known}
        if not wanted:
            return {}
        model = self.model
        rows = self.session.scalars(select(model).where(model.id.in_(wanted))).all()
        outside = {r.id: r for r in rows}
        missing = wanted - set(outside)
        if missing:
            self.session.rollback()
            raise TaskNotFoundError(f"parent task(s) {', '.join(sorted(missing))} not found in the store; "
                                    f"create the parent first or leave parent_id empty.")
        return outside

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are already stored."""
        model = self.model
        ids = list(ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            found.update(self.session.scalars(select(model.id).where(model.id.in_(ids[i:i + 500]))).all())
        self.session.rollback()  # end the read transaction: a writer elsewhere must not wait on it
        return found

    async def create_task_tree_from_array(self, tasks: Sequence[dict[str, Any]], *, user_id: str | None = None,
                                          validate_executors: bool = False) -> TaskTreeNode:
        """Store a task array (list of task dicts) and return its tree; see ``core.storage.task_array``."""
        from apflow_nb.core.storage.task_array import create_task_tree_from_array

        return create_task_tree_from_array(self, tasks, user_id=user_id, validate_executors=validate_executors)

    # -- reading ---------------------------------------------------------------------------
    async def get_task_by_id(self, task_id: str) -> TaskModel | None:
        """The task, from the store or else from a registered StorageExtension; None if nobody has it."""
        task = self.session.get(self.model, task_id)
        if task is not None:
            return task
        from apflow_nb.core.extensions.registry import get_registry
        from apflow_nb.core.extensions.types import ExtensionCategory

        for entry in get_registry().list(ExtensionCategory.STORAGE):
            found = await entry.obj.get_task(task_id)
            if found is not None:
                return found
        return None

    def get_task(self, task_id: str) -> TaskModel:
        """The stored task (sync); raises TaskNotFoundError naming the id."""
        task = self.session.get(self.model, task_id)
        if task is None:
            raise TaskNotFoundError(f"no task with id {task_id!r} in the store")
        return task

    def get_children(self, parent_ids: Iterable[str]) -> list[TaskModel]:
        """Direct children of these tasks."""
        ids = list(parent_ids)
        if not ids:
            return []
        model = self.model
        out: list[TaskModel] = []
        for i in range(0, len(ids), 500):
            out.extend(self.session.scalars(select(model).where(model.parent_id.in_(ids[i:i + 500]))
                                            .order_by(model.created_at)).all())
        return out

    async def get_task_tree(self, root_id: str) -> TaskTreeNode:
        """The stored tree under ``root_id`` as TaskTreeNodes (children in creation order)."""
        return self.get_task_tree_sync(root_id)

    def get_task_tree_sync(self, root_id: str) -> TaskTreeNode:
        """Sync form of :meth:`get_task_tree`."""
        root = TaskTreeNode(self.get_task(root_id))
        level = [root]
        while level:
            nodes = {n.task.id: n for n in level}
            nxt = []
            for child in self.get_children(nodes):
                nxt.append(nodes[child.parent_id].add_child(TaskTreeNode(child)))
            level = nxt
        return root

    async def list_tasks(self, *, status: str | None = None, user_id: str | None = None,
                         root_id: str | None = None, limit: int | None = None) -> list[TaskModel]:
        """Tasks, newest first, filtered in SQL."""
        model = self.model
        query = select(model)
        if status is not None:
            query = query.where(model.status == str(status))
        if user_id is not None:
            query = query.where(model.user_id == user_id)
        if root_id is not None:
            query = query.where(model.root_id == root_id)
        query = query.order_by(model.created_at.desc())
        if limit is not None:
            query = query.limit(limit)
        return list(self.session.scalars(query).all())

    async def update_task(self, task_id: str, **fields: Any) -> TaskModel:
        """Change stored fields of a task (not while it runs: the TaskManager owns running tasks)."""
        task = self.get_task(task_id)
        columns = {c.key for c in self.model.__mapper__.column_attrs}
        unknown = sorted(set(fields) - columns)
        if unknown:
            raise UnknownTaskFieldError(f"update_task got unknown field(s) {unknown}")
        for key, value in fields.items():
            setattr(task, key, value)
        task.updated_at = utcnow()
        self.session.commit()
        return task

    async def delete_task(self, task_id: str) -> None:
        """Remove a task row."""
        self.session.delete(self.get_task(task_id))
        self.session.commit()
