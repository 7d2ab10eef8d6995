"""Rows the database refused, made storable: a copy with JSON values replaced by a note and strings made safe,
then (for a task row) its state columns only, or (for a log row) the row without its payload."""
from __future__ import annotations

from typing import Any

from apflow_nb.core.storage.json_text import short_repr

STATE_COLUMNS = ("status", "error", "progress", "started_at", "completed_at", "updated_at", "owner", "root_id")


def repaired(row: dict[str, Any], is_event: bool) -> dict[str, Any]:
    """The row with JSON values replaced by a note and strings made safe for any database."""
    out = {}
    for key, value in row.items():
        if isinstance(value, (dict, list)):
            value = {"unstorable": short_repr(value)}
        elif isinstance(value, str):
            value = value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
        out[key] = value
    return out


def state_only(row: dict[str, Any], is_event: bool) -> dict[str, Any]:
    """An event row without its payload, or a task row with only its state columns."""
    if is_event:
        return dict(row, payload=None, name=None)
    kept = {k: v for k, v in repaired(row, is_event).items() if k in STATE_COLUMNS or k == "_task_id"}
    if "error" in kept and kept["error"] is not None:
        kept["error"] = kept["error"][:10_000]
    return kept
