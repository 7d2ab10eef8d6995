"""The magics through a real IPython shell: %%executor, %%tree, %apflow."""
from __future__ import annotations

import pytest
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output

import apflow_nb
from apflow_nb import get_registry


@pytest.fixture(scope="module")
def ip():
    shell = start_ipython()
    shell.run_line_magic("load_ext", "apflow_nb")
    return shell


@pytest.fixture(autouse=True)
def store(ip, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'magic.db'}"
    monkeypatch.setenv("APFLOW_NB_DATABASE_URL", url)
    monkeypatch.setenv("APFLOW_NB_DISPLAY", "text")
    for name in [k for k in ip.user_ns if k.startswith("_run") or k in ("Fetch", "double", "Broken", "_apflow_trial")]:
        ip.user_ns.pop(name, None)
    yield url
    from apflow_nb.core.storage.session import dispose_engines

    dispose_engines()


class Captured:
    """What a cell printed and displayed, as text."""

    def __init__(self, out):
        shown = "".join(o.data.get("text/plain", "") for o in out.outputs)
        self.stdout = out.stdout + shown
        self.stderr = out.stderr
        self.outputs = out.outputs


def cell(ip, source):
    with capture_output() as out:
        result = ip.run_cell(source)
    return result, Captured(out)


CLASS_CELL = '''%%executor
from apflow_nb import BaseTask
from pydantic import BaseModel

class FetchInputs(BaseModel):
    url: str
    retries: int = 2

class Fetch(BaseTask):
    id = "fetch"
    name = "Fetch a page"
    inputs_schema = FetchInputs

    async def execute(self, inputs):
        return {"url": inputs["url"], "version": VERSION}
'''


def test_executor_registers_classes_and_shows_summary(ip):
    ip.user_ns["VERSION"] = 1
    result, out = cell(ip, CLASS_CELL)
    assert result.success
    assert "fetch" in get_registry().ids("executor")
    assert "registered 1 executor(s)" in out.stdout and "url: string*" in out.stdout and "retries: integer" in out.stdout


def test_rerun_replaces_and_new_behaviour_runs(ip):
    ip.user_ns["VERSION"] = 1
    cell(ip, CLASS_CELL)
    first = get_registry().get("executor", "fetch").obj
    ip.user_ns["VERSION"] = 2
    cell(ip, CLASS_CELL.replace('"version": VERSION', '"version": VERSION * 10'))
    second = get_registry().get("executor", "fetch").obj
    assert first is not second and second.__name__ == "Fetch"
    body = CLASS_CELL.replace('"version": VERSION', '"version": VERSION * 10').split("\n", 1)[1]
    res, out = cell(ip, '%%executor --run \'{"url": "x"}\'\n' + body)
    assert res.success and '"version": 20' in out.stdout and "completed" in out.stdout


def test_function_cell_with_id_and_trial_run(ip):
    res, out = cell(ip, '%%executor double --run \'{"x": 21}\'\ndef twice(x: int) -> int:\n    return 2 * x\n')
    assert res.success
    assert "double" in get_registry().ids("executor") and "x: integer*" in out.stdout
    assert '"result": 42' in out.stdout
    trial = ip.user_ns["_apflow_trial"]
    assert trial.status == "completed"
    assert apflow_nb.history().empty  # trials run in memory, not in the user's store


def test_error_in_cell_shows_traceback_and_keeps_registry(ip):
    cell(ip, "%%executor\ndef keep(a: int) -> int:\n    return a\n")
    before = {e.id: e for e in get_registry().list("executor")}
    source = '''%%executor
from apflow_nb import ExecutableTask, executor_register

class Broken(ExecutableTask):
    id = "keep"
    async def execute(self, inputs):
        return {}

executor_register(Broken)
raise_here = 1 / 0
'''
    res, out = cell(ip, source)
    assert not res.success and isinstance(res.error_in_exec.__cause__, ZeroDivisionError)
    assert {e.id: e for e in get_registry().list("executor")} == before  # restored
    text = out.stdout + out.stderr
    assert "ZeroDivisionError" in text and "raise_here = 1 / 0" in text
    assert "magics.py" not in text  # only the user's frames


def test_cell_without_executor_is_a_usage_error(ip):
    res, out = cell(ip, "%%executor\nx = 1\n")
    assert not res.success and "defines no ExecutableTask subclass" in str(res.error_in_exec)


TREE_JSON = '''%%tree --name run1
[{"id": "root", "name": "aggregate_results_executor", "dependencies": ["a", "b"]},
 {"id": "a", "name": "double", "parent_id": "root", "inputs": {"x": 1}},
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


def test_tree_json_and_yaml_run_to_completion(ip):
    cell(ip, "%%executor double\ndef twice(x: int) -> int:\n    return 2 * x\n")
    res, out = cell(ip, TREE_JSON)
    assert res.success, res.error_in_exec
    node = ip.user_ns["run1"].result()
    assert node.tree_status == "completed" and node.task.result["results"] == {"a": {"result": 2}, "b": {"result": 4}}
    res, out = cell(ip, TREE_YAML)
    assert res.success, res.error_in_exec
    assert ip.user_ns["_run"].result().task.result["results"] == {"c": {"result": 10}}
    frame = apflow_nb.history()
    assert set(frame["task_id"]) == {"root", "a", "b", "top", "c"}


@pytest.mark.parametrize("tasks, message", [
    ('[{"id": "a", "name": "double", "dependencies": ["b"]}, {"id": "b", "name": "double", "parent_id": "a", '
     '"dependencies": ["a"]}]', "CircularDependencyError: Circular dependency detected: a -> b -> a"),
    ('[{"id": "a", "name": "double"}, {"id": "b", "name": "double", "parent_id": "zz"}]',
     "task[1] 'double': parent_id 'zz' is not a task of this array"),
    ('[{"id": "a", "name": "doubel"}]', "ExecutorNotFoundError: task[0] 'doubel': no executor registered as 'doubel'"),
    ('[{"id": "a", "name": "double", "inputs": {"x": "many"}}]', "InputValidationError: task[0] 'double'"),
    ('[]', "the task array is empty"),
])
def test_tree_validation_errors_are_named_and_nothing_is_stored(ip, tasks, message):
    cell(ip, "%%executor double\ndef twice(x: int) -> int:\n    return 2 * x\n")
    res, out = cell(ip, "%%tree\n" + tasks)
    assert not res.success
    assert message in str(res.error_in_exec)
    assert "Traceback" not in out.stdout + out.stderr
    assert apflow_nb.history().empty


def test_apflow_line_magic(ip, store, tmp_path):
    cell(ip, "%%executor double\ndef twice(x: int) -> int:\n    return 2 * x\n")
    table = ip.run_line_magic("apflow", "executors")
    assert "double" in repr(table) and "aggregate_results_executor" in repr(table)
    cell(ip, TREE_JSON)
    ip.user_ns["run1"].result()
    frame = ip.run_line_magic("apflow", "history --executor double")
    assert sorted(frame["task_id"]) == ["a", "b"]
    assert list(ip.run_line_magic("apflow", "history --root root")["task_id"]) == ["root", "a", "b"]
    view = ip.run_line_magic("apflow", "show root")
    bundle = view._repr_mimebundle_()
    assert 'data-status="completed"' in bundle["text/html"] and "double" in bundle["text/plain"]
    assert ip.run_line_magic("apflow", "store") == f"store: {store}"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert ip.run_line_magic("apflow", f"store {other}") == f"store: {other}"
    assert apflow_nb.history().empty  # the new store is used from now on
    from apflow_nb import TaskManager, create_session

    pending = TaskManager(create_session()).task_repository.create_tasks([{"name": "double", "inputs": {"x": 1}}])[0]
    assert "marked cancelled" in ip.run_line_magic("apflow", f"cancel {pending.id}")
    assert apflow_nb.history()["status"].tolist() == ["cancelled"]
    with pytest.raises(Exception, match="unknown sub-command"):
        ip.run_line_magic("apflow", "nope")


def test_help_is_real(ip):
    with capture_output() as out:
        ip.run_cell("%apflow?")
    assert "Sub-commands" in out.stdout and "%apflow history" in out.stdout
    with capture_output() as out:
        ip.run_cell("%%executor?")
    assert "--run RUN_INPUTS" in out.stdout and "Re-running the cell replaces the registration" in out.stdout
