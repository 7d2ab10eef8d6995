"""apflow_nb.watch(): a run that process A executes, followed by this process (B) through the store's
event log, on a SQLite file and on the PostgreSQL server."""
from __future__ import annotations

import asyncio
import io
import os
import signal

import pytest
from sqlalchemy import create_engine, insert, text

import apflow_nb
from apflow_nb.core.errors import NoRunningTreeError, StoreNotFoundError, TaskNotFoundError
from apflow_nb.core.events import EventType
from apflow_nb.core.storage.reading import EventLogReader, dispose_readers, reader_engine
from apflow_nb.core.storage.sqlalchemy.models import task_events, utcnow
from apflow_nb.notebook.feed import PollSchedule
from tests.owners import Owner

LIFECYCLE = {"task_started", "task_completed", "task_failed", "task_cancelled", "tree_finished"}


@pytest.fixture(autouse=True)
def _readers():
    yield
    dispose_readers()


def lifecycle(events: list[tuple[str, str | None, str | None]]) -> list[tuple[str, str | None, str | None]]:
    return [e for e in events if e[0] in LIFECYCLE]


async def test_watch_sees_every_state_change_in_order_and_ends_on_the_final_frame(store_url, tmp_path):
    owner = Owner(store_url, "steps", tmp_path)
    try:
        screen = io.StringIO()
        w = apflow_nb.watch(owner.root_id, store_url, display="text", stream=screen)
        assert w.state.status == "in_progress" and not w.state.finished
        assert w.state.rows["a"].status == "in_progress"  # the snapshot from the task table
        owner.go()
        assert await w == "completed"
        assert owner.finish() == "completed"
        published = [(e["type"], e["task_id"], e["status"]) for e in owner.published()]
        seen = [(e.type.value, e.task_id, e.status) for e in w.events]
        after_start = published[published.index(("task_started", "a", "in_progress")) + 1:]
        assert lifecycle(seen) == lifecycle(after_start)  # every state change after the snapshot, in order
        for task in ("a", "b", "c"):  # progress only moves forward, and reaches the end
            steps = [e.progress for e in w.events if e.type is EventType.TASK_PROGRESS and e.task_id == task]
            assert steps == sorted(steps) and steps[-1] == 1.0
        assert w.done() and w.state.finished and w.state.counts["completed"] == 4 and w.state.progress == 1.0
        assert screen.getvalue().splitlines()[-1].startswith("apflow [####################] completed · 4/4 done")
    finally:
        owner.stop()


@pytest.mark.timing
async def test_an_event_in_process_a_reaches_the_view_in_b_within_half_a_second(store_url, tmp_path):
    owner = Owner(store_url, "steps", tmp_path)
    try:
        w = apflow_nb.watch(owner.root_id, store_url, display=False)
        await asyncio.sleep(1.0)  # a quiet spell: the poll has backed off to its slowest
        owner.go()
        await w
        owner.finish()
        lags = [at - event.timestamp for event, at in w.received]
        print(f"\nwatch latency on {store_url.split(':')[0]}: max {max(lags) * 1000:.0f} ms, "
              f"mean {sum(lags) / len(lags) * 1000:.0f} ms over {len(lags)} events")
        assert len(lags) >= 10 and max(lags) <= 0.5
    finally:
        owner.stop()


async def test_a_failed_run_ends_on_its_final_frame_with_the_error(store_url, tmp_path):
    owner = Owner(store_url, "fails", tmp_path)
    try:
        w = apflow_nb.watch(store=store_url, display=False)  # the newest running tree
        assert w.root_id == owner.root_id
        owner.go()
        assert await w == "failed"
        assert owner.finish() == "failed"
        assert "RuntimeError: boom" in w.state.rows["x"].error
        assert w.state.rows["root"].status == "failed"  # skipped for its failed dependency
    finally:
        owner.stop()


async def test_a_run_that_is_over_shows_its_final_frame_at_once_and_reading_changes_no_file(db_url, tmp_path):
    owner = Owner(db_url, "steps", tmp_path)
    owner.go()
    assert owner.finish() == "completed"
    path = tmp_path / "tasks.db"
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    screen = io.StringIO()
    w = apflow_nb.watch("b", db_url, display="text", stream=screen)  # any task id of the run works
    assert w.root_id == "root" and w.done() and w.status == "completed"
    assert await w == "completed" and w.result() == "completed"
    assert "completed · 4/4 done · 100%" in screen.getvalue()
    assert w.state.elapsed() > 0  # started and ended from the run's lease
    dispose_readers()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_what_cannot_be_watched_is_a_named_error(db_url, tmp_path):
    with pytest.raises(StoreNotFoundError, match="there is no store at .*nothing.db"):
        apflow_nb.watch(store=f"sqlite:///{tmp_path / 'nothing.db'}")
    assert not (tmp_path / "nothing.db").exists()  # reading never creates a store
    apflow_nb.create_session(db_url).close()
    with pytest.raises(NoRunningTreeError, match="no tree is running"):
        apflow_nb.watch(store=db_url)
    with pytest.raises(TaskNotFoundError, match="no task with id 'nope'"):
        apflow_nb.watch("nope", db_url)


async def test_a_watched_run_whose_process_dies_ends_with_a_note(db_url, tmp_path):
    owner = Owner(db_url, "slow", tmp_path)
    try:
        w = apflow_nb.watch(owner.root_id, db_url, display=False)
        os.kill(owner.proc.pid, signal.SIGKILL)
        owner.proc.wait(10)
        assert await asyncio.wait_for(w._wait(), 10) == "failed"
        assert f"process {owner.proc.pid} on" in w.state.error and "is gone" in w.state.error
    finally:
        owner.stop()


def test_the_poll_backs_off_while_quiet_and_is_fast_again_when_events_arrive():
    schedule = PollSchedule(fast=0.05, slowest=0.2, backoff=1.5)
    quiet = [schedule.next(False) for _ in range(8)]
    assert quiet == sorted(quiet) and quiet[0] > 0.05 and quiet[-1] == 0.2
    assert schedule.next(True) == 0.05


def test_an_event_id_that_commits_late_on_postgresql_is_not_skipped(pg_url):
    apflow_nb.create_session(pg_url).close()  # the tables
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    reader = EventLogReader(reader_engine(pg_url), "r")
    row = {"event_type": "task_started", "task_id": "t", "root_id": "r", "status": "in_progress",
           "timestamp": utcnow()}
    try:
        with engine.connect() as slow:
            early = slow.begin()
            slow.execute(insert(task_events).values(dict(row, task_id="early")))  # takes the lower id, commits last
            with engine.begin() as quick:
                quick.execute(insert(task_events).values(dict(row, task_id="late")))
            assert [e.task_id for e in reader.read()] == ["late"]
            early.commit()
        assert [e.task_id for e in reader.read()] == ["early"]
        assert reader.read() == []
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from apflow_task_events")).scalar() == 2
    finally:
        engine.dispose()
