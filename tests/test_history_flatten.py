"""Flattening JSON columns: every value lands in exactly one place, and keys that vary from run to
run (results keyed by task id) never turn into thousands of columns."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import insert

import apflow_nb
from apflow_nb import create_session
from apflow_nb.analysis.flatten import MAX_KEYS, decode, decode_all, flatten
from apflow_nb.core.storage.session import get_engine
from apflow_nb.core.storage.sqlalchemy.models import TaskModel

KEYS = st.text(alphabet="abcxyz_", min_size=1, max_size=3)  # no dots: the column names can be split back
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=4),
                   st.lists(st.integers(), max_size=2), st.just({}))
VALUES = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, min_size=1, max_size=4), max_leaves=12)
ROWS = st.lists(st.one_of(st.none(), st.integers(), st.dictionaries(KEYS, VALUES, max_size=5)), max_size=12)


def unflatten(columns: dict, prefix: str, i: int):
    """Row ``i`` rebuilt from the columns (a value not set in any column is absent)."""
    row: dict = {}
    scalar = columns.get(prefix, [None] * (i + 1))[i]
    for name, values in columns.items():
        if name == prefix or values[i] is None:
            continue
        node = row
        *parents, last = name[len(prefix) + 1:].split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = values[i]
    return scalar if scalar is not None else row


def drop_nones(value):
    """What a flattened row can show: None leaves, and dicts holding only those, are indistinguishable
    from missing keys (an empty dict stored as such is kept)."""
    if isinstance(value, dict) and value:
        kept = {k: drop_nones(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None} or None
    return value


@settings(max_examples=200, deadline=None)
@given(ROWS)
def test_flatten_round_trips(rows):
    columns = flatten(rows, "inputs")
    assert all(len(values) == len(rows) for values in columns.values())
    assert all(name == "inputs" or name.startswith("inputs.") for name in columns)
    for i, row in enumerate(rows):
        expected = row if not isinstance(row, dict) else drop_nones(row)
        if expected == {} or expected is None:
            assert all(values[i] is None for values in columns.values())
        else:
            assert unflatten(columns, "inputs", i) == expected


def test_decode_accepts_what_drivers_return():
    assert decode('{"a": 1}') == {"a": 1} and decode(b"[1]") == [1] and decode({"a": 1}) == {"a": 1}
    assert decode(None) is None and decode("null") is None and decode("not json") == "not json"
    assert decode_all(['{"a": 1}', None, "2"]) == [{"a": 1}, None, 2]
    assert decode_all([{"a": 1}, "oops{", None]) == [{"a": 1}, "oops{", None]


def test_keys_that_vary_per_run_stay_together():
    rows = []
    for run in range(500):  # what aggregate_results_executor returns, and normal tasks beside it
        rows.append({"summary": "ok", "result_count": 20, "results": {f"r{run}-{i}": {"y": i} for i in range(20)}})
        rows.append({"y": run, "meta": {"unit": "m"}})
    columns = flatten(rows, "result")
    assert sorted(columns) == ["result.meta.unit", "result.result_count", "result.results", "result.summary",
                               "result.y"]
    assert columns["result.results"][0] == rows[0]["results"] and columns["result.results"][1] is None
    # one run alone is spread out as usual
    one = flatten(rows[:2], "result")
    assert "result.results.r0-3.y" in one and one["result.results.r0-3.y"][0] == 3
    # a wide dict with the same keys in every row is spread out, however many keys it has
    wide = flatten([{f"m{k}": k for k in range(3 * MAX_KEYS)} for _ in range(20)], "result")
    assert len(wide) == 3 * MAX_KEYS
    # common keys stay columns beside the rare ones at the same level (dependency results in inputs)
    mixed = flatten([{"x": r, f"dep-{r}": {"y": r}} for r in range(300)], "inputs")
    assert sorted(mixed) == ["inputs", "inputs.x"] and mixed["inputs"][7] == {"dep-7": {"y": 7}}


def test_history_of_many_aggregator_runs_has_few_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'many.db'}"
    create_session(url).close()
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for run in range(2000):
        children = [f"run{run}-{i}" for i in range(10)]
        rows.append({"id": f"run{run}", "root_id": f"run{run}", "name": "aggregate_results_executor",
                     "inputs": {c: {"v": i} for i, c in enumerate(children)},
                     "result": {"summary": "s", "results": {c: {"v": i} for i, c in enumerate(children)},
                                "result_count": 10}})
        rows += [{"id": c, "parent_id": f"run{run}", "root_id": f"run{run}", "name": "leaf", "inputs": {"i": i},
                  "result": {"v": i}} for i, c in enumerate(children)]
    for r in rows:
        r.update(status="completed", priority=2, progress=1.0, has_children=False, has_copy=False,
                 created_at=now, updated_at=now, dependencies=[], params=None, schemas=None)
    with get_engine(url).begin() as conn:
        conn.execute(insert(TaskModel.__table__), rows)
    frame = apflow_nb.history(url)
    assert len(frame) == 22000 and frame.shape[1] < 30, frame.columns.tolist()
    root = frame.set_index("task_id").loc["run7"]
    assert root["result.results"] == {f"run7-{i}": {"v": i} for i in range(10)}
    assert root["inputs"] == {f"run7-{i}": {"v": i} for i in range(10)} and root["result.result_count"] == 10
    one_run = apflow_nb.history(url, root_id="run7")  # a single run is spread out
    assert one_run.set_index("task_id").loc["run7", "result.results.run7-3.v"] == 3


@pytest.mark.parametrize("raw", ['{"a": {"b": [1, {"c": 2}]}}', json.dumps({"ü": "ß"})])
def test_decode_matches_json(raw):
    assert decode(raw) == json.loads(raw)
