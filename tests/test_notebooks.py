"""The tutorials in notebooks/, executed in a real kernel (nbclient), with their outputs checked."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

pytestmark = pytest.mark.notebooks


def execute(name: str, tmp_path: Path) -> nbformat.NotebookNode:
    """Run a copy of the notebook in tmp_path (its store lands there), fail on any cell error."""
    shutil.copy(NOTEBOOKS / name, tmp_path / name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def outputs_of(nb, marker: str) -> list[dict]:
    cell = next(c for c in nb.cells if c.cell_type == "code" and marker in c.source)
    return cell.outputs


def test_notebooks_are_clean():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), path
        assert "widgets" not in nb.metadata, path
        assert "# checks" in nb.cells[-1].source, f"{path.name} must end with assertions"


def test_quickstart_runs_and_saves_the_final_view(tmp_path):
    nb = execute("01-quickstart.ipynb", tmp_path)
    assert (tmp_path / ".apflow" / "tasks.db").is_file()
    tree_out = outputs_of(nb, "%%tree")
    view = next(o for o in tree_out if "application/vnd.jupyter.widget-view+json" in o.get("data", {}))
    # the static fallback saved with the notebook is the final frame (updated in the awaiting cell)
    assert 'data-status="completed"' in view["data"]["text/html"]
    assert "completed · 5/5 done" in view["data"]["text/plain"]
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    model_id = view["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert model_id in state
    bars = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
    assert len(bars) == 1 and bars[0]["value"] == 1.0 and bars[0]["bar_style"] == "success"
    tables = [m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel" and "<table" in m["state"]["value"]]
    assert len(tables) == 1 and tables[0].count('data-status="completed"') == 5
    graph = outputs_of(nb, "apflow_nb.graph(_run)")[0]["data"]  # the dependency graph, static in the notebook
    assert set(graph) == {"text/plain", "text/html", "image/svg+xml"}
    assert graph["image/svg+xml"].count('data-status="completed"') == 5 and "<svg" in graph["text/html"]
    summary = outputs_of(nb, "%%executor fetch_size")
    assert "fetch_size" in json.dumps(summary) and "url: string*" in json.dumps(summary)
    frame_html = outputs_of(nb, "frame = _run.frame()")[0]["data"]["text/html"]
    assert "result.total" in frame_html and "9000" in frame_html


def test_custom_executors(tmp_path):
    nb = execute("02-custom-executors.ipynb", tmp_path)
    text = json.dumps([o for c in nb.cells if c.cell_type == "code" for o in c.outputs])
    assert "failed -> Invalid inputs for executor 'scale': inputs.values" in text
    assert "proj-7" in text


def test_streaming_and_cancellation(tmp_path):
    nb = execute("03-streaming-and-cancellation.ipynb", tmp_path)
    assert "'cancelled'" in json.dumps(outputs_of(nb, "doomed.cancel()"))
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    styles = {m["state"].get("bar_style") for m in state.values() if m["model_name"] == "FloatProgressModel"}
    assert {"success", "warning"} <= styles  # the completed run and the cancelled one


def test_analysing_history(tmp_path):
    nb = execute("04-analysing-history.ipynb", tmp_path)
    timeline = outputs_of(nb, "apflow_nb.timeline(")
    assert any("image/png" in o.get("data", {}) for o in timeline)
    assert "diverged" in json.dumps(outputs_of(nb, "failed = apflow_nb.history"))


def test_scale_out_with_dask(tmp_path):
    nb = execute("05-scale-out-with-dask.ipynb", tmp_path)
    assert "on 2 Dask workers" in json.dumps(outputs_of(nb, "on_dask = apflow_nb.run"))
