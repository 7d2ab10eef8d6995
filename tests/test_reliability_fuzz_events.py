"""Generated event payloads (hypothesis): executors put arbitrary values on their event queues
(datetimes, bytes, sets, NaN, huge integers, lone surrogates, NUL characters, deep and circular
structures, objects whose repr raises, non-string keys, non-dict items), then complete or raise.
After every run, on a real SQLite file, the store and the event log agree: every task is final,
each has exactly one final event whose status is the stored one, every item an executor put is in
the log (progress coalesces, so at least one per task that reported any), every logged payload is
valid JSON, and no row was dropped."""
from __future__ import annotations

import asyncio
import datetime
import decimal
import enum
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register

ITEMS: dict[str, list] = {}  # task id -> what its executor puts on its queue (inputs must be JSON)
_serial = itertools.count()


class BadRepr:
    def __repr__(self):
        raise RuntimeError("repr exploded")


class Colour(enum.Enum):
    RED = "red"


def circular():
    loop: dict = {"name": "loop"}
    loop["self"] = loop
    return loop


class Emitter(ExecutableTask):
    """Puts the generated items on its queue, then returns or raises as its inputs say."""

    id = "fuzz_emitter"

    async def execute(self, inputs):
        for item in ITEMS.pop(inputs["slot"], []):
            await self.event_queue.put(item)
        if inputs.get("raise"):
            raise RuntimeError("after the events")
        return {"ok": True}


text_any = st.one_of(
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12),
    st.sampled_from(["lone \ud800 half", "\udfff", "nul \x00 byte", "\x00", "é\U0001f600"]),
)
leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(2**63, 2**80), st.floats(), text_any,
    st.binary(max_size=12), st.datetimes(), st.dates(), st.decimals(),
    st.just(Colour.RED), st.builds(object), st.builds(BadRepr), st.builds(circular),
    st.sampled_from([float("nan"), float("-inf"), 2**70, b"\x00\xff", datetime.datetime(2026, 1, 2, 3, 4, 5),
                     "lone \ud800", {1, 2}]),  # the values of issue 11, often
)
payload = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner), st.frozensets(st.integers(), max_size=3),
        st.dictionaries(st.one_of(text_any, st.integers(), st.tuples(st.integers())), inner, max_size=4),
    ),
    max_leaves=12,
)
item = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["log", "progress", "message", "custom"])},
                          optional={"data": payload, "progress": payload, "extra": payload}),
    st.fixed_dictionaries({"type": text_any, "data": payload}),
    payload,  # not a dict at all
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('fuzz-events') / 'events.db'}"


def _query(db, sql: str, **params):
    return db.execute(text(sql), params).all()


def check_agreement(db, root: str, emitted: dict[str, list]) -> None:
    tasks = dict(_query(db, "select id, status from apflow_tasks where root_id = :r", r=root))
    assert tasks and set(tasks.values()) <= {"completed", "failed", "cancelled"}, tasks
    finals = _query(db, "select task_id, status from apflow_task_events where root_id = :r and event_type in "
                        "('task_completed', 'task_failed', 'task_cancelled')", r=root)
    assert sorted(finals) == sorted(tasks.items()), (finals, tasks)  # one final event each, same status
    for task_id, items in emitted.items():
        kinds = [k for (k,) in _query(db, "select event_type from apflow_task_events where task_id = :t and "
                                          "event_type in ('executor', 'task_progress')", t=task_id)]
        progress = sum(1 for i in items if isinstance(i, dict) and i.get("type") == "progress")
        assert kinds.count("executor") == len(items) - progress, (task_id, kinds, items)
        assert (kinds.count("task_progress") >= 1) == (progress >= 1), (task_id, kinds)
        assert kinds.count("task_progress") <= progress
    bad = _query(db, "select id, payload from apflow_task_events where root_id = :r and payload is not null "
                     "and not json_valid(payload)", r=root)
    assert not bad, bad
    for (raw,) in _query(db, "select payload from apflow_task_events where root_id = :r and payload is not null",
                         r=root):
        json.loads(raw)
    trees = _query(db, "select event_type from apflow_task_events where root_id = :r and event_type like 'tree_%'",
                   r=root)
    assert sorted(k for (k,) in trees) == ["tree_finished", "tree_started"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(children=st.lists(st.tuples(st.lists(item, max_size=6), st.booleans()), min_size=1, max_size=4))
def test_arbitrary_event_payloads_leave_the_store_and_the_event_log_in_agreement(store, children):
    executor_register(Emitter)
    run = next(_serial)
    root = f"root-{run}"
    emitted = {}
    specs = [{"id": root, "name": "aggregate_results_executor"}]
    for i, (items, fails) in enumerate(children):
        task_id = f"c{run}-{i}"
        ITEMS[task_id] = list(items)
        emitted[task_id] = list(items)
        specs.append({"id": task_id, "name": "fuzz_emitter", "parent_id": root,
                      "inputs": {"slot": task_id, "raise": fails}})
    specs[0]["dependencies"] = [{"id": s["id"], "required": False} for s in specs[1:]]

    async def case():
        db = create_session(store)
        manager = TaskManager(db, flush_interval=0.01)
        node = await manager.task_repository.create_task_tree_from_array(specs)
        await asyncio.wait_for(manager.distribute_task_tree(node), 30)
        assert manager.writer.rows_dropped == 0
        check_agreement(db, root, emitted)
        db.close()

    asyncio.run(case())


def test_the_generators_reach_the_values_that_once_broke_the_writer():
    """The strategies above do produce the payloads of issue 11 (so the property is not vacuous)."""
    seen = {"datetime": False, "bytes": False, "surrogate": False, "nan": False, "big": False}

    def visit(value, depth=0):
        if depth > 6:
            return
        if isinstance(value, (datetime.date, datetime.datetime)):
            seen["datetime"] = True
        elif isinstance(value, bytes) and value:
            seen["bytes"] = True
        elif isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            seen["surrogate"] = True
        elif isinstance(value, float) and value != value:
            seen["nan"] = True
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 2**63:
            seen["big"] = True
        elif isinstance(value, dict):
            for v in list(value.values())[:8]:
                if v is not value:
                    visit(v, depth + 1)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v, depth + 1)

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
    @given(item)
    def explore(value):
        visit(value)

    explore()
    assert all(seen.values()), seen
    assert decimal  # decimals are generated too (st.decimals)
