"""Every argument of history() and events() checked before any query: a bad one is a FilterError naming it.

Decisions: ``status=`` accepts only the engine's statuses (a typo would silently give an empty frame;
``where="status == 'x'"`` reaches any other stored value); ``root_id=`` is one run's id (a string; several
runs: ``where="root_id in [...]"``); ``since``/``until`` take datetimes, pandas Timestamps, dates and ISO 8601
text ("2026-01-31", "2026-01-31T12:00:00Z"); naive values mean UTC.
"""
from __future__ import annotations

import operator
from datetime import date, datetime, timezone
from typing import Any, Iterable

from apflow_nb.analysis.errors import FilterError
from apflow_nb.core.types import STATUSES


def _text(value: Any) -> str | None:
    """``value`` as a filter string: a str, or an enum member whose value is a str (TaskStatus, EventType)."""
    if isinstance(value, str):
        return str(getattr(value, "value", value))
    return None


def texts(function: str, argument: str, value: Any, what: str = "a string",
          allowed: Iterable[str] | None = None) -> list[str] | None:
    """One string or several (list, tuple, set, frozenset) -> a list; anything else is a FilterError."""
    if value is None:
        return None
    expected = f"{what} or a list of them" + (f" (one of {', '.join(map(repr, allowed))})" if allowed else "")
    single = _text(value)
    if single is not None:
        items = [single]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = [_text(v) for v in value]
        if any(v is None for v in items):
            bad = next(v for v in value if _text(v) is None)
            raise FilterError(function, argument, value, f"{expected}; {bad!r} is not a string")
    else:
        raise FilterError(function, argument, value, expected)
    if allowed is not None:
        unknown = [v for v in items if v not in allowed]
        if unknown:
            other = f" (other stored values: where=\"{argument} == '...'\")" if function == "history" else ""
            raise FilterError(function, argument, value, f"{expected}; {unknown[0]!r} is not one of them{other}")
    return items


def statuses(function: str, value: Any) -> list[str] | None:
    return texts(function, "status", value, "a task status", STATUSES)


def one_text(function: str, argument: str, value: Any, hint: str = "") -> str | None:
    """A single string (an id): lists, dicts and numbers are FilterErrors."""
    if value is None or _text(value) is not None:
        return None if value is None else _text(value)
    raise FilterError(function, argument, value, "a string" + hint)


def count(function: str, argument: str, value: Any) -> int | None:
    """``limit`` / ``offset``: a non-negative integer or None."""
    if value is None:
        return None
    try:
        number = operator.index(value)
    except TypeError:
        number = -1
    if isinstance(value, bool) or number < 0:
        raise FilterError(function, argument, value, "a non-negative integer or None")
    return number


def moment(function: str, argument: str, value: Any) -> datetime | None:
    """``since`` / ``until`` as an aware UTC datetime (naive values and text without a zone mean UTC)."""
    if value is None:
        return None
    expected = ("a datetime, a date or ISO 8601 text such as '2026-01-31' or '2026-01-31T12:00:00Z' "
                "(naive values are UTC)")
    parsed = as_datetime(value)
    if parsed is None:
        raise FilterError(function, argument, value, expected)
    return parsed


def as_datetime(value: Any) -> datetime | None:
    """A datetime, date, pandas Timestamp or ISO 8601 text -> aware UTC datetime; None if it is none of those."""
    if hasattr(value, "to_pydatetime") and not isinstance(value, datetime):
        value = value.to_pydatetime()
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        return None
    try:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def flag(function: str, argument: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise FilterError(function, argument, value, "True or False")
    return value


def text_list(function: str, argument: str, value: Any, what: str) -> list[str] | None:
    """``order_by`` / ``columns``: one string or a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise FilterError(function, argument, value, f"{what} (a string) or a list of them")
