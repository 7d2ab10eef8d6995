"""Column names of the frames (kept free of pandas so ``import apflow_nb.analysis`` stays light)."""
from __future__ import annotations

HISTORY_COLUMNS = ["task_id", "key", "root_id", "parent_id", "depth", "name", "executor", "status", "priority", "user_id",
                   "created_at", "started_at", "completed_at", "duration_s", "progress", "error", "error_type",
                   "traceback", "attempts", "cached_from"]
# how each fixed column is typed (see frame.column)
BASE_KINDS = {"task_id": "text", "key": "text", "root_id": "text", "parent_id": "text", "depth": "depth",
              "name": "text", "executor": "text", "status": "text", "priority": "int", "user_id": "text",
              "created_at": "time", "started_at": "time", "completed_at": "time", "duration_s": "float",
              "progress": "float", "error": "text", "error_type": "text", "traceback": "text", "attempts": "int",
              "cached_from": "text"}
EVENT_COLUMNS = ["event_id", "event_type", "task_id", "root_id", "name", "status", "progress", "timestamp", "payload"]
# columns of the task table that history() shows in its own way (not as plain "custom" columns)
STANDARD = frozenset({"id", "key", "parent_id", "root_id", "user_id", "name", "status", "priority", "dependencies",
                      "inputs", "params", "result", "schemas", "error", "progress", "has_children",
                      "original_task_id", "has_copy", "owner", "created_at", "started_at", "updated_at",
                      "completed_at", "options", "attempts", "cached_from"})
TIMES = ("created_at", "started_at", "completed_at")
