"""The extension registry: every executor, storage, tool and hook, listed by category.

Registering an id again replaces the old entry (notebook cells are re-run). Built-in executors
and third-party packages' entry points (group ``apflow_nb.extensions``) are loaded on the first
look-up and never replace what the user registered.
"""
from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from apflow_nb.core.extensions.types import ExtensionCategory

logger = logging.getLogger("apflow_nb.extensions")

ENTRY_POINT_GROUP = "apflow_nb.extensions"


@dataclass
class RegistryEntry:
    """One registered extension: the object (class, instance or function) and how to make one."""

    id: str
    category: ExtensionCategory
    obj: Any
    name: str = ""
    description: str = ""
    source: str = "user"  # "user", "builtin" or "entry_point:<name>"
    meta: dict[str, Any] = field(default_factory=dict)

    def create(self) -> Any:
        """A fresh object to use once: a new instance of a class, a shallow copy of an instance."""
        obj = self.obj
        if isinstance(obj, type):
            return obj()
        if callable(obj) and self.category is ExtensionCategory.HOOK:
            return obj
        return copy.copy(obj)

    @property
    def cls(self) -> type:
        """The class behind the entry."""
        return self.obj if isinstance(self.obj, type) else type(self.obj)


class ExtensionRegistry:
    """Extensions by category and id."""

    def __init__(self) -> None:
        self._items: dict[ExtensionCategory, dict[str, RegistryEntry]] = {c: {} for c in ExtensionCategory}
        self._loaded = False
        self._lock = threading.RLock()
        self.version = 0  # bumped on every change, so caches can tell they are stale

    # -- writing -----------------------------------------------------------------------
    def add(self, entry: RegistryEntry, *, replace: bool = True) -> RegistryEntry:
        """Store ``entry``; with ``replace=False`` an existing id wins."""
        with self._lock:
            table = self._items[entry.category]
            if not replace and entry.id in table:
                return table[entry.id]
            table[entry.id] = entry
            self.version += 1
            return entry

    def remove(self, category: ExtensionCategory | str, ext_id: str) -> bool:
        """Forget one entry; True if it was there."""
        with self._lock:
            removed = self._items[ExtensionCategory(category)].pop(ext_id, None) is not None
            self.version += removed
            return removed

    def clear(self, category: ExtensionCategory | str | None = None) -> None:
        """Forget every entry of a category (or all). Built-ins come back on the next look-up."""
        with self._lock:
            cats = list(ExtensionCategory) if category is None else [ExtensionCategory(category)]
            for cat in cats:
                self._items[cat].clear()
            self._loaded = False
            self.version += 1

    # -- reading -----------------------------------------------------------------------
    def get(self, category: ExtensionCategory | str, ext_id: str) -> RegistryEntry | None:
        """The entry with this id, or None."""
        table = self._items[category if category.__class__ is ExtensionCategory else ExtensionCategory(category)]
        entry = table.get(ext_id)
        if entry is None and not self._loaded:
            self.load_defaults()
            entry = table.get(ext_id)
        return entry

    def list(self, category: ExtensionCategory | str | None = None) -> list[RegistryEntry]:
        """Entries of one category, or of all, in registration order."""
        self.load_defaults()
        cats: Iterable[ExtensionCategory] = (
            list(ExtensionCategory) if category is None else [ExtensionCategory(category)])
        return [e for c in cats for e in self._items[c].values()]

    def ids(self, category: ExtensionCategory | str) -> list[str]:
        """Registered ids of a category, sorted."""
        return sorted(e.id for e in self.list(category))

    def by_category(self) -> dict[str, list[str]]:
        """``{"executor": [...ids], "storage": [...], ...}``."""
        return {c.value: self.ids(c) for c in ExtensionCategory}

    @property
    def loaded(self) -> bool:
        """True once the entry points (built-in executors included) were loaded."""
        return self._loaded

    def load_defaults(self) -> None:
        """Register every ``apflow_nb.extensions`` entry point (the built-in executors are one), once.

        Entry points never replace what the user registered.
        """
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            self._load_entry_points()
            self.version += 1

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                register_object(obj, registry=self, source=f"entry_point:{ep.name}", replace=False)
            except Exception:
                logger.exception("apflow_nb: could not load extension entry point %r (%s)", ep.name, ep.value)


def register_object(obj: Any, *, registry: ExtensionRegistry, source: str, replace: bool) -> None:
    """Register what an entry point names: an Extension class or instance (by its category), or a
    callable that registers things itself (called with the registry when it takes an argument)."""
    from apflow_nb.core.extensions.base import Extension

    if (isinstance(obj, type) and issubclass(obj, Extension)) or isinstance(obj, Extension):
        cls = obj if isinstance(obj, type) else type(obj)
        registry.add(RegistryEntry(id=cls.id, category=ExtensionCategory(cls.category), obj=obj,
                                   name=cls.name or cls.id, description=cls.description, source=source),
                     replace=replace)
    elif callable(obj):
        import inspect

        try:
            takes_arg = len(inspect.signature(obj).parameters) >= 1
        except (TypeError, ValueError):
            takes_arg = False
        obj(registry) if takes_arg else obj()
    else:
        raise TypeError(f"entry point object {obj!r} is neither an Extension nor a callable")


_registry = ExtensionRegistry()


def get_registry() -> ExtensionRegistry:
    """The process-wide registry."""
    return _registry
