"""apflow_nb.cancel(): a run of another live process (a cancel request its keeper picks up), a run
whose process is gone (recovered), a stored tree nobody runs (cancelled, in the event log), a run on
a Dask runner, and the watch view's Cancel buttons."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from sqlalchemy import create_engine, text

import apflow_nb
from apflow_nb import TaskManager, create_session
from apflow_nb.core.storage.reading import dispose_readers
from tests.owners import Owner
from tests.trees import tree


@pytest.fixture(autouse=True)
def _readers():
    yield
    dispose_readers()


def rows(url: str, sql: str) -> list:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).all()
    finally:
        engine.dispose()


def statuses(url: str) -> dict[str, str]:
    return dict(rows(url, "select key, status from apflow_tasks"))


def until_final(url: str, timeout: float = 10.0) -> float:
    """Seconds until no task of the store is pending or in_progress (fails after ``timeout``)."""
    start = time.monotonic()
    while set(statuses(url).values()) & {"pending", "in_progress"}:
        assert time.monotonic() - start < timeout, statuses(url)
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.timing
def test_a_cancel_from_b_stops_the_run_in_a_within_a_second_plus_grace(store_url, tmp_path):
    owner = Owner(store_url, "slow", tmp_path)
    try:
        outcome = apflow_nb.cancel(owner.root_id, store_url)
        took = until_final(store_url)
        print(f"\ncancel on {store_url.split(':')[0]}: every task final {took * 1000:.0f} ms after the request")
        assert took <= 1.0 + 1.0  # the owner's grace period is 1 s
        assert outcome.action == "requested" and f"process {owner.proc.pid} on" in outcome.message
        assert owner.finish() == "cancelled"
        assert statuses(store_url) == {"root": "cancelled", "s1": "cancelled", "s2": "cancelled"}
        # the owner cancelled through its own path (the checker) and wrote the events itself
        results = dict(rows(store_url, "select key, result from apflow_tasks where key in ('s1', 's2')"))
        assert all("stopped by its checker" in str(r) for r in results.values())
        logged = rows(store_url, "select task_id from apflow_task_events where event_type = 'task_cancelled'")
        assert sorted(r[0] for r in logged) == ["root", "s1", "s2"]
        assert rows(store_url, "select count(*) from apflow_cancel_requests where handled_at is not null") == [(1,)]
    finally:
        owner.stop()


def test_one_task_of_a_run_in_another_process_is_cancelled_and_the_rest_goes_on(db_url, tmp_path):
    owner = Owner(db_url, "slow", tmp_path)
    try:
        assert apflow_nb.cancel("s1", db_url, wait=10).action == "requested"
        assert statuses(db_url)["s1"] == "cancelled" and statuses(db_url)["s2"] == "in_progress"
        assert apflow_nb.cancel("root", db_url, wait=10).action == "requested"
        assert owner.finish() == "cancelled"
    finally:
        owner.stop()


def test_a_cancel_for_a_run_whose_process_is_gone_recovers_it(db_url, tmp_path):
    owner = Owner(db_url, "slow", tmp_path)
    try:
        create_session(db_url).close()  # this process opened the store while A ran (no recovery on opening)
        os.kill(owner.proc.pid, signal.SIGKILL)
        owner.proc.wait(10)
        outcome = apflow_nb.cancel(owner.root_id, db_url)
        assert outcome.action == "recovered" and "is gone" in outcome.message
        assert set(statuses(db_url).values()) == {"failed"}
        assert rows(db_url, "select finished_at is not null, status from apflow_runs") == [(1, "failed")]
        kinds = rows(db_url, "select count(*) from apflow_task_events where event_type = 'task_failed'")
        assert kinds == [(3,)]
    finally:
        owner.stop()


async def test_a_stored_tree_nobody_runs_is_marked_cancelled_with_its_events(store_url):
    db = create_session(store_url)
    root = await tree(TaskManager(db), {"id": "r", "name": "aggregate_results_executor"},
                      {"id": "a", "name": "aggregate_results_executor"})
    db.close()
    outcome = await asyncio.to_thread(apflow_nb.cancel, root.task.id, store_url)  # from a thread, or in a loop:
    assert outcome.action == "cancelled" and "2 unfinished task(s) marked cancelled" in outcome.message
    assert statuses(store_url) == {"r": "cancelled", "a": "cancelled"}
    logged = rows(store_url, "select task_id, status from apflow_task_events order by id")
    assert sorted(logged) == [("a", "cancelled"), ("r", "cancelled")]
    again = apflow_nb.cancel("r", store_url)  # here the loop runs: the store is written from a worker thread
    assert again.action == "finished"


async def test_the_watch_views_cancel_button_cancels_the_watched_run(store_url, tmp_path):
    owner = Owner(store_url, "slow", tmp_path)
    try:
        w = apflow_nb.watch(owner.root_id, store_url, display=False)
        outcome = await w.cancel()  # what the view's "Cancel run" button calls
        assert outcome.action == "requested"
        assert await asyncio.wait_for(w._wait(), 15) == "cancelled"
        assert [w.state.rows[k].status for k in ("root", "s1", "s2")] == ["cancelled"] * 3
        assert owner.finish() == "cancelled"
    finally:
        owner.stop()


def test_a_run_on_a_dask_runner_is_cancelled_from_another_process(db_url, tmp_path):
    owner = Owner(db_url, "slow", tmp_path, "--dask")
    try:
        assert apflow_nb.cancel(owner.root_id, db_url, wait=15).action == "requested"
        assert owner.finish() == "cancelled"
        assert statuses(db_url) == {"root": "cancelled", "s1": "cancelled", "s2": "cancelled"}
    finally:
        owner.stop()


def test_an_unknown_id_is_a_named_error(db_url):
    create_session(db_url).close()
    with pytest.raises(apflow_nb.errors.TaskNotFoundError, match="no task with id 'nope'"):
        apflow_nb.cancel("nope", db_url)
