"""The ipywidgets drawer: a header (status, counts), the overall bar with a Cancel run button, a
Cancel button for each running task, the task table, and the failed tasks' tracebacks.

Few widgets, whatever the tree's size: the table is one HTML widget showing at most ``max_rows``
rows (running and failed first, or a page picked in the "show" menu), so a redraw sends a handful
of comm messages, not one per task. Buttons for running tasks come from a small pool and are
reused. Tracebacks live in their own HTML widget, which changes only when a task fails, so an
opened toggle stays open while the table keeps updating. Every change happens on the loop's
thread (LiveView sees to it); only changed traits are sent.
"""
from __future__ import annotations

import html
from typing import Any, Callable

from apflow_nb.notebook.progress import COLORS, RunState
from apflow_nb.notebook.views.html import render_chips, render_errors_html, render_rows_html

BAR_STYLE = {"completed": "success", "failed": "danger", "cancelled": "warning"}
MAX_TASK_BUTTONS = 20
FOCUS = -1  # the pager's "running and failed first" choice


class WidgetDrawer:
    """Builds the widgets once, then brings them to the state on each ``draw``."""

    def __init__(self, state: RunState, on_cancel: Callable[[str | None], Any] | None = None, max_rows: int = 100,
                 on_page: Callable[[], Any] | None = None):
        import ipywidgets as widgets

        self.widgets = widgets
        self._drawing = False
        self.max_rows = max_rows
        self.on_cancel = on_cancel
        self.on_page = on_page
        self.start: int | None = None  # None: focus on running and failed tasks; else the first row shown
        self.header = widgets.HTML()
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="0%", bar_style="info",
                                         layout=widgets.Layout(width="60%"))
        self.cancel = widgets.Button(description="Cancel run", icon="stop", button_style="danger",
                                     tooltip="Cancel every unfinished task of this run")
        if on_cancel is not None:
            self.cancel.on_click(lambda _b: on_cancel(None))
        self.task_buttons = widgets.HBox([], layout=widgets.Layout(flex_flow="row wrap"))
        self.pager = widgets.Dropdown(options=[("running and failed first", FOCUS)], value=FOCUS,
                                      description="show", layout=widgets.Layout(display="none", width="auto"))
        self.pager.observe(self._paged, names="value")
        self._pager_total = -1
        self.table = widgets.HTML()
        self.errors = widgets.HTML()
        self._errors_shown = -1
        self._row_cache: dict[str, Any] = {}
        self._buttons: dict[str, Any] = {}  # running task id -> its Cancel button
        self._pool: list[Any] = []
        self.root = widgets.VBox([self.header, widgets.HBox([self.bar, self.cancel]), self.task_buttons,
                                  self.pager, self.table, self.errors])
        self.root.add_class("apflow-run")

    # -- per-task Cancel buttons --------------------------------------------------------------
    def _button_for(self, task_id: str, name: str) -> Any:
        button = self._pool.pop() if self._pool else None
        if button is None:
            button = self.widgets.Button(icon="stop", layout=self.widgets.Layout(width="auto"))
            button.on_click(self._clicked)
        button._apflow_task_id = task_id
        button.description = f"Cancel {name}"
        button.tooltip = f"Cancel task {task_id}"
        button.disabled = False
        return button

    def _clicked(self, button: Any) -> None:
        if self.on_cancel is not None:
            button.disabled = True  # one click is enough; the row turns cancelled when the task stops
            self.on_cancel(button._apflow_task_id)

    def _sync_buttons(self, state: RunState) -> None:
        running = state.ids("in_progress")[:MAX_TASK_BUTTONS]
        wanted = set(running)
        for task_id in [t for t in self._buttons if t not in wanted]:
            self._pool.append(self._buttons.pop(task_id))
        for task_id in running:
            if task_id not in self._buttons:
                self._buttons[task_id] = self._button_for(task_id, state.rows[task_id].name)
        children = tuple(self._buttons[t] for t in running)
        if tuple(self.task_buttons.children) != children:
            self.task_buttons.children = children

    # -- paging ---------------------------------------------------------------------------
    def _sync_pager(self, state: RunState) -> None:
        total = state.total
        if total == self._pager_total:
            return
        self._pager_total = total
        if total <= self.max_rows:
            _set(self.pager.layout, "display", "none")
            return
        step = self.max_rows
        options = [("running and failed first", FOCUS)] + [
            (f"tasks {k + 1}–{min(k + step, total)} of {total}", k) for k in range(0, total, step)]
        with self.pager.hold_trait_notifications():
            self.pager.options = options
            if self.pager.value not in {v for _, v in options}:
                self.pager.value = FOCUS
        _set(self.pager.layout, "display", "")

    def _paged(self, change: dict[str, Any]) -> None:
        value = change["new"]
        self.start = None if value is None or value == FOCUS else int(value)
        if self.on_page is not None and not self._drawing:  # a user's choice: show that page now
            self.on_page()

    # -- drawing --------------------------------------------------------------------------
    def draw(self, state: RunState) -> None:
        """Bring every widget to the state (only changed traits are sent)."""
        self._drawing = True
        try:
            self._draw(state)
        finally:
            self._drawing = False

    def _draw(self, state: RunState) -> None:
        seconds = state.elapsed()
        elapsed = f"{seconds:.1f} s" if state.finished else f"{seconds:.0f} s"
        header = (f'<b>apflow run</b> <code>{html.escape(state.root_id[:8])}</code> '
                  f'<span style="color:{COLORS.get(state.status, "#1565c0")}" data-run-status="{state.status}">'
                  f'{state.status.replace("_", " ")}</span> · {state.done}/{state.total} done · {elapsed} · '
                  f'{render_chips(state)}')
        if state.error:
            header += f'<div style="color:{COLORS["failed"]}">{html.escape(state.error)}</div>'
        _set(self.header, "value", header)
        progress = round(state.progress, 3)
        with self.bar.hold_sync():
            _set(self.bar, "value", progress)
            _set(self.bar, "description", f"{progress:.0%}")
            _set(self.bar, "bar_style", BAR_STYLE.get(state.status, "info") if state.finished else "info")
        _set(self.cancel, "disabled", state.finished)
        self._sync_buttons(state)
        self._sync_pager(state)
        _set(self.table, "value", render_rows_html(state, self.max_rows, running_precision=0, start=self.start,
                                                   inline_errors=False, cache=self._row_cache))
        failed = state.counts["failed"]
        if failed != self._errors_shown:  # re-rendered only when a task fails: open toggles stay open
            self._errors_shown = failed
            _set(self.errors, "value", render_errors_html(state))

    def all_widgets(self) -> list[Any]:
        return [self.root, *self.root.children, *self.root.children[1].children, *self._buttons.values()]

    def sync(self) -> None:
        """Send every widget's full state again (so a notebook saved now stores the final values)."""
        for w in self.all_widgets():
            w.send_state()
            for part in ("layout", "style"):  # their own models: a saved notebook needs them too
                sub = getattr(w, part, None)
                if sub is not None and hasattr(sub, "send_state"):
                    sub.send_state()


def _set(obj: Any, name: str, value: Any) -> None:
    if getattr(obj, name) != value:
        setattr(obj, name, value)
