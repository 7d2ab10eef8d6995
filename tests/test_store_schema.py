"""Schema changes on a real store (a SQLite file and the live PostgreSQL): a custom TaskModel's
nullable columns are added to an existing table with every stored row intact; any other mismatch
is a SchemaMismatchError naming the table, the column and the fix; the schema version is recorded;
several processes opening a new store at once all succeed."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from sqlalchemy import JSON, Column, DateTime, Integer, String, create_engine, event, inspect, text

import apflow_nb
from apflow_nb import TaskManager, create_session, set_task_model_class
from apflow_nb.core.errors import SchemaMismatchError
from apflow_nb.core.storage.session import dispose_engines, ensure_schema
from apflow_nb.core.storage.sqlalchemy.models import SCHEMA_VERSION, TaskModel


def stored_rows(url: str) -> dict[str, dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM apflow_tasks")).mappings().all()
    finally:
        engine.dispose()
    return {r["id"]: dict(r) for r in rows}


def stored_columns(url: str) -> dict[str, dict]:
    engine = create_engine(url)
    try:
        return {c["name"]: c for c in inspect(engine).get_columns("apflow_tasks")}
    finally:
        engine.dispose()


async def fill_store(url: str) -> list[str]:
    db = create_session(url)
    repo = TaskManager(db).task_repository
    root = await repo.create_task(name="root", user_id="u1", inputs={"a": [1, 2], "nested": {"b": "c"}},
                                  params={"executor_id": "x"}, priority=0)
    child = await repo.create_task(name="child", parent_id=root.id, inputs={"n": 1.5}, schemas={"method": "m"})
    await repo.update_task(child.id, status="completed", result={"ok": True}, progress=1.0)
    db.close()
    dispose_engines()
    return [root.id, child.id]


async def test_nullable_columns_are_added_and_rows_survive(store_url):
    ids = await fill_store(store_url)
    before = stored_rows(store_url)

    class Team(TaskModel):
        __tablename__ = "apflow_tasks"
        team = Column(String(40), nullable=True)
        budget = Column(Integer, nullable=True, index=True)
        labels = Column(JSON, nullable=True)
        reviewed_at = Column(DateTime(timezone=True), nullable=True)

    set_task_model_class(Team)
    db = create_session(store_url)
    columns = stored_columns(store_url)
    assert {"team", "budget", "labels", "reviewed_at"} <= set(columns)
    assert all(columns[c]["nullable"] for c in ("team", "budget", "labels", "reviewed_at"))
    engine = create_engine(store_url)
    assert any(ix["column_names"] == ["budget"] for ix in inspect(engine).get_indexes("apflow_tasks"))
    engine.dispose()
    after = stored_rows(store_url)
    assert set(after) == set(ids)
    for task_id in ids:  # every old value is still there, the new columns are empty
        assert {k: v for k, v in after[task_id].items() if k in before[task_id]} == before[task_id]
        assert [after[task_id][c] for c in ("team", "budget", "labels", "reviewed_at")] == [None] * 4
    new = await TaskManager(db).task_repository.create_task(name="new", team="ml", budget=3, labels=["a"])
    db.close()
    frame = apflow_nb.history(store_url).set_index("task_id")
    assert frame.loc[new.id, ["team", "budget"]].tolist() == ["ml", 3]
    assert frame.loc[new.id, "labels"] == ["a"] and pd.isna(frame.loc[ids[0], "team"])
    assert frame.loc[ids[1], "result.ok"] == True  # noqa: E712 - numpy bool
    assert frame.loc[ids[0], "inputs.nested.b"] == "c" and frame.loc[ids[0], "executor"] == "x"


async def test_not_nullable_column_is_a_named_error_and_nothing_changes(store_url):
    ids = await fill_store(store_url)
    before_rows, before_cols = stored_rows(store_url), set(stored_columns(store_url))

    class Strict(TaskModel):
        __tablename__ = "apflow_tasks"
        note = Column(String(40), nullable=True)
        cost = Column(Integer, nullable=False)

    set_task_model_class(Strict)
    with pytest.raises(SchemaMismatchError) as info:
        create_session(store_url)
    message = str(info.value)
    assert "'apflow_tasks'" in message and "'cost'" in message and "not nullable" in message
    assert "nullable=True in Strict" in message and "ALTER TABLE apflow_tasks ADD COLUMN cost" in message
    if store_url.startswith("postgresql"):  # DDL is transactional there: the nullable column was not kept
        assert set(stored_columns(store_url)) == before_cols
    assert "cost" not in stored_columns(store_url)
    assert stored_rows(store_url).keys() == set(ids)
    assert {k: stored_rows(store_url)[ids[0]][k] for k in before_rows[ids[0]]} == before_rows[ids[0]]


@pytest.mark.asyncio
async def test_a_required_column_the_model_lacks_is_a_named_error(store_url):
    """A store made by a model with a NOT NULL column, opened with a model without it."""
    code = textwrap.dedent(f"""
        from sqlalchemy import Column, Integer
        from apflow_nb import create_session, set_task_model_class
        from apflow_nb.core.storage.sqlalchemy.models import TaskModel

        class Costed(TaskModel):
            __tablename__ = "apflow_tasks"
            cost = Column(Integer, nullable=False)

        set_task_model_class(Costed)
        create_session({store_url!r}).close()
    """)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    with pytest.raises(SchemaMismatchError) as info:
        db = create_session(store_url)
        try:
            await TaskManager(db).task_repository.create_task(name="x")
        finally:
            db.close()
    message = str(info.value)
    assert "'apflow_tasks'" in message and "'cost'" in message and "set_task_model_class" in message


def test_schema_version_is_recorded_once(store_url):
    create_session(store_url).close()
    dispose_engines()
    create_session(store_url).close()  # opening again keeps one row
    engine = create_engine(store_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, value FROM apflow_meta")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("schema_version", str(SCHEMA_VERSION))]


# --- several processes opening a new store at once -------------------------------------------------
# Deterministic: a listener does what a second process would do, right between ensure_schema's
# check and its statement, through another connection.

def _other_process_first(url: str, engine, match: str, ddl) -> list[str]:
    """Before ``engine`` runs its first statement starting with ``match``, run ``ddl`` through
    another connection (as a second process would)."""
    done: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _race(conn, cursor, statement, parameters, context, executemany):
        if not done and statement.lstrip().upper().startswith(match):
            done.append(statement)
            other = create_engine(url)
            try:
                with other.begin() as c:
                    ddl(c)
            finally:
                other.dispose()

    return done


def test_losing_the_race_to_create_the_tables(store_url):
    engine = create_engine(store_url)
    done = _other_process_first(store_url, engine, "CREATE TABLE APFLOW_TASKS",
                                lambda c: TaskModel.__table__.create(c))
    try:
        ensure_schema(engine)
    finally:
        engine.dispose()
    assert done and "id" in stored_columns(store_url)


def test_losing_the_race_to_add_a_column(store_url):
    create_session(store_url).close()
    dispose_engines()

    class Extra(TaskModel):
        __tablename__ = "apflow_tasks"
        extra = Column(String(20), nullable=True)

    engine = create_engine(store_url)
    done = _other_process_first(store_url, engine, "ALTER TABLE APFLOW_TASKS ADD COLUMN",
                                lambda c: c.execute(text('ALTER TABLE apflow_tasks ADD COLUMN "extra" VARCHAR(20)')))
    try:
        ensure_schema(engine, Extra)
    finally:
        engine.dispose()
    assert done and "extra" in stored_columns(store_url)


def test_losing_the_race_to_record_the_version(store_url):
    engine = create_engine(store_url)
    with engine.begin() as conn:  # another process created apflow_meta and is about to record the version
        conn.execute(text("CREATE TABLE apflow_meta (key VARCHAR(64) PRIMARY KEY, value VARCHAR(255))"))
    done = _other_process_first(store_url, engine, "INSERT INTO APFLOW_META",
                                lambda c: c.execute(text("INSERT INTO apflow_meta (key, value) "
                                                         "VALUES ('schema_version', :v)"), {"v": str(SCHEMA_VERSION)}))
    try:
        ensure_schema(engine)
    finally:
        engine.dispose()
    assert done


OPENER = textwrap.dedent('''
    import asyncio, sys, time
    from apflow_nb import TaskManager, create_session
    url, start = sys.argv[1], float(sys.argv[2])
    while time.time() < start:
        time.sleep(0.001)
    db = create_session(url)
    asyncio.run(TaskManager(db).task_repository.create_task(name="hello"))
''')


def test_four_processes_open_a_new_store_at_once(store_url):
    start = time.time() + 2.5  # all four are importing by then and start together
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, store_url, str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode:
            errors.append(err.strip().splitlines()[-1])
    assert not errors, errors
    assert len(stored_rows(store_url)) == 4
