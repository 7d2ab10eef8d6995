"""Keeping Python's cyclic garbage collector off the hot path of large runs.

Planning a 100,000-task run, settling a long chain of dependents or building a history frame
creates small objects by the hundred thousand while the heap already holds every task: the
collector would scan that heap again and again (in a notebook whose heap holds DataFrames, most of
the run's time). Two tools, both safe from any thread:

- ``gc_paused()``: the collector is off inside a synchronous stretch (never around user code).
- ``heap_held()``: while a large run is in flight, what exists when it starts, and what each paused
  stretch allocates, moves to the collector's permanent generation (``gc.freeze``), which it never
  scans; when the last held run ends, everything goes back (``gc.unfreeze``) and cyclic garbage
  among it is collected as usual, only later.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_paused = 0  # open gc_paused() blocks, across threads
_was_enabled = True  # the collector's state before the first of them
_holds = 0  # runs in flight that hold the heap


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector is off inside the block (and back on after the last open block, if it was on)."""
    global _paused, _was_enabled
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0:
                if _holds:
                    gc.freeze()  # what the stretch built lives as long as the run: never scan it
                if _was_enabled:
                    gc.enable()


@contextmanager
def heap_held(hold: bool = True) -> Iterator[None]:
    """While the block runs (a large tree run), the collector does not scan what it holds (see above)."""
    global _holds
    if not hold:
        yield
        return
    with _lock:
        _holds += 1
        gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _holds -= 1
            if _holds == 0:
                gc.unfreeze()
