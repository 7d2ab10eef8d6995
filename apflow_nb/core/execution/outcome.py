"""What one task's run produced: one failure shape, and the pure classification of a result.

``classify_result`` is the single place that decides completed / failed / cancelled from what an
executor returned; ``failure`` builds the one dict every failure is stored as.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apflow_nb.core.storage.json_text import strict
from apflow_nb.core.types import CANCELLED, COMPLETED, FAILED


@dataclass(frozen=True, slots=True)
class Outcome:
    """A final status, the result to store, and the error text (None unless failed)."""

    status: str
    result: Any
    error: str | None = None
    text: str | None = None  # the result's JSON text, when classify_result already encoded it


def failure(message: str, error_type: str, traceback: str | None = None, **extra: Any) -> Outcome:
    """A failed outcome: ``{"status": "failed", "error", "error_type"[, "traceback"]}`` and its error text.

    The stored ``error`` column holds the message, then the traceback when there is one.
    """
    result: dict[str, Any] = {"status": FAILED, "error": message, "error_type": error_type}
    if traceback:
        result["traceback"] = traceback
    result.update(extra)
    return Outcome(FAILED, result, f"{message}\n\n{traceback}" if traceback else message)


def cancelled(message: str, **extra: Any) -> Outcome:
    """A cancelled outcome: ``{"status": "cancelled", "message"}``."""
    return Outcome(CANCELLED, {"status": CANCELLED, "message": message, **extra})


def classify_result(result: Any, executor_id: str, *, cancel_requested: bool = False) -> Outcome:
    """Decide a task's outcome from its executor's return value.

    A cancel that was requested wins (the result is kept when it can be stored); a value that is
    not JSON fails the task; ``{"status": "failed"}`` fails it (error from ``error`` or
    ``message``); ``{"status": "cancelled"}`` cancels it; anything else completes it.
    """
    text, problem = strict(result)
    if cancel_requested:
        return Outcome(CANCELLED, result if isinstance(result, dict) and problem is None else {"status": CANCELLED})
    if problem:
        return failure(f"executor {executor_id!r} returned a result that cannot be stored as JSON ({problem}). "
                       f"Return dicts, lists, strings, numbers, booleans and None only.", "ResultNotJSON")
    if isinstance(result, dict):
        declared = result.get("status")
        if isinstance(declared, str):
            declared = declared.lower()
            if declared == FAILED:
                return Outcome(FAILED, result, str(result.get("error") or result.get("message")
                                                   or "executor reported failure"))
            if declared == CANCELLED:
                return Outcome(CANCELLED, result)
    return Outcome(COMPLETED, result, text=text)
