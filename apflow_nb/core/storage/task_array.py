"""The task-array format (a list of task dicts), as the original project and ``%%tree`` use it.

Each task: ``name`` (required), ``id`` (all tasks or none), ``parent_id``, ``dependencies``
(``[{"id": ..., "required": true}]`` or plain ids), ``inputs``, ``priority``, ``schemas``,
``params``, ``user_id`` and any custom column of the task model. Without ids, tasks refer to each
other by name (names must then be unique). Everything is checked before anything is written.

Keys and ids: the id a task has in the array (or its name, when the array has no ids) is its
*key*, stored in the ``key`` column and shown everywhere. A stored id must be unique, and the same
array may run many times, so each storing of an array is a new run: when none of its ids is taken
yet they are stored as written; otherwise *every* task of the run gets ``<key>@<run tag>`` (one
fresh tag for the whole run). The decision and the insert are one step: if another process takes
the ids between them, the insert fails as a whole and is retried with a fresh tag.
"""
from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Sequence

from apflow_nb.core.errors import (
    CircularDependencyError, DuplicateTaskIdError, ExecutorNotFoundError, InputValidationError, TaskArrayError,
)
from apflow_nb.core.tree_check import find_cycle
from apflow_nb.core.gc_pause import gc_paused
from apflow_nb.core.storage.sqlalchemy.models import get_task_model_class, new_task_id
from apflow_nb.core.storage.task_fields import (
    MAX_ID_LENGTH, STANDARD_FIELDS, check_custom_fields, check_json_field, check_priority, check_text,
    normalize_dependencies, take_options,
)
from apflow_nb.core.types import TaskTreeNode, executor_id_of

if TYPE_CHECKING:
    from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository

ID_ATTEMPTS = 5


def task_label(i: int, task: Any) -> str:
    """How errors name a task: by the key the user wrote (``task 'b'``), by position only without one."""
    if isinstance(task, dict):
        key = task.get("id") if task.get("id") not in (None, "") else task.get("name")
        if isinstance(key, str) and key:
            return f"task {key!r}"
    return f"task[{i}]"


def normalize_task_array(tasks: Any, model: type | None = None) -> list[dict[str, Any]]:
    """Check a task array and return specs with ``key``, ``id`` and references resolved to ids.

    Raises TaskArrayError (or CircularDependencyError, UnknownTaskFieldError) naming the task (by
    its key) and field. ``model`` is the TaskModel whose custom columns tasks may set (default: the one in use).
    """
    if not isinstance(tasks, (list, tuple)):
        raise TaskArrayError(f"a task array must be a list of task dicts, got {type(tasks).__name__}")
    if not tasks:
        raise TaskArrayError("the task array is empty: give at least one task")
    for i, t in enumerate(tasks):
        if not isinstance(t, dict):
            raise TaskArrayError(f"task[{i}] must be a dict, got {type(t).__name__}")
        check_text(t.get("name"), "name", task_label(i, t), required=True, error=TaskArrayError)
        if t.get("id") not in (None, ""):
            check_text(t["id"], "id", task_label(i, t), max_length=MAX_ID_LENGTH, error=TaskArrayError)
    keys = _keys(tasks)
    ids = {key: (key if tasks[0].get("id") else new_task_id()) for key in keys}
    out = [_spec(i, t, keys[i], ids) for i, t in enumerate(tasks)]
    model = model or get_task_model_class()
    for i, spec in enumerate(out):
        extra = {k: v for k, v in spec.items() if k not in STANDARD_FIELDS}
        if extra:
            check_custom_fields(extra, model, task_label(i, tasks[i]), error=TaskArrayError)
    _check_tree_shape(out)
    return out


def _keys(tasks: Sequence[dict[str, Any]]) -> list[str]:
    with_id = [t.get("id") not in (None, "") for t in tasks]
    if any(with_id) and not all(with_id):
        missing = [f"task[{i}] {t['name']!r}" for i, t in enumerate(tasks) if not with_id[i]]
        raise TaskArrayError(f"either every task has an 'id' or none does; missing in {', '.join(missing)}")
    by_name = not with_id[0]
    keys = [t["name"] if by_name else t["id"] for t in tasks]
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            what = "name" if by_name else "id"
            raise TaskArrayError(f"task[{i}]: duplicate {what} {key!r} (also task[{seen[key]}]); "
                                 + ("without ids, task names must be unique" if by_name else "ids must be unique"))
        seen[key] = i
    return keys


def _spec(i: int, t: dict[str, Any], key: str, ids: dict[str, str]) -> dict[str, Any]:
    where = task_label(i, t)
    spec = dict(t)
    spec["key"], spec["id"] = key, ids[key]
    parent = t.get("parent_id")
    if parent in (None, ""):
        spec["parent_id"] = None
    else:
        if not isinstance(parent, str) or parent not in ids:
            raise TaskArrayError(f"{where}: parent_id {parent!r} is not a task of this array")
        if parent == key:
            raise TaskArrayError(f"{where}: a task cannot be its own parent")
        spec["parent_id"] = ids[parent]
    deps = normalize_dependencies(t.get("dependencies"), where=f"{where} dependencies", error=TaskArrayError)
    for dep in deps:
        if dep["id"] not in ids:
            raise TaskArrayError(f"{where}: dependency {dep['id']!r} is not a task of this array")
        dep["id"] = ids[dep["id"]]
    spec["dependencies"] = deps
    for field in ("inputs", "schemas", "params"):
        check_json_field(spec.get(field), field, where, error=TaskArrayError)
    check_priority(spec.setdefault("priority", 2), where, error=TaskArrayError)
    options = take_options(spec, where, error=TaskArrayError)
    spec.update(options or {})  # checked here; create_task stores them as the task's options
    check_text(spec.get("user_id"), "user_id", where, error=TaskArrayError)
    return spec


def _check_tree_shape(specs: list[dict[str, Any]]) -> None:
    """One root; every task reaches it through parent links (linear time); no dependency cycle."""
    roots = [s for s in specs if not s["parent_id"]]
    if len(roots) != 1:
        keys = ", ".join(repr(s["key"]) for s in roots) or "none"
        raise TaskArrayError(f"a task tree needs exactly one root (a task without parent_id); found {len(roots)}: {keys}")
    parent_of = {s["id"]: s["parent_id"] for s in specs}
    reaches: dict[str, bool] = {roots[0]["id"]: True}
    for s in specs:  # each task is walked once: later walks stop at a task already decided
        path: list[str] = []
        on_path: set[str] = set()
        node = s["id"]
        while node not in reaches and node not in on_path:
            path.append(node)
            on_path.add(node)
            node = parent_of[node]
        ok = reaches.get(node, False)
        reaches.update(dict.fromkeys(path, ok))
        if not ok:
            raise TaskArrayError(f"task {s['key']!r} is not reachable from the root {roots[0]['key']!r} "
                                 f"through parent_id links (its parents form a loop)")
    key_of = {s["id"]: s["key"] for s in specs}
    try:
        find_cycle({s["id"]: [d["id"] for d in s["dependencies"]] for s in specs})
    except CircularDependencyError as exc:
        raise CircularDependencyError([key_of[c] for c in exc.cycle]) from None


def check_executors(specs: Sequence[dict[str, Any]]) -> None:
    """Every task's executor is registered, and the inputs of tasks without dependencies are valid."""
    from apflow_nb.core.extensions.registry import get_registry
    from apflow_nb.core.extensions.types import ExtensionCategory

    registry = get_registry()
    for i, spec in enumerate(specs):
        where = f"task {spec.get('key', spec.get('id'))!r}" if spec.get("key") or spec.get("id") else f"task[{i}]"
        executor_id = executor_id_of(spec)
        entry = registry.get(ExtensionCategory.EXECUTOR, executor_id)
        if entry is None:
            known = ", ".join(registry.ids(ExtensionCategory.EXECUTOR))
            raise ExecutorNotFoundError(f"{where}: no executor registered as {executor_id!r} (registered: {known})")
        if not spec.get("dependencies"):
            try:
                entry.create().validate_inputs(dict(spec.get("inputs") or {}))
            except InputValidationError as exc:
                raise InputValidationError(f"{where}: {exc}") from None


def create_task_tree_from_array(repository: "TaskRepository", tasks: Any, *, user_id: str | None = None,
                                validate_executors: bool = False) -> TaskTreeNode:
    """Check, store and return a task array as a TaskTreeNode: a new run (nothing is written if a check fails)."""
    with gc_paused():
        return _create(repository, tasks, user_id, validate_executors)


def _create(repository: "TaskRepository", tasks: Any, user_id: str | None, validate_executors: bool) -> TaskTreeNode:
    check_text(user_id, "user_id", "the run", error=TaskArrayError)
    specs = normalize_task_array(tasks, repository.model)
    if validate_executors:
        check_executors(specs)
    for s in specs:
        if user_id is not None and not s.get("user_id"):
            s["user_id"] = user_id
    specs = _parents_first(specs)
    tag = None
    if any(s["id"] == s["key"] for s in specs) and repository.existing_ids(s["id"] for s in specs):
        tag = _run_tag()
    for attempt in range(ID_ATTEMPTS):
        try:
            created = repository.create_tasks(_with_tag(specs, tag) if tag else specs)
            break
        except DuplicateTaskIdError:
            if attempt == ID_ATTEMPTS - 1:
                raise
            tag = _run_tag()  # another process took these ids meanwhile: a fresh run tag for all
    return _tree(created, specs)


def _run_tag() -> str:
    return secrets.token_hex(4)


def _with_tag(specs: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """The same run with every id replaced by ``<key>@<tag>`` (references follow)."""
    remap = {s["id"]: f"{s['key']}@{tag}" for s in specs}
    out = []
    for s in specs:
        row = dict(s, id=remap[s["id"]], parent_id=remap.get(s["parent_id"]) if s["parent_id"] else None)
        row["dependencies"] = [dict(d, id=remap[d["id"]]) for d in s["dependencies"]]
        out.append(row)
    return out


def _parents_first(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The specs ordered so each parent comes before its children (siblings keep the array's order)."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in specs:
        children.setdefault(s["parent_id"], []).append(s)
    out: list[dict[str, Any]] = []
    level = children.get(None, [])
    while level:
        out.extend(level)
        level = [c for s in level for c in children.get(s["id"], ())]
    return out


def _tree(created: list[Any], specs: list[dict[str, Any]]) -> TaskTreeNode:
    """TaskTreeNodes of the stored tasks, siblings in the array's order."""
    nodes = {t.key: TaskTreeNode(t) for t in created}
    key_of = {s["id"]: s["key"] for s in specs}
    root = None
    for s in specs:
        if s["parent_id"]:
            nodes[key_of[s["parent_id"]]].add_child(nodes[s["key"]])
        else:
            root = nodes[s["key"]]
    assert root is not None
    return root
