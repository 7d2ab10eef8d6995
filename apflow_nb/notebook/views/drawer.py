"""The drawer protocol: how anything that shows a run (text, HTML, widgets, a graph) is fed.

One listen loop, many drawers, as in dask's ``diagnostics/progressbar.py``: a ``LiveView`` applies
the run's events to one pure ``RunState`` and, at most ``1 / min_interval`` times a second, calls
``draw(state)`` on each of its drawers; when the run ends it calls ``draw(state, final=True)`` once
(and never again for that final state). A drawer only draws: it never changes the state, never
subscribes to events and never decides when to redraw.

Contract for ``draw``:
- it is called on the event loop's thread (``LiveView`` hands calls from other threads to the
  loop), so a drawer may touch widgets and IPython displays directly;
- it must be cheap: compute what to show with ``views.frame.build_frame(state, ...)`` (or read
  ``RunState``'s O(1) counters), and send only what changed;
- ``final=True`` means the state will not change again: draw the complete last picture.

A drawer that keeps its own, slower pace (a costly graph) may skip a call; it then sets
``redraw_at`` (a ``time.monotonic()`` time, else ``None``) and the view calls it again by then, so
the last state is always drawn even when no further event comes (see ``due``).

Add your own with ``LiveView.add(drawer)`` (for example ``run.view.add(MyGraph())``). A drawer that
shows a widget displays that widget itself; keep in mind that a finished run's output should not
depend on a live widget (see ``LiveView``: its own output becomes static HTML when the run ends).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from apflow_nb.notebook.progress import RunState


@runtime_checkable
class Drawer(Protocol):
    """Something that shows a RunState: ``draw(state, final=False)``."""

    def draw(self, state: "RunState", final: bool = False) -> None:
        """Show ``state`` now; ``final``: the run is over and this is its last picture."""
        ...


def due(drawers: "list[object]") -> float | None:
    """The earliest ``redraw_at`` any of ``drawers`` asked for (``None``: nobody skipped a frame)."""
    times = [t for d in drawers if (t := getattr(d, "redraw_at", None)) is not None]
    return min(times) if times else None
