"""Ctrl-C while a run is awaited, with 50 tasks in flight: every task ends completed or cancelled,
none in_progress, and the store's task table and event log agree."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from sqlalchemy import text

from apflow_nb import create_session
from apflow_nb.core.storage.session import dispose_engines

SCRIPT = textwrap.dedent('''
    import asyncio, sys
    from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register

    class Work(ExecutableTask):
        id = "work"
        async def execute(self, inputs):
            await asyncio.sleep(inputs["seconds"])
            return {"slept": inputs["seconds"]}

    executor_register(Work)

    async def main():
        manager = TaskManager(create_session(sys.argv[1]))
        specs = [{"id": "root", "name": "aggregate_results_executor", "dependencies": [f"w{i}" for i in range(60)]}]
        # ten finish quickly, fifty are still in flight when the interrupt comes
        specs += [{"id": f"w{i}", "name": "work", "parent_id": "root",
                   "inputs": {"seconds": 0.01 if i < 10 else 30}} for i in range(60)]
        root = await manager.task_repository.create_task_tree_from_array(specs)
        runner = asyncio.ensure_future(manager.distribute_task_tree(root))
        while sum(t.status == "completed" for t in root.tasks()) < 10 or \
                sum(t.status == "in_progress" for t in root.tasks()) < 50:
            await asyncio.sleep(0.01)  # until ten finished and fifty are in flight
        print("in flight", flush=True)
        await runner

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted", flush=True)
''')


def test_ctrl_c_cancels_every_task_in_flight(db_url):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, db_url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "in flight"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert "interrupted" in out
    dispose_engines()
    db = create_session(db_url)
    status = dict(db.execute(text("select id, status from apflow_tasks")).all())
    assert [status[f"w{i}"] for i in range(10)] == ["completed"] * 10
    assert {status[f"w{i}"] for i in range(10, 60)} == {"cancelled"} and status["root"] == "cancelled"
    last = dict(db.execute(text(
        "select task_id, event_type from apflow_task_events e where id = (select max(id) from apflow_task_events "
        "where task_id = e.task_id and event_type like 'task_%')")).all())
    for task_id, st in status.items():
        assert last[task_id] == f"task_{st}", (task_id, st, last.get(task_id))
    kinds = [r[0] for r in db.execute(text("select event_type from apflow_task_events where root_id = 'root' "
                                           "and event_type like 'tree_%' order by id")).all()]
    assert kinds == ["tree_started", "tree_finished"]
    db.close()
