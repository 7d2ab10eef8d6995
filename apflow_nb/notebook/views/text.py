"""Plain-text drawing of a RunState: the ``text/plain`` repr and the terminal progress line."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from apflow_nb.notebook.progress import ICONS, RunState


def bar(fraction: float, width: int = 20) -> str:
    """``[######..............]``."""
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def render_text(state: RunState, max_rows: int = 100) -> str:
    """A header line and one indented line per task (the first ``max_rows``)."""
    lines = [f"apflow run {state.root_id[:8]}  {bar(state.progress)}  {state.summary()}"]
    now = time.time()
    rows = list(state.rows.values())
    for row in rows[:max_rows]:
        line = (f"{'  ' * row.depth}{ICONS.get(row.status, '?')} {row.name} [{row.executor}] {row.status}"
                f" {row.progress:.0%} {_seconds(row.elapsed(now))}").rstrip()
        if row.error:
            line += f" — {row.error.splitlines()[0][:120]}"
        lines.append(line)
    if len(rows) > max_rows:
        lines.append(f"… {len(rows) - max_rows} more tasks not shown (run.frame() lists them all)")
    if state.blocked:
        lines.append(f"note: {state.blocked}")
    return "\n".join(lines)


class TextLine:
    """The compact progress line for terminals and scripts.

    On a tty the line is redrawn in place with a carriage return; otherwise (logs, CI) a line is
    printed at most every ``every`` seconds and once at the end.
    """

    def __init__(self, stream: TextIO | None = None, every: float = 2.0):
        self.stream = stream or sys.stdout
        self.every = every
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.lines = 0

    def draw(self, state: RunState, final: bool = False) -> None:
        line = f"apflow {bar(state.progress)} {state.summary()}"
        if self._tty:
            self.stream.write("\r" + line.ljust(100) + ("\n" if final else ""))
        else:
            now = time.monotonic()
            if not final and now - self._last < self.every:
                return
            self._last = now
            self.stream.write(line + "\n")
        self.lines += 1
        self.stream.flush()

    def close(self, state: Any) -> None:  # the final frame is drawn by draw(final=True)
        pass
