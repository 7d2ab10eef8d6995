"""Base classes for executors."""
from apflow_nb.core.base.base_task import BaseTask

__all__ = ["BaseTask"]
