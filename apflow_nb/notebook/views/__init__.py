"""Drawers of a run's state: text, HTML, widget. ``LiveView`` picks one and keeps it current.

``make_view(state, display)`` chooses the best drawer available here (``display.resolve_mode``):
a widget in a kernel with ipywidgets, an updatable HTML display in a kernel without, a text line
in a terminal or script. Every view also gives ``text/plain`` and ``text/html``. Every drawer
renders the same ``Frame`` (``views.frame.build_frame``) and follows the ``Drawer`` protocol
(``views.drawer``).
"""
from __future__ import annotations

from typing import Any

from apflow_nb.notebook.display import resolve_mode
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.drawer import Drawer
from apflow_nb.notebook.views.frame import Frame, build_frame
from apflow_nb.notebook.views.html import render_html
from apflow_nb.notebook.views.live import LiveView
from apflow_nb.notebook.views.text import TextLine, render_text


def make_view(state: RunState, display: Any = True, **options: Any) -> LiveView | None:
    """A LiveView of ``state`` in the best mode for ``display`` (None when display is off)."""
    mode = resolve_mode(display)
    return None if mode == "none" else LiveView(state, mode=mode, **options)


__all__ = ["Drawer", "Frame", "LiveView", "TextLine", "build_frame", "make_view", "render_html", "render_text",
           "resolve_mode"]
