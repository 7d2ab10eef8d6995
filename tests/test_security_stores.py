"""Reading a store never changes it: history() / events() open a SQLite file read-only, with no PRAGMA."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading

import apflow_nb
from apflow_nb import TaskManager, create_session
from apflow_nb.core.storage.task_array import create_task_tree_from_array
from apflow_nb.core.storage.session import dispose_engines
from tests.waiting import until


def _snapshot(folder, name):
    path = folder / name
    return (hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(os.stat(path).st_mode),
            os.stat(path).st_mtime_ns, sorted(os.listdir(folder)))


async def test_history_of_another_sqlite_file_changes_nothing(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir()
    url = f"sqlite:///{folder / 'other.db'}"
    manager = TaskManager(create_session(url))
    tree = create_task_tree_from_array(manager.task_repository, [{"id": "t", "name": "aggregate_results_executor"}])
    await manager.distribute_task_tree(tree)
    # the run's lease is released and the keeper stops on background threads: let them finish with the file
    await until(lambda: not [t for t in threading.enumerate() if t.name.startswith("apflow_nb") and t.is_alive()
                             and "writer" not in t.name])
    manager.db.close()
    dispose_engines()
    with sqlite3.connect(folder / "other.db") as conn:  # their file, in the default rollback-journal mode
        conn.execute("PRAGMA journal_mode = DELETE")
    os.chmod(folder / "other.db", 0o640)
    before = _snapshot(folder, "other.db")
    assert before[3] == ["other.db"]
    frame = apflow_nb.history(url)
    assert list(frame["task_id"]) == ["t"] and list(frame["status"]) == ["completed"]
    assert len(apflow_nb.events(url, task_id="t")) >= 2
    assert _snapshot(folder, "other.db") == before  # same bytes, mode and mtime; no -wal / -shm / -journal
    with sqlite3.connect(folder / "other.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_history_of_a_missing_file_creates_nothing(tmp_path):
    assert apflow_nb.history(f"sqlite:///{tmp_path / 'nope' / 'x.db'}").empty
    assert os.listdir(tmp_path) == []
