"""Hostile values for HTML-escaping tests: strings that run a script if any view puts them into HTML unescaped,
a run stored with them in every field, and a check in headless Chromium that no script ran.

    url = f"sqlite:///{tmp_path / 'h.db'}"
    root_id = store_hostile_run(url)
    assert not script_ran(some_view_html)

Each payload marks ``window.__pwned`` (and the document title) when it runs. Never downloads a browser: it drives
Debian's ``/usr/bin/chromium`` with playwright (``playwright install`` does not work here).
"""
from __future__ import annotations

import os
import tempfile
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MARK = "window.__pwned=1;document.title=document.title+1"  # no quotes: it fits in any attribute

# Each one escapes a different context: element text, a double- or single-quoted attribute, an unquoted
# attribute, <textarea>/<title>/<style>/<script> raw text, an HTML comment, SVG. All run with no user action.
HOSTILE: list[str] = [
    f'"><img src=x onerror="{MARK}">',
    f"'><img src=x onerror='{MARK}'>",
    f"<script>{MARK}</script>",
    f"x onerror={MARK} src=y",
    f"</textarea></title></style></script><svg onload=\"{MARK}\">",
    f"--><img src=x onerror=\"{MARK}\"><!--",
    f"<details open ontoggle=\"{MARK}\">",
    "<iframe srcdoc=\"<script>parent.__pwned=1</script>\"></iframe>",
    f"<svg><script>{MARK}</script></svg>",
    f"<img src=x onerror=\"{MARK}\">\u2028{{{{7*7}}}}${{7*7}}",
]


def hostile(i: int) -> str:
    """The i-th hostile string (cycled)."""
    return HOSTILE[i % len(HOSTILE)]


def store_hostile_run(url: str) -> str:
    """Store one run (a root and one child per payload) whose every field holds hostile text; return its root id.

    Fields: id, key, name, status, error, inputs (keys and values), result (keys and values), user_id, and the
    schemas' method. Written through the repository, then status/error/result set by SQL as another writer of a
    shared store could.
    """
    from sqlalchemy import update

    from apflow_nb.core.storage.session import create_session
    from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository

    db = create_session(url)
    try:
        repo = TaskRepository(db)
        root_id = "root" + hostile(0)
        specs: list[dict[str, Any]] = [dict(id=root_id, key=root_id, name=hostile(1), user_id=hostile(2),
                                            inputs={hostile(3): hostile(4)})]
        for i, payload in enumerate(HOSTILE):
            specs.append(dict(id=f"{i}{payload}", key=f"{i}{payload}", name=payload, user_id=hostile(i + 1),
                              parent_id=root_id, inputs={payload: hostile(i + 2), "n": [hostile(i + 3)]}))
        tasks = repo.create_tasks(specs)
        model = repo.model
        for i, task in enumerate(tasks):
            db.execute(update(model).where(model.id == task.id).values(
                status=hostile(i), error=hostile(i + 1) + "\n" + hostile(i + 2),
                result={hostile(i + 3): hostile(i + 4), "error": hostile(i + 5)}, progress=0.5))
        db.commit()
        return root_id
    finally:
        db.close()


def script_ran(html: str, *, timeout_ms: int = 10_000) -> bool:
    """Load ``html`` (a fragment, as a notebook shows it) in headless Chromium; True when any payload ran."""
    return scripts_ran([html], timeout_ms=timeout_ms)[0]


def scripts_ran(fragments: list[str], *, timeout_ms: int = 10_000) -> list[bool]:
    """:func:`script_ran` for several fragments, each in a fresh page of one browser.

    A page is settled when its load event fired and two animation frames and a macrotask passed, so
    error/toggle/load handlers the parser queued have had their turn.
    """
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "the hostile-HTML test needs Debian's chromium: apt-get install chromium"
    out = []
    with tempfile.TemporaryDirectory(prefix="apflow-chromium-") as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            for html in fragments:
                page = browser.new_page()
                page.set_content("<!doctype html><html><head><meta charset='utf-8'><title>clean</title></head>"
                                 f"<body><div id='output'>{html}</div></body></html>",
                                 wait_until="load", timeout=timeout_ms)
                page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame("
                              "() => setTimeout(done, 0))))")
                ran = page.evaluate("() => Boolean(window.__pwned) || document.title !== 'clean'")
                out.append(bool(ran))
                page.close()
        finally:
            browser.close()
    return out
