"""Turning what the user passes as ``store`` into an Engine, and reading tables it may lack."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

TASKS = "apflow_tasks"
EVENTS = "apflow_task_events"


def resolve_engine(store: Any = None) -> Engine:
    """None (the default store), a URL, an Engine, a Session or a TaskManager -> an Engine.

    DuckDB files (``duckdb:///path``, the original project's default store) open read-only.
    """
    if store is None:
        from apflow_nb.core.storage.session import get_engine

        return get_engine()
    if isinstance(store, Engine):
        return store
    bind = getattr(store, "get_bind", None)
    if callable(bind):  # a Session
        return bind()
    db = getattr(store, "db", None)
    if db is not None and callable(getattr(db, "get_bind", None)):  # a TaskManager
        return db.get_bind()
    if isinstance(store, str):
        url = make_url(store)
        if url.get_backend_name() == "duckdb":
            return _duckdb_engine(store)
        from apflow_nb.core.storage.session import get_engine

        return get_engine(store)
    raise TypeError(f"store must be a URL, an Engine, a Session or a TaskManager, not {type(store).__name__}")


_duck: dict[str, Engine] = {}


def _duckdb_engine(url: str) -> Engine:
    engine = _duck.get(url)
    if engine is None:
        try:
            import duckdb_engine  # noqa: F401
        except ImportError as exc:
            raise ImportError("reading DuckDB stores needs duckdb-engine: pip install 'apflow_nb[duckdb]'") from exc
        engine = create_engine(url, connect_args={"read_only": True})
        _duck[url] = engine
    return engine


def reflect(engine: Engine, name: str) -> Any:
    """The table with the columns it really has in the store, or None when it does not exist.

    Columns are read from an empty ``SELECT *`` rather than the dialect's reflection, which some
    drivers (duckdb-engine under SQLAlchemy 2.1) cannot answer.
    """
    from sqlalchemy import column, table
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(f"SELECT * FROM {name} WHERE 1 = 0")
            names = list(result.keys())
            result.close()
    except DBAPIError:
        return None
    return table(name, *[column(n) for n in names])


def dispose_stores() -> None:
    """Close the read-only DuckDB engines opened by history()."""
    for engine in _duck.values():
        engine.dispose()
    _duck.clear()
