# Runs inside a real ipykernel (bench/graph.py sends it as one cell, after TASKS and REPEAT are set).
# Not a module to import: it awaits at top level, as a notebook cell may.
import asyncio
import json
import time

from IPython.display import display

import apflow_nb
from apflow_nb import ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.core.events import Event, EventType
from apflow_nb.notebook.graph._drawer import GraphDrawer
from apflow_nb.notebook.graph._model import spec_from_array, spec_from_tree
from apflow_nb.notebook.progress import RunState


class Emit(ExecutableTask):
    id = "emit"

    async def execute(self, inputs):
        n, pause = inputs["n"], inputs["pause"]
        for i in range(n):
            self.event_queue.put_nowait({"type": "progress", "data": {"progress": (i + 1) / n}})
            await asyncio.sleep(pause)
        return {}


executor_register(Emit)


def tree(tag, tasks, per_task, pause):
    kids = [{"id": f"{tag}-{i}", "name": "emit", "parent_id": tag, "inputs": {"n": per_task, "pause": pause},
             "dependencies": [f"{tag}-{i - 50}"] if i >= 50 and i % 3 == 0 else []} for i in range(tasks)]
    return [{"id": tag, "name": "aggregate_results_executor"}] + kids


async def measure(tag, attach, tasks, per_task, pause):
    """A run at 10,000 progress events/s; ``attach``: a graph face redrawn 10 times a second, as the
    LiveView's timer does (the state is fed by the Run either way)."""
    manager = TaskManager(create_session("sqlite://"), event_log=False)
    run = apflow_nb.run(tree(tag, tasks, per_task, pause), manager=manager, display=False)
    drawer = None
    if attach:
        drawer = GraphDrawer(spec_from_tree(run.tree))
        display(drawer.root)

        async def redraw():
            while not run.done():
                drawer.draw(run.state)
                await asyncio.sleep(0.1)
            drawer.draw(run.state, final=True)
        ticker = asyncio.ensure_future(redraw())
    cpu0, t0 = time.process_time(), time.perf_counter()
    await run
    if drawer is not None:
        await ticker
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert run.status == "completed", run.status
    return {"wall": wall, "cpu": cpu, "redraws": drawer.redraws if drawer else 0}


def running_state(spec):
    state = RunState(root_id=spec.root_id)
    state.apply(Event(EventType.TREE_STARTED, spec.root_id, spec.root_id, "in_progress", data={"tasks": [
        {"id": t.id, "key": t.key, "name": t.name, "parent_id": t.parent_id, "depth": t.depth, "status": "pending",
         "executor": t.executor} for t in spec.tasks]}))
    for t in spec.tasks[1:]:
        state.apply(Event(EventType.TASK_STARTED, t.id, spec.root_id, "in_progress"))
    return state


def redraw_cost(tasks):
    """CPU ms of one redraw of a graph whose every task is running and moved since the last redraw
    (panels included at their once-a-second rate: one in ten redraws)."""
    spec = spec_from_array(tree("r", tasks, 1, 0))
    state = running_state(spec)
    drawer = GraphDrawer(spec, budget=1.0)  # every draw happens: its raw cost
    n = 30
    cpu = 0.0
    for k in range(n):
        for t in spec.tasks[1:]:
            state.apply(Event(EventType.TASK_PROGRESS, t.id, "r", "in_progress", (k + 1) / (n + 1)))
        if k % 10 == 0:
            drawer._panels_at = float("-inf")
        cpu0 = time.process_time()
        drawer.draw(state)
        cpu += time.process_time() - cpu0
    return {"cpu_ms": 1e3 * cpu / n, "bytes": len(drawer.graph.value), "boxes": len(drawer.face.plan.items)}


async def main():
    out = {"paced": {"detached": [], "graph": []}}
    await measure("warm", True, 50, 5, 0.01)
    for k in range(REPEAT):  # noqa: F821 - set by bench/graph.py
        for mode in ("detached", "graph"):
            out["paced"][mode].append(await measure(f"p{k}{mode}", mode == "graph", TASKS, 30, TASKS / 10_000))  # noqa: F821
    out["redraw_300"] = redraw_cost(299)
    out["redraw_big"] = redraw_cost(TASKS)  # noqa: F821
    out["redraw_10k"] = redraw_cost(10_000)
    from apflow_nb.notebook.graph._drawer import BUDGET
    out["budget"] = BUDGET
    print("RESULT " + json.dumps(out))


await main()  # noqa: F704
