"""The graph view in a real browser (Debian's Chromium through playwright, never a downloaded one):

- an executed ``jupyter nbconvert --to html --execute`` file opened from file://: the static SVG is
  there, and clicking a box shows its details with no kernel and no script;
- JupyterLab: a diamond and a 1,000-task grouped graph (screenshots in test-artifacts/), clicks
  on a box and on a cluster; the live graph face of a run: colours changing while it runs, the
  table/graph toggle, a click on a box while the graph keeps updating.
"""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

EXECUTORS = '''
import asyncio, apflow_nb
from apflow_nb import executor_register

@executor_register
async def source(n: int = 1, pause: float = 0.0) -> dict:
    await asyncio.sleep(pause)
    return {"value": n}

@executor_register
async def half(x: int = 0, pause: float = 0.0, **deps) -> dict:
    await asyncio.sleep(pause)
    if x == 2:
        raise RuntimeError("right half exploded")
    return {"half": x}

@executor_register
async def combine(**deps) -> dict:
    return {"ok": True}

def diamond(pause=0.0):
    return [
        {"id": "report", "name": "combine", "dependencies": ["left", {"id": "right", "required": False}]},
        {"id": "left", "name": "half", "parent_id": "report", "dependencies": ["leaf"], "inputs": {"x": 1, "pause": pause}},
        {"id": "right", "name": "half", "parent_id": "report", "dependencies": ["leaf"], "inputs": {"x": 2, "pause": pause}},
        {"id": "leaf", "name": "source", "parent_id": "report", "inputs": {"n": 3, "pause": pause}},
    ]

BIG = [{"id": "total", "name": "combine", "dependencies": [f"p{i}" for i in range(499)]}]
BIG += [{"id": f"f{i}", "name": "source", "parent_id": "total"} for i in range(500)]
BIG += [{"id": f"p{i}", "name": "half", "parent_id": "total", "dependencies": [f"f{i}"]} for i in range(500)]
'''


def browser(p, profile: Path):
    return p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                viewport={"width": 1400, "height": 1000})


def write_notebook(path: Path, cells: list[str]) -> None:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


# -- nbconvert ------------------------------------------------------------------------------------

def test_static_graph_in_an_executed_nbconvert_html_file(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert os.path.exists(CHROMIUM), "the browser tests need Debian's chromium: apt-get install chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    write_notebook(tmp_path / "graph.ipynb", [
        EXECUTORS + f"\nrun = apflow_nb.run(diamond(), store={store!r}, display=False)\ntree = await run",
        "apflow_nb.graph(run)"])
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute",
                    str(tmp_path / "graph.ipynb")], check=True, capture_output=True, cwd=tmp_path, timeout=180)
    html_file = tmp_path / "graph.html"
    assert "<script>alert" not in html_file.read_text()
    with sync_playwright() as p:
        ctx = browser(p, tmp_path / "profile")
        try:
            page = ctx.new_page()
            page.goto(html_file.as_uri())
            graph = page.locator(".apflow-graph").first
            expect(graph.locator("svg g.n")).to_have_count(4)
            statuses = {n.get_attribute("data-task-id"): n.get_attribute("data-status")
                        for n in graph.locator("svg g.n").all()}
            assert statuses == {"report": "completed", "left": "completed", "right": "failed", "leaf": "completed"}
            box = graph.locator("svg g.n[data-task-id=right]").bounding_box()
            assert box and box["width"] > 100 and box["height"] > 30  # drawn at its size, visible
            panel = graph.locator(".apflow-panel[data-task-id=right]")
            expect(panel).to_be_hidden()
            graph.locator("label.apflow-node[data-task-id=right]").click()
            expect(panel).to_be_visible()
            expect(panel).to_contain_text("RuntimeError: right half exploded")
            expect(panel).to_contain_text("Traceback")
            expect(panel).to_contain_text('"x": 2')
            graph.locator("label.apflow-node[data-task-id=leaf]").click()  # one panel at a time
            expect(panel).to_be_hidden()
            expect(graph.locator(".apflow-panel[data-task-id=leaf]")).to_contain_text('"value": 3')
            graph.screenshot(path=str(ARTIFACTS / "graph-nbconvert-static.png"))
        finally:
            ctx.close()


# -- JupyterLab -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server in tmp_path with its own config and runtime dirs; yields (base, token, work)."""
    assert os.path.exists(CHROMIUM), "the browser tests need Debian's chromium: apt-get install chromium"
    config, runtime, work = tmp_path / "config", tmp_path / "runtime", tmp_path / "work"
    for d in (config / "labconfig", runtime, work):
        d.mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)  # every cell in the DOM: no windowing of cells out of view
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), "apflow-graph-token"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(runtime))
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
                             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                             f"--ServerApp.root_dir={work}"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
        time.sleep(0.3)
    yield base, token, work
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def run_all(page, base: str, token: str, name: str) -> None:
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.get_by_text("| Idle").first.wait_for(timeout=60_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def test_static_graphs_in_jupyterlab_diamond_and_a_thousand_tasks(lab):
    from playwright.sync_api import expect, sync_playwright

    base, token, work = lab
    ARTIFACTS.mkdir(exist_ok=True)
    store = f"sqlite:///{work / 'tasks.db'}"
    write_notebook(work / "static.ipynb", [
        EXECUTORS + f"\nrun = apflow_nb.run(diamond(), store={store!r}, display=False)\ntree = await run",
        "apflow_nb.graph(run)", "apflow_nb.graph(BIG)"])
    with sync_playwright() as p:
        ctx = browser(p, work.parent / "profile")
        try:
            page = ctx.new_page()
            run_all(page, base, token, "static.ipynb")
            graphs = page.locator(".apflow-graph")
            expect(graphs).to_have_count(2, timeout=60_000)
            diamond, big = graphs.nth(0), graphs.nth(1)
            expect(diamond.locator("svg g.n")).to_have_count(4)
            expect(diamond.locator("svg g.n[data-task-id=right]")).to_have_attribute("data-status", "failed")
            diamond.locator("label.apflow-node[data-task-id=right]").click()
            panel = diamond.locator(".apflow-panel[data-task-id=right]")
            expect(panel).to_be_visible()
            expect(panel).to_contain_text("right half exploded")
            diamond.scroll_into_view_if_needed()
            diamond.screenshot(path=str(ARTIFACTS / "graph-diamond-jupyterlab.png"))
            # 1,000 tasks: three boxes (two clusters and the root), the clusters expand into a list on click
            expect(big.locator("svg g.n")).to_have_count(3)
            expect(big.locator("svg g.n.c")).to_have_count(2)
            cluster_panel = big.locator(".apflow-panel").filter(has_text="source ×500")
            big.locator("label.apflow-node[data-task-id='pe|total|source']").click()
            expect(cluster_panel).to_be_visible()
            expect(cluster_panel).to_contain_text("500 pending")
            expect(cluster_panel).to_contain_text("and 480 more")
            big.scroll_into_view_if_needed()
            big.screenshot(path=str(ARTIFACTS / "graph-1000-grouped-jupyterlab.png"))
            # the dark theme: boxes, text and lines follow JupyterLab's --jp-* variables
            fill = "el => getComputedStyle(el).fill"
            box = diamond.locator("svg g.n[data-task-id=leaf] rect.b")
            assert box.evaluate(fill) == "rgb(255, 255, 255)"
            page.get_by_role("menuitem", name="Settings", exact=True).click()
            page.get_by_text("Theme", exact=True).click()
            page.get_by_text("JupyterLab Dark", exact=True).click()
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            page.wait_for_function("el => getComputedStyle(el).fill !== 'rgb(255, 255, 255)'",
                                   arg=box.element_handle(), timeout=30_000)
            dark = [int(c) for c in box.evaluate(fill)[4:-1].split(",")]
            assert sum(dark) < 3 * 128, dark  # a dark box on the dark theme
            diamond.scroll_into_view_if_needed()
            diamond.screenshot(path=str(ARTIFACTS / "graph-diamond-jupyterlab-dark.png"))
        finally:
            ctx.close()


def test_live_graph_face_in_jupyterlab_toggle_colours_and_click(lab):
    from playwright.sync_api import expect, sync_playwright

    base, token, work = lab
    ARTIFACTS.mkdir(exist_ok=True)
    store = f"sqlite:///{work / 'tasks.db'}"
    write_notebook(work / "live.ipynb", [EXECUTORS, f"run = apflow_nb.run(diamond(pause=2.5), store={store!r}, view='graph')"])
    with sync_playwright() as p:
        ctx = browser(p, work.parent / "profile")
        try:
            page = ctx.new_page()
            run_all(page, base, token, "live.ipynb")
            faces = page.locator(".apflow-faces")
            leaf = faces.locator("svg g.n[data-task-id=leaf]")
            expect(leaf).to_have_attribute("data-status", "in_progress", timeout=60_000)  # colours follow the run
            # a click on a box opens its panel, and it stays open while the graph keeps redrawing
            faces.locator("label.apflow-node[data-task-id=leaf]").click()
            panel = faces.locator(".apflow-panel[data-task-id=leaf]")
            expect(panel).to_be_visible()
            expect(panel).to_contain_text('"pause": 2.5')
            # the toggle: the table, then the graph again, while the run goes on
            faces.get_by_role("button", name="table", exact=True).click()
            expect(faces.locator("svg.apflow-graph-svg")).to_be_hidden()
            expect(faces.locator("table").first).to_be_visible()
            faces.get_by_role("button", name="graph", exact=True).click()
            expect(faces.locator("svg.apflow-graph-svg")).to_be_visible()
            left = faces.locator("svg g.n[data-task-id=left]")
            expect(left).to_have_attribute("data-status", "in_progress", timeout=30_000)
            expect(leaf).to_have_attribute("data-status", "completed")
            expect(panel).to_be_visible()  # still open after many redraws
            faces.scroll_into_view_if_needed()
            faces.screenshot(path=str(ARTIFACTS / "graph-live-diamond-running.png"))
            # the end: the failed task is red wherever the output now lives (widget or static frame)
            right = page.locator(".apflow-graph svg g.n[data-task-id=right]").first
            expect(right).to_have_attribute("data-status", "failed", timeout=30_000)
            expect(page.locator(".apflow-graph svg g.n[data-task-id=report]").first).to_have_attribute(
                "data-status", "completed", timeout=30_000)
            page.locator(".apflow-graph").first.screenshot(path=str(ARTIFACTS / "graph-live-diamond-final.png"))
        finally:
            ctx.close()


def test_live_graph_face_in_notebook_7(lab):
    """The same live graph in Notebook 7 (served by the same server): it shows, follows the run,
    and a click opens a box's panel."""
    from playwright.sync_api import expect, sync_playwright

    base, token, work = lab
    ARTIFACTS.mkdir(exist_ok=True)
    store = f"sqlite:///{work / 'tasks.db'}"
    write_notebook(work / "nb7.ipynb", [EXECUTORS, f"run = apflow_nb.run(diamond(pause=2.5), store={store!r}, view='graph')"])
    with sync_playwright() as p:
        ctx = browser(p, work.parent / "profile")
        try:
            page = ctx.new_page()
            page.goto(f"{base}/notebooks/nb7.ipynb?token={token}")
            page.locator(".jp-Notebook").wait_for(timeout=60_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status=idle]").wait_for(timeout=60_000)  # kernel ready
            faces = page.locator(".apflow-faces")
            leaf = faces.locator("svg g.n[data-task-id=leaf]")
            accept = page.locator(".jp-Dialog .jp-mod-accept")  # Notebook 7 may ask which kernel: the default
            prompt = page.locator(".jp-InputPrompt").first
            for _attempt in range(3):  # a Run All sent while the kernel connects can be lost: send it again
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_text("Run All Cells", exact=True).click()
                deadline = time.time() + 15
                while time.time() < deadline and "[ ]" in (prompt.text_content() or "[ ]").replace("\xa0", " "):
                    if accept.count() and accept.first.is_visible():
                        accept.first.click()
                    page.wait_for_timeout(200)
                if "[ ]" not in (prompt.text_content() or "[ ]").replace("\xa0", " "):
                    break
            expect(leaf).to_have_attribute("data-status", "in_progress", timeout=60_000)
            faces.locator("label.apflow-node[data-task-id=right]").click()
            expect(faces.locator(".apflow-panel[data-task-id=right]")).to_be_visible()
            expect(leaf).to_have_attribute("data-status", "completed", timeout=30_000)
            faces.scroll_into_view_if_needed()
            faces.screenshot(path=str(ARTIFACTS / "graph-live-notebook7.png"))
            expect(page.locator(".apflow-graph svg g.n[data-task-id=right]").first).to_have_attribute(
                "data-status", "failed", timeout=30_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "graph-notebook7-failure.png"))
            raise
        finally:
            ctx.close()


def test_a_reopened_notebook_shows_the_final_graph_without_a_kernel(lab):
    """A notebook executed elsewhere (nbclient: not trusted here) and opened later: the run's output
    is its static final frame, the graph as SVG, with no widget model needed."""
    from nbclient import NotebookClient
    from playwright.sync_api import expect, sync_playwright

    base, token, work = lab
    store = f"sqlite:///{work / 'tasks.db'}"
    nb = new_notebook(cells=[new_code_cell(EXECUTORS), new_code_cell(
        f"run = apflow_nb.run(diamond(), store={store!r}, view='graph')\ntree = await run")])
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(work)}}).execute()
    nbformat.write(nb, work / "reopened.ipynb")
    with sync_playwright() as p:
        ctx = browser(p, work.parent / "profile")
        try:
            page = ctx.new_page()
            page.goto(f"{base}/lab/tree/reopened.ipynb?token={token}")
            # not trusted here: JupyterLab sanitizes the HTML (no <style>, no <svg>), so the frame shows
            # the same SVG as an image, and nothing of the removed markup leaks out as text
            image = page.locator(".jp-OutputArea img.apflow-graph-img").first
            expect(image).to_be_visible(timeout=60_000)
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())
            svg = base64.b64decode(image.get_attribute("src").split(",", 1)[1]).decode()
            statuses = {task: status for status, task in re.findall(r'data-status="(\w+)" data-task-id="(\w+)"', svg)}
            assert statuses == {"report": "completed", "left": "completed", "right": "failed", "leaf": "completed"}
            output = page.locator(".jp-OutputArea").nth(1)
            assert "dependency)" not in output.inner_text() and "click for details" not in output.inner_text()
            page.locator(".jp-OutputArea").nth(1).screenshot(path=str(ARTIFACTS / "graph-reopened-notebook.png"))
        finally:
            ctx.close()
