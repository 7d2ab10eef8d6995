"""Runs in a real ipykernel: small notebooks executed with nbclient (outputs and widget state as a
saved notebook keeps them), the fallback without ipywidgets, and a kernel driven message by message
to see the view update while the kernel is idle and a kernel interrupt cancel the run.

The kernel is this venv's Python: a ``python3`` kernelspec written to a temporary JUPYTER_PATH
entry whose argv starts with ``sys.executable`` (found before any other python3 kernelspec).
"""
from __future__ import annotations

import queue
import re
import textwrap
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from tests.kernelspec import install_test_kernel
from tests.store_helpers import stored_statuses as stored

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

EXECUTORS = '''
import asyncio, apflow_nb
from apflow_nb import ExecutableTask, executor_register

class Steps(ExecutableTask):
    id = "steps"
    async def execute(self, inputs):
        n = inputs.get("n", 4)
        for i in range(n):
            if self.cancellation_checker():
                return {"status": "cancelled"}
            await self.event_queue.put({"type": "progress", "data": {"progress": (i + 1) / n}})
            await asyncio.sleep(inputs.get("sleep", 0.01))
        if inputs.get("fail"):
            raise RuntimeError("kernel step failed")
        return {"n": n}

executor_register(Steps)

def tree(n=3, fail=False, sleep=0.01, steps=4):
    kids = [{"id": f"k{i}", "name": "steps", "parent_id": "root",
             "inputs": {"n": steps, "sleep": sleep, "fail": fail and i == 0}} for i in range(n)]
    return [{"id": "root", "name": "aggregate_results_executor", "dependencies": [k["id"] for k in kids]}] + kids
'''


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A python3 kernelspec running this interpreter, first on JUPYTER_PATH for this module."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("jupyter")
    install_test_kernel(root, mp.setenv)
    mp.delenv("APFLOW_NB_DISPLAY", raising=False)
    yield root
    mp.undo()


def execute(cells: list[str], tmp_path) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_code_cell(textwrap.dedent(c)) for c in cells])
    NotebookClient(nb, timeout=60, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def stream(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def test_a_finished_run_is_saved_as_its_static_final_frame(kernel_env, tmp_path):
    """Once a run ends, the output it was displayed in holds the final frame as HTML and text and no
    widget reference: awaited in a later cell, in the same cell, or never awaited and ending while
    another cell runs. nbclient records only the running cell's messages, as a saved notebook does."""
    store = f"sqlite:///{tmp_path / 'k.db'}"
    nb = execute([
        EXECUTORS,
        f'ok = apflow_nb.run(tree(), store="{store}")',          # the view is displayed by this cell...
        "node = await ok\nprint(ok.view.mode, node.tree_status)",  # ...and awaited by this one
        f'bad = apflow_nb.run(tree(fail=True), store="{store}")\nawait bad\nprint(bad.status)',
        f'late = apflow_nb.run(tree(steps=20, sleep=0.02), store="{store}")',  # never awaited...
        "await asyncio.sleep(1.5)\nprint(late.done())",  # ...it ends while this cell runs
    ], tmp_path)
    assert stream(nb.cells[2]).split() == ["widget", "completed"]
    assert stream(nb.cells[3]).strip() == "failed" and stream(nb.cells[5]).strip() == "True"
    for index, status in ((1, "completed"), (3, "failed"), (4, "completed")):
        displays = [o for o in nb.cells[index].outputs if o.get("output_type") == "display_data"]
        assert len(displays) == 1, nb.cells[index].outputs
        data = displays[0]["data"]
        assert set(data) == {"text/html", "text/plain"}, index  # no widget reference left
        assert f'data-status="{status}"' in data["text/html"] and 'data-final="1"' in data["text/html"]
        assert data["text/html"].count("<tr data-task-id=") == 4 and 'data-key="k0"' in data["text/html"]
    assert "completed · 4/4 done · 100%" in nb.cells[1].outputs[0]["data"]["text/plain"]
    bad = nb.cells[3].outputs[0]["data"]
    assert "kernel step failed" in bad["text/html"] and "skipped: upstream &#x27;k0&#x27; failed" in bad["text/html"]
    assert "1 skipped" in bad["text/plain"] and "✘ k0 [steps] failed" in bad["text/plain"]


def test_without_ipywidgets_a_live_html_display_ends_on_the_final_frame(kernel_env, tmp_path):
    store = f"sqlite:///{tmp_path / 'h.db'}"
    nb = execute([
        "import sys\nsys.modules['ipywidgets'] = None  # as if it were not installed",
        EXECUTORS,
        f'r = apflow_nb.run(tree(steps=20), store="{store}")\nawait r\nprint(r.view.mode, r.status, r.view.redraws)',
    ], tmp_path)
    mode, status, redraws = stream(nb.cells[2]).split()
    assert (mode, status) == ("html", "completed") and int(redraws) >= 1
    displays = [o for o in nb.cells[2].outputs if o.get("output_type") == "display_data"]
    assert len(displays) == 1  # one display, updated in place (display_id), not one per redraw
    data = displays[0]["data"]
    assert WIDGET_VIEW not in data and 'data-status="completed"' in data["text/html"]
    assert "completed · 4/4 done" in data["text/plain"]
    assert "widgets" not in nb.metadata  # no widget state: GitHub and nbconvert render the HTML


def watch_idle_kernel(iopub) -> tuple[list[int], list[dict]]:
    """While no request runs: the head's overall percentage as the frontend receives it, until the
    output is replaced by its static final frame (returned too)."""
    values: list[int] = []
    final: list[dict] = []
    deadline = time.monotonic() + 20
    while not final and time.monotonic() < deadline:
        for m in iopub(seconds=0.2):
            value = m["content"].get("data", {}).get("state", {}).get("value", "")
            if m["msg_type"] == "comm_msg" and 'class="apflow-head"' in value:
                values.append(int(re.search(r"</span> (\d+)% · ", value).group(1)))
            if m["msg_type"] == "update_display_data":
                final.append(m["content"]["data"])
    return values, final


def test_the_view_updates_while_the_kernel_is_idle_and_an_interrupt_cancels(kernel_env, tmp_path):
    from jupyter_client.manager import start_new_kernel

    store = f"sqlite:///{tmp_path / 'i.db'}"
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        def run_cell(code, timeout=30):
            msg_id = kc.execute(textwrap.dedent(code))
            reply = kc.get_shell_msg(timeout=timeout)
            while reply["parent_header"].get("msg_id") != msg_id:
                reply = kc.get_shell_msg(timeout=timeout)
            return msg_id, reply["content"]

        def iopub(until_idle_of=None, seconds=0.0):
            """iopub messages until the given request is idle, or for ``seconds``."""
            out, deadline = [], time.monotonic() + (seconds or 30)
            while time.monotonic() < deadline:
                try:
                    msg = kc.get_iopub_msg(timeout=0.1)
                except queue.Empty:
                    continue
                out.append(msg)
                if (until_idle_of and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
                        and msg["parent_header"].get("msg_id") == until_idle_of):
                    break
            return out

        msg_id, reply = run_cell(EXECUTORS)
        assert reply["status"] == "ok", reply
        iopub(msg_id)

        # 1. a run started by a cell keeps running, and its widgets keep updating, once the cell is done
        msg_id, reply = run_cell(f'r = apflow_nb.run(tree(n=3, steps=30, sleep=0.03), store="{store}")')
        assert reply["status"] == "ok", reply
        iopub(msg_id)
        values, final = watch_idle_kernel(iopub)
        assert len(set(values)) >= 3 and values[-1] == 100 and values == sorted(values), values  # moved to the end
        assert final and set(final[0]) == {"text/html", "text/plain"}  # then the output became static
        assert set(stored(store).values()) == {"completed"}

        # 2. a kernel interrupt while a cell awaits a run cancels the run: nothing left in progress
        msg_id = kc.execute(f'r2 = apflow_nb.run(tree(n=20, steps=2000, sleep=0.01), store="{store}")\nawait r2')
        deadline = time.monotonic() + 20
        while list(stored(store).values()).count("in_progress") < 20:
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.05)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "error"
        statuses = stored(store)
        assert "in_progress" not in statuses.values() and list(statuses.values()).count("cancelled") == 21
        iopub(msg_id)
        msg_id, reply = run_cell("print(r2.status, r2.done(), 'data-run-status=\"cancelled\"' in r2.view.drawer.head.value)")
        out = "".join(m["content"].get("text", "") for m in iopub(msg_id) if m["msg_type"] == "stream")
        assert out.split() == ["cancelled", "True", "True"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
