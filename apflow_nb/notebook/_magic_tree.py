"""``%%tree``'s parsing and checking: the cell's JSON or YAML, as a checked task array."""
from __future__ import annotations

import json
from typing import Any

from IPython.core.error import UsageError


def parse_tree_text(text: str) -> list[dict[str, Any]]:
    """A task array from JSON or YAML text: a list of tasks, a mapping with a ``tasks`` list,
    or one task (a mapping with a ``name``). Errors are one-line UsageErrors with line and column."""
    if not text.strip():
        raise UsageError("%%tree: the cell is empty; write the task array as JSON or YAML")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            import yaml
        except ImportError:  # pragma: no cover - pyyaml is a dependency
            raise UsageError(f"%%tree: not valid JSON (line {json_error.lineno}, column {json_error.colno}: "
                             f"{json_error.msg}); for YAML install pyyaml") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as yaml_error:
            looks_json = text.lstrip()[:1] in "[{"
            if looks_json:
                where = f"line {json_error.lineno}, column {json_error.colno}: {json_error.msg}"
                raise UsageError(f"%%tree: not valid JSON ({where})") from None
            raise UsageError(f"%%tree: not valid YAML ({_yaml_where(yaml_error)})") from None
    if isinstance(data, dict) and "tasks" in data:
        data = data["tasks"]
    elif isinstance(data, dict) and "name" in data:
        data = [data]  # a single task
    if not isinstance(data, list):
        raise UsageError(f"%%tree: the cell must hold a list of tasks (JSON or YAML), "
                         f"got {type(data).__name__}: {str(data)[:80]!r}")
    return data


def _yaml_where(error: Any) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def check_task_array(tasks: list[dict[str, Any]]) -> None:
    """Every check ``%%tree`` makes before touching a store: the array's shape, ids, parents,
    dependencies (cycles), executors and the inputs of tasks without dependencies.

    Raises the core's named errors (TaskArrayError, CircularDependencyError,
    ExecutorNotFoundError, InputValidationError), whose messages name the task and field.
    """
    from apflow_nb.core.storage.task_array import check_executors, normalize_task_array

    check_executors(normalize_task_array(tasks))


def one_line(exc: BaseException, *urls: Any) -> str:
    """``Name: message`` on one line (pydantic messages span several), with every password this
    process knows (and those of ``urls``) masked."""
    from apflow_nb.core.storage.urls import message_of

    return message_of(exc, *urls)
