"""The graph's colours, icons and escaping, in one place: the views' palette module when it is
there (one palette for table and graph), else the table's colours from progress.py. Colours are JupyterLab CSS variables with the table's colours as fallbacks, so the
graph follows the light and dark themes and still reads where no variable is defined (nbconvert,
GitHub, an ``<img>`` of the SVG).
"""
from __future__ import annotations

import html
import re

STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
UNKNOWN = "unknown"

try:  # the views' one palette, where it exists: the table and the graph then share every colour and icon
    from apflow_nb.analysis.palette import STYLES as _STYLES
except ImportError:  # pragma: no cover - older layout: the table's colours and icons in progress.py
    from apflow_nb.notebook.progress import COLORS as _COLORS, ICONS as _ICONS

    _VARS = {"pending": "--jp-ui-font-color3", "in_progress": "--jp-brand-color1", "completed": "--jp-success-color1",
             "failed": "--jp-error-color1", "cancelled": "--jp-ui-font-color2"}
    STATUS_VAR = dict(_VARS, unknown="--jp-ui-font-color3")
    FALLBACK = dict(_COLORS, unknown="#9e9e9e")
    ICON = dict(_ICONS, unknown="?")
else:
    STATUS_VAR = {s: _STYLES[s].var for s in (*STATUSES, UNKNOWN)}
    FALLBACK = {s: _STYLES[s].fallback for s in (*STATUSES, UNKNOWN)}
    ICON = {s: _STYLES[s].icon for s in (*STATUSES, UNKNOWN)}

# surfaces, text and lines: (CSS variable, fallback)
BOX = ("--jp-layout-color1", "#ffffff")
TEXT = ("--jp-ui-font-color1", "#212121")
MUTED = ("--jp-ui-font-color2", "#616161")
BORDER = ("--jp-border-color1", "#bdbdbd")
EDGE = ("--jp-ui-font-color3", "#8a8a8a")
TRACK = ("--jp-layout-color3", "#e0e0e0")
PANEL = ("--jp-layout-color2", "#f5f5f5")
FONT = "var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace)"


def status_of(value: object) -> str:
    """A status the graph knows, else "unknown" (never a raw, unescaped value)."""
    text = str(value) if value is not None else ""
    return text if text in STATUS_VAR else UNKNOWN


def color(status: str) -> str:
    """``var(--jp-success-color1, #2e7d32)`` for a status."""
    s = status_of(status)
    return f"var({STATUS_VAR[s]}, {FALLBACK[s]})"


def css(pair: tuple[str, str]) -> str:
    return f"var({pair[0]}, {pair[1]})"


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def esc(value: object) -> str:
    """Text or attribute value safe in HTML and in XML (SVG): escaped, control characters dropped."""
    return html.escape(_INVALID_XML.sub("", str(value)), quote=True)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
