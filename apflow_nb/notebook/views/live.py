"""LiveView: one run's state kept on screen, redrawn at most ``1 / min_interval`` times a second
(4 times a second for a run with more tasks than the view shows: its browser has more to draw).

The Run feeds it events (one listen loop, several drawers, as in dask's progressbar; see
``views.drawer``). Applying an event to the state is cheap and happens for every event; drawing
happens on a timer, so a burst of 100,000 events costs a handful of redraws. The final frame is
always drawn.

A run's output has two lives. While the run is live the output is a widget (or an HTML display
updated in place); once it ends, the output (found by its ``display_id``) is replaced by the final
frame as static HTML and text, with no widget reference left, so a saved notebook, nbconvert,
GitHub or a notebook reopened without a kernel all show the final frame. Frontends only record
messages of the cell that runs (nbclient) or that displayed the output (JupyterLab), so the static
frame is sent when the run ends, again from the cell that awaits the run (``sync``), and once more
at the end of the next cell that runs after it ended (the run may end while another cell runs).

Threads: widget and display updates happen only on the event loop's thread. ``on_event``,
``draw`` and ``sync`` called from another thread are handed to the loop with
``call_soon_threadsafe`` (ipykernel 7 drops or misroutes output sent from other threads).
"""
from __future__ import annotations

import asyncio
import sys
import threading
import time
import weakref
from typing import Any, Callable

from apflow_nb.core.events import Event
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.drawer import Drawer, due
from apflow_nb.notebook.views.frame import Slots, build_frame
from apflow_nb.notebook.views.html import frame_html
from apflow_nb.notebook.views.text import TextLine, frame_text

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
KEEPALIVE = 1.0  # while tasks run quietly, redraw this often so elapsed times keep moving
BIG_RUN_INTERVAL = 0.25  # a run with more tasks than the view's rows redraws at most 4 times a second
_UNSETTLED: "weakref.WeakSet[LiveView]" = weakref.WeakSet()  # finished views to send once more from a cell
_HOOKED: "weakref.WeakSet[Any]" = weakref.WeakSet()  # shells with our post_run_cell hook


def _ipython_shell() -> Any:
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython.core.interactiveshell import InteractiveShell
    except ImportError:
        return None
    return InteractiveShell.instance() if InteractiveShell.initialized() else None


def _settle_finished(*_args: Any) -> None:
    """post_run_cell: send each run that ended since the last cell its static frame again, from
    this cell (frontends that record only the running cell's messages then keep it)."""
    for view in list(_UNSETTLED):
        _UNSETTLED.discard(view)
        view.send_static()


def _hook(shell: Any) -> None:
    if shell is not None and shell not in _HOOKED:
        shell.events.register("post_run_cell", _settle_finished)
        _HOOKED.add(shell)


class HtmlDisplay:
    """The live HTML drawer: one IPython display, updated in place (for kernels without widgets)."""

    def __init__(self, view: "LiveView"):
        self.view = view
        self.slots = Slots(cap=max(1, view.max_rows * 3 // 4))

    def draw(self, state: RunState, final: bool = False) -> None:
        if not final and self.view.handle is not None:
            frame = build_frame(state, self.view.max_rows, slots=self.slots, digits=0)
            self.view.handle.update(self.view.static_bundle(frame), raw=True)


class LiveView:
    """Draws a RunState as a widget, an updatable HTML display, or a text line (``mode``).

    Whatever the mode, ``_repr_mimebundle_`` gives ``text/plain`` and ``text/html`` of the
    current state (and the widget while the run is live), so the view shows wherever widgets
    cannot (nbconvert, GitHub, a terminal).
    """

    def __init__(self, state: RunState, *, mode: str = "html", on_cancel: Callable[[str | None], Any] | None = None,
                 max_rows: int = 100, min_interval: float = 0.1, stream: Any = None, tree: Any = None,
                 view: str = "table"):
        self.state = state
        self.mode = mode
        self.max_rows = max_rows
        self.min_interval = min_interval
        self.redraws = 0
        self.drawers: list[Drawer] = []
        self.handle: Any = None  # the IPython display (by display_id) this view is shown in
        self._stream = stream
        self._final_version = -1
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # a rate-limited redraw is already planned
        self._last = 0.0
        self._thread = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self.drawer: Any = None  # the table's WidgetDrawer in widget mode
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
            self.drawers.append(self.widget)
        elif mode == "text":
            self.text = TextLine(stream)
            self.drawers.append(self.text)

    def add(self, drawer: Drawer) -> None:
        """Feed one more drawer from this view's listen loop (see ``views.drawer``)."""
        self.drawers.append(drawer)
        drawer.draw(self.state, final=self.state.finished)

    # -- showing ----------------------------------------------------------------------------
    def show(self) -> None:
        """Put the view on screen: a display with an id (updated in place), or the text line.

        Asked for a widget or HTML outside IPython (a script), it shows the text line instead.
        """
        if self.mode in ("widget", "html"):
            shell = _ipython_shell()
            if shell is not None:
                from IPython.display import display

                import uuid

                self.handle = display(self._repr_mimebundle_(), raw=True, display_id=uuid.uuid4().hex)
                if self.mode == "html":
                    self.drawers.append(HtmlDisplay(self))
                _hook(shell)
                return
            self.text = TextLine(self._stream)
            self.drawers.append(self.text)
        if self.text is not None:
            self.text.draw(self.state)

    def static_bundle(self, frame: Any = None) -> dict[str, str]:
        """The current frame as ``text/plain`` and ``text/html`` (and the graph's SVG when the graph
        face is on screen): what a finished run's output holds."""
        frame = frame if frame is not None else build_frame(self.state, self.max_rows)
        data = {"text/plain": frame_text(frame), "text/html": frame_html(frame)}
        return self.faces.bundle(self.state, data) if self.faces is not None else data

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = self.static_bundle()
        if self.widget is not None and not self.state.finished:
            data[WIDGET_MIME] = {"version_major": 2, "version_minor": 0, "model_id": self.widget.root.model_id}
        return data

    def _ipython_display_(self) -> None:
        """Shown again in another cell (``run.view``): the same display id, so the run's end turns
        that output into the static final frame too (no widget reference left in any output)."""
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True,
                display_id=self.handle.display_id if self.handle is not None else None)

    def __repr__(self) -> str:
        return frame_text(build_frame(self.state, self.max_rows))

    def send_static(self) -> None:
        """Replace this view's output by the final frame as static HTML and text (from the calling cell)."""
        if self.handle is not None and self.state.finished:
            self.handle.update(self.static_bundle(), raw=True)

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

    def changed(self) -> None:
        """The state changed outside events (a cancel was asked): redraw soon."""
        if self._elsewhere(self.changed):
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
            interval = self.min_interval if self.state.total <= self.max_rows else max(self.min_interval,
                                                                                        BIG_RUN_INTERVAL)
            delay = max(0.0, self._last + interval - time.monotonic())
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
        """Redraw now (on the loop's thread; from another thread it is handed to the loop).

        The final frame is drawn once per final state; then the output becomes static.
        """
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
        for drawer in self.drawers:
            drawer.draw(self.state, final=final)
        if not final and (at := due(self.drawers)) is not None:  # a drawer skipped this frame
            self._schedule(max(0.0, at - time.monotonic()))
        if final and self.handle is not None:
            self.send_static()
            _UNSETTLED.add(self)

    def sync(self) -> None:
        """Send the final frame again, from the calling cell.

        ``await run`` calls it in the cell that waits for the run, so nbclient and saved notebooks
        record the final frame (nbclient keeps only the running cell's messages). Call it yourself
        in a later cell for a run you never awaited.
        """
        if self._elsewhere(self.sync):
            return
        if self.state.finished:
            self.draw(final=True)
            self.send_static()
            _UNSETTLED.discard(self)
