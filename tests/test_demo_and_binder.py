"""`make demo`'s program, and what binder/ installs: a fresh virtual environment runs the quickstart."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_twice_on_the_default_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "APFLOW_NB_DATABASE_URL"}
    for _ in range(2):  # the second run gets fresh ids: the store keeps both
        out = subprocess.run([sys.executable, "-m", "apflow_nb.demo"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    assert "completed · 6/6 done" in out.stdout and "warmest city: Nairobi" in out.stdout
    assert "all runs in this store: 12 tasks" in out.stdout
    assert (tmp_path / ".apflow" / "tasks.db").is_file()


def _uv() -> list[str] | None:
    """uv as a command: on PATH, or as a module of the interpreter that `make venv` installed it into."""
    if shutil.which("uv"):
        return [shutil.which("uv")]
    for python in (shutil.which("python3"), sys.executable):
        if python and subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "uv"]
    return None


def test_binder_environment_runs_the_quickstart(tmp_path):
    venv = tmp_path / "binder-venv"
    py = venv / "bin" / "python"
    requirements = str(ROOT / "binder" / "requirements.txt")
    uv = _uv()
    if uv:  # fast path; the same packages as pip would install
        subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([*uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(py), "pip",
                        "-r", requirements], check=True, timeout=600)
    else:  # what repo2docker itself does: a venv with pip
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", requirements], check=True, timeout=900)
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ['PATH']}", VIRTUAL_ENV=str(venv))
    subprocess.run(["bash", str(ROOT / "binder" / "postBuild")], cwd=ROOT, env=env, check=True, timeout=600,
                   capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "01-quickstart.ipynb", work)
    out = subprocess.run([str(venv / "bin" / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                          "--output", "executed.ipynb", "01-quickstart.ipynb"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import nbformat

    nb = nbformat.read(work / "executed.ipynb", as_version=4)
    assert nb.cells[-1].outputs == []  # the checks cell passed silently
    assert (work / ".apflow" / "tasks.db").is_file()
    probe = subprocess.run([str(py), "-c", "import apflow_nb, sys; print(apflow_nb.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path)
    assert str(venv) in probe.stdout  # installed into the binder environment, not borrowed from ours
