"""What a cache hit leaves behind: its stored row, its event-log row and its history frame row, the same
whichever way it was settled (issue 15: the hit path is a shortcut, not a different outcome)."""
from __future__ import annotations

import json

import pandas
from sqlalchemy import text

from apflow_nb import TaskManager, create_session, executor_register, history
from tests.trees import tasks_by_key, tree

RESULTS = {"nested": {"name": "é ü \u2028", "deep": {"xs": [1, 2.5, None, True]}}, "listed": [1, "two", {"three": 3}],
           "text": "plain words", "number": 42, "nothing": None}


def register() -> None:
    @executor_register(cache=True)
    async def shaped(kind: str, extra: int = 7) -> object:
        return RESULTS[kind]


def specs() -> list[dict]:
    return [{"id": "root", "name": "aggregate_results_executor"}] + [
        {"id": kind, "name": "shaped", "inputs": {"kind": kind}} for kind in RESULTS]


def stored(url: str, root_id: str) -> dict[str, dict]:
    db = create_session(url)
    try:
        rows = db.execute(text("select key, id, status, inputs, result, error, progress, attempts, cached_from, "
                               "started_at, completed_at, updated_at from apflow_tasks where root_id = :r"),
                          {"r": root_id}).mappings().all()
        events = db.execute(text("select task_id, event_type, status, progress, payload, timestamp "
                                 "from apflow_task_events where root_id = :r and event_type = 'task_completed'"),
                            {"r": root_id}).mappings().all()
    finally:
        db.close()
    by_id = {e["task_id"]: dict(e) for e in events}
    return {r["key"]: dict(r, event=by_id.get(r["id"])) for r in rows}


def loads(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


async def test_a_hit_stores_the_row_event_and_history_row_its_source_would_give(store_url):
    register()
    first = TaskManager(create_session(store_url))
    source = await tree(first, *specs())
    await first.distribute_task_tree(source)
    again = TaskManager(create_session(store_url))  # a new manager: the cache index comes from the store
    hit = await tree(again, *specs())
    await again.distribute_task_tree(hit)
    assert hit.tree_status == "completed"
    before, after = stored(store_url, source.task.id), stored(store_url, hit.task.id)
    ids = {k: t.id for k, t in tasks_by_key(source).items()}
    for kind, value in RESULTS.items():
        row, src = after[kind], before[kind]
        assert row["status"] == "completed" and row["error"] is None and row["progress"] == 1.0
        assert row["cached_from"] == ids[kind] and src["cached_from"] is None
        assert loads(row["inputs"]) == loads(src["inputs"]) == {"kind": kind}  # stored inputs: as given
        assert loads(row["result"]) == loads(src["result"])
        assert row["attempts"] == 0 and row["started_at"] is None
        assert row["completed_at"] is not None and row["completed_at"] == row["updated_at"]
        event = row["event"]
        assert event["status"] == "completed" and event["progress"] == 1.0
        assert loads(event["payload"]) == {"cached": True, "cached_from": ids[kind]}
    computed, in_memory = tasks_by_key(source), tasks_by_key(hit)
    assert {k: in_memory[k].result for k in RESULTS} == {k: computed[k].result for k in RESULTS}
    assert in_memory["nested"].result == RESULTS["nested"]
    frame = history(store_url, root_id=hit.task.id).set_index("key")
    src_frame = history(store_url, root_id=source.task.id).set_index("key")
    shown = [c for c in frame.columns if c.startswith(("result", "inputs"))]
    assert shown == [c for c in src_frame.columns if c.startswith(("result", "inputs"))]
    assert "result.deep.xs" in shown and frame.loc["nested", "result.deep.xs"] == [1, 2.5, None, True]
    assert frame.loc[list(RESULTS), shown].astype(str).equals(src_frame.loc[list(RESULTS), shown].astype(str))
    assert frame.loc["nested", "cached_from"] == ids["nested"] and pandas.isna(frame.loc["root", "cached_from"])


async def test_hits_settled_in_a_row_end_in_order_with_what_starts_and_ends_around_them(manager, db_url):
    register()

    @executor_register
    async def gate() -> dict:
        return {"kind": "text"}

    await manager.distribute_task_tree(await tree(manager, *specs()))
    node = await tree(manager, *specs(), {"id": "gate", "name": "gate"},
                      {"id": "gated", "name": "shaped", "dependencies": ["gate"]},  # its inputs: the gate's result
                      {"id": "after", "name": "aggregate_results_executor", "dependencies": list(RESULTS)})
    await manager.distribute_task_tree(node)
    rows = stored(db_url, node.task.id)
    hits = [rows[k] for k in RESULTS]
    assert all(h["cached_from"] for h in hits) and rows["gated"]["cached_from"] == rows["text"]["cached_from"]
    assert rows["gate"]["cached_from"] is None and rows["after"]["cached_from"] is None
    assert rows["gated"]["completed_at"] >= rows["gate"]["completed_at"]  # a hit ends after what it waited for
    assert rows["gated"]["event"]["timestamp"] >= rows["gate"]["event"]["timestamp"]
    assert rows["after"]["started_at"] >= max(h["completed_at"] for h in hits)
    assert loads(rows["gated"]["inputs"]) == {"kind": "text"}  # merged from the dependency, stored as run


async def test_buffered_hits_are_stored_as_plain_changes_would_be_in_order_even_row_by_row(manager, db_url):
    """The writer keeps a hit as a tuple and writes hits set-based: a change buffered before a hit, a change after
    it, log rows around it, and a batch the database refuses (written row by row) all end as plain changes would."""
    from apflow_nb.core.clock import utcnow

    node = await manager.task_repository.create_task_tree_from_array(
        [{"id": "root", "name": "shaped"}] + [{"id": t, "name": "shaped", "parent_id": "root"}
                                              for t in ("a", "b", "c", "bad")])
    writer = manager.writer
    assert writer.takes_hits
    for refuse in (False, True):
        engine = create_session(db_url).get_bind()
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS refuse_bad"))
            if refuse:  # the database itself refuses any change of one row: the batch goes row by row
                conn.execute(text("CREATE TRIGGER refuse_bad BEFORE UPDATE ON apflow_tasks WHEN NEW.id = 'bad' "
                                  "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        now, stamp = utcnow(), 1_767_000_000.25 + 100 * refuse
        writer.log_row("tree_started", "root", "root", "root", "in_progress", 0.0, stamp - 1, None)
        writer.mark("a", {"progress": 0.5, "inputs": {"k": refuse}})  # buffered before its hit: joins it
        writer.record_hit("a", '{"x": [1, "é"]}', "src-a", now, ("a", "root", "shaped", stamp, "src-a"))
        writer.record_hit("b", None, "src-b", now, None)  # a null result, no log row
        writer.record_hit("c", "[1]", "src-c", now, ("c", "root", "shaped", stamp, "src-c"))
        writer.mark("c", {"error": f"later {refuse}"})  # a change after a hit wins
        writer.mark("bad", {"progress": 0.25 + 0.5 * refuse})  # refused: dropped, the others still written
        writer.log_row("tree_finished", "root", "root", "root", "completed", 1.0, stamp + 1, {"n": 3})
        assert await writer.drain(10)
        db = create_session(db_url)
        got = {r["id"]: dict(r) for r in db.execute(text(
            "select id, status, inputs, result, error, progress, attempts, cached_from, completed_at, updated_at "
            "from apflow_tasks")).mappings()}
        log = db.execute(text("select event_type, task_id, status, progress, payload, timestamp from "
                              "apflow_task_events where timestamp >= :t order by id"),
                         {"t": datetime_text(stamp - 1)}).all()
        db.close()
        instant = now.isoformat(" ", "microseconds")[:26]
        for tid, result, source in (("a", {"x": [1, "é"]}, "src-a"), ("b", None, "src-b"), ("c", [1], "src-c")):
            row = got[tid]
            assert (row["status"], loads(row["result"]), row["progress"], row["attempts"], row["cached_from"]) == (
                "completed", result, 1.0, 0, source)
            assert row["completed_at"] == row["updated_at"] == instant
        assert loads(got["a"]["inputs"]) == {"k": refuse} and got["a"]["error"] is None
        assert got["c"]["error"] == f"later {refuse}"
        assert got["bad"]["progress"] == 0.25
        assert [(e[0], e[1]) for e in log] == [("tree_started", "root"), ("task_completed", "a"),
                                               ("task_completed", "c"), ("tree_finished", "root")]
        assert [loads(e[4]) for e in log[1:3]] == [{"cached": True, "cached_from": "src-a"},
                                                    {"cached": True, "cached_from": "src-c"}]
        assert all(e[2] == "completed" and e[3] == 1.0 for e in log[1:3]) and log[1][5] == datetime_text(stamp)
    assert node.task.id == "root"


def datetime_text(stamp: float) -> str:
    """An event timestamp as SQLite holds it (naive UTC text with microseconds)."""
    import datetime as dt

    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
