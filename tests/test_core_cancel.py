"""Cancellation: checker, cancel(), grace period, dependents, whole trees, interrupts."""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.waiting import until
from apflow_nb import ExecutableTask, TaskManager, TaskTreeNode, create_session, executor_register



def stored_statuses(manager):
    from sqlalchemy import text

    other = create_session(str(manager.db.get_bind().url))
    try:
        return dict(other.execute(text("select id, status from apflow_tasks")).all())
    finally:
        other.close()


class Polite(ExecutableTask):
    """Stops as soon as the checker turns true."""
    id = "polite"
    cancel_calls = 0

    async def execute(self, inputs):
        while not self.cancellation_checker():
            await asyncio.sleep(0.01)
        return {"status": "cancelled", "stopped": True}

    async def cancel(self):
        type(self).cancel_calls += 1
        return {"status": "cancelled"}


class Stubborn(ExecutableTask):
    """Ignores the checker: only the grace period's asyncio cancellation stops it."""
    id = "stubborn"

    async def execute(self, inputs):
        await asyncio.sleep(30)
        return {"finished": True}


class Blocking(ExecutableTask):
    """Blocks the event loop (time.sleep): cancelled once it returns."""
    id = "blocking"

    async def execute(self, inputs):
        for _ in range(5):
            time.sleep(0.1)  # blocks the loop; the checker is ignored
            await asyncio.sleep(0)
        return {"done": True}


async def start(manager, node, running_tasks=1):
    """Start the tree and wait until ``running_tasks`` of its tasks run."""
    running = asyncio.ensure_future(manager.distribute_task_tree(node))
    await until(lambda: sum(t.status == "in_progress" for t in node.tasks()) >= running_tasks)
    return running


@pytest.mark.timing
async def test_cancel_running_task_checker_and_cancel_called(manager):
    executor_register(Polite)
    Polite.cancel_calls = 0
    task = await manager.task_repository.create_task(name="polite")
    running = await start(manager, TaskTreeNode(task))
    t0 = time.perf_counter()
    out = await manager.cancel_task(task.id)
    assert time.perf_counter() - t0 < 0.5
    node = await running
    assert out["status"] == node["status"] == "cancelled" and Polite.cancel_calls == 1
    assert node["result"] == {"status": "cancelled", "stopped": True}
    assert stored_statuses(manager) == {task.id: "cancelled"}


@pytest.mark.timing
async def test_grace_period_then_asyncio_cancel(db):
    manager = TaskManager(db, cancel_grace_period=0.2)
    executor_register(Stubborn)
    task = await manager.task_repository.create_task(name="stubborn")
    running = await start(manager, TaskTreeNode(task))
    t0 = time.perf_counter()
    await manager.cancel_task(task.id)
    elapsed = time.perf_counter() - t0
    node = await running
    assert 0.15 < elapsed < 1.5
    assert node["status"] == "cancelled" and "grace period" in node["result"]["message"]


@pytest.mark.timing
async def test_blocking_executor_cancelled_once_it_returns(manager):
    executor_register(Blocking)
    task = await manager.task_repository.create_task(name="blocking")
    running = asyncio.ensure_future(manager.distribute_task_tree(TaskTreeNode(task)))
    await until(lambda: task.status == "in_progress")  # the first chunk has started
    t0 = time.perf_counter()
    out = await manager.cancel_task(task.id, grace_period=0.05)
    node = await running
    assert node["status"] == out["status"] == "cancelled"
    assert time.perf_counter() - t0 < 0.45  # did not wait for all five chunks


async def test_pending_dependents_end_cancelled(manager):
    executor_register(Polite)

    @executor_register
    async def after(**kw) -> dict:
        return {}

    repo = manager.task_repository
    root = await repo.create_task(name="after", id="root", dependencies=["p"])
    p = await repo.create_task(name="polite", id="p", parent_id="root")
    d = await repo.create_task(name="after", id="d", parent_id="root", dependencies=["p"])
    node = TaskTreeNode(root)
    node.add_child(TaskTreeNode(p))
    node.add_child(TaskTreeNode(d))
    running = await start(manager, node)
    await manager.cancel_task("p")
    await running
    assert stored_statuses(manager) == {"root": "cancelled", "p": "cancelled", "d": "cancelled"}
    assert "was cancelled" in d.result["message"]


async def test_cancel_tree_cancels_running_and_pending(manager):
    executor_register(Polite)
    executor_register(Stubborn)
    repo = manager.task_repository
    root = await repo.create_task(name="aggregate_results_executor", id="root", dependencies=["a", "b"])
    a = await repo.create_task(name="polite", id="a", parent_id="root")
    b = await repo.create_task(name="stubborn", id="b", parent_id="root")
    node = TaskTreeNode(root)
    node.add_child(TaskTreeNode(a))
    node.add_child(TaskTreeNode(b))
    running = await start(manager, node)
    out = await manager.cancel_tree("root", grace_period=0.1)
    await running
    assert {o["task_id"]: o["status"] for o in out} == {"a": "cancelled", "b": "cancelled", "root": "cancelled"}
    assert set(stored_statuses(manager).values()) == {"cancelled"}


async def test_interrupting_the_awaiting_coroutine_leaves_nothing_in_progress(manager):
    executor_register(Stubborn)
    repo = manager.task_repository
    root = await repo.create_task(name="aggregate_results_executor", id="root",
                                  dependencies=[f"s{i}" for i in range(50)])
    kids = repo.create_tasks([{"name": "stubborn", "id": f"s{i}", "parent_id": "root"} for i in range(50)])
    node = TaskTreeNode(root)
    for k in kids:
        node.add_child(k)
    running = await start(manager, node, running_tasks=50)
    running.cancel()  # what a kernel interrupt or run.cancel() does to the awaiting task
    with pytest.raises(asyncio.CancelledError):
        await running
    statuses = stored_statuses(manager)
    assert set(statuses.values()) == {"cancelled"} and len(statuses) == 51
    assert manager.active_tree_ids() == [] and not manager.is_running("s0")


async def test_cancel_stored_pending_task(manager):
    task = await manager.task_repository.create_task(name="anything")
    out = await manager.cancel_task(task.id)
    assert out["status"] == "cancelled" and stored_statuses(manager)[task.id] == "cancelled"


async def test_same_tree_twice_at_once_is_refused(manager):
    from apflow_nb.core.errors import TreeAlreadyRunningError

    executor_register(Polite)
    task = await manager.task_repository.create_task(name="polite")
    running = await start(manager, TaskTreeNode(task))
    with pytest.raises(TreeAlreadyRunningError, match="already running"):
        await manager.distribute_task_tree(TaskTreeNode(task))
    await manager.cancel_task(task.id)
    await running


async def test_a_task_that_blocks_the_loop_is_named(manager):
    from apflow_nb import subscribe
    from apflow_nb.notebook.progress import RunState

    class Sleepy(ExecutableTask):
        id = "sleepy"

        async def execute(self, inputs):
            await asyncio.sleep(0)
            time.sleep(0.3)  # blocks the loop
            return {}

    executor_register(Sleepy)
    task = await manager.task_repository.create_task(name="sleepy")
    state = RunState.from_tree(TaskTreeNode(task))
    with subscribe(state.apply, root_id=task.id):
        await manager.distribute_task_tree(TaskTreeNode(task))
    assert state.blocked and "task 'sleepy' blocked the event loop for 0.3" in state.blocked
    from apflow_nb.notebook.views.html import render_html

    assert "blocked the event loop" in render_html(state)
