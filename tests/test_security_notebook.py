"""No password reaches a notebook: every failing path with a password store URL, run in a real IPython shell
and in a real kernel (nbclient), whose saved .ipynb is then searched for the password in every spelling.

No cell holds the password: the URLs are built in the kernel from environment variables, as a user's would be.
"""
from __future__ import annotations

import json
import os
import textwrap
import traceback
from urllib.parse import quote

import nbformat
import pytest
from IPython.terminal.interactiveshell import TerminalInteractiveShell
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from sqlalchemy.engine import make_url

from tests.kernelspec import install_test_kernel

pytestmark = pytest.mark.postgres

SETUP = '''
import os, apflow_nb
good = os.environ["APFLOW_TEST_GOOD_URL"]
pw = good.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]          # percent-encoded, as in the URL
rest = good.split("@", 1)[1]
wrong = good.replace(":" + pw + "@", ":" + pw + "WRONG@")
down = os.environ["APFLOW_NB_DATABASE_URL"]                                # the password, and no server
from urllib.parse import unquote
unparsable = "apflow:" + unquote(pw) + "@127.0.0.1/apflow_test"
unknown_driver = "nosuchdb://apflow:" + pw + "@" + rest
bad_port = "postgresql://apflow:" + pw + "@127.0.0.1:notaport/apflow_test"
big_port = "postgresql://apflow:" + pw + "@127.0.0.1:99999/apflow_test"
'''

# (cell source, must it fail?)
CELLS = [
    ("%%tree\n- {name: aggregate_results_executor}", True),     # the kernel's store (from the environment) is down
    ("%apflow store {wrong}", True),
    ("%apflow store {unparsable}", True),
    ("%apflow store {unknown_driver}", True),
    ("%apflow store {bad_port}", True),
    ("%apflow store {big_port}", True),
    ("%%tree --store {wrong}\n- {name: aggregate_results_executor}", True),
    ("%apflow show nope --store {wrong}", True),
    ("%apflow cancel nope --store {down}", True),
    ("%apflow history --store {wrong}", True),
    ("apflow_nb.history(wrong)", True),
    ("apflow_nb.history(unparsable)", True),
    ("apflow_nb.run([{'name': 'aggregate_results_executor'}], store=down)", True),
    ("apflow_nb.core.storage.session.get_engine(unknown_driver)", True),
    ("%apflow store {good}", False),
    ("print(os.environ['APFLOW_NB_DATABASE_URL'] == down, apflow_nb.core.storage.session.default_database_url() == good)",
     False),
    ("%apflow store", False),
    ("%apflow store {wrong}", True),                              # a failed switch keeps the good store
    ("%%tree --name r\n- {name: aggregate_results_executor}", False),
    ("print((await r).task.status); r", False),
    ("apflow_nb.history()", False),
    ("%apflow history", False),
]


def _forbidden(password: str) -> list[str]:
    out = []
    for pw in (password, password + "WRONG"):
        out += [pw, quote(pw, safe=""), quote(pw), quote(pw, safe="@:")]
    return sorted(set(out), key=len, reverse=True)


@pytest.fixture
def password_env(pg_url, monkeypatch):
    password = make_url(pg_url).password
    assert password and len(password) > 8
    down = pg_url.replace("@127.0.0.1:" + str(make_url(pg_url).port) + "/", "@127.0.0.1:1/")
    assert down != pg_url
    monkeypatch.setenv("APFLOW_TEST_GOOD_URL", pg_url)
    monkeypatch.setenv("APFLOW_NB_DATABASE_URL", down)
    monkeypatch.setenv("APFLOW_NB_DISPLAY", "html")
    return password


def _everything(result, out) -> str:
    text = out.stdout + out.stderr + "".join(json.dumps(o.data) for o in out.outputs)
    error = result.error_in_exec or result.error_before_exec
    if error is not None:
        text += "".join(traceback.format_exception(type(error), error, error.__traceback__)) + str(error)
    return text


def test_in_an_ipython_shell_no_output_shows_the_password(password_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ip = start_ipython() or TerminalInteractiveShell.instance()  # started once per session, by any module
    ip.run_line_magic("load_ext", "apflow_nb")
    ip.run_cell(SETUP)
    environ = dict(os.environ)
    shown = []
    for source, fails in CELLS:
        if "await" in source:
            continue  # no loop here: a terminal %%tree has run its tree to the end already
        with capture_output() as out:
            result = ip.run_cell(source)
        assert result.success is not fails, (source, result.error_in_exec)
        shown.append(_everything(result, out))
    text = "\n".join(shown)
    for secret in _forbidden(password_env):
        assert secret not in text, f"the password ({secret!r}) was shown"
    assert "apflow:***@127.0.0.1" in text and "could not be parsed" in text
    assert dict(os.environ) == environ, "%apflow store must not touch os.environ"
    ip.run_line_magic("apflow", "store --reset")


@pytest.fixture
def kernel_env(tmp_path_factory, monkeypatch):
    """A python3 kernelspec running this interpreter, first on JUPYTER_PATH."""
    install_test_kernel(tmp_path_factory.mktemp("jupyter"), monkeypatch.setenv)


def test_a_saved_notebook_holds_no_password(password_env, kernel_env, tmp_path):
    cells = [new_code_cell("%load_ext apflow_nb\n" + textwrap.dedent(SETUP))]
    cells += [new_code_cell(source) for source, _ in CELLS]
    nb = new_notebook(cells=cells)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text()
    for cell, (source, fails) in zip(nb.cells[1:], CELLS):
        errors = [o for o in cell.outputs if o.output_type == "error"  # a UsageError is a line on stderr
                  or (o.output_type == "stream" and o.name == "stderr" and o.text.startswith("UsageError"))]
        assert bool(errors) is fails, (source, cell.outputs)
    assert nb.cells[0].outputs == [], nb.cells[0].outputs
    for secret in _forbidden(password_env):
        assert secret not in saved, f"the saved notebook holds the password ({secret!r})"
    assert "apflow:***@127.0.0.1" in saved and "completed" in saved
    assert nb.cells[16].outputs[0]["text"].split() == ["True", "True"]  # the setting is not in os.environ
