"""RunState, the views' pure state, fed by real runs: a TaskManager on a SQLite file and the core's
event bus, no frontend. Counts, overall progress, elapsed times, errors, cancels, and the rows a
view picks for a large tree."""
from __future__ import annotations

import asyncio

import pytest

from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.core.events import EventType
from apflow_nb.notebook.progress import FINAL, RunState, TaskRow, _weight
from tests.waiting import until

GATES: dict[str, asyncio.Event] = {}


class Gated(ExecutableTask):
    """Reports progress ``at`` then waits for its gate (no sleeps: the test decides when it moves on)."""

    id = "gated"

    async def execute(self, inputs):
        await self.event_queue.put({"type": "progress", "data": {"progress": inputs.get("at", 0.5)}})
        gate = GATES.setdefault(inputs["gate"], asyncio.Event())
        while not gate.is_set():
            if self.cancellation_checker():
                return {"status": "cancelled"}
            try:
                await asyncio.wait_for(gate.wait(), 0.01)
            except asyncio.TimeoutError:
                pass
        if inputs.get("fail"):
            raise ValueError(f"bad value in {inputs['gate']}")
        return {"ok": True}


@pytest.fixture(autouse=True)
def _gated():
    GATES.clear()
    executor_register(Gated)


def spec(n, fail=(), gate="g"):
    specs = [{"id": "root", "name": "aggregate_results_executor", "dependencies": [f"t{i}" for i in range(n)]}]
    return specs + [{"id": f"t{i}", "name": "gated", "parent_id": "root",
                     "inputs": {"gate": gate, "at": 0.5, "fail": i in fail}} for i in range(n)]


async def start(db, specs, **kw):
    """Store the tree, build its RunState from the stored tree, subscribe it, start the run."""
    manager = TaskManager(db, **kw)
    node = await manager.task_repository.create_task_tree_from_array(specs, validate_executors=True)
    state = RunState.from_tree(node)
    sub = manager.events.subscribe(state.apply, root_id=node.task.id)
    runner = asyncio.ensure_future(manager.distribute_task_tree(node))
    return manager, node, state, sub, runner


def brute(state):
    """Counts and progress recomputed from the rows, the slow obvious way."""
    counts = {}
    for row in state.rows.values():
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts, sum(_weight(r.status, r.progress) for r in state.rows.values()) / len(state.rows)


async def test_counts_progress_and_elapsed_through_a_real_run(db):
    manager, node, state, sub, runner = await start(db, spec(4))
    assert state.status == "pending" and state.counts["pending"] == 5 and state.progress == 0.0
    assert [r.id for r in state.rows.values()] == ["root", "t0", "t1", "t2", "t3"]
    assert [r.depth for r in state.rows.values()] == [0, 1, 1, 1, 1]
    assert state.rows["t0"].executor == "gated" and state.rows["root"].executor == "aggregate_results_executor"

    # every child is running and reported 0.5; the root waits for them
    await until(lambda: all(state.rows[f"t{i}"].progress == 0.5 for i in range(4)))
    assert state.status == "in_progress" and state.counts["in_progress"] == 4 and state.counts["pending"] == 1
    assert state.progress == pytest.approx(4 * 0.5 / 5)
    assert state.ids("in_progress") == ["t0", "t1", "t2", "t3"]
    assert state.rows["t0"].elapsed() >= 0 and state.rows["root"].elapsed() is None
    assert not state.finished and state.done == 0

    GATES["g"].set()
    await runner
    await manager.events.flush()
    sub.close()
    assert state.finished and state.status == "completed"
    assert state.counts == {"pending": 0, "in_progress": 0, "completed": 5, "failed": 0, "cancelled": 0}
    assert state.progress == 1.0 and state.done == state.total == 5
    for row in state.rows.values():
        assert row.started is not None and row.ended is not None and row.elapsed() == row.ended - row.started >= 0
    assert state.elapsed() >= max(r.elapsed() for r in state.rows.values())
    assert state.summary().startswith("completed · 5/5 done · 100% · ")


async def test_failure_keeps_the_error_and_its_traceback(db):
    manager, node, state, sub, runner = await start(db, spec(3, fail={1}))
    await until(lambda: state.counts["in_progress"] == 3)
    GATES["g"].set()
    await runner
    await manager.events.flush()
    assert state.status == "failed" and state.finished
    assert state.counts["failed"] == 2 and state.counts["completed"] == 2  # t1, and the root that needed it
    t1 = state.rows["t1"]
    assert t1.error_line == "ValueError: bad value in g"
    assert "Traceback (most recent call last)" in t1.error and 'raise ValueError(f"bad value' in t1.error
    assert list(state.errors) == ["t1", "root"] and "t1" in state.rows["root"].error
    assert state.progress == 1.0  # failed tasks are finished work too
    assert state.summary().startswith("failed · 4/4 done (2 failed) · 100% · ")


async def test_cancel_stops_the_bar_where_work_stopped(db, db_url):
    manager, node, state, sub, runner = await start(db, spec(4), cancel_grace_period=1.0)
    await until(lambda: all(state.rows[f"t{i}"].progress == 0.5 for i in range(4)))
    await manager.cancel_tree(node.task.id)
    await runner
    await manager.events.flush()
    assert state.finished and state.status == "cancelled"
    assert state.counts["cancelled"] == 5 and state.counts["in_progress"] == 0
    assert {r.progress for r in state.rows.values() if r.id != "root"} == {0.5}
    assert state.progress == pytest.approx(4 * 0.5 / 5)  # not 100%: the bar stays where the work stopped
    stored = RunState.from_tree(TaskManager(create_session(db_url)).task_repository
                                .get_task_tree_sync(node.task.id))
    assert stored.counts == state.counts and stored.finished and stored.status == "cancelled"


async def test_interrupted_run_state_ends_final(db):
    manager, node, state, sub, runner = await start(db, spec(3), cancel_grace_period=0.2)
    await until(lambda: state.counts["in_progress"] == 3)
    runner.cancel()  # what a kernel interrupt does to the awaiting cell
    with pytest.raises(asyncio.CancelledError):
        await runner
    await until(lambda: state.finished)
    assert state.status == "cancelled" and set(r.status for r in state.rows.values()) == {"cancelled"}


async def test_counts_stay_exact_on_every_event_of_a_mixed_run(db):
    """The O(1) counters agree with a full recount after each of the run's events."""
    specs = spec(40, fail={3, 17}, gate="a")
    manager = TaskManager(db, max_concurrency=8)
    node = await manager.task_repository.create_task_tree_from_array(specs, validate_executors=True)
    state = RunState(root_id=node.task.id)  # no stored tree: built from tree_started alone
    checked = []

    def check(event):
        state.apply(event)
        counts, progress = brute(state)
        assert {k: v for k, v in state.counts.items() if v} == counts, event
        assert state.progress == pytest.approx(progress, abs=1e-9)
        checked.append(event.type)

    sub = manager.events.subscribe(check, root_id=node.task.id)
    GATES["a"] = asyncio.Event()
    runner = asyncio.ensure_future(manager.distribute_task_tree(node))
    await until(lambda: state.counts["in_progress"] == 8)
    await manager.cancel_task("t5")
    GATES["a"].set()
    await runner
    await manager.events.flush()
    sub.close()
    assert sub.errors == 0  # a failed assertion in the callback would be counted here
    assert checked[0] is EventType.TREE_STARTED and checked[-1] is EventType.TREE_FINISHED
    assert EventType.TASK_PROGRESS in checked and EventType.TASK_FAILED in checked
    # t5 cancelled, t3 and t17 failed; the root, needing all of them, ends cancelled
    assert state.counts == {"pending": 0, "in_progress": 0, "completed": 37, "failed": 2, "cancelled": 2}
    assert state.status == "failed" and state.rows["root"].status == "cancelled"
    assert [r.id for r in state.rows.values()][:3] == ["root", "t0", "t1"]


def _state(n, statuses):
    state = RunState(root_id="r", rows={"r": TaskRow(id="r", name="root")})
    for i in range(n):
        state._add(TaskRow(id=f"t{i}", name=f"t{i}", parent_id="r", depth=1, status=statuses.get(i, "completed"),
                           progress=1.0))
    return state


def test_visible_rows_focus_on_running_and_failed_tasks():
    state = _state(1000, {500: "failed", 700: "in_progress", 701: "in_progress", 999: "in_progress"})
    items = state.visible(50)
    rows = [i for i in items if isinstance(i, TaskRow)]
    hidden = sum(i for i in items if isinstance(i, int))
    assert len(rows) == 50 and len(rows) + hidden == 1001
    ids = [r.id for r in rows]
    assert {"t500", "t700", "t701", "t999", "r"} <= set(ids)  # the interesting ones, and their parent
    assert ids[0] == "r"
    assert_positions(state, items)


def assert_positions(state, items):
    """Rows keep tree order and each gap marker counts exactly the rows left out there."""
    position = 0
    for item in items:
        if isinstance(item, int):
            assert item > 0
            position += item
        else:
            assert list(state.rows).index(item.id) == position, item.id
            position += 1
    assert position == state.total


def test_visible_rows_pages_and_small_trees():
    state = _state(250, {})
    assert state.visible(300) == list(state.rows.values())  # small enough: everything
    assert_positions(state, state.visible(100))
    page = state.visible(100, start=100)
    assert page[0] == 100 and page[-1] == 51 and [r.id for r in page[1:-1]] == [f"t{i}" for i in range(99, 199)]
    last = state.visible(100, start=200)
    assert last[0] == 200 and len(last) == 52 and last[-1].id == "t249"  # no trailing marker at the end
    assert_positions(state, page) or assert_positions(state, last)


def test_from_tree_of_a_finished_run_is_final(db, db_url):
    async def go():
        manager, node, state, sub, runner = await start(db, spec(2))
        await until(lambda: state.counts["in_progress"] == 2)
        GATES["g"].set()
        return await runner

    node = asyncio.run(go())
    stored = TaskManager(create_session(db_url)).task_repository.get_task_tree_sync(node.task.id)
    state = RunState.from_tree(stored)
    assert state.finished and state.status == "completed" and state.progress == 1.0
    assert all(r.status in FINAL and r.elapsed() is not None for r in state.rows.values())
