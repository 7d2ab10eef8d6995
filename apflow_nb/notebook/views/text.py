"""Plain-text drawing of a RunState: the ``text/plain`` repr and the terminal progress line."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from apflow_nb.notebook.progress import ICONS, RunState


def bar(fraction: float, width: int = 20) -> str:
    """``[######..............]``."""
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def render_text(state: RunState, max_rows: int = 100, start: int | None = None) -> str:
    """A header line and one indented line per task (at most ``max_rows``, see RunState.visible)."""
    lines = [f"apflow run {state.root_id[:8]}  {bar(state.progress)}  {state.summary()}"]
    if state.error:
        lines.append(f"error: {state.error}")
    now = time.time()
    hidden = 0
    for item in state.visible(max_rows, start):
        if isinstance(item, int):
            hidden += item
            lines.append(f"  ⋯ {item} task{'s' if item != 1 else ''} not shown")
            continue
        line = (f"{'  ' * item.depth}{ICONS.get(item.status, '?')} {item.name} [{item.executor}] {item.status}"
                f" {item.progress:.0%} {_seconds(item.elapsed(now))}").rstrip()
        if item.error:
            line += f" — {item.error_line[:120]}"
        lines.append(line)
    if hidden:
        lines.append(f"{state.total - hidden} of {state.total} tasks shown; run.frame() lists them all")
    if state.blocked:
        lines.append(f"note: {state.blocked}")
    return "\n".join(lines)


class TextLine:
    """The compact progress line for terminals and scripts.

    On a tty the line is redrawn in place with a carriage return (the LiveView already limits
    redraws to ~10 a second); otherwise (logs, CI, a pipe) a line is printed at most every
    ``every`` seconds and once at the end, so logs do not fill with bars.
    """

    def __init__(self, stream: TextIO | None = None, every: float = 2.0, width: int = 100):
        self._stream = stream
        self.every = every
        self.width = width
        self._last = 0.0
        self._shown = ""
        self.lines = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout  # looked up late: pytest and IPython swap sys.stdout

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def draw(self, state: RunState, final: bool = False) -> None:
        line = f"apflow {bar(state.progress)} {state.summary()}"
        if final and state.counts.get("failed"):
            first = next(iter(state.errors.items()), None)
            if first:
                line += f" — first failure: {state.rows[first[0]].name}: {state.rows[first[0]].error_line[:80]}"
        if self.tty:
            shown = line if final else line[: self.width]
            self.stream.write("\r" + shown.ljust(len(self._shown)) + ("\n" if final else ""))
            self._shown = "" if final else shown
        else:
            now = time.monotonic()
            if not final and now - self._last < self.every:
                return
            self._last = now
            self.stream.write(line + "\n")
        self.lines += 1
        self.stream.flush()
