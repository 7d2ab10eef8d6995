"""The live graph face in real kernels (nbclient): ``apflow_nb.run(..., view="graph")`` and
``%%tree --view graph`` show a table/graph toggle and a graph whose colours follow the run's event
stream; the saved notebook keeps the widget state and a static final frame with the inline SVG;
without widgets the HTML display carries the graph itself."""
from __future__ import annotations

import json
import re
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.notebooks

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

SETUP = '''
import asyncio, json, re, apflow_nb
from apflow_nb import executor_register

@executor_register
async def step(x: int = 0, pause: float = 0.3, **deps) -> dict:
    await asyncio.sleep(pause)
    if x == 2:
        raise RuntimeError("right half exploded")
    return {"value": x}

def diamond(pause=0.3):
    return [
        {"id": "report", "name": "step", "dependencies": ["left", {"id": "right", "required": False}],
         "inputs": {"pause": 0.05}},
        {"id": "left", "name": "step", "parent_id": "report", "dependencies": ["leaf"], "inputs": {"x": 1, "pause": pause}},
        {"id": "right", "name": "step", "parent_id": "report", "dependencies": ["leaf"], "inputs": {"x": 2, "pause": pause}},
        {"id": "leaf", "name": "step", "parent_id": "report", "inputs": {"pause": pause}},
    ]

def statuses(svg):
    return dict((k, s) for s, k in re.findall(r'data-status="(\\w+)" data-task-id="([^"]+)"', svg))
'''


def execute(cells: list[str], tmp_path, env: dict | None = None) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_code_cell(textwrap.dedent(c)) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def stream(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def widget_models(nb, name: str) -> list[dict]:
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return [m["state"] for m in state.values() if m["model_name"] == name]


def test_run_view_graph_follows_the_event_stream_and_saves_a_static_frame(tmp_path):
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    nb = execute([SETUP, f'''
run = apflow_nb.run(diamond(), store={store!r}, view="graph")
graph = run.view.widget.graph  # the live graph face (shown from the start)
seen = []
while not run.done():
    seen.append(statuses(graph.graph.value))
    await asyncio.sleep(0.03)
tree = await run
print("LEAF", json.dumps([s["leaf"] for s in seen]))
print("FINAL", json.dumps(statuses(graph.graph.value)))
print("REDRAWS", graph.redraws, "LAYOUTS", id(graph.face))
''', "run.view.widget.toggle.value"], tmp_path)
    out = stream(nb.cells[1])
    leaf = json.loads(re.search(r"LEAF (\[.*\])", out).group(1))
    history = [s for k, s in enumerate(leaf) if k == 0 or s != leaf[k - 1]]
    assert history[-2:] == ["in_progress", "completed"], history  # drawn live, from the events
    final = json.loads(re.search(r"FINAL (\{.*\})", out).group(1))
    assert final == {"report": "completed", "left": "completed", "right": "failed", "leaf": "completed"}
    assert nb.cells[2].outputs[0]["data"]["text/plain"] == "'graph'"
    # the saved notebook: the toggle on "graph", the graph's widgets with the final colours ...
    toggles = widget_models(nb, "ToggleButtonsModel")
    assert [t["index"] for t in toggles] == [1]  # "graph"
    svgs = [m["value"] for m in widget_models(nb, "HTMLModel") if "<svg" in m["value"]]
    assert len(svgs) == 1 and 'data-status="failed" data-task-id="right"' in svgs[0]
    # ... and the output's static frame (no kernel needed): the graph as inline SVG, and as an image
    view = next(o for o in nb.cells[1].outputs if o.get("output_type") == "display_data")
    data = view["data"]
    assert "apflow-run-graph" in data["text/html"] and "<svg" in data["text/html"]
    assert 'data-status="failed" data-task-id="right"' in data["image/svg+xml"]
    assert "<summary>table</summary>" in data["text/html"]  # the table, folded below the graph
    assert "graph of 4 tasks" in data["text/plain"]


def test_tree_magic_view_graph_and_the_toggle(tmp_path):
    nb = execute([SETUP, "%load_ext apflow_nb", f'''%%tree --view graph --store sqlite:///{tmp_path / "t.db"}
- {{id: root, name: step, dependencies: [a, b], inputs: {{pause: 0.01}}}}
- {{id: a, name: step, parent_id: root, inputs: {{pause: 0.01}}}}
- {{id: b, name: step, parent_id: root, inputs: {{pause: 0.01}}}}''', '''
tree = await _run
faced = _run.view.widget
print("GRAPH", faced.toggle.value, faced.graph.root.layout.display, [w.layout.display for w in faced.table_body])
faced.toggle.value = "table"  # the table again: the graph hides, the table's body shows
print("TABLE", faced.graph.root.layout.display, [w.layout.display for w in faced.table_body])
bundle = _run.view._repr_mimebundle_()
print("BUNDLE", sorted(bundle), "<svg" in bundle["text/html"])
faced.toggle.value = "graph"
print("AGAIN", sorted(_run.view._repr_mimebundle_()), statuses(faced.graph.graph.value))
'''], tmp_path)
    out = stream(nb.cells[3])
    assert re.search(r"GRAPH graph None \['none'(, 'none')*\]", out), out  # the table's body hidden
    assert re.search(r"TABLE none \[None(, None)*\]", out), out  # and shown again, the graph hidden
    bundle = re.search(r"BUNDLE (\[.*?\]) (\w+)", out)
    assert "image/svg+xml" not in bundle.group(1) and bundle.group(2) == "False"  # the table's frame
    again = re.search(r"AGAIN (\[.*?\]) (\{.*\})", out)
    assert "image/svg+xml" in again.group(1)
    assert again.group(2) == "{'root': 'completed', 'a': 'completed', 'b': 'completed'}"


def test_graph_view_without_widgets_is_an_updatable_html_display(tmp_path):
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    nb = execute([SETUP, f'''
run = apflow_nb.run(diamond(0.05), store={store!r}, display="html", view="graph")
tree = await run
'''], tmp_path)
    outputs = [o for o in nb.cells[1].outputs if o.get("output_type") in ("display_data", "update_display_data")]
    assert outputs and all(WIDGET_VIEW not in o["data"] for o in outputs)
    final = outputs[0]["data"]  # nbclient applies updates to the display in place
    assert 'data-status="failed" data-task-id="right"' in final["text/html"]
    assert "image/svg+xml" in final
