"""Task failures' tracebacks start at the user's code: apflow_nb's and asyncio's frames are hidden,
file names go through the pluggable namer (the notebook installs one naming cells ``Cell In[n]``).
Through real runs (TaskManager on a SQLite file) and a real IPython shell."""
from __future__ import annotations

import asyncio
import textwrap

import pytest

from apflow_nb import executor_register
from apflow_nb.core.tracebacks import format_user_traceback, is_hidden, set_frame_namer
from apflow_nb.core.types import TaskTreeNode


@pytest.fixture(autouse=True)
def _no_namer():
    previous = set_frame_namer(None)
    yield
    set_frame_namer(previous)


def parse_int(text):
    return int(text)


def test_frames_of_apflow_nb_and_asyncio_are_hidden_and_chains_kept():
    from apflow_nb.core import types

    async def inner():
        await asyncio.sleep(0)
        try:
            parse_int("x")
        except ValueError as exc:
            raise RuntimeError("could not parse") from exc

    try:
        asyncio.run(inner())
    except RuntimeError as exc:
        text = format_user_traceback(exc)
    assert 'parse_int("x")' in text and "return int(text)" in text
    assert "ValueError: invalid literal for int()" in text and text.endswith("RuntimeError: could not parse")
    assert "The above exception was the direct cause of the following exception" in text
    assert "/asyncio/" not in text and "base_events.py" not in text  # the loop's own frames are gone
    assert is_hidden(types.__file__) and is_hidden(asyncio.__file__) and not is_hidden(__file__)


def test_a_namer_names_the_user_files_and_a_broken_namer_changes_nothing():
    try:
        parse_int("y")
    except ValueError as exc:
        error = exc
    set_frame_namer(lambda filename: "Cell In[7]" if filename == __file__ else None)
    assert "  Cell In[7], line " in format_user_traceback(error) and f'File "{__file__}"' not in format_user_traceback(error)
    set_frame_namer(lambda filename: 1 / 0)
    assert f'File "{__file__}", line' in format_user_traceback(error)


async def test_a_failed_task_stores_the_users_frames_only(manager):
    @executor_register
    async def explode(n: int = 1) -> dict:
        return {"v": parse_int("not a number")}

    task = await manager.task_repository.create_task(name="explode", inputs={})
    node = await manager.distribute_task_tree(TaskTreeNode(task))
    error = node.task.error
    assert error.startswith("ValueError: invalid literal for int() with base 10: 'not a number'")
    tb = node.task.result["traceback"]
    assert tb.startswith("Traceback (most recent call last):")
    assert 'return {"v": parse_int("not a number")}' in tb and "return int(text)" in tb
    for ours in ("task_manager.py", "_BlockWatch", "coro.throw", "executors/function.py", "asyncio"):
        assert ours not in tb, ours
    assert tb in error  # the stored error is the message, then this traceback


def test_in_ipython_cells_are_named_as_ipython_names_them(tmp_path):
    """A task defined in a cell fails: its traceback says ``Cell In[n], line k`` (a real shell's compiler)."""
    import subprocess
    import sys

    code = textwrap.dedent(f'''
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_cell("import apflow_nb", store_history=True)
        shell.run_cell("""@apflow_nb.executor_register
        def boom(x: int = 0) -> dict:
            y = x + 1
            raise KeyError(y)""", store_history=True)
        shell.run_cell("run = apflow_nb.run([{{'id': 'b', 'name': 'boom'}}], store='sqlite:///{tmp_path / 'c.db'}', display=False)\\nrun.result()", store_history=True)
        print("TB<<" + shell.user_ns["run"].state.rows["b"].error + ">>")
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    tb = out.stdout.split("TB<<")[1].split(">>")[0]
    assert "  Cell In[2], line 4, in boom\n    raise KeyError(y)" in tb, tb
    assert "ipykernel" not in tb and "<ipython-input" not in tb and "apflow_nb" not in tb
