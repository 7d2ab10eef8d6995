"""GraphDrawer: the run view's live graph face, standard ipywidgets only (no front-end code).

A drawer in the views' protocol (``draw(state, final=False)``, called at most ~10 times a second
by the LiveView's one listen loop). Widgets:
  - ``picker``: hidden radio buttons and the CSS that shows a clicked box's panel; it never
    redraws during a run, so a panel opened by a click stays open;
  - ``graph``: the SVG with a clickable label over each box; a redraw only recolours boxes and
    moves bars (the layout is made once, and again only when the user expands a cluster);
  - ``panels``: every box's details, redrawn at most once a second (and for the final frame);
  - ``expand``: a menu of the clusters a big graph was folded into; choosing one lays the graph
    out again with that cluster's tasks as boxes.
Works the same in JupyterLab, Notebook 7 and VS Code: an HTML widget's value is plain markup and
clicks are handled by the browser (label -> radio -> CSS), never by a kernel round trip.
"""
from __future__ import annotations

import time
from typing import Any

from apflow_nb.notebook.graph._face import GraphFace
from apflow_nb.notebook.graph._model import GraphSpec

PANELS_EVERY = 1.0
BUDGET = 0.02  # share of one core a live graph may take: a costly redraw delays the next one
MAX_STALE = 0.2  # ... but never longer than this (seconds): a task that runs for 0.3 s is seen running
_PROMPT = "expand a cluster…"


class GraphDrawer:
    """Draws a RunState as a live graph (see the module's docstring)."""

    def __init__(self, spec: GraphSpec, *, max_nodes: int = 300,
                 panels_every: float = PANELS_EVERY, budget: float = BUDGET):
        import ipywidgets as widgets

        self.spec, self.max_nodes = spec, max_nodes
        self.panels_every, self.budget = panels_every, budget
        self.redraws = 0
        self._state: Any = None
        self._panels_at = float("-inf")
        self._next = float("-inf")
        self.skipped = 0
        self.redraw_at: float | None = None  # a skipped frame is drawn by then (the views' protocol)
        self.picker = widgets.HTML()
        self.summary = widgets.HTML()
        self.graph = widgets.HTML()
        self.panels = widgets.HTML()
        self.expand = widgets.Dropdown(options=[(_PROMPT, "")], value="", layout=widgets.Layout(width="auto"))
        self.expand.observe(self._expanded, names="value")
        self.root = widgets.VBox([self.picker, self.summary, self.expand, self.graph, self.panels])
        self.root.add_class("apflow-graph")
        self.face: GraphFace
        self._lay_out(())

    def _lay_out(self, expanded: Any) -> None:
        self.face = GraphFace(self.spec, max_nodes=self.max_nodes, expanded=expanded)
        scope = f"{self.face.uid}-live"
        for cls in list(self.root._dom_classes):
            if cls.endswith("-live"):
                self.root.remove_class(cls)
        self.root.add_class(scope)
        self.picker.value = self.face.picker_html(scope)
        self.summary.value = self.face.summary_html()
        groups = [(f"{it.label} {it.sub}", it.key) for it in self.face.plan.items if it.cluster]
        with self.expand.hold_trait_notifications():
            self.expand.options = [(_PROMPT, "")] + groups
            self.expand.value = ""
        self.expand.layout.display = "" if groups else "none"
        self._panels_at = float("-inf")

    def _expanded(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if not key:
            return
        self._lay_out(self.face.expanded | {key})
        if self._state is not None:
            self.draw(self._state, final=self._state.finished)

    def draw(self, state: Any, final: bool = False) -> None:
        """Recolour the boxes and move the bars; panels at most once every ``panels_every`` seconds.

        Besides the LiveView's ~10 a second, a redraw waits until the previous one's CPU time is at
        most ``budget`` of the time since (a 300-box graph with every task moving costs a few ms),
        and at most ``MAX_STALE`` seconds; the final frame is always drawn.
        """
        self._state = state
        now = time.monotonic()
        if not final and now < self._next:
            self.skipped += 1
            self.redraw_at = self._next
            return
        self.redraw_at = None
        cpu0 = time.thread_time()
        self.redraws += 1
        value = self.face.graph_html(state)
        if self.graph.value != value:
            self.graph.value = value
        if final or now - self._panels_at >= self.panels_every:
            self._panels_at = now
            panels = self.face.panels_html(state)
            if self.panels.value != panels:
                self.panels.value = panels
        self._next = now + min(MAX_STALE, (time.thread_time() - cpu0) / self.budget)

    def static_html(self, state: Any) -> str:
        """The static frame of this graph (what a finished run's output keeps)."""
        return self.face.html(state)

    def all_widgets(self) -> list[Any]:
        return [self.root, *self.root.children]

    def sync(self) -> None:
        """Send every widget's full state again (a notebook saved now stores the current values)."""
        for w in self.all_widgets():
            w.send_state()
