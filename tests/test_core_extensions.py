"""StorageExtension used for real, tools reachable from executors, built-in executors."""
from __future__ import annotations


import pytest

from apflow_nb import (ExecutableTask, StorageExtension, TaskTreeNode, Tool, executor_register, get_tool,
                       storage_register, tool_register)
from apflow_nb.core.errors import InputValidationError, ToolNotFoundError



class MemoryStorage(StorageExtension):
    id = "memory_mirror"

    def __init__(self):
        self.saves = []
        self.extra = {"elsewhere": None}

    async def save_task(self, task):
        self.saves.append((task.id, task.status))

    async def get_task(self, task_id):
        return self.extra.get(task_id)


async def test_storage_extension_sees_every_state_change(manager):
    store = MemoryStorage()
    store.extra["elsewhere"] = {"id": "elsewhere", "from": "mirror"}
    storage_register(store)

    @executor_register
    async def ok() -> dict:
        return {}

    @executor_register
    async def bad() -> dict:
        raise RuntimeError("x")

    repo = manager.task_repository
    root = await repo.create_task(name="ok", id="root", dependencies=["b"])
    b = await repo.create_task(name="bad", id="b", parent_id="root")
    node = TaskTreeNode(root)
    node.add_child(TaskTreeNode(b))
    await manager.distribute_task_tree(node)
    assert ("b", "in_progress") in store.saves and ("b", "failed") in store.saves
    assert ("root", "failed") in store.saves  # ended by its dependency, never started
    assert store.saves.index(("b", "in_progress")) < store.saves.index(("b", "failed"))
    assert await repo.get_task_by_id("elsewhere") == {"id": "elsewhere", "from": "mirror"}
    assert (await repo.get_task_by_id("root")).id == "root"  # the main store answers first


async def test_tool_from_executor_with_validation(manager):
    class Upper(Tool):
        id = "upper"

        async def execute(self, inputs):
            return {"text": inputs["text"].upper(), "times": inputs["times"]}

        def get_input_schema(self):
            return {"type": "object", "properties": {"text": {"type": "string"},
                                                     "times": {"type": "integer", "default": 1}},
                    "required": ["text"]}

    tool_register(Upper)

    class UsesTool(ExecutableTask):
        id = "uses_tool"

        async def execute(self, inputs):
            return await self.get_tool("upper").execute({"text": inputs["text"]})

    executor_register(UsesTool)
    task = await manager.task_repository.create_task(name="uses_tool", inputs={"text": "hi"})
    node = await manager.distribute_task_tree(TaskTreeNode(task))
    assert node["result"] == {"text": "HI", "times": 1}
    with pytest.raises(InputValidationError, match="'text' is a required property"):
        await get_tool("upper").execute({})
    with pytest.raises(ToolNotFoundError, match="registered tools: upper"):
        get_tool("lower")


async def test_aggregate_results_executor_format(manager):
    @executor_register
    async def part(n: int) -> dict:
        return {"n": n}

    repo = manager.task_repository
    root = await repo.create_task(name="aggregate_results_executor", id="agg", dependencies=["p1", "p2"])
    kids = [await repo.create_task(name="part", id=f"p{i}", parent_id="agg", inputs={"n": i}) for i in (1, 2)]
    node = TaskTreeNode(root)
    for k in kids:
        node.add_child(TaskTreeNode(k))
    await manager.distribute_task_tree(node)
    result = root.result
    assert result["results"] == {"p1": {"n": 1}, "p2": {"n": 2}} and result["result_count"] == 2
    assert result["summary"] and result["timestamp"].endswith("+00:00")


async def test_command_executor_off_unless_enabled(manager, monkeypatch):
    monkeypatch.delenv("APFLOW_NB_ENABLE_COMMANDS", raising=False)
    repo = manager.task_repository
    t = await repo.create_task(name="command_executor", inputs={"command": "echo hi"})
    node = await manager.distribute_task_tree(TaskTreeNode(t))
    assert node["status"] == "failed" and "APFLOW_NB_ENABLE_COMMANDS=1" in node["error"]

    monkeypatch.setenv("APFLOW_NB_ENABLE_COMMANDS", "1")
    monkeypatch.setenv("APFLOW_NB_COMMAND_ALLOWLIST", "echo,false,sleep")
    cases = {"echo hi": "completed", "false": "completed", "ls": "failed"}
    for command, status in cases.items():
        t = await repo.create_task(name="command_executor", inputs={"command": command})
        node = await manager.distribute_task_tree(TaskTreeNode(t))
        assert node["status"] == status, command
    t = await repo.create_task(name="command_executor", inputs={"command": "echo hi"})
    assert (await manager.distribute_task_tree(TaskTreeNode(t)))["result"]["stdout"] == "hi\n"
    t = await repo.create_task(name="command_executor", inputs={"command": "false"})
    assert (await manager.distribute_task_tree(TaskTreeNode(t)))["result"]["success"] is False
    t = await repo.create_task(name="command_executor", inputs={"command": ["sleep", "5"], "timeout": 0.2})
    node = await manager.distribute_task_tree(TaskTreeNode(t))
    assert node["status"] == "failed" and "timed out" in node["error"]


async def test_function_executor_runtime_params_and_thread(manager):
    import threading

    from apflow_nb import function_executor

    main = threading.get_ident()

    async def streaming(n: int, event_queue=None, task_id=None) -> dict:
        await event_queue.put({"type": "progress", "data": {"progress": 1.0}})
        return {"n": n, "task_id": task_id}

    def in_thread(x: int) -> int:
        return threading.get_ident() != main and x

    executor_register(function_executor(streaming))
    executor_register(function_executor(in_thread, thread=True))
    t = await manager.task_repository.create_task(name="streaming", inputs={"n": 3})
    node = await manager.distribute_task_tree(TaskTreeNode(t))
    assert node["result"] == {"n": 3, "task_id": t.id}
    t = await manager.task_repository.create_task(name="in_thread", inputs={"x": 5})
    assert (await manager.distribute_task_tree(TaskTreeNode(t)))["result"] == {"result": 5}
