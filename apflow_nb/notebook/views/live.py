"""LiveView: one run's state kept on screen, redrawn at most ``1 / min_interval`` times a second.

The Run feeds it events (one listen loop, several drawers, as in dask's progressbar). Widget and
display updates happen only on the event loop's thread; a call from another thread is handed to
the loop with ``call_soon_threadsafe``. The final frame is always drawn.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

from apflow_nb.core.events import Event
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.html import render_html
from apflow_nb.notebook.views.text import TextLine, render_text

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class LiveView:
    """Draws a RunState as a widget, an updatable HTML display, or a text line (``mode``)."""

    def __init__(self, state: RunState, *, mode: str = "html", on_cancel: Callable[[str | None], Any] | None = None,
                 max_rows: int = 100, min_interval: float = 0.1, stream: Any = None):
        self.state = state
        self.mode = mode
        self.max_rows = max_rows
        self.min_interval = min_interval
        self.redraws = 0
        self._final_version = -1
        self._handle: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0
        self._thread = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self.drawer = None
        self.text = None
        if mode == "widget":
            from apflow_nb.notebook.views.widget import WidgetDrawer

            self.drawer = WidgetDrawer(state, on_cancel=on_cancel, max_rows=max_rows)
            self.drawer.draw(state)
        elif mode == "text":
            self.text = TextLine(stream)

    # -- showing ----------------------------------------------------------------------------
    def show(self) -> None:
        """Put the view on screen (a display with an id, so it can be updated in place)."""
        if self.mode in ("widget", "html"):
            from IPython.display import display

            self._handle = display(self, display_id=True)
        elif self.mode == "text":
            self.text.draw(self.state)  # type: ignore[union-attr]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = {"text/plain": render_text(self.state, self.max_rows),
                                "text/html": render_html(self.state, self.max_rows)}
        if self.drawer is not None:
            data[WIDGET_MIME] = {"version_major": 2, "version_minor": 0, "model_id": self.drawer.root.model_id}
        return data

    def __repr__(self) -> str:
        return render_text(self.state, self.max_rows)

    # -- feeding ----------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Apply an event; redraw now if the run just finished, else within ``min_interval``."""
        if not self.state.apply(event):
            return
        if self.state.finished:
            self.draw(final=True)
        else:
            self._schedule()

    def _schedule(self, delay: float | None = None) -> None:
        """Make sure a redraw happens within ``delay`` (default: as soon as the rate limit allows)."""
        loop = self._loop_for_timers()
        if loop is None:
            self.draw()
            return
        if delay is None:
            delay = max(0.0, self._last + self.min_interval - time.monotonic())
        due = loop.time() + delay
        if self._timer is not None:
            if self._timer.when() <= due:
                return  # an earlier redraw is already planned
            self._timer.cancel()  # e.g. the quiet-time keep-alive tick: bring it forward
        self._timer = loop.call_at(due, self._tick)

    def _loop_for_timers(self) -> asyncio.AbstractEventLoop | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._loop
        self._loop = loop
        self._thread = threading.get_ident()
        return loop

    def _tick(self) -> None:
        self._timer = None
        self.draw()
        if not self.state.finished and self.state.status == "in_progress":
            self._schedule(1.0)  # keep elapsed times moving while tasks run quietly

    def draw(self, final: bool = False) -> None:
        """Redraw now (on the loop's thread)."""
        if threading.get_ident() != self._thread and self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self.draw, final)
            return
        if final:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._final_version == self.state.version:
                return  # this final frame is already on screen
            self._final_version = self.state.version
        self._last = time.monotonic()
        self.redraws += 1
        if self.drawer is not None:
            self.drawer.draw(self.state)
            if final and self._handle is not None:
                self._handle.update(self)  # the static HTML a saved notebook shows becomes the final frame
        elif self.mode == "html" and self._handle is not None:
            self._handle.update(self)
        elif self.text is not None:
            self.text.draw(self.state, final=final)

    def sync(self) -> None:
        """Draw the final frame again and re-send every widget's state, from the calling cell.

        Call it (``await run`` does) in the cell that waits for the run, so nbclient and saved
        notebooks record the final state.
        """
        if self.drawer is not None:
            self.drawer.draw(self.state)
            self.drawer.sync()
        if self._handle is not None:
            self._handle.update(self)
