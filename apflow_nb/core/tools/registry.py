"""Looking up registered tools."""
from __future__ import annotations

from typing import Any

from apflow_nb.core.errors import ToolNotFoundError
from apflow_nb.core.extensions.registry import get_registry
from apflow_nb.core.extensions.types import ExtensionCategory


def get_tool(tool_id: str) -> Any:
    """A fresh instance of the tool registered as ``tool_id``."""
    registry = get_registry()
    entry = registry.get(ExtensionCategory.TOOL, tool_id)
    if entry is None:
        known = ", ".join(registry.ids(ExtensionCategory.TOOL)) or "none"
        raise ToolNotFoundError(
            f"No tool registered as {tool_id!r} (registered tools: {known}). "
            f"Register it with apflow_nb.tool_register(MyTool()).")
    return entry.create()


def list_tools() -> list[str]:
    """Ids of every registered tool."""
    return get_registry().ids(ExtensionCategory.TOOL)
