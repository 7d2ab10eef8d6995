"""The dependency-graph view: a layered layout computed in Python (no graphviz), drawn as SVG.

``graph(x)`` draws any tree without running it; ``GraphFace`` is the laid-out graph that the run
view's graph face draws live from the event stream's RunState.
"""
from __future__ import annotations

from apflow_nb.notebook.graph._api import Graph, graph
from apflow_nb.notebook.graph._face import GraphFace
from apflow_nb.notebook.graph._faces import Faces
from apflow_nb.notebook.graph._layout import Geometry, Layout, layered_layout

__all__ = ["Faces", "Geometry", "Graph", "GraphFace", "Layout", "graph", "layered_layout"]
