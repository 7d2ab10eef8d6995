"""What the user passes as ``store`` -> an Engine; which tables and columns that store really has."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, column, inspect, table
from sqlalchemy.engine import make_url

TASKS = "apflow_tasks"
EVENTS = "apflow_task_events"


def resolve_engine(store: Any = None) -> Engine | None:
    """None (the default store), a URL, an Engine, a Session or a TaskManager -> an Engine.

    ``duckdb:///file`` (the original aipartnerupflow's default store) opens read-only. A SQLite
    file that does not exist gives None (an empty store): reading never creates a store.
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
    from apflow_nb.core.storage.session import default_database_url, get_engine

    url = store or default_database_url()
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        from apflow_nb.analysis.duckdb_compat import duckdb_engine

        return duckdb_engine(url)
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not str(parsed.database).startswith("file:") and not Path(parsed.database).exists():
        return None
    return get_engine(url)


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
