"""The views in real browsers: JupyterLab 4 and Notebook 7 (light and dark themes), and an nbconvert
HTML file opened offline, all in Debian's Chromium (never a downloaded browser). Screenshots go to
test-artifacts/ (see each test for what its screenshots show).

- JupyterLab, light: each running task's Cancel sits in its own row, labelled with its key; a click
  shows "cancelling… (grace 3 s)" until the task stops, a second click at the same spot does
  nothing, nothing moves; skipped tasks say why; "Cancel run" goes once the run is over; the output
  becomes the static final frame, which survives save → kernel shut down → reopen.
- JupyterLab, dark: a 300-task run shows its running tasks first, a group line per executor, a
  fixed-height scrolling table, and every text keeps its contrast on the dark background.
- Notebook 7, light then dark: the same cancel-by-row and final frame, contrast in both themes.
- nbconvert --execute, opened from file:// with the network blocked: the final frame, left aligned
  and indented.
- (timing) 10,000 tasks: the page keeps drawing frames and the kernel answers a cell.
"""
from __future__ import annotations

from contextlib import contextmanager

import json
import subprocess
import sys
import time

import pytest

from tests.browser_kit import (
    CONTRAST_JS, FRAME_GAPS_START_JS, FRAME_GAPS_STOP_JS, JupyterServer, chromium, run_all, save, shot,
    wait_idle, write_notebook,
)
from tests.store_helpers import stored_statuses

pytestmark = pytest.mark.browser

EXECUTORS = '''import asyncio, apflow_nb
from apflow_nb import ExecutableTask, executor_register

class Slow(ExecutableTask):
    """`steps` steps of `pause` s with progress; asked to cancel, it takes `linger` s to stop."""
    id = "slow"
    async def execute(self, inputs):
        n = inputs.get("steps", 40)
        for step in range(n):
            if self.cancellation_checker():
                await asyncio.sleep(inputs.get("linger", 0))
                return {"status": "cancelled", "step": step}
            await self.event_queue.put({"type": "progress", "data": {"progress": (step + 1) / n}})
            await asyncio.sleep(inputs.get("pause", 0.25))
        if inputs.get("fail"):
            raise ValueError(f"bad input {inputs['fail']}")
        return {"done": True}

executor_register(Slow)
%load_ext apflow_nb'''

TREE = '''%%tree
- {id: root, name: aggregate_results_executor, dependencies: [p1, p2, p3, bad]}
- {id: p1, name: slow, parent_id: root, inputs: {steps: 20}}
- {id: p2, name: slow, parent_id: root, inputs: {steps: 400, linger: 1.5}}
- {id: p3, name: slow, parent_id: root, inputs: {steps: 400}}
- {id: bad, name: slow, parent_id: root, inputs: {steps: 4, fail: 7}}
- {id: after, name: slow, parent_id: bad, dependencies: [bad]}'''

TICKS = '''import asyncio, apflow_nb
from apflow_nb import ExecutableTask, executor_register

class Tick(ExecutableTask):
    id = "tick"
    async def execute(self, inputs):
        for step in range(10):
            if self.cancellation_checker():
                return {"status": "cancelled"}
            await self.event_queue.put({"type": "progress", "data": {"progress": (step + 1) / 10}})
            await asyncio.sleep(inputs["pause"])
        if inputs.get("fail"):
            raise ValueError(f"tick {inputs['i']} failed")
        return {"i": inputs["i"]}

executor_register(Tick)
tasks = [{"id": "root", "name": "aggregate_results_executor"}]
tasks += [{"id": f"t{i}", "name": "tick", "parent_id": "root",
           "inputs": {"i": i, "pause": PAUSE + (i % 5) * PAUSE / 2, "fail": i in (40, 120)}} for i in range(N)]'''


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = JupyterServer("lab", tmp_path_factory.mktemp("lab")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nb7(tmp_path_factory):
    server = JupyterServer("notebook", tmp_path_factory.mktemp("nb7")).start()
    yield server
    server.stop()


# -- in-page helpers -----------------------------------------------------------------------------
def row(page, key):
    return page.locator(f'.apflow-run tr[data-key="{key}"]').first


def cancel_button(page, key):
    return page.locator(".apflow-cancel-task", has_text=f"Cancel {key}").first


def center(box):
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def box(locator):
    """The element's box once it is visible (a redraw may replace it between a wait and a read)."""
    for _ in range(5):
        locator.wait_for(timeout=10_000)
        found = locator.bounding_box()
        if found is not None:
            return found
    raise AssertionError(f"{locator} has no box")


def assert_beside_its_row(page, key):
    """The Cancel button labelled with ``key`` is at the height of that task's row."""
    button, tr = box(cancel_button(page, key)), box(row(page, key))
    assert tr["y"] - 1 <= center(button)[1] <= tr["y"] + tr["height"] + 1, (key, button, tr)
    assert button["x"] + button["width"] <= tr["x"] + 2  # in the column just left of the row


def wait_status(page, key, status, timeout=30_000):
    page.wait_for_function(f"""() => {{ const r = document.querySelector('.apflow-run tr[data-key="{key}"]');
        return r && r.dataset.status === "{status}"; }}""", timeout=timeout)


def stored_until(work, predicate, timeout=10.0):
    """The store's statuses once ``predicate`` holds for them (state changes are written in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = stored_statuses(f"sqlite:///{work / '.apflow' / 'tasks.db'}")
        if predicate(statuses):
            return statuses
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)


def wait_final(page, timeout=60_000):
    page.locator('.apflow-run[data-final="1"]').first.wait_for(timeout=timeout)


def contrast(page):
    """The lowest WCAG contrast ratio of any text in the first run view."""
    return page.evaluate(CONTRAST_JS, page.query_selector(".apflow-run"))


def wait_progress_moves(page):
    """The head's overall percentage passes through three values strictly between 0 and 100."""
    page.wait_for_function("""() => { const h = document.querySelector('.apflow-head'); if (!h) return false;
        const m = h.innerText.match(/(\\d+)% · /); window.__pcts = window.__pcts || new Set();
        if (m && +m[1] > 0 && +m[1] < 100) window.__pcts.add(m[1]); return window.__pcts.size >= 3; }""",
                           timeout=30_000, polling=100)


def open_notebook(context, server, name):
    page = context.new_page()
    page.goto(server.url(name))
    wait_idle(page, server, name)
    return page


# -- JupyterLab, light: cancel from the row, skipped, final frame, save and reopen -------------------
def cancel_p2_from_its_row(page, work, shot_name):
    """Click p2's Cancel: "cancelling…" until it stops; a second click there does nothing; p3 stays put."""
    for key in ("p1", "p2", "p3"):
        cancel_button(page, key).wait_for(timeout=30_000)
        assert_beside_its_row(page, key)
    p3_before = box(cancel_button(page, "p3"))
    x, y = center(box(cancel_button(page, "p2")))
    page.mouse.click(x, y)
    page.wait_for_function("""() => document.querySelector('.apflow-run tr[data-key="p2"]')
        .innerText.includes('cancelling… (grace 3 s)')""", timeout=10_000)
    assert cancel_button(page, "p2").count() == 0 and page.locator(".apflow-cancel-task", has_text="cancelling…").is_disabled()
    shot(page, shot_name)
    page.wait_for_timeout(700)  # the second click, 0.7 s later at the same spot
    page.mouse.click(x, y)
    wait_status(page, "p2", "cancelled")
    statuses = stored_until(work, lambda s: s["p2"] == "cancelled")  # written to the store within 50 ms
    assert statuses["p3"] == "in_progress"  # the right task was cancelled, and only it
    assert row(page, "p3").get_attribute("data-status") == "in_progress"
    wait_status(page, "p1", "completed")
    assert box(cancel_button(page, "p3")) == p3_before  # nothing moved under the mouse


@contextmanager
def running_cancel_notebook(server, name: str, profile: str):
    """The cancel notebook (executors, the tree, awaiting it) written, opened in light theme and run: (context, page)."""
    write_notebook(server.work / name, [EXECUTORS, TREE, "tree = await _run"])
    server.theme("light")
    with chromium(server.tmp / profile) as context:
        page = open_notebook(context, server, name)
        run_all(page)
        yield context, page


def test_lab_light_cancel_from_the_row_and_the_final_frame_survives_reopening(lab):
    work = lab.work
    with running_cancel_notebook(lab, "cancel.ipynb", "profile-cancel") as (context, page):
        wait_progress_moves(page)
        cancel_p2_from_its_row(page, work, "lab-light-cancelling.png")
        page.wait_for_function("""() => document.querySelector('.apflow-run tr[data-key="after"]')
            .innerText.includes("skipped: upstream 'bad' failed")""", timeout=30_000)
        counts = page.locator(".apflow-counts").first.inner_text()
        assert "1 failed" in counts and "2 skipped" in counts and "1 cancelled" in counts, counts
        page.get_by_role("button", name="Cancel run").click()
        wait_final(page)
        output = page.locator(".jp-OutputArea-output", has=page.locator(".apflow-run")).first
        assert output.locator(".jupyter-widgets").count() == 0  # a static frame: no widget left
        assert page.get_by_role("button", name="Cancel run").count() == 0
        assert contrast(page)["ratio"] >= 3.0, contrast(page)
        shot(page, "lab-light-final.png")
        save(page)
        page.close()
        assert lab.shutdown_kernels() >= 1
        page = context.new_page()  # reopened, no kernel running
        page.goto(lab.url("cancel.ipynb"))
        wait_final(page)
        frame = page.locator(".apflow-run").first.inner_text()
        for text in ("p1", "p2", "p3", "bad", "skipped: upstream 'bad' failed", "cancelled", "ValueError: bad input 7"):
            assert text in frame, text
        assert "model not found" not in page.locator("body").inner_text()
        shot(page, "lab-light-reopened.png")
    saved = json.loads((work / "cancel.ipynb").read_text())
    assert "application/vnd.jupyter.widget-view+json" not in json.dumps(saved["cells"])


# -- JupyterLab, dark: a big run ------------------------------------------------------------------
def test_lab_dark_big_run_running_first_groups_scrolling_and_contrast(lab):
    write_notebook(lab.work / "big.ipynb", ["N, PAUSE = 300, 0.03\n" + TICKS,
                                            "run = apflow_nb.run(tasks, max_concurrency=16)", "1 + 1"])
    lab.theme("dark")
    with chromium(lab.tmp / "profile-big") as context:
        page = open_notebook(context, lab, "big.ipynb")
        assert page.evaluate("document.body.dataset.jpThemeLight") == "false"
        page.evaluate(FRAME_GAPS_START_JS)
        run_all(page)
        page.wait_for_function("""() => { const g = document.querySelector('.apflow-group[data-group="tick"]');
            return g && /tick \\d+\\/300 · 2 failed · \\d+ running/.test(g.innerText); }""", timeout=60_000)
        gaps = page.evaluate(FRAME_GAPS_STOP_JS)
        print(f"\n300 tasks, frame gaps while running (ms): {gaps}")
        layout = page.evaluate("""() => { const t = document.querySelector('.apflow-table');
            const rows = [...t.querySelectorAll('tr')].slice(1);
            const failedAt = rows.findIndex(r => /^failed · /.test(r.innerText));
            const running = rows.map((r, i) => [i, r.dataset.status]).filter(([i, s]) => s === 'in_progress');
            let box = t.parentElement; while (box && getComputedStyle(box).overflowY !== 'auto') box = box.parentElement;
            return {first: rows[0].innerText, failedAt, lastRunning: Math.max(...running.map(([i]) => i)),
                    running: running.length, client: box.clientHeight, scroll: box.scrollHeight}; }""")
        assert layout["first"].startswith("running · ") and layout["running"] >= 1, layout
        assert layout["lastRunning"] < layout["failedAt"], layout  # running truly first, then failed
        assert layout["client"] <= 16 * 24 and layout["scroll"] > layout["client"], layout  # fixed height, scrolls
        assert contrast(page)["ratio"] >= 3.0, contrast(page)
        shot(page, "lab-dark-300-running.png")
        wait_final(page, timeout=120_000)
        assert contrast(page)["ratio"] >= 3.0, contrast(page)
        group = page.locator('.apflow-group[data-group="tick"]').first.inner_text()
        assert "tick 300/300 · 2 failed" in group, group
        shot(page, "lab-dark-300-final.png")


@pytest.mark.timing
def test_lab_ten_thousand_tasks_keep_the_page_and_the_kernel_responsive(lab):
    write_notebook(lab.work / "huge.ipynb", ["N, PAUSE = 10_000, 0.03\n" + TICKS,
                                             "run = apflow_nb.run(tasks, max_concurrency=50)", "1 + 1"])
    lab.theme("light")
    with chromium(lab.tmp / "profile-huge") as context:
        page = open_notebook(context, lab, "huge.ipynb")
        run_all(page)
        page.locator(".apflow-table").first.wait_for(timeout=60_000)
        page.evaluate(FRAME_GAPS_START_JS)
        page.wait_for_timeout(6000)  # the measurement window: frames drawn while 10,000 tasks run
        gaps = page.evaluate(FRAME_GAPS_STOP_JS)
        print(f"\n10,000 tasks, frame gaps while running (ms): {gaps}")
        group = page.locator('.apflow-group[data-group="tick"]').first.inner_text()
        assert "/10000" in group and "2 failed" in group, group
        shot(page, "lab-light-10000-running.png")
        started = time.monotonic()
        page.locator(".jp-Cell").last.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")  # a new cell below, as a user would
        page.keyboard.press("Enter")  # edit it
        page.keyboard.type("6 * 7")
        page.keyboard.press("Shift+Enter")
        page.get_by_text("42", exact=True).first.wait_for(timeout=30_000)
        answered = time.monotonic() - started
        print(f"a new cell answered in {answered:.2f} s while the run went on")
        page.get_by_role("button", name="Cancel run").click()
        wait_final(page, timeout=60_000)
    assert gaps["median"] <= 50 and gaps["p95"] <= 500, gaps
    assert answered < 10, answered


# -- Notebook 7, light then dark ------------------------------------------------------------------
def switch_theme(page, name):
    page.get_by_role("menuitem", name="Settings", exact=True).click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{'true' if 'Light' in name else 'false'}'")


def test_notebook7_cancel_from_the_row_and_final_frame_in_light_and_dark(nb7):
    work = nb7.work
    with running_cancel_notebook(nb7, "nb7.ipynb", "profile") as (_, page):
        cancel_p2_from_its_row(page, work, "nb7-light-cancelling.png")
        assert contrast(page)["ratio"] >= 3.0, contrast(page)
        shot(page, "nb7-light-live.png")
        page.get_by_role("button", name="Cancel run").click()
        wait_final(page)
        assert page.locator(".jp-OutputArea-output .apflow-run .jupyter-widgets").count() == 0
        light = contrast(page)
        shot(page, "nb7-light-final.png")
        switch_theme(page, "JupyterLab Dark")
        dark = contrast(page)
        shot(page, "nb7-dark-final.png")
    assert light["ratio"] >= 3.0 and dark["ratio"] >= 3.0, (light, dark)


# -- nbconvert, offline ---------------------------------------------------------------------------
def test_nbconvert_html_offline_shows_the_final_frame_left_aligned_and_indented(tmp_path):
    quick = TREE.replace("steps: 400, linger: 1.5", "steps: 3").replace("steps: 400", "steps: 3")
    quick = quick.replace("steps: 20", "steps: 3")
    path = write_notebook(tmp_path / "export.ipynb", [EXECUTORS.replace("0.25", "0.02"), quick, "tree = await _run"])
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", str(path)],
                   check=True, cwd=tmp_path, capture_output=True, timeout=180)
    html = tmp_path / "export.html"
    with chromium(tmp_path / "profile") as context:
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                      else route.abort())  # no network: CDNs (require.js, widgets) unreachable
        page = context.new_page()
        page.goto(html.as_uri())
        wait_final(page, timeout=20_000)
        geometry = page.evaluate("""() => { const run = document.querySelector('.apflow-run');
            const table = run.querySelector('.apflow-table');
            const cell = (k) => run.querySelector(`tr[data-key="${k}"] td`);
            const textX = (td) => { const r = document.createRange(); r.selectNodeContents(td); return r.getBoundingClientRect().x; };
            return {runX: run.getBoundingClientRect().x, tableX: table.getBoundingClientRect().x,
                    rootX: textX(cell('root')), childX: textX(cell('p1')), grandchildX: textX(cell('after')),
                    align: getComputedStyle(cell('p1')).textAlign, text: run.innerText}; }""")
        shot(page, "nbconvert-offline.png")
    assert abs(geometry["tableX"] - geometry["runX"]) <= 2, geometry  # left aligned, not centred
    assert geometry["align"] == "left" and geometry["rootX"] < geometry["childX"] < geometry["grandchildX"], geometry
    for text in ("p1", "after", "skipped: upstream 'bad' failed", "ValueError: bad input 7", "completed"):
        assert text in geometry["text"], text
