"""A killed kernel: its in_progress tasks are marked failed by the next process that opens the store,
while tasks of a live process are left alone."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import text

from apflow_nb import create_session
from apflow_nb.core.storage.session import dispose_engines

RUNNER = textwrap.dedent('''
    import asyncio, sys
    from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register

    class Sleepy(ExecutableTask):
        id = "sleepy"
        async def execute(self, inputs):
            await asyncio.sleep(60)
            return {}

    executor_register(Sleepy)

    async def main():
        db = create_session(sys.argv[1])
        manager = TaskManager(db, flush_interval=0.01)
        prefix = sys.argv[2]
        specs = [{"id": prefix + "root", "name": "aggregate_results_executor",
                  "dependencies": [prefix + str(i) for i in range(20)]}]
        specs += [{"id": prefix + str(i), "name": "sleepy", "parent_id": prefix + "root"} for i in range(20)]
        root = await manager.task_repository.create_task_tree_from_array(specs)
        run = asyncio.ensure_future(manager.distribute_task_tree(root))
        while sum(t.status == "in_progress" for t in root.tasks()) < 20:
            await asyncio.sleep(0.01)  # until every leaf runs
        await manager.writer.drain()  # and the store says so
        print("running", flush=True)
        await run

    asyncio.run(main())
''')


def start_runner(url, prefix):
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, url, prefix], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line == "running", f"runner did not start: {line!r}"
    return proc


def statuses(url, prefix):
    db = create_session(url)
    try:
        return dict(db.execute(text("select id, status from apflow_tasks where id like :p"),
                               {"p": prefix + "%"}).all()), db
    except Exception:
        db.close()
        raise


@pytest.mark.timing
def test_killed_process_tasks_marked_failed_live_ones_untouched(db_url):
    killed = start_runner(db_url, "k")
    alive = start_runner(db_url, "a")
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        dispose_engines()  # this test process opens the store afresh, as a new kernel would
        before = time.time()
        got, db = statuses(db_url, "k")
        assert got.pop("kroot") == "failed"  # waiting on its dependencies: the whole dead tree ends final
        assert set(got.values()) == {"failed"} and len(got) == 20
        root_error = db.execute(text("select error from apflow_tasks where id = 'kroot'")).scalar()
        assert root_error.startswith("skipped: required dependency 'k") and root_error.endswith("its process died")
        row = db.execute(text("select error, completed_at from apflow_tasks where id = 'k3'")).one()
        assert "the process that ran this task died" in row[0] and f"pid {killed.pid}" in row[0]
        db.close()
        live, db = statuses(db_url, "a")
        db.close()
        assert sum(1 for s in live.values() if s == "in_progress") == 20  # a live owner is never touched
        assert time.time() - before < 5
    finally:
        alive.kill()
        alive.wait(10)
        killed.kill()
