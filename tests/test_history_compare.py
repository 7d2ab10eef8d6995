"""compare(): runs side by side by task key, with the differences highlighted (and escaped) in HTML."""
from __future__ import annotations

import pandas as pd
import pytest

import apflow_nb
from apflow_nb import executor_register
from apflow_nb.analysis.errors import HistoryQueryError


@executor_register
async def fit(lr: float, model: str = "cnn", note: str = "") -> dict:
    if lr > 1:
        raise ValueError(f"lr {lr} diverged")
    return {"acc": round(1 - lr / 2, 3), "model": model}


def sweep(lrs, model="cnn", note=""):
    tasks = [{"id": "all", "name": "aggregate_results_executor",
              "dependencies": [{"id": f"lr{i}", "required": False} for i in range(len(lrs))]}]
    tasks += [{"id": f"lr{i}", "name": "fit", "parent_id": "all", "inputs": {"lr": lr, "model": model, "note": note}}
              for i, lr in enumerate(lrs)]
    return tasks


async def run(url, tasks):
    executor_register(fit)
    handle = apflow_nb.run(tasks, store=url, display=False)
    await handle
    return handle


@pytest.mark.asyncio
async def test_two_runs_by_key(store_url):
    a = await run(store_url, sweep([0.1, 0.2, 0.3]))
    b = await run(store_url, sweep([0.1, 0.4, 3.0]))
    table = apflow_nb.compare(a, b)
    assert isinstance(table, pd.DataFrame) and list(table.index) == ["all", "lr0", "lr1", "lr2"]
    assert table.runs == [a.run_id, b.run_id] and a.run_id != b.run_id
    fields = list(dict.fromkeys(f for _, f in table.columns))
    assert fields[:2] == ["status", "duration_s"]
    assert "inputs.lr" in fields and "result.acc" in fields and "error" in fields
    assert "inputs.model" not in fields and "inputs.note" not in fields  # the same in both runs
    assert table.loc["lr1", (a.run_id, "inputs.lr")] == 0.2 and table.loc["lr1", (b.run_id, "inputs.lr")] == 0.4
    assert table.loc["lr2", (b.run_id, "status")] == "failed" and table.loc["lr2", (a.run_id, "status")] == "completed"
    assert table.loc["lr2", (b.run_id, "error")] == "ValueError: lr 3.0 diverged"
    assert table.diff["inputs.lr"] == [False, False, True, True]
    assert table.diff["status"] == [False, False, False, True]
    html = table._repr_html_()
    assert html.count('class="apflow-diff"') == sum(sum(v) for k, v in table.diff.items() if k != "duration_s") * 2
    by_id = apflow_nb.compare(a.run_id, b.run_id, store=store_url)  # root ids
    assert by_id.equals(table)
    assert "result.results.lr1.acc" in fields  # the aggregate's results keyed by key@run line up by key
    assert table.loc["all", (b.run_id, "result.results.lr1.acc")] == 0.8
    assert "result.results.lr0.acc" not in fields  # the same 0.95 in both runs
    assert not [f for f in fields if "@" in f]
    frame = apflow_nb.history(store_url, where=f"root_id in ['{a.run_id}', '{b.run_id}']")
    from_frame = apflow_nb.compare(frame)  # runs oldest first, tasks in creation order
    assert from_frame.runs == table.runs and set(from_frame.index) == set(table.index)
    aligned = from_frame.reindex(index=table.index, columns=table.columns)
    for column in table.columns:
        assert aligned[column].astype(object).equals(table[column].astype(object)), column


@pytest.mark.asyncio
async def test_keys_missing_from_a_run_and_three_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    a = await run(url, sweep([0.1, 0.2]))
    b = await run(url, sweep([0.1, 0.2, 0.3]))
    c = await run(url, sweep([0.1, 0.2], model="mlp"))
    table = apflow_nb.compare(a, b, c)
    assert list(table.index) == ["all", "lr0", "lr1", "lr2"]
    assert pd.isna(table.loc["lr2", (a.run_id, "status")]) and table.loc["lr2", (b.run_id, "status")] == "completed"
    assert table.diff["status"][3] and "inputs.model" in {f for _, f in table.columns}
    assert table.loc["lr0", (c.run_id, "inputs.model")] == "mlp"


@pytest.mark.asyncio
async def test_every_value_is_escaped(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    evil = "<img src=x onerror=alert(1)>"
    a = await run(url, sweep([0.1], note="plain"))
    b = await run(url, sweep([0.1], note=evil))
    html = apflow_nb.compare(a, b)._repr_html_()
    assert evil not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.asyncio
async def test_compare_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    a = await run(url, sweep([0.1]))
    with pytest.raises(HistoryQueryError, match="at least two runs"):
        apflow_nb.compare(a)
    with pytest.raises(HistoryQueryError, match="no run with root id 'nope'"):
        apflow_nb.compare(a, "nope", store=url)
    with pytest.raises(HistoryQueryError, match="Run handles, root ids"):
        apflow_nb.compare(a, 42)
