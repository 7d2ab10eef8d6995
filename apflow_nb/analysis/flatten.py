"""Flattening JSON columns into ``prefix.key`` columns, fast enough for 100,000 rows."""
from __future__ import annotations

import json
from typing import Any, Iterable

try:  # orjson decodes several times faster when it is installed; json is the fallback
    import orjson as _orjson

    _loads = _orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


def decode(value: Any) -> Any:
    """A stored JSON value as Python: drivers hand back text (SQLite, DuckDB) or objects (psycopg)."""
    if value is None or value == "null":
        return None
    if isinstance(value, (str, bytes)):
        try:
            return _loads(value)
        except ValueError:
            return value
    return value


def _fill(value: dict[str, Any], names: dict[str, list[Any]], prefix: str, columns: dict[str, list[Any]],
          i: int, n: int) -> None:
    """Write one row's (nested) dict into ``columns`` at index ``i``.

    ``names`` caches, per key, ``[column name, nested cache, column list]`` so the hot loop does
    one dict look-up per value.
    """
    for key, item in value.items():
        entry = names.get(key)
        if entry is None:
            entry = names[key] = [f"{prefix}.{key}", {}, None]
        if type(item) is dict and item:
            _fill(item, entry[1], entry[0], columns, i, n)
            continue
        column = entry[2]
        if column is None:
            column = entry[2] = columns.setdefault(entry[0], [None] * n)
        column[i] = item


def flatten_column(values: Iterable[Any], prefix: str, n: int) -> dict[str, list[Any]]:
    """``[{"a": {"b": 1}}, 5, None]`` with prefix "result" -> ``{"result.a.b": [1, None, None], "result": [None, 5, None]}``.

    Dicts become one column per (nested) key; a non-dict value lands in the column named
    ``prefix``; missing keys are None.
    """
    columns: dict[str, list[Any]] = {}
    names: dict[str, list[Any]] = {}
    for i, raw in enumerate(values):
        if raw is None or raw == "null":
            continue
        value = decode(raw)
        if type(value) is dict:
            _fill(value, names, prefix, columns, i, n)
        elif value is not None:
            columns.setdefault(prefix, [None] * n)[i] = value
    return columns
