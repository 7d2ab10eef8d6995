"""Caching keyed by code and inputs, retries with delays and jitter, and timeouts (issue 15)."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register, subscribe
from apflow_nb.core.errors import TaskArrayError
from apflow_nb.core.storage import cache as cache_store
from tests.trees import tasks_by_key, tree
from tests.waiting import until

calls: dict[str, int] = {}


def counted(name: str) -> None:
    calls[name] = calls.get(name, 0) + 1


@pytest.fixture(autouse=True)
def fresh_counts():
    calls.clear()


def register_pipeline(offset: int = 0) -> None:
    @executor_register(cache=True)
    async def load(n: int) -> dict:
        counted("load")
        return {"rows": n * 10}

    code = f'''
async def score(rows: int) -> dict:
    counted("score")
    return {{"score": rows + {offset}}}
'''
    namespace = {"counted": counted}
    exec(compile(code, "<cell>", "exec"), namespace)  # like a notebook cell: no source file to read
    executor_register(namespace["score"], cache=True)

    @executor_register(cache=True)
    async def report(score: int) -> dict:
        counted("report")
        return {"line": f"score {score}"}


PIPELINE = [{"id": "report", "name": "report", "dependencies": ["score"]},
            {"id": "score", "name": "score", "dependencies": ["load"]},
            {"id": "load", "name": "load", "inputs": {"n": 2}}]


async def run_pipeline(manager, inputs=None):
    specs = [dict(s) for s in PIPELINE]
    if inputs:
        specs[2]["inputs"] = inputs
    node = await tree(manager, *specs)
    with subscribe(root_id=node.task.id, types=["task_completed"]) as done:
        await manager.distribute_task_tree(node)
        events = {e.task_id: e.data for e in done.drain_nowait()}
    return node, events


async def test_a_second_run_hits_the_cache_and_says_from_which_task(manager):
    register_pipeline()
    first, _ = await run_pipeline(manager)
    second, events = await run_pipeline(manager)
    assert calls == {"load": 1, "score": 1, "report": 1}
    assert second.task.result == first.task.result == {"line": "score 20"}
    t1, t2 = tasks_by_key(first), tasks_by_key(second)
    assert all(t2[k].cached_from == t1[k].id and t2[k].status == "completed" for k in t1)
    assert events[t2["report"].id]["cached"] is True and events[t2["report"].id]["cached_from"] == t1["report"].id
    assert t1["report"].cached_from is None and t1["report"].attempts == 1


async def test_changed_inputs_and_changed_code_recompute_exactly_what_they_touch(manager):
    register_pipeline()
    await run_pipeline(manager)
    await run_pipeline(manager, {"n": 3})  # new input: everything downstream of load changes
    assert calls == {"load": 2, "score": 2, "report": 2}
    calls.clear()
    register_pipeline(offset=0)  # the cell run again, unchanged: every task hits
    await run_pipeline(manager)
    assert calls == {}
    register_pipeline(offset=1)  # score's code changed: score and what depends on its result
    await run_pipeline(manager)
    assert calls == {"score": 1, "report": 1}
    calls.clear()
    register_pipeline(offset=1)

    async def same_result_other_code(rows: int) -> dict:  # new code, same result: report still hits
        counted("score")
        return {"score": rows + 1}

    executor_register(same_result_other_code, executor_id="score", cache=True)
    await run_pipeline(manager)
    assert calls == {"score": 1}


async def test_who_decides_the_task_then_the_executor_then_the_run(db):
    @executor_register
    async def plain() -> dict:
        counted("plain")
        return {}

    class Declares(ExecutableTask):
        id = "declares"
        cache = True

        async def execute(self, inputs):
            counted("declares")
            return {}

    executor_register(Declares)
    specs = ({"id": "r", "name": "plain"}, {"id": "d", "name": "declares"}, {"id": "off", "name": "declares",
                                                                              "cache": False})
    manager = TaskManager(db)
    for _ in range(2):
        await manager.distribute_task_tree(await tree(manager, *specs))
    assert calls == {"plain": 2, "declares": 3}  # d hit the second time; off never caches
    caching_run = TaskManager(db, cache=True)
    calls.clear()
    for _ in range(2):
        await caching_run.distribute_task_tree(await tree(caching_run, *specs))
    assert calls == {"plain": 1, "declares": 2}


async def test_failed_results_are_never_cached_and_entries_expire_and_clear(manager):
    @executor_register(cache=True, cache_ttl=0.3)
    async def flaky(x: int) -> dict:
        counted("flaky")
        if calls["flaky"] == 1:
            raise RuntimeError("first call fails")
        return {"x": x}

    for _ in range(3):
        await manager.distribute_task_tree(await tree(manager, {"name": "flaky", "inputs": {"x": 1}}))
    assert calls["flaky"] == 2  # failed, computed, then a hit
    written = time.time()
    await until(lambda: time.time() > written + 0.35)  # past the entry's time to live
    await manager.distribute_task_tree(await tree(manager, {"name": "flaky", "inputs": {"x": 1}}))
    assert calls["flaky"] == 3
    engine = manager.db.get_bind()
    assert cache_store.stats(engine) == [("flaky", 1)]
    assert apflow_nb.clear_cache(store=manager.db, older_than=timedelta(hours=1)) == 0
    assert apflow_nb.clear_cache(executor="flaky", store=manager.db) == 1
    assert cache_store.stats(engine) == []


EXECUTORS = """
from apflow_nb import executor_register

@executor_register(cache=True)
async def expensive(x: int) -> dict:
    return {"y": x * 2}
"""

PRODUCER = textwrap.dedent('''
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    import shared_executors
    from apflow_nb import TaskManager, create_session

    async def main():
        manager = TaskManager(create_session(sys.argv[1]))
        node = await manager.task_repository.create_task_tree_from_array([{"id": "e", "name": "expensive",
                                                                          "inputs": {"x": 21}}])
        await manager.distribute_task_tree(node)
        print(node.task.id)

    asyncio.run(main())
''')


async def test_the_cache_is_shared_by_processes_through_the_store(store_url, tmp_path, monkeypatch):
    (tmp_path / "shared_executors.py").write_text(EXECUTORS)  # one module both processes import
    produced = subprocess.run([sys.executable, "-c", PRODUCER, store_url, str(tmp_path)], capture_output=True,
                              text=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    import shared_executors  # noqa: F401 - registers the executor here too

    db = create_session(store_url)
    manager = TaskManager(db)
    node = await tree(manager, {"id": "e", "name": "expensive", "inputs": {"x": 21}})
    await manager.distribute_task_tree(node)
    db.close()
    sys.modules.pop("shared_executors", None)
    assert node.task.result == {"y": 42} and node.task.id != "e"
    assert node.task.cached_from == produced.stdout.strip() == "e"


class Flaky(ExecutableTask):
    """Fails ``fail_times`` times, then succeeds; reports each call as an event."""

    id = "flaky"

    async def execute(self, inputs):
        await self.event_queue.put({"type": "call"})
        counted("flaky")
        if calls["flaky"] <= inputs["fail_times"]:
            raise ConnectionError(f"attempt {calls['flaky']} failed")
        return {"attempt": calls["flaky"]}


async def attempt_events(manager, *specs):
    node = await tree(manager, *specs)
    with subscribe(root_id=node.task.id, types=["executor", "task_retrying", "task_completed", "task_failed"]) as sub:
        await manager.distribute_task_tree(node)
        return node, sub.drain_nowait()


async def test_retries_wait_their_delays_and_keep_attempts_and_the_last_error(manager):
    executor_register(Flaky)
    node, events = await attempt_events(manager, {"name": "flaky", "inputs": {"fail_times": 2}, "retries": 3,
                                                  "retry_delay": [0.1, 0.2]})
    assert node.task.status == "completed" and node.task.result == {"attempt": 3} and node.task.attempts == 3
    kinds = [e.type.value for e in events]
    assert kinds == ["executor", "task_retrying", "executor", "task_retrying", "executor", "task_completed"]
    retries = [e for e in events if e.type.value == "task_retrying"]
    assert [r.data["delay_s"] for r in retries] == [0.1, 0.2]
    assert "attempt 1 failed" in retries[0].data["error"] and retries[0].data["error_type"] == "ConnectionError"
    for retry, next_call in ((events[1], events[2]), (events[3], events[4])):
        assert next_call.timestamp - retry.timestamp >= retry.data["delay_s"] - 0.005
    calls.clear()
    failed, _ = await attempt_events(manager, {"name": "flaky", "inputs": {"fail_times": 5}, "retries": 1})
    assert failed.task.status == "failed" and failed.task.attempts == 2 and "attempt 2 failed" in failed.task.error


async def test_jitter_stretches_each_delay_within_its_bound(manager):
    executor_register(Flaky)
    node, events = await attempt_events(manager, {"name": "flaky", "inputs": {"fail_times": 4}, "retries": 4,
                                                  "retry_delay": 0.05, "retry_jitter": 0.5})
    delays = [e.data["delay_s"] for e in events if e.type.value == "task_retrying"]
    assert len(delays) == 4 and all(0.05 <= d <= 0.075 for d in delays) and len(set(delays)) > 1


class Sleeper(ExecutableTask):
    """Cooperative (stops when the checker turns true) or stubborn (only asyncio cancellation stops it)."""

    id = "sleeper"
    cancels = 0

    async def execute(self, inputs):
        counted("sleeper")
        for _ in range(400):
            if inputs.get("cooperative") and self.cancellation_checker():
                return {"status": "cancelled", "stopped": True}
            await asyncio.sleep(0.01)
        return {"finished": True}

    async def cancel(self):
        type(self).cancels += 1
        return {"status": "cancelled"}


async def test_a_timeout_stops_the_attempt_through_the_cancellation_path_and_counts_as_a_failure(db):
    executor_register(Sleeper)
    Sleeper.cancels = 0
    manager = TaskManager(db, cancel_grace_period=0.2)
    node, _ = await attempt_events(manager, {"id": "polite", "name": "sleeper", "inputs": {"cooperative": True},
                                             "timeout": 0.1, "retries": 1})
    task = node.task
    assert task.status == "failed" and task.result["error_type"] == "TaskTimeout" and task.attempts == 2
    assert Sleeper.cancels == 2 and calls["sleeper"] == 2  # cancel() of each attempt, then retried once
    stubborn, _ = await attempt_events(manager, {"id": "stubborn", "name": "sleeper", "timeout": 0.1})
    took = (stubborn.task.completed_at - stubborn.task.started_at).total_seconds()
    assert stubborn.task.result["error_type"] == "TaskTimeout" and 0.3 <= took < 3.5  # timeout + grace period


async def test_cancelling_a_task_that_waits_to_retry_ends_it_at_once(manager):
    executor_register(Flaky)
    node = await tree(manager, {"id": "f", "name": "flaky", "inputs": {"fail_times": 9}, "retries": 3,
                                "retry_delay": 30})
    with subscribe(root_id=node.task.id, types=["task_retrying"]) as retrying:
        running = asyncio.ensure_future(manager.distribute_task_tree(node))
        await until(lambda: retrying.pending > 0)
    out = await manager.cancel_task(node.task.id)
    await asyncio.wait_for(running, 5)  # not the 30 s delay
    assert out["status"] == node.task.status == "cancelled" and calls["flaky"] == 1
    assert "waiting to retry" in node.task.result["message"]


@pytest.mark.parametrize("setting, words", [
    ({"retries": -1}, "retries must be an integer from 0"), ({"retries": True}, "retries must be an integer"),
    ({"retry_delay": [1, -2]}, "retry_delay must be seconds"), ({"retry_jitter": 2}, "retry_jitter must be"),
    ({"timeout": 0}, "timeout must be a number of seconds > 0"), ({"cache": "yes"}, "cache must be true or false"),
])
async def test_bad_settings_are_named_before_anything_is_stored(manager, setting, words):
    with pytest.raises(TaskArrayError, match=words):
        await tree(manager, {"id": "a", "name": "noop", **setting})
    with pytest.raises(ValueError, match=words.split(" must")[0]):
        executor_register(lambda: {}, executor_id="lam", **setting)


async def test_runs_with_different_secret_inputs_do_not_share_a_cache_entry(manager):
    from pydantic import BaseModel, SecretStr

    from apflow_nb import BaseTask

    class Wants(BaseModel):
        api_key: SecretStr
        q: str

    class Search(BaseTask):
        id = "search"
        cache = True
        inputs_schema = Wants

        async def execute(self, inputs):
            counted("search")
            return {"q": inputs["q"], "key_len": len(inputs["api_key"].get_secret_value())}

    executor_register(Search)
    for key in ("first-key", "first-key", "other-key-2"):
        await manager.distribute_task_tree(await tree(manager, {"name": "search", "inputs": {"api_key": key, "q": "x"}}))
    assert calls["search"] == 2  # the same secret hit, another secret computed (the key hashes it, never stores it)


CLASS_CELL = '''
class Scale(ExecutableTask):
    id = "scale"

    async def execute(self, inputs):
        counted("scale")
        return {{"y": inputs["x"] * {factor}}}
'''


def register_class(factor: int) -> None:
    """An ExecutableTask subclass defined the way a notebook cell defines it (no source file)."""
    namespace = {"ExecutableTask": ExecutableTask, "counted": counted}
    exec(compile(CLASS_CELL.format(factor=factor), "<cell>", "exec"), namespace)
    executor_register(namespace["Scale"], cache=True)


async def test_a_class_executor_whose_code_changed_recomputes_and_an_unchanged_one_hits(manager):
    results = []
    for factor in (2, 2, 3, 3):  # define, re-run the same cell, edit it, re-run the edit
        register_class(factor)
        node = await tree(manager, {"id": "s", "name": "scale", "inputs": {"x": 5}})
        await manager.distribute_task_tree(node)
        results.append((node.task.result, node.task.cached_from is not None))
    assert results == [({"y": 10}, False), ({"y": 10}, True), ({"y": 15}, False), ({"y": 15}, True)]
    assert calls == {"scale": 2}
