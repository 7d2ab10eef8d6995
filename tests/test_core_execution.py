"""How trees run: results, inputs from dependencies, order, concurrency, re-runs, bad trees."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import pytest
from pydantic import BaseModel

from apflow_nb import BaseTask, ExecutableTask, TaskManager, TaskTreeNode, create_session, executor_register
from apflow_nb.core.errors import CircularDependencyError, DuplicateTaskIdError, UnknownDependencyError
from tests.trees import tasks_by_key, tree



def fresh_row(manager, task_id):
    """Read a task back through a brand-new session, as another process would."""
    url = str(manager.db.get_bind().url)
    other = create_session(url)
    try:
        return other.get(type(manager.task_repository.model()), task_id)
    finally:
        other.close()


@pytest.fixture
def basics():
    @executor_register
    async def const(value=None) -> dict:
        return {"value": value}

    @executor_register
    async def boom() -> dict:
        raise ZeroDivisionError("division by zero in user code")

    @executor_register
    async def report_failure() -> dict:
        return {"status": "failed", "error": "the executor said no"}

    @executor_register
    async def report_cancelled() -> dict:
        return {"status": "cancelled", "message": "gave up"}

    @executor_register
    async def not_json() -> dict:
        return {"when": datetime.now(timezone.utc)}

    class Collect(ExecutableTask):
        id = "collect"

        async def execute(self, inputs):
            return {"inputs": inputs}

    executor_register(Collect)


async def test_results_map_to_status(manager, basics):
    repo = manager.task_repository
    cases = {"const": "completed", "boom": "failed", "report_failure": "failed",
             "report_cancelled": "cancelled", "not_json": "failed"}
    nodes = {}
    for name in cases:
        task = await repo.create_task(name=name)
        nodes[name] = await manager.distribute_task_tree(TaskTreeNode(task))
    for name, status in cases.items():
        assert nodes[name]["status"] == status, name
        row = fresh_row(manager, nodes[name]["id"])
        assert row.status == status and row.completed_at is not None and row.completed_at.tzinfo is not None
    boom = fresh_row(manager, nodes["boom"]["id"])
    assert boom.error.startswith("ZeroDivisionError: division by zero in user code")
    assert "Traceback" in boom.error and "in boom" in boom.error
    assert boom.result["error_type"] == "ZeroDivisionError" and "Traceback" in boom.result["traceback"]
    assert nodes["report_failure"]["error"] == "the executor said no"
    assert "cannot be stored as JSON" in nodes["not_json"]["error"] and "datetime" in nodes["not_json"]["error"]


async def test_node_supports_item_and_attribute_access(manager, basics):
    node = await tree(manager, {"name": "const", "inputs": {"value": 7}})
    node = await manager.distribute_task_tree(node)
    assert node["status"] == node.status == "completed"
    assert node["result"] == node.result == {"value": 7}
    assert node["progress"] == node.progress == 1.0
    assert node["error"] is None and node.get("nope", "dflt") == "dflt"
    with pytest.raises(KeyError):
        node["nope"]


async def test_inputs_validated_before_execute(manager):
    calls = []

    class Inputs(BaseModel):
        data: str
        count: int = 10

    class Strict(BaseTask):
        id = "strict"
        inputs_schema = Inputs

        async def execute(self, inputs):
            calls.append(inputs)
            return {"count": inputs["count"]}

    executor_register(Strict)
    bad = await tree(manager, {"name": "strict", "inputs": {"count": "many"}})
    bad = await manager.distribute_task_tree(bad)
    assert bad["status"] == "failed" and calls == []
    assert "inputs.data: Field required" in bad["error"] and "inputs.count" in bad["error"]
    good = await manager.distribute_task_tree(await tree(manager, {"name": "strict", "inputs": {"data": "x"}}))
    assert good["result"] == {"count": 10} and calls[0]["count"] == 10


async def test_dependency_results_flow_into_inputs(manager, basics):
    class Wants(BaseModel):
        value: int = 0

    class Typed(BaseTask):
        id = "typed"
        inputs_schema = Wants

        async def execute(self, inputs):
            return {"got": inputs["value"], "keys": sorted(inputs)}

    executor_register(Typed)
    node = await tree(manager, {"name": "collect", "id": "root", "dependencies": ["typed", "keyed"]},
                      {"name": "const", "id": "a", "inputs": {"value": 5}},
                      {"name": "const", "id": "b", "inputs": {"value": [1, 2]}},
                      {"name": "typed", "id": "typed", "dependencies": ["a"]},
                      {"name": "collect", "id": "keyed", "dependencies": ["a", "b"], "inputs": {"own": 1}})
    typed, keyed = tasks_by_key(node)["typed"], tasks_by_key(node)["keyed"]
    await manager.distribute_task_tree(node)
    # a schema with matching field names: the fields are copied in
    assert typed.result == {"got": 5, "keys": ["a" if False else "value"]}
    # no schema: whole results keyed by dependency id, own inputs kept
    assert keyed.result == {"inputs": {"own": 1, "a": {"value": 5}, "b": {"value": [1, 2]}}}
    # merged inputs are stored
    assert fresh_row(manager, "typed").inputs == {"value": 5}
    assert fresh_row(manager, "keyed").inputs == {"own": 1, "a": {"value": 5}, "b": {"value": [1, 2]}}


async def test_result_wrapped_in_result_dict_is_unwrapped(manager):
    class Wants(BaseModel):
        total: int

    class Consumer(BaseTask):
        id = "consumer"
        inputs_schema = Wants

        async def execute(self, inputs):
            return {"total_seen": inputs["total"]}

    @executor_register
    async def producer() -> dict:
        return {"status": "completed", "result": {"total": 41}}

    executor_register(Consumer)
    node = await tree(manager, {"name": "producer", "id": "p"}, {"name": "consumer", "id": "c", "dependencies": ["p"]})
    c = tasks_by_key(node)["c"]
    await manager.distribute_task_tree(node)
    assert c.result == {"total_seen": 41}


async def test_failed_required_dependency_fails_dependents_without_running(manager, basics):
    ran = []

    @executor_register
    async def tracked(**kw) -> dict:
        ran.append(kw)
        return {"ok": True}

    node = await tree(manager, {"name": "tracked", "id": "root", "dependencies": ["mid"]},
                      {"name": "boom", "id": "bad"}, {"name": "tracked", "id": "mid", "dependencies": ["bad"]},
                      {"name": "tracked", "id": "opt", "dependencies": [{"id": "bad", "required": False}]})
    root, bad, mid, opt = (tasks_by_key(node)[k] for k in ("root", "bad", "mid", "opt"))
    await manager.distribute_task_tree(node)
    assert bad.status == "failed"
    assert mid.status == "failed" and "skipped: required dependency 'bad' failed" in mid.error and mid.result["error_type"] == "DependencyFailed"
    assert root.status == "failed" and "'mid'" in root.error
    assert opt.status == "completed"  # an optional failed dependency does not block
    assert len(ran) == 1  # only `opt` ran
    assert node.tree_status == "failed"
    assert fresh_row(manager, "mid").status == "failed"


async def test_optional_dependency_waits_for_final_state(manager):
    order = []

    @executor_register
    async def slow(tag: str) -> dict:
        await asyncio.sleep(0.1)
        order.append(tag)
        return {"tag": tag}

    @executor_register
    async def fast(label: str, **kw) -> dict:
        order.append(label)
        return {"saw": sorted(kw)}

    node = await tree(manager, {"name": "fast", "id": "r", "inputs": {"label": "dependent"},
                                "dependencies": [{"id": "s", "required": False}]},
                      {"name": "slow", "id": "s", "inputs": {"tag": "optional"}})
    root = node.task
    await manager.distribute_task_tree(node)
    assert order == ["optional", "dependent"]
    assert root.result == {"saw": ["s"]}


@pytest.mark.timing
async def test_ready_tasks_run_concurrently(manager):
    @executor_register
    async def nap() -> dict:
        await asyncio.sleep(0.1)
        return {}

    node = await tree(manager, {"name": "aggregate_results_executor", "id": "root"},
                      *({"name": "nap", "id": f"n{i}"} for i in range(100)))
    t0 = time.perf_counter()
    await manager.distribute_task_tree(node)
    elapsed = time.perf_counter() - t0
    assert node.tree_status == "completed"
    assert elapsed < 0.6, f"100 concurrent 0.1 s tasks took {elapsed:.2f} s"  # serial would be 10 s


async def test_max_concurrency_bounds_and_priority_orders(db):
    manager = TaskManager(db, max_concurrency=2)
    running = 0
    peak = 0
    started = []

    @executor_register
    async def work(tag: str) -> dict:
        nonlocal running, peak
        started.append(tag)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return {}

    prios = [3, 2, 0, 1, 3, 0, 2, 1]
    node = await tree(manager, {"name": "aggregate_results_executor", "id": "root",
                                "dependencies": [f"t{i}" for i in range(8)]},
                      *({"name": "work", "id": f"t{i}", "priority": p, "inputs": {"tag": f"p{p}-{i}"}}
                        for i, p in enumerate(prios)))
    await manager.distribute_task_tree(node)
    assert peak == 2
    assert [int(t[1]) for t in started] == sorted(prios)  # urgent (0) first, low (3) last
    assert started[:2] == ["p0-2", "p0-5"]  # equal priority: creation order


async def test_rerun_keeps_completed_and_reruns_failed_and_downstream(manager):
    counts = {"a": 0, "b": 0, "c": 0}
    flaky_ok = {"value": False}

    @executor_register
    async def step(tag: str, **kw) -> dict:
        counts[tag] += 1
        if tag == "b" and not flaky_ok["value"]:
            raise RuntimeError("b failed the first time")
        return {"done": tag}

    node = await tree(manager, {"name": "step", "id": "a", "inputs": {"tag": "a"}},
                      {"name": "step", "id": "b", "inputs": {"tag": "b"}, "dependencies": ["a"]},
                      {"name": "step", "id": "c", "inputs": {"tag": "c"}, "dependencies": ["b"]})
    a, b, c = (tasks_by_key(node)[k] for k in "abc")
    await manager.distribute_task_tree(node)
    assert (a.status, b.status, c.status) == ("completed", "failed", "failed")
    flaky_ok["value"] = True
    await manager.distribute_task_tree(node)
    assert (a.status, b.status, c.status) == ("completed", "completed", "completed")
    assert counts == {"a": 1, "b": 2, "c": 1}
    assert b.error is None and fresh_row(manager, "c").status == "completed"


@pytest.mark.parametrize("case", ["cycle", "self", "duplicate", "unknown"])
async def test_bad_trees_rejected_before_anything_runs(manager, case, basics):
    node = await tree(manager, {"name": "const", "id": "a"}, {"name": "const", "id": "b"},
                      {"name": "const", "id": "c"})
    b, c = tasks_by_key(node)["b"], tasks_by_key(node)["c"]
    if case == "cycle":
        b.dependencies = [{"id": "c", "required": True}]
        c.dependencies = [{"id": "b", "required": True}]
        err, msg = CircularDependencyError, "Circular dependency detected: b -> c -> b"
    elif case == "self":
        b.dependencies = ["b"]
        err, msg = CircularDependencyError, "b -> b"
    elif case == "duplicate":
        node.add_child(TaskTreeNode(b))
        err, msg = DuplicateTaskIdError, "'b' appears more than once"
    else:
        c.dependencies = ["ghost"]
        err, msg = UnknownDependencyError, "depends on 'ghost', which is not part of the tree"
    manager.db.commit()
    before = {t: fresh_row(manager, t).updated_at for t in "abc"}
    with pytest.raises(err, match=msg.replace("(", r"\(").replace(")", r"\)")):
        await manager.distribute_task_tree(node)
    for t in "abc":
        row = fresh_row(manager, t)
        assert row.status == "pending" and row.updated_at == before[t] and row.started_at is None


async def test_progress_and_timestamps_persisted(manager, basics):
    node = await manager.distribute_task_tree(await tree(manager, {"name": "const"}))
    row = fresh_row(manager, node["id"])
    assert row.progress == 1.0 and row.owner and row.root_id == row.id
    assert row.created_at <= row.started_at <= row.completed_at
    assert row.started_at.tzinfo is not None


async def test_event_log_written_with_the_state(manager, basics):
    from sqlalchemy import text

    node = await manager.distribute_task_tree(await tree(manager, {"name": "const", "id": "r"}, {"name": "boom", "id": "x"}))
    rows = manager.db.execute(text("select event_type, task_id, status from apflow_task_events "
                                   "where root_id = :r order by id"), {"r": node["id"]}).all()
    kinds = [r[0] for r in rows]
    assert kinds[0] == "tree_started" and kinds[-1] == "tree_finished"
    assert kinds.count("task_started") == 2 and "task_failed" in kinds and "task_completed" in kinds


async def test_dependency_value_overrides_own_input_of_same_name(manager):
    """Documented rule (as upstream): a dependency's field of a declared input name wins."""
    @executor_register
    async def passthrough(tag: str) -> dict:
        return {"tag": tag + "+"}

    node = await tree(manager, {"name": "passthrough", "id": "a", "inputs": {"tag": "a"}},
                      {"name": "passthrough", "id": "b", "inputs": {"tag": "b"}, "dependencies": ["a"]})
    b = tasks_by_key(node)["b"]
    await manager.distribute_task_tree(node)
    assert b.result == {"tag": "a++"}


def test_cycles_are_found_whatever_order_the_tasks_are_listed_in():
    """Trees whose dependencies all point to tasks listed earlier are checked with one look-up per dependency;
    any other order (forward references, cycles) gets the full search, which names the cycle."""
    import itertools

    from apflow_nb.core.tree_check import find_cycle

    acyclic = {"a": (), "b": ["a"], "c": ["a", "b"], "d": ["c"]}
    cyclic = {"a": (), "b": ["a", "d"], "c": ["b"], "d": ["c"]}  # b -> d -> c -> b
    for order in itertools.permutations("abcd"):
        find_cycle({k: acyclic[k] for k in order})  # no error, in any order
        with pytest.raises(CircularDependencyError) as info:
            find_cycle({k: cyclic[k] for k in order})
        assert set(info.value.cycle) == {"b", "c", "d"} and info.value.cycle[0] == info.value.cycle[-1]
    find_cycle({"x": ["outside"], "y": ["x"]})  # a dependency outside the graph is on no cycle
