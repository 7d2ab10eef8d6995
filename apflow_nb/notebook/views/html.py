"""HTML drawing of a Frame: the ``text/html`` repr, the live HTML fallback and a finished run's frame.

Plain HTML with inline styles only (no scripts, no stylesheet), so it renders the same in
JupyterLab, Notebook 7, nbconvert, GitHub and VS Code. Colours come from the palette (theme
variables with fallbacks). Every cell states its own alignment and padding, so host stylesheets
(JupyterLab's centred, right-aligned output tables) change nothing: the table stays left aligned and
indentation is kept. Every row is exactly ``ROW_PX`` high (one line, clipped with an ellipsis),
which lets the widget put each Cancel button beside its own row. Every value is escaped, in text
and in attributes; statuses were mapped to known names before they got here.
"""
from __future__ import annotations

import html
from functools import lru_cache
from typing import Any

from apflow_nb.analysis import palette  # the one palette (analysis: the lowest layer that draws)
from apflow_nb.analysis.palette import FAILED, MUTED, TRACK, css_color, icon, words
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.frame import Frame, GroupFrame, Mark, RowFrame, build_frame, tooltip

ROW_PX = 24
TABLE_PX = 14 * ROW_PX  # the table's visible height before it scrolls
COLUMNS = (("task", 150), ("executor", 100), ("status", 260), ("progress", 130), ("time", 56), ("note", 0))  # 0: the rest
FONT = "font-family:var(--jp-code-font-family, monospace);font-size:12px"
CELL = "padding:0 6px;text-align:left;white-space:nowrap;overflow:hidden;text-overflow:ellipsis"  # beats host CSS
CLIP = "overflow:hidden;text-overflow:ellipsis"  # the widget's table: no host stylesheet to beat (compact)
STRIPE = "background:rgba(128,128,128,0.07)"


def esc(value: Any) -> str:
    """Text and attribute values, escaped (quotes too)."""
    return html.escape("" if value is None else str(value), quote=True)


@lru_cache(maxsize=1024)
def task_bar_html(status: str, percent: int, width: int = 64) -> str:
    """A task's own bar, in its status's colour (one element: a live table has a hundred of them)."""
    pct = f"{max(0, min(100, percent))}%"
    return (f'<span style="display:inline-block;width:{width}px;height:8px;border-radius:4px;vertical-align:middle;'
            f'background:linear-gradient(90deg,{css_color(status)} {pct},{TRACK} {pct})"></span>')


def bar_html(segments: tuple[tuple[str, float], ...], width: int) -> str:
    """A bar whose parts show how much completed, failed, was skipped, cancelled, or is running."""
    parts = "".join(f'<span data-part="{esc(status)}" style="display:inline-block;height:100%;'
                    f'width:{min(100.0, share * 100):.2f}%;background:{css_color(status)}"></span>'
                    for status, share in segments if share > 0.0005)
    return (f'<span class="apflow-bar" style="display:inline-flex;width:{width}px;height:8px;background:{TRACK};'
            f'border-radius:4px;overflow:hidden;vertical-align:middle">{parts}</span>')


@lru_cache(maxsize=1024)
def _status_html(status: str, text: str | None = None) -> str:
    return f'<span style="color:{css_color(status)}">{icon(status)}</span> {esc(text or words(status))}'


def chips_html(frame: Frame) -> str:
    """``✔ 5 completed  ✘ 1 failed  ⤼ 2 skipped``: counts by shown status, zeros left out."""
    return " ".join(f'<span data-count="{esc(s)}" style="margin-right:8px">'
                    f'<span style="color:{css_color(s)}">{icon(s)}</span> {n} {esc(words(s))}</span>'
                    for s, n in frame.counts)


def run_status(frame: Frame) -> str:
    """The run's shown status: ``cancelling`` once a cancel of the run was asked and it still runs."""
    return palette.CANCELLING if frame.cancelling else frame.status


def head_html(frame: Frame) -> str:
    """The run's title line (key, status, bar, done count, time), counts by status, group lines."""
    status = run_status(frame)
    title = (f'<b>apflow run</b> <code title="root id {esc(frame.root_id)}">{esc(frame.root_key)}</code> '
             f'<span data-run-status="{esc(status)}" style="margin:0 6px">{_status_html(status)}</span> '
             f'{bar_html(frame.segments, 220)} {frame.progress:.0%} · {frame.done}/{frame.total} done · '
             f'{esc(frame.elapsed)}')
    out = [f'<div class="apflow-head" style="line-height:22px">{title}</div>',
           f'<div class="apflow-counts" style="line-height:22px">{chips_html(frame)}</div>']
    if frame.groups:
        out.append(groups_html(frame.groups, frame.more_groups))
    if frame.error:
        out.append(f'<div style="color:{css_color(FAILED)}">{esc(frame.error)}</div>')
    if frame.blocked:
        out.append(f'<div style="color:{css_color(palette.CANCELLED)}">{esc(frame.blocked)}</div>')
    return "".join(out)


def groups_html(groups: tuple[GroupFrame, ...], more: int = 0) -> str:
    """One line per executor with its own bar: ``tick 183/300 · 2 failed``."""
    lines = [f'<div class="apflow-group" data-group="{esc(g.name)}" style="line-height:20px">'
             f'{bar_html(g.segments, 120)} {esc(g.line)}</div>' for g in groups]
    if more:
        lines.append(f'<div style="{MUTED}">… and {more} more executors</div>')
    return f'<div class="apflow-groups" style="margin:2px 0 4px 0">{"".join(lines)}</div>'


def _cell(content: str, extra: str = "", compact: bool = False) -> str:
    style = (CLIP if compact else CELL) + (";" + extra if extra else "")
    return f'<td style="{style}">{content}</td>'


@lru_cache(maxsize=8192)
def _row_head(task_id: str, key: str, depth: int, executor: str, compact: bool) -> tuple[str, str]:
    """The parts of a task's row that do not change while it runs, escaped once (before and after data-status)."""
    before = f'<tr data-task-id="{esc(task_id)}" data-key="{esc(key)}" data-status="'
    after = (f'" title="{esc(tooltip(key, task_id, executor))}" style="height:{ROW_PX}px;white-space:nowrap{{stripe}}">'
             + _cell(esc(key), f"padding-left:{6 + 16 * min(depth, 12)}px", compact)
             + _cell(esc(executor), MUTED, compact))
    return before, after


def row_html(row: RowFrame, stripe: bool = False, compact: bool = False) -> str:
    """One task's ``<tr>``: key (indented by depth), executor, status, bar, time, note.

    ``compact``: for the widget's own table, where no host stylesheet needs beating (smaller markup).
    """
    note = ""
    if row.note:
        color = f"color:{css_color(FAILED)}" if row.status == FAILED else MUTED
        note = f'<span style="{color}">{esc(row.note)}</span>'
    before, after = _row_head(row.id, row.key, row.depth, row.executor, compact)
    percent = round(row.progress * 100)
    return (before + esc(row.status) + after.replace("{stripe}", ";" + STRIPE if stripe else "", 1)
            + _cell(_status_html(row.status, row.words), "", compact)
            + _cell(f"{task_bar_html(row.status, percent)} {percent}%", "", compact)
            + _cell(esc(row.seconds), "text-align:right", compact)
            + _cell(note, "", compact) + "</tr>")


def mark_html(mark: Mark) -> str:
    """A section title or a count of tasks left out, one row high."""
    weight = "font-weight:bold" if mark.kind == "section" else MUTED
    return (f'<tr class="apflow-{esc(mark.kind)}" style="height:{ROW_PX}px;white-space:nowrap">'
            f'<td colspan="{len(COLUMNS)}" style="{CELL};{weight}">{esc(mark.text)}</td></tr>')


def table_html(frame: Frame, cache: dict[str, tuple[RowFrame, int, str]] | None = None,
               compact: bool = False) -> str:
    """The task table: a header row, then one fixed-height line per RowFrame or Mark.

    ``cache``: a dict kept between calls; a row whose RowFrame did not change is not rendered again.
    ``compact``: the widget's table (see ``row_html``).
    """
    width = sum(w for _, w in COLUMNS)
    head = "".join(f'<th style="{CELL};height:{ROW_PX}px;{f"width:{w}px;" if w else ""}'
                   f'font-weight:bold">{h}</th>' for h, w in COLUMNS)
    padding = ' cellpadding="3"' if compact else ""
    out = [f'<table class="apflow-table"{padding} style="{FONT};border-collapse:collapse;border-spacing:0;'
           f'table-layout:fixed;width:100%;min-width:{width + 160}px;margin:0;border:none;line-height:{ROW_PX - 6}px">'
           f'<thead><tr style="height:{ROW_PX}px;white-space:nowrap">{head}</tr></thead><tbody>']
    for i, line in enumerate(frame.lines):
        if isinstance(line, Mark):
            out.append(mark_html(line))
            continue
        hit = cache.get(line.id) if cache is not None else None
        if hit is not None and hit[0] == line and hit[1] == i % 2:
            out.append(hit[2])
            continue
        text = row_html(line, stripe=bool(i % 2), compact=compact)
        if cache is not None:
            cache[line.id] = (line, i % 2, text)
        out.append(text)
    out.append("</tbody></table>")
    return "".join(out)


def failures_html(frame: Frame) -> str:
    """Each failed task's error, its traceback behind a toggle."""
    if not frame.failures:
        return ""
    out = [f'<div class="apflow-errors" style="{FONT};margin-top:4px">']
    for task_id, key, line, error in frame.failures:
        out.append(f'<details data-task-id="{esc(task_id)}" data-key="{esc(key)}"><summary style="cursor:pointer">'
                   f'<span style="color:{css_color(FAILED)}">{icon(FAILED)}</span> {esc(key)}: {esc(line[:300])}'
                   f'</summary><pre style="white-space:pre-wrap;margin:0 0 4px 18px;text-align:left">{esc(error)}'
                   f'</pre></details>')
    if frame.more_failures:
        out.append(f'<div style="{MUTED}">… and {frame.more_failures} more failed tasks '
                   f'(<code>run.frame()</code> has every error)</div>')
    out.append("</div>")
    return "".join(out)


def frame_html(frame: Frame) -> str:
    """The whole view as static HTML (a finished run's frame, or the live HTML fallback)."""
    note = f'<div style="{MUTED}">{esc(frame.note)}</div>' if frame.note else ""
    return (f'<div class="apflow-run" data-root-id="{esc(frame.root_id)}" data-status="{esc(frame.status)}" '
            f'data-final="{"1" if frame.final else "0"}" style="{FONT};text-align:left;line-height:normal">'
            + head_html(frame)
            + f'<div class="apflow-scroll" style="max-height:{TABLE_PX + ROW_PX}px;overflow:auto">'
            + table_html(frame) + "</div>" + note + failures_html(frame) + "</div>")


def render_html(state: RunState, max_rows: int = 100, start: int | None = None) -> str:
    """The view of ``state`` as static HTML: header, groups, at most ``max_rows`` task rows, failures."""
    return frame_html(build_frame(state, max_rows, start=start))
