"""The runner hook: executors can run elsewhere while the manager orchestrates here.

A runner that executes each executor in a worker thread with its own event loop stands in for a
remote engine: events travel back with call_soon_threadsafe and cancellation through the context.
"""
from __future__ import annotations

import asyncio
import copy
import threading

from apflow_nb import ExecutableTask, TaskManager, TaskTreeNode, executor_register, subscribe
from apflow_nb.core.execution.runner import ExecutionContext
from tests.waiting import until


class ThreadRunner:
    def __init__(self):
        self.threads = set()

    async def run(self, executor, inputs, context: ExecutionContext):
        remote = copy.copy(executor)
        loop = context.loop
        flag = threading.Event()

        class Queue:
            async def put(self, item):
                loop.call_soon_threadsafe(context.publish, item)

        remote.event_queue = Queue()
        remote.cancellation_checker = flag.is_set

        async def watch():
            await context.cancel_requested.wait()
            flag.set()

        watcher = asyncio.ensure_future(watch())

        def work():
            self.threads.add(threading.get_ident())
            return asyncio.run(remote.execute(inputs))

        try:
            return await asyncio.to_thread(work)
        finally:
            watcher.cancel()


class Counting(ExecutableTask):
    id = "counting"

    async def execute(self, inputs):
        for i in range(inputs["n"]):
            if self.cancellation_checker():
                return {"status": "cancelled", "at": i}
            await self.event_queue.put({"type": "progress", "data": {"progress": (i + 1) / inputs["n"]}})
            await asyncio.sleep(0.01)
        return {"thread": threading.get_ident()}


async def test_custom_runner_runs_elsewhere_streams_and_cancels(db):
    executor_register(Counting)
    runner = ThreadRunner()
    manager = TaskManager(db, runner=runner)
    task = await manager.task_repository.create_task(name="counting", inputs={"n": 5})
    with subscribe(root_id=task.id, types=["task_progress"]) as sub:
        node = await manager.distribute_task_tree(TaskTreeNode(task))
        progress = [e.progress for e in sub.drain_nowait()]
    assert node["status"] == "completed"
    assert node["result"]["thread"] in runner.threads and node["result"]["thread"] != threading.get_ident()
    assert progress and progress[-1] == 1.0

    slow = await manager.task_repository.create_task(name="counting", inputs={"n": 1000})
    with subscribe(root_id=slow.id, types=["task_progress"]) as counting:
        running = asyncio.ensure_future(manager.distribute_task_tree(TaskTreeNode(slow)))
        await until(lambda: counting.pending > 0)  # counting in its thread
    await manager.cancel_task(slow.id)
    node = await running
    assert node["status"] == "cancelled" and 0 < node["result"]["at"] < 1000
