"""The drawers: widget values and styles for success, failure and cancel, text and HTML reprs,
coalesced redraws, a 1000-task tree, the fallbacks without widgets, and widget changes only on
the loop's thread."""
from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, executor_register
from apflow_nb.core.events import Event, EventType
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views import make_view
from apflow_nb.notebook.views.html import render_html
from apflow_nb.notebook.views.live import WIDGET_MIME, LiveView
from apflow_nb.notebook.views.text import TextLine, render_text
from apflow_nb.notebook.views.widget import FOCUS
from tests.waiting import until


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


def row_html(table, task_id):
    return table.split(f'data-task-id="{task_id}"')[1].split("</tr>")[0]


# -- widget states -------------------------------------------------------------------------------
async def test_widget_state_on_success(db):
    run = apflow_nb.run(tasks(), manager=TaskManager(db), display="widget")
    await run
    d = run.view.drawer
    assert d.bar.value == 1.0 and d.bar.bar_style == "success" and d.bar.description == "100%"
    assert d.cancel.disabled and d.task_buttons.children == ()  # nothing left to cancel
    assert "3/3 done" in d.header.value and "✔ 3 completed" in d.header.value
    assert 'data-run-status="completed"' in d.header.value
    table = d.table.value
    assert table.count('data-status="completed"') == 3 and table.count("</div></div> 100%</td>") == 3
    assert "padding-left:20px\">steps</td>" in row_html(table, "a")  # indented by depth
    assert "padding-left:4px\">aggregate_results_executor</td>" in row_html(table, "root")
    assert d.errors.value == "" and d.pager.layout.display == "none"
    bundle = run.view._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == run.view.widget.root.model_id  # the table/graph faces
    assert 'data-status="completed"' in bundle["text/html"] and "✔ steps [steps] completed 100%" in bundle["text/plain"]


async def test_widget_state_on_failure_shows_error_and_traceback(db):
    run = apflow_nb.run(tasks(fail=True), manager=TaskManager(db), display="widget")
    await run
    d = run.view.drawer
    assert run.status == "failed" and d.bar.bar_style == "danger" and d.bar.value == 1.0
    assert "✘ 2 failed" in d.header.value and "✔ 1 completed" in d.header.value
    row_b = row_html(d.table.value, "b")
    assert 'data-status="failed"' in d.table.value and "✘ failed" in row_b
    assert "RuntimeError: step failed on purpose" in row_b and "Traceback" not in row_b  # one line in the row
    errors = d.errors.value  # tracebacks behind toggles, in a widget that does not change every redraw
    assert '<details data-task-id="b"><summary' in errors and "steps: RuntimeError: step failed on purpose" in errors
    assert "Traceback (most recent call last)" in errors.split('data-task-id="b"')[1]
    assert "required dependency" in row_html(d.table.value, "root")
    bundle = run.view._repr_mimebundle_()
    assert "RuntimeError: step failed on purpose" in bundle["text/plain"]
    assert "<details><summary" in row_html(bundle["text/html"], "b")  # static HTML: toggle in the row
    assert "Traceback" in row_html(bundle["text/html"], "b")


async def test_widget_cancel_buttons_cancel_run_and_task(db):
    run = apflow_nb.run(tasks(sleep=0.05, n=100), manager=TaskManager(db, cancel_grace_period=1), display="widget")
    d = run.view.drawer
    await until(lambda: len(d.task_buttons.children) == 2 and 0 < d.bar.value < 1)
    buttons = {b._apflow_task_id: b for b in d.task_buttons.children}
    assert set(buttons) == {"a", "b"} and buttons["a"].description == "Cancel steps"
    assert d.bar.bar_style == "info" and not d.cancel.disabled
    buttons["a"].click()  # one task
    assert buttons["a"].disabled
    await until(lambda: run.state.rows["a"].status == "cancelled" and len(d.task_buttons.children) == 1)
    assert run.state.rows["b"].status == "in_progress" and d.task_buttons.children[0]._apflow_task_id == "b"
    d.cancel.click()  # the whole run
    await run
    assert run.status == "cancelled" and d.bar.bar_style == "warning" and d.cancel.disabled
    assert {r.status for r in run.state.rows.values()} == {"cancelled"}
    assert 0 < d.bar.value < 1  # the bar stays where the work stopped
    assert "⊘ 3 cancelled" in d.header.value and d.task_buttons.children == ()
    assert run.view._repr_mimebundle_()["text/html"].count('data-status="cancelled"') == 4  # 3 rows + the run


# -- coalescing ----------------------------------------------------------------------------------
def _two_task_state():
    state = RunState(root_id="r")
    state.apply(Event(EventType.TREE_STARTED, "r", "r", "in_progress", data={"tasks": [
        {"id": "r", "name": "root", "parent_id": None, "depth": 0, "status": "pending", "executor": "x"},
        {"id": "c", "name": "child", "parent_id": "r", "depth": 1, "status": "pending", "executor": "y"}]}))
    state.apply(Event(EventType.TASK_STARTED, "c", "r", "in_progress"))
    return state


async def test_a_burst_of_events_costs_one_redraw_and_the_final_frame_is_immediate():
    state = _two_task_state()
    view = LiveView(state, mode="widget", min_interval=0.1)
    assert view.redraws == 0
    for i in range(10_000):  # one burst, no yield to the loop in between
        view.on_event(Event(EventType.TASK_PROGRESS, "c", "r", "in_progress", (i + 1) / 10_000))
    assert view.redraws == 0 and view.drawer.bar.value == 0.0  # applied, not drawn yet
    await until(lambda: view.redraws == 1)
    assert view.drawer.bar.value == 0.5  # child at 100% of 2 tasks
    for i in range(100):
        view.on_event(Event(EventType.TASK_PROGRESS, "c", "r", "in_progress", 0.5 + i / 1000))
    view.on_event(Event(EventType.TASK_COMPLETED, "c", "r", "completed"))
    view.on_event(Event(EventType.TASK_FAILED, "r", "r", "failed", data={"error": "boom"}))
    view.on_event(Event(EventType.TREE_FINISHED, "r", "r", "failed"))
    assert view.redraws == 2 and view.drawer.bar.bar_style == "danger"  # final frame at once
    view.draw(final=True)
    assert view.redraws == 2  # the same final frame is not drawn twice
    await asyncio.sleep(0.15)
    assert view.redraws == 2  # and no timer left behind


async def test_redraws_of_a_real_run_are_coalesced(db):
    run = apflow_nb.run([{"id": "r", "name": "steps", "inputs": {"n": 3000, "sleep": 0}}],
                        manager=TaskManager(db), display="html")
    t0 = time.perf_counter()
    await run
    elapsed = time.perf_counter() - t0
    assert run.state.rows["r"].status == "completed" and len(run.events) > 10
    assert run.view.redraws <= 2 + 10 * elapsed + 2  # at most ~10 a second, plus the final frame


# -- large trees ---------------------------------------------------------------------------------
async def test_thousand_task_tree_shows_a_few_rows_and_pages(db):
    specs = [{"id": "root", "name": "aggregate_results_executor"}]
    specs += [{"id": f"t{i}", "name": "steps", "parent_id": "root", "inputs": {"n": 1}} for i in range(1000)]
    run = apflow_nb.run(specs, manager=TaskManager(db), display="widget", max_rows=100)
    await run
    d = run.view.drawer
    assert d.table.value.count("<tr data-task-id") == 100 and "100 of 1001 tasks shown" in d.table.value
    assert "901 tasks not shown" in d.table.value and "1001/1001 done" in d.header.value
    assert len(d.all_widgets()) < 12  # a few widgets whatever the size of the tree
    assert d.pager.layout.display == "" and len(d.pager.options) == 1 + 11
    assert d.pager.options[2] == ("tasks 101–200 of 1001", 100)
    d.pager.value = 100  # what choosing a page in the menu does
    assert 'data-task-id="t99"' in d.table.value and 'data-task-id="t198"' in d.table.value
    assert 'data-task-id="t199"' not in d.table.value and "(from task 101)" in d.table.value
    d.pager.value = FOCUS
    assert 'data-task-id="t0"' in d.table.value
    html = run.view._repr_mimebundle_()["text/html"]
    assert html.count("<tr data-task-id") == 100 and "901 tasks not shown" in html


async def test_a_large_run_shows_its_running_and_failed_tasks_first(db):
    specs = [{"id": "root", "name": "aggregate_results_executor"}]
    specs += [{"id": f"t{i}", "name": "steps", "parent_id": "root",
               "inputs": {"n": 200 if i >= 590 else 1, "sleep": 0.01, "fail": i == 580}} for i in range(600)]
    run = apflow_nb.run(specs, manager=TaskManager(db, max_concurrency=10), display="widget", max_rows=50)
    d = run.view.drawer
    await until(lambda: run.state.rows["t595"].status == "in_progress" and run.view.redraws > 1
                and 'data-task-id="t595"' in d.table.value)
    run.view.draw()  # the table now, and the state it was drawn from (no await in between)
    table = d.table.value
    assert 'data-task-id="t580"' in table and "RuntimeError" in row_html(table, "t580")
    running = run.state.ids("in_progress")
    assert running and all(f'data-task-id="{t}"' in table for t in running)
    run.cancel()
    await run


# -- text and HTML -------------------------------------------------------------------------------
def test_text_and_html_reprs_from_events_alone():
    state = _two_task_state()
    state.apply(Event(EventType.TASK_PROGRESS, "c", "r", "in_progress", 0.5))
    text = render_text(state)
    assert text.splitlines()[0].startswith("apflow run r  [#####...............]  in_progress · 0/2 done")
    assert "  ◔ child [y] in_progress 50%" in text and "○ root [x] pending 0%" in text
    html = render_html(state)
    assert '<div class="apflow-run" data-root-id="r" data-status="in_progress">' in html
    assert row_html(html, "c").count("width:50%") == 1 and "◔ in progress" in row_html(html, "c")
    state.apply(Event(EventType.TASK_FAILED, "c", "r", "failed", data={"error": "KeyError: 'x'\n\nTraceback ..."}))
    state.apply(Event(EventType.TASK_CANCELLED, "r", "r", "cancelled", data={"message": "dependency failed"}))
    state.apply(Event(EventType.TREE_FINISHED, "r", "r", "failed"))
    text = render_text(state)
    assert "✘ child [y] failed 50%" in text and "— KeyError: 'x'" in text and "Traceback" not in text
    html = render_html(state)
    assert "<summary" in row_html(html, "c") and "Traceback ..." in row_html(html, "c")
    assert "dependency failed" in row_html(html, "r") and 'data-status="failed"' in html
    view = LiveView(state, mode="html")
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"} and bundle["text/plain"] == repr(view)


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_text_line_redraws_in_place_on_a_tty_and_prints_lines_otherwise():
    state = _two_task_state()
    tty, log = Tty(), io.StringIO()
    on_tty, in_log = TextLine(tty), TextLine(log, every=60)
    for p in (0.1, 0.2, 0.3):
        state.apply(Event(EventType.TASK_PROGRESS, "c", "r", "in_progress", p))
        on_tty.draw(state)
        in_log.draw(state)
    state.apply(Event(EventType.TASK_COMPLETED, "c", "r", "completed"))
    state.apply(Event(EventType.TASK_FAILED, "r", "r", "failed", data={"error": "ValueError: no"}))
    state.apply(Event(EventType.TREE_FINISHED, "r", "r", "failed"))
    on_tty.draw(state, final=True)
    in_log.draw(state, final=True)
    assert tty.getvalue().count("\r") == 4 and tty.getvalue().count("\n") == 1 and tty.getvalue().endswith("\n")
    assert "first failure: root: ValueError: no" in tty.getvalue()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in log.getvalue()  # the first line, then the final one
    assert lines[-1].startswith("apflow [####################] failed · 2/2 done (1 failed)")


async def test_text_line_for_scripts(db, capsys):
    run = apflow_nb.run(tasks(), manager=TaskManager(db), display="text")
    await run
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("apflow [") and "completed · 3/3 done" in out[-1]
    assert len(out) <= 4


def test_make_view_picks_a_drawer(monkeypatch):
    state = _two_task_state()
    assert make_view(state, False) is None
    assert make_view(state, "html").mode == "html" and make_view(state, "text").mode == "text"
    monkeypatch.setenv("APFLOW_NB_DISPLAY", "html")
    assert make_view(state, True).mode == "html"
    monkeypatch.delenv("APFLOW_NB_DISPLAY")
    assert make_view(state, True).mode == "text"  # not in a kernel: the text line
    with pytest.raises(ValueError, match="display must be"):
        make_view(state, "fancy")


# -- fallbacks -----------------------------------------------------------------------------------
def test_html_fallback_updates_a_display_in_place(tmp_path):
    """In an IPython shell (its own process: the shell is a process-wide singleton), the HTML view
    is one display, updated in place by its display_id, ending on the final frame."""
    code = textwrap.dedent(f'''
        import asyncio, json
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        published = []
        def record(data, metadata=None, source=None, *, transient=None, update=False, **kw):
            published.append((update, (transient or {{}}).get("display_id"), data))
        shell.display_pub.publish = record
        import apflow_nb
        @apflow_nb.executor_register
        async def step(n: int = 10) -> dict:
            return {{"n": n}}
        async def cell():
            run = apflow_nb.run([{{"id": "r", "name": "aggregate_results_executor", "dependencies": ["a", "b"]}},
                                 {{"id": "a", "name": "step", "parent_id": "r"}},
                                 {{"id": "b", "name": "step", "parent_id": "r"}}],
                                store="sqlite:///{tmp_path / 'h.db'}", display="html")
            await run
        asyncio.run(cell())
        print(json.dumps(published))
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    published = json.loads(out.stdout.strip().splitlines()[-1])
    assert published[0][0] is False and WIDGET_MIME not in published[0][2]
    assert 'data-status="pending"' in published[0][2]["text/html"]
    updates = [p for p in published if p[0]]
    assert updates and all(u[1] == published[0][1] for u in updates)  # same display id, updated in place
    assert len(published) == 1 + len(updates)  # one display, never a second one
    assert 'data-status="completed"' in updates[-1][2]["text/html"]
    assert "completed · 3/3 done" in updates[-1][2]["text/plain"]


BLOCK_WIDGETS = '''
import sys
class NoWidgets:  # as if ipywidgets were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "ipywidgets" or name.startswith("ipywidgets."):
            raise ModuleNotFoundError("No module named 'ipywidgets'", name=name)
        return None
sys.meta_path.insert(0, NoWidgets())
sys.modules.pop("ipywidgets", None)
'''


def test_without_ipywidgets_the_view_falls_back_to_html(tmp_path):
    code = BLOCK_WIDGETS + textwrap.dedent(f'''
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.kernel = object()  # as inside a kernel, whose frontend cannot show widgets
        published = []
        shell.display_pub.publish = lambda data, *a, update=False, transient=None, **k: published.append(
            (update, data))
        import apflow_nb
        from apflow_nb.notebook.display import resolve_mode, widgets_available
        print("MODE", resolve_mode(True), widgets_available())

        @apflow_nb.executor_register
        async def one() -> dict:
            return {{}}

        run = apflow_nb.run([{{"name": "one"}}], store="sqlite:///{tmp_path / 'nw.db'}")
        node = run.result()
        final = published[-1][1]
        print("RESULT", run.view.mode, node.task.status, "ipywidgets" in sys.modules,
              "application/vnd.jupyter.widget-view+json" in final, 'data-status="completed"' in final["text/html"])
        try:
            apflow_nb.run([{{"name": "one"}}], store="sqlite:///{tmp_path / 'nw.db'}", display="widget")
        except ImportError as exc:
            print("WIDGET", "pip install ipywidgets" in str(exc) and "display='html'" in str(exc))
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()
             if line.startswith(("MODE", "RESULT", "WIDGET"))}
    assert lines == {"MODE": ["html", "False"], "RESULT": ["html", "completed", "False", "False", "True"],
                     "WIDGET": ["True"]}


def test_a_script_gets_the_text_line(tmp_path):
    code = textwrap.dedent(f'''
        import apflow_nb
        @apflow_nb.executor_register
        async def one() -> dict:
            return {{}}
        run = apflow_nb.run([{{"id": "x", "name": "one"}}, {{"id": "y", "name": "one", "parent_id": "x"}}], store="sqlite:///{tmp_path / 's.db'}")
        print("MODE", run.view.mode)
        run.result()
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("apflow [....................] pending · 0/2 done")  # not a tty: plain lines
    assert lines[1] == "MODE text" and lines[-1].startswith("apflow [####################] completed · 2/2 done")
    assert len(lines) == 3 and "\r" not in out.stdout


# -- threads -------------------------------------------------------------------------------------
async def test_widget_changes_only_on_the_loop_thread(db):
    run = apflow_nb.run(tasks(sleep=0.02, n=5), manager=TaskManager(db), display="widget")
    loop_thread = threading.get_ident()
    seen = set()
    d = run.view.drawer
    for w in d.all_widgets():
        w.observe(lambda change: seen.add(threading.get_ident()))
    await until(lambda: run.state.rows["a"].progress > 0)

    def elsewhere():  # a worker thread draws, publishes an event, syncs and cancels
        run.view.draw()
        run.view.on_event(Event(EventType.EXECUTOR, "a", run.root_id, "in_progress", data={"type": "blocked", "message": "hi"}))
        run.view.sync()
        run.cancel("a")

    other = threading.Thread(target=elsewhere)
    other.start()
    other.join()
    await run
    assert run.state.blocked == "hi" and run.state.rows["a"].status == "cancelled"
    assert seen == {loop_thread}
