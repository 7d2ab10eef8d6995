"""Built-in executors: aggregate_results_executor and command_executor (off unless enabled)."""
from __future__ import annotations

from typing import Any


def register_builtins(registry: Any = None) -> None:
    """Register the built-in executors without replacing anything the user registered."""
    from apflow_nb.core.extensions.registry import RegistryEntry, get_registry
    from apflow_nb.core.extensions.types import ExtensionCategory
    from apflow_nb.executors.aggregate import AggregateResultsExecutor
    from apflow_nb.executors.shell import CommandExecutor

    registry = registry or get_registry()
    for cls in (AggregateResultsExecutor, CommandExecutor):
        registry.add(RegistryEntry(id=cls.id, category=ExtensionCategory.EXECUTOR, obj=cls, name=cls.name,
                                   description=cls.description, source="builtin"), replace=False)
