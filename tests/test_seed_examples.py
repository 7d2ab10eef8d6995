"""Every code example of the seed page ("Extending aipartnerupflow"), run with the package
renamed to apflow_nb. Example code is kept as printed between the ``# --- page`` markers; what
surrounds it supplies the names the page assumes (a session, a task manager, ``logger``...)
and checks what the example should achieve."""
from __future__ import annotations

import logging
import threading
from datetime import datetime

import pytest

from apflow_nb import TaskManager, TaskTreeNode, create_session



async def run_one(manager, name, inputs=None, **kw):
    task = await manager.task_repository.create_task(name=name, user_id="u", inputs=inputs or {}, **kw)
    return await manager.distribute_task_tree(TaskTreeNode(task))


async def test_method1_executable_task(manager):
    # --- page: Method 1 ------------------------------------------------------------------
    from apflow_nb import ExecutableTask
    from typing import Dict, Any

    class MyCustomExecutor(ExecutableTask):
        """Custom executor implementation"""
        id = "my_custom_executor"
        name = "My Custom Executor"
        description = "Executes custom business logic"

        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            """Execute the task"""
            # Your execution logic here
            result = {
                "status": "completed",
                "data": inputs.get("data")
            }
            return result

        def get_input_schema(self) -> Dict[str, Any]:
            """Define input parameter schema"""
            return {
                "type": "object",
                "properties": {
                    "data": {
                        "type": "string",
                        "description": "Input data"
                    }
                },
                "required": ["data"]
            }

        async def cancel(self) -> Dict[str, Any]:
            """Optional: Implement cancellation support"""
            return {
                "status": "cancelled",
                "message": "Task cancelled"
            }
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import executor_register

    executor_register(MyCustomExecutor())
    ok = await run_one(manager, "my_custom_executor", {"data": "hello"})
    assert ok["status"] == "completed" and ok["result"] == {"status": "completed", "data": "hello"}
    bad = await run_one(manager, "my_custom_executor", {})
    assert bad["status"] == "failed"
    assert "inputs: 'data' is a required property" in bad["error"]
    wrong = await run_one(manager, "my_custom_executor", {"data": 5})
    assert wrong["status"] == "failed" and "inputs.data: 5 is not of type 'string'" in wrong["error"]


async def test_method2_base_task(manager):
    # --- page: Method 2 ------------------------------------------------------------------
    from apflow_nb import BaseTask
    from typing import Dict, Any
    from pydantic import BaseModel

    # Define input schema using Pydantic
    class MyTaskInputs(BaseModel):
        data: str
        count: int = 10

    class MyCustomExecutor(BaseTask):
        """Custom executor using BaseTask"""
        id = "my_custom_executor"
        name = "My Custom Executor"
        description = "Executes custom business logic"

        # Use Pydantic model for input validation
        inputs_schema = MyTaskInputs

        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            """Execute the task"""
            # Inputs are automatically validated against inputs_schema
            data = inputs["data"]
            count = inputs["count"]

            # Your execution logic
            result = {
                "status": "completed",
                "processed_items": count,
                "data": data
            }

            # Check for cancellation (if supported)
            if self.cancellation_checker and self.cancellation_checker():
                return {
                    "status": "cancelled",
                    "message": "Task was cancelled"
                }

            return result
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import executor_register

    executor_register(MyCustomExecutor())
    node = await run_one(manager, "my_custom_executor", {"data": "abc"})
    assert node["status"] == "completed"
    assert node["result"] == {"status": "completed", "processed_items": 10, "data": "abc"}
    node = await run_one(manager, "my_custom_executor", {"data": "abc", "count": "nope"})
    assert node["status"] == "failed" and "inputs.count" in node["error"]


async def test_registering_your_executor(manager):
    from apflow_nb import BaseTask
    from pydantic import BaseModel

    class MyTaskInputs(BaseModel):
        data: str
        count: int = 10

    class MyCustomExecutor(BaseTask):
        id = "my_custom_executor"
        inputs_schema = MyTaskInputs

        async def execute(self, inputs):
            return {"count": inputs["count"], "me": self.id}

    # --- page: Registering Your Executor ---------------------------------------------------
    from apflow_nb import executor_register

    # Register the executor
    executor_register(MyCustomExecutor())

    # Or register with custom ID
    executor_register(MyCustomExecutor(), executor_id="custom_id")
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import get_registry

    assert {"my_custom_executor", "custom_id"} <= set(get_registry().ids("executor"))
    node = await run_one(manager, "custom_id", {"data": "x"})
    assert node["status"] == "completed" and node["result"]["count"] == 10


async def test_extension_categories():
    from apflow_nb.core.extensions.types import ExtensionCategory

    assert [c.name for c in ExtensionCategory] == ["EXECUTOR", "STORAGE", "HOOK", "TOOL"]


async def test_custom_storage_extension(manager):
    # --- page: Example: Custom Storage Extension ------------------------------------------
    from apflow_nb.core.extensions.base import Extension
    from apflow_nb.core.extensions.types import ExtensionCategory
    from apflow_nb.core.extensions.storage import StorageExtension

    class MyCustomStorage(StorageExtension):
        """Custom storage implementation"""
        id = "my_custom_storage"
        name = "My Custom Storage"
        category = ExtensionCategory.STORAGE

        async def save_task(self, task):
            """Save task to storage"""
            # Your storage logic
            pass

        async def get_task(self, task_id):
            """Retrieve task from storage"""
            # Your retrieval logic
            pass
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import storage_register, executor_register, get_registry

    assert issubclass(MyCustomStorage, Extension)
    storage_register(MyCustomStorage())
    assert get_registry().ids(ExtensionCategory.STORAGE) == ["my_custom_storage"]

    @executor_register
    async def noop() -> dict:
        return {"ok": True}

    node = await run_one(manager, "noop")
    assert node["status"] == "completed"
    assert await manager.task_repository.get_task_by_id("not-there") is None


async def test_custom_tool():
    # --- page: Creating Custom Tools ------------------------------------------------------
    from apflow_nb.core.tools.base import Tool
    from typing import Dict, Any

    class MyCustomTool(Tool):
        """Custom tool implementation"""
        id = "my_custom_tool"
        name = "My Custom Tool"
        description = "Performs a specific operation"

        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            """Execute the tool"""
            # Tool logic
            return {"result": "tool_output"}

        def get_input_schema(self) -> Dict[str, Any]:
            return {
                "type": "object",
                "properties": {
                    "input": {"type": "string"}
                }
            }
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import tool_register, get_tool
    from apflow_nb.core.errors import InputValidationError

    tool_register(MyCustomTool())
    tool = get_tool("my_custom_tool")
    assert await tool.execute({"input": "x"}) == {"result": "tool_output"}
    with pytest.raises(InputValidationError, match=r"inputs.input: 3 is not of type 'string'"):
        await tool.execute({"input": 3})


async def test_pre_execution_hook(manager):
    # --- page: Pre-Execution Hooks ----------------------------------------------------------
    from apflow_nb import register_pre_hook

    @register_pre_hook
    async def validate_and_transform(task):
        """Validate and transform task inputs"""
        if task.inputs and "url" in task.inputs:
            url = task.inputs["url"]
            # Ensure URL has protocol
            if not url.startswith(("http://", "https://")):
                task.inputs["url"] = f"https://{url}"

        # Add timestamp
        task.inputs["_processed_at"] = datetime.now().isoformat()
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import executor_register

    seen = {}

    @executor_register
    async def fetch(url: str, **extra) -> dict:
        seen.update(url=url, at=extra.get("_processed_at"))
        return {"url": url}

    node = await run_one(manager, "fetch", {"url": "example.org"})
    assert node["status"] == "completed"
    assert seen["url"] == "https://example.org" and seen["at"]
    other = create_session(str(manager.db.get_bind().url))
    stored = other.get(type(node.task), node["id"])
    assert stored.inputs["url"] == "https://example.org" and stored.inputs["_processed_at"] == seen["at"]
    other.close()


async def test_post_execution_hook(manager, caplog):
    alerts = []

    def send_alert(message):
        alerts.append(message)

    logger = logging.getLogger("post_hook_example")
    # --- page: Post-Execution Hooks ---------------------------------------------------------
    from apflow_nb import register_post_hook

    @register_post_hook
    async def log_and_notify(task, inputs, result):
        """Log execution and send notification"""
        logger.info(f"Task {task.id} completed")
        logger.info(f"Inputs: {inputs}")
        logger.info(f"Result: {result}")

        # Send notification (example)
        if result.get("status") == "failed":
            send_alert(f"Task {task.id} failed: {result.get('error')}")
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import executor_register

    @executor_register
    async def flaky(fail: bool = False) -> dict:
        return {"status": "failed", "error": "boom"} if fail else {"status": "completed"}

    caplog.set_level(logging.INFO, logger="post_hook_example")
    ok = await run_one(manager, "flaky", {"fail": False})
    bad = await run_one(manager, "flaky", {"fail": True})
    assert ok["status"] == "completed" and bad["status"] == "failed"
    assert alerts == [f"Task {bad['id']} failed: boom"]
    assert f"Task {ok['id']} completed" in caplog.text


async def test_custom_task_model(db):
    task_manager = TaskManager(db)  # created before the custom model, as in a notebook
    # --- page: Using Custom TaskModel --------------------------------------------------------
    from apflow_nb.core.storage.sqlalchemy.models import TaskModel
    from sqlalchemy import Column, String, Integer
    from apflow_nb import set_task_model_class

    class ProjectTaskModel(TaskModel):
        """Custom TaskModel with project and department fields"""
        __tablename__ = "apflow_tasks"

        project_id = Column(String(255), nullable=True, index=True)
        department = Column(String(100), nullable=True)
        priority_level = Column(Integer, default=2)

    # Set custom model (must be called before creating tasks)
    set_task_model_class(ProjectTaskModel)

    # Now you can use custom fields
    task = await task_manager.task_repository.create_task(
        name="my_task",
        user_id="user123",
        project_id="proj-123",  # Custom field
        department="engineering",  # Custom field
        priority_level=1,  # Custom field
        inputs={"placeholder": "the page writes {...} here"}
    )
    # --- end of page code (``inputs={...}`` on the page is a placeholder, not a dict) -------
    from sqlalchemy import text

    assert isinstance(task, ProjectTaskModel)
    row = db.execute(text("select project_id, department, priority_level from apflow_tasks where id = :i"),
                     {"i": task.id}).one()
    assert tuple(row) == ("proj-123", "engineering", 1)
    from apflow_nb.core.errors import UnknownTaskFieldError

    with pytest.raises(UnknownTaskFieldError, match="'projct_id'.*custom columns: department, priority_level, project_id"):
        await task_manager.task_repository.create_task(name="t", projct_id="typo")


async def test_cancellation_support(manager):
    import asyncio
    from apflow_nb import ExecutableTask
    from typing import Dict, Any

    cancel_calls = []
    # --- page: Advanced: Cancellation Support ------------------------------------------------
    class CancellableExecutor(ExecutableTask):
        """Executor with cancellation support"""
        id = "cancellable_executor"
        name = "Cancellable Executor"
        description = "Supports cancellation during execution"

        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            """Execute with cancellation checks"""
            # TaskManager sets cancellation_checker if executor supports it
            cancellation_checker = getattr(self, 'cancellation_checker', None)

            for i in range(100):
                # Check for cancellation
                if cancellation_checker and cancellation_checker():
                    return {
                        "status": "cancelled",
                        "message": "Task was cancelled",
                        "progress": i / 100
                    }

                # Do work
                await asyncio.sleep(0.1)

            return {"status": "completed", "progress": 1.0}

        async def cancel(self) -> Dict[str, Any]:
            """Handle cancellation request"""
            # Cleanup logic here
            cancel_calls.append(self.task_id)
            return {
                "status": "cancelled",
                "message": "Cancellation requested"
            }
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import executor_register

    executor_register(CancellableExecutor())
    task = await manager.task_repository.create_task(name="cancellable_executor")
    from apflow_nb import subscribe
    from tests.waiting import until

    with subscribe(root_id=task.id, types=["task_started"]) as started:
        running = asyncio.ensure_future(manager.distribute_task_tree(TaskTreeNode(task)))
        await until(lambda: started.pending > 0)
    await asyncio.sleep(0.35)  # the executor works through ~4 of its 100 steps: part of what is asserted
    assert task.status == "in_progress"
    out = await manager.cancel_task(task.id)
    node = await running
    assert out["status"] == "cancelled" and node["status"] == "cancelled"
    assert cancel_calls == [task.id]
    assert 0.02 <= node["result"]["progress"] <= 0.1  # stopped after ~4 of 100 steps


async def test_streaming_support(manager):
    import asyncio
    from apflow_nb import ExecutableTask
    from typing import Dict, Any
    # --- page: Advanced: Streaming Support -----------------------------------------------------
    class StreamingExecutor(ExecutableTask):
        """Executor with streaming support"""
        id = "streaming_executor"
        name = "Streaming Executor"
        description = "Sends real-time progress updates"

        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            """Execute with streaming"""
            # Access event queue (set by TaskManager)
            event_queue = getattr(self, 'event_queue', None)

            total_steps = 10
            for step in range(total_steps):
                # Send progress update
                if event_queue:
                    await event_queue.put({
                        "type": "progress",
                        "task_id": getattr(self, 'task_id', None),
                        "data": {
                            "step": step + 1,
                            "total": total_steps,
                            "progress": (step + 1) / total_steps
                        }
                    })

                # Do work
                await asyncio.sleep(0.5)

            return {"status": "completed", "steps": total_steps}
    # --- end of page code ------------------------------------------------------------------
    from apflow_nb import executor_register, subscribe

    executor_register(StreamingExecutor())
    task = await manager.task_repository.create_task(name="streaming_executor")
    seen = []
    with subscribe(seen.append, root_id=task.id):
        node = await manager.distribute_task_tree(TaskTreeNode(task))
    assert node["status"] == "completed" and node["result"] == {"status": "completed", "steps": 10}
    progress = [e for e in seen if e.type == "task_progress"]
    assert [e.data["step"] for e in progress] == list(range(1, 11))
    assert progress[-1].progress == 1.0 and all(e.task_id == task.id for e in progress)
    assert [e.type.value for e in seen][0] == "tree_started" and seen[-1].type == "tree_finished"


async def test_best_practice_input_validation(manager):
    from apflow_nb import ExecutableTask, executor_register
    from typing import Dict, Any

    class Validating(ExecutableTask):
        id = "validating"

        async def execute(self, inputs):
            return dict(inputs)

        # --- page: 1. Input Validation --------------------------------------------------------
        def get_input_schema(self) -> Dict[str, Any]:
            return {
                "type": "object",
                "properties": {
                    "required_field": {
                        "type": "string",
                        "description": "Required field"
                    },
                    "optional_field": {
                        "type": "integer",
                        "description": "Optional field",
                        "default": 0
                    }
                },
                "required": ["required_field"]
            }
        # --- end of page code ----------------------------------------------------------------

    executor_register(Validating)
    node = await run_one(manager, "validating", {"required_field": "x"})
    assert node["result"] == {"required_field": "x", "optional_field": 0}
    node = await run_one(manager, "validating", {"optional_field": 1})
    assert node["status"] == "failed" and "'required_field' is a required property" in node["error"]


async def test_best_practice_error_handling(manager):
    from apflow_nb import ExecutableTask, executor_register
    from typing import Dict, Any

    def work(inputs):
        if inputs.get("kind") == "value":
            raise ValueError("bad value")
        if inputs.get("kind") == "other":
            raise RuntimeError("exploded")
        return 42

    class Structured(ExecutableTask):
        id = "structured"

        # --- page: 2. Error Handling ---------------------------------------------------------
        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            try:
                # Your logic
                result = work(inputs)
                return {"status": "completed", "result": result}
            except ValueError as e:
                return {
                    "status": "failed",
                    "error": str(e),
                    "error_type": "validation_error"
                }
            except Exception as e:
                return {
                    "status": "failed",
                    "error": str(e),
                    "error_type": "execution_error"
                }
        # --- end of page code ----------------------------------------------------------------

    executor_register(Structured)
    assert (await run_one(manager, "structured", {}))["result"] == {"status": "completed", "result": 42}
    v = await run_one(manager, "structured", {"kind": "value"})
    assert (v["status"], v["error"], v["result"]["error_type"]) == ("failed", "bad value", "validation_error")
    o = await run_one(manager, "structured", {"kind": "other"})
    assert (o["status"], o["result"]["error_type"]) == ("failed", "execution_error")


async def test_best_practice_resource_cleanup(manager):
    from apflow_nb import ExecutableTask, executor_register
    from typing import Dict, Any

    cleaned = []

    class Resource:
        def cleanup(self):
            cleaned.append(True)

    def acquire_resource():
        return Resource()

    class Cleaning(ExecutableTask):
        id = "cleaning"

        # --- page: 3. Resource Cleanup ---------------------------------------------------------
        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            resource = None
            try:
                resource = acquire_resource()
                # Use resource
                return {"status": "completed"}
            finally:
                if resource:
                    resource.cleanup()
        # --- end of page code ----------------------------------------------------------------

    executor_register(Cleaning)
    assert (await run_one(manager, "cleaning"))["status"] == "completed"
    assert cleaned == [True]


@pytest.fixture
def json_server():
    """A tiny local HTTP server answering JSON, for the page's aiohttp/requests examples."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"path": self.path, "ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/data"
    server.shutdown()


async def test_best_practice_async(manager, json_server):
    import aiohttp
    import requests
    from apflow_nb import ExecutableTask, executor_register
    from typing import Dict, Any

    url = json_server

    class GoodExecutor(ExecutableTask):
        id = "good_async"

        # --- page: 4. Async Best Practices (Good) ------------------------------------------------
        # Good: Use async I/O
        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            async with aiohttp.ClientSession() as session:
                async with session.get(url) as response:
                    data = await response.json()
                    return {"data": data}
        # --- end of page code ----------------------------------------------------------------

    class AvoidExecutor(ExecutableTask):
        id = "avoid_blocking"

        # --- page: 4. Async Best Practices (Avoid) -----------------------------------------------
        # Avoid: Blocking operations
        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            # Bad: Blocking I/O
            response = requests.get(url)  # Don't do this
            return {"data": response.json()}
        # --- end of page code ----------------------------------------------------------------

    executor_register(GoodExecutor)
    executor_register(AvoidExecutor)
    good = await run_one(manager, "good_async")
    avoid = await run_one(manager, "avoid_blocking")
    assert good["result"] == {"data": {"path": "/data", "ok": True}}
    assert avoid["result"] == good["result"]
