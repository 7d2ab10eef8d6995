"""Process A of the two-process tests: runs a tree on a store and tells the test what it did.

``python -m tests.remote_owner URL KIND [OUT.json] [--dask]``: stores a tree of KIND (see TREES),
prints ``root <id>`` once the run holds its lease and its first task started (in the steps and fails
trees that task then waits for a line on stdin: the test's watcher is ready), runs it to the end, then writes
the events it published on its own bus (type, task id, status, timestamp) to OUT.json and prints
``done <tree status>``. Executors: ``step`` (a few progress steps of ``ms`` each), ``slow``
(waits until cancelled, noting its ``cancel()`` call in the result), ``boom`` (raises).
"""
from __future__ import annotations

import asyncio
import json
import sys

from apflow_nb import BaseTask, TaskManager, create_session, executor_register, subscribe


GATE = asyncio.Event()  # a task with input gate=true waits for it (the test's go-ahead on stdin)


class Stepper(BaseTask):
    """Reports progress ``steps`` times, ``ms`` apart."""

    id = "stepper"

    async def execute(self, inputs: dict) -> dict:
        steps, ms = int(inputs.get("steps", 3)), int(inputs.get("ms", 40))
        if inputs.get("gate"):
            await GATE.wait()
        for i in range(steps):
            await asyncio.sleep(ms / 1000)
            await self.event_queue.put({"type": "progress", "data": {"progress": (i + 1) / steps}})
        return {"steps": steps}


class Slow(BaseTask):
    """Runs until cancelled (cooperatively: its checker, then ``cancel()``)."""

    id = "slow"

    async def execute(self, inputs: dict) -> dict:
        for _ in range(6000):
            if self.cancellation_checker and self.cancellation_checker():
                return {"status": "cancelled", "message": "stopped by its checker"}
            await asyncio.sleep(0.01)
        return {"never": True}


@executor_register
async def boom(message: str = "boom") -> dict:
    raise RuntimeError(message)


TREES = {
    "steps": [{"id": "root", "name": "aggregate_results_executor", "dependencies": ["a", "b", "c"]},
              {"id": "a", "name": "stepper", "parent_id": "root", "inputs": {"steps": 4, "ms": 60, "gate": True}},
              {"id": "b", "name": "stepper", "parent_id": "root", "dependencies": ["a"], "inputs": {"steps": 3}},
              {"id": "c", "name": "stepper", "parent_id": "root", "dependencies": ["a"], "inputs": {"steps": 5}}],
    "slow": [{"id": "root", "name": "aggregate_results_executor", "dependencies": ["s1", "s2"]},
             {"id": "s1", "name": "slow", "parent_id": "root"},
             {"id": "s2", "name": "slow", "parent_id": "root"}],
    "fails": [{"id": "root", "name": "aggregate_results_executor", "dependencies": ["a", "x"]},
              {"id": "a", "name": "stepper", "parent_id": "root", "inputs": {"gate": True}},
              {"id": "x", "name": "boom", "parent_id": "root", "dependencies": ["a"]}],
}


async def main(url: str, kind: str, out: str | None, dask: bool) -> None:
    executor_register(Stepper)
    executor_register(Slow)
    runner = cluster = client = None
    if dask:
        from distributed import Client, LocalCluster

        from apflow_nb.distributed import DaskRunner

        cluster = await LocalCluster(n_workers=1, processes=False, asynchronous=True, dashboard_address=None)
        client = await Client(cluster, asynchronous=True)
        runner = DaskRunner.from_client(client)
    seen: list[dict] = []
    sub = subscribe(lambda e: seen.append({"type": e.type.value, "task_id": e.task_id, "status": e.status,
                                            "progress": e.progress, "timestamp": e.timestamp}))
    manager = TaskManager(create_session(url), flush_interval=0.05, cancel_grace_period=1.0, runner=runner)
    root = await manager.task_repository.create_task_tree_from_array(TREES[kind])
    run = asyncio.ensure_future(manager.distribute_task_tree(root))
    first = root.children[0].task
    while str(first.status) == "pending" and not run.done():
        await asyncio.sleep(0.005)
    await manager.writer.drain()
    print("root", root.task.id, flush=True)
    if kind in ("steps", "fails"):
        await asyncio.to_thread(sys.stdin.readline)  # the test's watcher is ready
        GATE.set()
    await run
    await manager.events.flush()
    sub.close()
    if client is not None:
        await client.close()
        await cluster.close()
    if out:
        with open(out, "w") as fh:
            json.dump(seen, fh)
    print("done", root.tree_status, flush=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(main(args[0], args[1], args[2] if len(args) > 2 else None, "--dask" in sys.argv))
