"""Time and fresh ids, without importing any database library (the engine's hot path needs both)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def new_task_id() -> str:
    """A fresh task id (a uuid4 string)."""
    return str(uuid.uuid4())
