"""In real kernels (nbclient): cells are named right in tracebacks, every run of a cell is its own run
that keeps the keys the user wrote, and the timeline labels tasks by key.

The kernel is this venv's Python (see test_notebook_kernel's kernelspec fixture)."""
from __future__ import annotations

import json
import re
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from tests.test_notebook_kernel import kernel_env  # noqa: F401 - the fixture

pytestmark = pytest.mark.notebooks


def execute(cells: list[str], tmp_path, allow_errors: bool = False) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_code_cell(textwrap.dedent(c)) for c in cells])
    NotebookClient(nb, timeout=90, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def text_of(cell) -> str:
    out = []
    for o in cell.outputs:
        out.append(o.get("text", ""))
        out.append("\n".join(o.get("traceback", [])))
        out.append(o.get("data", {}).get("text/plain", ""))
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(out))  # tracebacks come coloured


def test_tracebacks_name_the_cells_they_come_from(kernel_env, tmp_path):  # noqa: F811
    nb = execute([
        "%load_ext apflow_nb\nimport apflow_nb",
        "%%executor\ndef broken(x: int):\n    return x +\n",              # In[2]: a syntax error
        "%%executor\ndef fragile(x: int = 0) -> dict:\n    y = x * 2\n    raise ValueError(f'no {y}')\n",
        "run = apflow_nb.run([{'id': 'f', 'name': 'fragile'}], display=False)\nawait run\n"
        "print(run.state.rows['f'].error)",
    ], tmp_path, allow_errors=True)
    syntax = text_of(nb.cells[1])
    assert "SyntaxError" in syntax and "Cell In[2], line 2" in syntax and "In[3]" not in syntax, syntax
    stored = text_of(nb.cells[3])
    assert stored.startswith("ValueError: no 0") and "Cell In[3], line 3, in fragile" in stored, stored
    assert "raise ValueError(f'no {y}')" in stored
    for ours in ("apflow_nb", "ipykernel_", "asyncio"):
        assert ours not in stored.split("Traceback", 1)[1], ours


def test_running_a_cell_twice_makes_two_runs_that_keep_their_keys(kernel_env, tmp_path):  # noqa: F811
    tree = """%%tree --name {name}
- {{id: root, name: aggregate_results_executor, dependencies: [bad, good]}}
- {{id: bad, name: flaky, parent_id: root, inputs: {{fail: true}}}}
- {{id: good, name: flaky, parent_id: root}}
"""
    array = ("[{'id': 'top', 'name': 'aggregate_results_executor', 'dependencies': ['leaf']},"
             " {'id': 'leaf', 'name': 'flaky', 'parent_id': 'top'}]")
    nb = execute([
        "%load_ext apflow_nb\nimport apflow_nb, json",
        "%%executor\ndef flaky(fail: bool = False) -> dict:\n    if fail:\n        raise RuntimeError('flaky')\n"
        "    return {'ok': True}\n",
        tree.format(name="first"), "await first",
        tree.format(name="second"), "await second",
        f"one = apflow_nb.run({array})\nawait one", f"two = apflow_nb.run({array})\nawait two",
        """\
        out = {}
        for name in ("first", "second", "one", "two"):
            run = globals()[name]
            frame = run.frame()
            out[name] = {"run_id": run.run_id, "keys": list(frame["key"]), "ids": list(frame["task_id"]),
                         "status": run.status}
        out["bad"] = sorted(apflow_nb.history(key="bad")["root_id"])
        out["leaf"] = sorted(apflow_nb.history(key="leaf")["root_id"])
        print(json.dumps(out))
        """,
    ], tmp_path)
    out = json.loads(nb.cells[-1].outputs[0]["text"])
    first, second, one, two = out["first"], out["second"], out["one"], out["two"]
    assert first["keys"] == second["keys"] == ["root", "bad", "good"]  # the ids the user wrote, in both runs
    assert first["run_id"] != second["run_id"] and first["ids"] != second["ids"]  # two runs, each its own ids
    assert first["status"] == second["status"] == "failed"
    assert out["bad"] == sorted([first["run_id"], second["run_id"]])  # history(key=...) finds every run's "bad"
    assert one["keys"] == two["keys"] == ["top", "leaf"] and one["run_id"] != two["run_id"]
    assert out["leaf"] == sorted([one["run_id"], two["run_id"]])
    second_view = next(o for o in nb.cells[4].outputs if o.get("output_type") == "display_data")["data"]
    assert 'data-key="bad"' in second_view["text/html"] and second["ids"][1] in second_view["text/html"]  # id in the tooltip
    assert "✘ bad [flaky] failed" in second_view["text/plain"]


def test_timeline_labels_tasks_by_key_and_marks_instant_ones(kernel_env, tmp_path):  # noqa: F811
    nb = execute([
        "%load_ext apflow_nb\nimport apflow_nb",
        "%%executor\nimport asyncio\nasync def wait(s: float = 0.0) -> dict:\n    await asyncio.sleep(s)\n    return {}\n",
        """\
        run = apflow_nb.run([{"id": "all", "name": "aggregate_results_executor", "dependencies": ["slow", "now"]},
                             {"id": "slow", "name": "wait", "parent_id": "all", "inputs": {"s": 0.3}},
                             {"id": "now", "name": "wait", "parent_id": "all"}], display=False)
        await run
        """,
        "fig = apflow_nb.timeline(run.run_id)\nfig",
        """\
        ax = fig.axes[0]
        print([t.get_text() for t in ax.get_yticklabels()], len(ax.collections), len(ax.patches))
        """,
    ], tmp_path)
    images = [o for o in nb.cells[3].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1 and len(nb.cells[3].outputs) == 1  # shown inline once
    labels = nb.cells[4].outputs[0]["text"]
    assert labels.startswith("['all', '  slow', '  now']"), labels
    collections, bars = (int(x) for x in labels.split("]")[1].split())
    assert collections >= 1 and bars >= 1  # "now" took no time: a mark; "slow" a bar
