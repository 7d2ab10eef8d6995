"""Cache hits on their way to the store: the writer buffers a hit as one small tuple (and its log row as another)
and writes them set-based (``BatchWriter.hit_rows`` / ``hit_events``); these give the same rows as plain values,
for the paths that write row by row."""
from __future__ import annotations

from typing import Any

from apflow_nb.core.storage.json_text import Encoded

HIT = ("_hit",)  # the keys of a buffered cache hit


def hit_values(hit: tuple[str, str | None, str, Any]) -> dict[str, Any]:
    """A buffered cache hit as the column values ``mark`` would have had."""
    _, text, cached_from, instant = hit
    return {"status": "completed", "result": None if text is None else Encoded(text), "error": None,
            "completed_at": instant, "updated_at": instant, "progress": 1.0, "attempts": 0, "cached_from": cached_from}


def hit_event_row(event: tuple[str, str | None, str | None, float, str]) -> dict[str, Any]:
    """A buffered cache hit's log row as ``log_row`` would have had it."""
    task_id, root_id, name, stamp, cached_from = event
    return {"event_type": "task_completed", "task_id": task_id, "root_id": root_id, "name": name,
            "status": "completed", "progress": 1.0, "timestamp": stamp,
            "payload": {"cached": True, "cached_from": cached_from}}
