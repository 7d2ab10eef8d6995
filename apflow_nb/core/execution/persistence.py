"""Write-behind persistence of task state changes.

The TaskManager keeps each running task's state in memory (on its TaskModel object, without
marking it dirty) and records every change here. Changes are written in one transaction per
flush (every ``interval`` seconds, and at once when a tree ends), as executemany UPDATEs
grouped by the set of columns they touch. A task's changes within one interval coalesce
into its latest values. Locked databases are retried; nothing is dropped.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from datetime import datetime, timezone

from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from apflow_nb.core.storage.key_catalog import catalog_for
from apflow_nb.core.storage.sqlalchemy.models import task_events

logger = logging.getLogger("apflow_nb.persistence")


class StateWriter:
    """Buffers per-task column values and writes them in batches through ``session``."""

    def __init__(self, session: Session, table: Any, interval: float = 0.05):
        self.session = session
        self.table = table
        self.interval = interval
        self._pending: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._progress_events: dict[str | None, dict[str, Any]] = {}
        self._keys: list[dict[str, str]] = []  # new key catalog rows
        self.catalog = catalog_for(session.get_bind())
        self._handle: asyncio.TimerHandle | None = None
        self._statements: dict[tuple[str, ...], Any] = {}
        self.flushes = 0
        self.rows_written = 0
        self.failures = 0
        self.events_written = 0

    def mark(self, task_id: str, values: dict[str, Any]) -> None:
        """Record new column values for a task; they are written at the next flush."""
        row = self._pending.get(task_id)
        if row is None:
            self._pending[task_id] = dict(values)
        else:
            row.update(values)
        self._schedule()

    def log_event(self, event: Any) -> None:
        """Append an Event to the event log; a task's progress events coalesce until the next flush."""
        row = {"event_type": event.type.value, "task_id": event.task_id, "root_id": event.root_id,
               "name": event.name, "status": event.status, "progress": event.progress,
               "timestamp": datetime.fromtimestamp(event.timestamp, tz=timezone.utc),
               "payload": event.data or None}
        if event.type.value == "tree_started" and event.data:  # the task list lives in the task table
            row["payload"] = {"total": event.data.get("total")}
        if event.type.value == "task_progress":
            self._progress_events[event.task_id] = row
        else:
            self._events.append(row)
        self._schedule()

    def observe_keys(self, executor_id: str, inputs: Any, result: Any) -> None:
        """Record the keys of a task's inputs and (completed) result in the key catalog at the next flush."""
        rows = self.catalog.observe(executor_id, inputs, result)
        if rows:
            self._keys.extend(rows)
            self._schedule()

    def _schedule(self) -> None:
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._handle = loop.call_later(self.interval, self._timed_flush)

    def _timed_flush(self) -> None:
        self._handle = None
        try:
            self.flush()
        except Exception:  # retried at the next interval; the run goes on
            self.failures += 1
            logger.exception("apflow_nb: writing task state failed; retrying")
            if self._pending:
                try:
                    loop = asyncio.get_running_loop()
                    self._handle = loop.call_later(min(1.0, self.interval * 2 ** min(self.failures, 5)),
                                                   self._timed_flush)
                except RuntimeError:
                    pass

    def _statement(self, keys: tuple[str, ...]) -> Any:
        stmt = self._statements.get(keys)
        if stmt is None:
            cols = self.table.c
            stmt = (update(self.table).where(cols.id == bindparam("_task_id"))
                    .values({k: bindparam(k, type_=cols[k].type) for k in keys}))
            self._statements[keys] = stmt
        return stmt

    def flush(self, retries: int = 5) -> None:
        """Write everything buffered now, in one transaction (retried while the file is locked)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self._pending and not self._events and not self._progress_events and not self._keys:
            return
        pending, self._pending = self._pending, {}
        events, self._events = self._events, []
        new_keys, self._keys = self._keys, []
        if self._progress_events:
            events.extend(self._progress_events.values())
            self._progress_events = {}
            events.sort(key=lambda r: r["timestamp"])
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for task_id, values in pending.items():
            keys = tuple(sorted(values))
            row = dict(values)
            row["_task_id"] = task_id
            groups.setdefault(keys, []).append(row)
        attempt = 0
        while True:
            try:
                conn = self.session.connection()
                for keys, rows in groups.items():
                    conn.execute(self._statement(keys), rows)
                if events:
                    conn.execute(insert(task_events), events)
                if new_keys:
                    self.catalog.write(conn, new_keys)
                self.session.commit()
                break
            except OperationalError as exc:
                self.session.rollback()
                attempt += 1
                if attempt > retries or "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                    self._restore(pending, events, new_keys)
                    raise
                time.sleep(min(0.05 * 2 ** attempt, 1.0))
            except Exception:
                self.session.rollback()
                self._restore(pending, events, new_keys)
                raise
        self.flushes += 1
        self.rows_written += len(pending)
        self.events_written += len(events)

    def _restore(self, pending: dict[str, dict[str, Any]], events: list[dict[str, Any]],
                 keys: list[dict[str, str]] = ()) -> None:
        self._events[:0] = events
        self._keys[:0] = keys
        for task_id, values in pending.items():
            newer = self._pending.get(task_id)
            merged = dict(values)
            if newer:
                merged.update(newer)
            self._pending[task_id] = merged

    @property
    def pending(self) -> int:
        """Tasks with changes not yet written."""
        return len(self._pending)
