"""Stable columns: a frame's inputs.* / result.* columns depend on the executors it covers, not on the rows a
filter matched (the key catalog the engine writes, and registered executors' declared inputs); errors appear
once (error, error_type, traceback); reading never writes."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import pytest
from pydantic import BaseModel
from sqlalchemy import event, insert, inspect, text

import apflow_nb
from apflow_nb import BaseTask, ExecutableTask, create_session, executor_register
from apflow_nb.analysis.catalog import rebuild_key_catalog
from apflow_nb.core.storage.session import dispose_engines
from apflow_nb.core.storage.key_catalog import MAX_KEYS, WIDE_AT, KeyCatalog
from apflow_nb.core.storage.session import get_engine
from apflow_nb.core.storage.sqlalchemy.models import TaskModel


class Fit(ExecutableTask):
    """Fails for odd seeds; its result has a nested metric and, for big seeds only, a warning."""

    id = "fit"

    async def execute(self, inputs):
        if inputs["seed"] % 2:
            raise ValueError(f"seed {inputs['seed']} diverged")
        result = {"loss": 1 / (1 + inputs["seed"]), "metrics": {"f1": 0.5}}
        if inputs["seed"] >= 4:
            result["warning"] = "slow"
        return result


async def run_fits(url, seeds, aggregate=True):
    """A sweep: fit tasks under an aggregate_results_executor root (or under a fit root, seed -2)."""
    executor_register(Fit)
    if aggregate:
        tasks = [{"id": "sweep", "name": "aggregate_results_executor",
                  "dependencies": [{"id": f"s{s}", "required": False} for s in seeds]}]
    else:
        tasks = [{"id": "sweep", "name": "fit", "inputs": {"seed": -2}}]
    tasks += [{"id": f"s{s}", "name": "fit", "parent_id": "sweep", "inputs": {"seed": s}} for s in seeds]
    run = apflow_nb.run(tasks, store=url, display=False)
    await run
    return run


def json_columns(frame):
    return [c for c in frame.columns if c.startswith(("inputs", "result"))]


@pytest.mark.asyncio
async def test_the_same_executor_gives_the_same_columns_whatever_matched(store_url):
    await run_fits(store_url, [0, 1, 2, 3, 4])
    full = apflow_nb.history(store_url, executor="fit")
    expected = ["inputs.seed", "result.loss", "result.metrics.f1", "result.warning"]
    assert json_columns(full) == expected
    failed = apflow_nb.history(store_url, executor="fit", status="failed")
    assert len(failed) == 2 and json_columns(failed) == expected  # no row has a result, the columns stay
    assert failed["result.loss"].isna().all()
    small = apflow_nb.history(store_url, executor="fit", where="inputs.seed < 4")
    assert json_columns(small) == expected and small["result.warning"].isna().all()
    none = apflow_nb.history(store_url, executor="fit", where="inputs.seed > 100")
    assert none.empty and json_columns(none) == expected
    assert "result.warning" not in apflow_nb.history(store_url, executor="aggregate_results_executor").columns


@pytest.mark.asyncio
async def test_errors_appear_once(store_url):
    await run_fits(store_url, [0, 1])
    frame = apflow_nb.history(store_url).set_index("task_id")
    assert not [c for c in frame.columns if c in ("result.error", "result.error_type", "result.status",
                                                   "result.traceback", "result.message")]
    failed = frame.loc["s1"]
    assert failed["error"] == "ValueError: seed 1 diverged" and failed["error_type"] == "ValueError"
    assert failed["traceback"].startswith("Traceback (most recent call last):")
    assert "seed 1 diverged" in failed["traceback"].splitlines()[-1]
    assf = frame.loc["s0"]
    assert assf["error"] is None or assf["error"] != assf["error"]  # NaN: no error
    assert frame.loc["s0", "result.loss"] == 1.0


@pytest.mark.asyncio
async def test_declared_inputs_are_columns_before_any_task_had_them(store_url):
    class Options(BaseModel):
        size: int
        verbose: bool = False

    class Resize(BaseTask):
        id = "resize"
        inputs_schema = Options

        async def execute(self, inputs):
            return {"area": inputs["size"] ** 2}

    executor_register(Resize)
    await apflow_nb.run([{"id": "r", "name": "resize", "inputs": {"size": 3}}], store=store_url, display=False)
    frame = apflow_nb.history(store_url, executor="resize")
    assert json_columns(frame) == ["inputs.size", "inputs.verbose", "result.area"]
    assert frame["inputs.verbose"].isna().all()  # declared, never stored (pydantic's default is not stored)


@pytest.mark.asyncio
async def test_catalog_rows_are_written_once_and_stay_few(store_url):
    engine = get_engine(store_url)
    inserts = []
    listener = lambda conn, cur, statement, *args: inserts.append(statement) \
        if "apflow_result_keys" in statement and "INSERT" in statement.upper() else None  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        await run_fits(store_url, [0, 2, 4], aggregate=False)
        first = len(inserts)
        await run_fits(store_url, [6, 8], aggregate=False)  # the same keys: nothing new to write
        assert first >= 1 and len(inserts) == first
        counts = []
        for _ in range(6):  # the aggregate's inputs and results are keyed by each run's task ids
            await run_fits(store_url, list(range(0, 60, 2)))
            with engine.connect() as conn:
                counts.append(conn.execute(text("SELECT count(*) FROM apflow_result_keys")).scalar())
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert counts[-3:] == [counts[-1]] * 3, counts  # once its keys are known to vary, no more rows
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT executor, kind, path, shape FROM apflow_result_keys")).all()
    fit = sorted((kind, path, shape) for executor, kind, path, shape in rows if executor == "fit")
    assert fit == [("inputs", '["seed"]', "leaf"), ("result", '["loss"]', "leaf"),
                   ("result", '["metrics","f1"]', "leaf"), ("result", '["warning"]', "leaf")]
    aggregate = [r for r in rows if r[0] == "aggregate_results_executor"]
    assert ("aggregate_results_executor", "inputs", "[]", "wide") in aggregate
    assert ("aggregate_results_executor", "result", '["results"]', "wide") in aggregate
    assert len(aggregate) < 2 * 3 * 2 * MAX_KEYS  # 2 kinds x 3 leaves per task x (2 x MAX_KEYS) keys at most
    one_run = apflow_nb.history(store_url, executor="aggregate_results_executor", limit=1)
    assert "result.results" in one_run.columns and type(one_run["result.results"].iloc[0]) is dict  # not a Whole
    assert type(one_run["inputs"].iloc[0]) is dict and "result.result_count" in one_run.columns


def test_wide_levels_are_decided_over_all_keys_seen():
    catalog = KeyCatalog()
    per_run = [{f"t{run}-{i}": {"y": i} for i in range(20)} for run in range(10)]
    rows = [r for value in per_run for r in catalog.observe("agg", value, None)]
    assert sum(1 for r in rows if r["shape"] == "wide") == 1 and len(rows) <= 2 * MAX_KEYS + 1
    assert catalog.observe("agg", {"new-key": 1}, None) == []  # nothing below a wide level is recorded
    metrics = {f"m{i}": i for i in range(100)}  # more than MAX_KEYS keys, the same in every task: not wide
    assert len(catalog.observe("eval", None, metrics)) == 100
    assert catalog.observe("eval", None, dict(metrics)) == []
    fan_in = {f"t{i}": {"y": i} for i in range(10_000)}  # one huge dict: wide after WIDE_AT keys
    rows = catalog.observe("fan_in", fan_in, None)
    assert len(rows) == WIDE_AT + 1 and rows[-1]["shape"] == "wide"
    assert catalog.observe("fan_in", fan_in, None) == []
    assert catalog.observe("eval", None, [1, 2]) == [{"executor": "eval", "kind": "result", "path": "[]",
                                                       "shape": "leaf"}]


def test_known_flat_keys_are_skipped_but_every_new_path_is_still_recorded(tmp_path):
    """A dict whose keys are all known leaves is checked at once; anything else is walked: a key that now holds a
    dict, an empty dict, a new key, a wider dict (the same after the catalog is loaded from the store)."""
    def paths(rows):
        return sorted((r["kind"], r["path"], r["shape"]) for r in rows)

    url = f"sqlite:///{tmp_path / 'keys.db'}"
    create_session(url).close()
    first = KeyCatalog()
    assert paths(first.observe("ex", {"a": 1, "b": 2}, {"r": 1})) == [
        ("inputs", '["a"]', "leaf"), ("inputs", '["b"]', "leaf"), ("result", '["r"]', "leaf")]
    with get_engine(url).begin() as conn:
        first.write(conn, first.observe("other", {"z": 1}, None))  # loads the (empty) store, then writes
        first.write(conn, [{"executor": "ex", "kind": k, "path": p, "shape": sh}
                           for k, p, sh in [("inputs", '["a"]', "leaf"), ("inputs", '["b"]', "leaf"),
                                            ("result", '["r"]', "leaf")]])
    loaded = KeyCatalog()
    with get_engine(url).connect() as conn:
        loaded.load(conn)
    for catalog in (first, loaded):
        assert catalog.observe("ex", {"b": 3, "a": "x"}, {"r": [1]}) == []  # known leaves, any scalar or list
        assert catalog.observe("ex", {"a": 1}, None) == []
        assert paths(catalog.observe("ex", {"a": {"deep": 1}, "b": 2}, None)) == [("inputs", '["a","deep"]', "leaf")]
        assert catalog.observe("ex", {"a": {"deep": 2}}, None) == []
        assert paths(catalog.observe("ex", None, {"r": {}})) == []  # an empty dict is a leaf: "r" is one already
        assert paths(catalog.observe("ex", {"a": 1, "b": 2, "c": 3}, None)) == [("inputs", '["c"]', "leaf")]
        assert paths(catalog.observe("ex", None, {"r": 1, "s": {}})) == [("result", '["s"]', "leaf")]


def test_two_processes_recording_the_same_keys_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    create_session(url).close()
    script = textwrap.dedent(f"""
        import asyncio, apflow_nb
        from apflow_nb import executor_register

        @executor_register
        async def same(x: int) -> dict:
            return {{"a": x, "b": {{"c": x}}}}

        async def main():
            for r in range(5):
                tasks = [{{"id": "root", "name": "same", "inputs": {{"x": -1}}}}]
                tasks += [{{"id": f"t{{i}}", "name": "same", "parent_id": "root", "inputs": {{"x": i}}}}
                          for i in range(19)]
                await apflow_nb.run(tasks, store={url!r}, display=False)
        asyncio.run(main())
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert not any("Error" in e for e in errors), errors
    with get_engine(url).connect() as conn:
        rows = conn.execute(text("SELECT kind, path FROM apflow_result_keys WHERE executor = 'same'")).all()
    assert sorted(rows) == [("inputs", '["x"]'), ("result", '["a"]'), ("result", '["b","c"]')]
    assert len(apflow_nb.history(url)) == 300


def insert_rows(url, rows):
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with get_engine(url).begin() as conn:
        conn.execute(insert(TaskModel.__table__), [
            dict(id=i, name="legacy", status=status, inputs=inputs, result=result, priority=2, progress=1.0,
                 has_children=False, has_copy=False, created_at=now, updated_at=now) for i, status, inputs, result in rows])


def test_a_store_written_before_the_catalog_reads_the_same_and_is_never_written(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    create_session(url).close()
    insert_rows(url, [("a", "completed", {"n": 1}, {"out": 2}), ("b", "failed", {"n": 2}, None)])
    with get_engine(url).begin() as conn:
        conn.execute(text("DROP TABLE apflow_result_keys"))  # as a store written by an older version
    get_engine(url).dispose()
    path = tmp_path / "old.db"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    frame = apflow_nb.history(url)
    assert json_columns(frame) == ["inputs.n", "result.out"]  # the rows' keys, as before the catalog
    assert json_columns(apflow_nb.history(url, status="failed")) == ["inputs.n"]
    get_engine(url).dispose()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no table, no WAL switch, nothing
    assert not inspect(get_engine(url)).has_table("apflow_result_keys")
    assert path.exists()


def test_rebuild_key_catalog_fills_it_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    create_session(url).close()
    insert_rows(url, [("a", "completed", {"n": 1}, {"out": 2, "deep": {"x": 1}}), ("b", "failed", {"n": 2}, None),
                      ("c", "failed", {"n": 3}, {"status": "failed", "error": "boom"})])
    assert json_columns(apflow_nb.history(url, status="failed")) == ["inputs.n"]
    assert rebuild_key_catalog(url) == 3
    assert rebuild_key_catalog(url) == 0  # idempotent
    assert json_columns(apflow_nb.history(url, status="failed")) == ["inputs.n", "result.deep.x", "result.out"]


def test_rebuild_key_catalog_writes_a_store_this_process_never_opened(tmp_path):
    """history() reads such a file read-only; rebuilding the catalog is a write of its own and must open the
    store for writing (bench/history.py calls it right after another process built the store)."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    create_session(url).close()
    insert_rows(url, [("a", "completed", {"n": 1}, {"out": 2}), ("b", "failed", {"n": 2}, None)])
    dispose_engines()  # as if another process had written it
    assert rebuild_key_catalog(url) >= 1
    assert json_columns(apflow_nb.history(url, status="failed")) == ["inputs.n", "result.out"]


def test_levels_with_many_keys_add_no_empty_columns(tmp_path):
    """Two runs of an aggregating task (50 keys each, different per run) are not yet a wide level for the
    writer, but a filtered frame must not get 100 empty columns for them."""
    url = f"sqlite:///{tmp_path / 'agg.db'}"
    create_session(url).close()
    insert_rows(url, [(f"agg{r}", "completed", {f"r{r}-{i}": {"y": i} for i in range(50)}, {"n": 50})
                      for r in range(2)] + [("bad", "failed", {"r0-0": {"y": 0}}, None)])
    rebuild_key_catalog(url)
    failed = apflow_nb.history(url, status="failed")
    assert json_columns(failed) == ["inputs.r0-0.y", "result.n"]
    assert len(json_columns(apflow_nb.history(url))) < 10  # the rows' own keys: rare ones kept together
