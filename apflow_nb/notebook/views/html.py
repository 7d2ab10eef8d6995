"""HTML drawing of a RunState: the ``text/html`` repr, the live fallback and a saved notebook's frame.

Plain HTML with inline styles only (no scripts, no CSS classes that need a stylesheet), so it
renders the same in JupyterLab, nbconvert, GitHub and VS Code.
"""
from __future__ import annotations

import html
import time
from typing import Any

from apflow_nb.notebook.progress import COLORS, ICONS, STATUS_ORDER, RunState, TaskRow

_STYLE = "font-family: var(--jp-code-font-family, monospace); font-size: 12px; border-collapse: collapse;"
_CELL = "padding:1px 6px"
MAX_ERRORS = 20


def _bar(fraction: float, color: str, width: int = 120) -> str:
    pct = max(0.0, min(1.0, fraction)) * 100
    return (f'<div style="width:{width}px;height:8px;background:#e0e0e0;border-radius:4px;display:inline-block">'
            f'<div style="width:{pct:.0f}%;height:8px;background:{color};border-radius:4px"></div></div>')


def _status(status: str) -> str:
    return status.replace("_", " ")


def render_chips(state: RunState) -> str:
    """``✔ 12 completed ✘ 1 failed``: counts by status, coloured, zeros left out."""
    counts = state.counts
    return " ".join(f'<span style="color:{COLORS[s]}">{ICONS[s]} {counts[s]} {_status(s)}</span>'
                    for s in STATUS_ORDER if counts.get(s))


def render_header_html(state: RunState, bar: bool = True) -> str:
    """The run's status, counts by status, overall bar and elapsed time, on one line."""
    color = COLORS.get(state.status, "#1565c0")
    seconds = state.elapsed()
    elapsed = f"{seconds:.1f} s" if state.finished else f"{seconds:.0f} s"
    parts = [f'<b>apflow run</b> <code>{html.escape(state.root_id[:8])}</code>',
             f'<span style="color:{color}" data-run-status="{state.status}">{_status(state.status)}</span>']
    if bar:
        parts.append(f"{_bar(state.progress, color, 200)} {state.progress:.0%}")
    parts.append(f"· {state.done}/{state.total} done · {elapsed} · {render_chips(state)}")
    out = f'<div style="margin:2px 0">{" ".join(parts)}</div>'
    if state.error:
        out += f'<div style="color:{COLORS["failed"]}">{html.escape(state.error)}</div>'
    return out


def _row_html(row: TaskRow, now: float, inline_errors: bool, running_digits: int,
              cache: dict[str, tuple[Any, str]] | None = None) -> str:
    elapsed = row.elapsed(now)
    digits = running_digits if row.status == "in_progress" else 1
    seconds = "" if elapsed is None else f"{elapsed:.{digits}f} s"
    if cache is not None:  # a live table redraws ~10 times a second; most rows did not change
        key = (row.status, round(row.progress * 100), seconds, row.error, row.message, inline_errors)
        hit = cache.get(row.id)
        if hit is not None and hit[0] == key:
            return hit[1]
        out = _row_html(row, now, inline_errors, running_digits)
        cache[row.id] = (key, out)
        return out
    c = COLORS.get(row.status, "#9e9e9e")
    error = ""
    if row.error:
        first = html.escape(row.error_line[:200])
        if inline_errors:
            error = (f'<details><summary style="color:{c}">{first}</summary>'
                     f'<pre style="white-space:pre-wrap;margin:0">{html.escape(row.error)}</pre></details>')
        else:
            error = f'<div style="color:{c}">{first}</div>'
    elif row.message and row.status == "cancelled":
        error = f'<div style="color:{c}">{html.escape(row.message[:200])}</div>'
    return (f'<tr data-task-id="{html.escape(row.id)}" data-status="{row.status}">'
            f'<td style="{_CELL};padding-left:{4 + 16 * row.depth}px">{html.escape(row.name)}</td>'
            f'<td style="{_CELL}">{html.escape(row.executor or "")}</td>'
            f'<td style="{_CELL};color:{c}">{ICONS.get(row.status, "?")} {_status(row.status)}{error}</td>'
            f'<td style="{_CELL}">{_bar(row.progress, c)} {row.progress:.0%}</td>'
            f'<td style="{_CELL};text-align:right">{seconds}</td></tr>')


def render_rows_html(state: RunState, max_rows: int = 100, running_precision: int = 1, *,
                     start: int | None = None, inline_errors: bool = True,
                     cache: dict[str, tuple[Any, str]] | None = None) -> str:
    """The task table: one row per task, indented by depth, with status, bar, time and errors.

    At most ``max_rows`` rows (``RunState.visible``: running and failed first, or the page from
    ``start``); a line marks each run of hidden rows. Running tasks' times are shown to
    ``running_precision`` decimals (0 keeps a live table from changing on every redraw just
    because the clock moved). ``inline_errors``: each failure's traceback behind a toggle in its row.
    ``cache``: a dict kept between calls, so rows that did not change are not rendered again.
    """
    out = [f'<table style="{_STYLE}"><tr>'
           + "".join(f'<th style="{_CELL};text-align:left">{h}</th>' for h in ("task", "executor", "status", "progress"))
           + f'<th style="{_CELL};text-align:right">time</th></tr>']
    now = time.time()
    hidden = 0
    for item in state.visible(max_rows, start):
        if isinstance(item, int):
            hidden += item
            out.append(f'<tr class="apflow-hidden"><td colspan="5" style="{_CELL};color:#9e9e9e">'
                       f'⋯ {item} task{"s" if item != 1 else ""} not shown</td></tr>')
        else:
            out.append(_row_html(item, now, inline_errors, running_precision, cache))
    out.append("</table>")
    if hidden:
        how = "running and failed first" if start is None else f"from task {start + 1}"
        out.append(f'<div style="color:#616161">{state.total - hidden} of {state.total} tasks shown ({how}); '
                   f"<code>run.frame()</code> lists them all</div>")
    if state.blocked:
        out.append(f'<div style="color:#e65100">{html.escape(state.blocked)}</div>')
    return "".join(out)


def render_errors_html(state: RunState, limit: int = MAX_ERRORS) -> str:
    """Each failed task's error, its traceback behind a toggle (the widget's errors panel)."""
    errors = state.errors
    if not errors:
        return ""
    out = [f'<div class="apflow-errors" style="{_STYLE}">']
    for task_id, error in list(errors.items())[:limit]:
        row = state.rows[task_id]
        out.append(f'<details data-task-id="{html.escape(task_id)}"><summary style="color:{COLORS["failed"]}">'
                   f'✘ {html.escape(row.name)}: {html.escape(row.error_line[:200])}</summary>'
                   f'<pre style="white-space:pre-wrap;margin:0 0 0 16px">{html.escape(error)}</pre></details>')
    if len(errors) > limit:
        out.append(f"<div>… and {len(errors) - limit} more failed tasks "
                   f"(<code>run.frame()</code> has every error)</div>")
    out.append("</div>")
    return "".join(out)


def render_html(state: RunState, max_rows: int = 100, start: int | None = None) -> str:
    """A header (counts, overall bar) and a table with one row per task (at most ``max_rows``)."""
    return (f'<div class="apflow-run" data-root-id="{html.escape(state.root_id)}" data-status="{state.status}">'
            + render_header_html(state) + render_rows_html(state, max_rows, start=start) + "</div>")
