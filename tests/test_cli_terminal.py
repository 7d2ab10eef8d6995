"""``apflow-nb watch`` in a real terminal (a tmux pane, read with capture-pane) while another process
runs a tree: the table is redrawn in place and ends on the final frame."""
from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest

from tests.test_cli import EXECUTORS, command, running, wait_for

GATE = EXECUTORS + textwrap.dedent('''
    import os

    @executor_register
    async def gate(path: str) -> dict:
        while not os.path.exists(path):  # the test opens the gate once the watcher drew a live frame
            await asyncio.sleep(0.02)
        return {"opened": path}
''')
TREE = [{"id": "total", "name": "aggregate_results_executor", "dependencies": ["a", "b", "g"]},
        {"id": "a", "name": "fetch_size", "parent_id": "total", "inputs": {"url": "https://a"}},
        {"id": "b", "name": "fetch_size", "parent_id": "total", "dependencies": ["g"], "inputs": {"url": "https://b"}},
        {"id": "g", "name": "gate", "parent_id": "total", "inputs": {"path": "go"}}]


@pytest.fixture
def tmux(tmp_path):
    """A private tmux server (its own socket) with one 100x30 pane; killed afterwards."""
    assert shutil.which("tmux"), "tmux is needed (.ci/sysdeps.sh installs it)"
    socket = str(tmp_path / "tmux.sock")

    def run(*args: str) -> str:
        return subprocess.run(["tmux", "-S", socket, *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout

    run("new-session", "-d", "-x", "100", "-y", "30", "-s", "watch", "-c", str(tmp_path))
    yield run
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, timeout=30)


def test_apflow_nb_watch_redraws_in_a_terminal_while_another_process_runs_the_tree(tmp_path, tmux, monkeypatch):
    monkeypatch.delenv("APFLOW_NB_DATABASE_URL", raising=False)
    (tmp_path / "execs.py").write_text(GATE)
    (tmp_path / "tree.json").write_text(json.dumps(TREE))
    runner = subprocess.Popen(command() + ["run", "tree.json", "--executors", "execs.py"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: running(tmp_path, "g"))
        watch = " ".join(command() + ["watch", "total"])
        tmux("send-keys", "-t", "watch", f"cd {tmp_path} && {watch}; echo EXIT=$?", "Enter")
        screens: list[str] = []

        def screen() -> str:
            screens.append(tmux("capture-pane", "-p", "-t", "watch"))
            return screens[-1]

        wait_for(lambda: "in_progress" in screen() and "◔ gate [gate] in_progress" in screens[-1])  # live
        (tmp_path / "go").touch()
        wait_for(lambda: "EXIT=" in screen())
        final = screens[-1]
        assert "EXIT=0" in final
        assert "apflow run total  [####################]  completed · 4/4 done · 100%" in final
        assert final.count("✔ fetch_size [fetch_size] completed 100%") == 2 and "✔ gate [gate] completed" in final
        assert final.count("apflow run total") == 1  # redrawn in place, not scrolled frame after frame
        live = next(s for s in screens if "◔ gate" in s)
        assert "apflow run total" in live and "○ fetch_size [fetch_size] pending" in live
        runner.communicate(timeout=30)
        assert runner.returncode == 0
    finally:
        runner.kill()
        runner.communicate(timeout=10)
