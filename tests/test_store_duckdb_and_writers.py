"""Reading an original aipartnerupflow DuckDB store read-only, and several processes writing one
SQLite file at once without losing anything or showing "database is locked"."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta

import duckdb
from sqlalchemy import text

import apflow_nb
from apflow_nb import create_session

# the original project's apflow_tasks layout (its default store is a DuckDB file)
ORIGINAL_DDL = """
CREATE TABLE apflow_tasks (
    id VARCHAR PRIMARY KEY, parent_id VARCHAR, user_id VARCHAR, name VARCHAR NOT NULL, status VARCHAR,
    priority INTEGER, dependencies JSON, inputs JSON, params JSON, result JSON, schemas JSON, error VARCHAR,
    progress DOUBLE, has_children BOOLEAN, original_task_id VARCHAR, has_copy BOOLEAN,
    created_at TIMESTAMP, started_at TIMESTAMP, updated_at TIMESTAMP, completed_at TIMESTAMP)
"""


def test_reads_an_original_duckdb_store_read_only(tmp_path):
    path = tmp_path / "their.duckdb"
    con = duckdb.connect(str(path))
    con.execute(ORIGINAL_DDL)
    t0 = datetime(2025, 5, 1, 12, 0, 0)
    rows = [
        ("r", None, "u1", "aggregate_results_executor", "completed", 2, [{"id": "a", "required": True}], {},
         {"executor_id": "aggregate_results_executor"}, {"result_count": 1}, None, None, 1.0, True, 0, 5),
        ("a", "r", "u1", "fetch", "completed", 1, [], {"url": "https://x"}, None, {"result": {"size": 10}},
         {"method": "http_get"}, None, 1.0, False, 1, 3),
        ("b", "a", "u1", "parse", "failed", 2, [], {"mode": "strict"}, None, None, None, "bad html", 0.5, False, 2, 4),
    ]
    for (tid, parent, user, name, status, prio, deps, inputs, params, result, schemas, error, progress,
         has_children, start, end) in rows:
        con.execute("INSERT INTO apflow_tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [tid, parent, user, name, status, prio, json.dumps(deps), json.dumps(inputs),
                     json.dumps(params) if params else None, json.dumps(result) if result else None,
                     json.dumps(schemas) if schemas else None, error, progress, has_children, None, False,
                     t0, t0 + timedelta(seconds=start), t0, t0 + timedelta(seconds=end)])
    con.close()
    before = path.read_bytes()
    url = f"duckdb:///{path}"
    frame = apflow_nb.history(url).set_index("task_id")
    assert set(frame.index) == {"r", "a", "b"}
    assert frame.loc["b", "root_id"] == "r" and frame.loc["b", "depth"] == 2 and frame.loc["a", "depth"] == 1
    assert frame.loc["a", "executor"] == "http_get" and frame.loc["r", "executor"] == "aggregate_results_executor"
    assert frame.loc["a", "result.result.size"] == 10 and frame.loc["b", "inputs.mode"] == "strict"
    assert frame.loc["b", "duration_s"] == 2.0 and frame.loc["b", "error"] == "bad html"
    tree = apflow_nb.history(url, root_id="r")
    assert list(tree["task_id"]) == ["r", "a", "b"]
    assert list(apflow_nb.history(url, status="failed")["task_id"]) == ["b"]
    assert list(apflow_nb.history(url, executor="http_get")["task_id"]) == ["a"]
    assert path.read_bytes() == before  # opened read-only: nothing written
    from apflow_nb.analysis.stores import dispose_stores

    dispose_stores()


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
    """Four processes run trees against one SQLite file for 30 s: every task is there, final, and
    no error (\"database is locked\" included) reached any of them."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    create_session(url).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"p{i}", "30"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    trees = 0
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert "locked" not in err.lower(), err
        trees += int(out.strip())
    db = create_session(url)
    counts = dict(db.execute(text("select status, count(*) from apflow_tasks group by status")).all())
    assert counts == {"completed": trees * 21}, counts
    events = db.execute(text("select count(*) from apflow_task_events where event_type = 'task_completed'")).scalar()
    assert events == trees * 21
    db.close()
    assert trees >= 40
