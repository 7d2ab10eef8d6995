"""The command line through subprocess: ``apflow-nb run | watch | cancel | history | executors`` and
``python -m apflow_nb``, with their exit statuses and outputs."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

EXECUTORS = textwrap.dedent('''
    import asyncio
    from apflow_nb import executor_register

    @executor_register
    async def fetch_size(url: str, delay: float = 0.05) -> dict:
        await asyncio.sleep(delay)
        return {"url": url, "size": len(url) * 100}

    @executor_register
    async def explode(reason: str = "no") -> dict:
        raise ValueError(reason)
''')
TREE = textwrap.dedent('''
    - {id: total, name: aggregate_results_executor, dependencies: [a, b]}
    - {id: a, name: fetch_size, parent_id: total, inputs: {url: "https://example.org/a"}}
    - {id: b, name: fetch_size, parent_id: total, inputs: {url: "https://example.org/bb"}}
''')
FAILS = [{"id": "f", "name": "aggregate_results_executor", "dependencies": ["x"]},
         {"id": "x", "name": "explode", "parent_id": "f", "inputs": {"reason": "it broke"}}]
SLOW = [{"id": "r", "name": "aggregate_results_executor", "dependencies": ["s"]},
        {"id": "s", "name": "fetch_size", "parent_id": "r", "inputs": {"url": "x", "delay": 60}}]


def command() -> list[str]:
    script = shutil.which("apflow-nb", path=str(Path(sys.executable).parent))
    assert script, "the apflow-nb console script is not installed next to this Python (pip install -e .)"
    return [script]


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder with an executors file, trees, and its own store (./.apflow/tasks.db)."""
    (tmp_path / "execs.py").write_text(EXECUTORS)
    (tmp_path / "tree.yaml").write_text(TREE)
    (tmp_path / "fails.json").write_text(json.dumps(FAILS))
    (tmp_path / "slow.json").write_text(json.dumps(SLOW))
    monkeypatch.delenv("APFLOW_NB_DATABASE_URL", raising=False)
    return tmp_path


def cli(work: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command() + list(args), cwd=work, capture_output=True, text=True, timeout=timeout)


def statuses(work: Path) -> dict[str, str]:
    engine = create_engine(f"sqlite:///{work / '.apflow' / 'tasks.db'}")
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("select key, status from apflow_tasks")).all())
    finally:
        engine.dispose()


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def start(work: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(command() + list(args), cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def running(work: Path, key: str) -> bool:
    from sqlalchemy.exc import OperationalError

    try:
        return (work / ".apflow" / "tasks.db").exists() and statuses(work).get(key) == "in_progress"
    except OperationalError:  # the file is there, its tables not yet
        return False


def test_run_a_tree_that_completes_then_history_and_executors(work):
    out = cli(work, "run", "tree.yaml", "--executors", "execs.py", "--max-concurrency", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("run total: 3 task(s) in sqlite:///") and "apflow-nb watch total" in lines[0]
    assert "apflow run total  [####################]  completed · 3/3 done · 100%" in out.stdout
    assert statuses(work) == {"total": "completed", "a": "completed", "b": "completed"}
    table = cli(work, "history", "--executor", "fetch_size", "--since", "1h")
    assert table.returncode == 0 and table.stdout.split("\n")[0].split()[:5] == ["task_id", "key", "name",
                                                                                 "executor", "status"]
    assert sorted(line.split()[0] for line in table.stdout.splitlines()[1:]) == ["a", "b"]
    as_json = json.loads(cli(work, "history", "--format", "json", "--limit", "1", "--root", "total").stdout)
    assert [r["task_id"] for r in as_json] == ["total"] and as_json[0]["status"] == "completed"
    csv = cli(work, "history", "--format", "csv", "--status", "failed").stdout
    assert csv.startswith("task_id,") and len(csv.splitlines()) == 1  # the header, no failed task
    assert cli(work, "history", "--since", "2099-01-01").stdout.strip() == "no stored tasks match"
    listing = cli(work, "executors", "--executors", "execs.py")
    assert listing.returncode == 0 and "fetch_size" in listing.stdout and "url: string*" in listing.stdout


def test_run_exits_1_when_the_tree_fails_and_python_dash_m_works_too(work):
    out = subprocess.run([sys.executable, "-m", "apflow_nb", "run", "fails.json", "--executors", "execs.py"],
                         cwd=work, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    assert "failed · 2/2 done (2 failed)" in out.stdout and "ValueError: it broke" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["run", "missing.yaml"], "CliUsageError: missing.yaml: no such file"),
    (["run", "tree.yaml"], "ExecutorNotFoundError: task 'a': no executor registered as 'fetch_size'"),
    (["run", "bad.yaml"], "CliUsageError: bad.yaml: not valid YAML (line 2, column 1: expected"),
    (["run", "tree.yaml", "--executors", "nope_module"], "CliUsageError: --executors nope_module: no file or module"),
    (["run", "tree.yaml", "--executors", "execs.py", "--max-concurrency", "0"], "CliUsageError: --max-concurrency must be a positive"),
    (["cancel", "nope"], "TaskNotFoundError: no task with id 'nope'"),
    (["watch"], "NoRunningTreeError: no tree is running in this store now"),
])
def test_bad_input_is_one_named_line_and_exit_status_2(work, args, message):
    (work / "bad.yaml").write_text("- {id: a, name: [unclosed\n")
    subprocess.run([sys.executable, "-c", "import apflow_nb; apflow_nb.create_session().close()"], cwd=work, check=True)
    out = cli(work, *args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith(f"apflow-nb: error: {message}") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_a_store_password_never_shows_in_an_error(work):
    out = cli(work, "history", "--store", "postgresql+psycopg://someone:s3cr3t-pw@127.0.0.1:1/db")
    assert out.returncode == 2 and out.stderr.startswith("apflow-nb: error: OperationalError")
    assert "s3cr3t-pw" not in out.stderr + out.stdout


def results(work: Path) -> dict[str, str]:
    engine = create_engine(f"sqlite:///{work / '.apflow' / 'tasks.db'}")
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("select key, result from apflow_tasks")).all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_cancels_the_run_cleanly_and_exits_130(work, signum):
    proc = start(work, "run", "slow.json", "--executors", "execs.py")
    try:
        wait_for(lambda: running(work, "s"))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "cancelling the run (Ctrl-C again to stop at once)" in err and "the run ended cancelled" in err
        assert statuses(work) == {"r": "cancelled", "s": "cancelled"}  # nothing left in_progress or pending
        assert "grace period" in results(work)["s"]  # the normal path: the executor had its grace period
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_a_second_ctrl_c_stops_at_once_and_still_leaves_nothing_running(work):
    proc = start(work, "run", "slow.json", "--executors", "execs.py")
    try:
        wait_for(lambda: running(work, "s"))
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: statuses(work)["r"] == "cancelled")  # the first one is under way (s in its grace period)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert statuses(work) == {"r": "cancelled", "s": "cancelled"}
        assert "the run was interrupted" in results(work)["s"]  # torn down, not waited for
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_watch_and_cancel_a_run_of_another_terminal(work):
    proc = start(work, "run", "slow.json", "--executors", "execs.py")
    try:
        wait_for(lambda: running(work, "s"))
        watcher = start(work, "watch", "r")
        cancel = cli(work, "cancel", "r")
        assert cancel.returncode == 0, cancel.stderr
        assert f"cancel requested from process {proc.pid} on" in cancel.stdout
        assert "r: every task it aimed at has ended" in cancel.stdout
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 1 and "cancelled · 2/2 done (2 cancelled)" in out  # cancelled: exit 1
        seen, err = watcher.communicate(timeout=30)
        assert watcher.returncode == 1, err  # the watched run was cancelled
        assert "apflow run r  [" in seen and "cancelled · 2/2 done (2 cancelled)" in seen
        assert statuses(work) == {"r": "cancelled", "s": "cancelled"}
        again = cli(work, "cancel", "r")
        assert again.returncode == 0 and "had already finished: nothing to cancel" in again.stdout
    finally:
        for p in (proc, locals().get("watcher")):
            if p is not None:
                p.kill()
                p.communicate(timeout=10)


def test_every_command_line_in_the_readme_parses():
    from apflow_nb.cli import parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## From a terminal"):readme.index("## How a tree runs")]
    lines = [line.split("#")[0].split() for line in section.splitlines() if line.startswith("apflow-nb ")]
    assert len(lines) >= 6 and {line[1] for line in lines} == {"run", "watch", "cancel", "history", "executors"}
    for line in lines:
        parser().parse_args(line[1:])


def test_the_package_runs_as_a_module(work):
    out = subprocess.run([sys.executable, "-m", "apflow_nb", "--version"], capture_output=True, text=True,
                         cwd=work, env=dict(os.environ), timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("apflow_nb ")
