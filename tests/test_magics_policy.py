"""Caching and retries from the notebook: %%executor --cache / --retries / --timeout, %%tree --cache,
%apflow cache, apflow_nb.run(cache=True), and the view's distinct "cached" state (a real IPython shell)."""
from __future__ import annotations

import pytest

import apflow_nb
from apflow_nb import get_registry
from tests.test_magics import Captured, cell, ip, store  # noqa: F401 - the shell and store fixtures

PIPELINE = """%%tree --name {name}
- {{id: report, name: report, dependencies: [score]}}
- {{id: score, name: score, parent_id: report, dependencies: [load]}}
- {{id: load, name: load, parent_id: report, inputs: {{n: 2}}}}
"""


def executor_cells(offset: int) -> list[str]:
    return [
        "%%executor --cache --quiet\ndef load(n: int) -> dict:\n    CALLS.append('load')\n    return {'rows': n * 10}\n",
        f"%%executor --cache --quiet\ndef score(rows: int) -> dict:\n    CALLS.append('score')\n"
        f"    return {{'score': rows + {offset}}}\n",
        "%%executor --cache --quiet\ndef report(score: int) -> dict:\n    CALLS.append('report')\n"
        "    return {'line': f'score {score}'}\n",
    ]


def run_pipeline(ip, name):
    res, out = cell(ip, PIPELINE.format(name=name))
    assert res.success, res.error_in_exec
    return ip.user_ns[name], out


def test_editing_an_executor_cell_recomputes_its_tasks_and_what_their_results_change(ip):
    ip.user_ns["CALLS"] = calls = []
    for source in executor_cells(offset=0):
        assert cell(ip, source)[0].success
    first, _ = run_pipeline(ip, "first")
    assert calls == ["load", "score", "report"]
    calls.clear()
    for source in executor_cells(offset=0):  # the cells run again, unchanged
        cell(ip, source)
    again, out = run_pipeline(ip, "again")
    assert calls == [] and again.status == "completed"
    assert again.state.counts["cached"] == 3 and "3 cached" in out.text  # the view says so
    cell(ip, executor_cells(offset=1)[1])  # score's cell edited
    edited, _ = run_pipeline(ip, "edited")
    assert calls == ["score", "report"]
    frame = edited.frame()
    by_key = dict(zip(frame["key"], frame["cached_from"]))
    assert by_key["load"] == first.tree.find("load").task.id and frame.set_index("key")["cached_from"].isna()["score"]


def test_retries_and_timeouts_from_the_cell(ip):
    source = ("%%executor --retries 2 --retry-delay 0.01 --timeout 5 --quiet\n"
              "def flaky(k: int) -> dict:\n    TRIES.append(k)\n"
              "    if len(TRIES) < 3:\n        raise ConnectionError('not yet')\n    return {'tries': len(TRIES)}\n")
    ip.user_ns["TRIES"] = []
    assert cell(ip, source)[0].success
    assert get_registry().get("executor", "flaky").meta["policy"] == {"retries": 2, "retry_delay": 0.01,
                                                                      "timeout": 5.0}
    res, _ = cell(ip, "%%tree --name r\n- {id: f, name: flaky, inputs: {k: 1}}\n")
    assert res.success and ip.user_ns["r"].tree.task.result == {"tries": 3} and ip.user_ns["r"].tree.task.attempts == 3
    res, _ = cell(ip, "%%executor --retry-delay soon\ndef x() -> dict:\n    return {}\n")
    assert not res.success and "--retry-delay: give seconds" in str(res.error_in_exec)
    res, _ = cell(ip, "%%executor --retries -1\ndef x() -> dict:\n    return {}\n")
    assert not res.success and "retries must be an integer from 0" in str(res.error_in_exec)


def test_tree_cache_and_the_cache_subcommand(ip, store):
    ip.user_ns["CALLS"] = calls = []
    assert cell(ip, "%%executor --quiet\ndef plain(x: int) -> dict:\n    CALLS.append(x)\n    return {'x': x}\n")[0].success
    tree = "%%tree --cache --name t\n- {id: p, name: plain, inputs: {x: 1}}\n"
    cell(ip, tree)
    cell(ip, tree)
    assert calls == [1]  # the run cached it, the second run hit
    res, out = cell(ip, "%apflow cache")
    assert res.success and "plain 1" in out.text
    res, out = cell(ip, "%apflow cache clear --executor plain")
    assert "removed 1 cached result(s)" in out.text
    res, out = cell(ip, "%apflow cache")
    assert "the cache is empty" in out.text
    run = apflow_nb.run([{"id": "p", "name": "plain", "inputs": {"x": 2}}], cache=True, display=False)
    run.result()
    again = apflow_nb.run([{"id": "p", "name": "plain", "inputs": {"x": 2}}], cache=True, display=False)
    again.result()
    assert calls == [1, 2] and again.tree.task.cached_from == run.tree.task.id


@pytest.mark.parametrize("line", ["%apflow cache purge", "%apflow cache --older-than soon"])
def test_cache_subcommand_mistakes_are_usage_errors(ip, line):
    res, _ = cell(ip, line)
    assert not res.success and "%apflow cache" in str(res.error_in_exec)
