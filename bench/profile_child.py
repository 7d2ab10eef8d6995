"""One profiling measurement of apflow_nb in this process; started by bench/profile_core.py.

    python bench/profile_child.py plain N       # timings only (create, run), no profiler: the reference figures
    python bench/profile_child.py cprofile N    # cProfile of create and of run, separately
    python bench/profile_child.py memory N      # tracemalloc: the peak traced size of create and of run
    python bench/profile_child.py memory N '{"create": BYTES, "run": BYTES}'   # + snapshots near those peaks

The workload is bench/peers.py's apflow-file cell: a flat tree (a root and N children, bench/core.py
``build_specs``) stored with ``create_task_tree_from_array`` into the default SQLite file (a fresh temp cwd),
then ``distribute_task_tree``; a trivial executor. The last stdout line is ``PROFILE-RESULT {json}``.
"""
from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import sysconfig
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from core import build_specs  # noqa: E402

STDLIB = sysconfig.get_paths()["stdlib"] + "/"
CATEGORIES = (("/apflow_nb/", "our code (apflow_nb)"), ("/bench/", "bench harness"), ("/sqlalchemy/", "SQLAlchemy"),
              ("/asyncio/", "asyncio"),
              ("/json/", "json"), ("/pydantic", "pydantic"), ("/jsonschema", "jsonschema"), ("/uuid.py", "uuid"),
              ("/datetime.py", "datetime"), ("/threading.py", "threading"), ("/logging/", "logging"),
              ("/typing.py", "typing"), ("/enum.py", "enum"), ("/weakref.py", "weakref"))


def category(filename: str, func: str = "") -> str:
    """The group a profiled function or allocation site belongs to, from its file (or a C function's name)."""
    for marker, name in CATEGORIES:
        if marker in filename:
            return name
    if filename == "~":
        if "sqlite3" in func:
            return "sqlite3 (C: the database itself)"
        if "_json" in func or "orjson" in func:
            return "json"
        if "select" in func or "epoll" in func:
            return "asyncio"
        return "builtins"
    if "site-packages" in filename:
        return "other libraries"
    return "stdlib (other)" if filename.startswith(("/", "<frozen")) else "other"


def workload(n: int) -> tuple[Callable[[], Any], Callable[[Any], Any], Any]:
    """(create, run, db) for flat N on the default SQLite file; imports and store set-up happen here."""
    os.chdir(tempfile.mkdtemp(prefix="apflow-profile-"))
    from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register

    class Noop(ExecutableTask):
        id = "noop"

        async def execute(self, inputs: dict) -> dict:
            return {"ok": True}

    executor_register(Noop)
    specs = build_specs("flat", n)
    db = create_session()
    manager = TaskManager(db)
    loop = asyncio.new_event_loop()  # one loop for both phases, as in a notebook

    def create() -> Any:
        return loop.run_until_complete(manager.task_repository.create_task_tree_from_array(specs))

    def run(root: Any) -> Any:
        return loop.run_until_complete(manager.distribute_task_tree(root))

    WORKLOAD.update(loop=loop, run_coro=manager.distribute_task_tree)
    return create, run, db


WORKLOAD: dict[str, Any] = {}
FRAMES = 12  # tracemalloc frames kept per allocation: enough to reach our code from most SQLAlchemy internals


def plain(n: int) -> dict:
    create, run, _ = workload(n)
    gc.collect()
    setup_rss_mb = rss_now_mb()
    t0 = time.perf_counter()
    root = create()
    t1 = time.perf_counter()
    result = run(root)
    t2 = time.perf_counter()
    assert result.tree_status == "completed"
    return {"create_s": t1 - t0, "run_s": t2 - t1, "setup_rss_mb": setup_rss_mb,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def rss_now_mb() -> float:
    """This process's resident set now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def shorten(file: str) -> str:
    """A path without its site-packages, stdlib or checkout prefix."""
    for prefix in ("site-packages/", STDLIB, "/apflow_nb/", "/bench/"):
        if prefix in file:
            tail = file.split(prefix, 1)[1]
            return ("apflow_nb/" if prefix == "/apflow_nb/" else "") + tail
    return file


def digest(stats: dict, n: int, top: int = 25) -> dict:
    """Category totals (a C function's time goes to its callers' categories) and the top functions."""
    groups: Counter = Counter()
    for (file, line, func), (_cc, _nc, tt, _ct, callers) in stats.items():
        if file == "~" and "sqlite3" not in func and callers:
            for (cfile, _cl, cfunc), caller in callers.items():
                groups[category(cfile, cfunc)] += caller[2]
            continue
        groups[category(file, func)] += tt
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in stats.items():
        short = shorten(file)
        rows.append({"function": f"{short}:{line}({func})" if file != "~" else func, "category": category(file, func),
                     "calls_per_task": nc / n, "tottime": tt, "cumtime": ct})
    return {"groups": dict(groups), "total_tt": sum(groups.values()),
            "by_tottime": sorted(rows, key=lambda r: -r["tottime"])[:top],
            "by_cumtime": sorted(rows, key=lambda r: -r["cumtime"])[:top]}


def cprofile(n: int) -> dict:
    import cProfile
    import pstats

    create, run, _ = workload(n)
    out = {}
    root = None
    for phase in ("create", "run"):
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        if phase == "create":
            root = create()
        else:
            run(root)
        prof.disable()
        wall = time.perf_counter() - t0
        out[phase] = {"wall_s": wall, **digest(pstats.Stats(prof).stats, n)}  # type: ignore[attr-defined]
    return out


def site_of(tb: Any) -> str:
    """The innermost frame of our own code in an allocation's traceback (else the innermost frame), with its code."""
    import linecache

    frames = list(tb)
    ours = [f for f in frames if "/apflow_nb/" in f.filename]
    frame = ours[-1] if ours else frames[-1]  # tracemalloc lists the oldest frame first
    code = linecache.getline(frame.filename, frame.lineno).strip()[:70]
    return f"{shorten(frame.filename)}:{frame.lineno}{'' if ours else ' (no frame of ours)'}: {code}"


def snapshot_digest(snap: Any, n: int) -> dict:
    import tracemalloc

    by_cat: Counter = Counter()
    by_site: Counter = Counter()
    for stat in snap.statistics("traceback"):
        if any(f.filename == tracemalloc.__file__ for f in stat.traceback):
            continue  # the watcher's own snapshots
        inner = stat.traceback[-1] if len(stat.traceback) else None
        by_cat[category(inner.filename) if inner else "?"] += stat.size
        by_site[site_of(stat.traceback)] += stat.size
    return {"total": sum(by_cat.values()), "by_category": dict(by_cat.most_common()),
            "by_our_site": by_site.most_common(20)}


def live_types(baseline: Counter) -> list[tuple[str, int]]:
    counts: Counter = Counter(type(o).__qualname__ for o in gc.get_objects())
    counts.subtract(baseline)
    return [(k, v) for k, v in counts.most_common(15) if v > 0]


class PeakWatcher:
    """A thread that follows tracemalloc's traced size every ~2 ms (it gets the GIL inside long synchronous
    stretches of the loop too) and, given a target, takes one snapshot the first time the size reaches it."""

    def __init__(self, target: int | None) -> None:
        import threading

        self.target = target
        self.snapshot: Any = None
        self.size = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        import tracemalloc

        while not self.stop.wait(0.002):
            current = tracemalloc.get_traced_memory()[0]
            if self.target and self.snapshot is None and current >= self.target:
                self.snapshot, self.size = tracemalloc.take_snapshot(), current

    def __enter__(self) -> "PeakWatcher":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def memory(n: int, targets: dict | None = None) -> dict:
    """tracemalloc over create and run. Without targets: only the peak traced size of each phase (cheap). With
    targets (bytes per phase, e.g. 95% of a first pass's peaks): also a snapshot when the traced size first
    reaches each target, and snapshots after create and after run, digested once tracing has stopped."""
    import tracemalloc

    create, run, _ = workload(n)
    gc.collect()
    baseline: Counter = Counter(type(o).__qualname__ for o in gc.get_objects())
    snaps: dict[str, Any] = {}
    tracemalloc.start(FRAMES)
    with PeakWatcher(targets and targets["create"]) as create_peak:
        root = create()
    peaks = {"create": tracemalloc.get_traced_memory()[1]}
    if targets:
        snaps["after_create"] = tracemalloc.take_snapshot()
    types_create = live_types(baseline)
    tracemalloc.reset_peak()
    with PeakWatcher(targets and targets["run"]) as run_peak:
        result = run(root)
    current, peaks["run"] = tracemalloc.get_traced_memory()
    if targets:
        snaps["after_run"] = tracemalloc.take_snapshot()
    types_run = live_types(baseline)
    tracemalloc.stop()  # digests (which read source lines) only now, untraced
    assert result.tree_status == "completed"
    out: dict = {"traced_peak_create": peaks["create"], "traced_peak_run": peaks["run"], "traced_end": current,
                 "types_after_create": types_create, "types_after_run": types_run}
    snaps["near_peak_of_create"], snaps["near_peak_of_run"] = create_peak.snapshot, run_peak.snapshot
    sizes = {"near_peak_of_create": create_peak.size, "near_peak_of_run": run_peak.size}
    for name, snap in snaps.items():
        if snap is not None:
            out[name] = {**snapshot_digest(snap, n), "traced_when_taken": sizes.get(name)}
    return out


def main() -> None:
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "memory" and len(sys.argv) > 3:
        out = memory(n, json.loads(sys.argv[3]))
    else:
        out = {"plain": plain, "cprofile": cprofile, "memory": memory}[mode](n)
    out.update(mode=mode, n=n, tasks=n + 1)
    from apflow_nb.core.storage.session import dispose_engines

    dispose_engines()
    sys.stdout.write("PROFILE-RESULT " + json.dumps(out, default=str) + "\n")


if __name__ == "__main__":
    main()
