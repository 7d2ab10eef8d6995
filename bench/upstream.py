"""Side by side with the original package: the same workloads through aipartnerupflow 0.9.0 and apflow_nb.

    python bench/upstream.py                       # N = 20 and 100, shapes flat, chain, fanin
    python bench/upstream.py --sizes 20 --shapes flat --json out.json

The original is installed only into its own virtual environment, bench/.venv-upstream (created on first
use with ``uv venv`` + ``uv pip install --compile-bytecode aipartnerupflow==0.9.0 greenlet``; greenlet is
needed by it and not declared). It is never a dependency of apflow_nb, and apflow_nb never imports it.

Workloads: bench/core.py's ``build_specs`` (flat: a root and N children; chain: N tasks each depending on
the previous; fan-in: N independent tasks and one aggregator depending on all of them), a trivial
executor, each engine's default embedded file store:

* the original: ``create_session()`` -> DuckDB file ``~/.aipartnerup/data/aipartnerupflow.duckdb``
  (HOME is pointed at a fresh temp directory for each run, ``AIPARTNERUPFLOW_DB_PATH`` unset);
* apflow_nb: ``create_session()`` -> SQLite file ``./.apflow/tasks.db`` in a fresh temp working directory
  (``bench/core.py --child``).

Every measurement is its own process with the right interpreter. The original's runs are checked: every
task completed in its store, each executor ran exactly once, the tree status it computes, and (fan-in)
that its aggregator saw all N results; a run that fails a check or errors is reported as what happened.
A run that exceeds ``--timeout`` is killed and reported with how many tasks it had finished, as a lower
bound on its cost. apflow_nb's figure is the best of ``--repeat`` runs (it is cheap); the original's is one
run (``--upstream-repeat`` for more).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-upstream"
UPSTREAM = "aipartnerupflow==0.9.0"
REQUIREMENTS = [UPSTREAM, "greenlet"]

sys.path.insert(0, str(HERE))
from core import build_specs  # noqa: E402  (the shared workload definition)


def ensure_project_python() -> None:
    """Re-run this script with the project's .venv interpreter when the current one cannot import apflow_nb."""
    import importlib.util

    if importlib.util.find_spec("apflow_nb") is not None:
        return
    venv_py = HERE.parent / ".venv" / "bin" / "python"
    if venv_py.exists() and not os.environ.get("APFLOW_BENCH_REEXEC"):
        os.environ["APFLOW_BENCH_REEXEC"] = "1"
        os.execv(str(venv_py), [str(venv_py), *sys.argv])
    raise SystemExit(f"{sys.executable} cannot import apflow_nb: run `make venv` and use .venv/bin/python")


def upstream_python() -> Path:
    """The original's interpreter; builds bench/.venv-upstream if it is missing or broken."""
    py = VENV / "bin" / "python"
    probe = [str(py), "-c", "import importlib.metadata as m, greenlet; print(m.version('aipartnerupflow'))"]
    if py.exists():
        proc = subprocess.run(probe, capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip() == UPSTREAM.split("==")[1]:
            return py
    print(f"(building {VENV} with {' '.join(REQUIREMENTS)})", file=sys.stderr, flush=True)
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "--allow-existing", "--python", sys.executable, str(VENV)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(py), *REQUIREMENTS],
                       check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--compile", *REQUIREMENTS], check=True)
    proc = subprocess.run(probe, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{VENV} is unusable:\n{proc.stderr}")
    return py


def run_upstream(py: Path, shape: str, n: int, timeout: float) -> dict:
    """One run of the original in a fresh process, HOME and working directory (so a fresh default store)."""
    home = tempfile.mkdtemp(prefix="upstream-bench-home-")
    env = {k: v for k, v in os.environ.items() if k not in ("AIPARTNERUPFLOW_DB_PATH", "LOG_LEVEL", "DEBUG")}
    env["HOME"] = home
    err_path = Path(home) / "stderr.txt"
    t0 = time.perf_counter()
    try:
        with open(err_path, "w") as err:
            proc = subprocess.Popen([str(py), str(HERE / "upstream_worker.py"), shape, str(n)], cwd=home, env=env,
                                    stdout=subprocess.PIPE, stderr=err, text=True)
            try:
                stdout, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, _ = proc.communicate()
                done, at = 0, 0.0
                for line in err_path.read_text().splitlines():
                    if line.startswith("progress "):
                        done, at = int(line.split()[1]), float(line.split()[2])
                return {"timeout": timeout, "done": done, "done_at_s": at, "wall_s": time.perf_counter() - t0}
        stderr = err_path.read_text()
        logged = [ln for ln in stdout.splitlines() if " - ERROR - " in ln or " - CRITICAL - " in ln]
        result = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith("BENCH-RESULT ")), None)
        if proc.returncode != 0 or result is None:
            tail = [ln for ln in stderr.splitlines() if not ln.startswith("progress ")] or logged or ["no output"]
            return {"error": f"exit {proc.returncode}: {tail[-1][:300]}", "wall_s": time.perf_counter() - t0}
        out = json.loads(result[len("BENCH-RESULT "):])
        out["errors_logged"] = len(logged)
        out["first_error_logged"] = logged[0][:300] if logged else None
        out["wall_s"] = time.perf_counter() - t0
        return out
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_ours(shape: str, n: int, repeat: int) -> dict:
    """Best of `repeat` runs of apflow_nb (bench/core.py --child: fresh process, fresh temp cwd, default store)."""
    best: dict | None = None
    for _ in range(repeat):
        # core.py's temp cwd lands in here
        with tempfile.TemporaryDirectory(prefix="apflow-bench-tmp-", ignore_cleanup_errors=True) as tmp:
            proc = subprocess.run([sys.executable, str(HERE / "core.py"), "--child", shape, str(n)],
                                  capture_output=True, text=True, timeout=600, env={**os.environ, "TMPDIR": tmp})
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]}
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        if best is None or row["run_s"] < best["run_s"]:
            best = row
    return best  # type: ignore[return-value]


def ms(seconds: float, tasks: int) -> float:
    return 1000 * seconds / tasks


def cells(shape: str, n: int, theirs: dict, ours: dict) -> tuple[str, str]:
    """(row of the speed table, row of the what-the-original-did table)."""
    if "error" in ours:
        our_run = our_create = f"failed: {ours['error']}"
        our_ms = None
    else:
        our_ms = ms(ours["run_s"], ours["tasks"])
        our_run, our_create = f"{our_ms:.3f}", f"{ms(ours['create_s'], ours['tasks']):.3f}"
    tasks = len(build_specs(shape, n))
    if "timeout" in theirs:
        floor = ms(theirs["timeout"], tasks)
        their_run = f"> {floor:,.0f} (killed after {theirs['timeout']:.0f} s)"
        ratio = f"> {floor / our_ms:,.0f}x" if our_ms else "-"
        their_create, total_ratio = "-", "-"
        what = (f"| {shape} | {n} | did not finish within {theirs['timeout']:.0f} s: {theirs['done']} of {tasks} "
                f"executors had run (last at {theirs['done_at_s']:.0f} s) | - | - | - | - |")
    elif "error" in theirs:
        their_run, their_create, ratio, total_ratio = f"failed: {theirs['error']}", "-", "-", "-"
        what = f"| {shape} | {n} | raised: {theirs['error']} | - | - | - | - |"
    else:
        their_ms = ms(theirs["run_s"], theirs["tasks"])
        their_run, their_create = f"{their_ms:,.1f}", f"{ms(theirs['create_s'], theirs['tasks']):.1f}"
        verdict = "all checks pass" if theirs["ok"] else "**WRONG**"
        ratio = f"{their_ms / our_ms:,.0f}x" if our_ms else "-"
        if our_ms:
            total = (theirs["run_s"] + theirs["create_s"]) / (ours["run_s"] + ours["create_s"])
            total_ratio = f"{total:,.0f}x"
        else:
            total_ratio = "-"
        notes = []
        if theirs["executed_more_than_once"]:
            notes.append(f"ran more than once: {', '.join(theirs['executed_more_than_once'])}")
        if theirs["never_executed"]:
            notes.append(f"never ran: {', '.join(theirs['never_executed'])}")
        if theirs.get("aggregated") is not None or shape == "fanin":
            notes.append(f"aggregator saw {theirs.get('aggregated')} of {n} results")
        if theirs["task_errors"]:
            notes.append("task errors: " + "; ".join(theirs["task_errors"]))
        if theirs["errors_logged"]:
            notes.append(f"{theirs['errors_logged']} ERROR log lines, first: {theirs['first_error_logged']}")
        what = (f"| {shape} | {n} | {verdict} | `{theirs['tree_status']}` | {json.dumps(theirs['statuses'])} | "
                f"{theirs['executions']} | {'; '.join(notes).replace('|', '/') or '-'} |")
    speed = (f"| {shape} | {n} | {tasks} | {their_run} | {our_run} | **{ratio}** | {their_create} | {our_create} | "
             f"{total_ratio} |")
    return speed, what


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--shapes", nargs="+", default=["flat", "chain", "fanin"], choices=["flat", "chain", "fanin"])
    parser.add_argument("--timeout", type=float, default=2400,
                        help="seconds allowed for one run of the original (default 2400); beyond, a lower bound")
    parser.add_argument("--repeat", type=int, default=3, help="apflow_nb runs per cell, fastest kept (default 3)")
    parser.add_argument("--upstream-repeat", type=int, default=1, help="runs of the original per cell (default 1)")
    parser.add_argument("--json", help="also write the raw measurements to this file")
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    ensure_project_python()
    t_start = time.perf_counter()
    py = upstream_python()
    lines = [f"Side by side: {UPSTREAM} (its own venv) vs apflow_nb; Python {platform.python_version()}, "
             f"{os.cpu_count()} cores. Same trees (bench/core.py `build_specs`), trivial executor (fan-in: each "
             "engine's own aggregate_results_executor), each engine's default embedded file store (the original: "
             "DuckDB `~/.aipartnerup/data/aipartnerupflow.duckdb` under a fresh HOME; apflow_nb: SQLite "
             "`./.apflow/tasks.db` in a fresh cwd), a fresh process per run. run = `distribute_task_tree`; "
             f"create = building the tree in the store. apflow_nb: best of {args.repeat}; the original: "
             f"{'best of ' + str(args.upstream_repeat) if args.upstream_repeat > 1 else 'one run'}.",
             "",
             "| shape | N | tasks | aipartnerupflow run ms/task | apflow_nb run ms/task | run ratio (original / ours) "
             "| aipartnerupflow create ms/task | apflow_nb create ms/task | create+run ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    what = ["", "What the original did in each run (its store's statuses, the tree status its node computes, how "
            "many times the trivial executor ran):", "",
            "| shape | N | verdict | tree status | stored statuses | trivial executions | notes |",
            "|---|---|---|---|---|---|---|"]
    raw = []
    for shape in args.shapes:
        for n in args.sizes:
            ours = run_ours(shape, n, args.repeat)
            runs = [run_upstream(py, shape, n, args.timeout) for _ in range(args.upstream_repeat)]
            good = [r for r in runs if "run_s" in r]
            theirs = min(good, key=lambda r: r["run_s"]) if good else runs[0]
            speed, did = cells(shape, n, theirs, ours)
            lines.append(speed)
            what.append(did)
            raw.append({"shape": shape, "n": n, "apflow_nb": ours, "aipartnerupflow": runs})
            print(speed, flush=True)
    print("\n".join(what), flush=True)
    took = f"\n(upstream.py took {time.perf_counter() - t_start:.0f} s)"
    print(took, flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines + what) + "\n" + took + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
