"""The vocabulary every layer shares: TaskStatus, the final statuses, executor_id_of, TaskTreeNode.

Statuses are defined here once; the engine, the views and history all import them from here.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Iterator


class TaskStatus(str, Enum):
    """The life cycle of a task. ``str`` subclass, so ``TaskStatus.COMPLETED == "completed"``."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:  # "completed", not "TaskStatus.COMPLETED"
        return self.value

    @property
    def is_final(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in _FINAL


_FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
FINAL_STATUSES = frozenset(s.value for s in _FINAL)

# plain-string forms, for hot paths and comparisons with stored values
PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = (s.value for s in TaskStatus)
STATUSES = tuple(s.value for s in TaskStatus)

# error types the engine stores for tasks that never ran because of an upstream task
DEPENDENCY_FAILED = "DependencyFailed"
DEPENDENCY_CANCELLED = "DependencyCancelled"


def executor_id_of(task: Any) -> str:
    """Which executor runs ``task``: ``params["executor_id"]``, else ``schemas["method"]``, else its name.

    ``task`` is anything with ``name``, ``params`` and ``schemas`` (a TaskModel row or a task-array dict).
    """
    if isinstance(task, dict):
        params, schemas, name = task.get("params"), task.get("schemas"), task.get("name")
    else:
        params, schemas, name = task.params, task.schemas, task.name
    if params and isinstance(params, dict) and params.get("executor_id"):
        return str(params["executor_id"])
    if schemas and isinstance(schemas, dict) and schemas.get("method"):
        return str(schemas["method"])
    return name


def key_of(task: Any) -> str:
    """The name the user knows a task by (its ``key``: the id they gave it, else its name); rows stored
    before keys existed answer their id."""
    return getattr(task, "key", None) or task.id

# Keys that TaskTreeNode answers with ``node[key]``: the task's own columns.
_ITEM_KEYS = frozenset(
    {"id", "key", "name", "status", "result", "error", "progress", "inputs", "params", "schemas",
     "priority", "dependencies", "parent_id", "user_id", "created_at", "started_at",
     "updated_at", "completed_at"}
)


class TaskTreeNode:
    """A task and its children: what ``TaskManager.distribute_task_tree`` runs and returns.

    Parent/child is organisation only; dependencies decide the order of execution.
    ``node["status"]`` and ``node.status`` both read the node's task, so results read the same
    whichever style the caller prefers.
    """

    __slots__ = ("task", "children", "parent")

    def __init__(self, task: Any, children: list["TaskTreeNode"] | None = None):
        self.task = task
        self.children: list[TaskTreeNode] = []
        self.parent: TaskTreeNode | None = None
        for child in children or ():
            self.add_child(child)

    # -- building ---------------------------------------------------------------------
    def add_child(self, child: "TaskTreeNode | Any") -> "TaskTreeNode":
        """Append a child (a node or a task) and return its node."""
        node = child if isinstance(child, TaskTreeNode) else TaskTreeNode(child)
        node.parent = self
        self.children.append(node)
        return node

    # -- reading ----------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key in _ITEM_KEYS or hasattr(self.task, key):
            value = getattr(self.task, key)
            return value.value if isinstance(value, TaskStatus) else value
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """``node.get("result", {})``: like dict.get over the task's fields."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in _ITEM_KEYS or hasattr(self.task, key))

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: forward to the task (status, result, ...).
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            task = object.__getattribute__(self, "task")
        except AttributeError:
            raise AttributeError(name) from None
        return getattr(task, name)

    def walk(self) -> Iterator["TaskTreeNode"]:
        """Every node of the tree, parents before children (depth first)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def walk_with_depth(self) -> Iterator[tuple["TaskTreeNode", int]]:
        """Like :meth:`walk`, with each node's depth (the root is 0)."""
        stack = [(self, 0)]
        while stack:
            node, depth = stack.pop()
            yield node, depth
            stack.extend((c, depth + 1) for c in reversed(node.children))

    def tasks(self) -> list[Any]:
        """All tasks of the tree in tree order."""
        return [n.task for n in self.walk()]

    def find(self, task_id: str) -> "TaskTreeNode | None":
        """The node whose task has this id, else the one whose key (the id the user wrote) it is; or None."""
        by_key = None
        for node in self.walk():
            if node.task.id == task_id:
                return node
            if by_key is None and getattr(node.task, "key", None) == task_id:
                by_key = node
        return by_key

    def __len__(self) -> int:
        return sum(1 for _ in self.walk())

    def __bool__(self) -> bool:
        """A node is always truthy: `if node.parent` must not walk the subtree through __len__."""
        return True

    def __iter__(self) -> Iterator["TaskTreeNode"]:
        return self.walk()

    @property
    def tree_status(self) -> str:
        """The whole tree's outcome: failed if any task failed, else cancelled if any was
        cancelled, else in_progress/pending while work remains, else completed."""
        seen = {str(n.task.status) for n in self.walk()}
        for status in ("failed", "cancelled", "in_progress", "pending"):
            if status in seen:
                return status
        return "completed"

    def calculate_progress(self) -> float:
        """Mean progress of every task in the tree, 0..1 (final tasks count as 1)."""
        total = 0.0
        count = 0
        for n in self.walk():
            status = str(n.task.status)
            total += 1.0 if status in FINAL_STATUSES else float(n.task.progress or 0.0)
            count += 1
        return total / count if count else 1.0

    def to_dict(self) -> dict[str, Any]:
        """The tree as nested dicts (task fields plus ``children``)."""
        task = self.task
        to_dict = getattr(task, "to_dict", None)
        data = to_dict() if callable(to_dict) else {k: getattr(task, k, None) for k in _ITEM_KEYS}
        data["children"] = [c.to_dict() for c in self.children]
        return data

    def __repr__(self) -> str:
        t = self.task
        return (f"TaskTreeNode(id={getattr(t, 'id', None)!r}, name={getattr(t, 'name', None)!r}, "
                f"status={str(getattr(t, 'status', None))!r}, children={len(self.children)})")
