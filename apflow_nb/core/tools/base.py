"""Tool: a reusable utility executors call; inputs are validated against its schema."""
from __future__ import annotations

import functools
from typing import Any, ClassVar

from apflow_nb.core.extensions.base import Extension
from apflow_nb.core.extensions.types import ExtensionCategory


class Tool(Extension):
    """Subclass with ``async execute(inputs)`` and ``get_input_schema()``.

    Every subclass's ``execute`` checks its inputs against ``get_input_schema()`` first (defaults
    filled), so a tool called with bad inputs raises InputValidationError instead of misbehaving.
    """

    category: ClassVar[ExtensionCategory] = ExtensionCategory.TOOL

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        execute = cls.__dict__.get("execute")
        if execute is not None and not getattr(execute, "_apflow_validating", False):
            @functools.wraps(execute)
            async def validating_execute(self: "Tool", inputs: dict[str, Any] | None = None, *a: Any, **kw: Any) -> Any:
                return await execute(self, self.validate_inputs(inputs or {}), *a, **kw)

            validating_execute._apflow_validating = True  # type: ignore[attr-defined]
            cls.execute = validating_execute  # type: ignore[method-assign]

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run the tool."""
        raise NotImplementedError

    def get_input_schema(self) -> dict[str, Any]:
        """JSON Schema of the inputs (empty: anything goes)."""
        return {}

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check inputs against the schema; return them with defaults filled in."""
        from apflow_nb.core.validation import validate_json_schema

        return validate_json_schema(self.get_input_schema(), inputs, owner=f"tool {self.id!r}")
