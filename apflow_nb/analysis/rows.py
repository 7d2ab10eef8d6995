"""history()'s rows: run the SELECT, put rows in tree order when asked, and turn the fetched values into
(name, kind, values) columns for frame.build (every column, or the ``columns=`` the user asked for)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from apflow_nb.analysis.assemble import (ENGINE_KEYS, UNFINISHED, decode_json_piece, error_columns, error_parts,
                                         flatten_stable)
from apflow_nb.analysis.columns import BASE_KINDS, HISTORY_COLUMNS, TIMES
from apflow_nb.analysis.flatten import decode_all, flatten
from apflow_nb.analysis.plan import ERROR_KEYS, Request, select_items, selection_for, task_select
from apflow_nb.analysis.tree import depths_and_roots, fetch_missing_ancestors, tree_order

FIXED = ["key", "parent_id", "name", "executor", "status", "priority", "user_id", "created_at", "started_at",
         "completed_at", "progress", "error", "attempts", "cached_from"]


@dataclass
class Fetched:
    cols: dict[str, Any]
    n: int
    depth: list[int] | None = None
    roots: list[Any] | None = None
    json: dict[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)
    sorted: bool = False  # rows already newest first


def _newest_first(cols: dict[str, Any]) -> bool:
    """Put rows newest first in place when the store returned them in creation order (or its reverse) with no
    two tasks created at the same time, the usual case; False leaves the sort to frame.newest_first."""
    created = cols["created_at"]
    if not created or None in created:
        return False
    kind = type(created[0])
    if kind is str:
        width = len(created[0])  # one fixed-width ISO form: text order is time order
        if set(map(type, created)) != {str} or set(map(len, created)) != {width}:
            return False
    elif kind is not int or set(map(type, created)) != {int}:
        return False
    if len(set(created)) != len(created):
        return False  # ties: the sort by id decides
    ascending = sorted(created)  # one linear pass over a list already in order (either way)
    if ascending == list(created):
        for name, values in cols.items():
            cols[name] = values[::-1]
        return True
    return ascending[::-1] == list(created)


def fetch(conn: Any, engine: Any, tbl: Any, fields: Any, request: Request,
          custom: Sequence[tuple[str, str]]) -> Fetched | None:
    """Run the request's SELECT; None when no row matches."""
    selection = selection_for(request, tbl, custom)
    result = conn.execute(task_select(engine, tbl, fields, request, select_items(engine, tbl, fields, selection,
                                                                                  custom)))
    keys = list(result.keys())
    fetched = result.cursor.fetchall() if result.cursor is not None else result.all()  # plain tuples
    result.close()
    if not fetched:
        return None
    cols = dict(zip(keys, zip(*fetched)))  # one tuple per column
    del fetched
    out = Fetched(cols, len(cols["id"]), json=selection.json)
    if request.root_id is None and not request.sql_order:
        out.sorted = _newest_first(cols)
    if "parent_id" in cols:
        parents = dict(zip(cols["id"], cols["parent_id"]))
        fetch_missing_ancestors(conn, tbl, parents)
        depth, roots = depths_and_roots(parents)
        out.depth = [depth[t] for t in cols["id"]]
        stored = cols.get("root_id")
        out.roots = ([r if r is not None else roots[t] for r, t in zip(stored, cols["id"])] if stored
                     else [roots[t] for t in cols["id"]])
    if request.root_id is not None and not request.order:
        _tree_order(out, request)
    return out


def _tree_order(out: Fetched, request: Request) -> None:
    """Rows of one run depth first (siblings in creation order), then offset and limit."""
    from apflow_nb.analysis.frame import timestamps

    cols = out.cols
    created = timestamps(cols["created_at"]).array.asi8.tolist()
    order = tree_order(list(cols["id"]), list(cols["parent_id"]), created)
    start = request.offset or 0
    order = order[start:None if request.limit is None else start + request.limit]
    out.cols = {name: [values[i] for i in order] for name, values in cols.items()}
    out.depth = [out.depth[i] for i in order]
    out.roots = [out.roots[i] for i in order]
    out.n = len(order)


def frame_columns(conn: Any, fetched: Fetched, request: Request,
                  custom: Sequence[tuple[str, str]]) -> list[tuple[str, str, Sequence[Any]]]:
    if request.columns is None:
        return _all_columns(conn, fetched, request, custom)
    return _chosen_columns(fetched, request, custom)


def _all_columns(conn: Any, fetched: Fetched, request: Request, custom: Sequence[tuple[str, str]]) -> list[Any]:
    from apflow_nb.analysis.catalog import declared_inputs, read_catalog

    cols = fetched.cols
    inputs, results = decode_all(cols["inputs"]), decode_all(cols["result"])
    messages, kinds, tracebacks = error_columns(cols["status"], cols["error"], results)
    values = {**{name: cols[name] for name in FIXED}, "task_id": cols["id"], "depth": fetched.depth,
              "root_id": fetched.roots, "error": messages, "error_type": kinds, "traceback": tracebacks}
    out = [(name, BASE_KINDS[name], values[name]) for name in HISTORY_COLUMNS if name != "duration_s"]
    out.insert(HISTORY_COLUMNS.index("duration_s"), ("duration_s", "duration",
                                                     (cols["started_at"], cols["completed_at"])))
    if request.flatten:
        covered = set(cols["executor"]).union(request.executor or ())
        extra = flatten_stable(inputs, results, cols["executor"], read_catalog(conn, covered),
                               declared_inputs(covered), covered)
        for prefix in ("inputs", "result"):
            out += [(name, "infer", extra[name]) for name in sorted(extra)
                    if name == prefix or name.startswith(prefix + ".")]
    else:
        out += [("inputs", "object", inputs), ("result", "object", results)]
    out += [(name, f"custom:{kind}", cols[name]) for name, kind in custom]
    return out


def _chosen_columns(fetched: Fetched, request: Request, custom: Sequence[tuple[str, str]]) -> list[Any]:
    cols, kinds = fetched.cols, dict(custom)
    pieces = {label: decode_json_piece(cols[label]) for label in fetched.json}
    errors = None
    if any(label.startswith("e_") for label in pieces):
        errors = list(zip(*(error_parts(s, e, {k: pieces[f"e_{k}"][i] for k in ERROR_KEYS})
                            for i, (s, e) in enumerate(zip(cols["status"], cols.get("error", [None] * fetched.n))))))
    labels = iter(label for label in fetched.json if not label.startswith("e_"))
    out: list[tuple[str, str, Sequence[Any]]] = []
    for ref in request.columns or ():
        name = ref.column
        if name in ("inputs", "result") or kinds.get(name) == "json":
            values = pieces[next(labels)]
            if name == "result":
                _hide_engine_keys(values, ref.path, cols["status"])
            if request.flatten and name in ("inputs", "result"):
                flat = flatten(values, ref.name)
                out += [(n, "infer", flat[n]) for n in sorted(flat)] or [(ref.name, "object", [None] * fetched.n)]
            else:
                out.append((ref.name, "object", values))
        elif name in ("error", "error_type", "traceback"):
            out.append((name, "text", list(errors[("error", "error_type", "traceback").index(name)])))
        elif name == "duration_s":
            out.append((name, "duration", (cols["started_at"], cols["completed_at"])))
        else:
            values = {"task_id": cols["id"], "depth": fetched.depth, "root_id": fetched.roots}.get(name)
            values = cols[name] if values is None else values
            out.append((name, f"custom:{kinds[name]}" if name in kinds else BASE_KINDS[name], values))
    return out


def _hide_engine_keys(values: list[Any], path: tuple[Any, ...], statuses: Sequence[Any]) -> None:
    """A failed or cancelled task's result, as the full frame shows it: without the engine's error keys."""
    for i, status in enumerate(statuses):
        if status not in UNFINISHED:
            continue
        value = values[i]
        if not path and type(value) is dict:
            for key in ENGINE_KEYS.intersection(value):
                del value[key]
            values[i] = value or None
        elif path and path[0] in ENGINE_KEYS:
            values[i] = None


def empty(request: Request, custom: Sequence[tuple[str, str]], conn: Any = None) -> Any:
    """The frame of a store with no (matching) tasks: the same columns and dtypes as a full one (with the
    catalog's columns of the executors an ``executor=`` filter names)."""
    from apflow_nb.analysis import frame as f

    if request.columns is not None:
        kinds = dict(custom)
        triples = []
        for ref in request.columns:
            if ref.column in ("inputs", "result") or kinds.get(ref.column) == "json":
                triples.append((ref.name, "object", []))
            elif ref.column == "duration_s":
                triples.append(("duration_s", "float", []))
            else:
                kind = f"custom:{kinds[ref.column]}" if ref.column in kinds else BASE_KINDS.get(ref.column, "object")
                triples.append((ref.column, kind, []))
        return f.build(triples)
    triples = [(name, BASE_KINDS[name], []) for name in HISTORY_COLUMNS]
    if request.flatten and conn is not None and request.executor:
        from apflow_nb.analysis.catalog import declared_inputs, read_catalog

        covered = set(request.executor)
        extra = flatten_stable([], [], [], read_catalog(conn, covered), declared_inputs(covered), covered)
        triples += [(name, "object", []) for name in sorted(extra, key=lambda n: (not n.startswith("inputs"), n))]
    elif not request.flatten:
        triples += [("inputs", "object", []), ("result", "object", [])]
    triples += [(name, f"custom:{kind}", []) for name, kind in custom]
    return f.build(triples)


__all__ = ["Fetched", "fetch", "frame_columns", "empty", "TIMES"]
