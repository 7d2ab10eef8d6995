"""What the user passes as ``store`` -> an Engine; which tables and columns that store really has."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, column, inspect, table

TASKS = "apflow_tasks"
EVENTS = "apflow_task_events"


def resolve_engine(store: Any = None) -> Engine | None:
    """None (the default store), a URL, an Engine, a Session or a TaskManager -> an Engine.

    ``duckdb:///file`` (the original aipartnerupflow's default store) opens read-only. A SQLite
    file this process has not opened as a store opens read-only (``file:...?mode=ro``, no PRAGMA):
    reading never changes a file, never switches it to WAL. A SQLite file that does not exist gives None (an empty store): reading never
    creates a store.
    """
    if isinstance(store, Engine):
        return store
    bind = getattr(store, "get_bind", None)
    if callable(bind):  # a Session
        return bind()
    db = getattr(store, "db", None)
    if db is not None and callable(getattr(db, "get_bind", None)):  # a TaskManager
        return db.get_bind()
    if store is not None and not isinstance(store, str):
        raise TypeError(f"store must be a URL, an Engine, a Session or a TaskManager, not {type(store).__name__}")
    from apflow_nb.core.storage.session import default_database_url, get_engine, open_engine

    from apflow_nb.core.storage.urls import parse_url

    url = store or default_database_url()
    parsed = parse_url(url)  # StoreURLError (never echoing the URL) when it cannot be parsed
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        from apflow_nb.analysis.duckdb_compat import duckdb_engine

        return duckdb_engine(url)
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not str(parsed.database).startswith("file:"):
        path = Path(parsed.database).expanduser()
        if not path.exists():
            return None
        return open_engine(url) or read_only_sqlite(path)  # a store this process writes, or read-only
    return get_engine(url)


_read_only: dict[str, Engine] = {}


def read_only_sqlite(path: Path) -> Engine:
    """An engine that opens the SQLite file at ``path`` read-only (``mode=ro``) and sets no PRAGMA.

    Connections are not pooled: no file stays open between reads. A file already in WAL mode still
    gets its ``-wal``/``-shm`` companions while it is read (SQLite needs them for WAL readers).
    """
    key = str(path.resolve())
    engine = _read_only.get(key)
    if engine is None:
        import sqlite3
        from urllib.parse import quote

        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        uri = f"file:{quote(key)}?mode=ro"
        engine = create_engine("sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(
            uri, uri=True, check_same_thread=False, timeout=30))
        _read_only[key] = engine
    return engine


def table_of(conn: Connection, name: str) -> Any:
    """A lightweight table with the columns (and their types) ``name`` really has in the store, or
    None when the store has no such table. Connection errors propagate (a wrong URL is never an
    empty store)."""
    inspector = inspect(conn)
    if not inspector.has_table(name):
        return None
    if conn.dialect.name == "duckdb":  # duckdb-engine cannot reflect columns under SQLAlchemy 2.1
        from apflow_nb.analysis.duckdb_compat import columns_of

        found = columns_of(conn, name)
    else:
        found = [(c["name"], c["type"]) for c in inspector.get_columns(name)]
    return table(name, *[column(n, t) for n, t in found])


def dispose_stores() -> None:
    """Close the read-only DuckDB engines history() and events() opened (releases the files)."""
    from apflow_nb.analysis.duckdb_compat import dispose_stores as _dispose

    _dispose()
    for engine in _read_only.values():
        engine.dispose()
    _read_only.clear()
