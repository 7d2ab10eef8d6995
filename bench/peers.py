"""Side by side with peers: the same trees through apflow_nb, Dask, Prefect 3, Hamilton and plain asyncio.

    python bench/peers.py                    # N = 100, 1,000, 10,000; flat, chain, fan-in; best of 3;
                                             # writes the "Peers" section of bench/RESULTS.md
    python bench/peers.py --quick            # smoke run: N = 100, one run per cell, RESULTS.md untouched
    python bench/peers.py --sizes 1000 --shapes flat --engines apflow-file dask-sync --repeat 1 --json out.json

Run it with the project's interpreter (.venv/bin/python; it re-runs itself with that one when the current
interpreter cannot import apflow_nb). Trees: bench/core.py's ``build_specs`` (flat: a root and N children;
chain: N tasks, each depending on the previous; fan-in: N independent tasks and one aggregator). Every
trivial task counts itself and returns a small dict; the aggregator gets all N results.

Engines (bench/peers_worker.py and bench/peers_engines.py say exactly what each one runs):

* apflow-file, apflow-memory: apflow_nb, ``create_task_tree_from_array`` into the store, then
  ``distribute_task_tree``; the default SQLite file (``./.apflow/tasks.db`` in a fresh cwd) or ``sqlite://``;
* asyncio, asyncio-sqlite: the floor, a dependency-driven asyncio scheduler with no store, or with ~3 batched
  SQLite writes per task (pending rows inserted at create; started and final updates with executemany, a
  transaction per 1,000 changes; WAL; stdlib sqlite3);
* dask-sync, dask-threads, dask-distributed: ``dask.delayed``, computed with the sync or threaded scheduler or
  on distributed's in-process ``LocalCluster(processes=False)``;
* prefect: a Prefect 3 flow calling the task (submitted; the chain called in turn), on the local ephemeral API
  server and its SQLite database under a fresh PREFECT_HOME (telemetry off, no network but loopback);
* hamilton: an sf-hamilton Driver over a module of generated functions.

The peers live only in their own venvs, created on first use (uv if present, else venv + pip):
bench/.venv-peers-dask (``dask[distributed]>=2024.1``), bench/.venv-peers-prefect (``prefect>=3,<4``),
bench/.venv-peers-hamilton (``sf-hamilton>=1,<2``). None of them is a dependency of apflow_nb.

Each run is a fresh process; a cell is the best (lowest create + run) of ``--repeat`` runs, one run only when
the first takes over 30 s. create and run are timed separately, engine start-up (schema, cluster, API server)
is reported apart and is not in the per-task figures. A run still busy ``--timeout`` s (default 120) after
create began is stopped and reported with how many tasks had run; larger N of that engine and shape are then
not run. Errors (e.g. RecursionError) are reported as results.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTION = "## Peers: Dask, Prefect, Hamilton and the plain-asyncio floor"
SHAPES = ("flat", "chain", "fanin")

# engine -> (venv group or None for the project's .venv, what it persists)
ENGINES: dict[str, tuple[str | None, str]] = {
    "apflow-file": (None, "every state change, SQLite file"),
    "apflow-memory": (None, "every state change, in-memory SQLite"),
    "asyncio-sqlite": (None, "3 batched writes per task, SQLite file"),
    "asyncio": (None, "nothing"),
    "hamilton": ("hamilton", "nothing"),
    "dask-sync": ("dask", "nothing"),
    "dask-threads": ("dask", "nothing"),
    "dask-distributed": ("dask", "nothing"),
    "prefect": ("prefect", "task runs, asynchronously via its API server (SQLite)"),
}
LABELS = {
    "apflow-file": "**apflow_nb, SQLite file**", "apflow-memory": "apflow_nb, in-memory `sqlite://`",
    "asyncio-sqlite": "plain asyncio + batched SQLite writes (floor)", "asyncio": "plain asyncio, no store (floor)",
    "hamilton": "Hamilton (driver over generated functions)", "dask-sync": "Dask delayed, sync scheduler",
    "dask-threads": "Dask delayed, threaded scheduler", "dask-distributed": "Dask distributed, in-process LocalCluster",
    "prefect": "Prefect 3, ephemeral API server + SQLite",
}
REQUIREMENTS = {
    "dask": (["dask[distributed]>=2024.1"], "import dask, distributed"),
    "prefect": (["prefect>=3,<4"], "import prefect; assert prefect.__version__.startswith('3.')"),
    "hamilton": (["sf-hamilton>=1,<2"], "import hamilton.driver"),
}
QUIET_ENV = {  # no telemetry, no phoning home; Prefect's ephemeral server only
    "DO_NOT_TRACK": "1", "HAMILTON_TELEMETRY_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",  # its default, 20 s, fails on a busy machine
}


def ensure_project_python() -> None:
    """Re-run this script with the project's .venv interpreter when the current one cannot import apflow_nb."""
    import importlib.util

    if importlib.util.find_spec("apflow_nb") is not None:
        return
    venv_py = ROOT / ".venv" / "bin" / "python"
    if venv_py.exists() and not os.environ.get("APFLOW_BENCH_REEXEC"):
        os.environ["APFLOW_BENCH_REEXEC"] = "1"
        os.execv(str(venv_py), [str(venv_py), *sys.argv])
    raise SystemExit(f"{sys.executable} cannot import apflow_nb: run `make venv` and use .venv/bin/python")


_venvs: dict[str, Path | str] = {}


def peer_python(group: str) -> Path | str:
    """bench/.venv-peers-<group>'s interpreter, built on first use; a string saying why when it cannot be."""
    if group in _venvs:
        return _venvs[group]
    venv = HERE / f".venv-peers-{group}"
    py = venv / "bin" / "python"
    reqs, probe = REQUIREMENTS[group]
    ok = py.exists() and subprocess.run([str(py), "-c", probe], capture_output=True).returncode == 0
    if not ok:
        print(f"(building {venv} with {' '.join(reqs)})", file=sys.stderr, flush=True)
        uv = shutil.which("uv")
        if uv:
            steps = [[uv, "venv", "-q", "--allow-existing", "--python", sys.executable, str(venv)],
                     [uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(py), *reqs]]
        else:
            steps = [[sys.executable, "-m", "venv", str(venv)], [str(py), "-m", "pip", "install", "-q", *reqs]]
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True)
            if proc.returncode != 0:
                _venvs[group] = f"could not install {' '.join(reqs)}: {(proc.stderr.strip() or 'failed')[-300:]}"
                return _venvs[group]
        proc = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
        if proc.returncode != 0:
            _venvs[group] = f"{venv} unusable: {proc.stderr.strip()[-300:]}"
            return _venvs[group]
    _venvs[group] = py
    return py


def git_label() -> str:
    """The checkout's short commit (and '+dirty' when it has changes), for apflow_nb's version cell."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return ""
    return f" (git {head}{'+dirty' if git('status', '--porcelain', '--', 'apflow_nb') else ''})"


def result_line(path: Path) -> str | None:
    text = path.read_text(errors="replace") if path.exists() else ""
    return next((ln for ln in reversed(text.splitlines()) if ln.startswith("BENCH-RESULT ")), None)


def supervise(proc: subprocess.Popen, out_path: Path, limit: float, grace: float) -> dict:
    """Wait for the worker's result line (at most limit + 300 s: start-up comes before its watchdog), then at
    most `grace` s for the process to exit; what it started is ended either way."""
    t0 = time.monotonic()
    reported_at: float | None = None
    note: dict = {}
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if reported_at is None and result_line(out_path):
                reported_at = now
            if reported_at is None and now - t0 > limit + 300:
                note = {"timeout": limit + 300, "phase": "setup", "done": 0}
                break
            if reported_at is not None and now - reported_at > grace:
                note = {"exit_s": None}  # still not gone: killed
                break
            time.sleep(0.2)
        else:
            if reported_at is not None and time.monotonic() - reported_at > 2:
                note = {"exit_s": round(time.monotonic() - reported_at, 1)}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # e.g. Prefect's API server, if it outlived the run
        except ProcessLookupError:
            pass
        proc.wait()
    return note


def run_once(engine: str, shape: str, n: int, limit: float, grace: float = 120.0) -> dict:
    """One run in a fresh process (its own session, temp dir and PREFECT_HOME); whatever it started is ended."""
    group = ENGINES[engine][0]
    py = sys.executable if group is None else peer_python(group)
    if isinstance(py, str) and not Path(py).exists():
        return {"error": py, "phase": "install"}
    with tempfile.TemporaryDirectory(prefix="apflow-peers-", ignore_cleanup_errors=True) as tmp:
        env = {**os.environ, **QUIET_ENV, "TMPDIR": tmp, "PREFECT_HOME": os.path.join(tmp, "prefect-home")}
        for var in ("PREFECT_API_URL", "PREFECT_API_KEY", "APFLOW_NB_DATABASE_URL"):
            env.pop(var, None)
        out_path, err_path = Path(tmp) / "stdout.txt", Path(tmp) / "stderr.txt"
        cmd = [str(py), str(HERE / "peers_worker.py"), engine, shape, str(n), "--limit", str(limit)]
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=out, stderr=err, start_new_session=True)
            note = supervise(proc, out_path, limit, grace)
        line = result_line(out_path)
        if line is None:
            if "timeout" in note:
                return note
            tail = err_path.read_text(errors="replace").strip().splitlines() or ["no output"]
            return {"error": f"exit {proc.returncode}: {tail[-1][:300]}", "phase": "?"}
        return {**json.loads(line[len("BENCH-RESULT "):]), **note}


def measure(engine: str, shape: str, n: int, repeat: int, limit: float) -> dict:
    """Best (lowest create + run) of `repeat` runs; one run when it fails, times out or takes over 30 s."""
    best: dict | None = None
    runs = 0
    for _ in range(repeat):
        row = run_once(engine, shape, n, limit)
        runs += 1
        if "run_s" not in row or not all(row.get("checks", {}).values()):
            return {**row, "runs": runs}
        if best is None or row["create_s"] + row["run_s"] < best["create_s"] + best["run_s"]:
            best = row
        if row["create_s"] + row["run_s"] > 30:
            break
    assert best is not None
    return {**best, "runs": runs}


# -- tables -----------------------------------------------------------------------------------------------
def tasks_of(shape: str, n: int) -> int:
    sys.path.insert(0, str(HERE))
    from core import build_specs

    return len(build_specs(shape, n))


def total_us(row: dict) -> float | None:
    return 1e6 * (row["create_s"] + row["run_s"]) / row["tasks"] if "run_s" in row and "tasks" in row else None


def ratio(value: float, ours: float | None) -> str:
    if not ours:
        return "-"
    r = value / ours
    return f"{r:.2f}x" if r < 10 else f"{r:,.0f}x"


def outcome(row: dict, shape: str, n: int) -> str | None:
    """What happened instead of a figure (error, timeout, skipped, wrong result), or None for a good run."""
    if "skipped" in row:
        return f"not run (stopped at N={row['skipped']:,})"
    if "timeout" in row:
        tasks = tasks_of(shape, n)
        if row.get("phase") == "setup":
            return f"start-up did not finish in {row['timeout']:.0f} s"
        return (f"> {1e6 * row['timeout'] / tasks:,.0f}: stopped at {row['timeout']:.0f} s in {row['phase']}, "
                f"{row.get('done', 0):,} of {tasks:,} tasks ran")
    if "error" in row:
        kind = row["error"].split(":")[0] if row.get("phase") != "install" else "install failed"
        return f"fails ({kind}, in {row.get('phase', '?')})"
    failed = [k for k, v in row.get("checks", {}).items() if not v]
    return f"**WRONG** ({', '.join(failed)})" if failed else None


def summary_table(results: dict, shape: str, sizes: list[int], engines: list[str]) -> list[str]:
    """One row per engine: total µs per task (create + run) and its ratio to apflow_nb on the SQLite file."""
    head = "| engine | version | persists | " + " | ".join(f"N = {n:,}: µs/task (× ours)" for n in sizes) + " |"
    lines = [f"**{shape}** (total = create + run, µs per task; × ours = this engine's total / apflow_nb SQLite "
             "file's)", "", head, "|" + "---|" * (3 + len(sizes))]
    for engine in engines:
        rows = [results.get((engine, shape, n)) for n in sizes]
        version = next((r["version"] for r in rows if r and r.get("version")), "-")
        cells = []
        for n, row in zip(sizes, rows):
            if row is None:
                cells.append("-")
                continue
            ours = total_us(results.get(("apflow-file", shape, n), {}))
            total = total_us(row)
            cells.append(outcome(row, shape, n) or f"{total:,.0f} ({ratio(total, ours)})")
        lines.append(f"| {LABELS[engine]} | {version} | {ENGINES[engine][1]} | " + " | ".join(cells) + " |")
    return lines


def notes(row: dict) -> str:
    out = []
    if row.get("child_rss_mb"):
        out.append(f"child processes' peak RSS {row['child_rss_mb']:,.0f} MB")
    if "stored_at_return" in row:
        out.append(f"{row['stored_at_return']:,} of {row['stored_expected']:,} task runs stored when the flow "
                   f"returned, {row['stored_final']:,} after {row['stored_after_s']:.1f} s more")
    if "exit_s" in row:
        out.append(f"the process took {row['exit_s']:.0f} s to exit after reporting" if row["exit_s"] is not None
                   else "the process had not exited 120 s after reporting: killed")
    if "error" in row:
        out.append(row["error"][:160].replace("|", "/"))
    return "; ".join(out) or "-"


def detail_table(results: dict, shapes: list[str], sizes: list[int], engines: list[str]) -> list[str]:
    lines = ["| shape | N | engine | create µs/task | run µs/task | total µs/task | × ours | CPU µs/task | "
             "peak RSS MB | start-up s | runs | notes |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for shape in shapes:
        for n in sizes:
            ours = total_us(results.get(("apflow-file", shape, n), {}))
            for engine in engines:
                row = results.get((engine, shape, n))
                if row is None:
                    continue
                bad = outcome(row, shape, n)
                rss = f"{row['peak_rss_mb']:,.0f}" if "peak_rss_mb" in row else "-"
                setup = f"{row['setup_s']:.2f}" if "setup_s" in row else "-"
                if bad or "run_s" not in row:
                    figures = f"{bad} | | | | |"
                else:
                    c, r = (1e6 * row[k] / row["tasks"] for k in ("create_s", "run_s"))
                    cpu = 1e6 * row.get("cpu_s", float("nan")) / row["tasks"]
                    figures = f"{c:,.1f} | {r:,.1f} | {c + r:,.1f} | {ratio(c + r, ours)} | {cpu:,.1f} |"
                lines.append(f"| {shape} | {n:,} | {engine} | {figures} {rss} | {setup} | {row.get('runs', 0)} "
                             f"| {notes(row)} |")
    return lines


def render(results: dict, args: argparse.Namespace, header: str, took: float | None) -> str:
    parts = [header, ""]
    for shape in args.shapes:
        parts += summary_table(results, shape, args.sizes, args.engines) + [""]
    parts += ["All measurements (start-up = engine start before create: schema, cluster, API server; not in the "
              "per-task figures; CPU = the measuring process's user + system CPU over create + run, all its "
              "threads, which a busy machine disturbs less than wall time; peak RSS = ru_maxrss of that "
              "process):", ""]
    parts += detail_table(results, args.shapes, args.sizes, args.engines)
    if took is not None:
        parts += ["", f"(peers.py took {took:.0f} s; load average at the end "
                      f"{', '.join(f'{x:.2f}' for x in os.getloadavg())})"]
    return "\n".join(parts) + "\n"


def write_section(path: Path, body: str) -> None:
    """Put `body` under SECTION in RESULTS.md: replacing that section, else before "## Import time", else last."""
    text = path.read_text() if path.exists() else "# apflow_nb benchmark results\n"
    block = f"{SECTION}\n\n{body}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.startswith("## Peers")), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = [block]
    else:
        at = next((i for i, ln in enumerate(lines) if ln.startswith("## Import time")), len(lines))
        if at == len(lines) and lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines[at:at] = [block]
    path.write_text("".join(lines))


def busy_note(load: float) -> str:
    """A warning when other work shared the machine (load average above its core count)."""
    cores = os.cpu_count() or 1
    return (f" **The machine was shared: load average {load:.1f} on {cores} cores. Wall times are inflated (engines "
            "with threads or a server process more so); compare the CPU column, and re-run on a quiet machine for "
            "the record.**") if load > cores else ""


def header_text(args: argparse.Namespace) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores; Python "
            f"{platform.python_version()} ({platform.python_implementation()}); load average at start {load}."
            f"{busy_note(os.getloadavg()[0])}"
            f"{' **Quick run: not for the record.**' if args.quick else ''} Trees: bench/core.py `build_specs` "
            "(flat = root + N independent children; chain = N tasks, each on the previous one's result; fan-in = "
            "N independent + 1 aggregator of all N results); every task counts itself and returns a small dict. "
            f"Each run a fresh process; best of {args.repeat} (one run when a run takes over 30 s); a run still "
            f"busy {args.timeout:.0f} s after create began is stopped. create = building the tree in the store "
            "(apflow_nb: `create_task_tree_from_array`; the floor: its graph + pending rows) or the graph (Dask: "
            "delayed calls; Hamilton: generating the module + building the Driver; Prefect: nothing to build); "
            "run = running it to the end. Regenerate with `python bench/peers.py` (bench/peers.py says what each "
            "engine runs).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 100, one run per cell, no RESULTS.md")
    parser.add_argument("--sizes", type=int, nargs="+", help="N values (default 100 1000 10000)")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--repeat", type=int, help="runs per cell, the fastest kept (default 3; --quick 1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed for create + run (120)")
    parser.add_argument("--json", help="also write the raw measurements to this file")
    parser.add_argument("--results", help="RESULTS.md to put the Peers section in (default bench/RESULTS.md, "
                                          "except with --quick)")
    parser.add_argument("--no-results", action="store_true", help="print only (bench/run_all.py uses this)")
    args = parser.parse_args()
    ensure_project_python()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the running worker's group is ended too
    args.sizes = sorted(args.sizes or ([100] if args.quick else [100, 1000, 10000]))
    args.repeat = args.repeat or (1 if args.quick else 3)
    if "apflow-file" not in args.engines:
        args.engines.insert(0, "apflow-file")  # the ratios' reference
    args.engines = [e for e in ENGINES if e in args.engines]
    target = None if args.no_results else Path(args.results) if args.results else \
        None if args.quick else HERE / "RESULTS.md"
    header, t_start = header_text(args), time.perf_counter()
    results: dict[tuple[str, str, int], dict] = {}
    for shape in args.shapes:
        for n in args.sizes:
            for engine in args.engines:
                stopped = next((m for m in args.sizes if m < n and "timeout" in results.get((engine, shape, m), {})),
                               None)
                row = {"skipped": stopped} if stopped else measure(engine, shape, n, args.repeat, args.timeout)
                results[(engine, shape, n)] = row
                shown = outcome(row, shape, n) or f"{total_us(row):,.1f} µs/task"
                print(f"({shape} N={n:,} {engine}: {shown})", file=sys.stderr, flush=True)
        if target is not None:  # an interrupted run keeps what it measured
            write_section(target, render(results, args, header, None))
    for (engine, _, _), row in results.items():
        if engine.startswith("apflow") and row.get("version"):
            row["version"] += git_label()
    body = render(results, args, header, time.perf_counter() - t_start)
    print(body, flush=True)
    if target is not None:
        write_section(target, body)
    if args.json:
        Path(args.json).write_text(json.dumps([{"engine": e, "shape": s, "n": n, **r}
                                               for (e, s, n), r in results.items()], indent=1))


if __name__ == "__main__":
    main()
