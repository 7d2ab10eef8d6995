"""The ipywidgets drawer: the live view of a run while it runs (standard widgets only).

Layout, top to bottom: the head (an HTML widget: key, status, bar, counts, one line per executor
group), a row with **Cancel run** and the page menu, the body (a fixed-height scrolling box holding
a column of Cancel buttons beside the task table), and the failures with their tracebacks.

Each running task's Cancel button sits in the button column at the height of the task's own row
(every table row is exactly ``ROW_PX`` high; runs of rows without a button are one spacer), is
labelled with the task's key, and turns into a disabled "cancelling…" the moment it is clicked,
until the task's final event. Rows keep their places (tree order, or stable slots for the running
tasks of a big run), so nothing moves under the mouse. Buttons belong to table positions and are
hidden where a row has nothing to cancel, so the column is rebuilt only when it grows or shrinks.

Few widgets and few messages whatever the tree's size: the table is one HTML widget showing at most
``max_rows`` rows (unchanged rows are not rendered again), buttons exist only for running rows, and
only changed traits are sent. Only standard ipywidgets (HTML, Button, Box, Dropdown): no front-end
code of ours, so it works wherever ipywidgets do (JupyterLab, Notebook 7, VS Code).
"""
from __future__ import annotations

import time
from typing import Any, Callable

from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.frame import Frame, RowFrame, Slots, build_frame
from apflow_nb.notebook.views.html import ROW_PX, TABLE_PX, failures_html, head_html, table_html

FOCUS = -1  # the pager's "running and failed first" choice
ARM = 1.0  # seconds after a button was relabelled for another task during which its clicks are ignored
BUTTON_W = "128px"


class WidgetDrawer:
    """Builds the widgets once, then brings them to the state on each ``draw`` (a Drawer)."""

    def __init__(self, state: RunState, on_cancel: Callable[[str | None], Any] | None = None, max_rows: int = 100,
                 on_page: Callable[[], Any] | None = None):
        import ipywidgets as widgets

        self.widgets = widgets
        self._drawing = False
        self.max_rows = max_rows
        self.on_cancel = on_cancel
        self.on_page = on_page
        self.start: int | None = None  # None: focus on running and failed tasks; else the first row shown
        self.slots = Slots(cap=max(1, max_rows * 3 // 4))
        self.frame: Frame | None = None
        self.head = widgets.HTML(layout=widgets.Layout(margin="0"))
        self.cancel = widgets.Button(description="Cancel run", icon="stop", button_style="danger",
                                     tooltip="Cancel every unfinished task of this run")
        self.cancel.on_click(self._cancel_run)
        self.pager = widgets.Dropdown(options=[("running and failed first", FOCUS)], value=FOCUS,
                                      description="show", layout=widgets.Layout(display="none", width="auto"))
        self.pager.observe(self._paged, names="value")
        self._pager_total = -1
        self.buttons = widgets.VBox([], layout=widgets.Layout(width=BUTTON_W, min_width=BUTTON_W, margin="0",
                                                              flex="0 0 auto", overflow="visible"))
        self.table = widgets.HTML(layout=widgets.Layout(margin="0", flex="1 1 auto"))
        self.body = widgets.HBox([self.buttons, self.table],
                                 layout=widgets.Layout(max_height=f"{TABLE_PX + ROW_PX}px", overflow="auto",
                                                       align_items="flex-start", margin="2px 0"))
        self.errors = widgets.HTML(layout=widgets.Layout(margin="0"))
        self._failures_shown = -1
        self._row_cache: dict[str, Any] = {}
        self._buttons: list[Any] = []  # the button beside table line i (hidden when it has nothing to cancel)
        size = {"width": BUTTON_W, "height": f"{ROW_PX}px", "margin": "0", "padding": "0 4px"}
        self._shown = widgets.Layout(**size, visibility="visible")
        self._hidden = widgets.Layout(**size, visibility="hidden")
        self._button_style = widgets.ButtonStyle()
        self._header_spacer = widgets.Box(layout=widgets.Layout(width=BUTTON_W, height=f"{ROW_PX}px", margin="0"))
        self.root = widgets.VBox([self.head, widgets.HBox([self.cancel, self.pager]), self.body, self.errors])
        self.root.add_class("apflow-run")
        self.root.add_class("apflow-live")

    # -- Cancel buttons -----------------------------------------------------------------------
    def _cancel_run(self, _button: Any) -> None:
        self.cancel.disabled = True
        self.cancel.description = "cancelling run…"
        if self.on_cancel is not None:
            self.on_cancel(None)

    def _new_button(self) -> Any:
        """A button of the column: one widget model (its layouts and style are shared by all of them)."""
        button = self.widgets.Button(icon="stop", layout=self._hidden, style=self._button_style)
        button._apflow_task_id, button._apflow_since, button._apflow_hidden = None, 0.0, 0.0
        button.on_click(self._clicked)
        button.add_class("apflow-cancel-task")
        return button

    def _show_button(self, button: Any, line: Any) -> None:
        """The button beside table line ``line``: Cancel (or cancelling…) for a running task, else hidden."""
        cancel = line.cancel if isinstance(line, RowFrame) else ""
        shown = (line.id, line.key, cancel) if cancel else None
        if getattr(button, "_apflow_shown", 0) == shown:
            return  # already shows exactly this
        button._apflow_shown = shown
        if not cancel:
            if button._apflow_task_id is not None:
                button._apflow_task_id, button._apflow_hidden = None, time.monotonic()
            with button.hold_sync():
                _set(button, "layout", self._hidden)
                _set(button, "disabled", True)
            return
        if button._apflow_task_id != line.id:  # this position now names another task
            now = time.monotonic()
            relabelled = button._apflow_task_id is not None or now - button._apflow_hidden < ARM
            button._apflow_task_id, button._apflow_since = line.id, now if relabelled else 0.0
        with button.hold_sync():  # one message: layouts are shared models, swapped by reference
            _set(button, "description", f"Cancel {line.key}" if cancel == "cancel" else "cancelling…")
            _set(button, "tooltip", f"Cancel task {line.key} (id {line.id})" if cancel == "cancel"
                 else f"cancelling {line.key}: waiting for it to stop")
            _set(button, "disabled", cancel != "cancel")
            _set(button, "layout", self._shown)

    def _clicked(self, button: Any) -> None:
        task_id = getattr(button, "_apflow_task_id", None)
        if task_id is None or button.disabled:
            return
        if time.monotonic() - button._apflow_since < ARM:  # meant for the row's previous task: shown too late
            return
        button.disabled = True  # one click is enough; the row says "cancelling…" until the task stops
        button.description = "cancelling…"
        if self.on_cancel is not None:
            self.on_cancel(task_id)

    def _sync_buttons(self, frame: Frame) -> None:
        """One button per table line, down to the last line with a running task, each beside its
        line; hidden where the line has nothing to cancel. Buttons belong to positions, not tasks,
        so the column's structure changes only when it grows or shrinks at its end."""
        lines = frame.lines
        last = max((i for i, line in enumerate(lines) if isinstance(line, RowFrame) and line.cancel), default=-1)
        while len(self._buttons) <= last:
            self._buttons.append(self._new_button())
        for button, line in zip(self._buttons[:last + 1], lines):
            self._show_button(button, line)
        children = (self._header_spacer, *self._buttons[:last + 1]) if last >= 0 else ()
        if tuple(self.buttons.children) != children:
            self.buttons.children = children

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
    def draw(self, state: RunState, final: bool = False) -> None:
        """Bring every widget to the state (only changed traits are sent)."""
        self._drawing = True
        try:
            self._draw(state)
        finally:
            self._drawing = False

    def _draw(self, state: RunState) -> None:
        frame = self.frame = build_frame(state, self.max_rows, start=self.start, slots=self.slots, digits=0)
        _set(self.head, "value", head_html(frame))
        _set(self.cancel.layout, "display", "none" if frame.final else "")
        _set(self.cancel, "disabled", frame.cancelling or frame.final)
        _set(self.cancel, "description", "cancelling run…" if frame.cancelling else "Cancel run")
        self._sync_pager(state)
        _set(self.table, "value", table_html(frame, cache=self._row_cache, compact=True))
        self._sync_buttons(frame)
        failed = len(frame.failures)
        if failed != self._failures_shown:  # re-rendered only when a task fails: open toggles stay open
            self._failures_shown = failed
            _set(self.errors, "value", failures_html(frame))

    def all_widgets(self) -> list[Any]:
        """Every widget of the view (the root first)."""
        return [self.root, *self.root.children, *self.root.children[1].children, *self.body.children,
                *self.buttons.children, self._shown, self._hidden, self._button_style]


    def sync(self) -> None:
        """Send every widget's state again (for a wrapper that re-sends its own, e.g. the graph faces)."""
        for w in self.all_widgets():
            w.send_state()


def _set(obj: Any, name: str, value: Any) -> None:
    if getattr(obj, name) != value:
        setattr(obj, name, value)
