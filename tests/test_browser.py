"""One real-browser test: JupyterLab on a free loopback port, Debian's Chromium driven by playwright.

It runs a notebook whose tree takes several seconds, watches the progress bar pass through
intermediate values, clicks Cancel, sees the run end cancelled and saves a screenshot to
test-artifacts/browser-cancel.png. Never downloads a browser: it uses /usr/bin/chromium.
"""
from __future__ import annotations

import json
import os
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
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

CELL_1 = '''import asyncio
import apflow_nb
from apflow_nb import ExecutableTask, executor_register

class Slow(ExecutableTask):
    id = "slow"

    async def execute(self, inputs):
        for step in range(60):
            if self.cancellation_checker():
                return {"status": "cancelled", "step": step}
            await self.event_queue.put({"type": "progress", "data": {"progress": (step + 1) / 60}})
            await asyncio.sleep(0.25)
        return {"done": True}

executor_register(Slow)'''

CELL_2 = '''tasks = [{"id": "root", "name": "aggregate_results_executor", "dependencies": ["a", "b", "c"]}]
tasks += [{"id": k, "name": "slow", "parent_id": "root"} for k in "abc"]
run = apflow_nb.run(tasks, store=STORE)'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server in tmp_path with its own config and runtime dirs."""
    assert os.path.exists(CHROMIUM), "the browser test needs Debian's chromium: apt-get install chromium"
    config, runtime, work = tmp_path / "config", tmp_path / "runtime", tmp_path / "work"
    for d in (config / "labconfig", runtime, work):
        d.mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    nb = new_notebook(cells=[new_code_cell(f"STORE = 'sqlite:///{work / 'browser.db'}'\n" + CELL_1),
                             new_code_cell(CELL_2)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, work / "cancel.ipynb")
    port, token = free_port(), "apflow-test-token"
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


def test_live_progress_and_cancel_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    base, token, work = lab
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    profile = work.parent / "chromium-profile"
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            page = browser.new_page()
            page.goto(f"{base}/lab/tree/cancel.ipynb?token={token}")
            page.get_by_text("| Idle").first.wait_for(timeout=60_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_text("Run All Cells", exact=True).click()
            bar = page.locator(".jupyter-widgets.widget-hprogress .progress-bar").first
            bar.wait_for(timeout=60_000)
            widths = []
            deadline = time.time() + 30
            while time.time() < deadline:
                style = bar.get_attribute("style") or ""
                if "width" in style:
                    widths.append(float(style.split("width:")[1].split("%")[0]))
                if any(0 < w < 100 for w in widths) and len(set(widths)) >= 3:
                    break
                time.sleep(0.3)
            assert any(0 < w < 100 for w in widths), widths
            assert len(set(widths)) >= 3, f"the bar did not move: {widths}"
            page.get_by_role("button", name="Cancel run").click()
            page.locator(".apflow-run").get_by_text("cancelled").first.wait_for(timeout=20_000)
            page.screenshot(path=str(artifacts / "browser-cancel.png"), full_page=True)
            final = float((bar.get_attribute("style") or "width:0%").split("width:")[1].split("%")[0])
            assert final < 100
        finally:
            browser.close()
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{work / 'browser.db'}")
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("select id, status from apflow_tasks")).all())
    engine.dispose()
    assert statuses == {"root": "cancelled", "a": "cancelled", "b": "cancelled", "c": "cancelled"}
