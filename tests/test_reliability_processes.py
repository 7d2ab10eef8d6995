"""Two processes, one store: the run lease, taking over from a dead owner, zombies, whole dead trees."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import text

from apflow_nb import TaskManager, create_session, executor_register
from apflow_nb.core.errors import TreeAlreadyRunningError
from apflow_nb.core.storage.session import dispose_engines
from tests.waiting import until

OWNER = textwrap.dedent('''
    import asyncio, sys
    from apflow_nb import TaskManager, create_session, executor_register

    @executor_register
    async def slow() -> dict:
        await asyncio.sleep(60)
        return {}

    async def main():
        db = create_session(sys.argv[1])
        manager = TaskManager(db, flush_interval=0.01)
        specs = [{"id": "root", "name": "slow"}]
        specs += [{"id": f"w{i}", "name": "slow", "parent_id": "root", "dependencies": ["root"]} for i in range(3)]
        root = await manager.task_repository.create_task_tree_from_array(specs)
        run = asyncio.ensure_future(manager.distribute_task_tree(root))
        while root.task.status != "in_progress":
            await asyncio.sleep(0.01)
        await manager.writer.drain()
        print("running", flush=True)
        await run

    asyncio.run(main())
''')


def zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] == "Z"


def start_owner(url: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "running"
    return proc


@pytest.fixture
def quick():
    @executor_register
    async def slow() -> dict:  # the same executor id, quick here
        return {"here": os.getpid()}


async def test_a_tree_running_in_another_process_is_refused_then_taken_over_once_it_died(store_url, quick):
    owner = start_owner(store_url)
    try:
        db = create_session(store_url)
        manager = TaskManager(db)
        root = manager.task_repository.get_task_tree_sync("root")
        with pytest.raises(TreeAlreadyRunningError) as info:
            await manager.distribute_task_tree(root)
        assert f"process {owner.pid} on {socket.gethostname()}" in str(info.value)
        statuses = dict(db.execute(text("select id, status from apflow_tasks")).all())
        assert statuses["root"] == "in_progress"  # B did not touch A's run
        db.rollback()
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        root = manager.task_repository.get_task_tree_sync("root")
        await manager.distribute_task_tree(root)  # A is gone: B takes the run over
        assert root.tree_status == "completed" and root.task.result == {"here": os.getpid()}
        db.close()
    finally:
        owner.kill()
        owner.wait(10)


def test_a_killed_but_unreaped_process_counts_as_dead_and_its_whole_tree_ends(db_url):
    owner = start_owner(db_url)
    try:
        os.kill(owner.pid, signal.SIGKILL)
        # not reaped yet: the process is a zombie until we wait() for it
        asyncio.run(until(lambda: zombie(owner.pid)))
        dispose_engines()  # this process opens the store afresh, as a new kernel would
        db = create_session(db_url)
        rows = dict(db.execute(text("select id, status from apflow_tasks")).all())
        errors = dict(db.execute(text("select id, error from apflow_tasks")).all())
        kinds = db.execute(text("select event_type, count(*) from apflow_task_events where payload like "
                                "'%recovered%' group by event_type")).all()
        db.close()
        assert set(rows.values()) == {"failed"}, rows
        assert "the process that ran this task died" in errors["root"]
        assert errors["w0"] == "skipped: required dependency 'root' failed: its process died"
        assert kinds == [("task_failed", 4)]  # the event log agrees with the task rows
    finally:
        owner.kill()
        owner.wait(10)
