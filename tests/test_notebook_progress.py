"""RunState, the views' pure state, fed by real runs: a TaskManager on a SQLite file and the core's
event bus, no frontend. Counts (skipped apart from failed and cancelled), per-executor groups,
overall progress, elapsed times, errors, cancels, unknown statuses, and the run's own status."""
from __future__ import annotations

import asyncio

import pytest

from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.core.events import Event, EventType
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
    """Counts (by shown status: skipped apart) and progress recomputed from the rows, the slow obvious way."""
    counts = {}
    for row in state.rows.values():
        shown = "skipped" if row.upstream else row.status
        counts[shown] = counts.get(shown, 0) + 1
    return counts, sum(_weight(r.status, r.progress) for r in state.rows.values()) / len(state.rows)


def brute_groups(state):
    groups = {}
    for row in state.rows.values():
        g = groups.setdefault(row.executor, {"total": 0, "progress": 0.0})
        g["total"] += 1
        g["progress"] += _weight(row.status, row.progress)
    return {name: (g["total"], g["progress"] / g["total"]) for name, g in groups.items()}


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
    assert state.counts == {"completed": 5, "cached": 0, "failed": 0, "skipped": 0, "cancelled": 0, "in_progress": 0,
                            "pending": 0, "unknown": 0}
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
    # t1 failed; the root, which needed it, never ran: skipped, not counted as a failure
    assert state.counts["failed"] == 1 and state.counts["skipped"] == 1 and state.counts["completed"] == 2
    assert state.rows["root"].upstream == "t1" and state.rows["root"].status == "failed"
    t1 = state.rows["t1"]
    assert t1.error_line == "ValueError: bad value in g"
    assert "Traceback (most recent call last)" in t1.error and 'raise ValueError(f"bad value' in t1.error
    assert list(state.errors) == ["t1"] and "t1" in state.rows["root"].error
    assert state.progress == 1.0  # failed (and skipped after a failure) tasks are finished work too
    assert state.summary().startswith("failed · 4/4 done (1 failed, 1 skipped) · 100% · ")


async def test_cancel_stops_the_bar_where_work_stopped(db, db_url):
    manager, node, state, sub, runner = await start(db, spec(4), cancel_grace_period=1.0)
    await until(lambda: all(state.rows[f"t{i}"].progress == 0.5 for i in range(4)))
    await manager.cancel_tree(node.task.id)
    await runner
    await manager.events.flush()
    assert state.finished and state.status == "cancelled"
    assert state.counts["cancelled"] == 5 and state.counts["in_progress"] == 0 and state.counts["skipped"] == 0
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
        groups = {g.name: (g.total, g.progress) for g in state.groups}
        assert groups.keys() == brute_groups(state).keys(), event
        for name, (total, share) in brute_groups(state).items():
            assert groups[name][0] == total and groups[name][1] == pytest.approx(share, abs=1e-9), event
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
    # t5 cancelled, t3 and t17 failed; the root, needing all of them, never ran: skipped
    assert state.counts == {"completed": 37, "cached": 0, "failed": 2, "skipped": 1, "cancelled": 1, "in_progress": 0,
                            "pending": 0, "unknown": 0}
    assert state.status == "failed" and state.rows["root"].status in ("failed", "cancelled")
    assert state.rows["root"].upstream in ("t3", "t5", "t17")
    assert [r.id for r in state.rows.values()][:3] == ["root", "t0", "t1"]


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


async def test_from_tree_knows_skipped_tasks_and_their_upstream(db, db_url):
    manager, node, state, sub, runner = await start(db, spec(2, fail={0}))
    await until(lambda: state.counts["in_progress"] == 2)
    GATES["g"].set()
    await runner
    stored = RunState.from_tree(TaskManager(create_session(db_url)).task_repository.get_task_tree_sync(node.task.id))
    assert stored.counts == state.counts and stored.counts["skipped"] == 1 and stored.rows["root"].upstream == "t0"
    assert stored.status == "failed" and stored.outcome == "failed"


def test_unknown_statuses_count_as_unknown_and_never_reach_a_view():
    state = RunState(root_id="r", rows={"r": TaskRow(id="r", name="root", status='"><img src=x onerror=alert(1)>')})
    assert state.rows["r"].status == "unknown" and state.counts["unknown"] == 1
    state.status = "in_progress"
    state.apply(Event(EventType.TASK_COMPLETED, "r", "r", "<b>weird</b>"))
    assert state.rows["r"].status == "unknown" and state.counts["unknown"] == 1 and state.counts["completed"] == 0
    state.apply(Event(EventType.TREE_FINISHED, "r", "r", "<script>"))
    assert state.status == "unknown"


def test_asking_to_cancel_marks_running_tasks_until_they_end():
    state = RunState(root_id="r")
    state.apply(Event(EventType.TREE_STARTED, "r", "r", "in_progress", data={"tasks": [
        {"id": "r", "key": "r", "name": "root", "parent_id": None, "depth": 0, "status": "pending", "executor": "x"},
        {"id": "a@1", "key": "a", "name": "a", "parent_id": "r", "depth": 1, "status": "pending", "executor": "y"},
        {"id": "b@1", "key": "b", "name": "b", "parent_id": "r", "depth": 1, "status": "pending", "executor": "y"}]}))
    state.apply(Event(EventType.TASK_STARTED, "a@1", "r", "in_progress"))
    state.apply(Event(EventType.TASK_STARTED, "b@1", "r", "in_progress"))
    version = state.version
    state.ask_cancel("a@1")
    assert state.version > version and state.rows["a@1"].cancel_asked and state.rows["b@1"].cancel_asked is None
    state.ask_cancel("r")  # not running: nothing to mark
    assert state.rows["r"].cancel_asked is None and not state.cancel_run_asked
    state.apply(Event(EventType.TASK_CANCELLED, "a@1", "r", "cancelled", data={"message": "stopped"}))
    assert state.rows["a@1"].cancel_asked is None and state.rows["a@1"].message == "stopped"
    state.ask_cancel()  # the whole run
    assert state.cancel_run_asked and state.rows["b@1"].cancel_asked is not None
    assert [g.name for g in state.groups] == ["x", "y"] and state.groups[1].counts == {"in_progress": 1, "cancelled": 1}


def test_finish_without_a_tree_event_takes_the_tasks_outcome():
    state = RunState(root_id="r", rows={"r": TaskRow(id="r", name="root"), "c": TaskRow(id="c", name="c", parent_id="r")})
    assert state.outcome == "pending"
    state.apply(Event(EventType.TASK_CANCELLED, "c", "r", "cancelled"))
    state.apply(Event(EventType.TASK_CANCELLED, "r", "r", "cancelled"))
    state.finish()
    assert state.finished and state.status == "cancelled"
    failed = RunState(root_id="r", rows={"r": TaskRow(id="r", name="root", status="failed")})
    failed.finish()
    assert failed.status == "failed"
