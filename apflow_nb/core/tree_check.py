"""Checking a task graph before it is stored or run: duplicate ids, unknown dependencies, cycles.

``names`` map ids to the keys users wrote, so messages name tasks as the user knows them.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from apflow_nb.core.errors import CircularDependencyError, DuplicateTaskIdError, UnknownDependencyError


def check_unique(ids: Iterable[str], *, where: str = "the tree") -> None:
    """Raise DuplicateTaskIdError for the first id seen twice."""
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            raise DuplicateTaskIdError(f"task id {task_id!r} appears more than once in {where}; "
                                       f"give every task its own id.")
        seen.add(task_id)


def check_dependencies(deps_by_id: Mapping[str, "list[str] | tuple[str, ...]"], names: Mapping[str, str] | None = None) -> None:
    """Every dependency must be a task of the graph, and the graph must have no cycle."""
    names = names or {}
    for task_id, deps in deps_by_id.items():
        for dep in deps:
            if dep not in deps_by_id:
                key = names.get(task_id) or task_id
                label = repr(key) if key == task_id else f"{key!r} ({task_id})"
                raise UnknownDependencyError(
                    f"task {label} depends on {dep!r}, which is not part of the tree. "
                    f"Add that task to the tree or remove the dependency.")
    find_cycle(deps_by_id)


def find_cycle(deps_by_id: Mapping[str, "list[str] | tuple[str, ...]"]) -> None:
    """Raise CircularDependencyError with the cycle's path, e.g. ``a -> b -> a``."""
    if _points_back(deps_by_id):
        return
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(deps_by_id, WHITE)
    for start, deps in deps_by_id.items():
        if not deps or color[start] != WHITE:  # a task without dependencies is on no cycle
            continue
        path = [start]
        iters = [iter(deps_by_id[start])]
        color[start] = GREY
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                color[path.pop()] = BLACK
                iters.pop()
                continue
            state = color.get(nxt, BLACK)
            if state == GREY:
                cycle = path[path.index(nxt):] + [nxt]
                raise CircularDependencyError(cycle)
            if state == WHITE:
                color[nxt] = GREY
                path.append(nxt)
                iters.append(iter(deps_by_id[nxt]))


def _points_back(deps_by_id: Mapping[str, "list[str] | tuple[str, ...]"]) -> bool:
    """True when every dependency is a task listed before the task that needs it (the usual way of writing a
    tree): the graph then has no cycle, shown with one look-up per dependency instead of a search."""
    position = {task_id: i for i, task_id in enumerate(deps_by_id)}
    get = position.get
    return all(get(dep, -1) < i for i, deps in enumerate(deps_by_id.values()) for dep in deps)
