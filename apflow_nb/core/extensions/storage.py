"""StorageExtension: a second home for tasks, fed after every state change."""
from __future__ import annotations

from typing import Any, ClassVar

from apflow_nb.core.extensions.base import Extension
from apflow_nb.core.extensions.types import ExtensionCategory


class StorageExtension(Extension):
    """Register one with ``storage_register`` and the TaskManager awaits ``save_task(task)`` after
    every state change of every task (pending, in_progress, completed, failed, cancelled), and
    ``TaskRepository.get_task_by_id`` asks ``get_task(task_id)`` for ids the main store lacks.
    """

    category: ClassVar[ExtensionCategory] = ExtensionCategory.STORAGE

    async def save_task(self, task: Any) -> Any:
        """Persist ``task`` (a TaskModel instance) wherever this storage keeps tasks."""
        raise NotImplementedError

    async def get_task(self, task_id: str) -> Any:
        """Return the task with this id, or None when this storage does not hold it."""
        raise NotImplementedError
