"""The embedded store: default location, URLs, WAL, custom models on existing stores."""
from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import Column, String, text

from apflow_nb import TaskManager, TaskTreeNode, create_session, executor_register, set_task_model_class
from apflow_nb.core.errors import UnknownTaskFieldError
from apflow_nb.core.storage.sqlalchemy.models import TaskModel


def test_default_store_is_dot_apflow_in_cwd(in_tmp_cwd):
    session = create_session()
    assert (in_tmp_cwd / ".apflow" / "tasks.db").is_file()
    assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    session.close()


def test_env_url_overrides_default(in_tmp_cwd, monkeypatch):
    target = in_tmp_cwd / "elsewhere.db"
    monkeypatch.setenv("APFLOW_NB_DATABASE_URL", f"sqlite:///{target}")
    create_session().close()
    assert target.is_file() and not (in_tmp_cwd / ".apflow").exists()


@pytest.mark.asyncio
async def test_in_memory_store(in_tmp_cwd):
    @executor_register
    async def hello() -> dict:
        return {"hi": 1}

    db = create_session("sqlite://")
    manager = TaskManager(db)
    task = await manager.task_repository.create_task(name="hello")
    assert (await manager.distribute_task_tree(TaskTreeNode(task)))["result"] == {"hi": 1}
    assert not (in_tmp_cwd / ".apflow").exists()


@pytest.mark.asyncio
async def test_custom_model_columns_added_to_existing_store(store_url):
    db_url = store_url
    db = create_session(db_url)
    manager = TaskManager(db)
    old = await manager.task_repository.create_task(name="old", inputs={"keep": True})
    db.close()

    class Tagged(TaskModel):
        __tablename__ = "apflow_tasks"
        team = Column(String(50), nullable=True)

    set_task_model_class(Tagged)
    db = create_session(db_url)
    manager = TaskManager(db)
    new = await manager.task_repository.create_task(name="new", team="ml")
    rows = dict(db.execute(text("select name, team from apflow_tasks")).all())
    assert rows == {"old": None, "new": "ml"}
    assert db.get(Tagged, old.id).inputs == {"keep": True}
    assert db.execute(text("select value from apflow_meta where key='schema_version'")).scalar() == "1"
    with pytest.raises(UnknownTaskFieldError):
        await manager.task_repository.create_task(name="x", tem="typo")
    assert new.team == "ml"
    db.close()  # PostgreSQL: the fixture's DROP TABLE waits for every open transaction


def test_non_nullable_new_column_is_a_named_error(store_url):
    """Run in a fresh interpreter: the custom model changes the process-wide table definition."""
    db_url = store_url
    create_session(db_url).close()
    code = f"""
from sqlalchemy import Column, Integer
from apflow_nb import create_session, set_task_model_class
from apflow_nb.core.errors import SchemaMismatchError
from apflow_nb.core.storage.sqlalchemy.models import TaskModel

class Strict(TaskModel):
    __tablename__ = "apflow_tasks"
    budget = Column(Integer, nullable=False, default=0)

set_task_model_class(Strict)
try:
    create_session({db_url!r})
except SchemaMismatchError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'apflow_tasks'" in out and "'budget'" in out and "nullable=True" in out and "ALTER TABLE" in out


def test_import_pulls_no_notebook_modules():
    """Import time itself is measured by bench/core.py; here: what the import drags in."""
    code = ("import sys; import apflow_nb; "
            "from apflow_nb import ExecutableTask, BaseTask, executor_register; "
            "print([m for m in ('IPython','ipywidgets','pandas','sqlalchemy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = ("import sys, apflow_nb; apflow_nb.TaskManager; "
            "print([m for m in ('IPython','ipywidgets','pandas','sqlalchemy','pydantic') if m in sys.modules])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"  # the engine loads SQLAlchemy with the store
    code = ("import sys, apflow_nb; apflow_nb.TaskManager; apflow_nb.create_session; "
            "print([m for m in ('IPython','ipywidgets','pandas') if m in sys.modules])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_event_times_are_stored_as_the_datetime_they_stand_for():
    """The writer formats event timestamps (seconds since the epoch) itself, once per second: the text is
    exactly what ``datetime.fromtimestamp(t, utc)`` gives, to the microsecond (halves rounded to even)."""
    import random
    from datetime import datetime, timezone

    from apflow_nb.core.storage.batch_sql import _sqlite_time

    rng = random.Random(11)
    values = [rng.uniform(0, 4e9) for _ in range(20_000)]
    values += [1.7e9 + k / 1e6 + 0.5e-6 for k in range(2_000)]  # exact halves of a microsecond
    values += [1.7e9 + 0.9999995, 1.7e9 + 0.99999949, 0.0, 1.5, -1.25, 1.7e9]  # carry into the next second
    expected = [datetime.fromtimestamp(v, timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
                for v in values]
    assert [_sqlite_time(v) for v in values] == expected
    from datetime import timedelta

    moments = [datetime(1, 1, 1, tzinfo=timezone.utc), datetime(2026, 12, 3, 18, 0, 0, 0, timezone.utc),
               datetime(9999, 12, 31, 23, 59, 59, 999999, timezone.utc), datetime(2026, 1, 2, 3, 4, 5, 6),
               datetime(2026, 1, 2, 3, 4, 5, 6, timezone(timedelta(hours=-5, minutes=-30)))]
    assert [_sqlite_time(m) for m in moments] == [
        "0001-01-01 00:00:00.000000", "2026-12-03 18:00:00.000000", "9999-12-31 23:59:59.999999",
        "2026-01-02 03:04:05.000006", "2026-01-02 08:34:05.000006"]  # naive datetimes are UTC already


def test_the_strict_json_check_names_cycles_and_forgets_a_failed_value():
    """Results are checked by one C encoder per thread: a cycle is named, and an encoding that failed half
    way (its markers left behind) never makes the next value that shares an object look circular."""
    import threading

    from apflow_nb.core.storage.json_text import strict

    shared = {"k": [1, 2]}
    loop: dict = {}
    loop["self"] = loop
    assert strict(loop) == (None, "ValueError: Circular reference detected")
    box = {"x": [object()]}
    assert strict(box)[1] == "TypeError: Object of type object is not JSON serializable"  # fails inside box
    box["x"] = [1]
    assert strict(box) == ('{"x":[1]}', None)  # the same dict again: not taken for a cycle
    assert strict({"again": shared, "twice": shared}) == ('{"again":{"k":[1,2]},"twice":{"k":[1,2]}}', None)
    assert strict({"é": "☃"}) == ('{"é":"☃"}', None)
    problems = []

    def check() -> None:
        for _ in range(2_000):
            text, problem = strict({"a": shared, "b": [shared]})
            if problem:
                problems.append(problem)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []


def test_upserts_replace_rows_through_both_write_paths(store_url):
    """Cache entries go in by upsert: one ``json_each`` statement per chunk on SQLite while the loop is busy,
    ``executemany`` otherwise (PostgreSQL: always). Both insert new keys and replace existing ones, and the
    writer's tag on a row is not taken for a column."""
    from sqlalchemy import select

    from apflow_nb.core.storage.batch_sql import BatchWriter
    from apflow_nb.core.storage.cache import entry_row
    from apflow_nb.core.storage.json_text import Encoded
    from apflow_nb.core.storage.sqlalchemy.models import cache_table

    engine = create_session(store_url).get_bind()
    writer = BatchWriter(engine, cache_table)

    def rows(prefix: str, n: int, value: int) -> list[dict]:
        out = [entry_row(f"{prefix}{i}", "ex", "f" * 32, Encoded(f'{{"v":{value},"i":{i}}}'), f"t{i}", None)
               for i in range(n)]
        for row in out:
            row["_upsert"] = (cache_table, "key")
        return out

    for busy in (True, False):
        writer._json_until = 1e18 if busy else 0.0  # as after the writer saw the loop busy, or idle
        for value in (1, 2):  # the second round replaces every row of the first
            with engine.begin() as conn:
                writer.upsert_rows(conn, cache_table, rows(f"{busy}-", 100, value), "key")
    with engine.connect() as conn:
        stored = {k: (r, t) for k, r, t in conn.execute(
            select(cache_table.c.key, cache_table.c.result, cache_table.c.task_id))}
    for busy in (True, False):
        assert {k: v for k, v in stored.items() if k.startswith(f"{busy}-")} == {
            f"{busy}-{i}": ({"v": 2, "i": i}, f"t{i}") for i in range(100)}
