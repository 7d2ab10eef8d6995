"""``apflow_nb.graph(x)`` and the graph's drawing: a plan, a run, a past run in a real SQLite store;
SVG/HTML/text bundles; details panels (inputs, result, error with traceback, timings, attempts);
hostile strings escaped; live drawing from a RunState fed by real events."""
from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET

import pytest

import apflow_nb
from apflow_nb import TaskManager, executor_register
from apflow_nb.core.events import Event, EventType
from apflow_nb.notebook.graph import GraphFace, graph
from apflow_nb.notebook.graph._model import spec_from_array
from apflow_nb.notebook.progress import RunState

DIAMOND = [
    {"id": "report", "name": "combine", "dependencies": ["left", {"id": "right", "required": False}]},
    {"id": "left", "name": "half", "parent_id": "report", "dependencies": ["leaf"], "inputs": {"x": 1}},
    {"id": "right", "name": "half", "parent_id": "report", "dependencies": ["leaf"], "inputs": {"x": 2},
     "retries": 1, "retry_delay": 0},
    {"id": "leaf", "name": "source", "parent_id": "report", "inputs": {"n": 3}},
]


@pytest.fixture
def executors():
    @executor_register
    async def source(n: int) -> dict:
        return {"value": n, "blob": "z" * 5000}

    @executor_register
    async def half(x: int = 0, **deps) -> dict:
        if x == 2:
            raise RuntimeError("right half exploded")
        return {"half": x}

    @executor_register
    async def combine(**deps) -> dict:
        return {"ok": True}


def node_status(svg: str, task_id: str) -> str:
    match = re.search(rf'<g class="n s-(\w+)[^"]*"[^>]* data-task-id="{re.escape(task_id)}"', svg)
    assert match, task_id
    return match.group(1)


def test_a_plan_draws_without_running_or_storing(in_tmp_cwd):
    g = graph(DIAMOND)
    bundle = g._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml"}
    svg = bundle["image/svg+xml"]
    root = ET.fromstring(svg)  # a well-formed standalone SVG document
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert {node_status(svg, k) for k in ("report", "left", "right", "leaf")} == {"pending"}
    assert svg.count('class="e"') == 3 and svg.count('class="e o"') == 1  # right -> report is optional: dashed
    assert "leaf" in bundle["text/plain"] and "report [combine]" in bundle["text/plain"]
    assert "graph of 4 tasks, 4 dependencies, 3 layers" in bundle["text/plain"]
    # the diamond's shared leaf is drawn once, with two edges out of it
    assert [g.layout.layer[k] for k in range(4)] == [2, 1, 1, 0]
    assert not (in_tmp_cwd / ".apflow").exists()  # nothing stored


def test_a_plan_with_a_cycle_or_a_bad_reference_is_a_named_error():
    from apflow_nb.core.errors import CircularDependencyError, TaskArrayError

    with pytest.raises(CircularDependencyError):
        graph([{"id": "a", "name": "x", "dependencies": ["b"]}, {"id": "b", "name": "x", "parent_id": "a",
                                                                 "dependencies": ["a"]}])
    with pytest.raises(TaskArrayError, match="'nope'"):
        graph([{"id": "a", "name": "x", "dependencies": ["nope"]}])
    with pytest.raises(TypeError, match="task array"):
        graph(42)


async def test_a_run_and_a_past_run_are_coloured_by_their_statuses(db, db_url, executors):
    manager = TaskManager(db)
    run = apflow_nb.run(DIAMOND, manager=manager, display=False)
    await run
    for g in (graph(run), graph(run.tree), graph(run.root_id, store=db_url), graph("report", store=db_url)):
        svg = g.svg()
        assert node_status(svg, "leaf") == "completed" and node_status(svg, "left") == "completed"
        assert node_status(svg, "right") == "failed"
        assert node_status(svg, "report") == "completed"  # its dependency on right was optional
    past = graph(run.root_id, store=db_url)
    html = past.html()
    # the failed task's panel: inputs, its own traceback, timings, attempts (one retry: 2)
    panel = re.search(r'<div class="apflow-panel [^"]*" data-task-id="right".*?</div></div>', html, re.S)
    assert panel is not None
    text = panel.group(0)
    assert "RuntimeError: right half exploded" in text and "Traceback" in text
    assert "&quot;x&quot;: 2" in text and "started" in text and "took" in text
    assert re.search(r"attempts</td><td[^>]*>2<", text)
    leaf = re.search(r'data-task-id="leaf" style.*?</div></div>', html, re.S).group(0)
    assert "&quot;value&quot;: 3" in leaf and "…" in leaf and "z" * 5000 not in leaf  # result, truncated
    assert re.search(r"attempts</td><td[^>]*>1<", leaf)
    with pytest.raises(apflow_nb.errors.TaskNotFoundError):
        graph("no-such-run", store=db_url)


HOSTILE = "<script>alert(1)</script>"


def test_hostile_strings_are_escaped_everywhere():
    tasks = [{"id": HOSTILE, "name": 'x"><img src=x onerror=alert(2)>', "inputs": {"k": "</pre><script>x</script>"},
              "dependencies": ["b\x01"]},
             {"id": "b\x01", "name": "y", "parent_id": HOSTILE}]
    g = graph(tasks)
    state = g.state
    row = state.rows[HOSTILE]
    row.status, row.error = "weird<b>status", 'Traceback\n  File "<x>"\nRuntimeError: </pre><script>alert(3)</script>'
    for out in (g.svg(), g.html()):
        assert "<script" not in out and "<img src=x" not in out and "weird<b>" not in out
        assert "x&quot;&gt;&lt;img src=x" in out  # the name, escaped
    assert node_status(g.svg(), "&lt;script&gt;alert(1)&lt;/script&gt;") == "unknown"
    ET.fromstring(g.svg())  # control characters dropped: still well-formed XML


def test_big_trees_are_grouped_and_expandable():
    tasks = [{"id": "root", "name": "agg", "dependencies": [f"t{i}" for i in range(1000)]}]
    tasks += [{"id": f"t{i}", "name": "fetch" if i % 2 else "parse", "parent_id": "root"} for i in range(1000)]
    g = graph(tasks)
    assert sorted((label, size) for _, label, size in g.groups) == [("fetch ×500 in root", 500),
                                                                    ("parse ×500 in root", 500)]
    html = g.html()
    assert "1001 tasks in 3 boxes (grouped)" in html
    assert html.count('class="apflow-node"') == 3
    assert "<td>t1</td>" in html and "… and 480 more" in html  # the cluster's panel lists its members
    key = next(k for k, label, _ in g.groups if label.startswith("fetch"))
    bigger = g.expand(key)
    assert len(bigger.face.plan.items) == 1 + 500 + 1
    assert [label for _, label, _ in bigger.groups] == ["parse ×500 in root"]
    assert 'data-task-id="t1"' in bigger.svg()


def test_live_drawing_changes_colours_and_progress_only():
    spec = spec_from_array(DIAMOND)
    face = GraphFace(spec)
    state = RunState(root_id="report")
    state.apply(Event(EventType.TREE_STARTED, "report", "report", "in_progress", data={"tasks": [
        {"id": t.id, "key": t.key, "name": t.name, "parent_id": t.parent_id, "depth": t.depth, "status": "pending",
         "executor": t.executor} for t in spec.tasks]}))
    before = face.svg(state)
    layout = (list(face.layout.x), list(face.layout.y))
    state.apply(Event(EventType.TASK_STARTED, "leaf", "report", "in_progress"))
    state.apply(Event(EventType.TASK_PROGRESS, "leaf", "report", "in_progress", 0.4))
    during = face.svg(state)
    assert node_status(during, "leaf") == "in_progress" and "source · 40%" in during
    state.apply(Event(EventType.TASK_FAILED, "leaf", "report", "failed", data={"error": "ValueError: no\nTraceback"}))
    after = face.svg(state)
    assert node_status(after, "leaf") == "failed"
    assert (list(face.layout.x), list(face.layout.y)) == layout  # no re-layout
    strip = lambda s: re.sub(r"<g class=\"n .*?</g>", "", s)  # noqa: E731
    assert strip(before) == strip(after)  # edges and frame identical: only boxes changed
    assert "ValueError: no" in face.panels_html(state)
    picker = face.picker_html("scope")
    assert picker.count('type="radio"') == 5 and ":has(#" in picker


async def test_graph_of_a_running_run_reflects_its_events(db, executors):
    @executor_register
    async def waits(x: int = 0, **deps) -> dict:
        await asyncio.sleep(0.3)
        return {}

    tasks = [{"id": "r", "name": "combine", "dependencies": ["w"]}, {"id": "w", "name": "waits", "parent_id": "r"}]
    run = apflow_nb.run(tasks, manager=TaskManager(db), display=False)
    from tests.waiting import until

    await until(lambda: run.state.rows["w"].status == "in_progress")
    assert node_status(graph(run).svg(), "w") == "in_progress"
    await run
    assert node_status(graph(run).svg(), "w") == "completed"


def running_state(spec, statuses=None):
    state = RunState(root_id=spec.root_id)
    state.apply(Event(EventType.TREE_STARTED, spec.root_id, spec.root_id, "in_progress", data={"tasks": [
        {"id": t.id, "key": t.key, "name": t.name, "parent_id": t.parent_id, "depth": t.depth, "status": "pending",
         "executor": t.executor} for t in spec.tasks]}))
    return state


def test_graph_drawer_widgets_update_live_and_expand_on_request():
    from apflow_nb.notebook.graph._drawer import GraphDrawer

    tasks = [{"id": "root", "name": "agg", "dependencies": [f"t{i}" for i in range(400)]}]
    tasks += [{"id": f"t{i}", "name": "fetch" if i % 2 else "parse", "parent_id": "root"} for i in range(400)]
    spec = spec_from_array(tasks)
    drawer = GraphDrawer(spec, panels_every=3600, budget=1.0)
    state = running_state(spec)
    drawer.draw(state)
    scope = next(c for c in drawer.root._dom_classes if c.endswith("-live"))
    assert f".{scope}:has(#" in drawer.picker.value and drawer.picker.value.count('type="radio"') == 4
    assert [o for o, _ in drawer.expand.options][1:] == ["parse ×200 in root", "fetch ×200 in root"]
    picker, panels = drawer.picker.value, drawer.panels.value
    assert node_status(drawer.graph.value, "pe|root|fetch") == "pending"
    for i in range(1, 400, 2):
        state.apply(Event(EventType.TASK_STARTED, f"t{i}", "root", "in_progress"))
    state.apply(Event(EventType.TASK_FAILED, "t1", "root", "failed", data={"error": "boom"}))
    drawer.draw(state)
    assert node_status(drawer.graph.value, "pe|root|fetch") == "failed"  # a failure colours its cluster
    assert drawer.picker.value == picker and drawer.panels.value == panels  # panels wait (rate limit)
    drawer.draw(state, final=True)
    assert drawer.panels.value != panels and "1 failed" in drawer.panels.value
    drawer.expand.value = next(v for o, v in drawer.expand.options if o.startswith("fetch"))
    assert drawer.picker.value != picker  # laid out again: new radios for the new boxes
    assert node_status(drawer.graph.value, "t1") == "failed" and node_status(drawer.graph.value, "t3") == "in_progress"
    assert [o for o, _ in drawer.expand.options][1:] == ["parse ×200 in root"]
    assert "t1" in drawer.static_html(state)


def test_a_costly_graph_redraws_less_often_but_always_draws_the_final_frame():
    from apflow_nb.notebook.graph._drawer import GraphDrawer

    spec = spec_from_array([{"id": "r", "name": "agg"}] + [{"id": f"t{i}", "name": "x", "parent_id": "r"}
                                                           for i in range(250)])
    drawer = GraphDrawer(spec, budget=1e-9)  # any redraw's CPU time forbids the next for a long while
    state = running_state(spec)
    drawer.draw(state)
    state.apply(Event(EventType.TASK_STARTED, "t1", "r", "in_progress"))
    drawer.draw(state)
    assert (drawer.redraws, drawer.skipped) == (1, 1)
    assert node_status(drawer.graph.value, "t1") == "pending"
    drawer.draw(state, final=True)
    assert drawer.redraws == 2 and node_status(drawer.graph.value, "t1") == "in_progress"


async def test_a_graph_frame_skipped_for_its_budget_is_drawn_without_another_event(db, monkeypatch):
    """A costly graph skips frames; the view draws the skipped one soon after, even if no event
    follows (a task that starts and then runs quietly is seen running, not left pending)."""
    from apflow_nb.notebook.views import live
    from tests.waiting import until

    monkeypatch.setattr(live, "KEEPALIVE", 3600.0)  # only the skipped frame's own redraw can show it
    tasks = [{"id": "r", "name": "agg", "dependencies": ["t"]}, {"id": "t", "name": "x", "parent_id": "r"}]
    tree = await TaskManager(db).task_repository.create_task_tree_from_array(tasks)  # stored, never run
    state = running_state(spec_from_array(tasks))
    view = live.LiveView(state, mode="widget", tree=tree, view="graph", min_interval=0.0)
    drawer = view.widget.graph
    drawer.budget = 1e-9  # every redraw forbids the next one for MAX_STALE seconds
    drawer.draw(state)
    view.on_event(Event(EventType.TASK_STARTED, "t", "r", "in_progress"))
    await until(lambda: drawer.skipped >= 1)  # the event's frame came too soon and was skipped ...
    await until(lambda: node_status(drawer.graph.value, "t") == "in_progress", timeout=5)  # ... and drawn later
    assert drawer.redraw_at is None
