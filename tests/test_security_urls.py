"""Store URLs with passwords: every form connects with its real password (the test server uses scram-sha-256),
no error or display ever repeats the password, SQLite URI filenames work, a new store is private (0700/0600)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import traceback
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from apflow_nb.core.storage.session import create_session, dispose_engines, get_engine
from apflow_nb.core.storage.urls import StoreURLError, mask_url, scrub

pytestmark = pytest.mark.postgres


def _password(url: str) -> str:
    password = make_url(url).password
    assert password and len(password) > 8, "the test server's URL must carry a password"
    return password


def _forms(url: str) -> list[str]:
    """The password URL the fixture gives, spelled every way a user may write it."""
    rest = url.split("://", 1)[1]
    return [f"postgresql+psycopg://{rest}", f"postgresql://{rest}", f"postgres://{rest}",
            f"postgresql://{rest}?connect_timeout=5&application_name=apflow-test",
            f"postgres://{rest}?sslmode=disable"]


def _full_text(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` shows, chained exceptions included."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _secret_forms(password: str) -> list[str]:
    return [password, quote(password, safe=""), quote(password)]


def test_the_test_server_refuses_a_wrong_or_missing_password(pg_server_url):
    import psycopg

    url = make_url(pg_server_url)
    _password(pg_server_url)  # an outside server (APFLOW_NB_TEST_PG_URL) must use passwords too
    base = dict(host=url.host, port=url.port, user=url.username, dbname=url.database, connect_timeout=5)
    with psycopg.connect(**base, password=url.password) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("show password_encryption").fetchone() == ("scram-sha-256",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**base, password="wrong")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(**base, password="")


@pytest.mark.parametrize("form", range(5))
def test_every_url_form_connects_with_its_real_password(pg_url, form):
    url = _forms(pg_url)[form]
    db = create_session(url)
    try:
        assert db.execute(text("select current_user")).scalar() == make_url(pg_url).username
    finally:
        db.close()
    assert "***" not in get_engine(url).url.password  # the engine holds the real password, not the mask


def test_errors_on_a_password_url_never_repeat_the_password(pg_server_url):
    password = _password(pg_server_url)
    rest = pg_server_url.split("://", 1)[1]
    host_part = rest.split("@", 1)[1]
    user = make_url(pg_server_url).username
    port = make_url(pg_server_url).port
    enc = quote(password, safe="")
    bad = {
        "wrong password": pg_server_url.replace(enc, quote(password + "WRONG", safe="")),
        "server down": f"postgresql://{user}:{enc}@127.0.0.1:1/apflow_test",
        "port not a number": f"postgresql://{user}:{enc}@127.0.0.1:notaport/apflow_test",
        "port out of range": f"postgresql://{user}:{enc}@127.0.0.1:99999/apflow_test",
        "unknown driver": f"nosuchdb://{user}:{enc}@{host_part}",
        "unknown psycopg option": f"postgresql://{user}:{enc}@{host_part}?nosuchoption=1",
        "unparsable": f"{user}:{password}@127.0.0.1:{port}",
        "unencoded password": f"postgresql://{user}:{password}@127.0.0.1:{port}/apflow_test",
    }
    for label, url in bad.items():
        with pytest.raises(Exception) as info:
            create_session(url).close()
        shown = _full_text(info.value)
        for secret in _secret_forms(password) + [password + "WRONG"]:
            assert secret not in shown, f"{label}: the error shows the password: {shown}"
        if label in ("port not a number", "port out of range", "unknown driver", "unparsable"):
            assert isinstance(info.value, StoreURLError), label
        if label == "unparsable":
            assert "could not be parsed" in str(info.value) and "postgresql://user:password@host" in str(info.value)
    dispose_engines()


def test_mask_url_and_scrub():
    url = "postgresql://ann:s3cr%40t@db.example:5432/tasks?sslmode=require"
    assert mask_url(url) == "postgresql://ann:***@db.example:5432/tasks?sslmode=require"
    assert mask_url("ann:s3cr@t@db") == "(a store URL that could not be parsed)"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert "s3cr@t" not in scrub("connection to 's3cr@t' failed") and "s3cr%40t" not in scrub("x s3cr%40t y")
    assert scrub("see mysql://bob:hunter2@h/db and password=hunter3 ok") == "see mysql://bob:***@h/db and password=*** ok"


def test_sqlite_uri_filename_opens_read_only_without_a_stray_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store" / "tasks.db"
    create_session(f"sqlite:///{store}").close()
    dispose_engines()
    before = store.read_bytes()
    url = f"sqlite:///file:{store}?mode=ro&uri=true"
    db = create_session(url)
    try:
        assert db.execute(text("select count(*) from apflow_tasks")).scalar() == 0
        with pytest.raises(Exception, match="readonly"):
            db.execute(text("insert into apflow_meta (key, value) values ('x', 'y')"))
        db.rollback()
    finally:
        db.close()
        dispose_engines()
    assert sorted(os.listdir(tmp_path)) == ["store"], "a URI filename must not create a folder named 'file:'"
    assert store.read_bytes() == before
    with pytest.raises(StoreURLError, match="uri=true"):
        create_session(f"sqlite:///file:{tmp_path / 'x.db'}")
    assert sorted(os.listdir(tmp_path)) == ["store"]


def test_a_new_default_store_is_private_and_an_existing_file_keeps_its_mode(in_tmp_cwd):
    script = ("import os, asyncio\nos.umask(0o022)\nfrom apflow_nb import TaskManager, TaskTreeNode, create_session\n"
              "async def main():\n    m = TaskManager(create_session())\n"
              "    t = await m.task_repository.create_task(name='aggregate_results_executor')\n"
              "    await m.distribute_task_tree(TaskTreeNode(t))\n"
              "    print(sorted(os.listdir('.apflow')), flush=True)\n"
              "    print({n: oct(os.stat('.apflow/' + n).st_mode & 0o777) for n in os.listdir('.apflow')})\n"
              "asyncio.run(main())\n")
    env = {k: v for k, v in os.environ.items() if k != "APFLOW_NB_DATABASE_URL"}
    out = subprocess.run([sys.executable, "-c", script], cwd=in_tmp_cwd, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    names, modes = out.stdout.splitlines()
    assert "tasks.db-wal" in names and "tasks.db-shm" in names  # the store was open in WAL mode when listed
    assert eval(modes) == {"tasks.db": "0o600", "tasks.db-wal": "0o600", "tasks.db-shm": "0o600"}  # noqa: S307
    assert stat.S_IMODE(os.stat(in_tmp_cwd / ".apflow").st_mode) == 0o700
    mine = in_tmp_cwd / "mine.db"
    mine.touch(mode=0o644)
    os.chmod(mine, 0o644)
    create_session(f"sqlite:///{mine}").close()
    assert stat.S_IMODE(os.stat(mine).st_mode) == 0o644  # a user's own file is never chmod-ed
