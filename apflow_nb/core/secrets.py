"""Secret inputs: which input fields are secrets, their stored placeholder, and where their values live.

A field is a secret when the executor's pydantic ``inputs_schema`` types it ``SecretStr``/``SecretBytes``
(also inside nested models, lists and dicts), or its JSON Schema says ``writeOnly: true`` or
``format: "password"``. Such a value is stored (task row, history, views) as ``"***"``; the real value
stays in this process's memory for the run and reaches only the executor. A task run later (another
kernel, after a restart) gets it back from a resolver: a function registered with
:func:`secret_resolver`, or the environment variable a field names (``json_schema_extra={"env": "API_KEY"}``).
Every other input is stored as given.
"""
from __future__ import annotations

import copy
import os
import threading
import weakref
from typing import Any, Callable, Iterator

from apflow_nb.core.errors import InputValidationError

PLACEHOLDER = "***"
ANY = "*"  # a path segment matching every item of a list or every value of a dict

Path = tuple[str, ...]


class SecretMissingError(InputValidationError, LookupError):
    """A stored task's secret input is only a placeholder, and nothing could provide its value."""


# -- which fields are secrets ---------------------------------------------------------------------------

_by_model: "weakref.WeakKeyDictionary[type, tuple[frozenset[Path], dict[Path, str]]]" = weakref.WeakKeyDictionary()


def secret_paths(executor: Any) -> frozenset[Path]:
    """The input paths (``("api_key",)``, ``("auth", "token")``, ``("keys", "*")``) the executor declares secret."""
    return _secret_fields(executor)[0]


def secret_envs(executor: Any) -> dict[Path, str]:
    """For secret paths whose field names an environment variable (``"env"`` in its schema): path -> variable."""
    return _secret_fields(executor)[1]


def _secret_fields(executor: Any) -> tuple[frozenset[Path], dict[Path, str]]:
    model = getattr(executor, "inputs_schema", None)
    if isinstance(model, type) and hasattr(model, "model_fields"):
        cached = _by_model.get(model)
        if cached is None:
            paths: set[Path] = set()
            envs: dict[Path, str] = {}
            _walk_model(model, (), paths, envs, set())
            try:
                schema = model.model_json_schema()
            except Exception:  # noqa: BLE001 - arbitrary types have no JSON Schema; the annotations said enough
                schema = None
            if schema:
                _walk_schema(schema, schema, (), paths, envs, ())
            cached = _by_model[model] = (frozenset(paths), envs)
        return cached
    cls = executor if isinstance(executor, type) else type(executor)
    if getattr(cls, "get_input_schema", None) is _NO_SCHEMA:  # ExecutableTask's own: no inputs declared
        return _NONE
    if isinstance(executor, type):
        return _NONE  # a JSON Schema comes from an instance (it may depend on its configuration)
    try:
        schema = executor.get_input_schema() if hasattr(executor, "get_input_schema") else None
    except Exception:  # noqa: BLE001 - an executor whose schema cannot be built declares no secrets
        schema = None
    paths, envs = set(), {}
    if isinstance(schema, dict):
        _walk_schema(schema, schema, (), paths, envs, ())
    return frozenset(paths), envs


def _no_schema() -> Any:
    from apflow_nb.core.interfaces.executable_task import ExecutableTask

    return ExecutableTask.get_input_schema


_NO_SCHEMA = _no_schema()
_NONE: tuple[frozenset[Path], dict[Path, str]] = (frozenset(), {})


def _is_secret_type(annotation: Any) -> bool:
    try:
        from pydantic import SecretBytes, SecretStr
        from pydantic.types import Secret
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return False
    origin = getattr(annotation, "__origin__", None) or annotation
    return isinstance(origin, type) and issubclass(origin, (SecretStr, SecretBytes, Secret))


def _walk_model(model: type, prefix: Path, paths: set[Path], envs: dict[Path, str], seen: set[type]) -> None:
    if model in seen:  # a recursive model
        return
    seen = seen | {model}
    for name, field in model.model_fields.items():
        here = prefix + (field.alias or name,) if field.alias else prefix + (name,)
        found = set()
        _walk_annotation(field.annotation, here, found, envs, seen)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("writeOnly") is True or extra.get("format") == "password":
            found.add(here)
        paths |= found
        if isinstance(extra.get("env"), str) and here in found:
            envs[here] = extra["env"]


def _walk_annotation(annotation: Any, here: Path, paths: set[Path], envs: dict[Path, str], seen: set[type]) -> None:
    if _is_secret_type(annotation):
        paths.add(here)
        return
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        _walk_model(annotation, here, paths, envs, seen)
        return
    origin = getattr(annotation, "__origin__", None)
    args = getattr(annotation, "__args__", ()) or ()
    if origin in (list, set, frozenset, tuple) or (isinstance(origin, type) and issubclass(origin, (list, tuple))):
        for arg in args:
            if arg is not Ellipsis:
                _walk_annotation(arg, here + (ANY,), paths, envs, seen)
    elif origin is dict or (isinstance(origin, type) and issubclass(origin, dict)):
        if len(args) == 2:
            _walk_annotation(args[1], here + (ANY,), paths, envs, seen)
    else:  # Optional / Union / Annotated: the same place
        for arg in args:
            if arg is not type(None):
                _walk_annotation(arg, here, paths, envs, seen)


def _walk_schema(schema: Any, root: dict[str, Any], here: Path, paths: set[Path], envs: dict[Path, str],
                 refs: tuple[str, ...]) -> bool:
    """Record the secret paths under ``schema``; True when ``here`` itself is secret."""
    if not isinstance(schema, dict) or len(here) > 32:
        return False
    secret = schema.get("writeOnly") is True or schema.get("format") == "password"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in refs:
        secret |= _walk_schema(_resolve(ref, root), root, here, paths, envs, refs + (ref,))
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key) or ():
            secret |= _walk_schema(branch, root, here, paths, envs, refs)
    props = schema.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            _walk_schema(sub, root, here + (str(name),), paths, envs, refs)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _walk_schema(schema[key], root, here + (ANY,), paths, envs, refs)
    if secret and here:
        paths.add(here)
        if isinstance(schema.get("env"), str):
            envs.setdefault(here, schema["env"])
    return secret


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
    return node


# -- placeholders -------------------------------------------------------------------------------------------

def _places(data: Any, path: Path, at: Path = ()) -> Iterator[tuple[Any, Any, Path]]:
    """(container, key, concrete path) for every value at ``path`` in ``data``."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == ANY:
        keys = range(len(data)) if isinstance(data, list) else list(data) if isinstance(data, dict) else ()
    else:
        keys = [head] if isinstance(data, dict) and head in data else ()
    for key in keys:
        if rest:
            yield from _places(data[key], rest, at + (str(key),))
        else:
            yield data, key, at + (str(key),)


def split(inputs: dict[str, Any] | None, paths: frozenset[Path]) -> tuple[dict[str, Any], dict[Path, Any]]:
    """(a copy of ``inputs`` with every secret value replaced by ``"***"``, {concrete path: real value})."""
    data = dict(inputs or {})
    if not paths:
        return data, {}
    data = copy.deepcopy(data)
    held: dict[Path, Any] = {}
    for path in paths:
        for container, key, where in list(_places(data, path)):
            value = container[key]
            if value is None or value == PLACEHOLDER:
                continue
            held[where] = value
            container[key] = PLACEHOLDER
    return data, held


def redact(inputs: dict[str, Any] | None, paths: frozenset[Path]) -> dict[str, Any]:
    """A copy of ``inputs`` with every value at a secret path replaced by ``"***"`` (None stays None)."""
    return split(inputs, paths)[0]


# -- where the real values live ------------------------------------------------------------------------

_vault: dict[str, dict[Path, Any]] = {}
_vault_lock = threading.Lock()
_resolvers: list[Callable[[str, Any], Any]] = []


def keep(task_id: str, held: dict[Path, Any]) -> None:
    """Remember a task's secret values in this process (never written anywhere)."""
    if held:
        with _vault_lock:
            _vault.setdefault(task_id, {}).update(held)


def forget(task_id: str) -> None:
    """Drop a task's secret values (its run completed: it is never run again)."""
    with _vault_lock:
        _vault.pop(task_id, None)


def secret_resolver(fn: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    """Register ``fn(field, task) -> value or None`` to provide secrets of stored tasks (``field``: ``"auth.token"``).

    Resolvers are asked newest first when a task runs whose secret is only a placeholder
    (a task stored by another process, or before a restart). Usable as a decorator.
    """
    if not callable(fn):
        raise TypeError(f"secret_resolver expects a function fn(field, task), got {fn!r}")
    _resolvers.insert(0, fn)
    return fn


def clear_secret_resolvers() -> None:
    """Forget every registered resolver."""
    _resolvers.clear()


def hold_secrets(task: Any, executor: Any) -> None:
    """Before a new task is stored: its secret inputs become placeholders, the values go to memory."""
    paths = secret_paths(executor)
    if paths and isinstance(task.inputs, dict):
        task.inputs, held = split(task.inputs, paths)
        keep(task.id, held)


def hold_new_tasks(tasks: list[Any]) -> None:
    """Before new tasks are stored (rows as dicts, or task objects): each one's secret inputs, by its
    registered executor, become placeholders and their values go to this process's memory.

    A task whose executor is not registered yet has no known secrets: its inputs are stored as given.
    """
    from apflow_nb.core.types import executor_id_of

    found: dict[str, frozenset[Path]] = {}  # an array mostly repeats a few executors
    for task in tasks:
        row = isinstance(task, dict)
        inputs = task.get("inputs") if row else task.inputs
        if not inputs or not isinstance(inputs, dict):
            continue
        executor_id = executor_id_of(task)
        paths = found.get(executor_id)
        if paths is None:
            executor = _registered_executor(executor_id)
            paths = found[executor_id] = secret_paths(executor) if executor is not None else frozenset()
        if paths:
            redacted, held = split(inputs, paths)
            if row:
                task["inputs"] = redacted
            else:
                task.inputs = redacted
            keep(task["id"] if row else task.id, held)


def _registered_executor(executor_id: str) -> Any:
    from apflow_nb.core.extensions.registry import get_registry
    from apflow_nb.core.extensions.types import ExtensionCategory

    entry = get_registry().get(ExtensionCategory.EXECUTOR, executor_id)
    if entry is None:
        return None
    cls = getattr(entry, "cls", None)
    if cls is not None and (getattr(cls, "inputs_schema", None) is not None
                            or getattr(cls, "get_input_schema", None) is _NO_SCHEMA):
        return cls  # a pydantic model (or no schema at all) says it all: no instance needed
    try:
        return entry.create()
    except Exception:  # noqa: BLE001 - it will fail visibly when it runs
        return None


def reveal(task: Any, inputs: dict[str, Any], executor: Any, held: dict[Path, Any] | None = None) -> dict[str, Any]:
    """The inputs the executor gets: every placeholder at a secret path replaced by its real value.

    The value comes from ``held``, this process's memory, a resolver, or the field's environment
    variable, in that order; SecretMissingError names the field when none has it.
    """
    paths = secret_paths(executor)
    if not paths:
        return inputs
    data = copy.deepcopy(inputs)
    with _vault_lock:
        kept = dict(_vault.get(task.id, {}))
    kept.update(held or {})
    envs = secret_envs(executor)
    for path in paths:
        for container, key, where in list(_places(data, path)):
            if container[key] != PLACEHOLDER:
                continue
            value = kept.get(where)
            if value is None:
                value = _resolve_secret(where, path, task, envs)
            container[key] = value
    return data


def _resolve_secret(where: Path, path: Path, task: Any, envs: dict[Path, str]) -> Any:
    field = ".".join(where)
    for resolver in list(_resolvers):
        value = resolver(field, task)
        if value is not None:
            return value
    env = envs.get(path)
    if env and os.environ.get(env) is not None:
        return os.environ[env]
    hint = (f"set the environment variable {env}" if env else
            "name an environment variable in the field (json_schema_extra={\"env\": \"NAME\"})")
    raise SecretMissingError(
        f"input {field!r} of task {getattr(task, 'key', None) or task.id!r} is a secret: it is stored as "
        f"{PLACEHOLDER!r} and its value lived only in the process that stored the task. Provide it: register "
        f"apflow_nb.secret_resolver(fn) returning the value for {field!r}, or {hint}.")


__all__ = ["PLACEHOLDER", "SecretMissingError", "secret_paths", "secret_envs", "split", "redact", "keep", "forget",
           "secret_resolver", "clear_secret_resolvers", "hold_secrets", "hold_new_tasks", "reveal"]
