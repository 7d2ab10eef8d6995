"""Registration functions: ``executor_register``, ``tool_register``, ``storage_register`` and hooks.

Each works on an instance, on a class, as ``@decorator`` and as ``@decorator(...)``; each replaces
an earlier registration of the same id, so re-running a notebook cell updates, never duplicates.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

from apflow_nb.core.extensions.base import Extension
from apflow_nb.core.extensions.registry import RegistryEntry, get_registry
from apflow_nb.core.extensions.types import ExtensionCategory

T = TypeVar("T")

TREE_HOOK_EVENTS = ("on_tree_started", "on_tree_completed", "on_tree_failed")


def _register_extension(obj: Any, category: ExtensionCategory, base: type, ext_id: str | None,
                        what: str, fix: str) -> RegistryEntry:
    cls = obj if isinstance(obj, type) else type(obj)
    if not issubclass(cls, base):
        raise TypeError(f"{what}_register expects a {base.__name__} subclass or instance, got {obj!r}. {fix}")
    if isinstance(obj, type) and inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        raise TypeError(f"{obj.__name__} cannot be registered: it does not implement {missing}.")
    the_id = ext_id or getattr(obj, "id", "") or ""
    if not the_id:
        raise ValueError(f"{cls.__name__} has no id: set a class attribute `id = \"...\"` "
                         f"or pass {what}_id=\"...\".")
    entry = RegistryEntry(id=the_id, category=category, obj=obj,
                          name=getattr(obj, "name", "") or the_id,
                          description=getattr(obj, "description", "") or _own_doc(cls))
    return get_registry().add(entry)


def _own_doc(cls: type) -> str:
    """The first line of the class's own docstring (not one inherited from a base class)."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc).split("\n")[0] if isinstance(doc, str) and doc.strip() else ""


def executor_register(obj: Any = None, *, executor_id: str | None = None, **options: Any) -> Any:
    """Register an executor: an ExecutableTask instance or class, or a plain (async) function.

    ``executor_register(MyExecutor())``, ``executor_register(MyExecutor, executor_id="x")``,
    ``@executor_register`` and ``@executor_register(executor_id="x")`` all work. A function is
    wrapped by :func:`apflow_nb.function_executor` (its signature becomes the input schema).
    Run settings apply to every task of this executor unless the task says otherwise: ``cache``,
    ``cache_version``, ``cache_ttl``, ``retries``, ``retry_delay``, ``retry_jitter``, ``timeout``.
    Returns what it was given, so it can decorate.
    """
    if obj is None:
        return lambda target: executor_register(target, executor_id=executor_id, **options)
    from apflow_nb.core.interfaces.executable_task import ExecutableTask

    from apflow_nb.core.policy import POLICY_KEYS, check_policy

    policy = check_policy({k: options.pop(k) for k in POLICY_KEYS if k in options}, "executor_register",
                          error=ValueError)
    if isinstance(obj, type) and issubclass(obj, ExecutableTask) or isinstance(obj, ExecutableTask):
        if options:
            raise TypeError(f"executor_register got unexpected options {sorted(options)} for a class or instance "
                            f"(run settings it takes: {', '.join(POLICY_KEYS)})")
        entry = _register_extension(obj, ExtensionCategory.EXECUTOR, ExecutableTask, executor_id, "executor",
                                    "Subclass apflow_nb.ExecutableTask or apflow_nb.BaseTask.")
        entry.meta["policy"] = policy
        return obj
    if callable(obj) and not isinstance(obj, type):
        from apflow_nb.core.base.function_task import function_executor

        cls = function_executor(obj, executor_id=executor_id, **options)
        entry = _register_extension(cls, ExtensionCategory.EXECUTOR, ExecutableTask, cls.id, "executor", "")
        entry.meta["policy"] = policy
        return obj
    raise TypeError(f"executor_register expects an ExecutableTask subclass or instance, or a function; "
                    f"got {obj!r}.")


def tool_register(obj: Any = None, *, tool_id: str | None = None) -> Any:
    """Register a Tool instance or class (also as a decorator). Returns what it was given."""
    if obj is None:
        return lambda target: tool_register(target, tool_id=tool_id)
    from apflow_nb.core.tools.base import Tool

    _register_extension(obj, ExtensionCategory.TOOL, Tool, tool_id, "tool", "Subclass apflow_nb.core.tools.base.Tool.")
    return obj


def storage_register(obj: Any = None, *, storage_id: str | None = None) -> Any:
    """Register a StorageExtension instance or class (also as a decorator). Returns what it was given."""
    if obj is None:
        return lambda target: storage_register(target, storage_id=storage_id)
    from apflow_nb.core.extensions.storage import StorageExtension

    if isinstance(obj, type):  # a class: one shared instance keeps its state across tasks
        obj = obj()
    _register_extension(obj, ExtensionCategory.STORAGE, StorageExtension, storage_id, "storage",
                        "Subclass apflow_nb.core.extensions.storage.StorageExtension.")
    return obj


def _hook_id(fn: Callable[..., Any], stage: str) -> str:
    return f"{stage}:{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def hook_register(fn: Callable[..., Any] | None = None, *, stage: str = "pre", event: str | None = None,
                  hook_id: str | None = None) -> Any:
    """Register a hook function (sync or async) for ``stage`` "pre", "post" or "tree".

    Pre-hooks get ``task`` and may change ``task.inputs``; post-hooks get ``task, inputs, result`` for
    every outcome (and ``status``, ``error`` by name); tree hooks get ``task`` (the root) and ``status``
    (and ``event``) on ``event``: ``on_tree_started``, ``on_tree_completed`` or ``on_tree_failed``.
    Parameters are matched by name, the rest by position, and ``**kwargs`` takes whatever else is
    passed, so hooks keep working as arguments are added (see ``core.extensions.hooks``).
    A hook registered again under the same module and name replaces the old one.
    """
    if fn is None:
        return lambda target: hook_register(target, stage=stage, event=event, hook_id=hook_id)
    if stage not in ("pre", "post", "tree"):
        raise ValueError(f"hook stage must be 'pre', 'post' or 'tree', not {stage!r}")
    if isinstance(fn, Extension) or not callable(fn):
        raise TypeError(f"hook_register expects a function, got {fn!r}")
    if stage == "tree":
        if event not in TREE_HOOK_EVENTS:
            raise ValueError(f"tree hook event must be one of {', '.join(TREE_HOOK_EVENTS)}, not {event!r}")
        key = f"tree:{event}"
    else:
        key = stage
    the_id = hook_id or _hook_id(fn, key)
    get_registry().add(RegistryEntry(
        id=the_id, category=ExtensionCategory.HOOK, obj=fn, name=getattr(fn, "__name__", the_id),
        description=(inspect.getdoc(fn) or "").split("\n")[0], meta={"stage": stage, "event": event}))
    return fn


def register_pre_hook(fn: Callable[..., Any] | None = None) -> Any:
    """``@register_pre_hook``: run ``fn(task)`` before every task; it may edit ``task.inputs``."""
    return hook_register(fn, stage="pre") if fn is not None else (lambda f: hook_register(f, stage="pre"))


def register_post_hook(fn: Callable[..., Any] | None = None) -> Any:
    """``@register_post_hook``: run ``fn(task, inputs, result)`` after every task, whatever its outcome."""
    return hook_register(fn, stage="post") if fn is not None else (lambda f: hook_register(f, stage="post"))


def register_task_tree_hook(event: str | Callable[..., Any] = "on_tree_completed",
                            fn: Callable[..., Any] | None = None) -> Any:
    """Register ``fn(root_task, status)`` for a tree event.

    ``@register_task_tree_hook("on_tree_failed")``, ``register_task_tree_hook("on_tree_started", fn)``;
    bare ``@register_task_tree_hook`` means ``on_tree_completed``.
    """
    if callable(event):
        return hook_register(event, stage="tree", event="on_tree_completed")
    if fn is not None:
        return hook_register(fn, stage="tree", event=event)
    if event not in TREE_HOOK_EVENTS:
        raise ValueError(f"tree hook event must be one of {', '.join(TREE_HOOK_EVENTS)}, not {event!r}")
    return lambda f: hook_register(f, stage="tree", event=event)


def unregister_hook(fn_or_id: Callable[..., Any] | str) -> bool:
    """Remove a hook by function or id; True if one was removed."""
    reg = get_registry()
    if isinstance(fn_or_id, str):
        return reg.remove(ExtensionCategory.HOOK, fn_or_id)
    removed = False
    for entry in list(reg.list(ExtensionCategory.HOOK)):
        if entry.obj is fn_or_id:
            removed |= reg.remove(ExtensionCategory.HOOK, entry.id)
    return removed


_hooks_cache: dict[tuple[str, str | None], tuple[int, list[Callable[..., Any]]]] = {}


def get_hooks(stage: str, event: str | None = None) -> list[Callable[..., Any]]:
    """Registered hook functions of a stage (and tree event), in registration order.

    Cached until the registry changes: the engine asks for every task.
    """
    registry = get_registry()
    cached = _hooks_cache.get((stage, event))
    if cached is not None and cached[0] == registry.version and registry.loaded:
        return cached[1]
    hooks = [e.obj for e in registry.list(ExtensionCategory.HOOK)
             if e.meta.get("stage") == stage and (event is None or e.meta.get("event") == event)]
    _hooks_cache[(stage, event)] = (registry.version, hooks)
    return hooks
