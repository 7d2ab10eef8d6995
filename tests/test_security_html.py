"""Hostile values in every stored field render as text, never as script: the magics' tables and the html view,
checked in headless Chromium (tests/hostile.py)."""
from __future__ import annotations

import pytest

from tests.hostile import HOSTILE, hostile, scripts_ran, store_hostile_run

pytestmark = pytest.mark.browser


@pytest.fixture
def hostile_store(tmp_path):
    from apflow_nb.core.storage.session import dispose_engines

    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    root_id = store_hostile_run(url)
    yield url, root_id
    dispose_engines()


def test_every_payload_runs_when_left_unescaped():
    """The check is not vacuous: each payload runs in the context it was written for."""
    contexts = [lambda p: p, lambda p: f'<div title="{p}"></div>', lambda p: f"<div title='{p}'></div>",
                lambda p: f"<img class={p}>", lambda p: f"<textarea>{p}</textarea>", lambda p: f"<!-- {p} -->"]
    ran = scripts_ran(["".join(c(p) for c in contexts) for p in HOSTILE] + ["<b>plain</b>"])
    assert all(ran[:-1]), [p for p, r in zip(HOSTILE, ran) if not r]
    assert ran[-1] is False


def test_the_magic_tables_escape_every_value_and_show_unknown_statuses(hostile_store):
    from types import SimpleNamespace

    from apflow_nb.notebook._magic_tables import Table, history_table, status_label, trial_outcome
    from apflow_nb.notebook import _magic_apflow as sub

    url, root_id = hostile_store
    frame = sub.history_command(["--store", url])  # %apflow history --store URL
    assert len(frame) == len(HOSTILE) + 1 and set(frame["status"]) == {"unknown"}
    tree = sub.history_command(["--store", url, "--root", root_id])
    node = SimpleNamespace(task=SimpleNamespace(status=hostile(0), result={hostile(1): hostile(2)},
                                                error=hostile(3)))
    trial = trial_outcome(hostile(4), node)
    table = Table([hostile(5), hostile(6)], [[hostile(7), hostile(8)], [hostile(9), {hostile(0): hostile(1)}]],
                  title=hostile(2))
    assert status_label(hostile(0)) == "unknown" and status_label("in_progress") == "in_progress"
    assert trial.rows[0][1] == "unknown"
    assert history_table(frame.iloc[:0]).empty
    pages = [frame._repr_html_(), tree._repr_html_(), trial._repr_html_(), table._repr_html_()]
    assert all(p and "&lt;" in p for p in pages)
    assert scripts_ran(pages) == [False] * len(pages)


def test_the_html_view_and_apflow_show_escape_every_value(hostile_store):
    from apflow_nb.core.storage.session import create_session
    from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository
    from apflow_nb.notebook import _magic_apflow as sub
    from apflow_nb.notebook.progress import RunState
    from apflow_nb.notebook.views.html import render_html

    url, root_id = hostile_store
    db = create_session(url)
    try:
        node = TaskRepository(db).get_task_tree_sync(root_id)
    finally:
        db.close()
    shown = sub.show_command([root_id, "--store", url])  # %apflow show ROOT_ID --store URL
    bundle = shown._repr_mimebundle_()  # (data, metadata) or data, as IPython accepts both
    pages = [render_html(RunState.from_tree(node)), (bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"]]
    assert all("&lt;" in p for p in pages)
    assert scripts_ran(pages) == [False, False]
