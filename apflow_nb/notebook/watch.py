"""``apflow_nb.watch(root_id)``: the live view of a run that another process (a kernel, a terminal,
a teammate on the shared store) executes, fed by the store's event log.

The view is the one a local run gets (``LiveView`` over a ``RunState``), fed by a ``StoreFeed``
instead of the in-process bus; it ends on the final frame when the run ends. Its Cancel buttons
cancel through ``apflow_nb.cancel``, which reaches the process that runs the tree.
Inside a running loop (Jupyter) the watch runs as a task on that loop at once (``await w`` waits for
the end); outside one, ``w.result()`` follows the run to its end.
"""
from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from apflow_nb.core.errors import NestedLoopError, NoRunningTreeError
from apflow_nb.core.events import Event
from apflow_nb.core.storage import runs
from apflow_nb.core.storage.reading import reader_engine, root_of
from apflow_nb.notebook.display import resolve_mode
from apflow_nb.notebook.feed import PollSchedule, StoreFeed
from apflow_nb.notebook.loop import nested_allowed
from apflow_nb.notebook.views.live import LiveView


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Watch:
    """A handle on a watched run: ``await w`` / ``w.result()``, ``w.state``, ``w.view``, ``w.events``,
    ``w.cancel(task_id=None)``, ``w.stop()``, ``w.done()``, ``w.status``, ``w.root_id``."""

    def __init__(self, feed: StoreFeed, *, store: str | None = None, display: Any = True, max_rows: int = 100,
                 keep_events: int = 10_000, view: LiveView | None = None, stream: Any = None, drawer: Any = None):
        self.feed = feed
        self.root_id = feed.root_id
        self.store = store
        self.state = feed.snapshot()
        #: (event, ``time.time()`` when this view applied it): how far behind the owner the view is
        self.received: collections.deque[tuple[Event, float]] = collections.deque(maxlen=keep_events)
        self.schedule = PollSchedule()
        self.view = view
        mode = resolve_mode(display)
        if self.view is None and mode != "none":
            self.view = LiveView(self.state, mode=mode, on_cancel=self.cancel, max_rows=max_rows, stream=stream)
            if drawer is not None:
                use_drawer(self.view, drawer)
        self._task: asyncio.Task[str] | None = None
        if self.view is not None:
            self.view.show()
        if self.state.finished:
            self._final()
        elif _running_loop() is not None:
            self._start()

    # -- following ------------------------------------------------------------------------------
    def _start(self) -> "asyncio.Task[str]":
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow(), name=f"apflow watch {self.root_id[:8]}")
        return self._task

    async def _follow(self) -> str:
        try:
            while not self.feed.finished:
                events = await asyncio.to_thread(self.feed.poll)
                for event in events:
                    self._apply(event)
                if not self.feed.finished:
                    await asyncio.sleep(self.schedule.next(bool(events)))
        finally:
            self._final()
        return self.state.status

    def _apply(self, event: Event) -> None:
        self.received.append((event, time.time()))
        if self.view is not None:
            self.view.on_event(event)
        else:
            self.state.apply(event)

    def _final(self) -> None:
        if self.feed.gone and not self.state.error:
            self.state.fail(self.feed.gone)
        if not self.state.finished:  # stopped before the run ended: the frame as it stands
            self.state.finished = True
            self.state.version += 1
        if self.view is not None:
            self.view.draw(final=True)

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._wait().__await__()

    async def _wait(self) -> str:
        if self._task is None and self.state.finished:
            return self.state.status
        try:
            return await asyncio.shield(self._start())
        finally:
            if self.view is not None:
                self.view.sync()  # from the awaiting cell, so a saved notebook keeps the final frame

    def result(self, timeout: float | None = None) -> str:
        """Follow the run to its end and return its status (outside a loop; in Jupyter ``await w``)."""
        if self._task is None and self.state.finished:
            return self.state.status
        if self._task is not None and self._task.done():
            return self._task.result()
        loop = _running_loop()
        if loop is None:
            return asyncio.run(asyncio.wait_for(self._wait(), timeout))
        if not nested_allowed():
            raise NestedLoopError("w.result() would block the event loop the watch needs; use `await w` (or "
                                  "apflow_nb.allow_nested_loop() first)")
        return loop.run_until_complete(asyncio.wait_for(self._wait(), timeout))

    def stop(self) -> None:
        """Stop following (the run goes on); the view keeps the frame it has."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # -- controlling and reading ----------------------------------------------------------------
    def cancel(self, task_id: str | None = None) -> Any:
        """Cancel the watched run (or one of its tasks) wherever it runs (``apflow_nb.cancel``).
        Inside a loop the store is written from a worker thread: returns that future."""
        from apflow_nb.notebook.control import cancel

        target = task_id or self.root_id
        loop = _running_loop()
        if loop is None:
            return cancel(target, self.store)
        return loop.run_in_executor(None, cancel, target, self.store)

    def done(self) -> bool:
        """True once the watched run ended (or the watch was stopped)."""
        return self.state.finished and (self._task is None or self._task.done())

    @property
    def status(self) -> str:
        """The run's status as the view knows it."""
        return self.state.status

    @property
    def events(self) -> list[Event]:
        """The events this view applied, oldest first (the last ``keep_events``)."""
        return [e for e, _ in self.received]

    def __repr__(self) -> str:
        return f"<Watch {self.root_id[:8]} {self.state.summary()}>"


def use_drawer(view: LiveView, drawer: Any) -> None:
    """Draw ``view``'s state with ``drawer`` (anything with ``draw(state, final=False)``) instead of its
    text line: how ``apflow-nb watch`` shows the whole table in a terminal."""
    drawers = getattr(view, "drawers", None)
    if isinstance(drawers, list):  # LiveView with a list of drawers (the Drawer protocol)
        if view.text in drawers:
            drawers.remove(view.text)
        drawers.append(drawer)
    view.text = drawer


def watch(root_id: str | None = None, store: str | None = None, *, display: Any = True, max_rows: int = 100,
          stream: Any = None, drawer: Any = None) -> Watch:
    """Show a run that another process executes, live, from the store's event log; returns a Watch.

    ``root_id``: the run's root id (any task id of the run works too); None watches the newest
    running tree. ``store``: a URL (default: the default store). A run that is already over
    shows its final frame at once. ``display`` as for ``apflow_nb.run``; ``stream``: where a text
    view writes (default: stdout); ``drawer``: draws a text view's state instead of its progress line.
    """
    engine = reader_engine(store)
    if root_id is None:
        root_id = runs.newest_running(engine)
        if root_id is None:
            raise NoRunningTreeError("no tree is running in this store now; give the root id of the run to show "
                                     "(apflow_nb.history() lists the stored ones)")
    else:
        root_id = root_of(engine, root_id)
    return Watch(StoreFeed(engine, root_id), store=store, display=display, max_rows=max_rows, stream=stream,
                 drawer=drawer)
