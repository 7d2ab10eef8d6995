"""The ipywidgets drawer: a header (status, counts, overall bar, Cancel run), the task table, and a
Cancel button for each running task.

Few widgets, whatever the tree's size: the table is one HTML widget (rows beyond ``max_rows``
are summarised), so a redraw sends a handful of comm messages, not one per task. Buttons for
running tasks come from a small pool and are reused. Every change happens on the loop's thread.
"""
from __future__ import annotations

import html
from typing import Any, Callable

from apflow_nb.notebook.progress import COLORS, ICONS, RunState
from apflow_nb.notebook.views.html import render_html, render_rows_html

BAR_STYLE = {"completed": "success", "failed": "danger", "cancelled": "warning", "in_progress": "info", "pending": ""}
MAX_TASK_BUTTONS = 20


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
        self.table = widgets.HTML()
        self.task_buttons = widgets.HBox([], layout=widgets.Layout(flex_flow="row wrap"))
        self._buttons: dict[str, Any] = {}  # running task id -> its Cancel button
        self._pool: list[Any] = []
        self.root = widgets.VBox([self.header, widgets.HBox([self.bar, self.cancel]), self.task_buttons, self.table])
        self.root.add_class("apflow-run")

    def _button_for(self, task_id: str, name: str) -> Any:
        button = self._pool.pop() if self._pool else None
        if button is None:
            button = self.widgets.Button(icon="stop", layout=self.widgets.Layout(width="auto"))
            button.on_click(lambda b: self.on_cancel(b._apflow_task_id) if self.on_cancel else None)
        button._apflow_task_id = task_id
        button.description = f"Cancel {name}"
        button.tooltip = f"Cancel task {task_id}"
        return button

    def _sync_buttons(self, state: RunState) -> None:
        running = [r for r in state.rows.values() if r.status == "in_progress"][:MAX_TASK_BUTTONS]
        wanted = {r.id: r for r in running}
        for task_id in [t for t in self._buttons if t not in wanted]:
            self._pool.append(self._buttons.pop(task_id))
        for task_id, row in wanted.items():
            if task_id not in self._buttons:
                self._buttons[task_id] = self._button_for(task_id, row.name)
        children = tuple(self._buttons[r.id] for r in running)
        if tuple(self.task_buttons.children) != children:
            self.task_buttons.children = children

    def draw(self, state: RunState) -> None:
        """Bring every widget to the state (only changed traits are sent)."""
        counts = state.counts
        chips = " ".join(f'<span style="color:{COLORS[s]}">{ICONS[s]} {n} {s.replace("_", " ")}</span>'
                         for s, n in counts.items() if n)
        header = (f'<b>apflow run</b> <code>{html.escape(state.root_id[:8])}</code> '
                  f'<span style="color:{COLORS.get(state.status, "#1565c0")}">{state.status.replace("_", " ")}</span>'
                  f' · {state.done}/{state.total} done · {state.elapsed():.0f} s · {chips}')
        if state.finished:
            header = header.replace(f"{state.elapsed():.0f} s", f"{state.elapsed():.1f} s", 1)
        _set(self.header, "value", header)
        with self.bar.hold_sync():
            _set(self.bar, "value", round(state.progress, 3))
            _set(self.bar, "bar_style", BAR_STYLE.get(state.status, "info") if state.finished else "info")
        _set(self.cancel, "disabled", state.finished)
        self._sync_buttons(state)
        _set(self.table, "value", render_rows_html(state, self.max_rows, running_precision=0))

    def all_widgets(self) -> list[Any]:
        return [self.root, self.header, self.bar, self.cancel, self.table, self.task_buttons, *self._buttons.values()]

    def sync(self) -> None:
        """Send every widget's full state again (so a notebook saved now stores the final values)."""
        for w in self.all_widgets():
            w.send_state()

    def fallback_html(self, state: RunState) -> str:
        return render_html(state, self.max_rows)


def _set(obj: Any, name: str, value: Any) -> None:
    if getattr(obj, name) != value:
        setattr(obj, name, value)
