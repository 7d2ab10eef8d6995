"""Where are we drawing? A kernel with widgets, a kernel without, a terminal IPython, a script."""
from __future__ import annotations

import os
import sys
from typing import Any

MODES = ("widget", "html", "text", "none")
ENV = "APFLOW_NB_DISPLAY"


def _ipython() -> Any:
    if "IPython" not in sys.modules:  # not imported: surely not running inside IPython (and no need to import it)
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def in_kernel() -> bool:
    """True inside a Jupyter kernel (as opposed to a terminal IPython or a plain script)."""
    ip = _ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except Exception:  # missing, or broken in this environment: draw HTML instead
        return False
    return True


def resolve_mode(display: Any = True) -> str:
    """``True``/"auto" -> the best drawer here; False/None -> "none"; or one of the MODES.

    ``APFLOW_NB_DISPLAY`` (widget, html, text, none) overrides the automatic choice.
    """
    if display is False or display is None:
        return "none"
    if isinstance(display, str) and display != "auto":
        if display not in MODES:
            raise ValueError(f"display must be True, False, 'auto' or one of {', '.join(MODES)}; got {display!r}")
        return display
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in MODES:
        return forced
    if in_kernel():
        return "widget" if widgets_available() else "html"
    return "text"
