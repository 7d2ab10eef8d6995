"""Typed pandas columns: the same dtypes whether a frame has 0 rows or 100,000.

Text columns get pandas' default string dtype (``str`` on pandas 3, ``object`` on pandas 2);
timestamps are ``datetime64[us, UTC]``; priority is nullable ``Int64``; depth ``int64``;
progress and duration_s ``float64``. A custom column's dtype follows its SQL type (JSON columns
hold decoded values). Flattened ``inputs.*`` / ``result.*`` columns get the dtype pandas infers
from their values, as ``pd.DataFrame`` would.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Sequence

import numpy as np
import pandas as pd

from apflow_nb.analysis.columns import EVENT_COLUMNS

TIME_DTYPE = "datetime64[us, UTC]"
TEXT_DTYPE = pd.Series(["text"]).dtype  # what this pandas infers for strings: str (pandas 3) or object


def objects(values: Sequence[Any]) -> pd.Series:
    return pd.Series(values if isinstance(values, (list, tuple)) else list(values), dtype=object)


def texts(values: Sequence[Any]) -> pd.Series:
    if pd.api.types.is_object_dtype(TEXT_DTYPE):
        return objects(values)
    return pd.Series(values if isinstance(values, (list, tuple)) else list(values), dtype=TEXT_DTYPE)


def floats(values: Sequence[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype="float64")
    except (TypeError, ValueError):  # e.g. Decimal from some drivers
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")


def integers(values: Sequence[Any]) -> Any:
    try:
        return pd.array(values, dtype="Int64")
    except (TypeError, ValueError):
        return pd.array([None if v is None else int(v) for v in values], dtype="Int64")


def booleans(values: Sequence[Any]) -> Any:
    return pd.array([None if v is None else bool(v) for v in values], dtype="boolean")


def timestamps(values: Sequence[Any]) -> pd.Series:
    """Stored times -> UTC: ISO text (SQLite), datetimes (naive ones are UTC), or epoch microseconds (DuckDB)."""
    first = next((v for v in values if v is not None), None)
    if first is None:
        return pd.Series(pd.NaT, index=range(len(values)), dtype=TIME_DTYPE)
    if isinstance(first, str):
        parsed = pd.to_datetime(objects(values), utc=True, format="ISO8601")
    elif isinstance(first, (int, np.integer)) and not isinstance(first, bool):
        parsed = pd.to_datetime(pd.Series(values, dtype="Int64"), unit="us", utc=True)
    elif isinstance(first, _dt.datetime):
        parsed = pd.to_datetime(objects(values), utc=True)
    else:  # dates, or something else a driver returned
        parsed = pd.to_datetime(objects(values), utc=True, format="mixed")
    return parsed.astype(TIME_DTYPE)


_SCALARS = {"text": texts, "time": timestamps, "int": integers, "float": floats, "bool": booleans}


def typed(kind: str, values: Sequence[Any]) -> Any:
    """A custom column's values as the dtype of its SQL type (see ``query.kind_of``)."""
    if kind == "json":
        from apflow_nb.analysis.flatten import decode_all

        return objects(decode_all(values))
    if kind in _SCALARS and kind != "text":
        return _SCALARS[kind](values)
    if kind == "text" and all(v is None or isinstance(v, str) for v in values):
        return texts(values)
    return objects(values)


def column(kind: str, values: Sequence[Any]) -> Any:
    """One frame column: fixed kinds (see columns.BASE_KINDS), ``infer`` (flattened JSON: the dtype pandas
    infers; all-None stays object), ``object``, or a custom column's ``custom:<kind>``."""
    if kind in _SCALARS:
        return _SCALARS[kind](values)
    if kind == "depth":
        return np.asarray(values, dtype="int64").reshape(len(values))
    if kind == "infer":
        return values if len(values) and any(v is not None for v in values) else objects(values)
    if kind.startswith("custom:"):
        return typed(kind[7:], values)
    return objects(values)


def durations(started: pd.Series, completed: pd.Series) -> np.ndarray:
    return (completed - started).dt.total_seconds().astype("float64").to_numpy()


def build(columns: list[tuple[str, str, Sequence[Any]]]) -> pd.DataFrame:
    """A frame from (name, kind, values) triples, in that order. ``duration_s`` may be given as the kind
    ``duration`` with no values: it is computed from started_at and completed_at."""
    out: dict[str, Any] = {}
    for name, kind, values in columns:
        if kind == "duration":
            started = out["started_at"] if "started_at" in out else timestamps(values[0])
            completed = out["completed_at"] if "completed_at" in out else timestamps(values[1])
            out[name] = durations(pd.Series(started), pd.Series(completed))
        else:
            out[name] = column(kind, values)
    return pd.DataFrame(out, columns=[name for name, _, _ in columns], copy=False)  # the arrays are ours, fresh


def newest_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by created_at descending, then task_id ascending (what ``ORDER BY created_at DESC, id``
    gives; tasks without a creation time last)."""
    if len(frame) < 2:
        return frame
    created = frame["created_at"].array.asi8.copy()
    created[frame["created_at"].isna().to_numpy()] = np.iinfo("int64").min + 1
    order = np.lexsort((frame["task_id"].to_numpy(dtype=object), -created))
    if (order[1:] > order[:-1]).all():
        return frame
    return frame.take(order).reset_index(drop=True)


def events_frame(rows: dict[str, Sequence[Any]]) -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": np.asarray(rows["event_id"], dtype="int64"),
        "event_type": texts(rows["event_type"]),
        "task_id": texts(rows["task_id"]),
        "root_id": texts(rows["root_id"]),
        "name": texts(rows["name"]),
        "status": texts(rows["status"]),
        "progress": floats(rows["progress"]),
        "timestamp": timestamps(rows["timestamp"]),
        "payload": objects(rows["payload"]),
    }, columns=EVENT_COLUMNS)
