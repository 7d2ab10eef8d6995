"""What a graph shows, independent of drawing: tasks (id, key, executor, parent), their dependency
edges (optional or required), and the task objects behind them for the details panels.

Built from a TaskTreeNode (a run, live or stored) or from a task array (a plan, never stored).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from apflow_nb.core.types import executor_id_of, key_of


@dataclass
class GraphTask:
    """One task as the graph needs it."""

    id: str
    key: str
    name: str
    executor: str
    parent_id: str | None
    depth: int
    deps: list[tuple[str, bool]] = field(default_factory=list)  # (dependency id, required)


@dataclass
class GraphSpec:
    """Tasks in tree order, their index, and the objects (TaskModel rows or dicts) behind them."""

    tasks: list[GraphTask]
    root_id: str
    sources: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.index = {t.id: i for i, t in enumerate(self.tasks)}

    def edges(self) -> list[tuple[int, int, bool]]:
        """(dependency index, dependent index, required) for every dependency inside the tree."""
        index = self.index
        return [(index[d], i, req) for i, t in enumerate(self.tasks) for d, req in t.deps if d in index]


def _deps(raw: Any) -> list[tuple[str, bool]]:
    out = []
    for dep in raw or ():
        if isinstance(dep, str):
            out.append((dep, True))
        elif isinstance(dep, dict) and dep.get("id") is not None:
            out.append((str(dep["id"]), bool(dep.get("required", True))))
    return out


def spec_from_tree(node: Any) -> GraphSpec:
    """The graph of a TaskTreeNode: every task of the tree, children in the tree's order."""
    tasks, sources = [], {}
    for n, depth in node.walk_with_depth():
        t = n.task
        parent = n.parent
        tasks.append(GraphTask(id=t.id, key=str(key_of(t)), name=t.name, executor=executor_id_of(t),
                               parent_id=parent.task.id if parent is not None else None, depth=depth,
                               deps=_deps(getattr(t, "dependencies", None))))
        sources[t.id] = t
    return GraphSpec(tasks, node.task.id, sources)


def spec_from_array(array: Iterable[dict[str, Any]]) -> GraphSpec:
    """The graph of a task array, checked as ``%%tree`` checks it (shape, ids, cycles) but not stored
    and with no executor required: a plan can be drawn before its executors exist."""
    from apflow_nb.core.storage.task_array import normalize_task_array

    specs = normalize_task_array(list(array))
    by_id = {s["id"]: s for s in specs}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in specs:
        children.setdefault(s["parent_id"], []).append(s)
    tasks, sources = [], {}
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:  # tree order: parents first, siblings in the array's order
        s, depth = stack.pop()
        tasks.append(GraphTask(id=s["id"], key=s["key"], name=s["name"], executor=executor_id_of(s),
                               parent_id=s["parent_id"], depth=depth,
                               deps=[(d["id"], bool(d.get("required", True))) for d in s["dependencies"]]))
        sources[s["id"]] = s
        stack.extend((c, depth + 1) for c in reversed(children.get(s["id"], [])))
    root = children[None][0]["id"]
    assert len(tasks) == len(by_id)
    return GraphSpec(tasks, root, sources)
