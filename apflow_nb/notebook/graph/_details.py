"""The details panel of one box: a task's inputs, result (truncated), error with its traceback,
timings and attempts; or a cluster's counts and its members (the cluster, expanded as a list).

Plain HTML with inline styles, every value escaped. Reads the task objects the graph was built
from (TaskModel rows of this process's run, or a task array's dicts) and the run's state; never
the database.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from apflow_nb.notebook.graph import _palette as P
from apflow_nb.notebook.graph._group import Item
from apflow_nb.notebook.graph._model import GraphSpec

VALUE_CHARS = 1200
ERROR_CHARS = 6000
MEMBERS_SHOWN = 20


def panel_css(scope: str) -> str:
    """Rules the panels share (cells, status colours), scoped to ``scope`` (a CSS selector)."""
    rules = [f"{scope} .apflow-panel td{{padding:1px 8px 1px 0;vertical-align:top;text-align:left}}"]
    rules += [f"{scope} .c-{s}{{color:{P.color(s)}}}" for s in P.STATUS_VAR]
    return "".join(rules)


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _json(value: Any, limit: int = VALUE_CHARS) -> str:
    try:
        text = json.dumps(value, indent=1, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return P.clip(text, limit)


def _field(source: Any, name: str) -> Any:
    if isinstance(source, dict):
        return source.get(name)
    return getattr(source, name, None) if source is not None else None


def _pre(text: str) -> str:
    return (f'<pre style="white-space:pre-wrap;margin:2px 0;max-height:240px;overflow:auto;'
            f'background:{P.css(P.PANEL)}">{P.esc(text)}</pre>')


def task_details(spec: GraphSpec, index: int, row: Any) -> str:
    """Details of one task (``row``: its TaskRow in the run's state, or None for a plan); attempts
    and a cache hit as the core stored them on the task."""
    t = spec.tasks[index]
    source = spec.sources.get(t.id)
    status = P.status_of(row.status if row is not None else _field(source, "status") or "pending")
    rows = [("status", f'<span style="color:{P.color(status)}">{P.ICON[status]} {status.replace("_", " ")}</span>'),
            ("executor", P.esc(t.executor))]
    if t.id != t.key:
        rows.append(("task id", f"<code>{P.esc(t.id)}</code>"))
    if t.deps:
        names = [spec.tasks[spec.index[d]].key if d in spec.index else d for d, _ in t.deps]
        rows.append(("depends on", P.esc(", ".join(n + ("" if r else " (optional)")
                                                    for n, (_, r) in zip(names, t.deps)))))
    if row is not None:
        if row.started is not None:
            rows.append(("started", _when(row.started)))
        if row.ended is not None:
            rows.append(("ended", _when(row.ended)))
        elapsed = row.elapsed()
        if elapsed is not None and row.ended is not None:
            rows.append(("took", f"{elapsed:.3f} s"))
        if row.status == "in_progress":
            rows.append(("progress", f"{row.progress:.0%}"))
    attempts = _field(source, "attempts")
    if attempts is not None:
        rows.append(("attempts", P.esc(attempts)))
    cached = _field(source, "cached_from")
    if cached:
        rows.append(("cached from", f"<code>{P.esc(cached)}</code>"))
    out = [f'<div style="font-weight:600">{P.ICON[status]} {P.esc(t.key)}</div><table style="font-size:inherit">']
    out += [f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows]
    out.append("</table>")
    inputs = _field(source, "inputs")
    if inputs:
        out.append(f"<div>inputs</div>{_pre(_json(inputs))}")
    result = _field(source, "result")
    if result is not None and status not in ("pending", "in_progress"):
        out.append(f"<div>result</div>{_pre(_json(result))}")
    error = row.error if row is not None else _field(source, "error")
    if error:
        out.append(f'<div style="color:{P.color("failed")}">error</div>{_pre(P.clip(str(error), ERROR_CHARS))}')
    message = row.message if row is not None else None
    if message and not error:
        out.append(f"<div>message</div>{_pre(P.clip(str(message), VALUE_CHARS))}")
    return "".join(out)


def cluster_details(spec: GraphSpec, item: Item, rows: dict[str, Any], key_hint: str) -> str:
    """A cluster, expanded as a list: counts by status, then its members (failed and running first)."""
    members = [spec.tasks[i] for i in item.members]
    statuses = [P.status_of(rows[t.id].status) if t.id in rows else "pending" for t in members]
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    rank = {"failed": 0, "in_progress": 1, "cancelled": 2}
    order = sorted(range(len(members)), key=lambda k: (rank.get(statuses[k], 3), k))
    out = [f'<div style="font-weight:600">{P.esc(item.label)} <span style="font-weight:400">'
           f"{P.esc(item.sub)}</span></div><div>"
           + " ".join(f'<span style="color:{P.color(s)}">{P.ICON[s]} {c} {s.replace("_", " ")}</span>'
                      for s, c in counts.items())
           + f'</div><div style="color:{P.css(P.MUTED)}">expand it: <code>{P.esc(key_hint)}</code></div>'
           '<table style="font-size:inherit">']
    for k in order[:MEMBERS_SHOWN]:
        t, s = members[k], statuses[k]
        row = rows.get(t.id)
        line = P.esc(row.error_line[:160]) if row is not None and row.error else ""
        pct = f"{row.progress:.0%}" if row is not None else ""
        out.append(f'<tr data-task-id="{P.esc(t.id)}"><td class="c-{s}">{P.ICON[s]}</td><td>{P.esc(t.key)}</td>'
                   f"<td>{pct}</td>" + (f'<td class="c-failed">{line}</td>' if line else "") + "</tr>")
    out.append("</table>")
    if len(members) > MEMBERS_SHOWN:
        out.append(f"<div>… and {len(members) - MEMBERS_SHOWN} more</div>")
    return "".join(out)
