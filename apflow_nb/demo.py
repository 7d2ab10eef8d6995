"""``python -m apflow_nb.demo`` (``make demo``): two executors, a small tree with a text progress line,
then the run's history table. Uses the embedded default store, ./.apflow/tasks.db."""
from __future__ import annotations

import asyncio
import random

import apflow_nb
from apflow_nb import ExecutableTask, executor_register


@executor_register
async def measure(city: str, event_queue=None) -> dict:
    """Pretend to collect ten temperature readings for a city, streaming progress."""
    rng = random.Random(city)
    readings = []
    for step in range(10):
        await asyncio.sleep(0.05 + rng.random() * 0.05)
        readings.append(round(rng.uniform(-5, 30), 1))
        await event_queue.put({"type": "progress", "data": {"progress": (step + 1) / 10}})
    return {"city": city, "mean_c": round(sum(readings) / len(readings), 1)}


class Report(ExecutableTask):
    """Ranks the cities its dependencies measured."""

    id = "report"
    name = "Report"

    async def execute(self, inputs):
        cities = sorted((v for v in inputs.values() if isinstance(v, dict) and "mean_c" in v),
                        key=lambda v: v["mean_c"], reverse=True)
        return {"warmest": cities[0]["city"], "ranking": [c["city"] for c in cities]}


executor_register(Report)

CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Osaka"]


def main() -> None:
    tasks = [{"id": "report", "name": "report", "dependencies": [c.lower() for c in CITIES]}]
    tasks += [{"id": c.lower(), "name": "measure", "parent_id": "report", "inputs": {"city": c}} for c in CITIES]
    from apflow_nb.core.storage.session import default_database_url
    from apflow_nb.core.storage.urls import mask_url

    print(f"store: {mask_url(default_database_url())}")
    run = apflow_nb.run(tasks, display="text")
    tree = run.result()
    print(f"\nwarmest city: {tree.task.result['warmest']}  (ranking: {', '.join(tree.task.result['ranking'])})\n")
    frame = run.frame()
    columns = ["task_id", "depth", "executor", "status", "duration_s", "inputs.city", "result.mean_c"]
    print(frame[columns].to_string(index=False))
    print(f"\nall runs in this store: {len(apflow_nb.history())} tasks; try apflow_nb.history() in a notebook")


if __name__ == "__main__":
    main()
