"""Runs one workload through the ORIGINAL aipartnerupflow 0.9.0; only ever run by bench/.venv-upstream/bin/python.

    HOME=<empty temp dir> bench/.venv-upstream/bin/python bench/upstream_worker.py SHAPE N

bench/upstream.py starts it that way. The workload is bench/core.py's ``build_specs(shape, n)`` (the very
trees apflow_nb runs), written in the original's task-array format: dependencies as
``{"id": ..., "required": True}``, and the executor chosen the way 0.9.0 chooses it
(``params.executor_id`` -> ``schemas.method`` -> ``schemas.type``; never the task name), so ``noop``
tasks get a trivial executor registered here and the fan-in aggregator gets the original's own
``aggregate_results_executor``.

The store is the original's default: ``create_session()`` with no argument opens the DuckDB file
``~/.aipartnerup/data/aipartnerupflow.duckdb`` unless ``AIPARTNERUPFLOW_DB_PATH`` is set (read from its
``core/storage/factory.py``: ``_get_default_db_path``). The parent points HOME at a fresh temp directory
and removes that variable, so the default code path runs against a fresh file and the user's home is
never touched. Logging is left at the original's default (ERROR, to stdout).

While running, each execution of the trivial executor writes ``progress <done> <seconds>`` to stderr
(so a run that is cut off still says how far it got). At the end one line
``BENCH-RESULT {json}`` goes to stdout: timings, the tree status the original computes, the statuses
its store holds, how often each task's executor ran, and anything it logged at ERROR.
Nothing here is imported by apflow_nb; nothing of the original is copied into apflow_nb.
"""
from __future__ import annotations

import asyncio
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from core import build_specs  # noqa: E402  (stdlib-only module: the shared workload definition)

from aipartnerupflow import BaseTask, TaskManager, create_session, executor_register  # noqa: E402
from aipartnerupflow.core.execution.task_creator import TaskCreator  # noqa: E402

EXECUTIONS: collections.Counter = collections.Counter()
START = [0.0]


@executor_register()
class BenchNoop(BaseTask):
    """The trivial executor: returns at once."""

    id = "bench_noop"
    name = "bench noop"
    type = "bench"

    def __init__(self, inputs=None, **kwargs):
        super().__init__(inputs=inputs, **kwargs)
        task = kwargs.get("task")
        self._bench_task_id = str(task.id) if task is not None else None

    async def execute(self, inputs):
        EXECUTIONS[self._bench_task_id] += 1
        done = sum(EXECUTIONS.values())
        sys.stderr.write(f"progress {done} {time.perf_counter() - START[0]:.2f}\n")
        sys.stderr.flush()
        return {"ok": True}

    def get_input_schema(self):
        return {}


def to_upstream(specs: list[dict]) -> list[dict]:
    """bench/core.py specs -> the original's task array (same ids, tree and dependencies)."""
    out = []
    for spec in specs:
        executor = "aggregate_results_executor" if spec["name"] == "aggregate_results_executor" else "bench_noop"
        task = {"id": spec["id"], "name": spec["id"], "schemas": {"method": executor}}
        if spec.get("parent_id"):
            task["parent_id"] = spec["parent_id"]
        if spec.get("dependencies"):
            task["dependencies"] = [d if isinstance(d, dict) else {"id": d, "required": True}
                                    for d in spec["dependencies"]]
        out.append(task)
    return out


async def main(shape: str, n: int) -> dict:
    specs = to_upstream(build_specs(shape, n))
    ids = [s["id"] for s in specs]
    noop_ids = {s["id"] for s in specs if s["schemas"]["method"] == "bench_noop"}
    db = create_session()  # the original's default store
    out: dict = {"shape": shape, "n": n, "tasks": len(specs), "store": str(db.get_bind().url)}
    t0 = time.perf_counter()
    tree = await TaskCreator(db).create_task_tree_from_array(specs)
    out["create_s"] = time.perf_counter() - t0
    START[0] = t0 = time.perf_counter()
    node = await TaskManager(db).distribute_task_tree(tree)
    out["run_s"] = time.perf_counter() - t0
    out["tree_status"] = node.calculate_status()

    from sqlalchemy import text

    rows = db.execute(text("select id, status, error, result from apflow_tasks")).all()
    out["stored_ids_match"] = sorted(str(r[0]) for r in rows) == sorted(ids)
    out["statuses"] = dict(collections.Counter(r[1] for r in rows))
    out["task_errors"] = [f"{r[0]}: {r[2]}"[:300] for r in rows if r[2]][:3]
    out["executions"] = sum(EXECUTIONS.values())
    out["executed_more_than_once"] = sorted(k for k, v in EXECUTIONS.items() if v > 1)[:10]
    out["never_executed"] = sorted(noop_ids - set(EXECUTIONS))[:10]
    checks = [out["statuses"] == {"completed": len(specs)}, out["stored_ids_match"], out["tree_status"] == "completed",
              not out["executed_more_than_once"], not out["never_executed"]]
    if shape == "fanin":  # the aggregator must have seen every dependency's result
        result = next((r[3] for r in rows if r[0] == "root"), None)
        if isinstance(result, str):
            result = json.loads(result)
        out["aggregated"] = (result or {}).get("result_count") if isinstance(result, dict) else None
        checks.append(out["aggregated"] == n)
    out["ok"] = all(checks)
    return out


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    print("BENCH-RESULT " + json.dumps(result), flush=True)
