"""The magics through a real IPython shell (cells run with ``run_cell``): %%executor, %%tree, %apflow.

Two ways a cell runs here, as in real life: ``ip.run_cell`` has no event loop running (a terminal
IPython), and ``await ip.run_cell_async`` inside an asyncio test has one (a Jupyter kernel).
"""
from __future__ import annotations

import asyncio
import re

import pytest
from IPython.core.error import UsageError
from IPython.terminal.interactiveshell import TerminalInteractiveShell
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output

import apflow_nb
from apflow_nb import get_registry


@pytest.fixture(scope="module")
def ip():
    shell = start_ipython() or TerminalInteractiveShell.instance()  # started once per session, by any module
    shell.run_line_magic("load_ext", "apflow_nb")
    formatter = shell.display_formatter
    active = list(formatter.active_types)
    formatter.active_types = active + ["text/html"]  # as a notebook frontend asks for
    yield shell
    formatter.active_types = active


@pytest.fixture(autouse=True)
def store(ip, tmp_path, monkeypatch):
    """Each test: a fresh SQLite store file (the kernel's store), text views, a clean namespace."""
    url = f"sqlite:///{tmp_path / 'magic.db'}"
    monkeypatch.setenv("APFLOW_NB_DATABASE_URL", url)
    monkeypatch.setenv("APFLOW_NB_DISPLAY", "text")
    monkeypatch.chdir(tmp_path)
    names = set(ip.user_ns)
    yield url
    for name in set(ip.user_ns) - names:
        ip.user_ns.pop(name, None)
    from apflow_nb.core.storage.session import dispose_engines

    dispose_engines()


class Captured:
    """What a cell printed and displayed (text/plain and text/html of every output)."""

    def __init__(self, out):
        self.outputs = out.outputs
        self.text = out.stdout + out.stderr + "".join(o.data.get("text/plain", "") for o in out.outputs)
        self.html = "".join(o.data.get("text/html", "") for o in out.outputs)


def cell(ip, source):
    with capture_output() as out:
        result = ip.run_cell(source)
    return result, Captured(out)


async def acell(ip, source):
    """The cell as a kernel runs it: inside the running event loop."""
    with capture_output() as out:
        result = await ip.run_cell_async(source, transformed_cell=ip.transform_cell(source))
    return result, Captured(out)


def error_of(result):
    assert not result.success, "the cell should have failed"
    return result.error_in_exec


def executor_ids():
    return set(get_registry().ids("executor"))


DOUBLE = "%%executor double\ndef twice(x: int) -> int:\n    return 2 * x\n"

CLASS_CELL = '''%%executor
from apflow_nb import BaseTask
from apflow_nb.executors.aggregate import AggregateResultsExecutor   # imported: not registered again
from pydantic import BaseModel

class FetchInputs(BaseModel):
    url: str
    retries: int = 2

class Base(BaseTask):          # concrete but without an id of its own: a helper, not registered
    async def execute(self, inputs):
        return {"url": inputs["url"], "version": VERSION}

class Fetch(Base):
    id = "fetch"
    name = "Fetch a page"
    inputs_schema = FetchInputs

class Parse(BaseTask):
    id = "parse"
    async def execute(self, inputs):
        return {}
'''


# -- %%executor --------------------------------------------------------------------------------------

def test_load_ext_registers_the_three_magics(ip):
    magics = ip.magics_manager.magics
    assert {"executor", "tree"} <= set(magics["cell"]) and "apflow" in magics["line"]
    hooks = len(ip.events.callbacks["pre_run_cell"])
    ip.run_line_magic("unload_ext", "apflow_nb")  # IPython's own extension manager, as a user types it
    assert "executor" not in magics["cell"] and "apflow" not in magics["line"]
    assert len(ip.events.callbacks["pre_run_cell"]) == hooks - 1
    ip.run_line_magic("load_ext", "apflow_nb")
    ip.run_line_magic("reload_ext", "apflow_nb")
    assert {"executor", "tree"} <= set(magics["cell"]) and "apflow" in magics["line"]
    assert len(ip.events.callbacks["pre_run_cell"]) == hooks  # reloading does not stack cell hooks


def test_executor_registers_the_classes_the_cell_defines(ip):
    ip.user_ns["VERSION"] = 1
    builtin = get_registry().get("executor", "aggregate_results_executor")
    res, out = cell(ip, CLASS_CELL)
    assert res.success, res.error_in_exec
    assert {"fetch", "parse"} <= executor_ids()
    assert get_registry().get("executor", "aggregate_results_executor") is builtin  # the import is left alone
    assert get_registry().get("executor", "fetch").name == "Fetch a page"
    # the summary: text and HTML, id / name / fields (* = required)
    assert "registered 2 executor(s)" in out.text
    row = next(line for line in out.text.splitlines() if line.startswith("fetch "))
    assert re.search(r"fetch\s+Fetch a page\s+class\s+url: string\*, retries: integer", row), row
    assert "<table>" in out.html and "<td style='text-align:left'>url: string*, retries: integer</td>" in out.html
    assert "Base" not in out.text and "aggregate" not in out.text


def test_rerun_replaces_the_registration_and_the_new_code_runs(ip):
    ip.user_ns["VERSION"] = 1
    res, out = cell(ip, CLASS_CELL.replace("%%executor", '%%executor --run \'{"url": "u"}\'').replace(
        "class Parse", "class _Parse"))  # one executor, so --run can try it
    assert res.success, res.error_in_exec
    first = get_registry().get("executor", "fetch").obj
    assert '"version": 1' in out.text
    edited = CLASS_CELL.replace('"version": VERSION', '"version": VERSION * 10').replace("class Parse", "class _Parse")
    res, out = cell(ip, edited.replace("%%executor", '%%executor --run \'{"url": "u"}\''))
    assert res.success, res.error_in_exec
    second = get_registry().get("executor", "fetch").obj
    assert second is not first and second.__qualname__ == first.__qualname__ == "Fetch"
    assert [e.id for e in get_registry().list("executor")].count("fetch") == 1
    assert '"version": 10' in out.text and "completed" in out.text  # the new class ran


def test_rerun_of_a_notebook_cell_drops_the_ids_it_no_longer_defines(ip):
    def run_in_cell(source, cell_id):
        with capture_output() as out:
            result = ip.run_cell(source, cell_id=cell_id)  # Jupyter sends each cell's id
        return result, Captured(out)

    run_in_cell("%%executor\ndef fetch_v1(url: str):\n    return url\n", "cell-1")
    run_in_cell("%%executor\ndef other(a: int):\n    return a\n", "cell-2")
    res, out = run_in_cell("%%executor\ndef fetch_v2(url: str):\n    return url\n", "cell-1")  # renamed
    assert res.success and "fetch_v2" in executor_ids() and "fetch_v1" not in executor_ids()
    assert "removed fetch_v1 (this cell no longer defines it)" in out.text
    assert "other" in executor_ids()
    # an id another cell took over since is left alone
    run_in_cell("%%executor fetch_v2\ndef elsewhere(url: str):\n    return url\n", "cell-3")
    run_in_cell("%%executor\ndef fetch_v3(url: str):\n    return url\n", "cell-1")
    assert {"fetch_v2", "fetch_v3", "other"} <= executor_ids()
    # a failing re-run removes nothing
    run_in_cell("%%executor\ndef fetch_v4(url: str):\n    return url\n1 / 0\n", "cell-1")
    assert "fetch_v3" in executor_ids() and "fetch_v4" not in executor_ids()


def test_function_executor_id_schema_and_helpers(ip):
    source = '''%%executor
import asyncio

def _clean(text):                 # a helper: names with _ do not count
    return text.strip()

normalise = lambda s: s.lower()   # lambdas do not count either

async def summarise(text: str, limit: int = 10, lang: str | None = None) -> dict:
    """Shorten a text."""
    await asyncio.sleep(0)
    return {"summary": normalise(_clean(text))[:limit]}
'''
    res, out = cell(ip, source)
    assert res.success, res.error_in_exec
    entry = get_registry().get("executor", "summarise")
    assert entry is not None and entry.description == "Shorten a text."
    assert "text: string*, limit: integer, lang: string|null" in out.text and "function" in out.text
    # ID names it; --run tries it (an async function)
    res, out = cell(ip, source.replace("%%executor", '%%executor short --run \'{"text": "  HELLO World "}\''))
    assert res.success, res.error_in_exec
    assert "short" in executor_ids() and '"summary": "hello worl"' in out.text


def test_several_functions_need_an_id_that_names_one(ip):
    source = "%%executor{}\ndef parse(s: str):\n    return split(s)\n\ndef split(s):\n    return s.split()\n"
    res, _ = cell(ip, source.format(""))
    assert isinstance(error_of(res), UsageError)
    assert "several functions (parse, split)" in str(res.error_in_exec) and "%%executor parse" in str(res.error_in_exec)
    assert not {"parse", "split"} & executor_ids()
    res, _ = cell(ip, source.format(" parse"))
    assert res.success and "parse" in executor_ids() and "split" not in executor_ids()


def test_cell_that_registers_itself_and_cell_without_executors(ip):
    res, out = cell(ip, '%%executor\nfrom apflow_nb import executor_register\n\n'
                        '@executor_register(executor_id="hello")\ndef greet(name: str):\n    return "hi " + name\n')
    assert res.success, res.error_in_exec
    assert "hello" in executor_ids() and "greet" not in executor_ids()  # not registered twice
    assert "registered 1 executor(s)" in out.text
    res, _ = cell(ip, "%%executor\nx = 1\n")
    assert "defines no ExecutableTask subclass" in str(error_of(res))
    res, _ = cell(ip, "%%executor\nfrom apflow_nb import BaseTask\nclass NoId(BaseTask):\n"
                      "    async def execute(self, inputs):\n        return {}\n")
    assert "NoId has no `id` of its own" in str(error_of(res))
    res, _ = cell(ip, "%%executor noid\nfrom apflow_nb import BaseTask\nclass NoId(BaseTask):\n"
                      "    async def execute(self, inputs):\n        return {}\n")
    assert res.success and get_registry().get("executor", "noid").cls.__name__ == "NoId"


def test_thread_option_runs_a_sync_function_in_a_worker_thread(ip):
    source = ('%%executor where{} --run \'{{}}\'\nimport threading\n'
              'def where():\n    return threading.current_thread().name\n')
    res, out = cell(ip, source.format(""))
    assert res.success and '"result": "MainThread"' in out.text
    res, out = cell(ip, source.format(" --thread"))
    assert res.success and '"result": "' in out.text and "MainThread" not in out.text
    res, _ = cell(ip, CLASS_CELL.replace("%%executor", "%%executor --thread"))
    assert "--thread applies to a function executor" in str(error_of(res))


def test_error_in_the_cell_shows_its_traceback_and_leaves_the_registry_unchanged(ip):
    cell(ip, "%%executor\ndef keep(a: int) -> int:\n    return a\n")
    before = {e.id: e for e in get_registry().list("executor")}
    source = '''%%executor
from apflow_nb import ExecutableTask, executor_register

class Broken(ExecutableTask):
    id = "keep"                    # would replace "keep"
    async def execute(self, inputs):
        return {}

class Extra(Broken):
    id = "extra"                   # would be new

executor_register(Broken)
executor_register(Extra)

def load(path):
    return int(path)

load("not a number")
'''
    res, out = cell(ip, source)
    error = error_of(res)
    assert isinstance(error, ValueError)  # the user's own exception, not a wrapper
    assert {e.id: e for e in get_registry().list("executor")} == before
    assert "extra" not in executor_ids()
    # the traceback is the user's cell, frame by frame, as for any cell; none of apflow_nb's frames
    assert 'load("not a number")' in out.text and "return int(path)" in out.text
    assert "ValueError: invalid literal for int()" in out.text
    assert "magics.py" not in out.text and "_magic_cell.py" not in out.text and "run_cell_magic" not in out.text
    # a syntax error too: shown as the shell shows it, registry untouched
    res, out = cell(ip, "%%executor\ndef keep(a: int):\n    return a +\n")
    assert type(error_of(res)).__name__ == "SyntaxError"
    assert "SyntaxError" in out.text and "return a +" in out.text and "magics.py" not in out.text
    assert {e.id: e for e in get_registry().list("executor")} == before


def test_cell_runs_like_any_cell_ipython_syntax_and_last_expression(ip):
    res, out = cell(ip, "%%executor\nnames = %who_ls\ndef shout(s: str):\n    return s.upper()\nshout('out value')\n")
    assert res.success, res.error_in_exec
    assert isinstance(ip.user_ns["names"], list) and "shout" in executor_ids()
    assert "'OUT VALUE'" in out.text  # the last expression is shown, as in any cell


def test_trial_run_outcomes_and_input_errors(ip):
    res, out = cell(ip, '%%executor --run \'{"a": 1}\'\ndef boom(a: int):\n    raise RuntimeError("kaput")\n')
    assert res.success and "failed" in out.text and "kaput" in out.text
    assert ip.user_ns["_apflow_trial"].status == "failed"
    res, _ = cell(ip, DOUBLE.replace("double", 'double --run \'{"x": "many"}\''))
    message = str(error_of(res))
    assert "'double' is registered, but the trial cannot start: InputValidationError" in message
    assert "inputs.x" in message and "double" in executor_ids()
    res, _ = cell(ip, DOUBLE.replace("double", "double --run '{x: 1}'"))
    assert "not valid JSON" in str(error_of(res))
    res, _ = cell(ip, CLASS_CELL.replace("%%executor", "%%executor --run '{}'"))
    assert "--run needs exactly one executor; this cell registered 2" in str(error_of(res))
    assert apflow_nb.history().empty  # trials run in an in-memory store, never in the user's


@pytest.mark.asyncio
async def test_trial_in_a_running_loop_updates_its_placeholder(ip):
    source = ('%%executor --run \'{"x": 4}\'\nimport asyncio\n'
              'async def later(x: int):\n    await asyncio.sleep(0.05)\n    return x + 1\n')
    with capture_output() as out:
        res = await ip.run_cell_async(source, transformed_cell=ip.transform_cell(source))
        assert res.success, res.error_in_exec
        shown = [o.data["text/plain"] for o in out.outputs]
        assert "running" in shown[-1] and "completed" not in shown[-1]  # at once: the kernel is not blocked
        node = await ip.user_ns["_apflow_trial"]
        for _ in range(100):  # the placeholder is updated in place when the trial ends
            if len(out.outputs) > len(shown):
                break
            await asyncio.sleep(0.01)
    assert node.task.result == {"result": 5}
    update = out.outputs[-1]
    assert update.update and "completed" in update.data["text/plain"] and '"result": 5' in update.data["text/plain"]


# -- %%tree ------------------------------------------------------------------------------------------

TREE_JSON = '''%%tree --name run1
[{"id": "root", "name": "aggregate_results_executor", "dependencies": ["a", "b"]},
 {"id": "a", "name": "double", "parent_id": "root", "inputs": {"x": 1}, "priority": 1},
 {"id": "b", "name": "double", "parent_id": "root", "inputs": {"x": 2}}]
'''

TREE_YAML = '''%%tree
tasks:
  - {id: top, name: aggregate_results_executor, dependencies: [c]}
  - id: c
    name: double
    parent_id: top
    inputs: {x: 5}
'''


def test_tree_json_and_yaml_run_to_completion_in_the_store(ip, store):
    cell(ip, DOUBLE)
    res, out = cell(ip, TREE_JSON)
    assert res.success, res.error_in_exec
    run1 = ip.user_ns["run1"]
    assert run1.done()  # no event loop here (a terminal IPython): the cell ran the tree to its end
    node = run1.result()
    assert node.tree_status == "completed" and node.task.result["results"] == {"a": {"result": 2}, "b": {"result": 4}}
    assert "completed · 3/3 done" in out.text  # the text view's final frame
    res, out = cell(ip, TREE_YAML)
    assert res.success, res.error_in_exec
    res, _ = cell(ip, "final = await _run")  # the next cell awaits the handle
    assert res.success and ip.user_ns["final"].task.result["results"] == {"c": {"result": 10}}
    frame = apflow_nb.history(store)
    assert set(frame["task_id"]) == {"root", "a", "b", "top", "c"} and set(frame["status"]) == {"completed"}
    assert frame.set_index("task_id").loc["a", "priority"] == 1


def test_tree_options_store_no_display_user(ip, store, tmp_path):
    cell(ip, DOUBLE)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    res, out = cell(ip, f"%%tree --store '{other}' --no-display --name r --user ann\n"
                        "- {name: double, inputs: {x: 3}}\n")
    assert res.success, res.error_in_exec
    assert out.text == "" and ip.user_ns["r"].result().task.result == {"result": 6}
    frame = apflow_nb.history(other)
    assert list(frame["user_id"]) == ["ann"] and apflow_nb.history(store).empty
    res, _ = cell(ip, "%%tree --store bogus://nowhere\n- {name: double, inputs: {x: 3}}\n")
    assert str(error_of(res)).startswith(
        "%%tree: cannot open the store 'bogus://nowhere': StoreURLError: unknown kind of database 'bogus'")
    res, _ = cell(ip, "%%tree --name 2x\n- {name: double, inputs: {x: 3}}\n")
    assert "not a valid variable name" in str(error_of(res))


@pytest.mark.asyncio
async def test_tree_in_a_running_loop_runs_in_the_background_and_cancels(ip, store):
    await acell(ip, "%%executor\nimport asyncio\nasync def wait(s: float, cancellation_checker=None):\n"
                    "    for _ in range(int(s * 100)):\n        if cancellation_checker and cancellation_checker():\n"
                    "            return {'stopped': True}\n        await asyncio.sleep(0.01)\n    return {'waited': s}\n")
    res, _ = await acell(ip, "%%tree\n- {id: r, name: aggregate_results_executor, dependencies: [q, slow]}\n"
                             "- {id: q, name: wait, parent_id: r, inputs: {s: 0.05}}\n"
                             "- {id: slow, name: wait, parent_id: r, inputs: {s: 20}}\n")
    assert res.success, res.error_in_exec
    run = ip.user_ns["_run"]
    assert not run.done()  # the cell returned at once; the run goes on on the loop
    res, _ = await acell(ip, "import asyncio\nawait asyncio.sleep(0.3)")  # other cells run meanwhile
    assert res.success and run.status == "in_progress"
    res, out = await acell(ip, "%apflow cancel r")
    assert res.success and "cancelling r (running in this kernel)" in out.text
    res, _ = await acell(ip, "node = await _run")
    assert res.success, res.error_in_exec
    node = ip.user_ns["node"]
    states = {n.task.id: str(n.task.status) for n in node.walk()}
    assert states == {"r": "cancelled", "q": "completed", "slow": "cancelled"}


@pytest.mark.parametrize("tasks, message", [
    ('[{"id": "a", "name": "double", "dependencies": ["b"]}, {"id": "b", "name": "double", "parent_id": "a", '
     '"dependencies": ["a"]}]', "%%tree: CircularDependencyError: Circular dependency detected: a -> b -> a"),
    ('[{"id": "a", "name": "double"}, {"id": "b", "name": "double", "parent_id": "zz"}]',
     "%%tree: TaskArrayError: task 'b': parent_id 'zz' is not a task of this array"),
    ('[{"id": "a", "name": "double", "dependencies": ["nope"]}]',
     "%%tree: TaskArrayError: task 'a': dependency 'nope' is not a task of this array"),
    ('[{"id": "a", "name": "doubel"}]',
     "%%tree: ExecutorNotFoundError: task 'a': no executor registered as 'doubel'"),
    ('[{"id": "a", "name": "double", "inputs": {"x": "many"}}]',
     "%%tree: InputValidationError: task 'a': Invalid inputs for executor 'double': inputs.x"),
    ('[{"id": "a", "name": "double"}, {"id": "a", "name": "double", "parent_id": "a"}]',
     "%%tree: TaskArrayError: task[1]: duplicate id 'a' (also task[0])"),
    ('[{"id": "a", "name": "double", "priority": "high"}]',
     "%%tree: TaskArrayError: task 'a': priority must be an integer"),
    ("[]", "%%tree: TaskArrayError: the task array is empty"),
    ("just words", "%%tree: the cell must hold a list of tasks (JSON or YAML), got str"),
    ('[{"id": "a",, }]', "%%tree: not valid JSON (line 1, column 13"),
    ("- {id: a, name: double\n- b", "%%tree: not valid YAML (line 3, column 1"),
])
def test_tree_validation_errors_are_named_one_liners_and_nothing_is_stored(ip, store, tmp_path, tasks, message):
    cell(ip, DOUBLE)
    res, out = cell(ip, "%%tree\n" + tasks + "\n")
    error = error_of(res)
    assert isinstance(error, UsageError) and str(error).startswith(message), str(error)
    assert "\n" not in str(error) and "Traceback" not in out.text
    assert not (tmp_path / "magic.db").exists()  # checked before the store was even opened
    assert "_run" not in ip.user_ns


# -- %apflow -----------------------------------------------------------------------------------------

def test_apflow_executors_table(ip):
    cell(ip, DOUBLE)
    table = ip.run_line_magic("apflow", "executors")
    text, html = repr(table), table._repr_html_()
    assert re.search(r"double\s+twice\s+function\s+x: integer\*\s+user", text), text
    assert re.search(r"aggregate_results_executor\s+Aggregate Results\s+class\s+builtin", text), text
    assert "<td style='text-align:left'>double</td>" in html
    with pytest.raises(UsageError, match="takes no arguments"):
        ip.run_line_magic("apflow", "executors extra")


def test_apflow_history_show_and_cancel_of_a_stored_tree(ip, store):
    cell(ip, DOUBLE)
    cell(ip, TREE_JSON)
    cell(ip, '%%executor --quiet\ndef fails(x: int):\n    raise ValueError("no")\n')
    cell(ip, "%%tree --name bad\n- {id: f, name: fails, inputs: {x: 1}}\n")
    frame = ip.run_line_magic("apflow", "history --executor double")
    assert sorted(frame["task_id"]) == ["a", "b"]
    assert list(ip.run_line_magic("apflow", "history --root root")["task_id"]) == ["root", "a", "b"]
    assert list(ip.run_line_magic("apflow", "history --status failed,cancelled")["task_id"]) == ["f"]
    assert len(ip.run_line_magic("apflow", "history --limit 2")) == 2
    with pytest.raises(UsageError, match="invalid int value"):
        ip.run_line_magic("apflow", "history --limit many")
    view = ip.run_line_magic("apflow", "show root")
    bundle = view._repr_mimebundle_()
    assert bundle["text/html"].count('data-status="completed"') >= 3 and "double" in bundle["text/plain"]
    with pytest.raises(UsageError, match="no task with id 'nope'"):
        ip.run_line_magic("apflow", "show nope")
    # a stored tree that is not running in this kernel: its unfinished tasks are marked cancelled
    from apflow_nb import TaskManager, create_session

    repo = TaskManager(create_session()).task_repository
    from apflow_nb.core.storage.task_array import create_task_tree_from_array

    pending = create_task_tree_from_array(repo, [{"id": "p", "name": "aggregate_results_executor"},
                                                 {"id": "p1", "name": "double", "parent_id": "p",
                                                  "inputs": {"x": 1}}])
    note = ip.run_line_magic("apflow", f"cancel {pending.task.id}")
    assert "not running in this kernel" in note and repr(note) == str(note)
    assert set(apflow_nb.history(root_id="p")["status"]) == {"cancelled"}
    with pytest.raises(UsageError, match="no task with id 'nope'"):
        ip.run_line_magic("apflow", "cancel nope")
    with pytest.raises(UsageError, match="the following arguments are required: id"):
        ip.run_line_magic("apflow", "cancel")


def test_apflow_store_shows_sets_and_resets_the_kernels_store(ip, store, tmp_path):
    assert ip.run_line_magic("apflow", "store") == f"store: {store}"
    with pytest.raises(UsageError, match="cannot open the store 'bogus://x'"):
        ip.run_line_magic("apflow", "store bogus://x")
    assert ip.run_line_magic("apflow", "store") == f"store: {store}"  # a bad URL changes nothing
    note = ip.run_line_magic("apflow", "store sqlite:///sub/other.db")  # relative: made absolute
    other = f"sqlite:///{tmp_path / 'sub' / 'other.db'}"
    assert note == f"store: {other}"
    cell(ip, DOUBLE)
    res, _ = cell(ip, "%%tree\n- {id: t, name: double, inputs: {x: 1}}\n")
    assert res.success, res.error_in_exec
    assert list(apflow_nb.history()["task_id"]) == ["t"]  # %%tree and history use the new store
    assert list(ip.run_line_magic("apflow", "history")["task_id"]) == ["t"]
    assert apflow_nb.history(store).empty
    assert ip.run_line_magic("apflow", "store --reset") == f"store: sqlite:///{tmp_path / '.apflow' / 'tasks.db'}"


def test_apflow_without_or_with_an_unknown_sub_command(ip):
    res, out = cell(ip, "%apflow")
    assert res.success and "Sub-commands" in out.text
    with pytest.raises(UsageError, match="unknown sub-command 'nope'"):
        ip.run_line_magic("apflow", "nope")


def test_help_is_real(ip):
    for magic, expected in [
        ("%apflow?", ["Sub-commands", "%apflow history [--status S[,S]]", "%apflow store [URL | --reset]"]),
        ("%%executor?", ["%executor [--run JSON] [--thread] [--quiet] [--cache]",
                         "Re-running the cell replaces the registration", "--run JSON"]),
        ("%%tree?", ["%tree [--store URL] [--name VAR] [--no-display]", "Everything is checked before anything is written", "--max-concurrency N"]),
    ]:
        with capture_output() as out:
            ip.run_cell(magic)
        for text in expected:
            assert text in out.stdout, (magic, text, out.stdout)
