"""Packaging: ``python -m build`` makes a wheel and an sdist; the wheel, installed with the notebook extra
into a fresh venv, runs the quickstart notebook (nbclient, on a kernel of that venv) and ``apflow-nb run``.

One fresh-venv install per suite (CI time). uv when present (as ``make venv``), else venv + pip.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv", ".git", ".apflow", "__pycache__", "build", "dist", "*.egg-info", "bench",
                              ".pytest_cache", ".hypothesis", "test-artifacts", ".ci")

pytestmark = pytest.mark.packaging


def uv() -> list[str] | None:
    found = shutil.which("uv")
    if found:
        return [found]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    return [sys.executable, "-m", "uv"] if probe.returncode == 0 else None


def sh(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    out = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, args))} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """A wheel and an sdist built from a copy of the source (the work tree gets no build files)."""
    src = tmp_path_factory.mktemp("src") / "apflow_nb"
    shutil.copytree(REPO, src, ignore=SKIP)
    out = tmp_path_factory.mktemp("dist")
    installer = ["--installer", "uv"] if uv() else []
    sh(sys.executable, "-m", "build", *installer, "--outdir", out, src)
    return out


def test_the_wheel_and_the_sdist_hold_the_package_and_the_console_script(dist):
    wheel = next(dist.glob("apflow_nb-*.whl"))
    sdist = next(dist.glob("apflow_nb-*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "apflow_nb/cli/__init__.py" in names and "apflow_nb/__main__.py" in names
    assert not any(n.startswith("tests/") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Provides-Extra: notebook" in meta and "nest-asyncio2" in meta
    points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "apflow-nb = apflow_nb.cli:main" in points
    assert any(n.endswith("apflow_nb/cli/watch.py") for n in tarfile.open(sdist).getnames())


def fresh_venv(where: Path, wheel: Path) -> Path:
    """A new venv with the wheel (notebook extra) and a kernel; returns its python."""
    tool = uv()
    if tool:
        sh(*tool, "venv", "-q", "--python", sys.executable, where)
        python = where / "bin" / "python"
        sh(*tool, "pip", "install", "-q", "--python", python, f"{wheel}[notebook]", "ipykernel")
    else:
        sh(sys.executable, "-m", "venv", where)
        python = where / "bin" / "python"
        sh(python, "-m", "pip", "install", "-q", f"{wheel}[notebook]", "ipykernel")
    return python


def test_the_wheel_in_a_fresh_venv_runs_the_quickstart_and_the_command_line(dist, tmp_path, monkeypatch):
    wheel = next(dist.glob("apflow_nb-*.whl"))
    python = fresh_venv(tmp_path / "venv", wheel)
    work = tmp_path / "work"
    work.mkdir()
    # nothing from this checkout on the path; bytecode cached as modules are first imported (cheaper than
    # compiling every installed file, and imports stay fast afterwards)
    env_free = {k: v for k, v in os.environ.items()
                if k not in ("PYTHONPATH", "APFLOW_NB_DATABASE_URL", "PYTHONDONTWRITEBYTECODE")}
    where = subprocess.run([python, "-c", "import apflow_nb, nest_asyncio2; print(apflow_nb.__file__)"], cwd=work,
                           capture_output=True, text=True, env=env_free, timeout=60)
    assert where.returncode == 0 and where.stdout.startswith(str(tmp_path / "venv")), where
    # the quickstart, on a kernel that runs the fresh venv's Python
    kernels = tmp_path / "jupyter" / "kernels" / "apflow-fresh"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "apflow_nb wheel", "language": "python",
        "env": {"PYTHONPATH": "", "PYTHONDONTWRITEBYTECODE": ""}}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("APFLOW_NB_DATABASE_URL", raising=False)
    nb = nbformat.read(REPO / "notebooks" / "01-quickstart.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="apflow-fresh", resources={"metadata": {"path": str(work)}}).execute()
    # the console script of the fresh venv, on the notebook's store
    (work / "execs.py").write_text(textwrap.dedent('''
        from apflow_nb import executor_register

        @executor_register
        def double(x: int) -> dict:
            return {"x": 2 * x}
    '''))
    (work / "tree.json").write_text(json.dumps([{"id": "d", "name": "double", "inputs": {"x": 21}}]))
    script = tmp_path / "venv" / "bin" / "apflow-nb"
    run = subprocess.run([script, "run", "tree.json", "--executors", "execs.py"], cwd=work, capture_output=True,
                         text=True, env=env_free, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "completed · 1/1 done" in run.stdout
    listed = json.loads(sh(script, "history", "--format", "json", cwd=work))
    assert {r["key"] for r in listed} == {"total", "a", "b", "c", "d"}  # the notebook's run and the CLI's
    assert {r["status"] for r in listed} == {"completed"}
