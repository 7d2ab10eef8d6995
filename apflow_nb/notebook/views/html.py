"""HTML drawing of a RunState: the ``text/html`` repr, the live fallback and a saved notebook's frame."""
from __future__ import annotations

import html
import time

from apflow_nb.notebook.progress import COLORS, ICONS, STATUS_ORDER, RunState

_STYLE = ("font-family: var(--jp-code-font-family, monospace); font-size: 12px; border-collapse: collapse;")


def _bar(fraction: float, color: str, width: int = 120) -> str:
    pct = max(0.0, min(1.0, fraction)) * 100
    return (f'<div style="width:{width}px;height:8px;background:#e0e0e0;border-radius:4px;display:inline-block">'
            f'<div style="width:{pct:.0f}%;height:8px;background:{color};border-radius:4px"></div></div>')


def render_header_html(state: RunState) -> str:
    """The run's status, counts by status, overall bar and elapsed time, on one line."""
    counts = state.counts
    color = COLORS.get(state.status, "#1565c0")
    chips = " ".join(
        f'<span style="color:{COLORS[s]}">{ICONS[s]} {counts[s]} {s.replace("_", " ")}</span>'
        for s in STATUS_ORDER if counts.get(s))
    return (f'<div style="margin:2px 0"><b>apflow run</b> <code>{html.escape(state.root_id[:8])}</code> '
            f'<span style="color:{color}">{state.status.replace("_", " ")}</span> '
            f'{_bar(state.progress, color, 200)} {state.progress:.0%} · {state.done}/{state.total} done · '
            f'{state.elapsed():.1f} s · {chips}</div>')


def render_html(state: RunState, max_rows: int = 100) -> str:
    """A header (counts, overall bar) and a table with one row per task (the first ``max_rows``)."""
    return (f'<div class="apflow-run" data-root-id="{html.escape(state.root_id)}" data-status="{state.status}">'
            + render_header_html(state) + render_rows_html(state, max_rows) + "</div>")


def render_rows_html(state: RunState, max_rows: int = 100, running_precision: int = 1) -> str:
    """The task table: one row per task, indented by depth, with status, bar, time and errors.

    Running tasks' times are shown to ``running_precision`` decimals (0 keeps a live table from
    changing every redraw just because the clock moved)."""
    out = [f'<table style="{_STYLE}"><tr><th align="left">task</th><th align="left">executor</th>'
           '<th align="left">status</th><th align="left">progress</th><th align="right">time</th></tr>']
    now = time.time()
    rows = list(state.rows.values())
    for row in rows[:max_rows]:
        c = COLORS.get(row.status, "#9e9e9e")
        elapsed = row.elapsed(now)
        error = ""
        if row.error:
            first = html.escape(row.error.splitlines()[0][:200])
            error = (f'<details><summary style="color:{c}">{first}</summary>'
                     f'<pre style="white-space:pre-wrap;margin:0">{html.escape(row.error)}</pre></details>')
        digits = running_precision if row.status == "in_progress" else 1
        out.append(
            f'<tr data-task-id="{html.escape(row.id)}" data-status="{row.status}">'
            f'<td style="padding-left:{4 + 16 * row.depth}px">{html.escape(row.name)}</td>'
            f'<td>{html.escape(row.executor or "")}</td>'
            f'<td style="color:{c}">{ICONS.get(row.status, "?")} {row.status.replace("_", " ")}{error}</td>'
            f'<td>{_bar(row.progress, c)} {row.progress:.0%}</td>'
            f'<td align="right">{"" if elapsed is None else f"{elapsed:.{digits}f} s"}</td></tr>')
    out.append("</table>")
    if len(rows) > max_rows:
        out.append(f"<div>… {len(rows) - max_rows} more tasks not shown (<code>run.frame()</code> lists them all)</div>")
    if state.blocked:
        out.append(f'<div style="color:#e65100">{html.escape(state.blocked)}</div>')
    return "".join(out)
