"""JSON columns -> Python values -> ``prefix.key`` columns, fast enough for 100,000 rows."""
from __future__ import annotations

import json
from collections import Counter
from itertools import chain
from typing import Any, Sequence

try:  # orjson decodes several times faster; json is the fallback
    import orjson as _orjson

    _loads = _orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


def decode(value: Any) -> Any:
    """One stored JSON value as Python: drivers hand back text (SQLite, DuckDB, cast PostgreSQL
    JSON), bytes, or already decoded objects. Text that is not JSON is returned as it is."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return _loads(value)
        except ValueError:
            return value.decode() if isinstance(value, (bytes, bytearray)) else value
    return value


def decode_all(values: Sequence[Any]) -> list[Any]:
    """``decode`` over a column (one parser call per value: measured faster than one big array)."""
    loads = _loads
    try:
        return [None if v is None else loads(v) for v in values]
    except (TypeError, ValueError):  # objects from the driver, or text that is not JSON
        return [decode(v) for v in values]


# Keys that vary from row to row (results keyed by task id, dependency results in inputs) would
# make a column per key and per run: a dict level with more distinct keys than MAX_KEYS keeps
# its rare keys (found in fewer than RARE_SHARE of the rows holding that level, or in one row)
# together, as a dict, in the column named after the level; at most MAX_COLUMNS keys per level
# become columns.
MAX_KEYS = 64
RARE_SHARE = 0.01
MAX_COLUMNS = 1000


class _Overflow(Exception):
    """A dict level has more than MAX_KEYS distinct keys: count that level's keys, then flatten again."""

    def __init__(self, path: tuple[str, ...]):
        super().__init__(path)
        self.path = path


class Whole(dict):
    """A dict kept whole in one column (a level the key catalog calls wide): flatten() does not spread it."""


def flatten(values: Sequence[Any], prefix: str, rare_levels: set[str] | None = None) -> dict[str, list[Any]]:
    """Decoded values -> columns: ``[{"a": {"b": 1}}, 5, None]`` with prefix "result" gives
    ``{"result.a.b": [1, None, None], "result": [None, 5, None]}``.

    A dict becomes one column per (nested) key, joined with dots; a value that is not a dict (or an
    empty dict) lands in the column named ``prefix``; missing keys are None. Keys that vary from
    row to row stay together as a dict (see MAX_KEYS), so the number of columns stays bounded.
    """
    rare: dict[tuple[str, ...], frozenset[str]] = {}
    while True:  # usually once; once more for each level found to have too many keys
        try:
            columns = _flatten(values, prefix, rare)
            break
        except _Overflow as overflow:
            rare[overflow.path] = _rare_keys(values, overflow.path)
    if rare_levels is not None:  # the levels whose rare keys stay together (named like their column)
        rare_levels.update(".".join((prefix,) + path) for path, keys in rare.items() if keys)
    return columns


def _flatten(values: Sequence[Any], prefix: str, rare: dict[tuple[str, ...], frozenset[str]]) -> dict[str, list[Any]]:
    n = len(values)
    columns: dict[str, list[Any]] = {}
    root = _node(prefix, (), rare)
    for i, value in enumerate(values):
        if type(value) is dict:
            if value:
                _fill(value, root, columns, i, n)
        elif value is not None:
            _column(columns, prefix, n)[i] = value
    return columns


def _column(columns: dict[str, list[Any]], name: str, n: int) -> list[Any]:
    """The column ``name``, made (all None) the first time: never a new list per value."""
    column = columns.get(name)
    if column is None:
        column = columns[name] = [None] * n
    return column


def _node(name: str, path: tuple[str, ...], rare: dict[tuple[str, ...], frozenset[str]]) -> list[Any]:
    """``[entries, rare keys (None: not counted yet), column name, key path, rare keys by path]``; an
    entry is ``[column name, child node, column list]``, so the hot loop does one dict look-up per value."""
    return [{}, rare.get(path), name, path, rare]


def _fill(value: dict[str, Any], node: list[Any], columns: dict[str, list[Any]], i: int, n: int) -> None:
    """Write one row's (nested) dict into ``columns`` at index ``i``."""
    entries, rare, name, path, rare_by_path = node
    if rare is None:
        if len(value) > MAX_KEYS:  # before allocating columns for its keys
            raise _Overflow(path)
    elif rare and rare.issuperset(value):  # only rare keys (results keyed by task id): kept whole
        _column(columns, name, n)[i] = value
        return
    leftover = None
    for key, item in value.items():
        entry = entries.get(key)
        if entry is None:
            if rare is None:
                if len(entries) >= MAX_KEYS:
                    raise _Overflow(path)
            elif key in rare:
                if leftover is None:
                    leftover = {}
                leftover[key] = item
                continue
            entry = entries[key] = [f"{name}.{key}", None, None]
        if type(item) is dict and item:
            child = entry[1]
            if child is None:
                child = entry[1] = _node(entry[0], path + (key,), rare_by_path)
            _fill(item, child, columns, i, n)
            continue
        column = entry[2]
        if column is None:
            column = entry[2] = _column(columns, entry[0], n)
        column[i] = item
    if leftover is not None:
        _column(columns, name, n)[i] = leftover


def _rare_keys(values: Sequence[Any], path: tuple[str, ...]) -> frozenset[str]:
    """The keys of the dicts found at ``path`` that are rare (see MAX_KEYS)."""
    dicts = [v for v in values if type(v) is dict and v]
    for key in path:
        dicts = [d for d in (v.get(key) for v in dicts) if type(d) is dict and d]
    rows = len(dicts)
    counts = Counter(chain.from_iterable(dicts))  # iterating a dict gives its keys
    if len(counts) <= MAX_KEYS:
        return frozenset()
    floor = max(2, rows * RARE_SHARE)
    common = [k for k, c in counts.items() if c >= floor]
    if len(common) > MAX_COLUMNS:
        common = sorted(common, key=lambda k: -counts[k])[:MAX_COLUMNS]
    return frozenset(counts).difference(common)
