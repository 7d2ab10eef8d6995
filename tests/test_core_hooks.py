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
