"""Registration: every form works, ids replace, executors resolve by method/params/name."""
from __future__ import annotations

import sys
import textwrap

import pytest

from apflow_nb import (ExecutableTask, TaskTreeNode, executor_register, get_registry, hook_register,
                       register_post_hook, register_pre_hook, register_task_tree_hook, storage_register,
                       tool_register)
from apflow_nb.core.extensions.types import ExtensionCategory



async def run_one(manager, name, inputs=None, **kw):
    task = await manager.task_repository.create_task(name=name, inputs=inputs or {}, **kw)
    return await manager.distribute_task_tree(TaskTreeNode(task))


class Echo(ExecutableTask):  # no __init__: Method 1 executors are constructed without arguments
    id = "echo"
    name = "Echo"

    async def execute(self, inputs):
        return {"echo": inputs, "by": type(self).__name__}


async def test_register_instance_class_and_decorators(manager):
    executor_register(Echo())
    executor_register(Echo, executor_id="echo_cls")

    @executor_register
    class Deco(ExecutableTask):
        id = "deco"

        async def execute(self, inputs):
            return {"deco": True}

    @executor_register()
    class DecoCalled(ExecutableTask):
        id = "deco_called"

        async def execute(self, inputs):
            return {"deco_called": True}

    @executor_register(executor_id="renamed")
    class DecoNamed(ExecutableTask):
        id = "ignored"

        async def execute(self, inputs):
            return {"renamed": True}

    assert Deco.id == "deco" and DecoCalled.__name__ == "DecoCalled"  # decorators return the class
    for name, key in [("echo", "echo"), ("echo_cls", "echo"), ("deco", "deco"), ("deco_called", "deco_called"),
                      ("renamed", "renamed")]:
        node = await run_one(manager, name, {"a": 1})
        assert node["status"] == "completed", (name, node["error"])
        assert key in node["result"]


async def test_register_function_sync_and_async(manager):
    @executor_register
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    @executor_register(executor_id="mul")
    async def multiply(a: int, b: int) -> dict:
        return {"product": a * b}

    assert (await run_one(manager, "add", {"a": 1}))["result"] == {"result": 3}
    assert (await run_one(manager, "mul", {"a": 3, "b": 4}))["result"] == {"product": 12}
    bad = await run_one(manager, "add", {"a": "x"})
    assert bad["status"] == "failed" and "inputs.a" in bad["error"]
    entry = get_registry().get("executor", "add")
    assert entry.description == "Add two numbers."
    schema = entry.create().get_input_schema()
    assert schema["required"] == ["a"] and schema["properties"]["b"]["default"] == 2


async def test_reregistering_replaces(manager):
    class V1(ExecutableTask):
        id = "versioned"

        async def execute(self, inputs):
            return {"v": 1}

    class V2(ExecutableTask):  # a re-run notebook cell: same id, new class
        id = "versioned"

        async def execute(self, inputs):
            return {"v": 2}

    executor_register(V1)
    executor_register(V2)
    assert (await run_one(manager, "versioned"))["result"] == {"v": 2}
    assert [e.id for e in get_registry().list("executor")].count("versioned") == 1


async def test_executor_resolution_order(manager):
    executor_register(Echo)

    class Other(ExecutableTask):
        id = "other"

        async def execute(self, inputs):
            return {"other": True}

    executor_register(Other)
    by_method = await run_one(manager, "just a label", schemas={"method": "other"})
    by_params = await run_one(manager, "echo", params={"executor_id": "other"}, schemas={"method": "echo"})
    by_name = await run_one(manager, "echo")
    assert by_method["result"] == {"other": True}
    assert by_params["result"] == {"other": True}
    assert by_name["result"]["by"] == "Echo"


async def test_unknown_executor_fails_and_lists_ids(manager):
    executor_register(Echo)
    node = await run_one(manager, "no_such_executor")
    assert node["status"] == "failed"
    assert "no executor registered as 'no_such_executor'" in node["error"]
    assert "aggregate_results_executor" in node["error"] and "echo" in node["error"]


async def test_bad_registrations_are_named():
    with pytest.raises(ValueError, match="has no id"):
        class NoId(ExecutableTask):
            async def execute(self, inputs):
                return {}
        executor_register(NoId)
    with pytest.raises(TypeError, match="does not implement execute"):
        class Abstract(ExecutableTask):
            id = "abstract"
        executor_register(Abstract)
    with pytest.raises(TypeError, match="expects an ExecutableTask"):
        executor_register(42)


async def test_registry_lists_by_category():
    from apflow_nb import StorageExtension, Tool

    class S(StorageExtension):
        id = "s"

        async def save_task(self, task):
            pass

        async def get_task(self, task_id):
            return None

    class T(Tool):
        id = "t"

        async def execute(self, inputs):
            return {}

    executor_register(Echo)
    storage_register(S)
    tool_register(T)

    @register_pre_hook
    def pre(task):
        pass

    @register_post_hook
    async def post(task, inputs, result):
        pass

    @register_task_tree_hook("on_tree_failed")
    def tree(root, status):
        pass

    by_cat = get_registry().by_category()
    assert "echo" in by_cat["executor"] and "aggregate_results_executor" in by_cat["executor"]
    assert by_cat["storage"] == ["s"] and by_cat["tool"] == ["t"]
    assert len(by_cat["hook"]) == 3
    # re-registering the same hook function (a re-run cell) replaces it
    register_pre_hook(pre)
    hook_register(pre, stage="pre")
    assert len(get_registry().ids(ExtensionCategory.HOOK)) == 3


async def test_entry_point_extensions(tmp_path, monkeypatch, manager):
    """A third-party package registers an executor through the apflow_nb.extensions group."""
    pkg = tmp_path / "site"
    (pkg / "thirdparty_ext").mkdir(parents=True)
    (pkg / "thirdparty_ext" / "__init__.py").write_text(textwrap.dedent('''
        from apflow_nb import ExecutableTask

        class ThirdParty(ExecutableTask):
            id = "third_party"
            name = "Third party"

            async def execute(self, inputs):
                return {"from": "entry point"}
    '''))
    dist = pkg / "thirdparty_ext-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-ext\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[apflow_nb.extensions]\nthird = thirdparty_ext:ThirdParty\n")
    monkeypatch.syspath_prepend(str(pkg))
    get_registry().clear()
    entry = get_registry().get("executor", "third_party")
    assert entry is not None and entry.source == "entry_point:third"
    node = await run_one(manager, "third_party")
    assert node["result"] == {"from": "entry point"}
    sys.modules.pop("thirdparty_ext", None)


async def test_user_registration_wins_over_builtin(manager):
    class MyAggregate(ExecutableTask):
        id = "aggregate_results_executor"

        async def execute(self, inputs):
            return {"mine": True}

    executor_register(MyAggregate)
    assert (await run_one(manager, "aggregate_results_executor"))["result"] == {"mine": True}
