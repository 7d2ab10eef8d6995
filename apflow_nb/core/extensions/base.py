"""Extension: the common identity (id, name, description, category) of everything pluggable."""
from __future__ import annotations

from typing import Any, ClassVar

from apflow_nb.core.extensions.types import ExtensionCategory


class Extension:
    """Base of executors, storages, tools and hooks: an id to register under and a category."""

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    category: ClassVar[ExtensionCategory] = ExtensionCategory.EXECUTOR

    def __init__(self, **kwargs: Any) -> None:
        # Keyword arguments become attributes, so ``MyExecutor(timeout=3)`` configures an instance.
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r} category={str(self.category)!r}>"
