"""The Run handle: await, result() outside a loop, the nested-loop error, cancel, interrupts."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.core.errors import NestedLoopError
from tests.store_helpers import stored_statuses as stored


class Slow(ExecutableTask):
    id = "slow"

    async def execute(self, inputs):
        for _ in range(int(inputs.get("steps", 100))):
            if self.cancellation_checker():
                return {"status": "cancelled"}
            await asyncio.sleep(0.02)
        return {"done": True}


def fifty(steps=100, n=50):
    specs = [{"id": "root", "name": "aggregate_results_executor", "dependencies": [f"s{i}" for i in range(n)]}]
    return specs + [{"id": f"s{i}", "name": "slow", "parent_id": "root", "inputs": {"steps": steps}} for i in range(n)]


@pytest.fixture(autouse=True)
def _slow():
    executor_register(Slow)


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


async def test_run_takes_a_node_a_root_task_or_its_id(db):
    manager = TaskManager(db)
    node = await manager.task_repository.create_task_tree_from_array(fifty(steps=1, n=2))
    first = apflow_nb.run(node, manager=manager, display=False)
    assert first.root_id == node.task.id and (await first).tree_status == "completed"
    again = apflow_nb.run(node.task, manager=manager, display=False)  # the stored root task: run it again
    assert again.state.total == 3 and (await again).tree_status == "completed"
    by_id = apflow_nb.run(node.task.id, manager=manager, display=False)
    assert (await by_id).tree_status == "completed" and by_id.status == "completed"
    with pytest.raises(TypeError, match="task array"):
        apflow_nb.run(42, manager=manager, display=False)


async def test_cancel_in_the_same_cell_as_run_cancels_the_whole_tree(db_url):
    run = apflow_nb.run(fifty(), manager=TaskManager(create_session(db_url), cancel_grace_period=0.5),
                        display=False)
    run.cancel()  # before the run took its first step
    node = await run
    assert node.tree_status == "cancelled" and run.status == "cancelled"
    assert set(stored(db_url).values()) == {"cancelled"}


async def test_a_run_that_cannot_start_says_why(db):
    manager = TaskManager(db)
    node = await manager.task_repository.create_task_tree_from_array(fifty(steps=5, n=1))
    first = apflow_nb.run(node, manager=manager, display=False)
    second = apflow_nb.run(node, manager=manager, display="html")  # the same tree, still running
    with pytest.raises(apflow_nb.core.errors.TreeAlreadyRunningError):
        await second
    assert second.done() and second.status == "failed" and "already running" in second.state.error
    assert "TreeAlreadyRunningError" in second.view._repr_mimebundle_()["text/html"]
    assert (await first).tree_status == "completed"


def test_cancel_before_a_script_starts_the_run(db_url):
    run = apflow_nb.run(fifty(steps=1), store=db_url, display=False)
    assert run.cancel() is None and run.done() and run.status == "cancelled"
    assert run.result().tree_status == "cancelled"  # nothing ran
    assert set(stored(db_url).values()) == {"cancelled"}


def test_result_timeout_outside_a_loop_cancels_the_run(db_url):
    run = apflow_nb.run(fifty(), store=db_url, display=False)
    with pytest.raises(TimeoutError):
        run.result(timeout=0.3)
    assert run.done() and run.status == "cancelled"
    assert "in_progress" not in stored(db_url).values()


def test_ctrl_c_in_a_script_cancels_the_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    code = f'''
import asyncio, apflow_nb
@apflow_nb.executor_register
async def forever() -> dict:
    while True:
        await asyncio.sleep(0.01)
tasks = [{{"id": "root", "name": "aggregate_results_executor", "dependencies": [f"f{{i}}" for i in range(20)]}}]
tasks += [{{"id": f"f{{i}}", "name": "forever", "parent_id": "root"}} for i in range(20)]
run = apflow_nb.run(tasks, store="{url}", display=False)
print("ready", flush=True)
try:
    run.result()
except KeyboardInterrupt:
    print("interrupted", run.status, flush=True)
'''
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    import signal
    import time

    for _ in range(500):  # wait until the tasks are in flight in the store, then press Ctrl-C
        if list(stored(url).values()).count("in_progress") == 20:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert out.strip() == "interrupted cancelled"
    assert set(stored(url).values()) == {"cancelled"}


async def test_result_from_a_worker_thread_waits_on_the_runs_loop(db):
    run = apflow_nb.run(fifty(steps=2, n=3), manager=TaskManager(db), display=False)
    node = await asyncio.to_thread(run.result, 30)  # blocks a worker thread, not the loop
    assert node.tree_status == "completed" and run.done()


async def test_status_is_read_from_the_event_built_state_only(db):
    """One source of truth: the run's status comes from its events, not from the task rows the engine
    (or another writer of the store) changes."""
    run = apflow_nb.run(fifty(steps=1, n=3), manager=TaskManager(db), display=False)
    await run
    assert run.status == "completed" and run.state.status == "completed"
    run.tree.task.status = "failed"  # the ORM row changes under the handle
    assert run.tree.tree_status == "failed" and run.status == "completed"


def test_a_run_cancelled_before_it_started_takes_its_status_from_the_tasks_events(db_url):
    run = apflow_nb.run(fifty(steps=1, n=3), store=db_url, display=False)
    run.cancel()  # a script: the tree is cancelled in the store, each task's cancel is an event
    assert run.done() and run.status == "cancelled" and run.state.counts["cancelled"] == 4
    assert set(stored(db_url).values()) == {"cancelled"}
