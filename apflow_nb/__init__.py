"""apflow_nb: a Jupyter-native task orchestrator.

The names below load on first use, so ``import apflow_nb`` stays fast and never pulls in
SQLAlchemy, IPython, ipywidgets or pandas before they are needed.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "ExecutableTask": "apflow_nb.core.interfaces.executable_task",
    "BaseTask": "apflow_nb.core.base.base_task",
    "TaskStatus": "apflow_nb.core.types",
    "TaskTreeNode": "apflow_nb.core.types",
    "Extension": "apflow_nb.core.extensions.base",
    "ExtensionCategory": "apflow_nb.core.extensions.types",
    "StorageExtension": "apflow_nb.core.extensions.storage",
    "Tool": "apflow_nb.core.tools.base",
    "executor_register": "apflow_nb.core.extensions.decorators",
    "storage_register": "apflow_nb.core.extensions.decorators",
    "hook_register": "apflow_nb.core.extensions.decorators",
    "tool_register": "apflow_nb.core.extensions.decorators",
    "register_pre_hook": "apflow_nb.core.extensions.decorators",
    "register_post_hook": "apflow_nb.core.extensions.decorators",
    "register_task_tree_hook": "apflow_nb.core.extensions.decorators",
    "get_registry": "apflow_nb.core.extensions.registry",
    "get_tool": "apflow_nb.core.tools.registry",
    "TaskManager": "apflow_nb.core.execution.task_manager",
    "create_session": "apflow_nb.core.storage.session",
    "TaskRepository": "apflow_nb.core.storage.sqlalchemy.task_repository",
    "set_task_model_class": "apflow_nb.core.storage.sqlalchemy.models",
    "get_task_model_class": "apflow_nb.core.storage.sqlalchemy.models",
    "Event": "apflow_nb.core.events",
    "EventType": "apflow_nb.core.events",
    "subscribe": "apflow_nb.core.events",
    "function_executor": "apflow_nb.core.base.function_task",
    "secret_resolver": "apflow_nb.core.secrets",
    "mask_url": "apflow_nb.core.storage.urls",
    "errors": "apflow_nb.core.errors",
    "clear_cache": "apflow_nb.core.storage.cache",
    # notebook layer (imports IPython/ipywidgets only when used)
    "run": "apflow_nb.notebook.run",
    "Run": "apflow_nb.notebook.run",
    "allow_nested_loop": "apflow_nb.notebook.loop",
    "graph": "apflow_nb.notebook.graph",
    "watch": "apflow_nb.notebook.watch",
    "Watch": "apflow_nb.notebook.watch",
    "cancel": "apflow_nb.notebook.control",
    "CancelOutcome": "apflow_nb.notebook.control",
    # history as DataFrames (imports pandas only when used); a package named "history" would shadow the function
    "history": "apflow_nb.analysis",
    "events": "apflow_nb.analysis",
    "timeline": "apflow_nb.analysis",
    "compare": "apflow_nb.analysis",
    "index": "apflow_nb.analysis",
    "rebuild_key_catalog": "apflow_nb.analysis",
}

__all__ = sorted(_LAZY) + ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'apflow_nb' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if name == "errors" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext apflow_nb``: register the ``%%executor``, ``%%tree`` and ``%apflow`` magics."""
    from apflow_nb.notebook.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext apflow_nb``: remove the magics and their cell hook (``%reload_ext`` works too)."""
    from apflow_nb.notebook.magics import unload_ipython_extension as _unload

    _unload(ipython)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from apflow_nb.core.base.base_task import BaseTask
    from apflow_nb.core.events import Event, EventType, subscribe
    from apflow_nb.core.execution.task_manager import TaskManager
    from apflow_nb.core.extensions.base import Extension
    from apflow_nb.core.extensions.decorators import (
        executor_register, hook_register, register_post_hook, register_pre_hook,
        register_task_tree_hook, storage_register, tool_register,
    )
    from apflow_nb.core.extensions.registry import get_registry
    from apflow_nb.core.extensions.storage import StorageExtension
    from apflow_nb.core.extensions.types import ExtensionCategory
    from apflow_nb.core.interfaces.executable_task import ExecutableTask
    from apflow_nb.core.secrets import secret_resolver
    from apflow_nb.core.storage.session import create_session
    from apflow_nb.core.storage.sqlalchemy.models import get_task_model_class, set_task_model_class
    from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository
    from apflow_nb.core.storage.urls import mask_url
    from apflow_nb.core.tools.base import Tool
    from apflow_nb.core.tools.registry import get_tool
    from apflow_nb.core.types import TaskStatus, TaskTreeNode
    from apflow_nb.core.base.function_task import function_executor
    from apflow_nb.notebook.graph import graph
    from apflow_nb.notebook.control import CancelOutcome, cancel
    from apflow_nb.notebook.watch import Watch, watch
