"""In a real kernel: timeline() as a cell's value shows the chart inline exactly once."""
from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebooks

CELLS = [
    """
import apflow_nb
from apflow_nb import TaskManager, create_session

db = create_session()
manager = TaskManager(db)
tree = await manager.task_repository.create_task_tree_from_array([
    {"id": "root", "name": "aggregate_results_executor", "dependencies": ["a", "b"]},
    {"id": "a", "name": "aggregate_results_executor", "parent_id": "root"},
    {"id": "b", "name": "aggregate_results_executor", "parent_id": "root"},
])
await manager.distribute_task_tree(tree)
""",
    "apflow_nb.timeline('root')",
    "apflow_nb.history(root_id='root')[['task_id', 'depth', 'status']]",
]


def test_timeline_shows_once_inline(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    timeline = nb.cells[1].outputs
    images = [o for o in timeline if "image/png" in o.get("data", {})]
    assert len(images) == 1 and images[0]["output_type"] == "execute_result", timeline
    assert len(timeline) == 1  # nothing else: no second copy from pyplot, no warning
    frame = nb.cells[2].outputs[0]["data"]
    assert "text/html" in frame and "root" in frame["text/plain"] and "completed" in frame["text/plain"]
