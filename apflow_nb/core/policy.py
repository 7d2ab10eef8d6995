"""How a task is run: caching, retries with delays and jitter, and a timeout per attempt.

Each setting can come from four places; the first that says something wins:
1. the task (task-array keys or ``create_task`` keywords, stored in the task's ``options``),
2. the executor's registration (``executor_register(fn, retries=2)``, ``%%executor --retries 2``),
3. the executor class (attributes ``cache``, ``cache_version``, ``cache_ttl``, ``retries``,
   ``retry_delay``, ``retry_jitter``, ``timeout``),
4. the run (``TaskManager(db, cache=True)``, ``apflow_nb.run(tree, cache=True)``).
So ``"cache": false`` on a task turns caching off whatever the executor or the run say.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from apflow_nb.core.errors import TaskFieldError

#: the settings, as task-array keys and executor attributes
POLICY_KEYS = ("cache", "cache_ttl", "cache_version", "retries", "retry_delay", "retry_jitter", "timeout")
TASK_KEYS = ("cache", "cache_ttl", "retries", "retry_delay", "retry_jitter", "timeout")
MAX_RETRIES = 100


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings one task runs with."""

    cache: bool = False
    cache_ttl: float | None = None
    cache_version: str | None = None
    retries: int = 0
    retry_delay: tuple[float, ...] = (0.0,)
    retry_jitter: float = 0.0
    timeout: float | None = None

    def delay(self, attempt: int) -> float:
        """The configured wait before attempt ``attempt + 1`` (attempts count from 1)."""
        delays = self.retry_delay
        return delays[min(attempt - 1, len(delays) - 1)]


PLAIN = Policy()


def check_policy(values: dict[str, Any], where: str, error: type[Exception] = TaskFieldError) -> dict[str, Any]:
    """The settings in ``values`` checked and normalised; a named error for a bad one."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "cache":
            if not isinstance(value, bool):
                raise error(f"{where}: cache must be true or false, got {value!r}")
        elif key == "retries":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
                raise error(f"{where}: retries must be an integer from 0 to {MAX_RETRIES}, got {value!r}")
        elif key == "retry_delay":
            items = value if isinstance(value, (list, tuple)) else [value]
            if not items or any(not _number(v) or v < 0 for v in items):
                raise error(f"{where}: retry_delay must be seconds (a number >= 0) or a list of them, got {value!r}")
            value = [float(v) for v in items] if isinstance(value, (list, tuple)) else float(value)
        elif key == "retry_jitter":
            if not _number(value) or not 0 <= value <= 1:
                raise error(f"{where}: retry_jitter must be a number from 0 to 1, got {value!r}")
        elif key in ("timeout", "cache_ttl"):
            if not _number(value) or value <= 0:
                raise error(f"{where}: {key} must be a number of seconds > 0, got {value!r}")
        elif key == "cache_version":
            if not isinstance(value, (str, int)):
                raise error(f"{where}: cache_version must be a string or an integer, got {value!r}")
            value = str(value)
        else:
            raise error(f"{where}: unknown setting {key!r} (settings: {', '.join(POLICY_KEYS)})")
        out[key] = value
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


_class_settings: "weakref.WeakKeyDictionary[type, dict[str, Any]]" = weakref.WeakKeyDictionary()


def class_settings(cls: type) -> dict[str, Any]:
    """The settings an executor class declares as attributes (checked once per class)."""
    found = _class_settings.get(cls)
    if found is None:
        raw = {k: getattr(cls, k) for k in POLICY_KEYS if getattr(cls, k, None) is not None}
        found = _class_settings[cls] = check_policy(raw, f"executor class {cls.__name__}")
    return found


def resolve(task_options: dict[str, Any] | None, registered: dict[str, Any] | None, cls: type,
            run_cache: bool) -> Policy:
    """The Policy of one task (see the module docstring for who wins)."""
    declared = class_settings(cls)
    if not task_options and not registered and not declared and not run_cache:
        return PLAIN
    merged: dict[str, Any] = {"cache": run_cache}
    merged.update(declared)
    merged.update(registered or {})
    merged.update(task_options or {})
    delay = merged.get("retry_delay", 0.0)
    return Policy(cache=bool(merged.get("cache")), cache_ttl=merged.get("cache_ttl"),
                  cache_version=merged.get("cache_version"), retries=merged.get("retries", 0),
                  retry_delay=tuple(delay) if isinstance(delay, list) else (float(delay),),
                  retry_jitter=merged.get("retry_jitter", 0.0), timeout=merged.get("timeout"))
