"""One palette for every drawing of a run (views and the timeline): each shown status's icon, words and colour.

Colours are JupyterLab theme variables (``--jp-*``) with a fallback, so the same HTML follows the
light, dark and high-contrast themes in JupyterLab and Notebook 7, and still has colour where the
variables are not defined (nbconvert, GitHub, VS Code). Fallbacks are mid-tones that stay visible
on light and dark backgrounds. Body text never gets a fixed colour: it inherits the host's, and
muted text is drawn with opacity, so nothing vanishes on a dark background.

The statuses shown are the core's five (``apflow_nb.core.types``) plus four a view derives:
``cancelling`` (a cancel was asked and the task has not stopped yet), ``skipped`` (the task never
ran because a required dependency failed or was cancelled), ``cached`` (completed with a cached
result, without running) and ``unknown`` (anything else a store holds: never echoed into markup).
"""
from __future__ import annotations

from dataclasses import dataclass

from apflow_nb.core.types import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, PENDING, STATUSES

CANCELLING = "cancelling"
SKIPPED = "skipped"
CACHED = "cached"
UNKNOWN = "unknown"

#: every status a view may show, in the order counts are listed
SHOWN = (COMPLETED, CACHED, FAILED, SKIPPED, CANCELLED, IN_PROGRESS, PENDING, UNKNOWN)


@dataclass(frozen=True)
class Style:
    """How one status looks: an icon, its words, a theme variable and the colour used without it."""

    icon: str
    words: str
    var: str
    fallback: str

    @property
    def css(self) -> str:
        """``var(--jp-success-color1, #43a047)``: for inline styles."""
        return f"var({self.var}, {self.fallback})"


STYLES: dict[str, Style] = {
    PENDING: Style("○", "pending", "--jp-ui-font-color2", "#9e9e9e"),
    IN_PROGRESS: Style("◔", "running", "--jp-brand-color1", "#1e88e5"),
    CANCELLING: Style("◌", "cancelling…", "--jp-warn-color0", "#fb8c00"),
    COMPLETED: Style("✔", "completed", "--jp-success-color1", "#43a047"),
    CACHED: Style("↺", "cached", "--jp-success-color2", "#66bb6a"),
    FAILED: Style("✘", "failed", "--jp-error-color1", "#e53935"),
    SKIPPED: Style("⤼", "skipped", "--jp-ui-font-color2", "#9e9e9e"),
    CANCELLED: Style("⊘", "cancelled", "--jp-warn-color0", "#fb8c00"),
    UNKNOWN: Style("?", "unknown", "--jp-ui-font-color2", "#9e9e9e"),
}

#: the empty part of a bar; semi-transparent grey reads on light and dark backgrounds
TRACK = "var(--jp-layout-color3,#8886)"


MUTED = "opacity:0.72"


def known(status: object) -> str:
    """``status`` when the views know it, else ``"unknown"`` (a stored value is never trusted)."""
    return status if isinstance(status, str) and (status in STATUSES or status in STYLES) else UNKNOWN


def style(status: str) -> Style:
    """The Style of a shown status (unknown ones get the ``unknown`` style)."""
    return STYLES.get(status) or STYLES[UNKNOWN]


def css_color(status: str) -> str:
    """The inline CSS colour of a status: a theme variable with its fallback."""
    return style(status).css


def hex_color(status: str) -> str:
    """A plain colour for drawings outside the browser (matplotlib)."""
    return style(status).fallback


def icon(status: str) -> str:
    return style(status).icon


def words(status: str) -> str:
    """``running``, ``skipped``, ``cancelling…``: how a status reads in a view."""
    return style(status).words
