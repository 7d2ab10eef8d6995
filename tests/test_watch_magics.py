"""``%apflow watch`` and ``%apflow cancel`` in a real IPython shell, on a run another process executes."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.terminal.interactiveshell import TerminalInteractiveShell
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output

from apflow_nb.core.storage.reading import dispose_readers
from apflow_nb.core.storage.session import dispose_engines
from tests.owners import Owner


@pytest.fixture(scope="module")
def ip():
    shell = start_ipython() or TerminalInteractiveShell.instance()  # the one test shell, whoever started it
    shell.run_line_magic("load_ext", "apflow_nb")
    return shell


@pytest.fixture(autouse=True)
def store(ip, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("APFLOW_NB_DATABASE_URL", url)
    monkeypatch.setenv("APFLOW_NB_DISPLAY", "text")
    yield url
    ip.user_ns.pop("_watch", None)
    dispose_readers()
    dispose_engines()


async def test_apflow_watch_follows_a_run_of_another_process_in_a_running_loop(ip, store, tmp_path):
    owner = Owner(store, "steps", tmp_path)
    try:
        with capture_output() as out:
            source = "%apflow watch"  # the newest running tree of the kernel's store
            result = await ip.run_cell_async(source, transformed_cell=ip.transform_cell(source))
        assert result.success, result.error_in_exec
        handle = ip.user_ns["_watch"]
        assert handle.root_id == owner.root_id and not handle.done()  # it follows the run in the background
        owner.go()
        with capture_output() as out:
            assert await handle == "completed"
        assert "completed · 4/4 done" in out.stdout
        owner.finish()
    finally:
        owner.stop()


async def test_apflow_cancel_reaches_the_process_that_runs_the_tree(ip, store, tmp_path):
    owner = Owner(store, "slow", tmp_path)
    try:
        note = ip.run_line_magic("apflow", f"cancel {owner.root_id} --store {store}")
        assert f"cancel requested from process {owner.proc.pid} on" in str(note)
        assert owner.finish() == "cancelled"
    finally:
        owner.stop()


def test_apflow_watch_of_a_finished_run_shows_its_final_frame_and_bad_input_is_a_usage_error(ip, store, tmp_path):
    owner = Owner(store, "fails", tmp_path)
    owner.go()
    assert owner.finish() == "failed"
    with capture_output() as out:
        result = ip.run_cell(f"%apflow watch {owner.root_id}")  # a terminal IPython: no loop runs
    assert result.success and ip.user_ns["_watch"].status == "failed"
    assert out.stdout.splitlines()[-1].startswith("apflow [####################] failed · 3/3 done (2 failed)")
    with pytest.raises(UsageError, match="%apflow watch: NoRunningTreeError: no tree is running"):
        ip.run_line_magic("apflow", "watch")
    with pytest.raises(UsageError, match="%apflow watch: TaskNotFoundError: no task with id 'nope'"):
        ip.run_line_magic("apflow", "watch nope")
