"""tests/pg_server.py starts a real PostgreSQL server, which answers a query, and stops it, removing its files."""
from __future__ import annotations

import glob
import os
import tempfile

import pytest

from tests.pg_server import start_postgres

pytestmark = pytest.mark.postgres


def _server_dirs() -> set[str]:
    return {p for d in {tempfile.gettempdir(), "/tmp"} for p in glob.glob(os.path.join(d, "apflow-pg-*"))}


@pytest.fixture(scope="session")
def _pg_url_smoke():
    """A server of its own for this file (the suite's shared one is conftest.py's pg_server_url)."""
    before = _server_dirs()
    try:
        url, stop = start_postgres()
    except Exception as exc:  # fail, never skip: a missing server must not pass silently
        pytest.fail(f"PostgreSQL is needed for this test: {exc}", pytrace=False)
    ours = _server_dirs() - before
    yield url
    stop()
    stop()  # a second stop is harmless
    assert not any(os.path.exists(d) for d in ours), f"stop() left the server's files behind: {ours}"


def test_server_answers_select_1(_pg_url_smoke):
    import psycopg

    assert _pg_url_smoke.startswith("postgresql+psycopg://")
    conninfo = _pg_url_smoke.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        if not os.environ.get("APFLOW_NB_TEST_PG_URL"):
            assert conn.execute("select current_database()").fetchone() == ("apflow_test",)
