"""Drawers of a run's state: text, HTML, widget. ``LiveView`` picks one and keeps it current."""
from apflow_nb.notebook.views.html import render_html
from apflow_nb.notebook.views.live import LiveView
from apflow_nb.notebook.views.text import TextLine, render_text

__all__ = ["LiveView", "TextLine", "render_html", "render_text"]
