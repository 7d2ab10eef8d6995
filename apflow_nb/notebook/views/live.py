"""LiveView: one run's state kept on screen, redrawn at most ``1 / min_interval`` times a second.

The Run feeds it events (one listen loop, several drawers, as in dask's progressbar). Applying an
event to the state is cheap and happens for every event; drawing happens on a timer, so a burst
of 100,000 events costs a handful of redraws. The final frame is always drawn.

Threads: widget and display updates happen only on the event loop's thread. ``on_event``,
``draw`` and ``sync`` called from another thread are handed to the loop with
``call_soon_threadsafe`` (ipykernel 7 drops or misroutes output sent from other threads).
"""
from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any, Callable

from apflow_nb.core.events import Event
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.html import render_html
from apflow_nb.notebook.views.text import TextLine, render_text

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
KEEPALIVE = 1.0  # while tasks run quietly, redraw this often so elapsed times keep moving


def _ipython_shell() -> Any:
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython.core.interactiveshell import InteractiveShell
    except ImportError:
        return None
    return InteractiveShell.instance() if InteractiveShell.initialized() else None


class LiveView:
    """Draws a RunState as a widget, an updatable HTML display, or a text line (``mode``).

    Whatever the mode, ``_repr_mimebundle_`` gives ``text/plain`` and ``text/html`` of the
    current state, so the view shows wherever widgets cannot (nbconvert, GitHub, a terminal).
    """

    def __init__(self, state: RunState, *, mode: str = "html", on_cancel: Callable[[str | None], Any] | None = None,
                 max_rows: int = 100, min_interval: float = 0.1, stream: Any = None, tree: Any = None,
                 view: str = "table"):
        self.state = state
        self.mode = mode
        self.max_rows = max_rows
        self.min_interval = min_interval
        self.redraws = 0
        self._stream = stream
        self._final_version = -1
        self._handle: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # a rate-limited redraw is already planned
        self._last = 0.0
        self._thread = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self.drawer: Any = None
        self.widget: Any = None  # what is shown: the drawer, or the table/graph faces around it
        self.text: TextLine | None = None
        self.faces: Any = None  # the table and graph faces, when the view knows the run's tree
        if tree is not None:
            from apflow_nb.notebook.graph import Faces

            self.faces = Faces(tree, view)
        if mode == "widget":
            from apflow_nb.notebook.views.widget import WidgetDrawer

            try:
                self.drawer = WidgetDrawer(state, on_cancel=on_cancel, max_rows=max_rows, on_page=self.draw)
            except ImportError as exc:
                raise ImportError("display='widget' needs ipywidgets in the kernel's environment: "
                                  "pip install ipywidgets (or use display='html')") from exc
            self.widget = self.faces.wrap(self.drawer) if self.faces is not None else self.drawer
            self.widget.draw(state)
        elif mode == "text":
            self.text = TextLine(stream)

    # -- showing ----------------------------------------------------------------------------
    def show(self) -> None:
        """Put the view on screen: a display with an id (updated in place), or the text line.

        Asked for a widget or HTML outside IPython (a script), it shows the text line instead.
        """
        if self.mode in ("widget", "html"):
            if _ipython_shell() is not None:
                from IPython.display import display

                self._handle = display(self, display_id=True)
                return
            self.text = TextLine(self._stream)
        if self.text is not None:
            self.text.draw(self.state)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = {"text/plain": render_text(self.state, self.max_rows),
                                "text/html": render_html(self.state, self.max_rows)}
        if self.faces is not None:
            data = self.faces.bundle(self.state, data)
        if self.drawer is not None:
            data[WIDGET_MIME] = {"version_major": 2, "version_minor": 0, "model_id": self.widget.root.model_id}
        return data

    def __repr__(self) -> str:
        return render_text(self.state, self.max_rows)

    # -- threads ------------------------------------------------------------------------------
    def _elsewhere(self, fn: Callable[..., Any], *args: Any) -> bool:
        """On a thread other than the loop's, while the loop runs: hand ``fn`` to the loop (True)."""
        if threading.get_ident() == self._thread:
            return False
        loop = self._loop
        if loop is None or not loop.is_running():
            return False
        loop.call_soon_threadsafe(fn, *args)
        return True

    def _timer_loop(self) -> asyncio.AbstractEventLoop | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        if loop is not self._loop:  # first event, or a script's asyncio.run() started after the view
            self._loop, self._thread = loop, threading.get_ident()
        return loop

    # -- feeding ----------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Apply an event; redraw now if the run just finished, else within ``min_interval``."""
        if threading.get_ident() != self._thread and self._elsewhere(self.on_event, event):
            return
        if not self.state.apply(event):
            return
        if self.state.finished:
            self.draw(final=True)
        elif not self._soon:
            self._schedule()

    def _schedule(self, delay: float | None = None) -> None:
        """Make sure a redraw happens within ``delay`` (default: as soon as the rate limit allows)."""
        loop = self._timer_loop()
        if loop is None:  # no loop to time redraws with: draw now, at most every min_interval
            if time.monotonic() - self._last >= self.min_interval:
                self.draw()
            return
        urgent = delay is None
        if urgent:
            delay = max(0.0, self._last + self.min_interval - time.monotonic())
        due = loop.time() + delay  # type: ignore[operator]
        if self._timer is not None:
            if self._timer.when() <= due:
                self._soon = self._soon or urgent  # an earlier redraw is already planned
                return
            self._timer.cancel()  # e.g. the quiet-time keep-alive tick: bring it forward
        self._timer = loop.call_at(due, self._tick)
        self._soon = urgent

    def _tick(self) -> None:
        self._timer = None
        self._soon = False
        self.draw()
        if not self.state.finished and self.state.status == "in_progress":
            self._schedule(KEEPALIVE)

    def draw(self, final: bool = False) -> None:
        """Redraw now (on the loop's thread; from another thread it is handed to the loop)."""
        if self._elsewhere(self.draw, final):
            return
        if final:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._soon = False
            if self._final_version == self.state.version:
                return  # this final frame is already on screen
            self._final_version = self.state.version
        self._last = time.monotonic()
        self.redraws += 1
        if self.widget is not None:
            self.widget.draw(self.state)
            if final and self._handle is not None:
                self._handle.update(self)  # the static HTML a saved notebook shows becomes the final frame
        elif self._handle is not None:
            self._handle.update(self)
        if self.text is not None:
            self.text.draw(self.state, final=final)

    def sync(self) -> None:
        """Draw the final frame again and re-send every widget's state, from the calling cell.

        ``await run`` calls it in the cell that waits for the run, so nbclient and saved notebooks
        record the final state (nbclient keeps widget state only from the running cell's
        messages). Call it yourself in a later cell for a run you never awaited.
        """
        if self._elsewhere(self.sync):
            return
        if self.widget is not None:
            self.widget.draw(self.state)
            self.widget.sync()
        if self._handle is not None:
            self._handle.update(self)
