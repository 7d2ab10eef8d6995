"""Checks on the values a task row takes, shared by ``create_task`` and task arrays.

Every value is checked before anything is written, so a bad one is a named error that says which
task and field, and the session stays usable: nothing reaches the database that it would refuse
(an integer beyond 64 bits, a dict where a string goes, a lone surrogate or NUL character, a set
inside a JSON field). Columns the engine owns (status, result, timestamps, ...) are refused by name.
"""
from __future__ import annotations

from typing import Any, Iterable

from apflow_nb.core.errors import TaskFieldError
from apflow_nb.core.policy import TASK_KEYS, check_policy
from apflow_nb.core.storage.json_text import strict

#: columns the engine sets; a task array or create_task may not
RESERVED_FIELDS = frozenset({"status", "result", "error", "progress", "created_at", "started_at", "updated_at",
                             "completed_at", "root_id", "owner", "has_children", "has_copy", "original_task_id",
                             "options", "attempts", "cached_from"})
#: what a task may be given (the run settings go to its ``options``)
STANDARD_FIELDS = frozenset({"id", "key", "name", "user_id", "parent_id", "priority", "dependencies", "inputs",
                             "schemas", "params"}) | frozenset(TASK_KEYS)
PRIORITIES = range(0, 4)
MAX_ID_LENGTH = 200  # the id column holds 255; a re-run appends "@" and an 8-character run tag


def json_problem(value: Any) -> str | None:
    """None when ``value`` can be stored as JSON in every supported store, else what is wrong.

    Strict: no NaN or infinity, only dicts with string keys, lists, strings, numbers, booleans and
    None; strings must be valid UTF-8 without NUL characters (PostgreSQL refuses both).
    """
    return strict(value)[1]


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a string holds a lone surrogate character at position {exc.start} (not valid UTF-8)"
    if "\x00" in text or "\\u0000" in text:
        return "a string holds a NUL character (\\x00), which PostgreSQL cannot store"
    return None


def check_text(value: Any, field: str, where: str, *, required: bool = False,
               max_length: int = 255, error: type[Exception] = TaskFieldError) -> None:
    """``value`` is a string (or None unless ``required``) a text column can hold."""
    if value is None:
        if required:
            raise error(f"{where}: {field} is required (a non-empty string)")
        return
    if not isinstance(value, str):
        raise error(f"{where}: {field} must be a string, got {type(value).__name__} {_short(value)}")
    if required and not value.strip():
        raise error(f"{where}: {field} must be a non-empty string")
    if len(value) > max_length:
        raise error(f"{where}: {field} is {len(value)} characters long; at most {max_length} fit")
    problem = _text_problem(value)
    if problem:
        raise error(f"{where}: {field} cannot be stored: {problem}")


def check_priority(value: Any, where: str, error: type[Exception] = TaskFieldError) -> None:
    """Priorities are the integers 0 (urgent) to 3 (low)."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITIES:
        raise error(f"{where}: priority must be an integer from 0 (urgent) to 3 (low), got {_short(value)}")


def check_json_field(value: Any, field: str, where: str, error: type[Exception] = TaskFieldError) -> None:
    """``inputs``, ``schemas`` and ``params`` are dicts that can be stored as JSON (or None)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise error(f"{where}: {field} must be a dict, got {type(value).__name__}")
    problem = json_problem(value)
    if problem:
        raise error(f"{where}: {field} cannot be stored as JSON ({problem}); use dicts, lists, strings, "
                    f"numbers, booleans and None")


def normalize_dependencies(deps: Any, *, where: str = "dependencies",
                           error: type[Exception] = TaskFieldError) -> list[dict[str, Any]]:
    """``["a", {"id": "b", "required": False}]`` -> ``[{"id": "a", "required": True}, {"id": "b", "required": False}]``.

    ``required`` must be a boolean: the string ``"false"`` is refused, not read as true.
    """
    if not deps:
        return []
    if type(deps) is list and all(type(d) is dict and type(d.get("id")) is str and d["id"]
                                  and type(d.get("required")) is bool for d in deps):
        return deps  # already normalized (as stored): the run only reads it
    if not isinstance(deps, (list, tuple)):
        deps = [deps] if isinstance(deps, (str, dict)) or not isinstance(deps, Iterable) else list(deps)
    out = []
    for i, dep in enumerate(deps):
        if isinstance(dep, str) and dep:
            out.append({"id": dep, "required": True})
        elif isinstance(dep, dict) and isinstance(dep.get("id"), str) and dep["id"]:
            item = dict(dep)
            required = item.get("required", True)
            if not isinstance(required, bool):
                raise error(f"{where}[{i}]: 'required' must be true or false (a boolean), got {_short(required)}")
            item["required"] = required
            out.append(item)
        else:
            raise error(f"{where}[{i}] must be a task id or {{'id': ..., 'required': bool}}, got {_short(dep)}")
    return out


def take_options(fields: dict[str, Any], where: str, error: type[Exception] = TaskFieldError) -> dict[str, Any] | None:
    """Remove the run settings (cache, retries, ...) from ``fields``; checked, as the task's ``options``."""
    found = {k: fields.pop(k) for k in TASK_KEYS if k in fields}
    return check_policy(found, where, error) or None


def check_custom_fields(fields: dict[str, Any], model: Any, where: str,
                        error: type[Exception] = TaskFieldError) -> None:
    """Extra fields must be columns a TaskModel subclass adds, with values of the column's type."""
    reserved = sorted(set(fields) & RESERVED_FIELDS)
    if reserved:
        raise error(f"{where}: {', '.join(map(repr, reserved))} cannot be set: the engine owns "
                    f"{'this field' if len(reserved) == 1 else 'these fields'}. Leave it out of the task.")
    columns = {c.key: c for c in model.__mapper__.column_attrs}
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        from apflow_nb.core.errors import UnknownTaskFieldError

        custom = sorted(set(columns) - STANDARD_FIELDS - RESERVED_FIELDS)
        raise UnknownTaskFieldError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}: {model.__name__} has no such column "
            f"(custom columns: {', '.join(custom) or 'none'}). Add a Column to a TaskModel subclass and call "
            f"set_task_model_class(...) before creating tasks.")
    for name, value in fields.items():
        if value is not None:
            _check_column_value(columns[name].columns[0], name, value, where, error)


def _check_column_value(column: Any, name: str, value: Any, where: str, error: type[Exception]) -> None:
    try:
        expected = column.type.python_type
    except NotImplementedError:
        expected = None
    if expected is dict or expected is list:
        problem = json_problem(value)
        if problem:
            raise error(f"{where}: {name} cannot be stored as JSON ({problem})")
        return
    if expected is str:
        check_text(value, name, where, max_length=getattr(column.type, "length", None) or 10**9, error=error)
    elif expected is int:
        if isinstance(value, bool) or not isinstance(value, int) or not -2**63 <= value < 2**63:
            raise error(f"{where}: {name} must be a 64-bit integer, got {_short(value)}")
    elif expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise error(f"{where}: {name} must be a number, got {_short(value)}")
    elif expected is bool and not isinstance(value, bool):
        raise error(f"{where}: {name} must be true or false, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
