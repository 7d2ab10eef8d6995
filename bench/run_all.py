"""Every benchmark in one command; writes bench/RESULTS.md (Markdown tables) and prints it.

    python bench/run_all.py            # the full set, for the record (the upstream part alone takes ~30 min+)
    python bench/run_all.py --quick    # smaller sizes: a smoke run, not for the record
    python bench/run_all.py --reuse-upstream up.md   # take the side-by-side from `bench/upstream.py --markdown up.md`

Run it with the project's environment (``.venv/bin/python bench/run_all.py``; if the interpreter you use
cannot import apflow_nb, it re-runs itself with .venv/bin/python). Never part of the unit tests.

Sections, each run in its own subprocess and captured as printed:

1. our scaling table, ``bench/core.py``: flat at N = 100, 1,000, 10,000, 100,000; chain and fan-in at
   N = 100, 1,000, 10,000; per-task create/run time and peak RSS (best of 2);
2. side by side with the original package, ``bench/upstream.py`` (aipartnerupflow 0.9.0 in its own venv,
   bench/.venv-upstream, built on first use): flat, chain, fan-in at N = 20 and 100, ms/task and ratio;
3. side by side with peers, ``bench/peers.py`` (Dask, Prefect 3, Hamilton in their own venvs under bench/, built
   on first use, and the plain-asyncio floor): flat, chain, fan-in at N = 100, 1,000, 10,000 (quick: N = 100),
   µs per task and ratio to apflow_nb (~30-60 min in full; most of it Prefect);
4. ``bench/history.py``, ``bench/view.py``, ``bench/graph.py``, ``bench/scale_out.py`` when present (a visible
   note otherwise);
5. import time: the cumulative time of the top-level ``apflow_nb`` line of
   ``python -X importtime -c "import apflow_nb"`` and the wall time of
   ``python -c "import apflow_nb; apflow_nb.TaskManager"`` (best of 5 each).

RESULTS.md is rewritten after every section, so an interrupted run keeps what it measured.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peers import ensure_project_python  # bench/ is this script's folder: the same re-run rule

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent




def supports(script: str, flag: str) -> bool:
    """Whether bench/<script> accepts `flag` (the scripts of others may change; ask their --help)."""
    proc = subprocess.run([sys.executable, str(HERE / script), "--help"], capture_output=True, text=True, cwd=ROOT)
    return flag in proc.stdout


def capture(script: str, args: list[str], timeout: float) -> str:
    """Run bench/<script> with our interpreter and return its stdout (Markdown) plus the command and duration."""
    path = HERE / script
    if not path.exists():
        return f"_Skipped: bench/{script} does not exist yet._\n"
    cmd = [sys.executable, str(path), *args]
    shown = f"python bench/{script} {' '.join(args)}".strip()
    t0 = time.perf_counter()
    try:
        # the scripts' temp files go here
        with tempfile.TemporaryDirectory(prefix="apflow-bench-tmp-", ignore_cleanup_errors=True) as tmp:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                                  env={**os.environ, "TMPDIR": tmp})
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return f"{partial}\n**`{shown}` did not finish within {timeout:.0f} s and was stopped.**\n"
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        return (f"{proc.stdout}\n**`{shown}` failed (exit {proc.returncode}):**\n\n```\n{proc.stderr[-2000:]}\n```\n")
    lines = [ln for ln in proc.stdout.splitlines() if "WARNING" not in ln]
    return "\n".join(lines) + f"\n\n(`{shown}`: {took:.0f} s)\n"


def best_wall(cmd: list[str], env: dict, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, cwd=tempfile.gettempdir(), capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def importtime_ms(env: dict, repeat: int = 5) -> float | None:
    """Best cumulative µs (as ms) of the top-level `apflow_nb` line of -X importtime."""
    best = None
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import apflow_nb"], capture_output=True,
                              text=True, env=env, cwd=tempfile.gettempdir())
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| apflow_nb\s*$", line)
            if m:
                value = int(m.group(1)) / 1000
                best = value if best is None else min(best, value)
    return best


def import_time() -> str:
    env = dict(os.environ)
    lazy = [sys.executable, "-c", "import apflow_nb; apflow_nb.TaskManager"]
    total = importtime_ms(env)
    bare = best_wall([sys.executable, "-c", "pass"], env)
    wall = best_wall(lazy, env)
    total_s = f"{total:.1f} ms" if total is not None else "no top-level `apflow_nb` line found"
    return ("Best of 5 each; PYTHONDONTWRITEBYTECODE="
            f"{os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')}. `import apflow_nb` is lazy; "
            "`apflow_nb.TaskManager` loads the core (SQLAlchemy, pydantic).\n\n"
            "| measure | value |\n|---|---|\n"
            f"| `python -X importtime -c \"import apflow_nb\"`: cumulative time of the top-level `apflow_nb` line "
            f"| {total_s} |\n"
            f"| wall time of `python -c \"import apflow_nb; apflow_nb.TaskManager\"` | {1000 * wall:.0f} ms |\n"
            f"| wall time of `python -c pass` (interpreter start, for reference) | {1000 * bare:.0f} ms |\n"
            f"| difference: loading apflow_nb's core | {1000 * (wall - bare):.0f} ms |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not for the record)")
    parser.add_argument("--upstream-timeout", type=float, default=2400,
                        help="seconds allowed for one run of the original package (default 2400)")
    parser.add_argument("--reuse-upstream", metavar="FILE",
                        help="include FILE (written by `bench/upstream.py --markdown FILE`) instead of running the "
                             "side-by-side again; the section says so")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    ensure_project_python()
    q = args.quick
    t_start = time.perf_counter()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [f"# apflow_nb benchmark results\n\n"
             f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores; Python "
             f"{platform.python_version()} ({platform.python_implementation()}) on {platform.system()} "
             f"{platform.machine()}; load average at start {load}."
             f"{' **Quick run (reduced sizes): not for the record.**' if q else ''} "
             f"Regenerate with `python bench/run_all.py`.\n"]
    out = Path(args.output)

    def section(title: str, body: str) -> None:
        parts.append(f"## {title}\n\n{body}")
        out.write_text("\n".join(parts))
        print(f"## {title}\n\n{body}", flush=True)

    print(parts[0], flush=True)
    repeat = "1" if q else "2"
    small = ["100", "1000"] if q else ["100", "1000", "10000"]
    core = capture("core.py", ["--shapes", "flat", "--sizes", *small, *([] if q else ["100000"]), "--repeat", repeat],
                   timeout=3600)
    core += "\n" + capture("core.py", ["--shapes", "chain", "fanin", "--sizes", *small, "--repeat", repeat],
                           timeout=3600)
    section("Our scaling: per-task overhead and peak memory (SQLite file, every state change persisted)", core)

    up_args = ["--sizes", *(["20"] if q else ["20", "100"]), "--timeout", f"{args.upstream_timeout:.0f}"]
    if args.reuse_upstream:
        reused = Path(args.reuse_upstream)
        stamp = dt.datetime.fromtimestamp(reused.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        side = f"_Reused from `{reused.name}`, written by bench/upstream.py at {stamp}, not re-run now._\n\n"
        side += reused.read_text()
    else:
        side = capture("upstream.py", up_args, timeout=12 * args.upstream_timeout + 600)
    section("Side by side with the original package (aipartnerupflow 0.9.0)", side)

    section("Peers: Dask, Prefect, Hamilton and the plain-asyncio floor",
            capture("peers.py", [*(["--quick"] if q else []), "--no-results"], timeout=4 * 3600))

    hist = ["--tasks", "20000", "--repeat", "1"] if q and supports("history.py", "--tasks") else []
    section("history() at 100,000 tasks" if not hist else "history() (quick: 20,000 tasks)",
            capture("history.py", hist, timeout=1800))
    view = ["--events", "20000"] if q and supports("view.py", "--events") else []
    section("The live view's kernel-side cost", capture("view.py", view, timeout=1800))
    section("The dependency graph: layout time, crossings against dot, live cost",
            capture("graph.py", ["--quick"] if q else [], timeout=3600))
    scale = ["--tasks", "40"] if q and supports("scale_out.py", "--tasks") else []
    section("Scale-out: local runner vs Dask worker processes", capture("scale_out.py", scale, timeout=1800))

    section("Import time", import_time())
    parts.append(f"(run_all.py: {time.perf_counter() - t_start:.0f} s)\n")
    out.write_text("\n".join(parts))
    print(parts[-1], flush=True)


if __name__ == "__main__":
    main()
