"""history(), events() and timeline() on real stores (a SQLite file and the live PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import sys

import pandas as pd
import pytest
from sqlalchemy import Column, Integer, String, event
from sqlalchemy.exc import OperationalError

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.analysis import EVENT_COLUMNS, HISTORY_COLUMNS
from apflow_nb.core.storage.session import get_engine

class Square(ExecutableTask):
    id = "square"

    async def execute(self, inputs):
        if inputs.get("x") == 3:
            raise ValueError("three is not allowed")
        return {"y": inputs["x"] ** 2, "meta": {"unit": "m2", "ok": True}}


async def run_tree(url, xs=(1, 2, 3), user="ana"):
    """root (aggregate) -> user-x (square) for each x; user-leaf (name 'nothing', schemas.method
    square) under the first."""
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
    stored = {t.id: t for t in db.query(manager.task_repository.model).all()}
    db.close()
    return stored


@pytest.mark.asyncio
async def test_columns_values_and_flattening(store_url):
    stored = await run_tree(store_url)
    frame = apflow_nb.history(store_url)
    assert list(frame.columns[:len(HISTORY_COLUMNS)]) == HISTORY_COLUMNS
    assert len(frame) == 5
    assert {"inputs.x", "inputs.opts.fast", "result.y", "result.meta.unit", "result.results.ana-1.y",
            "result.result_count"} <= set(frame.columns)
    rows = frame.set_index("task_id")
    row = rows.loc["ana-2"]
    assert row["result.y"] == 4 and row["inputs.opts.fast"] == True and row["status"] == "completed"  # noqa: E712
    assert row["depth"] == 1 and row["root_id"] == "root-ana" and row["parent_id"] == "root-ana"
    assert row["executor"] == "square" and row["priority"] == 2 and row["user_id"] == "ana" and row["progress"] == 1.0
    for task_id, task in stored.items():  # times are the stored ones, exactly, in UTC
        for col in ("created_at", "started_at", "completed_at"):
            assert rows.loc[task_id, col] == pd.Timestamp(getattr(task, col)), (task_id, col)
        assert rows.loc[task_id, "duration_s"] == pytest.approx((task.completed_at - task.started_at).total_seconds())
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]" and str(frame["depth"].dtype) == "int64"
    assert str(frame["priority"].dtype) == "Int64" and str(frame["duration_s"].dtype) == "float64"
    failed = rows.loc["ana-3"]
    assert failed["status"] == "failed" and failed["error"].startswith("ValueError: three is not allowed")
    assert pd.isna(failed["result.y"])
    leaf = rows.loc["ana-leaf"]
    assert leaf["depth"] == 2 and leaf["executor"] == "square" and leaf["name"] == "nothing"
    assert rows.loc["root-ana", "result.results.ana-1.y"] == 1 and pd.isna(rows.loc["root-ana", "parent_id"])
    assert frame["created_at"].is_monotonic_decreasing  # newest first
    inputs_cols = [c for c in frame.columns if c.startswith("inputs.")]
    assert inputs_cols == sorted(inputs_cols)
    assert frame.columns.get_loc(inputs_cols[-1]) < frame.columns.get_loc("result.y")


@pytest.mark.asyncio
async def test_filters_run_in_sql(store_url):
    await run_tree(store_url, user="ana")
    await run_tree(store_url, xs=(5, 3), user="bo")
    statements = []
    engine = get_engine(store_url)
    listener = lambda conn, cur, statement, *args: statements.append(statement)  # noqa: E731
    last = lambda: next(s for s in reversed(statements)  # noqa: E731 - the frame's query
                        if "FROM apflow_tasks" in s and "executor" in s)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        h = apflow_nb.history
        assert set(h(store_url, status="failed")["task_id"]) == {"ana-3", "bo-3"}
        assert "WHERE" in last() and "status IN" in last()
        assert set(h(store_url, status=["failed", "cancelled"], user_id="bo")["task_id"]) == {"bo-3"}
        assert "user_id IN" in last()
        assert set(h(store_url, executor="square", user_id="ana")["task_id"]) == {"ana-1", "ana-2", "ana-3", "ana-leaf"}
        assert "coalesce(" in last().lower().split("where")[1]
        assert set(h(store_url, executor=["aggregate_results_executor"])["task_id"]) == {"root-ana", "root-bo"}
        newest = h(store_url, limit=3)
        assert len(newest) == 3 and "LIMIT" in last().upper()
        assert list(newest["task_id"]) == list(h(store_url)["task_id"][:3])
        assert h(store_url, limit=0).empty
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert h(store_url, since=future).empty and len(h(store_url, until=future)) == 9
    everything = h(store_url)
    middle = everything["created_at"].sort_values().iloc[4]
    later = h(store_url, since=middle)  # since <= created_at < until, with a Timestamp, text or naive datetime
    assert set(later["task_id"]) == set(everything[everything["created_at"] >= middle]["task_id"])
    assert len(later) + len(h(store_url, until=middle.isoformat())) == 9
    assert len(h(store_url, since=middle.tz_convert(None).to_pydatetime())) == len(later)
    failed = h(store_url, status="failed", user_id="ana")
    assert failed.iloc[0]["depth"] == 1 and failed.iloc[0]["root_id"] == "root-ana"  # ancestors not selected
    leaf = h(store_url, executor="square", user_id="ana", status="completed").set_index("task_id").loc["ana-leaf"]
    assert leaf["depth"] == 2 and leaf["root_id"] == "root-ana"
    newest = h(store_url, user_id="ana", limit=1)  # the leaf alone: its depth needs both ancestors from the store
    assert newest[["task_id", "depth", "root_id"]].values.tolist() == [["ana-leaf", 2, "root-ana"]]
    with pytest.raises(ValueError, match="limit"):
        h(store_url, limit=-1)


@pytest.mark.asyncio
async def test_a_run_in_tree_order(store_url):
    await run_tree(store_url, user="ana")
    await run_tree(store_url, xs=(5, 3), user="bo")
    tree = apflow_nb.history(store_url, root_id="root-ana")
    # parents first, siblings in creation order
    assert list(tree["task_id"]) == ["root-ana", "ana-1", "ana-leaf", "ana-2", "ana-3"]
    assert list(tree["depth"]) == [0, 1, 2, 1, 1] and set(tree["root_id"]) == {"root-ana"}
    assert list(apflow_nb.history(store_url, root_id="root-ana", limit=2)["task_id"]) == ["root-ana", "ana-1"]
    assert list(apflow_nb.history(store_url, root_id="root-bo", status="failed")["task_id"]) == ["bo-3"]
    assert apflow_nb.history(store_url, root_id="nope").columns.tolist() == list(tree.columns[:len(HISTORY_COLUMNS)])


@pytest.mark.asyncio
async def test_flatten_false_keeps_dicts(store_url):
    await run_tree(store_url)
    frame = apflow_nb.history(store_url, flatten=False)
    assert list(frame.columns) == HISTORY_COLUMNS + ["inputs", "result"]
    row = frame.set_index("task_id").loc["ana-1"]
    assert row["inputs"] == {"x": 1, "opts": {"fast": True}}
    assert row["result"] == {"y": 1, "meta": {"unit": "m2", "ok": True}}
    failed = frame.set_index("task_id").loc["ana-3"]
    assert failed["result"] is None  # the engine's error keys are in the error columns, not in result
    assert failed["error"] == "ValueError: three is not allowed" and failed["error_type"] == "ValueError"
    assert failed["traceback"].startswith("Traceback (most recent call last):")


@pytest.mark.asyncio
async def test_values_that_are_not_dicts(store_url):
    db = create_session(store_url)
    repo = TaskManager(db).task_repository
    a = await repo.create_task(name="a", inputs={})
    b = await repo.create_task(name="b", inputs={"list": [1, 2], "empty": {}, "deep": {"x": {"y": {"z": 1}}}})
    await repo.update_task(a.id, result=[1, 2, 3])
    await repo.update_task(b.id, result="just text")
    db.close()
    frame = apflow_nb.history(store_url).set_index("task_id")
    assert frame.loc[a.id, "result"] == [1, 2, 3] and frame.loc[b.id, "result"] == "just text"
    assert frame.loc[b.id, "inputs.list"] == [1, 2] and frame.loc[b.id, "inputs.empty"] == {}
    assert frame.loc[b.id, "inputs.deep.x.y.z"] == 1
    assert not any(c == "inputs" for c in frame.columns)  # {} gives no column


def test_empty_store_gives_typed_empty_frame(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    create_session(url).close()
    frame = apflow_nb.history(url)
    assert list(frame.columns) == HISTORY_COLUMNS and frame.empty
    never = apflow_nb.history(f"sqlite:///{tmp_path / 'never-opened.db'}")
    assert list(never.columns) == HISTORY_COLUMNS
    assert not (tmp_path / "never-opened.db").exists()  # reading creates nothing
    dtypes = dict(frame.dtypes.astype(str))
    assert dtypes["depth"] == "int64" and dtypes["duration_s"] == "float64"
    assert dtypes["created_at"] == "datetime64[us, UTC]"
    assert dtypes == dict(never.dtypes.astype(str))
    assert list(apflow_nb.history(url, flatten=False).columns) == HISTORY_COLUMNS + ["inputs", "result"]
    assert apflow_nb.events(url).columns.tolist() == EVENT_COLUMNS and apflow_nb.events(url).empty


@pytest.mark.asyncio
async def test_empty_and_full_frames_have_the_same_dtypes(store_url):
    await run_tree(store_url)
    full = apflow_nb.history(store_url)
    none_match = apflow_nb.history(store_url, user_id="nobody")
    assert none_match.empty and list(none_match.columns) == HISTORY_COLUMNS
    assert dict(none_match.dtypes) == dict(full.dtypes[HISTORY_COLUMNS])
    ev_full, ev_none = apflow_nb.events(store_url), apflow_nb.events(store_url, task_id="nobody")
    assert ev_none.empty and dict(ev_none.dtypes) == dict(ev_full.dtypes)


@pytest.mark.asyncio
async def test_custom_model_columns_are_typed(store_url):
    from apflow_nb import set_task_model_class
    from apflow_nb.core.storage.sqlalchemy.models import TaskModel

    class WithTeam(TaskModel):
        __tablename__ = "apflow_tasks"
        team = Column(String(40), nullable=True)
        cost = Column(Integer, nullable=True)

    set_task_model_class(WithTeam)
    db = create_session(store_url)
    repo = TaskManager(db).task_repository
    await repo.create_task(name="square", inputs={"x": 2}, team="vision", cost=7)
    await repo.create_task(name="square", inputs={"x": 3})
    db.close()
    frame = apflow_nb.history(store_url)
    assert list(frame.columns[-2:]) == ["team", "cost"]
    assert sorted(frame["team"].dropna()) == ["vision"] and frame["cost"].dropna().tolist() == [7]
    assert str(frame["cost"].dtype) == "Int64"
    empty = apflow_nb.history(store_url, status="failed")
    assert dict(empty.dtypes) == dict(frame.dtypes[list(empty.columns)])
    assert list(empty.columns[-2:]) == ["team", "cost"]


@pytest.mark.asyncio
async def test_events_frame(store_url):
    await run_tree(store_url)
    frame = apflow_nb.events(store_url, root_id="root-ana")
    assert list(frame.columns) == EVENT_COLUMNS
    assert frame["event_type"].iloc[0] == "tree_started" and frame["event_type"].iloc[-1] == "tree_finished"
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]" and frame["event_id"].is_monotonic_increasing
    from apflow_nb import EventType

    failed = apflow_nb.events(store_url, types=[EventType.TASK_FAILED])
    assert failed["task_id"].tolist() == ["ana-3"] and "three is not allowed" in failed["payload"].iloc[0]["error"]
    assert apflow_nb.events(store_url, types="task_failed")["task_id"].tolist() == ["ana-3"]
    assert apflow_nb.events(store_url, task_id="ana-1")["event_type"].tolist() == ["task_started", "task_completed"]
    assert len(apflow_nb.events(store_url, limit=2)) == 2
    middle = frame["timestamp"].iloc[len(frame) // 2]
    after = apflow_nb.events(store_url, root_id="root-ana", since=middle)
    before = apflow_nb.events(store_url, root_id="root-ana", until=middle)
    assert len(after) + len(before) == len(frame) and (after["timestamp"] >= middle).all()


@pytest.mark.asyncio
async def test_store_may_be_an_engine_a_session_a_manager_or_the_default(store_url, in_tmp_cwd, monkeypatch):
    await run_tree(store_url)
    db = create_session(store_url)
    manager = TaskManager(db)
    for store in (get_engine(store_url), db, manager):
        assert len(apflow_nb.history(store)) == 5 and len(apflow_nb.events(store, task_id="ana-1")) == 2
    db.close()
    assert apflow_nb.history().empty  # the default store (./.apflow/tasks.db) has nothing yet
    monkeypatch.setenv("APFLOW_NB_DATABASE_URL", store_url)
    assert len(apflow_nb.history()) == 5
    with pytest.raises(TypeError, match="store must be"):
        apflow_nb.history(42)


def test_an_unreachable_store_is_an_error_not_an_empty_frame():
    with pytest.raises(OperationalError):
        apflow_nb.history("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")


def test_executor_column_and_filter_agree_with_the_core(tmp_path):
    """The executor is computed in SQL; it must be what the TaskManager picks (executor_id_of)."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from apflow_nb.core.types import executor_id_of

    names = st.sampled_from(["a", "b", "x y", "é"])
    maybe = st.one_of(st.none(), st.just(""), names)
    task = st.tuples(names, maybe, maybe, st.booleans(), st.booleans())
    url = f"sqlite:///{tmp_path / 'exec.db'}"
    create_session(url).close()
    engine = get_engine(url)
    counter = iter(range(10**9))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(task, min_size=1, max_size=8))
    def check(specs):
        from sqlalchemy import delete, insert

        from apflow_nb.core.storage.sqlalchemy.models import TaskModel

        rows = []
        for name, by_params, by_method, with_params, with_schemas in specs:
            params = ({"executor_id": by_params} if by_params is not None else {}) if with_params else None
            schemas = ({"method": by_method} if by_method is not None else {}) if with_schemas else None
            rows.append({"id": f"t{next(counter)}", "name": name, "params": params, "schemas": schemas,
                         "status": "completed", "priority": 2, "progress": 1.0, "has_children": False,
                         "has_copy": False, "created_at": dt.datetime.now(dt.timezone.utc),
                         "updated_at": dt.datetime.now(dt.timezone.utc)})
        with engine.begin() as conn:
            conn.execute(delete(TaskModel.__table__))
            conn.execute(insert(TaskModel.__table__), rows)
        frame = apflow_nb.history(engine).set_index("task_id")
        expected = {r["id"]: executor_id_of(type("T", (), r)) for r in rows}
        assert frame["executor"].to_dict() == expected
        for executor in set(expected.values()):
            assert set(apflow_nb.history(engine, executor=executor)["task_id"]) == \
                {i for i, e in expected.items() if e == executor}

    check()


@pytest.mark.asyncio
async def test_timeline_draws_one_bar_or_mark_per_started_task(store_url):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from apflow_nb.analysis.palette import hex_color

    await run_tree(store_url)
    fig = apflow_nb.timeline("root-ana", store_url)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["root-ana", "  ana-1", "    ana-leaf", "  ana-2", "  ana-3"]  # the keys the user wrote
    tree = apflow_nb.history(store_url, root_id="root-ana")
    origin = tree["started_at"].min()
    # a bar from start to end for each task, or a mark at its start when it took no visible time
    starts = {round(p.get_y() + p.get_height() / 2): (p.get_x(), p.get_width(), matplotlib.colors.to_hex(
        p.get_facecolor())) for p in ax.patches}
    for c in ax.collections:
        for x, y in c.get_offsets():
            starts[round(y)] = (x, 0.0, matplotlib.colors.to_hex(c.get_facecolor()[0]))
    assert sorted(starts) == [0, 1, 2, 3, 4]
    for i, (_, row) in enumerate(tree.iterrows()):  # in tree order, from start to end
        x, width, color = starts[i]
        assert x == pytest.approx((row["started_at"] - origin).total_seconds(), abs=1e-6)
        assert width == 0.0 or width == pytest.approx(row["duration_s"], abs=1e-6)
        assert color == hex_color(row["status"])
    assert [c for _, _, c in starts.values()].count(hex_color("failed")) == 1
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["completed", "failed"]
    with pytest.raises(LookupError, match="nope"):
        apflow_nb.timeline("nope", store_url)


@pytest.mark.asyncio
async def test_timeline_into_given_axes_with_running_and_pending_tasks(store_url):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    db = create_session(store_url)
    repo = TaskManager(db).task_repository
    root = await repo.create_task(name="root")
    running = await repo.create_task(name="running", parent_id=root.id)
    await repo.create_task(name="waiting", parent_id=root.id)
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
    await repo.update_task(root.id, status="in_progress", started_at=started)
    await repo.update_task(running.id, status="in_progress", started_at=started + dt.timedelta(seconds=10))
    db.close()
    fig, ax = plt.subplots()
    try:
        assert apflow_nb.timeline(root.id, store_url, ax) is fig
        assert [t.get_text() for t in ax.get_yticklabels()] == ["root", "  running", "  waiting"]
        assert len(ax.patches) == 2  # the pending task has no bar
        running_bar = ax.patches[1]
        assert running_bar.get_x() == pytest.approx(10, abs=0.01) and running_bar.get_width() >= 20  # reaches to now
    finally:
        plt.close(fig)


def test_timeline_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'apflow_nb\[history\]'"):
        apflow_nb.timeline("any", f"sqlite:///{tmp_path / 'x.db'}")
