"""Starting process A of the two-process tests (``tests/remote_owner.py``) and reading what it did."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class Owner:
    """A process that runs a tree of ``kind`` on ``url``; ``root_id`` once its first task runs."""

    def __init__(self, url: str, kind: str, tmp_path: Path, *extra: str):
        self.out = tmp_path / f"owner-{kind}-{os.urandom(3).hex()}.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.remote_owner", url, kind, str(self.out), *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["root"], f"the owner did not start: {line}"
        self.root_id = line[1]

    def go(self) -> None:
        """Let the gated first task go on (the steps and fails trees wait for this)."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> str:
        """Wait for the owner to end; the tree status it printed."""
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, out
        return out.split()[-1]

    def published(self) -> list[dict[str, Any]]:
        """The events the owner published on its own bus, in order."""
        return json.loads(self.out.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()
