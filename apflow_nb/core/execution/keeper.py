"""The keeper: one daemon thread per store that keeps this process's run leases alive and picks up
cancel requests other processes left in the store, without touching the event loop.

Every ``POLL`` seconds it takes the cancel requests of the runs it watches and hands each to the
run's loop (``call_soon_threadsafe``); every ``HEARTBEAT`` seconds it renews the leases, and tells
a run whose lease another process took over. It ends when it watches no run.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger("apflow_nb.execution")

POLL = 0.25
HEARTBEAT = 2.0  # seconds between lease renewals (storage.runs.HEARTBEAT)

OnCancel = Callable[[str, "str | None", "str | None"], None]  # (root id, task id or None, reason)
OnLost = Callable[[str], None]

_keepers: dict[tuple[int, str], "Keeper"] = {}
_keepers_lock = threading.Lock()


def keeper_for(engine: Engine, owner: str) -> "Keeper":
    """The keeper of ``engine`` for this process."""
    with _keepers_lock:
        key = (id(engine), owner)
        keeper = _keepers.get(key)
        if keeper is None or keeper.engine is not engine:
            keeper = _keepers[key] = Keeper(engine, owner)
        return keeper


class Keeper:
    """Leases and cancel requests of the runs one process runs on one store."""

    def __init__(self, engine: Engine, owner: str):
        self.engine = engine
        self.owner = owner
        self._watched: dict[str, tuple[asyncio.AbstractEventLoop, OnCancel, OnLost]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def acquire(self, root_id: str) -> None:
        """Take the lease on ``root_id`` (blocking: call it from a thread); raises TreeAlreadyRunningError."""
        from apflow_nb.core.storage import runs as store_runs

        store_runs.acquire(self.engine, root_id, self.owner)

    def watch(self, root_id: str, loop: asyncio.AbstractEventLoop, on_cancel: OnCancel, on_lost: OnLost) -> None:
        """Keep ``root_id``'s lease alive and deliver its cancel requests on ``loop``."""
        with self._lock:
            self._watched[root_id] = (loop, on_cancel, on_lost)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="apflow_nb run keeper", daemon=True)
                self._thread.start()

    def release(self, root_id: str, status: str) -> None:
        """The run ended: stop watching it and record the lease as finished (in the background)."""
        with self._lock:
            self._watched.pop(root_id, None)
        threading.Thread(target=self._release, args=(root_id, status), daemon=True,
                         name="apflow_nb lease release").start()

    def _release(self, root_id: str, status: str) -> None:
        from apflow_nb.core.storage import runs as store_runs

        try:
            store_runs.release(self.engine, root_id, self.owner, status)
        except Exception:
            logger.exception("apflow_nb: recording the end of run %s failed", root_id)

    def _run(self) -> None:
        from apflow_nb.core.storage import runs as store_runs

        ticks_per_beat = max(1, round(HEARTBEAT / POLL))
        tick = 0
        while not self._stop.wait(POLL):
            with self._lock:
                watched = dict(self._watched)
                if not watched:
                    self._thread = None
                    return
            try:
                self._deliver(watched, store_runs.take_cancel_requests(self.engine, list(watched)))
                tick += 1
                if tick % ticks_per_beat == 0:
                    for root_id in store_runs.renew(self.engine, list(watched), self.owner):
                        loop, _, on_lost = watched[root_id]
                        _call(loop, on_lost, root_id)
            except Exception as exc:  # a busy or unreachable store: try again at the next tick
                logger.debug("apflow_nb: run keeper could not reach the store: %s", exc)

    @staticmethod
    def _deliver(watched: dict[str, tuple[asyncio.AbstractEventLoop, OnCancel, OnLost]], requests: list[Any]) -> None:
        for request in requests:
            entry = watched.get(request.root_id)
            if entry is not None:
                _call(entry[0], entry[1], request.root_id, request.task_id, request.reason)


def _call(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    if not loop.is_closed():
        loop.call_soon_threadsafe(fn, *args)
