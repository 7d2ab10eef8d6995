"""RunState and the drawers: widget values and styles, text and HTML reprs, coalescing, paging,
fallbacks without widgets, and widget changes only on the loop's thread."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, executor_register
from apflow_nb.core.events import Event, EventType
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.live import WIDGET_MIME, LiveView


class Steps(ExecutableTask):
    id = "steps"

    async def execute(self, inputs):
        n = inputs.get("n", 3)
        for i in range(n):
            if self.cancellation_checker():
                return {"status": "cancelled"}
            await self.event_queue.put({"type": "progress", "data": {"progress": (i + 1) / n}})
            await asyncio.sleep(inputs.get("sleep", 0.0))
        if inputs.get("fail"):
            raise RuntimeError("step failed on purpose")
        return {"n": n}


def tasks(fail=False, sleep=0.0, n=3):
    return [{"id": "root", "name": "aggregate_results_executor", "dependencies": ["a", "b"]},
            {"id": "a", "name": "steps", "parent_id": "root", "inputs": {"n": n, "sleep": sleep}},
            {"id": "b", "name": "steps", "parent_id": "root", "inputs": {"n": n, "sleep": sleep, "fail": fail}}]


@pytest.fixture(autouse=True)
def _steps():
    executor_register(Steps)


async def test_widget_state_on_success(db):
    run = apflow_nb.run(tasks(), manager=TaskManager(db), display="widget")
    await run
    d = run.view.drawer
    assert d.bar.value == 1.0 and d.bar.bar_style == "success" and d.cancel.disabled
    assert "3/3 done" in d.header.value and "✔ 3 completed" in d.header.value
    assert d.table.value.count('data-status="completed"') == 3 and d.table.value.count("</div></div> 100%</td>") == 3
    assert d.task_buttons.children == ()  # no running task, no task Cancel button
    assert '<td style="padding-left:20px">steps</td>' in d.table.value  # indented by depth
    bundle = run.view._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == d.root.model_id
    assert 'data-status="completed"' in bundle["text/html"] and "✔ steps [steps] completed 100%" in bundle["text/plain"]


async def test_widget_state_on_failure_shows_error_and_traceback(db):
    run = apflow_nb.run(tasks(fail=True), manager=TaskManager(db), display="widget")
    await run
    d = run.view.drawer
    assert run.status == "failed" and d.bar.bar_style == "danger"
    table = d.table.value
    row_b = table.split('data-task-id="b"')[1].split("</tr>")[0]
    assert 'data-status="failed"' in table and "✘ failed" in row_b
    assert "<details><summary" in row_b and "RuntimeError: step failed on purpose</summary>" in row_b
    assert "Traceback" in row_b  # behind the toggle
    assert "required dependency" in table.split('data-task-id="root"')[1].split("</tr>")[0]
    assert "RuntimeError: step failed on purpose" in run.view._repr_mimebundle_()["text/plain"]


async def test_widget_cancel_buttons_cancel_run_and_task(db):
    run = apflow_nb.run(tasks(sleep=0.05, n=100), manager=TaskManager(db, cancel_grace_period=1), display="widget")
    for _ in range(100):
        await asyncio.sleep(0.02)
        if run.state.rows["a"].status == "in_progress" and run.view.redraws:
            break
    await asyncio.sleep(0.15)
    d = run.view.drawer
    buttons = {b._apflow_task_id: b for b in d.task_buttons.children}
    assert set(buttons) == {"a", "b"} and buttons["a"].description == "Cancel steps"
    assert 0 < d.bar.value < 1
    buttons["a"].click()  # one task
    await asyncio.sleep(0.2)
    assert run.state.rows["a"].status == "cancelled" and run.state.rows["b"].status == "in_progress"
    d.cancel.click()  # the whole run
    await run
    assert run.status == "cancelled" and d.bar.bar_style == "warning"
    assert {r.status for r in run.state.rows.values()} == {"cancelled"}


async def test_redraws_are_coalesced(db):
    run = apflow_nb.run([{"id": "r", "name": "steps", "inputs": {"n": 3000, "sleep": 0}}],
                        manager=TaskManager(db), display="html")
    t0 = time.perf_counter()
    await run
    elapsed = time.perf_counter() - t0
    assert run.state.rows["r"].status == "completed"
    assert run.view.redraws <= 2 + 10 * elapsed + 2  # at most ~10 a second, plus the final frame


async def test_thousand_task_tree_pages_rows(db):
    specs = [{"id": "root", "name": "aggregate_results_executor"}]
    specs += [{"id": f"t{i}", "name": "steps", "parent_id": "root", "inputs": {"n": 1}} for i in range(1000)]
    t0 = time.perf_counter()
    run = apflow_nb.run(specs, manager=TaskManager(db), display="widget", max_rows=100)
    await run
    assert time.perf_counter() - t0 < 15
    d = run.view.drawer
    assert d.table.value.count("<tr data-task-id") == 100 and "901 more tasks not shown" in d.table.value
    assert "1001/1001 done" in d.header.value
    assert len(d.all_widgets()) < 10  # a few widgets whatever the size of the tree
    html = run.view._repr_mimebundle_()["text/html"]
    assert html.count("<tr data-task-id") == 100 and "901 more tasks" in html


def test_state_from_events_without_any_frontend():
    state = RunState(root_id="r")
    started = Event(EventType.TREE_STARTED, "r", "r", "in_progress", 0.0, data={"tasks": [
        {"id": "r", "name": "root", "parent_id": None, "depth": 0, "status": "pending", "executor": "x"},
        {"id": "c", "name": "child", "parent_id": "r", "depth": 1, "status": "completed", "executor": "y"}]})
    assert state.apply(started) and state.counts["completed"] == 1 and state.progress == 0.5
    state.apply(Event(EventType.TASK_STARTED, "r", "r", "in_progress"))
    state.apply(Event(EventType.TASK_PROGRESS, "r", "r", "in_progress", 0.5))
    assert state.progress == 0.75
    state.apply(Event(EventType.TASK_FAILED, "r", "r", "failed", data={"error": "boom"}))
    state.apply(Event(EventType.TREE_FINISHED, "r", "r", "failed"))
    assert state.finished and state.status == "failed" and state.rows["r"].error == "boom"
    assert "failed · 2/2 done (1 failed)" in state.summary()


async def test_html_fallback_updates_a_display_in_place(db):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    published = []
    original = shell.display_pub.publish

    def record(data, metadata=None, source=None, *, transient=None, update=False, **kw):
        published.append((update, (transient or {}).get("display_id"), data))

    shell.display_pub.publish = record
    try:
        run = apflow_nb.run(tasks(sleep=0.02, n=10), manager=TaskManager(db), display="html")
        await run
    finally:
        shell.display_pub.publish = original
    assert published[0][0] is False and WIDGET_MIME not in published[0][2]
    updates = [p for p in published if p[0]]
    assert updates and all(u[1] == published[0][1] for u in updates)  # same display id, updated in place
    assert 'data-status="completed"' in updates[-1][2]["text/html"]


def test_without_ipywidgets_the_view_falls_back_to_html(tmp_path):
    code = f'''
import sys, builtins
real_import = builtins.__import__
def no_widgets(name, *a, **k):
    if name.split(".")[0] == "ipywidgets":
        raise ImportError("No module named 'ipywidgets'")
    return real_import(name, *a, **k)
builtins.__import__ = no_widgets
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.kernel = object()  # pretend to be a kernel
import apflow_nb
from apflow_nb.notebook.display import resolve_mode
print("MODE", resolve_mode(True))
@apflow_nb.executor_register
async def one() -> dict:
    return {{}}
run = apflow_nb.run([{{"name": "one"}}], store="sqlite:///{tmp_path / 'nw.db'}")
print("RESULT", run.view.mode, run.result().task.status, "ipywidgets" in sys.modules)
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.startswith(("MODE", "RESULT"))}
    assert lines == {"MODE": ["html"], "RESULT": ["html", "completed", "False"]}


async def test_widget_changes_only_on_the_loop_thread(db):
    run = apflow_nb.run(tasks(sleep=0.02, n=5), manager=TaskManager(db), display="widget")
    loop_thread = threading.get_ident()
    seen = set()
    d = run.view.drawer
    for w in d.all_widgets():
        w.observe(lambda change: seen.add(threading.get_ident()), names="value")
    other = threading.Thread(target=lambda: run.view.draw())  # a draw asked from another thread
    other.start()
    other.join()
    await run
    assert seen == {loop_thread}


async def test_text_line_for_scripts(db, capsys):
    run = apflow_nb.run(tasks(), manager=TaskManager(db), display="text")
    await run
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("apflow [") and "completed · 3/3 done" in out[-1]
    assert len(out) <= 4
