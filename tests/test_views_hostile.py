"""Every value that reaches a view's HTML is escaped, in text and in attributes, and unknown statuses
become "unknown": hostile values in every field (ids, keys, names, executors, statuses, errors,
messages, the run's own error) are rendered by every HTML drawer and loaded into real Chromium, where
no script runs and no element of theirs exists. Both from events and from a stored tree."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from apflow_nb import TaskManager, create_session
from apflow_nb.core.events import Event, EventType
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.frame import build_frame
from apflow_nb.notebook.views.html import frame_html
from apflow_nb.notebook.views.live import LiveView
from tests.browser_kit import chromium

pytestmark = pytest.mark.browser

HOSTILE = [
    '"><img src=x onerror=document.title=1>',
    "'><script>window.__pwned=1</script>",
    "<svg onload=window.__pwned=2>",
    "</td></tr></table><iframe src=javascript:window.__pwned=3></iframe>",
    '" onmouseover="window.__pwned=4" x="',
    "</summary></details><details open ontoggle=window.__pwned=5>",
    "<style>*{display:none}</style>",
]
SENTINEL = '<img id="sentinel" src="data:," onerror="window.__done=1" onload="window.__done=1">'


def hostile_state() -> RunState:
    """A run whose every field holds hostile text, built from events."""
    root = HOSTILE[0]
    state = RunState(root_id=root)
    tasks = [{"id": root, "key": HOSTILE[1], "name": HOSTILE[2], "parent_id": None, "depth": 0,
              "status": "pending", "executor": HOSTILE[3]}]
    tasks += [{"id": f"{i}{h}", "key": h, "name": h, "parent_id": root, "depth": 1, "status": "pending",
               "executor": HOSTILE[(i + 1) % len(HOSTILE)]} for i, h in enumerate(HOSTILE)]
    state.apply(Event(EventType.TREE_STARTED, root, root, "in_progress", data={"tasks": tasks}))
    for i, h in enumerate(HOSTILE):
        tid = f"{i}{h}"
        state.apply(Event(EventType.TASK_STARTED, tid, root, "in_progress", timestamp=1.0))
        if i % 4 == 0:
            state.apply(Event(EventType.TASK_FAILED, tid, root, "failed", data={"error": f"{h}\n\nTraceback {h}"}))
        elif i % 4 == 1:
            state.apply(Event(EventType.TASK_CANCELLED, tid, root, "cancelled", data={"message": h}))
        elif i % 4 == 2:
            state.apply(Event(EventType.TASK_COMPLETED, tid, root, h))  # a hostile status: "unknown"
        else:
            state.apply(Event(EventType.EXECUTOR, tid, root, "in_progress", data={"type": "blocked", "message": h}))
    state.apply(Event(EventType.TASK_FAILED, root, root, "failed",
                      data={"error": HOSTILE[4], "error_type": "DependencyFailed", "upstream": HOSTILE[5]}))
    state.error = HOSTILE[6]
    return state


async def stored_hostile_state(db_url: str) -> RunState:
    """A stored tree with hostile values, written by another (hostile) writer of a shared store."""
    db = create_session(db_url)
    manager = TaskManager(db)
    node = await manager.task_repository.create_task_tree_from_array(
        [{"id": "root", "name": "aggregate_results_executor"}]
        + [{"id": f"c{i}", "name": "aggregate_results_executor", "parent_id": "root"} for i in range(len(HOSTILE))])
    with db.get_bind().begin() as conn:
        for i, h in enumerate(HOSTILE):
            conn.execute(text("update apflow_tasks set status=:s, name=:h, key=:h, error=:h where id=:id"),
                         {"s": h, "h": h, "id": f"c{i}"})
    db.close()
    repo = TaskManager(create_session(db_url)).task_repository
    return RunState.from_tree(repo.get_task_tree_sync(node.task.id))


def pages(state: RunState) -> dict[str, str]:
    """Everything an HTML drawer would put on a page for this state."""
    view = LiveView(state, mode="widget")
    view.draw()
    d = view.drawer
    widget_html = d.head.value + d.table.value + d.errors.value
    return {"static": frame_html(build_frame(state)), "widget": widget_html,
            "mimebundle": view._repr_mimebundle_()["text/html"]}


def check_in_chromium(documents: dict[str, str], tmp_path) -> None:
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        for name, html in documents.items():
            for h in HOSTILE[:3]:
                assert h not in html, (name, h)  # never raw in the markup
            page.set_content(f"<html><head><title>0</title></head><body>{html}{SENTINEL}</body></html>")
            page.wait_for_function("window.__done === 1")
            found = page.evaluate("""() => ({
                title: document.title, pwned: window.__pwned || 0,
                elements: document.querySelectorAll('script, iframe, svg, style, img:not(#sentinel), details[open]').length,
                handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(
                    a => a.name.startsWith('on') && e.id !== 'sentinel')).length,
                text: document.body.innerText})""")
            assert (found["title"], found["pwned"], found["elements"], found["handlers"]) == ("0", 0, 0, 0), (name, found)
            assert HOSTILE[0] in found["text"] or "unknown" in found["text"], name  # shown as text


def test_hostile_values_from_events_are_inert_in_every_drawer(tmp_path):
    state = hostile_state()
    assert state.counts["unknown"] == 2 and state.counts["skipped"] == 1
    documents = pages(state)
    assert 'data-status="unknown"' in documents["static"]
    check_in_chromium(documents, tmp_path)


def test_hostile_values_from_a_shared_store_are_inert(tmp_path, db_url):
    state = asyncio.run(stored_hostile_state(db_url))
    assert state.counts["unknown"] == len(HOSTILE)  # every hostile status became "unknown"
    check_in_chromium(pages(state), tmp_path)
