"""Write-behind persistence of task state changes and the event log.

The engine keeps each running task's state in memory and records every change here; nothing on the
event loop waits for the database. A writer thread (one per store file or server; in-memory SQLite
is written on the loop, where nothing else can lock it) takes what was buffered every ``interval``
seconds (at once when asked to ``drain``) and writes it in one transaction: executemany UPDATEs
grouped by the set of columns they touch, and the event rows. A task's changes within one interval
coalesce into its latest values. A locked or busy database is retried, nothing is dropped. A batch
the database refuses for another reason is written row by row, so one bad row never blocks the
others: a row that still fails has its JSON values replaced by a note, then keeps only its state
columns, and is dropped (with a warning) only when even that fails.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from itertools import groupby
from typing import Any, Callable

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from apflow_nb.core.storage.batch_sql import BatchWriter
from apflow_nb.core.storage.hit_rows import HIT, hit_event_row, hit_values
from apflow_nb.core.storage.json_text import short_repr
from apflow_nb.core.storage.row_repair import repaired, state_only
from apflow_nb.core.storage.key_catalog import CATALOG_COLUMNS, catalog_for
from apflow_nb.core.storage.sqlalchemy.models import task_events

logger = logging.getLogger("apflow_nb.persistence")

IDLE_EXIT = 2.0  # seconds without work after which a writer thread ends (it restarts on demand)
Problem = Callable[[str, "str | None"], None]  # (message, task id): a row was repaired or dropped


def _transient(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, OperationalError) and any(
        word in text for word in ("locked", "busy", "could not serialize", "deadlock", "connection", "server"))


class StateWriter:
    """Buffers per-task column values and event-log rows and writes them in batches."""

    def __init__(self, session: Session, table: Any, interval: float = 0.05, *, on_problem: Problem | None = None):
        self.session = session
        self.engine = session.get_bind()
        self.table = table
        self.interval = interval
        self.on_problem = on_problem
        url = self.engine.url
        self.threaded = not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._progress_events: dict[str | None, dict[str, Any]] = {}
        self._upserts: dict[tuple[Any, str], dict[str, Any]] = {}  # (table, key value) -> row
        self._keys: list[dict[str, str]] = []  # new key catalog rows (see core/storage/key_catalog.py)
        self.catalog = catalog_for(self.engine)
        self._dirty = False
        self._work = threading.Event()
        self._urgent = threading.Event()
        self._waiters: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None
        self._handle: asyncio.TimerHandle | None = None  # the loop's timer, when not threaded
        self._batches = BatchWriter(self.engine, table)
        self.flushes = self.rows_written = self.events_written = self.failures = self.rows_dropped = 0

    # -- buffering (any thread) ---------------------------------------------------------------
    def mark(self, task_id: str, values: dict[str, Any]) -> None:
        """Record new column values for a task; they are written at the next flush.

        The writer keeps ``values`` (no copy): do not change the dict after handing it over.
        """
        with self._lock:
            row = self._pending.get(task_id)
            if row is None:
                self._pending[task_id] = values
            else:
                row.update(values)
            if self._dirty:
                return
            self._dirty = True
        self._wake()

    def log_event(self, event: Any) -> None:
        """Append an Event to the event log; a task's progress events coalesce until the next flush."""
        self.log_row(event.type.value, event.task_id, event.root_id, event.name, event.status, event.progress,
                     event.timestamp, event.data or None)

    def log_row(self, kind: str, task_id: str | None, root_id: str | None, name: str | None, status: str | None,
                progress: float | None, timestamp: float, payload: Any) -> None:
        """Append one event-log row (what ``log_event`` does, without an Event object).

        ``timestamp`` is seconds since the epoch; the writer thread turns it into a datetime.
        """
        row = {"event_type": kind, "task_id": task_id, "root_id": root_id, "name": name, "status": status,
               "progress": progress, "timestamp": timestamp, "payload": payload}
        if kind == "tree_started" and payload:  # the task list lives in the task table
            row["payload"] = {"total": payload.get("total")}
        with self._lock:
            if kind == "task_progress":
                self._progress_events[task_id] = row
            else:
                self._events.append(row)
            if self._dirty:
                return
            self._dirty = True
        self._wake()

    @property
    def takes_hits(self) -> bool:
        """``record_hit`` may be used (else a hit goes through ``mark`` and ``log_row`` like any final state)."""
        return self._batches.takes_hits

    def record_hit(self, task_id: str, text: str | None, cached_from: str, instant: Any,
                   event: tuple[str, str | None, str | None, float, str] | None) -> None:
        """A cache hit's final state (its result's JSON ``text``, the task it came from, when) and, when given,
        its ``task_completed`` log row (task id, root id, name, timestamp, cached_from): written set-based.

        It must be the task's last change in its run (``mark`` after it still wins, as values)."""
        hit = (task_id, text, cached_from, instant)
        with self._lock:
            row = self._pending.get(task_id)
            if row is None:
                self._pending[task_id] = {"_hit": hit}
            else:  # earlier changes of the task wait in the buffer: the hit joins them as plain values
                row.update(hit_values(hit))
            if event is not None:
                self._events.append({"_hit": event, "timestamp": event[3]})
            if self._dirty:
                return
            self._dirty = True
        self._wake()

    def upsert(self, table: Any, row: dict[str, Any], key: str) -> None:
        """Write ``row`` into ``table`` at the next flush, replacing the row with the same ``key`` column value."""
        with self._lock:
            self._upserts[(table, key, row[key])] = row
            if self._dirty:
                return
            self._dirty = True
        self._wake()

    def observe_keys(self, executor_id: str, inputs: Any, result: Any) -> None:
        """Note the keys of a final task's inputs and (completed) result for the key catalog: a set look-up per
        key; the few never seen before are written with the next batch."""
        rows = self.catalog.observe(executor_id, inputs, result)
        if not rows:
            return
        with self._lock:
            self._keys.extend(rows)
            if self._dirty:
                return
            self._dirty = True
        self._wake()

    def _wake(self) -> None:
        if not self.threaded:
            self._schedule_on_loop()
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="apflow_nb state writer", daemon=True)
                self._thread.start()
        self._work.set()

    @property
    def pending(self) -> int:
        """Tasks with changes not yet written."""
        return len(self._pending)

    # -- waiting for the store ----------------------------------------------------------------
    async def drain(self, timeout: float | None = None) -> bool:
        """Wait, without blocking the loop, until everything buffered so far is written.

        False when ``timeout`` passed first (the writer keeps trying in the background).
        """
        if not self.threaded:
            self.flush()
            return True
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        if not self._request(wake):
            return True
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything buffered now, blocking this thread until it is written (or ``timeout``)."""
        if not self.threaded:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            self._write_batch(self._take())
            return True
        written = threading.Event()
        if not self._request(written.set):
            return True
        return written.wait(timeout)

    def _request(self, notify: Callable[[], None]) -> bool:
        """Ask the writer thread for an immediate batch; False when there is nothing to wait for."""
        with self._lock:
            if not self._dirty and self._thread is None:
                return False
            self._waiters.append(notify)
            self._dirty = True
        self._wake()
        self._urgent.set()
        return True

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            if not self._work.wait(IDLE_EXIT):
                with self._lock:
                    if not self._dirty and not self._waiters:
                        self._thread = None
                        return
                continue
            self._urgent.wait(self.interval)  # gather a batch; a drain() cuts the wait short
            with self._lock:
                self._work.clear()
                self._urgent.clear()
                waiters, self._waiters = self._waiters, []
                batch = self._take_locked()
            if waiters:
                self._batches.loop_waiting()
            try:
                self._write_batch(batch)
            except Exception:  # pragma: no cover - _write_batch handles its own errors
                logger.exception("apflow_nb: the state writer failed")
            for notify in waiters:
                notify()

    def _take(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        with self._lock:
            return self._take_locked()

    def _take_locked(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        pending, self._pending = self._pending, {}
        events, self._events = self._events, []
        if self._progress_events:
            events.extend(self._progress_events.values())
            self._progress_events = {}
            events.sort(key=lambda r: r["timestamp"])
        if self._upserts:  # rows of other tables ride along with the events, tagged (in place) by their table
            for (table, key, _), row in self._upserts.items():
                row["_upsert"] = (table, key)
                events.append(row)
            self._upserts = {}
        if self._keys:  # so do new key catalog rows
            events.extend(dict(row, _catalog=True) for row in self._keys)
            self._keys = []
        self._dirty = False
        return pending, events

    # -- the loop's timer (in-memory stores) ----------------------------------------------------
    def _schedule_on_loop(self) -> None:
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._handle = loop.call_later(self.interval, self._timed_flush)

    def _timed_flush(self) -> None:
        self._handle = None
        self.flush()

    # -- writing ----------------------------------------------------------------------------------
    def _write_batch(self, batch: tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]) -> None:
        pending, events = batch
        if not pending and not events:
            return
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for task_id, values in pending.items():  # the buffer's own dicts: tagged in place, not copied
            if "_hit" in values and len(values) > 1:  # a change after a hit (not the engine's): values, in order
                values = {**hit_values(values.pop("_hit")), **values}
            keys = tuple(sorted(values))
            values["_task_id"] = task_id
            groups.setdefault(keys, []).append(values)
        try:
            self._write_retrying(groups, events)
        except Exception:
            self._write_row_by_row(groups, events)
        self.flushes += 1
        self.rows_written += len(pending)
        self.events_written += len(events)

    def _write_retrying(self, groups: dict[tuple[str, ...], list[dict[str, Any]]],
                        events: list[dict[str, Any]]) -> None:
        """One transaction, retried while the database is locked, busy or unreachable."""
        attempt = 0
        while True:
            try:
                self._write(groups, events)
                return
            except Exception as exc:
                self.failures += 1
                if not _transient(exc):
                    raise
                attempt += 1
                if attempt % 20 == 0:
                    logger.warning("apflow_nb: the store is still busy after %d attempts (%s); retrying",
                                   attempt, short_repr(exc))
                time.sleep(min(0.02 * 2 ** min(attempt, 6), 1.0))

    def _write(self, groups: dict[tuple[str, ...], list[dict[str, Any]]], events: list[dict[str, Any]]) -> None:
        if self.threaded:
            with self.engine.begin() as conn:
                self._execute(conn, groups, events)
            return
        try:
            self._execute(self.session.connection(), groups, events)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise

    def _execute(self, conn: Any, groups: dict[tuple[str, ...], list[dict[str, Any]]],
                 events: list[dict[str, Any]]) -> None:
        for keys, rows in groups.items():
            if keys == HIT:
                self._batches.hit_rows(conn, rows)
            else:
                self._batches.update_rows(conn, keys, rows)
        if events and "_catalog" in events[-1]:  # new key catalog rows come last (see _take_locked)
            self.catalog.write(conn, [{k: e[k] for k in CATALOG_COLUMNS} for e in events if "_catalog" in e])
            events = [e for e in events if "_catalog" not in e]
        logged = [e for e in events if "_upsert" not in e]
        for hits, rows in groupby(logged, key=lambda e: "_hit" in e):  # in the order they happened
            if hits:
                self._batches.hit_events(conn, task_events, list(rows))
            else:
                self._batches.insert_rows(conn, task_events, list(rows))
        others: dict[tuple[Any, str], list[dict[str, Any]]] = {}
        for e in events:
            if "_upsert" in e:
                others.setdefault(e["_upsert"], []).append(e)
        for (table, key), rows in others.items():
            self._batches.upsert_rows(conn, table, rows, key)

    def _write_row_by_row(self, groups: dict[tuple[str, ...], list[dict[str, Any]]],
                          events: list[dict[str, Any]]) -> None:
        """A batch was refused: write each row alone, repairing or dropping only the ones that fail."""
        for keys, rows in groups.items():
            for row in rows:
                if keys == HIT:
                    row = dict(hit_values(row["_hit"]), _task_id=row["_task_id"])
                self._write_one(row, ({tuple(sorted(k for k in row if k != "_task_id")): [row]}, []))
        for event in events:
            if "_hit" in event:
                event = hit_event_row(event["_hit"])
            self._write_one(event, ({}, [event]))

    def _write_one(self, row: dict[str, Any], batch: tuple[dict[tuple[str, ...], list[dict[str, Any]]],
                                                          list[dict[str, Any]]]) -> None:
        is_event = "_task_id" not in row
        task_id = row.get("task_id") if is_event else row["_task_id"]
        last: BaseException | None = None
        for attempt, repair in enumerate((None, repaired, state_only)):
            if repair is not None:
                row = repair(row, is_event)
                batch = ({}, [row]) if is_event else ({tuple(sorted(k for k in row if k != "_task_id")): [row]}, [])
            try:
                self._write_retrying(*batch)
            except Exception as exc:  # refused by the database, or a value SQLAlchemy could not bind
                last = exc
                continue
            if attempt:
                self._problem(f"a {'log event' if is_event else 'task row'} could not be stored as given "
                              f"({short_repr(last)}); it was stored {'repaired' if attempt == 1 else 'without its data'}",
                              task_id)
            return
        self.rows_dropped += 1
        self._problem(f"a {'log event' if is_event else 'task row'} could not be stored and was dropped: "
                      f"{short_repr(last)}", task_id)

    def _problem(self, message: str, task_id: str | None) -> None:
        logger.warning("apflow_nb: %s (task %s)", message, task_id)
        if self.on_problem is not None:
            try:
                self.on_problem(message, task_id)
            except Exception:  # pragma: no cover - never let reporting break writing
                logger.exception("apflow_nb: reporting a store problem failed")
