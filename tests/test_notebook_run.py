"""The Run handle: await, result() outside a loop, the nested-loop error, cancel, interrupts."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from sqlalchemy import text

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.core.errors import NestedLoopError


class Slow(ExecutableTask):
    id = "slow"

    async def execute(self, inputs):
        for _ in range(int(inputs.get("steps", 100))):
            if self.cancellation_checker():
                return {"status": "cancelled"}
            await asyncio.sleep(0.02)
        return {"done": True}


def fifty(steps=100):
    specs = [{"id": "root", "name": "aggregate_results_executor", "dependencies": [f"s{i}" for i in range(50)]}]
    return specs + [{"id": f"s{i}", "name": "slow", "parent_id": "root", "inputs": {"steps": steps}} for i in range(50)]


@pytest.fixture(autouse=True)
def _slow():
    executor_register(Slow)


def stored(url):
    db = create_session(url)
    try:
        return dict(db.execute(text("select id, status from apflow_tasks")).all())
    finally:
        db.close()


async def test_await_gives_the_final_tree_and_frame(db):
    run = apflow_nb.run(fifty(steps=2), manager=TaskManager(db), display=False)
    assert not run.done() and run.status in ("pending", "in_progress")
    node = await run
    assert run.done() and run.status == "completed" and node.tree_status == "completed"
    frame = run.frame()
    assert len(frame) == 51 and list(frame["depth"][:2]) == [0, 1]
    assert len(run.events) > 100 and run.events[-1].type.value == "tree_finished"
    assert "completed · 51/51 done" in repr(run)


def test_result_outside_a_loop(db_url):
    run = apflow_nb.run(fifty(steps=1), store=db_url, display=False)
    assert run.result().tree_status == "completed"
    assert set(stored(db_url).values()) == {"completed"}


async def test_result_inside_a_running_loop_names_the_fix(db):
    run = apflow_nb.run(fifty(steps=1), manager=TaskManager(db), display=False)
    with pytest.raises(NestedLoopError, match=r"await run.*allow_nested_loop\(\)"):
        run.result()
    await run


async def test_cancel_from_the_handle_with_fifty_in_flight(db_url):
    run = apflow_nb.run(fifty(), manager=TaskManager(create_session(db_url)), display=False)
    await asyncio.sleep(0.2)
    assert run.state.counts["in_progress"] == 50
    run.cancel()
    node = await run
    assert node.tree_status == "cancelled"
    assert set(stored(db_url).values()) == {"cancelled"}
    events = apflow_nb.events(db_url, types=["task_started", "task_completed", "task_failed", "task_cancelled"])
    last = events.groupby("task_id")["event_type"].last()
    assert (last == "task_cancelled").all() and len(last) == 51  # the event log agrees with the task table


async def test_interrupting_the_awaiting_cell_cancels_the_run(db_url):
    run = apflow_nb.run(fifty(), manager=TaskManager(create_session(db_url), cancel_grace_period=0.5), display=False)
    waiter = asyncio.ensure_future(run._wait())  # what `await run` in a cell does
    await asyncio.sleep(0.2)
    waiter.cancel()  # a kernel interrupt cancels the cell's task
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert run.done()
    statuses = stored(db_url)
    assert "in_progress" not in statuses.values() and set(statuses.values()) <= {"cancelled", "completed"}


def test_allow_nested_loop_lets_result_block(tmp_path):
    code = f'''
import asyncio, apflow_nb
@apflow_nb.executor_register
async def quick() -> dict:
    await asyncio.sleep(0.01)
    return {{"ok": 1}}

async def cell():
    run = apflow_nb.run([{{"name": "quick"}}], store="sqlite:///{tmp_path / 'n.db'}", display=False)
    apflow_nb.allow_nested_loop()
    return run.result().task.result

print(asyncio.run(cell()))
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'ok': 1}"
