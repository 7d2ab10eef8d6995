"""The run view's two faces, the table and the graph, and the toggle between them.

``Faces`` belongs to a LiveView. In widget mode it wraps the table's widget drawer in a
``FacedDrawer``: a table/graph toggle on top, the table's head and controls (status, bar, Cancel
run) always shown, below them either the table's body or the live graph. The graph is laid out
the first time it is shown (once per run; ``view="graph"`` shows it from the start). Only the
visible face draws; switching draws the other one at once from the latest state.

The static frame a finished run leaves (and the HTML display without widgets) shows the face that
was on screen: for the graph, the inline SVG with its clickable boxes, the table folded below it
in a ``<details>``, plus ``image/svg+xml``.
"""
from __future__ import annotations

import html
import inspect
from typing import Any

from apflow_nb.notebook.graph._face import GraphFace
from apflow_nb.notebook.graph._group import MAX_NODES
from apflow_nb.notebook.graph._model import spec_from_tree

VIEWS = ("table", "graph")


def check_view(view: str) -> str:
    """``view`` when it is "table" or "graph", else a ValueError naming both."""
    if view not in VIEWS:
        raise ValueError(f"view must be 'table' or 'graph', got {view!r}")
    return view


class Faces:
    """Which face a run's view shows, and the graph of its tree (laid out on first use)."""

    def __init__(self, tree: Any, view: str = "table", max_nodes: int = MAX_NODES):
        self.view = check_view(view)
        self.tree = tree
        self.max_nodes = max_nodes
        self._face: GraphFace | None = None
        self.widget: FacedDrawer | None = None

    @property
    def face(self) -> GraphFace:
        """The laid-out graph of the run's tree (made once)."""
        if self._face is None:
            self._face = GraphFace(spec_from_tree(self.tree), max_nodes=self.max_nodes)
        return self._face

    def wrap(self, table: Any) -> "FacedDrawer":
        """The widget drawer with a table/graph toggle around ``table`` (the table's WidgetDrawer)."""
        self.widget = FacedDrawer(self, table)
        return self.widget

    @property
    def shown(self) -> str:
        """The face on screen now (the toggle's value in widget mode)."""
        return self.widget.toggle.value if self.widget is not None else self.view

    def bundle(self, state: Any, table: dict[str, Any]) -> dict[str, Any]:
        """The static bundle of the face on screen, from the table's bundle."""
        if self.shown != "graph":
            return table
        face = self.widget.graph.face if self.widget is not None and self.widget.graph is not None else self.face
        folded = (f'<details style="margin-top:4px"><summary>table</summary>{table.get("text/html", "")}'
                  f"</details>")
        head = (f'<div data-run-status="{html.escape(str(state.status))}" style="margin:2px 0">'
                f"<b>apflow run</b> {html.escape(state.summary())}</div>")
        return {"text/plain": table.get("text/plain", "") + "\n" + face.text(state),
                "text/html": f'<div class="apflow-run apflow-run-graph">{head}{face.html(state)}{folded}</div>',
                "image/svg+xml": face.svg(state, standalone=True)}


class FacedDrawer:
    """A table/graph toggle over the table's widget drawer and a live GraphDrawer (a Drawer)."""

    def __init__(self, faces: Faces, table: Any):
        import ipywidgets as widgets

        self.faces, self.table_drawer = faces, table
        self._table_final = "final" in inspect.signature(table.draw).parameters
        self.graph: Any = None
        self._state: Any = None
        self.toggle = widgets.ToggleButtons(options=[("table", "table"), ("graph", "graph")], value=faces.view,
                                            tooltips=["one row per task", "the dependency graph"],
                                            style={"button_width": "72px"})
        children = list(table.root.children)
        self.table_body = children[2:]  # the head and its controls row stay on both faces
        self.root = widgets.VBox([self.toggle, table.root])
        self.root.add_class("apflow-faces")
        self.toggle.observe(self._switched, names="value")
        if faces.view == "graph":
            self._show("graph")

    def _graph(self) -> Any:
        if self.graph is None:
            from apflow_nb.notebook.graph._drawer import GraphDrawer

            self.graph = GraphDrawer(spec_from_tree(self.faces.tree), max_nodes=self.faces.max_nodes)
            self.root.children = (*self.root.children, self.graph.root)
        return self.graph

    def _show(self, view: str) -> None:
        graph = view == "graph"
        for w in self.table_body:
            w.layout.display = "none" if graph else None
        if graph:
            self._graph().root.layout.display = None
        elif self.graph is not None:
            self.graph.root.layout.display = "none"

    def _switched(self, change: dict[str, Any]) -> None:
        self._show(change["new"])
        if self._state is not None:
            self.draw(self._state, final=bool(getattr(self._state, "finished", False)))

    def draw(self, state: Any, final: bool = False) -> None:
        """Draw the table's head, and the visible face's body (``final``: also when the state is)."""
        self._state = state
        if self._table_final:
            self.table_drawer.draw(state, final=final)
        else:
            self.table_drawer.draw(state)
        if self.toggle.value == "graph":
            self._graph().draw(state, final=final or bool(getattr(state, "finished", False)))

    @property
    def redraw_at(self) -> float | None:
        """When the shown graph wants its skipped frame drawn (see ``views.drawer.due``)."""
        if self.toggle.value != "graph" or self.graph is None:
            return None
        return self.graph.redraw_at

    def all_widgets(self) -> list[Any]:
        out = [self.root, self.toggle, *self.table_drawer.all_widgets()]
        return out + (self.graph.all_widgets() if self.graph is not None else [])

    def sync(self) -> None:
        """Send every widget's state again (a notebook saved now keeps the current values)."""
        self.table_drawer.sync()
        for w in [self.root, self.toggle] + (self.graph.all_widgets() if self.graph is not None else []):
            w.send_state()
