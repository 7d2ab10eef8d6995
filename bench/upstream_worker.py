"""Runs one workload through the ORIGINAL aipartnerupflow 0.9.0, inside bench/.venv-upstream only.

    .venv-upstream/bin/python bench/upstream_worker.py SHAPE N

Prints one JSON line: seconds to create and to run the tree, and the statuses the store holds.
It uses the original's public API as documented; nothing of it is imported by apflow_nb.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("AIPARTNERUPFLOW_DB_PATH", os.path.join(tempfile.mkdtemp(prefix="upstream-bench-"),
                                                              "aipartnerupflow.duckdb"))
import logging  # noqa: E402

logging.disable(logging.CRITICAL)  # its INFO logging would dominate the timings

from aipartnerupflow import BaseTask, TaskManager, create_session, executor_register  # noqa: E402
from aipartnerupflow.core.execution.task_creator import TaskCreator  # noqa: E402


@executor_register()
class Noop(BaseTask):
    id = "bench_noop"
    name = "bench noop"
    type = "bench"

    async def execute(self, inputs):
        return {"ok": True}

    def get_input_schema(self):
        return {}


def specs(shape: str, n: int) -> list[dict]:
    method = {"method": "bench_noop"}  # the original picks the executor by schemas.method, not by name
    if shape == "flat":
        out = [{"id": "root", "name": "root", "schemas": method}]
        out += [{"id": f"t{i}", "name": f"t{i}", "parent_id": "root", "schemas": method} for i in range(n)]
    elif shape == "chain":
        out = [{"id": "t0", "name": "t0", "schemas": method}]
        out += [{"id": f"t{i}", "name": f"t{i}", "parent_id": "t0", "schemas": method,
                 "dependencies": [{"id": f"t{i - 1}", "required": True}]} for i in range(1, n)]
    else:  # fanin
        out = [{"id": "root", "name": "root", "schemas": method,
                "dependencies": [{"id": f"t{i}", "required": True} for i in range(n)]}]
        out += [{"id": f"t{i}", "name": f"t{i}", "parent_id": "root", "schemas": method} for i in range(n)]
    return out


async def main(shape: str, n: int) -> dict:
    db = create_session()
    t0 = time.perf_counter()
    tree = await TaskCreator(db).create_task_tree_from_array(specs(shape, n))
    create_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    await TaskManager(db).distribute_task_tree(tree)
    run_s = time.perf_counter() - t0
    from sqlalchemy import text

    rows = db.execute(text("select status, count(*) from apflow_tasks group by status")).all()
    return {"shape": shape, "n": n, "tasks": len(specs(shape, n)), "create_s": create_s, "run_s": run_s,
            "statuses": {r[0]: r[1] for r in rows}}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2])))))
