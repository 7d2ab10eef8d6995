"""history() and MLflow's search_runs side by side, on the same runs, SQLite stores, fresh processes.

    python bench/mlflow_side_by_side.py [--runs 2000] [--mlflow-python bench/.venv-mlflow/bin/python]

MLflow lives in its own venv, never our dependency:

    uv venv bench/.venv-mlflow && uv pip install --python bench/.venv-mlflow/bin/python mlflow

Each side stores ``--runs`` training runs (params/inputs ``model`` and ``lr``, metric/result ``score``; the
same seeded values): ours through real task trees (``apflow_nb.run``, 100 tasks under an aggregating root),
MLflow through ``MlflowClient`` (create_run, log_batch, set_terminated). Then each query runs in a fresh
process (cold: imports and first call) and again in it (warm: best of 3): everything, a filter on an
input/param, and on an input and a result/metric. MLflow compares params only as strings; ours are typed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile

MODELS = ["m1", "m2", "m3", "m4"]
QUERIES = [  # label, our history() keyword arguments, MLflow filter_string
    ("everything", {}, ""),
    ("model is m3", {"where": "inputs.model == 'm3'"}, "params.model = 'm3'"),
    ("model is m3 and score > 0.9", {"where": "inputs.model == 'm3' and result.score > 0.9"},
     "params.model = 'm3' and metrics.score > 0.9"),
]


def values(n: int) -> list[tuple[str, float, float]]:
    rng = random.Random(11)
    return [(rng.choice(MODELS), rng.choice([0.001, 0.01, 0.1]), round(rng.random(), 4)) for _ in range(n)]


OURS_FILL = r"""
import asyncio, sys, time
sys.path.insert(0, sys.argv[3])
import apflow_nb
from apflow_nb import executor_register
from mlflow_side_by_side import values

@executor_register
async def train(model: str, lr: float, score: float) -> dict:
    return {"score": score}

async def main(url, n):
    rows = values(n)
    for start in range(0, n, 100):
        chunk = rows[start:start + 100]
        tasks = [{"id": "sweep", "name": "aggregate_results_executor",
                  "dependencies": [{"id": f"t{i}", "required": False} for i in range(len(chunk))]}]
        tasks += [{"id": f"t{i}", "name": "train", "parent_id": "sweep",
                   "inputs": {"model": m, "lr": lr, "score": s}} for i, (m, lr, s) in enumerate(chunk)]
        await apflow_nb.run(tasks, store=url, display=False)

t = time.perf_counter()
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
print(time.perf_counter() - t)
"""

MLFLOW_FILL = r"""
import sys, time, logging
sys.path.insert(0, sys.argv[3])
logging.disable(logging.WARNING)
import mlflow
from mlflow.tracking import MlflowClient
from mlflow.entities import Metric, Param
from mlflow_side_by_side import values

mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient()
t = time.perf_counter()
exp = client.create_experiment("bench")
for model, lr, score in values(int(sys.argv[2])):
    run = client.create_run(exp)
    client.log_batch(run.info.run_id, metrics=[Metric("score", score, int(time.time() * 1000), 0)],
                     params=[Param("model", model), Param("lr", str(lr))])
    client.set_terminated(run.info.run_id)
print(time.perf_counter() - t)
"""

QUERY = r"""
import json, sys, time, logging
t0 = time.perf_counter()
side, url, kwargs, flt = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
if side == "ours":
    import apflow_nb
    call = lambda: apflow_nb.history(url, executor="train", **kwargs)
else:
    logging.disable(logging.WARNING)
    import mlflow
    mlflow.set_tracking_uri(url)
    exp = mlflow.get_experiment_by_name("bench").experiment_id
    call = lambda: mlflow.search_runs([exp], filter_string=flt, max_results=100000)
frame = call()
cold = time.perf_counter() - t0
warm = []
for _ in range(3):
    t = time.perf_counter(); frame = call(); warm.append(time.perf_counter() - t)
print(json.dumps({"cold": cold, "warm": min(warm), "rows": len(frame)}))
"""


def run(python: str, code: str, *args: str) -> str:
    out = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, cwd=os.path.dirname(__file__))
    if out.returncode:
        raise SystemExit(f"{python} failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--mlflow-python", default=os.path.join(os.path.dirname(__file__), ".venv-mlflow", "bin",
                                                                "python"))
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if not os.path.exists(args.mlflow_python):
        raise SystemExit(f"no MLflow venv at {args.mlflow_python}: see this file's docstring")
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory(prefix="apflow-vs-mlflow-") as tmp:
        ours, theirs = f"sqlite:///{tmp}/tasks.db", f"sqlite:///{tmp}/mlflow.db"
        fill = {"ours": float(run(sys.executable, OURS_FILL, ours, str(args.runs), here)),
                "mlflow": float(run(args.mlflow_python, MLFLOW_FILL, theirs, str(args.runs), here))}
        version = run(args.mlflow_python, "import mlflow; print(mlflow.__version__)")
        rows = []
        for label, kwargs, flt in QUERIES:
            a = json.loads(run(sys.executable, QUERY, "ours", ours, json.dumps(kwargs), flt))
            b = json.loads(run(args.mlflow_python, QUERY, "mlflow", theirs, json.dumps(kwargs), flt))
            assert a["rows"] == b["rows"], (label, a, b)
            rows.append((label, a, b))
    load = os.getloadavg()[0]
    print(f"history() vs MLflow {version} search_runs: {args.runs:,} runs, SQLite stores, Python "
          f"{platform.python_version()}, {os.cpu_count()} cores (load {load:.1f}: the machine is shared)")
    print("| | rows | ours cold s | MLflow cold s | ours warm s | MLflow warm s | warm: faster |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| store the runs (real runs / MlflowClient) | {args.runs:,} | {fill['ours']:.1f} | {fill['mlflow']:.1f} "
          f"| | | {fill['mlflow'] / fill['ours']:.0f}x |")
    for label, a, b in rows:
        print(f"| {label} | {a['rows']:,} | {a['cold']:.3f} | {b['cold']:.3f} | {a['warm']:.3f} | {b['warm']:.3f} "
              f"| {b['warm'] / a['warm']:.1f}x |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": args.runs, "mlflow": version, "fill": fill, "load": load,
                       "queries": [{"query": q, "ours": a, "mlflow": b} for q, a, b in rows]}, fh, indent=2)


if __name__ == "__main__":
    main()
