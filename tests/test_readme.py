"""README.md stays true: its opening commands and its core example."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make demo", "make test"]
    assert text.index("```bash") < 200  # they are the first thing a reader sees


def test_readme_core_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(b for b in blocks if "asyncio.run(main())" in b)  # "The core in ten lines"
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 10
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("TaskTreeNode(id=") and "status='completed'" in out.stdout
    assert (tmp_path / ".apflow" / "tasks.db").is_file()
