"""``compare()``: runs side by side, one row per task key, one column group per run.

Each run contributes status and duration_s, then every input and result (flattened) that differs between
the runs for at least one key (the error too, when one differs). In a notebook the frame shows as HTML with
the cells that differ from the other runs highlighted (every value escaped); it is a plain DataFrame
otherwise (columns are a MultiIndex: run, field).
"""
from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from apflow_nb.analysis.errors import HistoryQueryError

ALWAYS = ["status", "duration_s"]
NOT_COMPARED = {"duration_s"}  # timing noise: shown, never highlighted
MAX_HTML_ROWS = 500


class Comparison(pd.DataFrame):
    """compare()'s result: a DataFrame (MultiIndex columns run / field) whose notebook display highlights
    the cells that differ between runs. Operations on it give plain DataFrames."""

    _metadata = ["runs", "diff"]

    @property
    def _constructor(self) -> type:
        return pd.DataFrame

    def _repr_html_(self) -> str:
        return comparison_html(self, self.runs, self.diff)


def compare(*runs: Any, store: Any = None) -> Comparison:
    """Runs side by side: ``compare(run_a, run_b)`` with Run handles (``apflow_nb.run``), root ids
    (``compare("sweep1", "sweep2", store=url)``), or one history frame holding several runs
    (``compare(apflow_nb.history(where="key == 'train'"))``). One row per task key (the id the user wrote);
    per run: status, duration_s, and each input and result that differs between the runs."""
    frames = _frames(runs, store)
    if len(frames) < 2:
        raise HistoryQueryError(f"compare() needs at least two runs; got {len(frames)} "
                                f"({', '.join(frames) or 'none'})")
    keys: list[Any] = []
    seen: set[Any] = set()
    for frame in frames.values():
        for key in frame.index:
            if key not in seen:
                seen.add(key)
                keys.append(key)
    fields = _fields(frames, keys)
    columns = {}
    for label, frame in frames.items():
        for name in fields:
            columns[(label, name)] = frame[name].reindex(keys) if name in frame else pd.Series(None, index=keys,
                                                                                               dtype=object)
    out = Comparison(columns, index=pd.Index(keys, name="key"))
    out.columns = pd.MultiIndex.from_tuples(list(columns), names=["run", "field"])
    out.runs = list(frames)
    out.diff = {name: [not _same([frames[label][name].get(k) if name in frames[label] else None
                                  for label in frames]) for k in keys] for name in fields}
    return out


def _frames(runs: tuple[Any, ...], store: Any) -> dict[str, pd.DataFrame]:
    """Each run's frame (one row per key), by run label (its root id)."""
    from apflow_nb.analysis.history import history

    frames: dict[str, pd.DataFrame] = {}
    for run in runs:
        if isinstance(run, pd.DataFrame):
            if "root_id" not in run.columns:
                raise HistoryQueryError("compare() takes a history() frame with a root_id column")
            parts = sorted(run.groupby("root_id", sort=False), key=lambda item: item[1]["created_at"].min())
            for root, part in parts:  # oldest run first, each run's tasks in creation order
                frames[str(root)] = _by_key(part.sort_values("created_at", kind="stable"), str(root))
            continue
        root_id = getattr(run, "root_id", None) if not isinstance(run, str) else run
        if not isinstance(root_id, str):
            raise HistoryQueryError(f"compare() takes Run handles, root ids (strings) or a history() frame; got "
                                    f"{type(run).__name__}")
        source = getattr(run, "manager", None) if store is None and not isinstance(run, str) else store
        frame = history(source, root_id=root_id)
        if frame.empty:
            raise HistoryQueryError(f"compare(): no run with root id {root_id!r} in the store")
        frames[root_id] = _by_key(frame, root_id)
    return frames


def _by_key(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """The run's rows by task key; JSON columns named after one of its task ids (an aggregate's results keyed
    by ``key@run``) renamed after the key, so they line up with the other runs'."""
    keys = frame["key"] if "key" in frame else frame["task_id"]
    if keys.duplicated().any():
        raise HistoryQueryError(f"run {label!r} holds the key {keys[keys.duplicated()].iloc[0]!r} twice; compare "
                                f"runs (root ids), not frames that mix several runs under one root")
    renamed = {tid: key for tid, key in zip(frame["task_id"], keys) if tid != key}
    if renamed:
        def rename(name: str) -> str:
            if not name.startswith(("inputs.", "result.")):
                return name
            parts = [renamed.get(part, part) for part in name.split(".")]
            return ".".join(parts)

        names = [rename(c) for c in frame.columns]
        best: dict[str, tuple[int, int]] = {}  # new name -> (position, values) of the fullest source column
        for i, name in enumerate(names):
            count = int(frame.iloc[:, i].notna().sum())
            if name not in best or count > best[name][1]:
                best[name] = (i, count)
        keep = sorted(i for i, _ in best.values())
        frame = frame.iloc[:, keep]
        frame.columns = [names[i] for i in keep]
    return frame.set_index(keys.to_numpy(), drop=False)


def _fields(frames: dict[str, pd.DataFrame], keys: list[Any]) -> list[str]:
    names: list[str] = []
    for frame in frames.values():
        names += [c for c in frame.columns if c.startswith(("inputs", "result")) and c not in names]
    differing = []
    for name in ["error"] + sorted(names):
        values = [[frame[name].get(k) if name in frame else None for frame in frames.values()] for k in keys]
        if any(not _same(v) for v in values):
            differing.append(name)
    return ALWAYS + differing


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT or \
        (not isinstance(value, (list, dict, str)) and pd.api.types.is_scalar(value) and pd.isna(value))


def _same(values: list[Any]) -> bool:
    """All equal (missing values equal each other, never a present value)."""
    first = values[0]
    for value in values[1:]:
        if _missing(first) or _missing(value):
            if _missing(first) != _missing(value):
                return False
            continue
        try:
            if bool(first != value):
                return False
        except (TypeError, ValueError):
            return False
    return True


def comparison_html(frame: pd.DataFrame, runs: list[str], diff: dict[str, list[bool]]) -> str:
    """The comparison as an HTML table: a header row of runs, one of fields, differing cells highlighted."""
    esc = html.escape
    fields = list(dict.fromkeys(field for _, field in frame.columns))
    head_runs = "".join(f'<th colspan="{len(fields)}" style="text-align:center">{esc(str(r))}</th>' for r in runs)
    edge = ' style="border-left:2px solid #999"'  # where each run's group starts
    head_fields = "".join(f"<th{edge if j == 0 else ''}>{esc(str(f))}</th>" for _ in runs for j, f in enumerate(fields))
    body = []
    for i, key in enumerate(frame.index[:MAX_HTML_ROWS]):
        cells = []
        for run in runs:
            for j, name in enumerate(fields):
                value = frame[(run, name)].iloc[i]
                highlight = diff.get(name, [False] * len(frame))[i] and name not in NOT_COMPARED
                css = ("background:#fff3b0;" if highlight else "") + ("border-left:2px solid #999" if j == 0 else "")
                style = (' class="apflow-diff"' if highlight else "") + (f' style="{css}"' if css else "")
                cells.append(f"<td{style}>{esc(_show(value, name))}</td>")
        body.append(f"<tr><th>{esc(str(key))}</th>{''.join(cells)}</tr>")
    more = (f"<p>{len(frame) - MAX_HTML_ROWS} more rows not shown</p>" if len(frame) > MAX_HTML_ROWS else "")
    return ('<div class="apflow-compare"><table class="dataframe">'
            f'<thead><tr><th rowspan="2">key</th>{head_runs}</tr><tr>{head_fields}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{more}"
            '<p style="font-size:smaller">highlighted: differs between the runs</p></div>')


def _show(value: Any, name: str = "") -> str:
    if _missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if name == "duration_s" else f"{value:.6g}"
    return str(value)
