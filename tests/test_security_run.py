"""apflow_nb.run(<stored root id>) of a tree someone else stored says what it is about to run, before running it."""
from __future__ import annotations

from sqlalchemy import text

import apflow_nb
from apflow_nb import TaskManager, create_session, executor_register
from apflow_nb.core.storage.task_array import create_task_tree_from_array


def double(x: int) -> dict:
    return {"y": 2 * x}


def _store(url, user_id=None):
    db = create_session(url)
    tree = create_task_tree_from_array(TaskManager(db).task_repository, [
        {"id": "root", "name": "aggregate_results_executor", "dependencies": ["a", "b"]},
        {"id": "a", "name": "double", "parent_id": "root", "inputs": {"x": 1}},
        {"id": "b", "name": "double", "parent_id": "root", "inputs": {"x": 2}}], user_id=user_id)
    db.close()
    return tree.task.id


def test_a_tree_stored_by_another_user_is_announced_before_it_runs(db_url, capsys):
    executor_register(double)
    root = _store(db_url, user_id="mallory")
    run = apflow_nb.run(root, store=db_url, display=False)
    announced = capsys.readouterr().out
    assert run.result().task.status == "completed"
    assert announced.count("\n") == 1 and "running stored tree 'root' from user_id 'mallory'" in announced
    assert "3 task(s)" in announced and "aggregate_results_executor x1, double x2" in announced
    assert apflow_nb.run(root, store=db_url, display=False, user_id="mallory").result()
    assert capsys.readouterr().out == ""  # the same user_id: nothing to say
    apflow_nb.run(root, store=db_url, display=False, confirm=False).result()
    assert capsys.readouterr().out == ""


def test_a_tree_last_run_by_another_process_is_announced_and_ours_is_not(db_url, capsys):
    executor_register(double)
    root = _store(db_url)
    apflow_nb.run(root, store=db_url, display=False).result()  # stored and run here: ours
    assert capsys.readouterr().out == ""
    db = create_session(db_url)
    db.execute(text("update apflow_tasks set owner = 'elsewhere:4242:1'"))
    db.commit()
    db.close()
    apflow_nb.run(root, store=db_url, display=False)
    assert "last run by process elsewhere:4242:1" in capsys.readouterr().out
