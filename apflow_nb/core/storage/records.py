"""Task records: what task arrays create and the engine runs, without an ORM object per task.

A record has one slot per column of the TaskModel in use (custom columns included) and reads like
a TaskModel row (``task.inputs``, ``task.status``, ``task.to_dict()``), so hooks, storage
extensions and executors use either alike. Records are written through SQLAlchemy Core in batches;
an ORM row is made only when someone asks for one (``TaskRepository.get_task``). About a tenth of
an ORM row's memory and time.
"""
from __future__ import annotations

import weakref
from typing import Any

_classes: "weakref.WeakKeyDictionary[type, type]" = weakref.WeakKeyDictionary()


class TaskRecord:
    """Base of the generated record classes (one per TaskModel)."""

    __slots__ = ()
    _columns: tuple[str, ...] = ()
    model: type | None = None

    def __init__(self, **values: Any):
        for name in self._columns:
            object.__setattr__(self, name, values.get(name))

    def to_dict(self) -> dict[str, Any]:
        """Every column as a dict (custom columns of the model included)."""
        return {name: getattr(self, name) for name in self._columns}

    def __repr__(self) -> str:
        model = self.model.__name__ if self.model is not None else "TaskRecord"
        return f"<{model} id={self.id!r} name={self.name!r} status={self.status!r}>"  # type: ignore[attr-defined]


def record_class(model: type) -> type[TaskRecord]:
    """The record class of ``model`` (a TaskModel subclass): one slot per mapped column."""
    cls = _classes.get(model)
    columns = tuple(c.key for c in model.__mapper__.column_attrs)
    if cls is None or cls._columns != columns:
        cls = type(f"{model.__name__}Record", (TaskRecord,), {"__slots__": columns, "_columns": columns,
                                                               "model": model, "__module__": __name__})
        _classes[model] = cls
    return cls
