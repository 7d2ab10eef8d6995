"""Shared fixtures: a clean registry per test and real SQLite stores (files in tmp_path)."""
from __future__ import annotations

import pytest

from apflow_nb.core.extensions.registry import get_registry
from apflow_nb.core.storage.session import create_session, dispose_engines
from apflow_nb.core.storage.sqlalchemy.models import restore_task_table


@pytest.fixture(autouse=True)
def _clean_registry():
    """Each test starts with only the built-in executors and no hooks, storages or tools, and with
    the task table as the base TaskModel defines it (custom models extend it process-wide)."""
    get_registry().clear()
    restore_task_table()
    yield
    get_registry().clear()
    restore_task_table()


@pytest.fixture
def db_url(tmp_path):
    """A fresh SQLite file for one test."""
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    yield url
    dispose_engines()


@pytest.fixture
def db(db_url):
    session = create_session(db_url)
    yield session
    session.close()


@pytest.fixture
def manager(db):
    from apflow_nb import TaskManager

    return TaskManager(db, cancel_grace_period=1.0)


@pytest.fixture
def in_tmp_cwd(tmp_path, monkeypatch):
    """Run the test with the working directory in tmp_path and no store URL in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APFLOW_NB_DATABASE_URL", raising=False)
    yield tmp_path
    dispose_engines()


@pytest.fixture(scope="session")
def pg_server_url():
    """A real PostgreSQL server for the whole session (fails, never skips, when it cannot start)."""
    from tests.pg_server import start_postgres

    try:
        url, stop = start_postgres()
    except Exception as exc:
        pytest.fail(f"PostgreSQL is needed for this test: {exc}", pytrace=False)
    yield url
    dispose_engines()
    stop()


@pytest.fixture
def pg_url(pg_server_url):
    """The PostgreSQL store, emptied for each test."""
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_server_url)
    with engine.begin() as conn:
        conn.execute(text("SET lock_timeout = '30s'"))  # a leaked transaction fails here, it does not hang CI
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                   "AND tablename LIKE 'apflow%'")).scalars().all()
        if tables:
            conn.execute(text(f"DROP TABLE IF EXISTS {', '.join(tables)} CASCADE"))
    engine.dispose()
    dispose_engines()
    yield pg_server_url
    dispose_engines()
    engine = create_engine(pg_server_url)
    try:
        with engine.begin() as conn:  # a Session the test did not close still holds its transaction open
            leaked = conn.execute(text(
                "SELECT pid, left(query, 120) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'")).all()
            for pid, _ in leaked:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()
    if leaked:
        pytest.fail(f"the test left {len(leaked)} PostgreSQL transaction(s) open (close its sessions): "
                    f"{[q for _, q in leaked]}", pytrace=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The same test on a SQLite file and on the live PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tasks.db'}"
        dispose_engines()
    else:
        yield request.getfixturevalue("pg_url")
