"""Reading an original aipartnerupflow DuckDB store read-only, and several processes writing one
SQLite file at once without losing anything or showing "database is locked"."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import duckdb
import pandas as pd
import pytest
from sqlalchemy import text

import apflow_nb
from apflow_nb import create_session
from apflow_nb.analysis.stores import dispose_stores

# apflow_tasks as aipartnerupflow 0.9.0 creates it in its default DuckDB store (read from a file it
# wrote): no root_id or owner, progress DECIMAL(3,2), TIMESTAMP WITH TIME ZONE, this column order.
ORIGINAL_DDL = """
CREATE TABLE apflow_tasks (
    id VARCHAR PRIMARY KEY, parent_id VARCHAR, user_id VARCHAR, name VARCHAR NOT NULL, status VARCHAR,
    priority INTEGER, dependencies JSON, inputs JSON, params JSON, result JSON, error VARCHAR, schemas JSON,
    progress DECIMAL(3,2), created_at TIMESTAMP WITH TIME ZONE, started_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE, completed_at TIMESTAMP WITH TIME ZONE, has_children BOOLEAN,
    original_task_id VARCHAR, has_copy BOOLEAN)
"""
T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
# id, parent, name, status, priority, inputs, params, result, schemas, error, progress, start s, end s
ORIGINAL_ROWS = [
    ("r", None, "aggregate_results_executor", "completed", 1, {}, {"executor_id": "aggregate_results_executor"},
     {"result_count": 2}, None, None, 1.0, 0, 5),
    ("a", "r", "fetch", "completed", 1, {"url": "https://x"}, None, {"result": {"size": 10}}, {"method": "http_get"},
     None, 1.0, 1, 3),
    ("b", "a", "parse", "failed", 2, {"mode": "strict"}, None, None, None, "bad html", 0.5, 2, 4),
    ("c", "r", "notify", "pending", 1, None, None, None, {"method": "send_mail", "type": "stdio"}, None, 0.0,
     None, None),
    ("lone", None, "other run", "completed", 0, {"n": 1}, None, 7, None, None, 1.0, 10, 11),
]


def build_original_store(path, leave_wal: bool = True) -> None:
    con = duckdb.connect(str(path))
    if leave_wal:  # as a process that did not shut down cleanly leaves it: the last writes only in the WAL
        con.execute("PRAGMA disable_checkpoint_on_shutdown")
        con.execute("SET checkpoint_threshold = '1TB'")
    con.execute(ORIGINAL_DDL)
    for row in ORIGINAL_ROWS:
        tid, parent, name, status, prio, inputs, params, result, schemas, error, progress, start, end = row
        times = [T0 + timedelta(seconds=s) if s is not None else None for s in (start, end)]
        con.execute("INSERT INTO apflow_tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [tid, parent, "u1", name, status, prio, "null", None if inputs is None else json.dumps(inputs),
                     None if params is None else json.dumps(params), None if result is None else json.dumps(result),
                     error, None if schemas is None else json.dumps(schemas), progress,
                     T0 + timedelta(milliseconds=len(tid)), times[0], T0, times[1], tid == "r", None, False])
    con.close()


def files_of(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.name.startswith(path.name)}


def test_reads_an_original_duckdb_store_read_only(tmp_path):
    path = tmp_path / "their.duckdb"
    build_original_store(path)
    before = files_of(path)
    assert set(before) == {"their.duckdb", "their.duckdb.wal"}
    url = f"duckdb:///{path}"
    try:
        frame = apflow_nb.history(url).set_index("task_id")
        assert set(frame.index) == {"r", "a", "b", "c", "lone"}
        assert frame.loc["b", "root_id"] == "r" and frame.loc["b", "depth"] == 2 and frame.loc["a", "depth"] == 1
        assert frame.loc["lone", "root_id"] == "lone" and frame.loc["lone", "depth"] == 0
        assert frame.loc["a", "executor"] == "http_get" and frame.loc["r", "executor"] == "aggregate_results_executor"
        assert frame.loc["c", "executor"] == "send_mail" and frame.loc["b", "executor"] == "parse"
        assert frame.loc["a", "result.result.size"] == 10 and frame.loc["b", "inputs.mode"] == "strict"
        assert frame.loc["lone", "result"] == 7
        assert frame.loc["b", "duration_s"] == 2.0 and frame.loc["b", "error"] == "bad html"
        assert frame.loc["b", "progress"] == 0.5 and str(frame["progress"].dtype) == "float64"  # DECIMAL(3,2)
        assert frame.loc["a", "started_at"] == pd.Timestamp(T0 + timedelta(seconds=1))
        assert str(frame["started_at"].dtype) == "datetime64[us, UTC]" and pd.isna(frame.loc["c", "started_at"])
        assert frame.loc["lone", "priority"] == 0
        tree = apflow_nb.history(url, root_id="r")
        assert list(tree["task_id"]) == ["r", "a", "b", "c"] and list(tree["depth"]) == [0, 1, 2, 1]
        assert list(apflow_nb.history(url, status="failed")["task_id"]) == ["b"]
        assert list(apflow_nb.history(url, executor="http_get")["task_id"]) == ["a"]
        assert set(apflow_nb.history(url, since=T0 + timedelta(milliseconds=2))["task_id"]) == {"lone"}
        assert len(apflow_nb.history(url, limit=2)) == 2
        assert apflow_nb.events(url).empty  # the original keeps no event log
        # the engine history() uses cannot write
        from apflow_nb.analysis.stores import resolve_engine

        with pytest.raises(Exception, match="read-only"):
            with resolve_engine(url).begin() as conn:
                conn.execute(text("UPDATE apflow_tasks SET status = 'x'"))
        assert files_of(path) == before  # nothing written: neither the database nor its WAL
        # between calls nothing is held open: the original app can open its store for writing
        writer = subprocess.run([sys.executable, "-c", f"import duckdb; c = duckdb.connect({str(path)!r}); "
                                 "print(c.execute('select count(*) from apflow_tasks').fetchone()[0])"],
                                capture_output=True, text=True, timeout=60)
        assert writer.returncode == 0 and writer.stdout.strip() == str(len(ORIGINAL_ROWS)), writer.stderr
    finally:
        dispose_stores()


def test_duckdb_store_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no DuckDB store"):
        apflow_nb.history(f"duckdb:///{tmp_path / 'missing.duckdb'}")
    assert not (tmp_path / "missing.duckdb").exists()
    path = tmp_path / "busy.duckdb"
    build_original_store(path, leave_wal=False)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(path)!r}); "
                               "print('open', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(RuntimeError, match="open for writing in another process"):
            apflow_nb.history(f"duckdb:///{path}")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    try:  # once the writer is gone the same URL works
        assert len(apflow_nb.history(f"duckdb:///{path}")) == len(ORIGINAL_ROWS)
    finally:
        dispose_stores()



def test_a_duckdb_file_is_not_taken_as_a_store_to_run_in(tmp_path):
    """DuckDB files are read (history), never written: creating a session on one is a named error before any
    table is created, an original store in it stays as it was, and the process goes on with a SQLite store."""
    from apflow_nb.core.storage.urls import StoreURLError

    path = tmp_path / "original.duckdb"
    build_original_store(path, leave_wal=False)
    with pytest.raises(StoreURLError, match="DuckDB file.*only in SQLite or PostgreSQL"):
        create_session(f"duckdb:///{path}")
    with pytest.raises(StoreURLError, match="DuckDB file"):
        create_session(f"duckdb:///{tmp_path / 'new.duckdb'}")
    try:
        conn = duckdb.connect(str(path), read_only=True)
        assert [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()] == [
            "apflow_tasks"]
        conn.close()
        assert len(apflow_nb.history(f"duckdb:///{path}")) == len(ORIGINAL_ROWS)
    finally:
        dispose_stores()
    assert create_session(f"sqlite:///{tmp_path / 'tasks.db'}").get_bind().dialect.name == "sqlite"

WRITER = textwrap.dedent('''
    import asyncio, sys, time
    from apflow_nb import ExecutableTask, TaskManager, TaskTreeNode, create_session, executor_register

    class Tick(ExecutableTask):
        id = "tick"
        async def execute(self, inputs):
            await asyncio.sleep(0.001)
            return {"i": inputs["i"]}

    executor_register(Tick)

    async def main(url, prefix, seconds):
        manager = TaskManager(create_session(url), flush_interval=0.005)
        deadline, trees = time.time() + seconds, 0
        while time.time() < deadline:
            specs = [{"id": f"{prefix}-{trees}-root", "name": "aggregate_results_executor",
                      "dependencies": [f"{prefix}-{trees}-{i}" for i in range(20)]}]
            specs += [{"id": f"{prefix}-{trees}-{i}", "name": "tick", "parent_id": f"{prefix}-{trees}-root",
                       "inputs": {"i": i}} for i in range(20)]
            tree = await manager.task_repository.create_task_tree_from_array(specs)
            await manager.distribute_task_tree(tree)
            assert tree.tree_status == "completed", tree.tree_status
            trees += 1
        print(trees)

    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
''')


def test_concurrent_writers_lose_nothing(tmp_path):
    """Four processes run trees against one SQLite file for 30 s while this one reads history()
    and events(): every task is there, final, and no error ("database is locked" included)
    reached any of them."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    create_session(url).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"p{i}", "30"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    seen, reads = 0, 0
    while any(p.poll() is None for p in procs):  # a reader beside the writers: never an error, never fewer rows
        done = apflow_nb.history(url, status="completed", flatten=False)
        assert len(done) >= seen
        seen = len(done)
        apflow_nb.events(url, types="task_completed", limit=50)
        reads += 1
        time.sleep(0.2)
    trees = 0
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "Traceback" not in err, err
        trees += int(out.strip())
    db = create_session(url)
    counts = dict(db.execute(text("select status, count(*) from apflow_tasks group by status")).all())
    assert counts == {"completed": trees * 21}, counts
    events = db.execute(text("select count(*) from apflow_task_events where event_type = 'task_completed'")).scalar()
    assert events == trees * 21
    db.close()
    assert trees >= 40 and reads >= 20
    frame = apflow_nb.history(url)
    assert len(frame) == trees * 21 and (frame["depth"] <= 1).all()
    assert frame.groupby("root_id").size().eq(21).all() and len(set(frame["root_id"])) == trees
