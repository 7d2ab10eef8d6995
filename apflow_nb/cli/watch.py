"""``apflow-nb watch [ROOT_ID]``: a run another process executes, live in the terminal.

The same feed and state as ``apflow_nb.watch``; drawn as the text view (one line per task, the
header with counts and the overall bar), redrawn in place on a terminal, and as a progress line
every few seconds plus the whole table at the end when the output is a pipe or a file.
Exit status: 0 when the run completed, 1 when it failed, was cancelled or its process is gone,
2 for bad input (no such store or task, nothing running), 130 after Ctrl-C (the run goes on).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any, TextIO

from apflow_nb.cli.common import add_store, store_url

INTERRUPTED = 130


def add_parser(commands: Any) -> None:
    p = commands.add_parser("watch", help="follow a run another process executes, live (default: the newest running)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root_id", nargs="?", default=None, metavar="ROOT_ID",
                   help="the run's root id (or any of its task ids); default: the newest running tree")
    add_store(p)
    p.set_defaults(handler=watch_command)


class TerminalTable:
    """Draws a RunState as the text view: in place on a terminal (ANSI cursor home and erase), as a
    line every ``every`` seconds and the full table at the end elsewhere. A drawer: ``draw(state, final)``."""

    def __init__(self, stream: TextIO | None = None, every: float = 2.0):
        self._stream = stream
        self.every = every
        self._last = 0.0
        self.frames = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def draw(self, state: Any, final: bool = False) -> None:
        from apflow_nb.notebook.views.text import bar, render_text

        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if tty:
            size = shutil.get_terminal_size()
            text = render_text(state, max_rows=max(3, size.lines - 4))
            lines = [line[: size.columns] for line in text.splitlines()]
            self.stream.write("\x1b[H" + "".join(line + "\x1b[K\n" for line in lines) + "\x1b[J")
        elif final:
            self.stream.write(render_text(state) + "\n")
        else:
            now = time.monotonic()
            if now - self._last < self.every:
                return
            self._last = now
            self.stream.write(f"apflow {bar(state.progress)} {state.summary()}\n")
        self.frames += 1
        self.stream.flush()


def watch_command(args: argparse.Namespace) -> int:
    from apflow_nb.notebook.watch import watch

    table = TerminalTable()
    if table.stream.isatty():
        table.stream.write("\x1b[2J")  # a clean screen to draw on
    try:
        handle = watch(args.root_id, store_url(args.store), display="text", drawer=table)
        status = handle.result() if not handle.done() else handle.status
    except KeyboardInterrupt:
        print("\nstopped watching (the run goes on)", file=sys.stderr, flush=True)
        return INTERRUPTED
    if handle.state.error:
        print(handle.state.error, file=sys.stderr, flush=True)
    return 0 if status == "completed" else 1
