"""The one way tests build a tree: a task array (the first task is the root), stored and returned."""
from __future__ import annotations

from typing import Any

from apflow_nb import TaskTreeNode


async def tree(manager: Any, *specs: dict[str, Any]) -> TaskTreeNode:
    """Store ``specs`` as a task array through ``manager``; tasks without ``parent_id`` hang under the root."""
    root_id = specs[0].get("id")
    array = [dict(specs[0])] + [dict(s) if "parent_id" in s or root_id is None else dict(s, parent_id=root_id)
                                for s in specs[1:]]
    return await manager.task_repository.create_task_tree_from_array(array)


def tasks_by_key(node: TaskTreeNode) -> dict[str, Any]:
    """The tree's tasks by the key the test wrote."""
    return {n.task.key: n.task for n in node.walk()}
