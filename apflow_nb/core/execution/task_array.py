"""The task-array format (a list of task dicts), as the original project and ``%%tree`` use it.

Each task: ``name`` (required), ``id`` (all tasks or none), ``parent_id``, ``dependencies``
(``[{"id": ..., "required": true}]`` or plain ids), ``inputs``, ``priority``, ``schemas``,
``params``, ``user_id`` and any custom column of the task model. Without ids, tasks refer to each
other by name (names must then be unique). Everything is checked before anything is written;
ids already in the store are replaced by fresh ones, with every reference remapped.
"""
from __future__ import annotations

from typing import Any, Sequence

from apflow_nb.core.errors import CircularDependencyError, TaskArrayError
from apflow_nb.core.execution.tree_check import find_cycle
from apflow_nb.core.storage.sqlalchemy.models import new_task_id
from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository, json_problem, normalize_dependencies
from apflow_nb.core.types import TaskTreeNode

KNOWN_KEYS = {"id", "name", "parent_id", "dependencies", "inputs", "priority", "schemas", "params", "user_id"}


def _label(i: int, task: dict[str, Any]) -> str:
    name = task.get("name") if isinstance(task, dict) else None
    return f"task[{i}]" + (f" {name!r}" if name else "")


def normalize_task_array(tasks: Any) -> list[dict[str, Any]]:
    """Check a task array and return it with ids assigned and references resolved to ids.

    Raises TaskArrayError (or CircularDependencyError) naming the task and field at fault.
    """
    if not isinstance(tasks, (list, tuple)):
        raise TaskArrayError(f"a task array must be a list of task dicts, got {type(tasks).__name__}")
    if not tasks:
        raise TaskArrayError("the task array is empty: give at least one task")
    for i, t in enumerate(tasks):
        if not isinstance(t, dict):
            raise TaskArrayError(f"task[{i}] must be a dict, got {type(t).__name__}")
        if not isinstance(t.get("name"), str) or not t["name"].strip():
            raise TaskArrayError(f"task[{i}] has no name: every task needs a 'name' (the executor id)")
    with_id = [bool(t.get("id")) for t in tasks]
    if any(with_id) and not all(with_id):
        missing = [_label(i, t) for i, t in enumerate(tasks) if not t.get("id")]
        raise TaskArrayError(f"either every task has an 'id' or none does; missing in {', '.join(missing)}")
    by_name = not with_id[0]
    keys = [t["name"] if by_name else str(t["id"]) for t in tasks]
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            what = "name" if by_name else "id"
            raise TaskArrayError(f"{_label(i, tasks[i])}: duplicate {what} {key!r} (also task[{seen[key]}]); "
                                 + ("without ids, task names must be unique" if by_name else "ids must be unique"))
        seen[key] = i
    ids = {key: (new_task_id() if by_name else key) for key in keys}
    out: list[dict[str, Any]] = []
    for i, t in enumerate(tasks):
        spec = {k: v for k, v in t.items()}
        spec["id"] = ids[keys[i]]
        parent = t.get("parent_id")
        if parent not in (None, ""):
            if str(parent) not in ids:
                raise TaskArrayError(f"{_label(i, t)}: parent_id {parent!r} is not a task of this array")
            if str(parent) == keys[i]:
                raise TaskArrayError(f"{_label(i, t)}: a task cannot be its own parent")
            spec["parent_id"] = ids[str(parent)]
        else:
            spec["parent_id"] = None
        try:
            deps = normalize_dependencies(t.get("dependencies"), where=f"{_label(i, t)} dependencies")
        except ValueError as exc:
            raise TaskArrayError(str(exc)) from None
        for dep in deps:
            if dep["id"] not in ids:
                raise TaskArrayError(f"{_label(i, t)}: dependency {dep['id']!r} is not a task of this array")
            dep["id"] = ids[dep["id"]]
        spec["dependencies"] = deps
        for field in ("inputs", "schemas", "params"):
            if spec.get(field) is not None and not isinstance(spec[field], dict):
                raise TaskArrayError(f"{_label(i, t)}: {field} must be a dict, got {type(spec[field]).__name__}")
            problem = json_problem(spec.get(field))
            if problem:
                raise TaskArrayError(f"{_label(i, t)}: {field} cannot be stored as JSON ({problem})")
        prio = spec.get("priority", 2)
        if isinstance(prio, bool) or not isinstance(prio, int) or prio < 0:
            raise TaskArrayError(f"{_label(i, t)}: priority must be an integer 0 (urgent) to 3 (low), got {prio!r}")
        out.append(spec)
    roots = [s for s in out if not s["parent_id"]]
    if len(roots) != 1:
        names = ", ".join(repr(s["name"]) for s in roots) or "none"
        raise TaskArrayError(f"a task tree needs exactly one root (a task without parent_id); found {len(roots)}: {names}")
    # every task must reach the root through its parents (no parent cycles)
    parent_of = {s["id"]: s["parent_id"] for s in out}
    root_id = roots[0]["id"]
    for i, s in enumerate(out):
        node, hops = s["id"], 0
        while node != root_id:
            node = parent_of[node]
            hops += 1
            if node is None or hops > len(out):
                raise TaskArrayError(f"{_label(i, tasks[i])} is not reachable from the root "
                                     f"{roots[0]['name']!r} through parent_id links")
    names = {s["id"]: s["name"] for s in out}
    try:
        find_cycle({s["id"]: [d["id"] for d in s["dependencies"]] for s in out})
    except CircularDependencyError as exc:
        readable = [names[c] if by_name else c for c in exc.cycle]
        raise CircularDependencyError(readable) from None
    return out


def check_executors(specs: Sequence[dict[str, Any]]) -> None:
    """Every task's executor is registered, and the inputs of tasks without dependencies are valid."""
    from apflow_nb.core.errors import ExecutorNotFoundError, InputValidationError
    from apflow_nb.core.execution.task_manager import executor_id_of
    from apflow_nb.core.extensions.registry import get_registry
    from apflow_nb.core.extensions.types import ExtensionCategory

    registry = get_registry()

    class _View:
        def __init__(self, spec: dict[str, Any]):
            self.name = spec["name"]
            self.params = spec.get("params")
            self.schemas = spec.get("schemas")

    for i, spec in enumerate(specs):
        executor_id = executor_id_of(_View(spec))
        entry = registry.get(ExtensionCategory.EXECUTOR, executor_id)
        if entry is None:
            known = ", ".join(registry.ids(ExtensionCategory.EXECUTOR))
            raise ExecutorNotFoundError(f"{_label(i, spec)}: no executor registered as {executor_id!r} "
                                        f"(registered: {known})")
        if not spec.get("dependencies"):
            try:
                entry.create().validate_inputs(dict(spec.get("inputs") or {}))
            except InputValidationError as exc:
                raise InputValidationError(f"{_label(i, spec)}: {exc}") from None


def create_task_tree_from_array(repository: TaskRepository, tasks: Any, *, user_id: str | None = None,
                                validate_executors: bool = False) -> TaskTreeNode:
    """Check, store and return a task array as a TaskTreeNode (nothing is written if a check fails)."""
    specs = normalize_task_array(tasks)
    if validate_executors:
        check_executors(specs)
    # ids already in the store get fresh ones; references follow
    existing = {t.id for t in repository.session.query(repository.model.id)
                .filter(repository.model.id.in_([s["id"] for s in specs])).all()}
    if existing:
        remap = {old: new_task_id() for old in existing}
        for s in specs:
            s["id"] = remap.get(s["id"], s["id"])
            if s["parent_id"]:
                s["parent_id"] = remap.get(s["parent_id"], s["parent_id"])
            for d in s["dependencies"]:
                d["id"] = remap.get(d["id"], d["id"])
    rows = []
    for s in specs:
        row = dict(s)
        if user_id is not None and not row.get("user_id"):
            row["user_id"] = user_id
        rows.append(row)
    # parents first, so each child's root is known
    order = {s["id"]: i for i, s in enumerate(specs)}
    depth: dict[str, int] = {}
    for s in specs:
        chain, node = [], s["id"]
        while node not in depth:
            parent = specs[order[node]]["parent_id"]
            if not parent:
                depth[node] = 0
                break
            chain.append(node)
            node = parent
        base = depth[node]
        for offset, task_id in enumerate(reversed(chain), start=1):
            depth[task_id] = base + offset

    def depth_of(task_id: str) -> int:
        return depth[task_id]

    rows.sort(key=lambda r: depth_of(r["id"]))
    tasks_created = repository.create_tasks(rows)
    nodes = {t.id: TaskTreeNode(t) for t in tasks_created}
    root = None
    for s in specs:  # keep the array's order among siblings
        node = nodes[s["id"]]
        if s["parent_id"]:
            nodes[s["parent_id"]].add_child(node)
        else:
            root = node
    assert root is not None
    return root
