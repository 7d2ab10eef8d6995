"""Reading the original aipartnerupflow's DuckDB store, read-only.

Its ``apflow_tasks`` has no ``root_id`` or ``owner`` (roots and depths come from ``parent_id``),
keeps ``progress`` as DECIMAL(3,2) and timestamps as TIMESTAMP WITH TIME ZONE. DuckDB hands
TIMESTAMPTZ values to Python only with pytz installed, so timestamps are read as epoch
microseconds (``epoch_us``), which works for TIMESTAMP and TIMESTAMPTZ alike.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import (JSON, Boolean, Connection, DateTime, Double, Engine, Float, Integer, String, cast,
                        create_engine, func, text)
from sqlalchemy.pool import NullPool
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
INSTALL = "reading DuckDB stores needs duckdb and duckdb-engine: pip install 'apflow_nb[duckdb]'"


def duckdb_engine(url: str) -> Engine:
    """A read-only engine on a DuckDB file (shared per URL); nothing is ever written to the file."""
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        try:
            import duckdb_engine  # noqa: F401
        except ImportError as exc:
            raise ImportError(INSTALL) from exc
        database = make_url(url).database
        if database in (None, "", ":memory:"):
            raise ValueError(f"{url!r}: name a DuckDB file (duckdb:///path/to/file.duckdb); an in-memory "
                             f"database has no stored tasks to read")
        if not Path(database).exists():
            raise FileNotFoundError(f"no DuckDB store at {database} (from {url!r})")
        # no pooled connection stays open between calls: while one is, the original app cannot
        # open its store for writing (DuckDB allows one writer and no readers beside it)
        engine = create_engine(url, connect_args={"read_only": True}, poolclass=NullPool)
        try:
            engine.connect().close()
        except DBAPIError as exc:
            engine.dispose()
            if "lock" in str(exc).lower():
                raise RuntimeError(
                    f"DuckDB file {database} is open for writing in another process (DuckDB allows one writer "
                    f"and no readers beside it). Stop that process (the aipartnerupflow app or kernel using "
                    f"it), or copy the file and read the copy.") from exc
            raise
        _engines[url] = engine
        return engine


def columns_of(conn: Connection, name: str) -> list[tuple[str, Any]]:
    """(name, SQLAlchemy type) of a table's columns, from DuckDB's information_schema."""
    rows = conn.execute(text("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = :t ORDER BY ordinal_position"), {"t": name}).all()
    return [(column, _type(str(data_type).upper())) for column, data_type in rows]


def _type(data_type: str) -> Any:
    if data_type == "JSON":
        return JSON()
    if data_type.startswith("TIMESTAMP") or data_type in ("DATE", "DATETIME"):
        return DateTime(timezone=True)
    if data_type == "BOOLEAN":
        return Boolean()
    if data_type.endswith("INT") or data_type in ("INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT"):
        return Integer()
    if data_type.startswith(("DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC")):
        return Float()
    return String()


def is_duckdb(engine: Engine) -> bool:
    return engine.dialect.name == "duckdb"


def timestamp_expr(col: Any) -> Any:
    """Microseconds since the epoch (UTC), for TIMESTAMP and TIMESTAMPTZ columns alike."""
    return func.epoch_us(col)


def number_expr(col: Any) -> Any:
    """DECIMAL progress as DOUBLE (no Decimal objects in the frame)."""
    return cast(col, Double)


def dispose_stores() -> None:
    """Close the read-only DuckDB engines opened by history() / events() (releases the files)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
