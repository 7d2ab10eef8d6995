"""The core on SQLite and on a live PostgreSQL server: the same runs, the same stored results."""
from __future__ import annotations

import asyncio

from sqlalchemy import Column, String, text

from apflow_nb import ExecutableTask, TaskManager, TaskTreeNode, create_session, executor_register


class Step(ExecutableTask):
    id = "step"

    async def execute(self, inputs):
        await self.event_queue.put({"type": "progress", "data": {"progress": 0.5}})
        if inputs.get("fail"):
            raise ValueError("asked to fail")
        return {"n": inputs.get("n", 0), "deps": sorted(k for k in inputs if k.startswith("t"))}


async def test_tree_runs_and_persists(store_url):
    executor_register(Step)
    db = create_session(store_url)
    manager = TaskManager(db)
    specs = [{"id": "root", "name": "aggregate_results_executor", "dependencies": ["t1", "t2", "t3"]},
             {"id": "t1", "name": "step", "parent_id": "root", "inputs": {"n": 1}},
             {"id": "t2", "name": "step", "parent_id": "root", "dependencies": ["t1"]},
             {"id": "t3", "name": "step", "parent_id": "root", "inputs": {"fail": True}}]
    tree = await manager.task_repository.create_task_tree_from_array(specs)
    await manager.distribute_task_tree(tree)
    other = create_session(store_url)
    rows = {r[0]: r[1:] for r in other.execute(text("select id, status, progress, error from apflow_tasks")).all()}
    assert rows["t1"][:2] == ("completed", 1.0) and rows["t2"][0] == "completed"
    assert rows["t3"][0] == "failed" and rows["t3"][2].startswith("ValueError: asked to fail")
    assert rows["root"][0] == "failed" and "'t3'" in rows["root"][2]
    model = manager.task_repository.model
    t2 = other.get(model, "t2")
    assert t2.result == {"n": 0, "deps": ["t1"]} and t2.inputs == {"t1": {"n": 1, "deps": []}}
    assert t2.started_at.tzinfo is not None and t2.completed_at >= t2.started_at
    events = other.execute(text("select count(*) from apflow_task_events where root_id = 'root'")).scalar()
    assert events >= 10
    other.close()
    db.close()


async def test_cancel_and_custom_columns(store_url):
    from apflow_nb import set_task_model_class
    from apflow_nb.core.storage.sqlalchemy.models import TaskModel

    db = create_session(store_url)
    old = await TaskManager(db).task_repository.create_task(name="old")
    db.close()

    class Labeled(TaskModel):
        __tablename__ = "apflow_tasks"
        label = Column(String(40), nullable=True)

    set_task_model_class(Labeled)

    class Forever(ExecutableTask):
        id = "forever"

        async def execute(self, inputs):
            while not self.cancellation_checker():
                await asyncio.sleep(0.01)
            return {"status": "cancelled"}

    executor_register(Forever)
    db = create_session(store_url)
    manager = TaskManager(db)
    task = await manager.task_repository.create_task(name="forever", label="pg-or-sqlite")
    running = asyncio.ensure_future(manager.distribute_task_tree(TaskTreeNode(task)))
    await asyncio.sleep(0.1)
    await manager.cancel_task(task.id)
    await running
    other = create_session(store_url)
    assert other.execute(text("select status, label from apflow_tasks where id = :i"), {"i": task.id}).one() == \
        ("cancelled", "pg-or-sqlite")
    assert other.execute(text("select label from apflow_tasks where id = :i"), {"i": old.id}).scalar() is None
    other.close()
    db.close()
