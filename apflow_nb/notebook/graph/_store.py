"""A past run from a store, for ``graph(root_id, store=...)``."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select


def _session(store: Any) -> Any:
    """A URL (or None: the default store), a Session, or a TaskManager -> a Session."""
    if store is None or isinstance(store, str):
        from apflow_nb.core.storage.session import create_session

        return create_session(store)
    db = getattr(store, "db", None)
    return db if db is not None else store


def load_tree(root: str, store: Any = None) -> Any:
    """The stored tree whose root has id ``root``, else the latest root whose key is ``root``."""
    from apflow_nb.core.errors import TaskNotFoundError
    from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository

    session = _session(store)
    repo = TaskRepository(session)
    try:
        node = repo.get_task_tree_sync(root)
    except TaskNotFoundError:
        model = repo.model
        found = session.scalars(select(model.id).where(model.key == root, model.parent_id.is_(None))
                                .order_by(model.created_at.desc()).limit(1)).first()
        if found is None:
            raise TaskNotFoundError(f"no task with id or root key {root!r} in the store") from None
        node = repo.get_task_tree_sync(found)
    return node

