"""Generated bad input (hypothesis): random task arrays with cycles, self-dependencies, unknown and
duplicate ids, wrong types, huge or deeply nested inputs, non-JSON values, executors that raise,
hang or return non-JSON. Every case either runs to a final state or is rejected with a named error
before anything is written; afterwards the store is consistent."""
from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.core.errors import ApflowError

EXECUTORS = ["ok", "raises", "fails", "not_json", "hangs", "typed", "nowhere"]


def register_executors():
    @executor_register
    async def ok(**inputs) -> dict:
        return {"n": len(inputs)}

    @executor_register
    async def raises(**inputs) -> dict:
        raise RuntimeError("executor bug")

    @executor_register
    async def fails(**inputs) -> dict:
        return {"status": "failed", "error": "refused"}

    @executor_register
    async def not_json(**inputs) -> dict:
        return {"when": datetime.now()}

    class Hangs(ExecutableTask):
        id = "hangs"

        async def execute(self, inputs):
            await asyncio.sleep(3600)
            return {}

    executor_register(Hangs)

    @executor_register
    async def typed(x: int, label: str = "") -> dict:
        return {"x": x}


def nested(depth):
    value = "leaf"
    for _ in range(depth):
        value = {"d": value}
    return value


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=8),
                      st.floats(allow_nan=False, allow_infinity=False))
weird_value = st.one_of(
    json_leaf,
    st.lists(json_leaf, max_size=4),
    st.just("x" * 200_000),  # huge
    st.integers(1, 200).map(nested),  # deep
    st.just(nested(3000)),  # deeper than JSON encoders go
    st.just(float("nan")), st.just({1, 2}), st.just(datetime(2020, 1, 1)),  # not JSON
)


@st.composite
def task_arrays(draw):
    """Mostly well-formed trees (so many run), each with a chance of one or more corruptions."""
    n = draw(st.integers(1, 10))
    ids = [f"t{i}" for i in range(n)]
    rare = lambda: draw(st.integers(0, 99)) < 4  # noqa: E731 - each corruption in ~4% of draws
    tasks = []
    for i in range(n):
        task = {"id": ids[i], "name": draw(st.sampled_from(EXECUTORS))}
        if i > 0:
            task["parent_id"] = draw(st.sampled_from(ids[:i]))
            if rare():
                task["parent_id"] = draw(st.sampled_from([ids[i], "ghost", None] + ids[i:]))
        deps = draw(st.lists(st.sampled_from(ids[:i]), max_size=3)) if i > 0 else []
        if rare():
            deps.append(draw(st.sampled_from(ids + ["ghost"])))  # cycles, self-dependencies, unknown ids
        if deps:
            task["dependencies"] = [{"id": d, "required": draw(st.booleans())} if draw(st.booleans()) else d
                                    for d in deps]
        if draw(st.booleans()):
            task["inputs"] = draw(st.dictionaries(st.sampled_from(["x", "label", "y"]), json_leaf, max_size=3))
        if rare():
            task["inputs"] = {"x": draw(weird_value)}  # huge, deep or not JSON
        if rare():
            task["inputs"] = draw(st.sampled_from([[1], "text", 3]))  # wrong type
        if rare():
            task["priority"] = draw(st.sampled_from([-1, "high", 1.5, True, 0, 3]))
        if rare():
            task["id"] = ids[max(0, i - 1)]  # duplicate id
        if rare() and i > 0:
            del task["id"]  # mixed id / no id
        if rare():
            task["name"] = draw(st.sampled_from(["", None, 5]))
        tasks.append(task)
    return tasks


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"


@pytest.fixture(scope="module")
def outcomes():
    """Counts of what the generated cases did; both paths must have been exercised many times."""
    counts = {"rejected": 0, "ran": 0, "cancelled_hang": 0, "failed_tasks": 0, "completed_tasks": 0}
    yield counts
    print("fuzz outcomes:", counts)
    assert counts["rejected"] > 200 and counts["ran"] > 200, counts
    assert counts["cancelled_hang"] > 20 and counts["failed_tasks"] > 100 and counts["completed_tasks"] > 100, counts


def check_consistent(db):
    q = lambda sql: db.execute(text(sql)).scalar()  # noqa: E731
    assert q("select count(*) from apflow_tasks where status = 'in_progress'") == 0, "a task was left in_progress"
    assert q("select count(*) from apflow_tasks c where c.parent_id is not null and not exists "
             "(select 1 from apflow_tasks p where p.id = c.parent_id)") == 0, "a row's parent is not stored"
    return q("select count(*) from apflow_tasks")


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(tasks=task_arrays())
def test_random_trees_run_or_are_rejected_cleanly(store, outcomes, tasks):
    register_executors()

    async def case():
        db = create_session(store)
        manager = TaskManager(db, cancel_grace_period=0.05, flush_interval=0.01)
        before = check_consistent(db)
        try:
            tree = await manager.task_repository.create_task_tree_from_array(tasks)
        except (ApflowError, ValueError, TypeError) as exc:
            assert type(exc).__name__ != "ValueError" or "priority" in str(exc) or "dependencies" in str(exc), exc
            assert str(exc)  # a named error with a message
            assert check_consistent(db) == before, "a rejected tree wrote rows"
            outcomes["rejected"] += 1
            db.close()
            return
        run = asyncio.ensure_future(manager.distribute_task_tree(tree))
        done, _ = await asyncio.wait({run}, timeout=0.05)
        if not done:  # something hangs: cancel the tree, which must end every task
            await manager.cancel_tree(tree.task.id)
            await asyncio.wait_for(run, 5)
            outcomes["cancelled_hang"] += 1
        outcomes["ran"] += 1
        for node in tree.walk():
            if node.task.status == "failed":
                outcomes["failed_tasks"] += 1
            elif node.task.status == "completed":
                outcomes["completed_tasks"] += 1
        statuses = {n.task.status for n in tree.walk()}
        assert statuses <= {"completed", "failed", "cancelled"}, statuses
        assert check_consistent(db) == before + len(tasks)
        db.close()

    asyncio.run(case())
