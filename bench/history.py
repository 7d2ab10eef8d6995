"""history() on a store of 100,000 tasks, flattened, and events() on its event log.

    python bench/history.py [--tasks 100000] [--repeat 3]

Builds a SQLite store (bulk inserted rows: 1,000 runs of 100 tasks with small inputs and
results dicts, as real runs leave them), then times ``apflow_nb.history(url)`` and prints a table.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta, timezone


def build(url: str, n: int) -> None:
    from sqlalchemy import insert

    from apflow_nb import create_session
    from apflow_nb.core.storage.sqlalchemy.models import TaskModel

    db = create_session(url)
    rng = random.Random(7)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    per_run = 100
    for i in range(n):
        run, k = divmod(i, per_run)
        root = f"run{run}-0"
        start = t0 + timedelta(seconds=i)
        status = rng.choices(["completed", "failed", "cancelled"], [90, 8, 2])[0]
        rows.append({
            "id": f"run{run}-{k}", "parent_id": None if k == 0 else root, "root_id": root,
            "user_id": f"user{run % 7}", "name": rng.choice(["fetch", "parse", "train", "score"]),
            "status": status, "priority": rng.randint(0, 3), "dependencies": [],
            "inputs": {"url": f"https://example.org/{i}", "retries": rng.randint(0, 3),
                       "opts": {"timeout": 30, "verify": True}},
            "params": None, "schemas": None,
            "result": ({"rows": rng.randint(1, 10_000), "score": rng.random(), "meta": {"source": "bench"}}
                       if status == "completed" else {"status": status, "error": "boom"}),
            "error": "RuntimeError: boom" if status == "failed" else None,
            "progress": 1.0 if status == "completed" else 0.5, "has_children": k == 0, "has_copy": False,
            "created_at": start, "started_at": start, "updated_at": start,
            "completed_at": start + timedelta(milliseconds=rng.randint(1, 5000)),
        })
    table = TaskModel.__table__
    with db.get_bind().begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(table), rows[i:i + 5000])
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import apflow_nb

    url = f"sqlite:///{tempfile.mkdtemp(prefix='apflow-history-bench-')}/tasks.db"
    t = time.perf_counter()
    build(url, args.tasks)
    build_s = time.perf_counter() - t
    apflow_nb.history(url, limit=10)  # imports pandas, warms the engine
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    timings = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        frame = apflow_nb.history(url)
        timings.append(time.perf_counter() - t)
    assert len(frame) == args.tasks, len(frame)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    failed = apflow_nb.history(url, status="failed", executor="train")
    filtered_s = time.perf_counter() - t
    t = time.perf_counter()
    one_run = apflow_nb.history(url, root_id="run42-0")
    run_s = time.perf_counter() - t
    assert len(one_run) == 100 and (failed["status"] == "failed").all()
    best = min(timings)
    print(f"history() benchmark: Python {platform.python_version()}, {os.cpu_count()} cores, SQLite file; "
          f"store built in {build_s:.1f} s; best of {args.repeat}")
    print("| query | rows | columns | seconds | rows/s |")
    print("|---|---|---|---|---|")
    print(f"| history(), all tasks, flattened | {len(frame)} | {frame.shape[1]} | {best:.3f} | {len(frame) / best:,.0f} |")
    print(f"| history(status='failed', executor='train') | {len(failed)} | {failed.shape[1]} | {filtered_s:.3f} | "
          f"{len(failed) / filtered_s:,.0f} |")
    print(f"| history(root_id=...) (one run, tree order) | {len(one_run)} | {one_run.shape[1]} | {run_s:.3f} | "
          f"{len(one_run) / run_s:,.0f} |")
    print(f"\npeak RSS {rss_after:.0f} MB (before the full queries: {rss_before:.0f} MB); "
          f"frame memory {frame.memory_usage(deep=True).sum() / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
