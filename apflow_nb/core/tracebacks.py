"""Tracebacks of a task's failure as its author wants to read them: their frames, not ours.

``format_user_traceback(exc)`` renders an exception like ``traceback.format_exception`` does, with
the frames of the apflow_nb package and of asyncio's machinery left out (the executor wrappers, the
loop, the worker thread of ``asyncio.to_thread``), so a failure starts at the user's own code. File
names go through a pluggable namer: the notebook layer installs one that names ipykernel's
temporary cell files the way IPython's own tracebacks do (``Cell In[3], line 4``). Pure: no
IPython import here.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import traceback
from typing import Callable, Iterator, Optional

FrameNamer = Callable[[str], Optional[str]]

_HIDDEN = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep  # type: ignore[type-var]
                for m in (asyncio, concurrent.futures))
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_namer: FrameNamer | None = None

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def set_frame_namer(namer: FrameNamer | None) -> FrameNamer | None:
    """Use ``namer(filename) -> display name or None`` for file names in tracebacks (None: plain
    ``File "…"`` lines). Returns the namer it replaces."""
    global _namer
    previous, _namer = _namer, namer
    return previous


def is_hidden(filename: str) -> bool:
    """True for frames a task's author should not have to read: apflow_nb's own and asyncio's."""
    path = os.path.abspath(filename) if filename and not filename.startswith("<") else filename or ""
    return path.startswith(_PACKAGE) or path.startswith(_HIDDEN)


def _where(filename: str, lineno: int | None) -> str:
    name = None
    if _namer is not None:
        try:
            name = _namer(filename)
        except Exception:  # noqa: BLE001 - a namer must never break a traceback
            name = None
    return f"{name}, line {lineno}" if name else f'File "{filename}", line {lineno}'


def _frames(te: traceback.TracebackException) -> Iterator[str]:
    shown = [f for f in te.stack if not is_hidden(f.filename)]
    if not shown:
        return
    yield "Traceback (most recent call last):\n"
    for frame in shown:
        yield f"  {_where(frame.filename, frame.lineno)}, in {frame.name}\n"
        if frame.line:
            yield f"    {frame.line.strip()}\n"


def _format(te: traceback.TracebackException, seen: set[int]) -> Iterator[str]:
    seen.add(id(te))
    cause, context = te.__cause__, te.__context__
    if cause is not None and id(cause) not in seen:
        yield from _format(cause, seen)
        yield _CAUSE
    elif context is not None and not te.__suppress_context__ and id(context) not in seen:
        yield from _format(context, seen)
        yield _CONTEXT
    yield from _frames(te)
    yield from te.format_exception_only()


def format_user_traceback(exc: BaseException) -> str:
    """The exception's traceback without apflow_nb's or asyncio's frames, cells named by the namer.

    Chained exceptions (``raise ... from``, errors while handling another) are kept, as Python
    prints them. An exception raised inside apflow_nb itself has no frames left: only its message.
    """
    te = traceback.TracebackException.from_exception(exc)
    return "".join(_format(te, set())).rstrip("\n")
