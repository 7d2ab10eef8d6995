"""Plain-text drawing of a Frame: the ``text/plain`` repr and the terminal progress line."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from apflow_nb.analysis.palette import icon
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.frame import Frame, Mark, build_frame


def bar(fraction: float, width: int = 20) -> str:
    """``[######..............]``."""
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def frame_text(frame: Frame) -> str:
    """A header line, group lines, then one line per task: ``✘ bad [tick] failed 40% 1.2s — ValueError: x``."""
    lines = [f"apflow run {frame.root_key}  {bar(frame.progress)}  {frame.headline}"]
    lines += [f"  {bar(g.progress, 10)} {g.line}" for g in frame.groups]
    if frame.more_groups:
        lines.append(f"  … and {frame.more_groups} more executors")
    if frame.error:
        lines.append(f"error: {frame.error}")
    for line in frame.lines:
        if isinstance(line, Mark):
            lines.append(f"  {line.text}" if line.kind == "gap" else f"-- {line.text}")
            continue
        text = (f"{'  ' * line.depth}{icon(line.status)} {line.key} [{line.executor}] {line.words}"
                f" {line.progress:.0%} {line.seconds.replace(' ', '')}").rstrip()
        if line.note:
            text += f" — {line.note[:120]}"
        lines.append(text)
    if frame.note:
        lines.append(frame.note)
    if frame.blocked:
        lines.append(f"note: {frame.blocked}")
    return "\n".join(lines)


def render_text(state: RunState, max_rows: int = 100, start: int | None = None) -> str:
    """The view of ``state`` as text: a header, group lines and at most ``max_rows`` task lines."""
    return frame_text(build_frame(state, max_rows, start=start))


class TextLine:
    """The compact progress line for terminals and scripts (a Drawer).

    On a tty the line is redrawn in place with a carriage return (the LiveView already limits
    redraws to ~10 a second); otherwise (logs, CI, a pipe) a line is printed at most every
    ``every`` seconds and once at the end, so logs do not fill with bars.
    """

    def __init__(self, stream: TextIO | None = None, every: float = 2.0, width: int = 100):
        self._stream = stream
        self.every = every
        self.width = width
        self._last: float | None = None
        self._shown = ""
        self.lines = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout  # looked up late: pytest and IPython swap sys.stdout

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def draw(self, state: RunState, final: bool = False) -> None:
        """Write the line (in place on a tty; else at most every ``every`` seconds, and the final one)."""
        frame = build_frame(state, 0)
        line = f"apflow {bar(frame.progress)} {frame.headline}"
        if final and frame.failures:
            _, key, first, _ = frame.failures[0]
            line += f" — first failure: {key}: {first[:80]}"
        if self.tty:
            shown = line if final else line[: self.width]
            self.stream.write("\r" + shown.ljust(len(self._shown)) + ("\n" if final else ""))
            self._shown = "" if final else shown
        else:
            now = time.monotonic()
            if not final and self._last is not None and now - self._last < self.every:
                return
            self._last = now
            self.stream.write(line + "\n")
        self.lines += 1
        self.stream.flush()
