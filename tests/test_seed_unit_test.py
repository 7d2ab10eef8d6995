"""The seed page's own unit test, exactly as printed (package renamed to apflow_nb).

``create_session()`` with no argument opens ./.apflow/tasks.db, so this module runs in a
temporary working directory.
"""
import pytest
from typing import Dict, Any
from pydantic import BaseModel

from apflow_nb import BaseTask


@pytest.fixture(autouse=True)
def _fresh_cwd(in_tmp_cwd):
    yield


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


# ---- from here on, the page's "Unit Testing" example as printed -------------------------
import pytest
from apflow_nb import executor_register, TaskManager, create_session

@pytest.fixture
def executor():
    return MyCustomExecutor()

@pytest.fixture
def task_manager():
    executor_register(MyCustomExecutor())
    db = create_session()
    return TaskManager(db)

@pytest.mark.asyncio
async def test_executor_execution(executor, task_manager):
    """Test executor execution"""
    task = await task_manager.task_repository.create_task(
        name="my_custom_executor",
        user_id="test_user",
        inputs={"data": "test"}
    )

    from apflow_nb.core.types import TaskTreeNode
    task_tree = TaskTreeNode(task)

    result = await task_manager.distribute_task_tree(task_tree)
    assert result["status"] == "completed"
# ---- end of the page's example ---------------------------------------------------------


@pytest.mark.asyncio
async def test_page_test_really_ran_and_persisted(task_manager, in_tmp_cwd):
    """The example above wrote a real file in ./.apflow and the stored row is final."""
    task = await task_manager.task_repository.create_task(
        name="my_custom_executor", user_id="test_user", inputs={"data": "x"})
    from apflow_nb.core.types import TaskTreeNode

    result = await task_manager.distribute_task_tree(TaskTreeNode(task))
    assert (in_tmp_cwd / ".apflow" / "tasks.db").is_file()
    assert result["result"] == {"status": "completed", "processed_items": 10, "data": "x"}
    other = create_session()
    try:
        from apflow_nb import get_task_model_class

        row = other.get(get_task_model_class(), task.id)
        assert row.status == "completed" and row.result["processed_items"] == 10
    finally:
        other.close()
