"""One measurement of one engine on one tree; started by bench/peers.py, one fresh process per run.

    <engine's python> bench/peers_worker.py ENGINE SHAPE N [--limit SECONDS]

ENGINE is one of ``ENGINES`` below. apflow_nb and the plain-asyncio floor run with the project's
.venv python; Dask, Prefect and Hamilton with their own venvs under bench/ (see bench/peers.py). This
module imports only the standard library at the top, so every one of those interpreters can load it;
each engine's own imports happen inside its function (bench/peers_engines.py holds the peers).

The last line on stdout is ``BENCH-RESULT {json}`` with: engine, version, tasks, setup_s (engine start:
schema, cluster, API server; not part of the per-task figures), create_s (building the tree or graph),
run_s (running it to the end), cpu_s (this process's CPU time over create + run), peak_rss_mb (ru_maxrss of this process), child_rss_mb (peak RSS of live
child processes, e.g. Prefect's API server), done (how many trivial tasks ran) and checks. A run still
busy ``--limit`` seconds after create began is stopped by a watchdog that reports ``timeout`` with how
many tasks had run; an exception is reported as ``error`` with its type (e.g. RecursionError) and phase.
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from core import build_specs  # noqa: E402  (stdlib-only: the shared workload definition)

DONE = [0]  # trivial tasks executed in this process
PHASE = ["setup"]
T_START = [0.0]


def work(*_inputs: Any) -> dict:
    """The trivial task every engine runs: count itself, return a small dict."""
    DONE[0] += 1
    return {"ok": True}


def aggregate(*results: Any) -> dict:
    """The fan-in aggregator: collects every dependency's result."""
    return {"result_count": len(results), "results": list(results)}


def peer_graph(shape: str, n: int) -> list[tuple[str, list[str]]]:
    """bench/core.py's tree as (task id, dependency ids), dependencies first.

    flat: the root and its N children, all independent; chain: each task takes the previous one's result;
    fan-in: N independent tasks, then the aggregator ("root") that takes all N results.
    """
    specs = build_specs(shape, n)
    if shape == "fanin":
        specs = specs[1:] + specs[:1]
    return [(s["id"], list(s.get("dependencies") or [])) for s in specs]


def expected_work(shape: str, n: int) -> int:
    """How many trivial tasks a complete run executes (the aggregator is not one)."""
    return n + 1 if shape == "flat" else n


def child_peak_rss_mb() -> float:
    """Sum of VmHWM over this process's live descendants (0 when there are none)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - mine
        mine |= frontier
    total_kb = 0
    for pid in mine:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def emit(payload: dict) -> None:
    """Print the one result line the parent reads."""
    payload["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    payload.setdefault("child_rss_mb", round(child_peak_rss_mb(), 1))
    sys.stdout.write("BENCH-RESULT " + json.dumps(payload) + "\n")
    sys.stdout.flush()


def start_watchdog(limit: float, out: dict) -> threading.Timer:
    """Stop the process `limit` s from now, reporting the phase and the tasks done so far."""

    def fire() -> None:
        emit({**out, "timeout": limit, "phase": PHASE[0], "done": DONE[0],
              "done_at_s": time.perf_counter() - T_START[0]})
        os._exit(124)  # the parent ends whatever this process started (its own process group)

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.start()
    return timer


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Cell:
    """Timing of one run: setup, then create and run, each a phase the watchdog can name."""

    def __init__(self, engine: str, shape: str, n: int, limit: float) -> None:
        self.limit = limit
        self.out: dict = {"engine": engine, "shape": shape, "n": n}
        self.timer: threading.Timer | None = None
        self.t0 = time.perf_counter()

    def setup_done(self, version: str) -> None:
        self.out.update(version=version, setup_s=time.perf_counter() - self.t0)
        T_START[0] = time.perf_counter()
        self.cpu0 = cpu_seconds()
        self.timer = start_watchdog(self.limit, self.out)
        PHASE[0] = "create"
        self.t0 = time.perf_counter()

    def created(self) -> None:
        self.out["create_s"] = time.perf_counter() - self.t0
        PHASE[0] = "run"
        self.t0 = time.perf_counter()

    def ran(self) -> None:
        self.out["run_s"] = time.perf_counter() - self.t0
        self.out["cpu_s"] = cpu_seconds() - self.cpu0
        PHASE[0] = "checks"
        if self.timer is not None:
            self.timer.cancel()


# -- apflow_nb --------------------------------------------------------------------------------------------
def apflow(cell: Cell, shape: str, n: int, url: str | None) -> None:
    """apflow_nb: create_task_tree_from_array into the store, then distribute_task_tree."""
    workdir = tempfile.mkdtemp(prefix="apflow-peers-")
    os.chdir(workdir)  # the default store is ./.apflow/tasks.db
    import importlib.metadata

    from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register

    class Noop(ExecutableTask):
        id = "noop"

        async def execute(self, inputs: dict) -> dict:
            return work()

    executor_register(Noop)
    specs = build_specs(shape, n)

    async def main() -> None:
        db = create_session(url)
        manager = TaskManager(db)
        cell.out["store"] = str(db.get_bind().url)
        cell.setup_done(importlib.metadata.version("apflow_nb"))
        root = await manager.task_repository.create_task_tree_from_array(specs)
        cell.created()
        result = await manager.distribute_task_tree(root)
        cell.ran()
        from sqlalchemy import text

        stored = db.execute(text("select count(*) from apflow_tasks where status = 'completed'")).scalar()
        checks = {"tree_completed": result.tree_status == "completed", "stored_completed": stored == len(specs)}
        if shape == "fanin":
            checks["aggregated_all"] = (result.task.result or {}).get("result_count") == n
        cell.out["checks"] = checks

    asyncio.run(main())


# -- the plain-asyncio floor -------------------------------------------------------------------------------
class BatchedStore:
    """A minimal persisting store: pending rows inserted at create, started/final updates buffered and written
    with executemany, a transaction per `batch` changes; stdlib sqlite3, WAL, synchronous=NORMAL."""

    def __init__(self, path: str, batch: int = 1000) -> None:
        import sqlite3

        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("CREATE TABLE tasks (id TEXT PRIMARY KEY, name TEXT, dependencies TEXT, status TEXT, "
                        "result TEXT, created_at REAL, started_at REAL, completed_at REAL)")
        self.batch = batch
        self.started: list[tuple] = []
        self.final: list[tuple] = []

    def insert_pending(self, graph: list[tuple[str, list[str]]]) -> None:
        now = time.time()
        with self.db:
            self.db.executemany("INSERT INTO tasks (id, name, dependencies, status, created_at) "
                                "VALUES (?, 'noop', ?, 'pending', ?)",
                                [(tid, json.dumps(deps), now) for tid, deps in graph])

    def mark_started(self, tid: str) -> None:
        self.started.append((time.time(), tid))
        if len(self.started) + len(self.final) >= self.batch:
            self.flush()

    def mark_final(self, tid: str, result: Any) -> None:
        self.final.append((json.dumps(result), time.time(), tid))
        if len(self.started) + len(self.final) >= self.batch:
            self.flush()

    def flush(self) -> None:
        with self.db:
            if self.started:
                self.db.executemany("UPDATE tasks SET status = 'in_progress', started_at = ? WHERE id = ?",
                                    self.started)
            if self.final:
                self.db.executemany("UPDATE tasks SET status = 'completed', result = ?, completed_at = ? "
                                    "WHERE id = ?", self.final)
        self.started, self.final = [], []

    def completed(self) -> int:
        return self.db.execute("SELECT count(*) FROM tasks WHERE status = 'completed'").fetchone()[0]


class Floor:
    """A dependency-driven asyncio scheduler: an asyncio.Task per task as soon as its dependencies are done."""

    def __init__(self, graph: list[tuple[str, list[str]]], agg_id: str | None, store: BatchedStore | None) -> None:
        self.deps = {tid: deps for tid, deps in graph}
        self.waiting = {tid: len(deps) for tid, deps in graph}
        self.dependents: dict[str, list[str]] = {tid: [] for tid, _ in graph}
        for tid, deps in graph:
            for d in deps:
                self.dependents[d].append(tid)
        self.agg_id, self.store = agg_id, store
        self.results: dict[str, Any] = {}
        self.left = len(graph)
        if store is not None:
            store.insert_pending(graph)

    async def execute(self, tid: str) -> Any:
        inputs = [self.results[d] for d in self.deps[tid]]
        return aggregate(*inputs) if tid == self.agg_id else work(*inputs)

    def start(self, tid: str) -> None:
        if self.store is not None:
            self.store.mark_started(tid)
        self.loop.create_task(self.execute(tid)).add_done_callback(lambda f, tid=tid: self.finish(tid, f))

    def finish(self, tid: str, fut: asyncio.Future) -> None:
        result = self.results[tid] = fut.result()
        if self.store is not None:
            self.store.mark_final(tid, result)
        for child in self.dependents[tid]:
            self.waiting[child] -= 1
            if not self.waiting[child]:
                self.start(child)
        self.left -= 1
        if not self.left:
            self.done.set_result(None)

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        for tid, count in list(self.waiting.items()):
            if not count:
                self.start(tid)
        await self.done
        if self.store is not None:
            self.store.flush()


def floor(cell: Cell, shape: str, n: int, persist: bool) -> None:
    """Plain asyncio, no engine: (a) nothing stored, (b) ~3 batched SQLite writes per task."""
    import platform
    import sqlite3

    workdir = tempfile.mkdtemp(prefix="floor-peers-")
    agg_id = "root" if shape == "fanin" else None
    version = f"Python {platform.python_version()}" + (f", SQLite {sqlite3.sqlite_version}" if persist else "")
    store = BatchedStore(os.path.join(workdir, "floor.db")) if persist else None  # opened in start-up
    cell.setup_done(version)
    graph = peer_graph(shape, n)
    sched = Floor(graph, agg_id, store)
    cell.created()
    asyncio.run(sched.run())
    cell.ran()
    checks = {"all_results": len(sched.results) == len(graph)}
    if sched.store is not None:
        checks["stored_completed"] = sched.store.completed() == len(graph)
    if agg_id:
        checks["aggregated_all"] = sched.results[agg_id]["result_count"] == n
    cell.out["checks"] = checks


def runners() -> dict[str, Callable[[Cell, str, int], None]]:
    """Every engine this worker knows, by name."""
    import peers_engines as peers

    return {
        "apflow-file": lambda c, s, n: apflow(c, s, n, None),
        "apflow-memory": lambda c, s, n: apflow(c, s, n, "sqlite://"),
        "asyncio": lambda c, s, n: floor(c, s, n, False),
        "asyncio-sqlite": lambda c, s, n: floor(c, s, n, True),
        "dask-sync": lambda c, s, n: peers.dask_local(c, s, n, "sync"),
        "dask-threads": lambda c, s, n: peers.dask_local(c, s, n, "threads"),
        "dask-distributed": peers.dask_distributed,
        "prefect": peers.prefect,
        "hamilton": peers.hamilton,
    }


ENGINES = ("apflow-file", "apflow-memory", "asyncio", "asyncio-sqlite", "dask-sync", "dask-threads",
           "dask-distributed", "prefect", "hamilton")


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("engine", choices=ENGINES)
    parser.add_argument("shape", choices=("flat", "chain", "fanin"))
    parser.add_argument("n", type=int)
    parser.add_argument("--limit", type=float, default=120.0, help="seconds allowed for create + run")
    args = parser.parse_args(argv)
    cell = Cell(args.engine, args.shape, args.n, args.limit)
    try:
        runners()[args.engine](cell, args.shape, args.n)
    except BaseException as exc:  # reported, never hidden: RecursionError and friends are results here
        if cell.timer is not None:
            cell.timer.cancel()
        first = (str(exc).splitlines() or [""])[0][:200]
        emit({**cell.out, "error": f"{type(exc).__name__}: {first}".rstrip(": "), "phase": PHASE[0],
              "done": DONE[0]})
        return
    cell.out["tasks"] = len(build_specs(args.shape, args.n))
    cell.out["done"] = DONE[0]
    cell.out["checks"]["all_tasks_ran"] = DONE[0] == expected_work(args.shape, args.n)
    emit(cell.out)


if __name__ == "__main__":
    import peers_worker  # run under the module's own name: distributed pickles `work` by reference, not by value

    peers_worker.main(sys.argv[1:])
