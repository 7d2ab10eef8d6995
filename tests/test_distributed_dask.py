"""Task trees on a real Dask LocalCluster (2 worker processes): results, streamed progress,
cancellation reaching the worker, a killed worker failing only its task."""
from __future__ import annotations

import asyncio
import os
import time

import dask
import pytest
from distributed import Client, LocalCluster

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, TaskTreeNode, create_session, executor_register, subscribe
from apflow_nb.distributed import DaskRunner
from tests.waiting import until


class WhereAmI(ExecutableTask):
    id = "where_am_i"

    async def execute(self, inputs):
        for i in range(5):
            await self.event_queue.put({"type": "progress", "data": {"progress": (i + 1) / 5}})
            await asyncio.sleep(0.05)
        return {"pid": os.getpid(), "x": inputs.get("x")}


class Spin(ExecutableTask):
    id = "spin"

    async def execute(self, inputs):
        await self.event_queue.put({"type": "progress", "data": {"progress": 0.01}})  # running on the worker
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.cancellation_checker():
                for _ in range(50):  # cancel() is scheduled on this loop right after the checker turns true
                    if getattr(self, "cancel_ran_in", None):
                        break
                    await asyncio.sleep(0.02)
                return {"status": "cancelled", "stopped_on_worker": os.getpid(),
                        "cancel_ran_in": getattr(self, "cancel_ran_in", None)}
            await asyncio.sleep(0.02)
        return {"status": "completed"}

    async def cancel(self):
        self.cancel_ran_in = os.getpid()
        return {"status": "cancelled"}


class Suicide(ExecutableTask):
    id = "suicide"

    async def execute(self, inputs):
        await asyncio.sleep(0.2)
        os._exit(1)


@pytest.fixture(scope="module")
def client():
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None)
        c = Client(cluster)
        yield c
        c.close()
        cluster.close()


@pytest.fixture
def dask_manager(pg_url, client):
    """The shared store of a team: the live PostgreSQL server."""
    for cls in (WhereAmI, Spin, Suicide):
        executor_register(cls)
    db = create_session(pg_url)
    yield TaskManager(db, runner=DaskRunner.from_client(client), cancel_grace_period=2.0)
    db.close()


def build(manager, specs):
    tasks = manager.task_repository.create_tasks(specs)
    root = TaskTreeNode(tasks[0])
    for t in tasks[1:]:
        root.add_child(t)
    return root


async def test_results_and_progress_come_back_from_workers(dask_manager):
    specs = [{"id": "agg", "name": "aggregate_results_executor", "dependencies": [f"w{i}" for i in range(4)]}]
    specs += [{"id": f"w{i}", "name": "where_am_i", "parent_id": "agg", "inputs": {"x": i}} for i in range(4)]
    root = build(dask_manager, specs)
    with subscribe(root_id="agg", types=["task_progress"]) as sub:
        await dask_manager.distribute_task_tree(root)
        progress = sub.drain_nowait()
    assert root.tree_status == "completed"
    pids = {root.task.result["results"][f"w{i}"]["pid"] for i in range(4)}
    assert os.getpid() not in pids and len(pids) >= 1
    assert [root.task.result["results"][f"w{i}"]["x"] for i in range(4)] == [0, 1, 2, 3]
    assert {e.task_id for e in progress} == {f"w{i}" for i in range(4)}
    assert max(e.progress for e in progress) == 1.0
    frame = apflow_nb.history(dask_manager.db, root_id="agg")  # stored in PostgreSQL
    assert list(frame["status"]) == ["completed"] * 5 and frame["result.pid"].dropna().nunique() >= 1


@pytest.mark.timing
async def test_cancellation_reaches_the_worker(dask_manager):
    root = build(dask_manager, [{"id": "s", "name": "spin"}])
    with subscribe(root_id="s", types=["task_progress"]) as spinning:
        running = asyncio.ensure_future(dask_manager.distribute_task_tree(root))
        await until(lambda: spinning.pending > 0, timeout=30)  # it reports progress from the worker
    t0 = time.perf_counter()
    await dask_manager.cancel_task("s")
    await running
    assert root.task.status == "cancelled"
    worker_pid = root.task.result.get("stopped_on_worker")
    assert worker_pid not in (None, os.getpid()), root.task.result  # stopped on the worker
    assert root.task.result.get("cancel_ran_in") == worker_pid, root.task.result  # and cancel() ran there too
    assert time.perf_counter() - t0 < 2.0


async def test_killed_worker_fails_its_task_and_the_tree_goes_on(dask_manager, client):
    specs = [{"id": "r", "name": "aggregate_results_executor",
              "dependencies": [{"id": "k", "required": False}, "ok"]},
             {"id": "k", "name": "suicide", "parent_id": "r"},
             {"id": "ok", "name": "where_am_i", "parent_id": "r", "inputs": {"x": 1}}]
    root = build(dask_manager, specs)
    await dask_manager.distribute_task_tree(root)
    k = root.find("k").task
    assert k.status == "failed" and "worker" in k.error and "died" in k.error
    assert root.find("ok").task.status == "completed" and root.task.status == "completed"
    client.wait_for_workers(2, timeout=30)  # the nanny restarts it for the next test


def test_in_memory_store_is_refused(client):
    with pytest.raises(ValueError, match="in-memory store"):
        TaskManager(create_session("sqlite://"), runner=DaskRunner.from_client(client))


def test_a_client_is_not_a_runner_but_run_wraps_it(client, tmp_path):
    """A Dask Client has a run() method of its own (sync): the core refuses it by name, apflow_nb.run wraps it."""
    with pytest.raises(TypeError, match=r"DaskRunner.from_client\(client\)"):
        TaskManager(create_session(f"sqlite:///{tmp_path / 'a.db'}"), runner=client)
    executor_register(WhereAmI)
    run = apflow_nb.run([{"id": "w", "name": "where_am_i", "inputs": {"x": 7}}], runner=client,
                        store=f"sqlite:///{tmp_path / 'b.db'}", display=False)
    root = run.result()
    assert root.tree_status == "completed" and root.task.result["pid"] != os.getpid()
