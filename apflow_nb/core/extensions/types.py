"""ExtensionCategory: what kind of thing an extension is."""
from __future__ import annotations

from enum import Enum


class ExtensionCategory(str, Enum):
    """Extensions are grouped by category in the registry."""

    EXECUTOR = "executor"  # implements ExecutableTask
    STORAGE = "storage"  # StorageExtension: mirrors or serves tasks
    HOOK = "hook"  # pre/post execution and task-tree hooks
    TOOL = "tool"  # reusable utilities executors call

    def __str__(self) -> str:
        return self.value
