"""ExecutableTask: the interface every executor implements (the seed's Method 1)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

from apflow_nb.core.extensions.base import Extension
from apflow_nb.core.extensions.types import ExtensionCategory


class ExecutableTask(Extension, ABC):
    """An executor: ``async execute(inputs) -> dict`` plus an optional JSON Schema and ``cancel``.

    Before ``execute`` the TaskManager sets, on a fresh copy of the registered executor:
    ``task_id``, ``event_queue`` (``await event_queue.put({...})`` streams events),
    ``cancellation_checker`` (a callable that turns true once the task is cancelled) and ``task``
    (the stored TaskModel). Subclasses need no ``__init__``.
    """

    category: ClassVar[ExtensionCategory] = ExtensionCategory.EXECUTOR

    task_id: str | None = None
    event_queue: Any = None
    cancellation_checker: Callable[[], bool] | None = None
    task: Any = None

    @abstractmethod
    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Do the work and return a JSON-serialisable result.

        Return ``{"status": "failed", "error": ...}`` to fail the task, ``{"status": "cancelled"}``
        to end it cancelled; anything else completes it.
        """

    def get_input_schema(self) -> dict[str, Any]:
        """A JSON Schema for ``inputs``; enforced (defaults filled) before ``execute``. Empty: no check."""
        return {}

    async def cancel(self) -> dict[str, Any]:
        """Called once when the task is cancelled while running; release resources here."""
        return {"status": "cancelled", "message": "Task cancelled"}

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check ``inputs`` against the schema and return them with defaults filled in."""
        from apflow_nb.core.validation import validate_json_schema

        return validate_json_schema(self.get_input_schema(), inputs, owner=f"executor {self.id!r}")

    def get_tool(self, tool_id: str) -> Any:
        """The registered tool with this id (a fresh instance), for use inside ``execute``."""
        from apflow_nb.core.tools.registry import get_tool

        return get_tool(tool_id)

    def is_cancelled(self) -> bool:
        """Shorthand for ``cancellation_checker()`` that is False when no checker is set."""
        checker = self.cancellation_checker
        return bool(checker and checker())
