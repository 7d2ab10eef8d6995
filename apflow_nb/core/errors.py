"""Named errors of apflow_nb. Each says what was wrong, where, and how to fix it."""
from __future__ import annotations


class ApflowError(Exception):
    """Base class of every error apflow_nb raises on purpose."""


class TaskFieldError(ApflowError, ValueError):
    """A task field has a value the store cannot hold (or one the engine owns); nothing was written."""


class TaskTreeError(ApflowError, ValueError):
    """A task tree is malformed; raised before anything runs or is written."""


class CircularDependencyError(TaskTreeError):
    """Tasks depend on each other in a cycle."""

    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__(
            "Circular dependency detected: " + " -> ".join(cycle)
            + ". Remove one of these dependencies so the tasks can be ordered."
        )


class DuplicateTaskIdError(TaskTreeError):
    """The same task id appears twice in one tree or task array."""


class UnknownDependencyError(TaskTreeError):
    """A task depends on an id that is not part of the tree."""


class TaskArrayError(TaskTreeError, TaskFieldError):
    """A task array (the list-of-dicts tree format) is malformed."""


class ExecutorNotFoundError(ApflowError, LookupError):
    """No executor is registered under the requested id."""


class ToolNotFoundError(ApflowError, LookupError):
    """No tool is registered under the requested id."""


class InputValidationError(ApflowError, ValueError):
    """Inputs do not match an executor's or tool's schema."""


class UnknownTaskFieldError(ApflowError, TypeError):
    """create_task got a keyword that is not a column of the task model."""


class TaskNotFoundError(ApflowError, LookupError):
    """No task with this id in the store."""


class SchemaMismatchError(ApflowError, RuntimeError):
    """The table in the store does not match the task model and cannot be fixed automatically."""


class TreeAlreadyRunningError(ApflowError, RuntimeError):
    """A tree is being run twice at the same time in this process."""


class NestedLoopError(ApflowError, RuntimeError):
    """A blocking call was made inside a running event loop."""


class StoreNotFoundError(ApflowError, FileNotFoundError):
    """A store that should be read does not exist (reading never creates one)."""


class NoRunningTreeError(ApflowError, LookupError):
    """Nothing runs in the store now, so there is no newest running tree to watch."""
