"""The ipywidgets drawer: header (counts, overall bar, Cancel run) and one row per task.

Only the first ``max_rows`` tasks get a row; traits are set only when their value changed, so a
redraw after a few events touches a few widgets. Every change happens on the event loop's thread.
"""
from __future__ import annotations

import html
import time
from typing import Any, Callable

from apflow_nb.notebook.progress import COLORS, ICONS, RunState
from apflow_nb.notebook.views.html import render_html

BAR_STYLE = {"completed": "success", "failed": "danger", "cancelled": "warning", "in_progress": "info", "pending": ""}


class _Row:
    def __init__(self, widgets: Any, task_id: str, on_cancel: Callable[[str | None], Any] | None):
        self.task_id = task_id
        self.label = widgets.HTML(layout=widgets.Layout(width="40%"))
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="20%"))
        self.status = widgets.HTML(layout=widgets.Layout(width="30%"))
        self.cancel = widgets.Button(description="", icon="stop", tooltip="Cancel this task",
                                     layout=widgets.Layout(width="32px", visibility="hidden"))
        if on_cancel is not None:
            self.cancel.on_click(lambda _b: on_cancel(task_id))
        self.box = widgets.HBox([self.label, self.bar, self.status, self.cancel])
        self.drawn: tuple[Any, ...] = ()


class WidgetDrawer:
    """Builds the widgets once, then updates what changed."""

    def __init__(self, state: RunState, on_cancel: Callable[[str | None], Any] | None = None, max_rows: int = 100):
        import ipywidgets as widgets

        self.widgets = widgets
        self.max_rows = max_rows
        self.on_cancel = on_cancel
        self.header = widgets.HTML()
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress",
                                         layout=widgets.Layout(width="60%"))
        self.cancel = widgets.Button(description="Cancel run", icon="stop", button_style="danger")
        if on_cancel is not None:
            self.cancel.on_click(lambda _b: on_cancel(None))
        self.more = widgets.HTML()
        self.rows: dict[str, _Row] = {}
        self.rows_box = widgets.VBox([])
        self.root = widgets.VBox([self.header, widgets.HBox([self.bar, self.cancel]), self.rows_box, self.more])
        self.root.add_class("apflow-run")
        self._sync_rows(state)

    def _sync_rows(self, state: RunState) -> None:
        shown = list(state.rows)[: self.max_rows]
        if list(self.rows) != shown:
            self.rows = {tid: self.rows.get(tid) or _Row(self.widgets, tid, self.on_cancel) for tid in shown}
            self.rows_box.children = [r.box for r in self.rows.values()]
        hidden = len(state.rows) - len(shown)
        self.more.value = (f"… {hidden} more tasks not shown (<code>run.frame()</code> lists them all)"
                           if hidden > 0 else "")

    def draw(self, state: RunState) -> None:
        """Bring every widget to the state (only changed traits are sent)."""
        self._sync_rows(state)
        counts = state.counts
        chips = " ".join(f'<span style="color:{COLORS[s]}">{ICONS[s]} {n} {s.replace("_", " ")}</span>'
                         for s, n in counts.items() if n)
        header = (f'<b>apflow run</b> <code>{html.escape(state.root_id[:8])}</code> '
                  f'<span style="color:{COLORS.get(state.status, "#1565c0")}">{state.status.replace("_", " ")}</span>'
                  f' · {state.done}/{state.total} done · {state.elapsed():.1f} s · {chips}')
        if state.blocked:
            header += f'<br><span style="color:#e65100">{html.escape(state.blocked)}</span>'
        _set(self.header, "value", header)
        _set(self.bar, "value", round(state.progress, 4))
        _set(self.bar, "bar_style", BAR_STYLE.get(state.status, "info") if state.finished else "info")
        _set(self.cancel, "disabled", state.finished)
        now = time.time()
        for tid, row in self.rows.items():
            task = state.rows[tid]
            elapsed = task.elapsed(now)
            key = (task.status, round(task.progress, 3), None if elapsed is None else round(elapsed, 1), task.error)
            if key == row.drawn:
                continue
            row.drawn = key
            color = COLORS.get(task.status, "#9e9e9e")
            _set(row.label, "value", f'<span style="padding-left:{16 * task.depth}px">{html.escape(task.name)}</span> '
                                     f'<span style="color:#757575">[{html.escape(task.executor or "")}]</span>')
            _set(row.bar, "value", round(task.progress, 4))
            _set(row.bar, "bar_style", BAR_STYLE.get(task.status, ""))
            status = (f'<span style="color:{color}">{ICONS.get(task.status, "?")} {task.status.replace("_", " ")}</span>'
                      + ("" if elapsed is None else f" {elapsed:.1f} s"))
            if task.error:
                status += (f'<details><summary>{html.escape(task.error.splitlines()[0][:120])}</summary>'
                           f'<pre style="white-space:pre-wrap">{html.escape(task.error)}</pre></details>')
            _set(row.status, "value", status)
            _set(row.cancel.layout, "visibility", "visible" if task.status == "in_progress" else "hidden")

    def all_widgets(self) -> list[Any]:
        out = [self.root, self.header, self.bar, self.cancel, self.more, self.rows_box]
        for row in self.rows.values():
            out += [row.box, row.label, row.bar, row.status, row.cancel]
        return out

    def sync(self) -> None:
        """Send every widget's full state again (so a notebook saved now stores the final values)."""
        for w in self.all_widgets():
            w.send_state()

    def fallback_html(self, state: RunState) -> str:
        return render_html(state, self.max_rows)


def _set(obj: Any, name: str, value: Any) -> None:
    if getattr(obj, name) != value:
        setattr(obj, name, value)
