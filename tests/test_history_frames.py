"""history(), events() and timeline() on real stores (a SQLite file and the live PostgreSQL)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Column, String

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.analysis import HISTORY_COLUMNS


class Square(ExecutableTask):
    id = "square"

    async def execute(self, inputs):
        if inputs.get("x") == 3:
            raise ValueError("three is not allowed")
        return {"y": inputs["x"] ** 2, "meta": {"unit": "m2", "ok": True}}


async def run_tree(url, xs=(1, 2, 3), user="ana"):
    executor_register(Square)
    db = create_session(url)
    manager = TaskManager(db)
    specs = [{"id": f"root-{user}", "name": "aggregate_results_executor", "user_id": user,
              "dependencies": [{"id": f"{user}-{x}", "required": False} for x in xs]}]
    specs += [{"id": f"{user}-{x}", "name": "square", "parent_id": f"root-{user}", "user_id": user,
               "inputs": {"x": x, "opts": {"fast": True}}} for x in xs]
    specs += [{"id": f"{user}-leaf", "name": "nothing", "schemas": {"method": "square"},
               "parent_id": f"{user}-{xs[0]}", "user_id": user, "inputs": {"x": 4}}]
    tree = await manager.task_repository.create_task_tree_from_array(specs)
    await manager.distribute_task_tree(tree)
    db.close()
    return tree


async def test_history_columns_values_and_flattening(store_url):
    await run_tree(store_url)
    frame = apflow_nb.history(store_url)
    assert list(frame.columns[:len(HISTORY_COLUMNS)]) == HISTORY_COLUMNS
    assert len(frame) == 5
    assert {"inputs.x", "inputs.opts.fast", "result.y", "result.meta.unit", "result.results.ana-1.y"} <= set(frame.columns)
    row = frame.set_index("task_id").loc["ana-2"]
    assert row["result.y"] == 4 and row["inputs.opts.fast"] is True and row["status"] == "completed"
    assert row["depth"] == 1 and row["root_id"] == "root-ana" and row["executor"] == "square"
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]" or str(frame["created_at"].dtype).endswith("UTC]")
    assert row["duration_s"] >= 0 and row["started_at"] <= row["completed_at"]
    failed = frame.set_index("task_id").loc["ana-3"]
    assert failed["status"] == "failed" and failed["error"].startswith("ValueError: three is not allowed")
    leaf = frame.set_index("task_id").loc["ana-leaf"]
    assert leaf["depth"] == 2 and leaf["executor"] == "square" and leaf["name"] == "nothing"
    assert frame["created_at"].is_monotonic_decreasing  # newest first


async def test_history_filters_run_in_sql(store_url):
    await run_tree(store_url, user="ana")
    await run_tree(store_url, xs=(5, 3), user="bo")
    h = apflow_nb.history
    assert set(h(store_url, status="failed")["task_id"]) == {"ana-3", "bo-3"}
    assert set(h(store_url, status=["failed", "cancelled"], user_id="bo")["task_id"]) == {"bo-3"}
    assert set(h(store_url, executor="square", user_id="ana")["task_id"]) == {"ana-1", "ana-2", "ana-3", "ana-leaf"}
    assert set(h(store_url, executor="aggregate_results_executor")["task_id"]) == {"root-ana", "root-bo"}
    assert len(h(store_url, limit=3)) == 3
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert h(store_url, since=future).empty and len(h(store_url, until=future)) == 9
    failed = h(store_url, status="failed", user_id="ana")
    assert failed.iloc[0]["depth"] == 1 and failed.iloc[0]["root_id"] == "root-ana"  # from ancestors not selected
    tree = h(store_url, root_id="root-ana")
    assert list(tree["task_id"]) == ["root-ana", "ana-1", "ana-leaf", "ana-2", "ana-3"]  # tree order
    assert list(tree["depth"]) == [0, 1, 2, 1, 1]


async def test_flatten_false_keeps_dicts(store_url):
    await run_tree(store_url)
    frame = apflow_nb.history(store_url, flatten=False)
    assert list(frame.columns) == HISTORY_COLUMNS + ["inputs", "result"]
    row = frame.set_index("task_id").loc["ana-1"]
    assert row["inputs"] == {"x": 1, "opts": {"fast": True}} and row["result"]["y"] == 1


def test_empty_store_gives_typed_empty_frame(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    create_session(url).close()
    frame = apflow_nb.history(url)
    assert list(frame.columns) == HISTORY_COLUMNS and frame.empty
    never = apflow_nb.history(f"sqlite:///{tmp_path / 'never-opened.db'}")
    assert list(never.columns) == HISTORY_COLUMNS
    dtypes = dict(frame.dtypes.astype(str))
    assert dtypes["depth"] == "int64" and dtypes["duration_s"] == "float64" and "UTC" in dtypes["created_at"]
    assert dtypes == dict(never.dtypes.astype(str))


async def test_custom_model_columns_appear(store_url):
    from apflow_nb import set_task_model_class
    from apflow_nb.core.storage.sqlalchemy.models import TaskModel

    class WithTeam(TaskModel):
        __tablename__ = "apflow_tasks"
        team = Column(String(40), nullable=True)

    set_task_model_class(WithTeam)
    executor_register(Square)
    db = create_session(store_url)
    manager = TaskManager(db)
    await manager.task_repository.create_task(name="square", inputs={"x": 2}, team="vision")
    frame = apflow_nb.history(store_url)
    assert frame["team"].tolist() == ["vision"]
    db.close()


async def test_events_frame(store_url):
    tree = await run_tree(store_url)
    frame = apflow_nb.events(store_url, root_id="root-ana")
    assert frame["event_type"].iloc[0] == "tree_started" and frame["event_type"].iloc[-1] == "tree_finished"
    assert str(frame["timestamp"].dtype).endswith("UTC]") and frame["timestamp"].is_monotonic_increasing
    failed = apflow_nb.events(store_url, types=["task_failed"])
    assert failed["task_id"].tolist() == ["ana-3"] and "three is not allowed" in failed["payload"].iloc[0]["error"]
    assert apflow_nb.events(store_url, task_id="ana-1")["event_type"].tolist() == ["task_started", "task_completed"]
    assert tree.task.id == "root-ana"


async def test_timeline_draws_one_bar_per_task(store_url):
    import matplotlib

    matplotlib.use("Agg")
    await run_tree(store_url)
    fig = apflow_nb.timeline("root-ana", store_url)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["aggregate_results_executor", "  square", "    nothing", "  square", "  square"]
    assert len(ax.patches) == 5
    colors = {matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches}
    assert "#c62828" in colors and "#2e7d32" in colors  # failed and completed
    with pytest.raises(LookupError):
        apflow_nb.timeline("nope", store_url)
