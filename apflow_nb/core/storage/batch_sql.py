"""Batched writes for the state writer: executemany with values converted once, by us.

SQLAlchemy's executemany processes every value of every row through the column types (a Python
call per datetime and per JSON value). For SQLite and PostgreSQL the statements are compiled once
and the rows are converted here in one pass: JSON values to text (``json_text.dumps``: never fails),
timestamps to the form SQLAlchemy itself stores (naive UTC text on SQLite, aware datetimes for
psycopg). Other databases use SQLAlchemy's own path.

On SQLite, while the event loop is busy (the writer thread was seen waiting for the GIL in the last
half second), each chunk goes to the database as one JSON array read back by ``json_each`` in a single
statement: SQLite writes it without the GIL, so the writer neither waits on the loop nor slows it
(``executemany`` takes the GIL back for every row, each time after up to a switch interval). An
idle loop gets ``executemany``, which costs SQLite less. A chunk JSON cannot hold (NaN, an unknown
type) goes by ``executemany``.
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from operator import attrgetter, itemgetter
from typing import Any, Callable

from sqlalchemy import JSON, Text, bindparam, cast, insert, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from apflow_nb.core.storage.json_text import compact_encoder, dumps
from apflow_nb.core.storage.sqlalchemy.models import UTCDateTime, utcnow

Convert = Callable[[Any], Any]
CHUNK = 2000  # rows per json_each statement
_rows_json = compact_encoder(ensure_ascii=False)


def _identity(value: Any) -> Any:
    return value


def _json(value: Any) -> Any:
    return None if value is None else dumps(value)  # text encoded earlier (json_text.Encoded) passes as it is


_last_time: tuple[Any, ...] = (None, None, None, None)  # the last two datetimes converted and their texts (a
# task row's completed_at and updated_at are one object, with started_at between them in column order); one
# tuple, replaced whole, so writer threads of several stores never pair one value with another's text


def _sqlite_time(value: datetime | float | None) -> str | None:
    """Naive UTC text with microseconds, the form SQLAlchemy stores DateTime in on SQLite."""
    global _last_time
    if value is None:
        return None
    last = _last_time
    if value is last[0]:
        return last[1]
    if value is last[2]:
        return last[3]
    text = _sqlite_text(value)
    _last_time = (value, text, last[0], last[1])
    return text


def _sqlite_text(value: datetime | float) -> str:
    if type(value) is float:  # seconds since the epoch (event timestamps)
        return _epoch_text(value)
    if value.tzinfo is not None:
        if value.tzinfo is timezone.utc:  # the engine's own timestamps: the text up to the "+00:00" offset
            return value.isoformat(" ", "microseconds")[:26]
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


_second: tuple[float, str] = (-1.0, "")  # the last whole second formatted, and its text (events share seconds)


def _epoch_text(value: float) -> str:
    """``datetime.fromtimestamp(value, utc)`` as naive text, the same to the microsecond (rounded half to even,
    as CPython rounds), with the date and time of day formatted once per second."""
    global _second
    fraction, whole = math.modf(value)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        micro -= 1_000_000
        whole += 1.0
    elif micro < 0:  # before 1970
        return _utc_from_timestamp(value).isoformat(" ", "microseconds")
    last = _second
    if last[0] != whole:
        last = _second = (whole, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole)))
    return f"{last[1]}.{micro:06d}"


def _utc_from_timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc).replace(tzinfo=None)


def _pg_time(value: datetime | float | None) -> datetime | None:
    if type(value) is float:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class BatchWriter:
    """Compiled UPDATE-by-id and INSERT statements for one table and engine."""

    def __init__(self, engine: Engine, table: Any):
        self.table = table
        self.dialect = engine.dialect
        self.fast = self.dialect.name in ("sqlite", "postgresql")
        self._updates: dict[tuple[str, ...], tuple[str, list[str], list[Convert]] | Any] = {}
        self._inserts: dict[tuple[int, tuple[str, ...]], tuple[str, list[str], list[Convert]] | Any] = {}
        self.json_rows = self.dialect.name == "sqlite" and _sqlite_has_json_arrows(self.dialect)
        self._json_until = 0.0  # json_each statements until then (the loop was seen busy)

    def loop_waiting(self) -> None:
        """The event loop waits for this batch (a drain): it does not compete for the GIL, so ``executemany``
        (less work for SQLite) is back until a chunk sees the loop busy again."""
        self._json_until = 0.0

    def _convert(self, column: Any) -> Convert:
        if isinstance(column.type, JSON):
            return _json
        if isinstance(column.type, UTCDateTime):
            return _sqlite_time if self.dialect.name == "sqlite" else _pg_time
        return _identity

    def _bind(self, column: Any, name: str) -> Any:
        if self.dialect.name == "postgresql" and isinstance(column.type, JSON):
            return cast(bindparam(name, type_=Text), column.type)
        return bindparam(name)

    def _compile(self, stmt: Any, columns: dict[str, Any], json_sql: Callable[[list[str]], str] | None = None
                 ) -> tuple[str, list[str], list[Convert], str | None]:
        compiled = stmt.compile(dialect=self.dialect)
        names = list(compiled.positiontup) if self.dialect.positional else list(compiled.binds)
        many = json_sql(names) if json_sql is not None and self.json_rows else None
        return compiled.string, names, [self._convert(columns[n]) for n in names], many

    def _json_update(self, keys: tuple[str, ...]) -> Callable[[list[str]], str]:
        """``UPDATE ... FROM json_each(?)``: each array element is one row's values in ``names`` order."""
        quote = self.dialect.identifier_preparer.quote
        table = self.dialect.identifier_preparer.format_table(self.table)

        def sql(names: list[str]) -> str:
            sets = ", ".join(f"{quote(k)} = j.value ->> {names.index(k)}" for k in keys)
            return (f"UPDATE {table} SET {sets} FROM json_each(?) AS j "
                    f"WHERE {table}.{quote('id')} = j.value ->> {names.index('_task_id')}")
        return sql

    def _json_insert(self, table: Any) -> Callable[[list[str]], str]:
        """``INSERT ... SELECT ... FROM json_each(?)``: rows go in in array order."""
        quote = self.dialect.identifier_preparer.quote
        name = self.dialect.identifier_preparer.format_table(table)

        def sql(names: list[str]) -> str:
            columns = ", ".join(quote(n) for n in names)
            values = ", ".join(f"j.value ->> {i}" for i in range(len(names)))
            return f"INSERT INTO {name} ({columns}) SELECT {values} FROM json_each(?) AS j"
        return sql

    def _json_upsert(self, table: Any, key: str) -> Callable[[list[str]], str]:
        """``INSERT ... SELECT ... FROM json_each(?) WHERE true ON CONFLICT (key) DO UPDATE``: rows in array order,
        a later row with the same key replacing the earlier one (``WHERE true`` lets SQLite parse the upsert)."""
        quote = self.dialect.identifier_preparer.quote
        insert_sql = self._json_insert(table)

        def sql(names: list[str]) -> str:
            sets = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names if n != key)
            return f"{insert_sql(names)} WHERE true ON CONFLICT ({quote(key)}) DO UPDATE SET {sets}"
        return sql

    def update_rows(self, conn: Connection, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        """``UPDATE table SET <keys> WHERE id = :_task_id`` for every row (each has ``_task_id``).

        Columns with an ``onupdate`` default that a row does not set (``updated_at``) get it as
        SQLAlchemy would: ``updated_at`` here, others through SQLAlchemy's own path.
        """
        cols = self.table.c
        if "updated_at" in cols and "updated_at" not in keys:
            now = utcnow()
            rows = [dict(row, updated_at=now) for row in rows]
            keys = tuple(sorted(keys + ("updated_at",)))
        plan = self._updates.get(keys)
        if plan is None:
            others = [c.name for c in cols if c.onupdate is not None and c.name not in keys]
            if self.fast and not others:
                stmt = update(self.table).where(cols.id == bindparam("_task_id")).values(
                    {k: self._bind(cols[k], k) for k in keys})
                plan = self._compile(stmt, {**{k: cols[k] for k in keys}, "_task_id": cols.id},
                                     self._json_update(keys))
            else:
                plan = (update(self.table).where(cols.id == bindparam("_task_id"))
                        .values({k: bindparam(k, type_=cols[k].type) for k in keys}))
            self._updates[keys] = plan
        self._run(conn, plan, rows)

    def insert_rows(self, conn: Connection, table: Any, rows: list[Any]) -> None:
        """``INSERT INTO table`` every row: dicts with the same keys, or task records (one attribute a column)."""
        records = not isinstance(rows[0], dict)
        keys = rows[0]._columns if records else tuple(rows[0])
        plan = self._inserts.get((id(table), keys))
        if plan is None:
            cols = table.c
            if self.fast:
                stmt = insert(table).values({k: self._bind(cols[k], k) for k in keys})
                plan = self._compile(stmt, {k: cols[k] for k in keys}, self._json_insert(table))
            else:
                plan = insert(table)
            self._inserts[(id(table), keys)] = plan
        if records and not isinstance(plan, tuple):  # SQLAlchemy's own path takes dicts
            rows = [r.to_dict() for r in rows]
        self._run(conn, plan, rows, attrgetter if records else itemgetter)

    def upsert_rows(self, conn: Connection, table: Any, rows: list[dict[str, Any]], key: str) -> None:
        """Insert every row, replacing the row with the same ``key`` (all rows have the same columns; a
        ``_upsert`` tag on them is not a column)."""
        keys = tuple(k for k in rows[0] if k != "_upsert")
        plan = self._inserts.get((id(table), keys + ("|upsert",)))
        if plan is None:
            plan = self._inserts[(id(table), keys + ("|upsert",))] = self._upsert_plan(table, keys, key)
        if plan[0] == "generic":
            from sqlalchemy import delete

            conn.execute(delete(table).where(table.c[key].in_([r[key] for r in rows])))
            conn.execute(insert(table), [{k: r[k] for k in keys} for r in rows])
            return
        self._run(conn, plan, rows)

    def _upsert_plan(self, table: Any, keys: tuple[str, ...], key: str) -> Any:
        if not self.fast:
            return ("generic", table, key)
        if self.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        stmt = dialect_insert(table).values({k: self._bind(table.c[k], k) for k in keys})
        stmt = stmt.on_conflict_do_update(index_elements=[key], set_={k: stmt.excluded[k] for k in keys if k != key})
        return self._compile(stmt, {k: table.c[k] for k in keys}, self._json_upsert(table, key))

    @property
    def takes_hits(self) -> bool:
        """Cache hits can be written set-based here (SQLite with ``->>``, a task table with ``cached_from``)."""
        return self.json_rows and {"cached_from", "attempts"} <= set(self.table.c.keys())

    def hit_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Cache hits' final rows, ``{"_hit": (task id, result JSON text, cached_from, instant)}``: one UPDATE per
        chunk whose constant columns (completed, no error, progress 1, no attempt made) are in the statement, so the writer
        encodes four values a row and SQLite does the rest without the GIL."""
        quote = self.dialect.identifier_preparer.quote
        table = self.dialect.identifier_preparer.format_table(self.table)
        sql = (f"UPDATE {table} SET {quote('status')} = 'completed', {quote('result')} = j.value ->> 1, "
               f"{quote('error')} = NULL, {quote('completed_at')} = j.value ->> 3, "
               f"{quote('updated_at')} = j.value ->> 3, {quote('progress')} = 1.0, {quote('attempts')} = 0, "
               f"{quote('cached_from')} = j.value ->> 2 FROM json_each(?) AS j WHERE {table}.{quote('id')} = "
               f"j.value ->> 0")
        self._run_json(conn, sql, [(task_id, text, source, _sqlite_time(instant))
                                   for task_id, text, source, instant in (row["_hit"] for row in rows)])

    def hit_events(self, conn: Connection, table: Any, events: list[dict[str, Any]]) -> None:
        """Cache hits' ``task_completed`` log rows, ``{"_hit": (task id, root id, name, timestamp, cached_from)}``,
        with the payload ``{"cached": true, "cached_from": ...}`` built by SQLite."""
        quote = self.dialect.identifier_preparer.quote
        name = self.dialect.identifier_preparer.format_table(table)
        columns = ", ".join(quote(c) for c in ("event_type", "task_id", "root_id", "name", "status", "progress",
                                               "timestamp", "payload"))
        sql = (f"INSERT INTO {name} ({columns}) SELECT 'task_completed', j.value ->> 0, j.value ->> 1, "
               f"j.value ->> 2, 'completed', 1.0, j.value ->> 3, json_object('cached', json('true'), "
               f"'cached_from', j.value ->> 4) FROM json_each(?) AS j")
        self._run_json(conn, sql, [(task_id, root_id, label, _sqlite_time(stamp), source)
                                   for task_id, root_id, label, stamp, source in (e["_hit"] for e in events)])

    def _run_json(self, conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cursor = conn.connection.cursor()
        dbapi_error = self.dialect.loaded_dbapi.Error
        try:
            for start in range(0, len(rows), CHUNK):
                cursor.execute(sql, (_rows_json(rows[start:start + CHUNK]),))
        except dbapi_error as exc:
            raise DBAPIError.instance(sql, None, exc, dbapi_error, dialect=self.dialect, ismulti=True) from exc
        finally:
            cursor.close()

    def _run(self, conn: Connection, plan: Any, rows: list[Any], getter: Callable[..., Any] = itemgetter) -> None:
        """Execute ``plan`` for ``rows`` (dicts, or records read with ``getter=attrgetter``) in chunks."""
        if not isinstance(plan, tuple):
            conn.execute(plan, rows)
            return
        sql, names, converters, json_sql = plan
        get = getter(*names) if len(names) > 1 else (lambda row, one=getter(names[0]): (one(row),))
        convert = [(i, conv) for i, conv in enumerate(converters) if conv is not _identity]
        shape = None if self.dialect.positional else (lambda values: dict(zip(names, values)))
        cursor = conn.connection.cursor()  # the driver's own statements, inside this connection's transaction
        dbapi_error = self.dialect.loaded_dbapi.Error
        try:
            for start in range(0, len(rows), CHUNK):
                wall, cpu = time.perf_counter(), time.thread_time()
                params = []
                for row in rows[start:start + CHUNK]:
                    values = list(get(row))
                    for i, conv in convert:
                        values[i] = conv(values[i])
                    params.append(values if shape is None else shape(values))
                if json_sql is not None and (len(params) < 64 or wall < self._json_until):
                    _execute_json(cursor, json_sql, sql, params)
                else:
                    cursor.executemany(sql, params)
                if json_sql is not None and _waited(wall, cpu) > 0.003:  # the loop is busy: json_each a while
                    self._json_until = time.perf_counter() + 0.5
        except dbapi_error as exc:  # as SQLAlchemy's own errors (IntegrityError, OperationalError, ...)
            raise DBAPIError.instance(sql, None, exc, dbapi_error, dialect=self.dialect, ismulti=True) from exc
        finally:
            cursor.close()


def _waited(wall: float, cpu: float) -> float:
    """Seconds this thread spent off the CPU since ``wall``/``cpu`` (waiting for the GIL, mostly)."""
    return (time.perf_counter() - wall) - (time.thread_time() - cpu)


def _execute_json(cursor: Any, json_sql: str, sql: str, chunk: list[list[Any]]) -> None:
    """One statement for the chunk, or ``executemany`` when JSON cannot hold one of its values."""
    try:
        text = _rows_json(chunk)
    except (TypeError, ValueError, RecursionError):
        cursor.executemany(sql, chunk)
        return
    cursor.execute(json_sql, (text,))


def _sqlite_has_json_arrows(dialect: Any) -> bool:
    """SQLite 3.38 or newer (the ``->>`` operator); older versions write with ``executemany``."""
    version = getattr(dialect.loaded_dbapi, "sqlite_version_info", (0,))
    return tuple(version) >= (3, 38, 0)
