"""Which ready task starts next: a priority queue (0 urgent … 3 low, then first come) and the
concurrency bound. A slot is held from a task's start until it reaches a final state, not until
its coroutine returns, so an executor that ignores cancellation cannot keep a slot."""
from __future__ import annotations

import heapq
import itertools
from typing import Callable

from apflow_nb.core.execution.plan import TaskState, TreeRun
from apflow_nb.core.types import PENDING

DEFAULT_PRIORITY = 2


class Scheduler:
    """Ready tasks in priority order, started through ``start`` while slots are free."""

    def __init__(self, max_concurrency: int | None, start: Callable[[TaskState], None]):
        self.max_concurrency = max_concurrency
        self._start = start
        self._ready: list[tuple[int, int, TaskState]] = []
        self._seq = itertools.count()
        self._pumping = False
        self.running = 0

    def enqueue(self, s: TaskState) -> None:
        """``s`` may start once a slot is free."""
        s.seq = next(self._seq)
        priority = s.priority
        heapq.heappush(self._ready, (DEFAULT_PRIORITY if priority is None else priority, s.seq, s))

    def pump(self) -> None:
        """Start ready tasks while slots are free.

        Starting may settle a task at once (a cache hit), which makes more tasks ready: a nested
        call returns at once and this loop takes them, so a long chain of hits is a loop, not a recursion.
        """
        if self._pumping:
            return
        self._pumping = True
        try:
            limit = self.max_concurrency
            ready = self._ready
            while ready and (limit is None or self.running < limit):
                s = heapq.heappop(ready)[2]
                if s.status != PENDING:
                    continue
                self.running += 1
                s.holds_slot = True
                s.started = True
                self._start(s)
        finally:
            self._pumping = False

    def release(self, s: TaskState) -> None:
        """Give back ``s``'s slot (once, when it reached a final state)."""
        if s.holds_slot:
            s.holds_slot = False
            self.running -= 1

    def forget(self, run: TreeRun) -> None:
        """Drop a torn-down run's tasks from the ready queue."""
        self._ready = [item for item in self._ready if item[2].run is not run]
        heapq.heapify(self._ready)
