"""Trust under faults (issue 11): bad payloads, long cascades, runaway executors and hooks, foreign locks."""
from __future__ import annotations

import asyncio
import datetime
import json
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text

from apflow_nb import (
    ExecutableTask, TaskManager, TaskTreeNode, create_session, executor_register, register_post_hook,
    storage_register, subscribe,
)
from apflow_nb.core.extensions.storage import StorageExtension
from tests.waiting import until


class Chatty(ExecutableTask):
    """Puts every kind of value a JSON column cannot hold on its event queue, then succeeds."""

    id = "chatty"

    async def execute(self, inputs):
        q = self.event_queue
        await q.put({"type": "log", "at": datetime.datetime(2026, 1, 2, 3, 4, 5)})
        await q.put({"type": "progress", "data": {"progress": 0.5, "blob": b"\x00\xff" * 3}})
        await q.put({"type": "log", "tags": {"a", "b"}, "obj": object(), "nan": float("nan")})
        await q.put({"type": "log", "text": "lone \ud800 and nul \x00"})
        return {"ok": True}


class Broken(ExecutableTask):
    """Fails with a message no database can store as it is (a NUL and a lone surrogate)."""

    id = "broken"

    async def execute(self, inputs):
        raise ValueError("bad \x00 byte and \ud800 half")


@pytest.fixture(autouse=True)
def noop():
    @executor_register
    async def noop() -> dict:
        return {}


def rows(url: str, sql: str, **params):
    db = create_session(url)
    try:
        return db.execute(text(sql), params).all()
    finally:
        db.close()


async def test_unstorable_event_payloads_are_converted_and_never_poison_the_writer(store_url):
    executor_register(Chatty)
    db = create_session(store_url)
    manager = TaskManager(db)
    for run in range(2):  # the second tree of the same manager runs as well
        specs = [{"id": f"r{run}", "name": "aggregate_results_executor"}]
        specs += [{"id": f"c{run}-{i}", "name": "chatty", "parent_id": f"r{run}"} for i in range(5)]
        node = await manager.task_repository.create_task_tree_from_array(specs)
        await manager.distribute_task_tree(node)
        assert node.tree_status == "completed"
    statuses = dict(rows(store_url, "select id, status from apflow_tasks"))
    assert set(statuses.values()) == {"completed"} and len(statuses) == 12
    payloads = [p for (p,) in rows(store_url, "select payload from apflow_task_events where task_id = 'c1-0' "
                                             "and event_type = 'executor'")]
    text_of = " ".join(json.dumps(p if not isinstance(p, str) else json.loads(p), ensure_ascii=False) for p in payloads)
    assert "2026-01-02T03:04:05" in text_of and "object object" in text_of and "\ufffd" in text_of
    db.close()


async def test_a_row_the_database_refuses_is_repaired_and_the_others_are_written(store_url):
    executor_register(Chatty)
    executor_register(Broken)
    db = create_session(store_url)
    manager = TaskManager(db)
    specs = [{"id": "root", "name": "aggregate_results_executor"}]
    specs += [{"id": f"ok{i}", "name": "chatty", "parent_id": "root"} for i in range(20)]
    specs += [{"id": "bad", "name": "broken", "parent_id": "root"}]
    node = await manager.task_repository.create_task_tree_from_array(specs)
    with subscribe(types=["warning"]) as warnings:
        await manager.distribute_task_tree(node)
        await until(lambda: warnings.pending > 0)
        messages = [e.data["message"] for e in warnings.drain_nowait()]
    stored = dict(rows(store_url, "select id, status from apflow_tasks"))
    assert stored.pop("bad") == "failed" and set(stored.values()) == {"completed"} and len(stored) == 21
    (error,) = rows(store_url, "select error from apflow_tasks where id = 'bad'")[0]
    assert error.startswith("ValueError: bad") and "\x00" not in error
    assert any("could not be stored as given" in m for m in messages), messages
    again = await manager.task_repository.create_task_tree_from_array([{"id": "next", "name": "chatty"}])
    assert (await manager.distribute_task_tree(again)).tree_status == "completed"
    db.close()


async def test_a_failure_at_the_head_of_a_long_chain_ends_every_task(manager):
    class Boom(ExecutableTask):
        id = "boom"

        async def execute(self, inputs):
            raise RuntimeError("head")

    executor_register(Boom)
    n = 2_000
    specs = [{"id": "t0", "name": "boom"}]
    specs += [{"id": f"t{i}", "name": "noop", "parent_id": "t0", "dependencies": [f"t{i - 1}"]} for i in range(1, n)]
    node = await manager.task_repository.create_task_tree_from_array(specs)
    await manager.distribute_task_tree(node)
    statuses = {t.status for t in node.tasks()}
    assert statuses == {"failed"}
    assert node.find("t1999").task.error == "skipped: required dependency 't1998' failed"


async def test_cancelling_a_long_waiting_chain_ends_every_task(manager):
    class Waits(ExecutableTask):
        id = "waits"

        async def execute(self, inputs):
            await asyncio.sleep(30)
            return {}

    executor_register(Waits)
    specs = [{"id": "t0", "name": "waits"}]
    specs += [{"id": f"t{i}", "name": "waits", "parent_id": "t0", "dependencies": [f"t{i - 1}"]}
              for i in range(1, 2_000)]
    node = await manager.task_repository.create_task_tree_from_array(specs)
    running = asyncio.ensure_future(manager.distribute_task_tree(node))
    await until(lambda: node.task.status == "in_progress")
    await manager.cancel_tree(node.task.id)
    await running
    assert {t.status for t in node.tasks()} == {"cancelled"}


@pytest.mark.timing
async def test_a_100000_task_chain_whose_first_task_fails_ends_in_seconds(tmp_path):
    class Boom(ExecutableTask):
        id = "boom"

        async def execute(self, inputs):
            raise RuntimeError("head")

    executor_register(Boom)
    db = create_session(f"sqlite:///{tmp_path / 'chain.db'}")
    manager = TaskManager(db)
    n = 100_000
    specs = [{"id": "t0", "name": "boom"}]
    specs += [{"id": f"t{i}", "name": "noop", "parent_id": "t0", "dependencies": [f"t{i - 1}"]} for i in range(1, n)]
    node = await manager.task_repository.create_task_tree_from_array(specs)
    started = time.perf_counter()
    await manager.distribute_task_tree(node)
    took = time.perf_counter() - started
    assert took < 5.0, took
    assert rows(f"sqlite:///{tmp_path / 'chain.db'}", "select status, count(*) from apflow_tasks group by status") \
        == [("failed", n)]
    db.close()


class Stubborn(ExecutableTask):
    """Swallows every cancellation and keeps going."""

    id = "stubborn"
    release = None

    async def execute(self, inputs):
        while True:
            try:
                await asyncio.sleep(0.05)
                if Stubborn.release is not None and Stubborn.release.is_set():
                    return {"late": True}
            except asyncio.CancelledError:
                continue


async def test_an_executor_that_swallows_cancellation_is_abandoned_and_frees_its_slot(db):
    executor_register(Stubborn)
    Stubborn.release = asyncio.Event()
    manager = TaskManager(db, max_concurrency=1, cancel_grace_period=0.2)
    first = TaskTreeNode(await manager.task_repository.create_task(name="stubborn", id="s1"))
    with subscribe(types=["warning"]) as warnings:
        running = asyncio.ensure_future(manager.distribute_task_tree(first))
        await until(lambda: first.task.status == "in_progress")
        await manager.cancel_task("s1")
        assert first.task.status == "cancelled"
        await asyncio.wait_for(running, 5)  # the tree ends: nobody waits for the runaway coroutine
        await until(lambda: warnings.pending > 0)
        assert "ignored cancellation" in warnings.get_nowait().data["message"]
    second = TaskTreeNode(await manager.task_repository.create_task(name="noop", id="n1"))
    assert (await asyncio.wait_for(manager.distribute_task_tree(second), 5)).tree_status == "completed"
    runaway = manager._runs.get("s1")  # the tree is over: the runaway is no run's task any more
    assert runaway is None
    Stubborn.release.set()  # let the runaway end: its late result changes nothing
    await until(lambda: all(t.done() for t in asyncio.all_tasks() if "run_task" in repr(t.get_coro())))
    assert first.task.status == "cancelled" and first.task.result.get("late") is None


async def test_a_post_hook_or_storage_that_never_returns_does_not_hang_the_run(db):
    hang = asyncio.Event()

    @register_post_hook
    async def never_returns(task, inputs, result):
        await hang.wait()

    class Stuck(StorageExtension):
        id = "stuck_storage"

        async def save_task(self, task):
            await hang.wait()

        async def get_task(self, task_id):
            return None

    storage_register(Stuck)
    manager = TaskManager(db, hook_timeout=0.3)
    node = TaskTreeNode(await manager.task_repository.create_task(name="noop", id="t"))
    with subscribe(types=["hook_error"]) as errors:
        await asyncio.wait_for(manager.distribute_task_tree(node), 10)
        await until(lambda: errors.pending >= 2)
        sources = {e.data["source"] for e in errors.drain_nowait()}
    assert node.task.status == "completed"
    assert "storage 'stuck_storage'" in sources and any("never_returns" in s for s in sources)


@pytest.mark.timing
async def test_another_process_holding_the_write_lock_does_not_freeze_the_loop(tmp_path):
    class Ticks(ExecutableTask):
        id = "ticks"

        async def execute(self, inputs):
            for i in range(40):
                await self.event_queue.put({"type": "progress", "data": {"progress": (i + 1) / 40}})
                await asyncio.sleep(0.05)
            return {"done": True}

    executor_register(Ticks)
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    db = create_session(url)
    manager = TaskManager(db, flush_interval=0.02)
    specs = [{"id": "root", "name": "aggregate_results_executor"}]
    specs += [{"id": f"t{i}", "name": "ticks", "parent_id": "root"} for i in range(10)]
    node = await manager.task_repository.create_task_tree_from_array(specs)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:  # another writer: BEGIN IMMEDIATE held for 3 s
        conn = sqlite3.connect(str(tmp_path / "locked.db"), timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(3.0)
        conn.rollback()
        conn.close()

    gaps = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    running = asyncio.ensure_future(manager.distribute_task_tree(node))
    await until(lambda: node.find("t0").task.status == "in_progress")
    holder = threading.Thread(target=hold_lock)
    holder.start()  # the tasks stream progress and finish while another process holds the lock
    await asyncio.to_thread(locked.wait)
    await running
    ticking.cancel()
    holder.join()
    assert node.tree_status == "completed"
    assert max(gaps) <= 0.1, f"the loop stalled {max(gaps):.3f} s"
    assert dict(rows(url, "select status, count(*) from apflow_tasks group by status")) == {"completed": 11}
    db.close()
