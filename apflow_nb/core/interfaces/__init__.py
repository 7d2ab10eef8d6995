"""Interfaces of the core."""
from apflow_nb.core.interfaces.executable_task import ExecutableTask

__all__ = ["ExecutableTask"]
