"""Fetched columns -> history()'s values: error columns, failed results without the engine's keys, wide
levels kept whole, flattened JSON, and the stable columns the key catalog and declared schemas add."""
from __future__ import annotations

from typing import Any, Sequence

from apflow_nb.analysis.catalog import Shapes
from apflow_nb.analysis.filtersql import TRACEBACK_MARK
from apflow_nb.analysis.flatten import Whole, decode, flatten

# keys the engine writes into the result of a task that failed or was cancelled; shown in the error,
# error_type and traceback columns instead of as result.* columns
ENGINE_KEYS = frozenset({"status", "error", "error_type", "traceback", "message", "upstream"})
UNFINISHED = frozenset({"failed", "cancelled"})


def error_parts(status: Any, error: Any, result: Any) -> tuple[Any, Any, Any]:
    """(error, error_type, traceback) of one task, as where= computes them in SQL: the stored error up to
    its traceback; the result's error_type; the result's traceback, else the one after the message; for a
    cancelled task without an error, the engine's message."""
    message = traceback = error_type = None
    if isinstance(error, str):
        at = error.find(TRACEBACK_MARK)
        message, traceback = (error, None) if at < 0 else (error[:at], error[at + 2:])
    if status in UNFINISHED and type(result) is dict:
        kind = result.get("error_type")
        error_type = kind if isinstance(kind, str) else None
        stored_tb = result.get("traceback")
        if isinstance(stored_tb, str):
            traceback = stored_tb
        if message is None and status == "cancelled" and isinstance(result.get("message"), str):
            message = result["message"]
    return message, error_type, traceback


def error_columns(statuses: Sequence[Any], errors: Sequence[Any], results: list[Any]) -> tuple[list, list, list]:
    """The error, error_type and traceback columns; failed and cancelled results lose the engine's keys
    (in place), and become None when nothing else is left."""
    n = len(statuses)
    messages, kinds, tracebacks = list(errors), [None] * n, [None] * n
    for i, (status, error) in enumerate(zip(statuses, errors)):
        if error is None and status not in UNFINISHED:
            continue
        result = results[i]
        messages[i], kinds[i], tracebacks[i] = error_parts(status, error, result)
        if status in UNFINISHED and type(result) is dict and not ENGINE_KEYS.isdisjoint(result):
            for key in ENGINE_KEYS.intersection(result):
                del result[key]
            if not result:
                results[i] = None
    return messages, kinds, tracebacks


def keep_whole(values: list[Any], rows: Sequence[int], executors: Sequence[Any],
               wide: dict[str, list[tuple[str, ...]]]) -> tuple[list[tuple[int, Any]], list[int]]:
    """Keep each wide level of a row's dict (per its executor) as one value: a wide top level is taken out
    of ``values`` (returned as ``(row, value)`` pairs, no copy made), a wide nested level is wrapped in
    ``Whole`` so flatten() does not spread it (the rows wrapped are returned); ``rows`` are the positions
    whose executor has wide levels."""
    tops: list[tuple[int, Any]] = []
    nested: list[int] = []
    for i in rows:
        paths = wide.get(executors[i])
        value = values[i]
        if paths is None or type(value) is not dict:
            continue
        for path in paths:  # shortest first: a wide level inside a wide level is already whole
            if not path:
                tops.append((i, value))
                values[i] = None
                break
            parent = value
            for key in path[:-1]:
                parent = parent.get(key)
                if type(parent) is not dict:
                    break
            else:
                child = parent.get(path[-1])
                if type(child) is dict and child:
                    parent[path[-1]] = Whole(child)
                    nested.append(i)
    return tops, nested


def column_name(prefix: str, path: Sequence[Any]) -> str:
    return ".".join((prefix, *map(str, path)))


def flatten_stable(inputs: list[Any], results: list[Any], executors: Sequence[Any], shapes: dict[str, Shapes],
                   declared: dict[str, list[str]], covered: set[str]) -> dict[str, list[Any]]:
    """``inputs.*`` and ``result.*`` columns: the rows' keys, plus every column the catalog and declared
    schemas name for the covered executors (all None where no row has a value)."""
    n = len(executors)
    columns: dict[str, list[Any]] = {}
    with_wide = {e for e, s in shapes.items() if s.wide["inputs"] or s.wide["result"]}
    rows = [i for i, e in enumerate(executors) if e in with_wide] if with_wide else []
    for prefix, values in (("inputs", inputs), ("result", results)):
        wide = {e: sorted(s.wide[prefix], key=len) for e, s in shapes.items() if s.wide[prefix]}
        tops, nested = keep_whole(values, rows, executors, wide) if wide else ([], [])
        rare: set[str] = set()
        flat = flatten(values, prefix, rare)
        if tops:
            column = flat.setdefault(prefix, [None] * n)
            for i, value in tops:
                column[i] = values[i] = value
        whole_names = {column_name(prefix, p) for paths in wide.values() for p in paths if p}
        for name in whole_names.intersection(flat):
            column = flat[name]
            for i in nested:
                if type(column[i]) is Whole:
                    column[i] = dict(column[i])
        known = [column_name(prefix, p) for e in covered if e in shapes for p in shapes[e].columns(prefix)]
        if prefix == "inputs":
            known += [column_name(prefix, (k,)) for e in covered for k in declared.get(e, ())]
        _add_missing(flat, known, rare, n)
        columns.update(flat)
    return columns


def _add_missing(flat: dict[str, list[Any]], names: list[str], rare: set[str], n: int) -> None:
    """Add each of ``names`` the rows did not give, unless a column below it exists (a declared input that
    holds a dict) or a level above it keeps rare keys together."""
    if not names:
        return
    below = set()
    for name in flat:  # every ancestor of an existing column
        parts = name.split(".")
        below.update(".".join(parts[:i]) for i in range(1, len(parts)))
    for name in names:
        if name in flat or name in below:
            continue
        parts = name.split(".")
        if any(".".join(parts[:i]) in rare for i in range(1, len(parts))):
            continue
        flat[name] = [None] * n


def decode_json_piece(values: Sequence[Any]) -> list[Any]:
    """Values selected as JSON text (columns=): decoded; None where the path is absent."""
    return [None if v is None else decode(v) for v in values]
