"""Pausing Python's cyclic garbage collector around work that allocates many objects and frees none.

Planning a 100,000-task run, or settling a long chain of dependents, creates small objects by the
hundred thousand while the heap already holds every task: the collector would scan that heap again
and again (nearly half the time). Only synchronous stretches are paused, never user code.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector is off inside the block (and back on after it, if it was on before)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
