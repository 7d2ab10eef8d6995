"""Tools executors can call."""
from apflow_nb.core.tools.base import Tool
from apflow_nb.core.tools.registry import get_tool, list_tools

__all__ = ["Tool", "get_tool", "list_tools"]
