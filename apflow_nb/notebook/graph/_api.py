"""``apflow_nb.graph(x)``: draw a task tree's dependency graph without running it.

``x`` is a task array (a plan, checked but never stored), a TaskTreeNode, a Run, or a root task id
in a store (a past run, coloured by its final statuses). The result shows itself in a notebook as
HTML (clickable boxes, details panels), and gives ``image/svg+xml`` and ``text/plain`` too.
"""
from __future__ import annotations

from typing import Any, Iterable

from apflow_nb.notebook.graph._face import GraphFace
from apflow_nb.notebook.graph._group import MAX_NODES
from apflow_nb.notebook.graph._model import GraphSpec, spec_from_array, spec_from_tree
from apflow_nb.notebook.progress import RunState, TaskRow


class Graph:
    """A drawing of one tree's dependency graph and the statuses it had when drawn.

    ``svg()`` / ``html()`` / ``text()`` give the drawing; ``groups`` lists the clusters a big graph
    was folded into, and ``expand(key)`` draws it again with that cluster's tasks as boxes.
    """

    def __init__(self, spec: GraphSpec, state: RunState, *, max_nodes: int = MAX_NODES,
                 expanded: Iterable[str] = ()):
        self.spec, self.state, self.max_nodes = spec, state, max_nodes
        self.face = GraphFace(spec, max_nodes=max_nodes, expanded=expanded)

    @property
    def layout(self) -> Any:
        """Where each box sits (``layout.x``, ``layout.y``, ``layout.layer``; boxes are ``plan.items``)."""
        return self.face.layout

    @property
    def groups(self) -> list[tuple[str, str, int]]:
        """(key, label, tasks) of every cluster box; pass a key to :meth:`expand`."""
        return [(it.key, f"{it.label} {it.sub}", len(it.members)) for it in self.face.plan.items if it.cluster]

    def expand(self, *keys: str) -> "Graph":
        """The same graph with these clusters drawn as one box per task."""
        return Graph(self.spec, self.state, max_nodes=self.max_nodes, expanded=self.face.expanded | set(keys))

    def svg(self) -> str:
        """A standalone SVG document."""
        return self.face.svg(self.state, standalone=True)

    def html(self) -> str:
        """The HTML frame: the graph, clickable boxes and their details panels (no scripts)."""
        return self.face.html(self.state)

    def text(self) -> str:
        """Boxes layer by layer, with status, progress and what each depends on."""
        return self.face.text(self.state)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html(), "image/svg+xml": self.svg()}

    def __repr__(self) -> str:
        return self.text()


def _plan_state(spec: GraphSpec) -> RunState:
    """Every task pending: the state of a plan that never ran."""
    state = RunState(root_id=spec.root_id)
    for t in spec.tasks:
        state._add(TaskRow(id=t.id, name=t.name, key=t.key, parent_id=t.parent_id, depth=t.depth,
                           executor=t.executor))
    return state


def graph(x: Any, store: Any = None, *, max_nodes: int = MAX_NODES, expanded: Iterable[str] = ()) -> Graph:
    """Draw ``x``'s dependency graph: a task array, a TaskTreeNode, a Run, or a root task id (or a
    root's key, the latest run of it) in ``store`` (a URL, Session or TaskManager; default store
    when None). Past ``max_nodes`` tasks, siblings are grouped into cluster boxes."""
    from apflow_nb.core.types import TaskTreeNode

    if hasattr(x, "tree") and hasattr(x, "state") and isinstance(getattr(x, "tree"), TaskTreeNode):  # a Run
        return Graph(spec_from_tree(x.tree), x.state, max_nodes=max_nodes, expanded=expanded)
    if isinstance(x, TaskTreeNode):
        spec, state = spec_from_tree(x), RunState.from_tree(x)
    elif isinstance(x, (list, tuple)):
        spec = spec_from_array(x)
        state = _plan_state(spec)
    elif isinstance(x, str) or (hasattr(x, "id") and hasattr(x, "name")):
        from apflow_nb.notebook.graph._store import load_tree

        node = load_tree(x if isinstance(x, str) else x.id, store)
        spec, state = spec_from_tree(node), RunState.from_tree(node)
    else:
        raise TypeError(f"graph() takes a task array, a TaskTreeNode, a Run or a root task id, "
                        f"not {type(x).__name__}")
    return Graph(spec, state, max_nodes=max_nodes, expanded=expanded)
