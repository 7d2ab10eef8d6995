"""Pre, post and tree hooks: sync and async, errors named, outcomes kept."""
from __future__ import annotations

import pytest

from apflow_nb import (TaskTreeNode, create_session, executor_register, register_post_hook, register_pre_hook,
                       register_task_tree_hook, subscribe)



@pytest.fixture
def echo():
    @executor_register
    async def echo(**inputs) -> dict:
        return {"inputs": inputs}

    @executor_register
    async def fail() -> dict:
        raise ValueError("nope")


async def one(manager, name, inputs=None):
    task = await manager.task_repository.create_task(name=name, inputs=inputs or {})
    return await manager.distribute_task_tree(TaskTreeNode(task))


async def test_sync_and_async_pre_hooks_edit_inputs(manager, echo):
    @register_pre_hook
    def add_sync(task):
        task.inputs["sync"] = True

    @register_pre_hook
    async def add_async(task):
        task.inputs["async"] = task.inputs.get("sync", False)

    node = await one(manager, "echo", {"x": 1})
    assert node["result"] == {"inputs": {"x": 1, "sync": True, "async": True}}
    other = create_session(str(manager.db.get_bind().url))
    assert other.get(type(node.task), node["id"]).inputs == {"x": 1, "sync": True, "async": True}
    other.close()


async def test_pre_hook_that_raises_fails_the_task_naming_the_hook(manager, echo):
    ran = []

    @register_pre_hook
    def broken_hook(task):
        raise KeyError("missing thing")

    @executor_register
    async def never() -> dict:
        ran.append(1)
        return {}

    node = await one(manager, "never")
    assert node["status"] == "failed" and ran == []
    assert node["error"].startswith("pre-hook ") and "test_core_hooks" in node["error"] and "broken_hook" in node["error"]
    assert "KeyError" in node["error"]


async def test_post_hooks_see_every_outcome_and_errors_do_not_change_it(manager, echo):
    seen = []

    @register_post_hook
    def record(task, inputs, result):
        seen.append((task.name, task.status, result.get("status") if isinstance(result, dict) else None))

    @register_post_hook
    async def broken_post(task, inputs, result):
        raise RuntimeError("post hook bug")

    events = []
    with subscribe(events.append, types=["hook_error"]):
        ok = await one(manager, "echo")
        bad = await one(manager, "fail")
    assert ok["status"] == "completed" and bad["status"] == "failed"
    assert seen == [("echo", "completed", None), ("fail", "failed", "failed")]
    assert len(events) == 2 and "broken_post" in events[0].data["source"]
    assert "post hook bug" in events[0].data["error"]


async def test_post_hooks_run_for_tasks_skipped_by_a_failed_dependency(manager, echo):
    seen = []

    @register_post_hook
    async def record(task, inputs, result):
        seen.append((task.id, task.status))

    repo = manager.task_repository
    root = await repo.create_task(name="echo", id="root", dependencies=["f"])
    f = await repo.create_task(name="fail", id="f", parent_id="root")
    node = TaskTreeNode(root)
    node.add_child(TaskTreeNode(f))
    await manager.distribute_task_tree(node)
    assert sorted(seen) == [("f", "failed"), ("root", "failed")]


async def test_tree_hooks_fire_on_start_completion_and_failure(manager, echo):
    calls = []

    @register_task_tree_hook("on_tree_started")
    def started(root, status):
        calls.append(("started", root.name, status))

    @register_task_tree_hook("on_tree_completed")
    async def completed(root, status):
        calls.append(("completed", root.name, status))

    @register_task_tree_hook("on_tree_failed")
    def failed(root):  # hooks may take fewer arguments
        calls.append(("failed", root.name))

    await one(manager, "echo")
    await one(manager, "fail")
    assert calls == [("started", "echo", "in_progress"), ("completed", "echo", "completed"),
                     ("started", "fail", "in_progress"), ("failed", "fail")]


async def test_hooks_are_bound_by_name_and_keep_working_as_arguments_grow(manager, echo):
    seen = {}

    @register_post_hook
    def by_position(t, i, r):  # names that match nothing: taken in order, as before
        seen["position"] = (t.name, i, r["inputs"])

    @register_post_hook
    def only_result(result):  # a name that matches: gets that argument, not the first one
        seen["only_result"] = result["inputs"]

    @register_post_hook
    def forward(task, **more):  # **kwargs takes everything else, including later additions
        seen["forward"] = sorted(more)

    @register_task_tree_hook("on_tree_completed")
    def tree(root, status, **more):
        seen["tree"] = (root.name, status, more.get("event"))

    await one(manager, "echo", {"x": 1})
    assert seen["position"] == ("echo", {"x": 1}, {"x": 1})
    assert seen["only_result"] == {"x": 1}
    assert seen["forward"] == ["error", "inputs", "result", "status"]
    assert seen["tree"] == ("echo", "completed", "on_tree_completed")


def test_a_new_function_at_a_recycled_address_is_bound_afresh():
    import gc

    from apflow_nb.core.extensions.hooks import POST_ARGS, invoke_hook

    values = {"task": "T", "inputs": "I", "result": "R"}
    wrong = 0
    for i in range(2000):
        if i % 2:
            def hook(task):
                return (task,)
            expected = ("T",)
        else:
            def hook(task, inputs, result):
                return (task, inputs, result)
            expected = ("T", "I", "R")
        wrong += invoke_hook(hook, POST_ARGS, values) != expected
        del hook
        gc.collect(0)
    assert wrong == 0


def test_tree_created_is_not_an_event_any_more():
    with pytest.raises(ValueError, match="on_tree_started, on_tree_completed, on_tree_failed"):
        register_task_tree_hook("on_tree_created", lambda root, status: None)


async def test_a_re_run_cell_redefining_a_hook_is_called_with_its_own_arguments(echo):
    import gc

    from apflow_nb import TaskManager

    manager = TaskManager(create_session("sqlite://"))
    calls = []
    for i in range(200):  # a cell re-run again and again: the same name, another signature each time
        if i % 2:
            def audit(task):
                calls.append(1)
        else:
            def audit(task, inputs, result):
                calls.append(3)
        register_post_hook(audit)
        del audit
        gc.collect(0)
        await one(manager, "echo", {"i": i})
    assert calls == [3, 1] * 100
