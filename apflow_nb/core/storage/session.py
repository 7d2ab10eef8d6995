"""Engines and sessions: ``create_session()`` gives a Session on the embedded SQLite store.

With no argument the store is ``./.apflow/tasks.db`` (relative to the working directory, which
in Jupyter is the notebook's folder) unless ``APFLOW_NB_DATABASE_URL`` names another. Any
SQLAlchemy URL works; ``"sqlite://"`` is in memory. SQLite files run in WAL mode with a busy
timeout, so several kernels can share one file.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from apflow_nb.core.errors import SchemaMismatchError
from apflow_nb.core.storage import json_text
from apflow_nb.core.storage.sqlalchemy.models import SCHEMA_VERSION, TABLE_NAME, Base, get_task_model_class
from apflow_nb.core.storage.urls import StoreURLError, mask_url, parse_url, scrub_exception

ENV_URL = "APFLOW_NB_DATABASE_URL"
DEFAULT_PATH = Path(".apflow") / "tasks.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
_schema_checked: set[tuple[int, int, int]] = set()
_recovered: set[int] = set()


_UNSET: Any = object()
_process_url: Any = _UNSET  # %apflow store / set_default_database_url: this process only, never os.environ


def set_default_database_url(url: str | None) -> None:
    """Set this process's store (what ``create_session()`` uses from now on); None: ``./.apflow/tasks.db``.

    The setting lives in the process, not in ``os.environ``, so child processes never inherit a URL
    (and its password). ``clear_default_database_url()`` goes back to ``$APFLOW_NB_DATABASE_URL``.
    """
    global _process_url
    if url is not None:
        parse_url(url)  # a bad URL raises StoreURLError here, and the setting stays as it was
    _process_url = url


def clear_default_database_url() -> None:
    """Forget :func:`set_default_database_url`: ``$APFLOW_NB_DATABASE_URL``, else the default file, again."""
    global _process_url
    _process_url = _UNSET


def default_database_url() -> str:
    """The URL ``create_session()`` uses: this process's setting (``%apflow store``), else
    ``$APFLOW_NB_DATABASE_URL``, else ``./.apflow/tasks.db``."""
    if _process_url is not _UNSET:
        url = _process_url
    else:
        url = os.environ.get(ENV_URL)
    if url:
        return url
    return f"sqlite:///{DEFAULT_PATH.resolve()}"


def _is_uri_filename(parsed: URL) -> bool:
    """``sqlite:///file:path?mode=ro&uri=true``: SQLite opens ``database`` as a URI filename."""
    return str(parsed.query.get("uri", "")).lower() in ("true", "1", "yes")


def _read_only_uri(parsed: URL) -> bool:
    return _is_uri_filename(parsed) and (str(parsed.query.get("mode", "")) == "ro"
                                         or str(parsed.query.get("immutable", "")) == "1")


def _configure_sqlite(engine: Engine) -> None:
    url = engine.url
    on_disk = url.database not in (None, "", ":memory:") and not _read_only_uri(url) \
        and "mode=memory" not in str(url.database) and str(url.query.get("mode", "")) != "memory"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if on_disk:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()


def _scrub_errors(engine: Engine) -> None:
    """Errors from this engine (connect errors included) carry no password in their messages."""
    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        for exc in (ctx.sqlalchemy_exception, ctx.original_exception):
            if exc is not None:
                scrub_exception(exc, engine.url)


def get_engine(url: str | None = None, **engine_kwargs: Any) -> Engine:
    """The engine for ``url`` (shared per URL within the process), created on first use.

    ``postgresql://`` and ``postgres://`` use psycopg 3 (with the URL's real password). A URL that
    cannot be used raises StoreURLError, whose message never repeats the password.
    """
    url = url or default_database_url()
    key = url if not engine_kwargs else f"{url}|{sorted(engine_kwargs.items())}"
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        parsed = parse_url(url)
        kwargs = dict(engine_kwargs)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            _prepare_sqlite(parsed, kwargs)
        elif backend in ("postgresql", "postgres") and parsed.drivername in ("postgresql", "postgres"):
            # pass the URL object: str(URL) would send the server "***" instead of the password
            parsed = parsed.set(drivername="postgresql+psycopg" if _has_psycopg3() else "postgresql")
        kwargs.setdefault("json_serializer", json_text.dumps)
        try:
            engine = create_engine(parsed, **kwargs)
        except NoSuchModuleError:
            raise StoreURLError(
                f"unknown kind of database {parsed.drivername!r} in the store URL {mask_url(parsed)!r}: use "
                f"sqlite:///path/to/tasks.db or postgresql://user:password@host/db (another SQLAlchemy dialect "
                f"needs its driver package installed)") from None
        except Exception as exc:
            raise scrub_exception(exc, parsed) from None
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        _scrub_errors(engine)
        _engines[key] = engine
        return engine


def open_engine(url: str) -> Engine | None:
    """The engine this process already opened for ``url`` (``get_engine``), or None: readers reuse it."""
    with _lock:
        return _engines.get(url)


def _prepare_sqlite(parsed: URL, kwargs: dict[str, Any]) -> None:
    """Engine arguments for a SQLite URL; creates a new file's folder (0700) and the file (0600)."""
    database = parsed.database
    if database in (None, "", ":memory:") or (_is_uri_filename(parsed) and "mode=memory" in str(parsed)):
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        return
    kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    if _is_uri_filename(parsed) or str(database).startswith("file:"):
        if not _is_uri_filename(parsed):
            raise StoreURLError(
                f"the SQLite store {mask_url(parsed)!r} names a URI filename (file:...) but does not say "
                f"uri=true; write sqlite:///file:/path/to/tasks.db?mode=ro&uri=true for a URI filename, or "
                f"sqlite:////path/to/tasks.db for a plain path")
        return  # SQLite opens the URI itself: no folder to create, and a read-only one must stay untouched
    path = Path(database)
    if _looks_remote(path):
        import warnings

        warnings.warn(f"SQLite file {path} seems to be on a network drive; SQLite locking is "
                      "unreliable there (\"database is locked\"). Use a local path or PostgreSQL.",
                      stacklevel=4)
    create_private_file(path)


def create_private_file(path: Path) -> None:
    """Create ``path``'s missing folders (0700) and the empty file (0600), only when they do not exist yet.

    Existing folders and files keep their modes: a user's own file is never chmod-ed.
    """
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _has_psycopg3() -> bool:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


def _looks_remote(path: Path) -> bool:
    try:
        resolved = str(path.resolve())
        with open("/proc/mounts") as fh:
            best, fstype = "", ""
            for line in fh:
                parts = line.split()
                if len(parts) > 2 and resolved.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, fstype = parts[1], parts[2]
        return fstype in {"nfs", "nfs4", "cifs", "smbfs", "sshfs", "fuse.sshfs", "9p"}
    except OSError:
        return False


def ensure_schema(engine: Engine, model: type | None = None) -> None:
    """Create the task table if missing; add nullable columns a custom TaskModel declares.

    Any other mismatch raises SchemaMismatchError naming the table, the column and the fix, before
    anything is altered: a model column that is not nullable and missing from the store, or a
    required (NOT NULL, no default) store column the model lacks. Several processes may open a new
    store at once: losing a race to create a table, add a column or record the version is fine.
    """
    model = model or get_task_model_class()
    key = (id(engine), id(model.__table__), len(model.__table__.columns))
    if key in _schema_checked:
        return
    _race_tolerant(lambda: Base.metadata.create_all(engine),
                   lambda: all(_has_table(engine, t.name) for t in Base.metadata.sorted_tables))
    table = model.__table__
    stored = {c["name"]: c for c in inspect(engine).get_columns(TABLE_NAME)}
    missing = [c for c in table.columns if c.name not in stored]
    for column in missing:
        if not column.nullable or column.primary_key:
            raise SchemaMismatchError(
                f"Table {TABLE_NAME!r} in the store has no column {column.name!r}, and it cannot be added "
                f"automatically because it is not nullable. Make it nullable=True in {model.__name__}, or "
                f"add it yourself: ALTER TABLE {TABLE_NAME} ADD COLUMN {column.name} ...")
    declared = {c.name for c in table.columns}
    for name, info in stored.items():
        if name not in declared and not info.get("nullable", True) and info.get("default") is None \
                and not info.get("autoincrement") is True:
            raise SchemaMismatchError(
                f"Table {TABLE_NAME!r} in the store has a required column {name!r} (NOT NULL, no default) that "
                f"{model.__name__} does not declare, so no task could be inserted. Call set_task_model_class() "
                f"with the model that created this store (one that declares {name!r}), or use another store URL.")
    for column in missing:
        coltype = column.type.compile(dialect=engine.dialect)

        def add(column: Any = column, coltype: str = coltype) -> None:
            with engine.begin() as conn:  # one transaction per column: a lost race aborts only its own
                conn.execute(text(f'ALTER TABLE {TABLE_NAME} ADD COLUMN "{column.name}" {coltype}'))

        _race_tolerant(add, lambda name=column.name: name in {c["name"] for c in inspect(engine).get_columns(TABLE_NAME)})
        for index in table.indexes:
            if [c.name for c in index.columns] == [column.name]:
                _race_tolerant(lambda index=index: index.create(engine, checkfirst=True),
                               lambda name=index.name: name in {i["name"] for i in inspect(engine).get_indexes(TABLE_NAME)})
    _race_tolerant(lambda: _record_schema_version(engine), lambda: _schema_version(engine) is not None)
    _schema_checked.add(key)
    if id(engine) not in _recovered:
        _recovered.add(id(engine))
        from apflow_nb.core.storage.recovery import recover_orphans

        ids = recover_orphans(engine, model)
        if ids:
            import logging

            logging.getLogger("apflow_nb.storage").warning(
                "apflow_nb: %d task(s) left in_progress by a process that died were marked failed", len(ids))


def _race_tolerant(step: Any, done: Any, attempts: int = 5) -> None:
    """Run a DDL ``step``; when it fails because another process did the same thing first
    (``done()`` is then true), carry on. Retried a few times for half-finished races."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            step()
            return
        except DBAPIError:
            try:
                if done():
                    return
            except DBAPIError:
                pass
            if attempt == attempts - 1:
                raise
            import time

            time.sleep(0.05 * (attempt + 1))


def _has_table(engine: Engine, name: str) -> bool:
    return inspect(engine).has_table(name)


def _schema_version(engine: Engine) -> str | None:
    if not inspect(engine).has_table("apflow_meta"):
        return None
    with engine.connect() as conn:
        return conn.execute(text("SELECT value FROM apflow_meta WHERE key = 'schema_version'")).scalar()


def _record_schema_version(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS apflow_meta (key VARCHAR(64) PRIMARY KEY, value VARCHAR(255))"))
        row = conn.execute(text("SELECT value FROM apflow_meta WHERE key = 'schema_version'")).first()
        if row is None:
            conn.execute(text("INSERT INTO apflow_meta (key, value) VALUES ('schema_version', :v)"),
                         {"v": str(SCHEMA_VERSION)})


def create_session(url: str | None = None, **engine_kwargs: Any) -> Session:
    """A SQLAlchemy Session on ``url`` (default: the embedded SQLite file), with the table ready.

    Objects stay readable after commit (``expire_on_commit=False``), so task rows handed to
    notebooks keep their values without a round trip per attribute.
    """
    engine = get_engine(url, **engine_kwargs)
    if engine.dialect.name == "duckdb":  # before any table is created in it
        raise StoreURLError(
            f"{mask_url(engine.url)!r} is a DuckDB file: apflow_nb reads the original project's DuckDB stores "
            f"(history('duckdb:///path')) but runs and stores tasks only in SQLite or PostgreSQL. Use "
            f"create_session('sqlite:///path/to/tasks.db') or create_session('postgresql://user:password@host/db').")
    ensure_schema(engine)
    return Session(bind=engine, expire_on_commit=False)


def dispose_engines() -> None:
    """Close every cached engine (tests and long-lived kernels switching stores)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _schema_checked.clear()
        _recovered.clear()
