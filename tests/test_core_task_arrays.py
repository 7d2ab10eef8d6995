"""Task arrays: keys and runs, values the store would refuse, and the atomic id decision."""
from __future__ import annotations

import multiprocessing
import time

import pytest
from sqlalchemy import text

import apflow_nb
from apflow_nb import TaskManager, create_session
from apflow_nb.core.errors import DuplicateTaskIdError, TaskArrayError, TaskFieldError, UnknownTaskFieldError
from apflow_nb.core.storage.session import dispose_engines
from apflow_nb.core.storage.task_array import normalize_task_array

ARRAY = [
    {"id": "root", "name": "aggregate_results_executor", "dependencies": ["good", "bad"]},
    {"id": "good", "name": "aggregate_results_executor", "parent_id": "root"},
    {"id": "bad", "name": "aggregate_results_executor", "parent_id": "root", "inputs": {"x": 1}},
]


def stored(db, sql, **params):
    return db.execute(text(sql), params).all()


async def test_first_run_keeps_the_ids_and_every_later_run_tags_all_of_them(db):
    repo = TaskManager(db).task_repository
    first = await repo.create_task_tree_from_array(ARRAY)
    second = await repo.create_task_tree_from_array(ARRAY)
    assert {t.id for t in first.tasks()} == {"root", "good", "bad"}
    ids = {t.key: t.id for t in second.tasks()}
    tag = ids["root"].split("@")[1]
    assert ids == {k: f"{k}@{tag}" for k in ("root", "good", "bad")}  # all of them, one tag for the run
    assert [d["id"] for d in second.task.dependencies] == [f"good@{tag}", f"bad@{tag}"]
    assert {t.root_id for t in second.tasks()} == {f"root@{tag}"}
    # the keys the user wrote stay queryable: one run by its root id, every run by key
    runs = apflow_nb.history(db, key="bad")
    assert sorted(runs["task_id"]) == ["bad", f"bad@{tag}"] and set(runs["key"]) == {"bad"}
    assert sorted(apflow_nb.history(db, root_id="root")["task_id"]) == ["bad", "good", "root"]
    assert list(apflow_nb.history(db, root_id=f"root@{tag}")["key"]) == ["root", "good", "bad"]
    assert second.find("bad").task.id == f"bad@{tag}"  # find() takes a key too


async def test_arrays_without_ids_are_keyed_by_name_and_single_tasks_by_their_id(db):
    repo = TaskManager(db).task_repository
    tree = await repo.create_task_tree_from_array([{"name": "aggregate_results_executor"},
                                                   {"name": "noop", "parent_id": "aggregate_results_executor"}])
    assert [t.key for t in tree.tasks()] == ["aggregate_results_executor", "noop"]
    task = await repo.create_task(name="noop")
    assert task.key == "noop" and task.id != "noop"  # no id given: known by its name
    assert (await repo.create_task(name="noop", id="mine")).key == "mine"


BAD_ARRAYS = [  # (task fields, words the error must contain)
    ({"priority": 2 ** 70}, ["task 'a'", "priority", "0 (urgent) to 3 (low)"]),
    ({"priority": 7}, ["task 'a'", "priority"]),
    ({"user_id": {"a": 1}}, ["task 'a'", "user_id must be a string"]),
    ({"name": "bad\ud800name"}, ["task 'a'", "name", "surrogate"]),
    ({"name": "nul\x00"}, ["task 'a'", "name", "NUL"]),
    ({"inputs": {"s": {1, 2}}}, ["task 'a'", "inputs cannot be stored as JSON", "set"]),
    ({"inputs": {"x": float("nan")}}, ["task 'a'", "inputs"]),
    ({"inputs": {"x": "\ud800"}}, ["task 'a'", "inputs", "surrogate"]),
    ({"status": "completed"}, ["task 'a'", "'status' cannot be set"]),
    ({"created_at": "2020-01-01"}, ["task 'a'", "'created_at'"]),
    ({"progress": 0.5}, ["task 'a'", "'progress'"]),
    ({"result": {"s": {1}}}, ["task 'a'", "'result'"]),
    ({"dependencies": [{"id": "b", "required": "false"}]}, ["task 'a'", "'required' must be true or false"]),
    ({"id": "x" * 300}, ["id is 300 characters long"]),
]


@pytest.mark.parametrize("fields, words", BAD_ARRAYS, ids=[str(i) for i in range(len(BAD_ARRAYS))])
async def test_values_a_store_would_refuse_are_named_before_anything_is_written(db, fields, words):
    repo = TaskManager(db).task_repository
    array = [dict({"id": "a", "name": "noop"}, **fields), {"id": "b", "name": "noop", "parent_id": "a"}]
    if "id" in fields:
        array[1]["parent_id"] = fields["id"]
    with pytest.raises(TaskArrayError) as info:
        await repo.create_task_tree_from_array(array)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert stored(db, "select count(*) from apflow_tasks") == [(0,)]
    # the session is still usable: the next good array is stored
    tree = await repo.create_task_tree_from_array([{"id": "ok", "name": "noop"}])
    assert tree.task.id == "ok" and stored(db, "select id from apflow_tasks") == [("ok",)]


async def test_create_task_checks_the_same_values_and_leaves_the_session_usable(db):
    repo = TaskManager(db).task_repository
    for kwargs in ({"priority": 2 ** 70}, {"user_id": {"a": 1}}, {"name": "x\ud800"}, {"inputs": {"s": {1}}},
                   {"status": "completed"}):
        with pytest.raises(TaskFieldError):
            await repo.create_task(**{"name": "noop", **kwargs})
    with pytest.raises(UnknownTaskFieldError, match="'colour'"):
        await repo.create_task(name="noop", colour="red")
    await repo.create_task(name="noop", id="same")
    with pytest.raises(DuplicateTaskIdError, match="'same' already exist"):
        await repo.create_task(name="noop", id="same")
    assert (await repo.create_task(name="noop", id="next")).id == "next"
    assert sorted(r[0] for r in stored(db, "select id from apflow_tasks")) == ["next", "same"]


def test_a_string_required_flag_is_refused_not_read_as_true():
    with pytest.raises(TaskArrayError, match="'required' must be true or false"):
        normalize_task_array([{"id": "a", "name": "n", "dependencies": [{"id": "b", "required": "false"}]},
                              {"id": "b", "name": "n", "parent_id": "a"}])
    specs = normalize_task_array([{"id": "a", "name": "n", "dependencies": [{"id": "b", "required": False}]},
                                  {"id": "b", "name": "n", "parent_id": "a"}])
    assert specs[0]["dependencies"] == [{"id": "b", "required": False}]


def test_a_parent_loop_is_named():
    with pytest.raises(TaskArrayError, match="task 'b' is not reachable from the root 'a'.*loop"):
        normalize_task_array([{"id": "a", "name": "n"}, {"id": "b", "name": "n", "parent_id": "c"},
                              {"id": "c", "name": "n", "parent_id": "b"}])


@pytest.mark.timing
def test_parent_checks_are_linear_in_a_deep_chain():
    deep = [{"id": "t0", "name": "n"}] + [{"id": f"t{i}", "name": "n", "parent_id": f"t{i - 1}"}
                                          for i in range(1, 20_000)]
    started = time.perf_counter()
    normalize_task_array(deep)
    assert time.perf_counter() - started < 2.0  # was 10 s: every task walked its whole chain


def _submit(url: str, barrier, out) -> None:
    from apflow_nb import TaskManager, create_session

    db = create_session(url)
    barrier.wait()
    try:
        import asyncio

        tree = asyncio.run(TaskManager(db).task_repository.create_task_tree_from_array(ARRAY))
        out.put(sorted(t.id for t in tree.tasks()))
    except Exception as exc:  # reported to the test, which fails on it
        out.put(f"{type(exc).__name__}: {exc}")
    finally:
        db.close()


def test_four_processes_with_the_same_ids_all_get_a_complete_run(store_url):
    create_session(store_url).close()  # tables first, so the race is on the ids alone
    dispose_engines()
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_submit, args=(store_url, barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert all(isinstance(r, list) for r in results), results
    assert results.count(["bad", "good", "root"]) == 1  # one run got the ids as written
    tags = {r[0].split("@")[1] for r in results if r != ["bad", "good", "root"]}
    assert len(tags) == 3  # each other run has its own tag on all of its tasks
    db = create_session(store_url)
    try:
        assert stored(db, "select count(*) from apflow_tasks") == [(12,)]
        assert stored(db, "select count(distinct root_id) from apflow_tasks") == [(4,)]
    finally:
        db.close()
