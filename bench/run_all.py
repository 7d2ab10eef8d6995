"""Every benchmark in one command; writes bench/RESULTS.md and prints it.

    python bench/run_all.py [--quick]

Runs bench/core.py (our scaling table), bench/upstream.py (side by side with aipartnerupflow 0.9.0
in its own virtual environment), bench/history.py, bench/view.py, bench/scale_out.py and the import
time of ``apflow_nb``. ``--quick`` uses smaller sizes (a smoke run, not for the record).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def capture(args: list[str], timeout: float = 3600) -> str:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        return f"`{' '.join(args)}` failed:\n\n```\n{proc.stderr[-2000:]}\n```\n"
    lines = [ln for ln in proc.stdout.splitlines() if "WARNING" not in ln]
    return "\n".join(lines) + f"\n\n(`python {' '.join(args)}`, {took:.0f} s)\n"


def import_time() -> str:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import apflow_nb"], capture_output=True, text=True)
    total = next((int(m.group(1)) for line in proc.stderr.splitlines()
                  if (m := re.match(r"import time:\s+\d+ \|\s+(\d+) \| apflow_nb$", line))), None)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import apflow_nb; apflow_nb.TaskManager; apflow_nb.create_session"], check=True)
    core = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t0
    return ("| measure | value |\n|---|---|\n"
            f"| `python -X importtime -c \"import apflow_nb\"`: cumulative for apflow_nb | {total / 1000:.1f} ms |\n"
            f"| wall time to import apflow_nb and load TaskManager + create_session (SQLAlchemy, pydantic), "
            f"minus a bare interpreter start | {1000 * (core - bare):.0f} ms |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    q = args.quick
    parts = [f"# apflow_nb benchmark results\n\n{dt.date.today().isoformat()}; {os.cpu_count()} cores; Python "
             f"{platform.python_version()} on {platform.system()} {platform.machine()}. Regenerate with "
             f"`python bench/run_all.py`.\n"]
    parts.append("## Core: per-task overhead and peak memory (SQLite file, every state change persisted)\n")
    sizes = ["100", "1000"] if q else ["100", "1000", "10000"]
    parts.append(capture(["bench/core.py", "--shapes", "chain", "fanin", "--sizes", *sizes, "--repeat", "1" if q else "2"]))
    parts.append(capture(["bench/core.py", "--shapes", "flat", "--sizes", *sizes, *([] if q else ["100000"]),
                          "--repeat", "1" if q else "2"]))
    parts.append("## Side by side with the original package (aipartnerupflow 0.9.0)\n")
    parts.append(capture(["bench/upstream.py", "--sizes", *(["20"] if q else ["20", "100"])]))
    parts.append("## history() at 100,000 tasks\n")
    parts.append(capture(["bench/history.py", *(["--tasks", "20000", "--repeat", "1"] if q else [])]))
    parts.append("## The live view's kernel-side cost\n")
    parts.append(capture(["bench/view.py", *(["--events", "20000"] if q else [])]))
    parts.append("## Scale-out: local runner vs 2 Dask worker processes\n")
    parts.append(capture(["bench/scale_out.py", *(["--tasks", "40"] if q else [])]))
    parts.append("## Import time\n")
    parts.append(import_time())
    text = "\n".join(parts)
    (HERE / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
