"""The event stream: typed lifecycle events, executor events, subscribers that cannot hurt a run."""
from __future__ import annotations

import asyncio
import time


from tests.waiting import until
from apflow_nb import ExecutableTask, TaskTreeNode, create_session, executor_register, subscribe
from apflow_nb.core.events import Event, EventBus, EventType



class Streamer(ExecutableTask):
    id = "streamer"

    async def execute(self, inputs):
        n = inputs.get("n", 5)
        assert self.task_id is not None
        for i in range(n):
            await self.event_queue.put({"type": "progress", "data": {"progress": (i + 1) / n, "step": i + 1}})
        await self.event_queue.put({"type": "log", "message": "halfway", "level": "info"})
        return {"steps": n}


async def test_lifecycle_events_in_order_with_ids(manager):
    executor_register(Streamer)
    repo = manager.task_repository
    root = await repo.create_task(name="streamer", id="root", inputs={"n": 3})
    child = await repo.create_task(name="nope", id="child", parent_id="root")
    node = TaskTreeNode(root)
    node.add_child(TaskTreeNode(child))
    sub = subscribe(root_id="root")
    await manager.distribute_task_tree(node)
    events = sub.drain_nowait()
    sub.close()
    kinds = [(e.type.value, e.task_id) for e in events]
    assert kinds[0] == ("tree_started", "root") and kinds[-1] == ("tree_finished", "root")
    assert ("task_started", "root") in kinds and ("task_completed", "root") in kinds
    assert ("task_failed", "child") in kinds
    started = events[0]
    assert [t["id"] for t in started.data["tasks"]] == ["root", "child"]
    assert started.data["tasks"][1]["depth"] == 1 and started.data["tasks"][1]["executor"] == "nope"
    failed = next(e for e in events if e.type is EventType.TASK_FAILED)
    assert "no executor registered as 'nope'" in failed.data["error"] and failed.status == "failed"
    custom = [e for e in events if e.type is EventType.EXECUTOR]
    assert custom[0].data == {"type": "log", "message": "halfway", "level": "info"}
    assert all(e.root_id == "root" for e in events)
    assert events[-1].data["counts"] == {"completed": 1, "failed": 1}
    ts = [e.timestamp for e in events]
    assert ts == sorted(ts) and events[0].at.tzinfo is not None


async def test_async_for_subscription(manager):
    executor_register(Streamer)
    task = await manager.task_repository.create_task(name="streamer", inputs={"n": 4})
    got = []

    async def listen():
        async for event in subscribe(root_id=task.id):
            got.append(event)
            if event.type is EventType.TREE_FINISHED:
                break

    listener = asyncio.ensure_future(listen())
    await asyncio.sleep(0)
    await manager.distribute_task_tree(TaskTreeNode(task))
    await asyncio.wait_for(listener, 2)
    progress = [e.progress for e in got if e.type is EventType.TASK_PROGRESS]
    assert progress and progress[-1] == 1.0


async def test_progress_updates_stored_progress(manager):
    class Half(ExecutableTask):
        id = "half"

        async def execute(self, inputs):
            await self.event_queue.put({"type": "progress", "data": {"progress": 0.5}})
            await asyncio.sleep(0.2)  # longer than the flush interval
            return {}

    executor_register(Half)
    task = await manager.task_repository.create_task(name="half")
    running = asyncio.ensure_future(manager.distribute_task_tree(TaskTreeNode(task)))
    other = create_session(manager.db.get_bind().url.render_as_string(hide_password=False))

    def stored_midway():
        other.expire_all()
        row = other.get(type(task), task.id)
        other.rollback()
        return row is not None and (row.status, row.progress) == ("in_progress", 0.5)

    await until(stored_midway)  # written while the task still runs (it sleeps 0.2 s after reporting)
    other.close()
    await running
    assert task.progress == 1.0


async def test_slow_and_broken_subscribers_do_not_slow_or_break_a_run(manager):
    executor_register(Streamer)

    def broken(event):
        raise RuntimeError("subscriber bug")

    async def slow(event):
        await asyncio.sleep(0.05)

    task0 = await manager.task_repository.create_task(name="streamer", inputs={"n": 2000})
    t0 = time.perf_counter()
    await manager.distribute_task_tree(TaskTreeNode(task0))
    baseline = time.perf_counter() - t0

    task = await manager.task_repository.create_task(name="streamer", inputs={"n": 2000})
    broken_sub = subscribe(broken)
    slow_sub = subscribe(slow, maxsize=100)
    t0 = time.perf_counter()
    node = await manager.distribute_task_tree(TaskTreeNode(task))
    with_subs = time.perf_counter() - t0
    broken_sub.close()
    slow_sub.close()
    assert node["status"] == "completed"
    assert broken_sub.errors > 0
    # the slow subscriber's buffer stayed bounded: its progress events coalesced
    assert slow_sub.coalesced > 1000 and slow_sub.delivered < 50
    # a run does not wait for a slow subscriber (0.05 s per event would be 100 s here)
    assert with_subs < baseline + 1.0


def test_bus_coalesces_progress_and_keeps_lifecycle():
    bus = EventBus()
    sub = bus.subscribe(maxsize=3)
    for i in range(10):
        bus.publish(Event(EventType.TASK_PROGRESS, "t", "r", "in_progress", i / 10))
    for kind in (EventType.TASK_STARTED, EventType.TASK_COMPLETED, EventType.TREE_FINISHED):
        bus.publish(Event(kind, "t", "r"))
    bus.publish(Event(EventType.TASK_PROGRESS, "u", "r", "in_progress", 0.1))  # full: dropped
    events = sub.drain_nowait()
    assert [e.type.value for e in events] == ["task_progress", "task_started", "task_completed", "tree_finished"]
    assert events[0].progress == 0.9 and sub.coalesced == 9 and sub.dropped == 1


def test_filters_by_root_and_type():
    bus = EventBus()
    sub = bus.subscribe(root_id="a", types=["task_failed"])
    bus.publish(Event(EventType.TASK_FAILED, "t1", "a"))
    bus.publish(Event(EventType.TASK_FAILED, "t2", "b"))
    bus.publish(Event(EventType.TASK_COMPLETED, "t3", "a"))
    assert [e.task_id for e in sub.drain_nowait()] == ["t1"]


async def test_a_progress_change_written_on_its_own_is_stored(manager):
    """A batch can hold a task's progress alone (nothing else changed in that interval)."""
    step = asyncio.Event()

    class Stepper(ExecutableTask):
        id = "stepper"

        async def execute(self, inputs):
            await self.event_queue.put({"type": "progress", "data": {"progress": 0.25}})
            await step.wait()
            await self.event_queue.put({"type": "progress", "data": {"progress": 0.75}})
            await step.wait()
            return {}

    executor_register(Stepper)
    task = await manager.task_repository.create_task(name="stepper")
    other = create_session(manager.db.get_bind().url.render_as_string(hide_password=False))

    def stored_progress():
        other.expire_all()
        value = other.get(type(task), task.id).progress
        other.rollback()
        return value

    with subscribe(types=["warning"]) as warnings:
        running = asyncio.ensure_future(manager.distribute_task_tree(TaskTreeNode(task)))
        await until(lambda: stored_progress() == 0.25)  # written with the start, in one batch
        step.set()
        step.clear()
        await until(lambda: stored_progress() == 0.75)  # written alone, in a batch of its own
        step.set()
        await running
        assert warnings.drain_nowait() == []
    other.close()


def test_the_bus_says_which_trees_anyone_listens_to():
    """Publishers build Event objects only for trees someone subscribed to (a view left open on
    another tree, or a closed one, costs a run nothing); a subscription to every tree wants all."""
    bus = EventBus()
    assert not bus.wants("a") and not bus.wants(None)
    one, two = bus.subscribe(root_id="a"), bus.subscribe(root_id="a")
    assert bus.wants("a") and not bus.wants("b") and not bus.wants(None)
    one.close()
    one.close()  # closing twice changes nothing
    assert bus.wants("a")
    two.close()
    assert not bus.wants("a")
    with bus.subscribe() as everything:
        assert bus.wants("a") and bus.wants("b") and bus.wants(None)
    assert everything.closed and not bus.wants("b")
