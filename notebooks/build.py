"""Writes the tutorial notebooks (clean: no outputs). Edit here, then `python notebooks/build.py`."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent


def write(name: str, cells: list[tuple[str, str]]) -> None:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, HERE / name)


write("01-quickstart.ipynb", [
    ("md", "# apflow_nb quickstart\n\nRegister executors from cells, run a task tree, watch it live, "
           "then read what ran as a DataFrame. Everything is stored in `./.apflow/tasks.db` next to this notebook."),
    ("code", "%load_ext apflow_nb\nimport apflow_nb"),
    ("md", "## An executor from a plain function\n`%%executor` registers the function the cell defines; "
           "its signature becomes the input schema."),
    ("code", "%%executor fetch_size\nimport asyncio\n\nasync def fetch_size(url: str, delay: float = 0.3) -> dict:\n"
             "    \"\"\"Pretend to download a page and report its size.\"\"\"\n"
             "    await asyncio.sleep(delay)\n    return {\"url\": url, \"size\": len(url) * 100}"),
    ("md", "## An executor class\nA `BaseTask` validates its inputs with pydantic. Dependency results arrive "
           "in `inputs`, keyed by the dependency's id."),
    ("code", "%%executor\nfrom apflow_nb import BaseTask\n\nclass TotalSize(BaseTask):\n    id = \"total_size\"\n"
             "    name = \"Total size\"\n\n    async def execute(self, inputs):\n"
             "        sizes = {k: v[\"size\"] for k, v in inputs.items() if isinstance(v, dict) and \"size\" in v}\n"
             "        return {\"total\": sum(sizes.values()), \"pages\": len(sizes)}"),
    ("md", "## A tree, run live\nThe tree is checked before anything runs; the view below updates as tasks "
           "finish. The Run handle is in `_run`."),
    ("code", "%%tree\n- {id: total, name: total_size, dependencies: [a, b, c, d]}\n"
             "- {id: a, name: fetch_size, parent_id: total, inputs: {url: 'https://example.org/a'}}\n"
             "- {id: b, name: fetch_size, parent_id: total, inputs: {url: 'https://example.org/bb', delay: 0.6}}\n"
             "- {id: c, name: fetch_size, parent_id: total, inputs: {url: 'https://example.org/ccc'}}\n"
             "- {id: d, name: fetch_size, parent_id: total, inputs: {url: 'https://example.org/dddd', delay: 0.9}}"),
    ("code", "tree = await _run\ntree.task.result"),
    ("md", "## The dependency graph\n`apflow_nb.graph(x)` draws a tree's dependencies, laid out in Python "
           "(no graphviz): one box per task coloured by its status, arrows from each dependency. Click a box for "
           "its inputs, result, error and timings. It takes a run (as here), a task array (a plan, before "
           "running it) or a root id in the store (a past run). The drawing is plain SVG and HTML, so it stays "
           "in the saved notebook."),
    ("code", "apflow_nb.graph(_run)"),
    ("md", "## What ran, as a DataFrame"),
    ("code", "frame = _run.frame()\nframe[[\"task_id\", \"depth\", \"executor\", \"status\", \"duration_s\", "
             "\"inputs.url\", \"result.size\", \"result.total\"]]"),
    ("code", "# checks (CI runs every notebook)\nassert _run.status == \"completed\"\n"
             "assert tree.task.result == {\"total\": 2100 + 2200 + 2300 + 2400, \"pages\": 4}\n"
             "assert list(frame[\"executor\"]) == [\"total_size\"] + [\"fetch_size\"] * 4  # ids are fresh on a re-run\n"
             "assert (frame[\"status\"] == \"completed\").all()\n"
             "svg = apflow_nb.graph(_run.root_id).svg()  # the past run, from the store\n"
             "assert svg.count('data-status=\"completed\"') == 5"),
])

write("02-custom-executors.ipynb", [
    ("md", "# Custom executors, tools, hooks and a custom TaskModel\n\nThe two ways the seed page shows to "
           "write an executor, validation errors, tools, pre/post hooks, and extra columns that show up in history."),
    ("code", "import asyncio\nfrom typing import Any, Dict\nfrom pydantic import BaseModel\nimport apflow_nb\n"
             "from apflow_nb import (BaseTask, ExecutableTask, TaskManager, TaskTreeNode, create_session,\n"
             "                       executor_register, register_post_hook, register_pre_hook, tool_register)\n"
             "from apflow_nb.core.tools.base import Tool\n\nmanager = TaskManager(create_session())\n\n"
             "async def run_one(name, inputs=None, **fields):\n"
             "    task = await manager.task_repository.create_task(name=name, inputs=inputs or {}, **fields)\n"
             "    return await manager.distribute_task_tree(TaskTreeNode(task))"),
    ("md", "## Method 1: implement `ExecutableTask` (JSON Schema inputs)"),
    ("code", "class Greeter(ExecutableTask):\n    id = \"greeter\"\n    name = \"Greeter\"\n\n"
             "    async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:\n"
             "        return {\"status\": \"completed\", \"greeting\": f\"Hello {inputs['who']}\" + \"!\" * inputs['excitement']}\n\n"
             "    def get_input_schema(self):\n        return {\"type\": \"object\", \"properties\": {\n"
             "            \"who\": {\"type\": \"string\"}, \"excitement\": {\"type\": \"integer\", \"default\": 1}},\n"
             "            \"required\": [\"who\"]}\n\nexecutor_register(Greeter())\n"
             "hello = await run_one(\"greeter\", {\"who\": \"notebook\"})\nhello[\"result\"]"),
    ("md", "## Method 2: `BaseTask` with a pydantic model — and what a validation error looks like"),
    ("code", "class ScaleInputs(BaseModel):\n    values: list[float]\n    factor: float = 2.0\n\n"
             "class Scale(BaseTask):\n    id = \"scale\"\n    inputs_schema = ScaleInputs\n\n"
             "    async def execute(self, inputs):\n        return {\"scaled\": [v * inputs[\"factor\"] for v in inputs[\"values\"]]}\n\n"
             "executor_register(Scale)\nok = await run_one(\"scale\", {\"values\": [1, 2.5]})\n"
             "bad = await run_one(\"scale\", {\"values\": \"not a list\"})\nprint(ok[\"result\"])\nprint(bad[\"status\"], \"->\", bad[\"error\"])"),
    ("md", "## Tools: reusable pieces executors call (inputs validated against the tool's schema)"),
    ("code", "class WordCount(Tool):\n    id = \"word_count\"\n\n    async def execute(self, inputs):\n"
             "        return {\"words\": len(inputs[\"text\"].split())}\n\n    def get_input_schema(self):\n"
             "        return {\"type\": \"object\", \"properties\": {\"text\": {\"type\": \"string\"}}, \"required\": [\"text\"]}\n\n"
             "tool_register(WordCount())\n\nclass Summarize(ExecutableTask):\n    id = \"summarize\"\n\n"
             "    async def execute(self, inputs):\n        counted = await self.get_tool(\"word_count\").execute({\"text\": inputs[\"text\"]})\n"
             "        return {\"summary\": inputs[\"text\"][:20], **counted}\n\nexecutor_register(Summarize)\n"
             "summary = await run_one(\"summarize\", {\"text\": \"tools are registered once and used by many executors\"})\n"
             "summary[\"result\"]"),
    ("md", "## Pre- and post-hooks\nA pre-hook may change `task.inputs` (what it writes is what the executor gets "
           "and what is stored); post-hooks see every outcome."),
    ("code", "seen = []\n\n@register_pre_hook\ndef add_protocol(task):\n    url = (task.inputs or {}).get(\"url\")\n"
             "    if url and not url.startswith((\"http://\", \"https://\")):\n        task.inputs[\"url\"] = \"https://\" + url\n\n"
             "@register_post_hook\nasync def remember(task, inputs, result):\n    seen.append((task.name, task.status))\n\n"
             "@executor_register\nasync def echo_url(url: str) -> dict:\n    return {\"url\": url}\n\n"
             "echoed = await run_one(\"echo_url\", {\"url\": \"example.org\"})\necho_url_result = echoed[\"result\"]\n"
             "echo_url_result, seen[-1]"),
    ("md", "## A custom TaskModel: extra columns, stored and shown in history"),
    ("code", "from sqlalchemy import Column, String\nfrom apflow_nb import set_task_model_class\n"
             "from apflow_nb.core.storage.sqlalchemy.models import TaskModel\n\n"
             "class ProjectTaskModel(TaskModel):\n    __tablename__ = \"apflow_tasks\"\n"
             "    project_id = Column(String(255), nullable=True, index=True)\n\n"
             "set_task_model_class(ProjectTaskModel)\nmanager = TaskManager(create_session())\n"
             "tagged = await run_one(\"scale\", {\"values\": [3]}, project_id=\"proj-7\")\n"
             "apflow_nb.history(executor=\"scale\")[[\"task_id\", \"status\", \"project_id\", \"result.scaled\"]]"),
    ("code", "# checks\nassert hello[\"result\"] == {\"status\": \"completed\", \"greeting\": \"Hello notebook!\"}\n"
             "assert ok[\"result\"] == {\"scaled\": [2.0, 5.0]} and bad[\"status\"] == \"failed\"\n"
             "assert \"inputs.values\" in bad[\"error\"]\nassert summary[\"result\"][\"words\"] == 9\n"
             "assert echo_url_result == {\"url\": \"https://example.org\"} and (\"echo_url\", \"completed\") in seen\n"
             "h = apflow_nb.history(executor=\"scale\")\n"
             "assert h.set_index(\"task_id\").loc[tagged[\"id\"], \"project_id\"] == \"proj-7\""),
])

write("03-streaming-and-cancellation.ipynb", [
    ("md", "# Streaming progress and cancelling\n\nExecutors stream progress through `event_queue`; the view "
           "shows it live. A run can be cancelled from code (or with the view's buttons)."),
    ("code", "import asyncio\nimport apflow_nb\nfrom apflow_nb import ExecutableTask, executor_register"),
    ("code", "class Countdown(ExecutableTask):\n    id = \"countdown\"\n\n    async def execute(self, inputs):\n"
             "        steps = inputs.get(\"steps\", 20)\n        for step in range(steps):\n"
             "            if self.cancellation_checker():\n"
             "                return {\"status\": \"cancelled\", \"stopped_at\": step}\n"
             "            await self.event_queue.put({\"type\": \"progress\", \"task_id\": self.task_id,\n"
             "                                       \"data\": {\"step\": step + 1, \"progress\": (step + 1) / steps}})\n"
             "            await asyncio.sleep(inputs.get(\"pause\", 0.05))\n"
             "        return {\"status\": \"completed\", \"steps\": steps}\n\nexecutor_register(Countdown)"),
    ("md", "## A run that streams progress"),
    ("code", "tasks = [{\"id\": \"all\", \"name\": \"aggregate_results_executor\", \"dependencies\": [\"fast\", \"slow\"]},\n"
             "         {\"id\": \"fast\", \"name\": \"countdown\", \"parent_id\": \"all\", \"inputs\": {\"steps\": 10}},\n"
             "         {\"id\": \"slow\", \"name\": \"countdown\", \"parent_id\": \"all\", \"inputs\": {\"steps\": 20, \"pause\": 0.1}}]\n"
             "streamed = apflow_nb.run(tasks)"),
    ("code", "await streamed\nprogress_events = [e for e in streamed.events if e.type.value == \"task_progress\"]\n"
             "len(progress_events), streamed.status"),
    ("md", "## Cancelling from code\nThe checker turns true in the executor; tasks waiting on it end cancelled; "
           "nothing is left `in_progress`."),
    ("code", "long = [{\"id\": \"long-all\", \"name\": \"aggregate_results_executor\", \"dependencies\": [\"l1\", \"l2\"]},\n"
             "        {\"id\": \"l1\", \"name\": \"countdown\", \"parent_id\": \"long-all\", \"inputs\": {\"steps\": 200}},\n"
             "        {\"id\": \"l2\", \"name\": \"countdown\", \"parent_id\": \"long-all\", \"inputs\": {\"steps\": 200}}]\n"
             "doomed = apflow_nb.run(long)\nawait asyncio.sleep(0.5)\ndoomed.cancel()\nawait doomed\ndoomed.status"),
    ("code", "frame = doomed.frame()\nframe[[\"task_id\", \"status\", \"progress\", \"result.stopped_at\"]]"),
    ("code", "# checks\nassert streamed.status == \"completed\" and len(progress_events) >= 5\n"
             "assert doomed.status == \"cancelled\"\nassert set(frame[\"status\"]) == {\"cancelled\"}\n"
             "assert (frame[\"progress\"] < 1).all()"),
])

write("04-analysing-history.ipynb", [
    ("md", "# Analysing history\n\nEvery task a kernel ran is in the store; `apflow_nb.history()` returns them "
           "as a DataFrame (filters run in SQL, including `where=` on inputs and results), `apflow_nb.events()` "
           "the event log, `apflow_nb.compare()` runs side by side, `apflow_nb.timeline()` a Gantt chart."),
    ("code", "import asyncio, random\nimport apflow_nb\nfrom apflow_nb import executor_register\n\n"
             "@executor_register\nasync def train(model: str, lr: float, epochs: int = 3) -> dict:\n"
             "    await asyncio.sleep(0.02 * epochs)\n    if lr > 0.5:\n        raise ValueError(f\"learning rate {lr} diverged\")\n"
             "    return {\"accuracy\": round(0.9 - lr / 2, 3), \"epochs\": epochs}\n\n"
             "@executor_register\nasync def evaluate(**results) -> dict:\n    return {\"evaluated\": len(results)}"),
    ("code", "rng = random.Random(0)\nruns = []\nfor sweep in range(3):\n"
             "    grid = [{\"id\": f\"trial{i}\", \"name\": \"train\", \"parent_id\": \"sweep\",\n"
             "             \"inputs\": {\"model\": rng.choice([\"cnn\", \"mlp\"]), \"lr\": rng.choice([0.01, 0.1, 0.9]),\n"
             "                        \"epochs\": rng.randint(1, 5)}} for i in range(8)]\n"
             "    root = {\"id\": \"sweep\", \"name\": \"evaluate\",\n"
             "            \"dependencies\": [{\"id\": t[\"id\"], \"required\": False} for t in grid]}\n"
             "    runs.append(apflow_nb.run([root] + grid, display=sweep == 2))\nfor r in runs:\n    await r"),
    ("md", "The same task array ran three times: three runs, each with its own root id (`run.run_id`); the "
           "`key` column keeps the ids we wrote (`trial0`...) in every run."),
    ("md", "## Durations by executor"),
    ("code", "h = apflow_nb.history()\nh.groupby(\"executor\")[\"duration_s\"].describe()[[\"count\", \"mean\", \"max\"]]"),
    ("md", "## Failure rates"),
    ("code", "train_runs = apflow_nb.history(executor=\"train\")\nrates = train_runs.groupby(\"inputs.lr\")[\"status\"]"
             ".apply(lambda s: (s == \"failed\").mean())\nrates"),
    ("md", "## Filtering on inputs and results, in SQL\n`where=` takes Python comparison syntax (never "
           "evaluated: parsed into SQL with bound parameters). Comparisons are typed; `order_by`, `columns` "
           "and `limit`/`offset` page through the result without reading the rest."),
    ("code", "best = apflow_nb.history(executor=\"train\", where=\"inputs.model == 'cnn' and result.accuracy > 0.8\",\n"
             "                         order_by=[\"result.accuracy desc\", \"inputs.epochs\"],\n"
             "                         columns=[\"key\", \"root_id\", \"inputs.lr\", \"inputs.epochs\", \"result.accuracy\"])\n"
             "best"),
    ("md", "## The errors of failed tasks, once\n`error` is the message, `error_type` the exception's class, "
           "`traceback` its own column. A filtered frame keeps every column the executor ever had (NaN here: "
           "no failed task has a result)."),
    ("code", "failed = apflow_nb.history(status=\"failed\", executor=\"train\")\n"
             "failed[[\"key\", \"inputs.model\", \"inputs.lr\", \"error\", \"error_type\", \"result.accuracy\"]]"),
    ("md", "## Two sweeps side by side\nOne row per task key, one column group per run: status, duration and "
           "each input and result that differs (highlighted)."),
    ("code", "apflow_nb.compare(runs[0], runs[1])"),
    ("md", "## A filter you run often: index it\nAn expression index on the key makes `where=` on it a search "
           "instead of a scan (history() itself never writes to the store)."),
    ("code", "apflow_nb.index(None, \"inputs.model\")\nprint(apflow_nb.analysis.explain(where=\"inputs.model == 'cnn'\"))"),
    ("md", "## The event log and a timeline of one run"),
    ("code", "apflow_nb.events(root_id=runs[2].run_id).head()"),
    ("code", "apflow_nb.timeline(runs[2].run_id)"),
    ("code", "# checks\nassert len(h) >= 27 and set(h[\"executor\"]) >= {\"train\", \"evaluate\"}\n"
             "assert (failed[\"inputs.lr\"] == 0.9).all() and len(failed) > 0\n"
             "assert (failed[\"error_type\"] == \"ValueError\").all() and failed[\"result.accuracy\"].isna().all()\n"
             "assert \"result.error\" not in h.columns and \"result.accuracy\" in failed.columns\n"
             "assert rates.loc[0.9] == 1.0 and rates.loc[0.01] == 0.0\n"
             "assert (best[\"result.accuracy\"] > 0.8).all() and best[\"result.accuracy\"].is_monotonic_decreasing\n"
             "assert \"USING INDEX\" in apflow_nb.analysis.explain(where=\"inputs.model == 'cnn'\")\n"
             "assert apflow_nb.events(root_id=runs[2].run_id)[\"event_type\"].iloc[-1] == \"tree_finished\""),
])

write("05-scale-out-with-dask.ipynb", [
    ("md", "# Scale out: executors on Dask workers\n\nThe orchestration stays in this notebook; each ready task's "
           "executor runs on a Dask worker. Executors defined in cells travel by value; progress comes back to the view."),
    ("code", "import os, time\nimport apflow_nb\nfrom apflow_nb import ExecutableTask, executor_register\n"
             "from distributed import Client, LocalCluster\n\n"
             "cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)\n"
             "client = Client(cluster)\nclient"),
    ("code", "class Crunch(ExecutableTask):\n    id = \"crunch\"\n\n    async def execute(self, inputs):\n"
             "        end = time.perf_counter() + inputs[\"ms\"] / 1000\n        x = 0\n"
             "        while time.perf_counter() < end:\n            x = (x * 31 + 7) % 1_000_003\n"
             "        await self.event_queue.put({\"type\": \"progress\", \"data\": {\"progress\": 1.0}})\n"
             "        return {\"checksum\": x, \"pid\": os.getpid()}\n\nexecutor_register(Crunch)\n\n"
             "def crunch_tree(tag, n=40, ms=50):\n    kids = [{\"id\": f\"{tag}-{i}\", \"name\": \"crunch\", \"parent_id\": tag, \"inputs\": {\"ms\": ms}}\n"
             "            for i in range(n)]\n"
             "    return [{\"id\": tag, \"name\": \"aggregate_results_executor\", \"dependencies\": [k[\"id\"] for k in kids]}] + kids"),
    ("code", "t0 = time.perf_counter()\nawait apflow_nb.run(crunch_tree(\"local\"), display=False)\nlocal_s = time.perf_counter() - t0\n\n"
             "t0 = time.perf_counter()\non_dask = apflow_nb.run(crunch_tree(\"dask\"), runner=client)\nawait on_dask\n"
             "dask_s = time.perf_counter() - t0\nprint(f\"local {local_s:.2f} s, on 2 Dask workers {dask_s:.2f} s\")"),
    ("code", "pids = {r[\"pid\"] for r in on_dask.tree.task.result[\"results\"].values()}\n"
             "# checks\nassert on_dask.status == \"completed\" and os.getpid() not in pids\n"
             "client.close()\ncluster.close()"),
])


write("06-iterate-with-the-cache.ipynb", [
    ("md", "# Iterate at notebook speed: caching, retries, timeouts\n\nEdit one executor cell, run the tree "
           "again, look: with `--cache`, only the tasks whose executor changed (and what their new results "
           "change) run again. Cached results live in the store, so another kernel on the same store reuses them."),
    ("code", "%load_ext apflow_nb\nimport apflow_nb\n\napflow_nb.clear_cache()  # start clean, so this tutorial shows "
             "the same each time it runs\nCALLS = []  # which executors really ran"),
    ("code", "%%executor --cache --quiet\nimport asyncio\n\nasync def load(n: int) -> dict:\n"
             "    CALLS.append(\"load\")\n    await asyncio.sleep(0.2)  # pretend this is slow\n"
             "    return {\"rows\": n * 10}"),
    ("code", "%%executor --cache --quiet\ndef score(rows: int) -> dict:\n    CALLS.append(\"score\")\n"
             "    return {\"score\": rows + 1}"),
    ("code", "%%executor --cache --quiet\ndef report(score: int) -> dict:\n    CALLS.append(\"report\")\n"
             "    return {\"line\": f\"score {score}\"}"),
    ("md", "## The first run computes everything"),
    ("code", "%%tree --name first\n- {id: report, name: report, dependencies: [score]}\n"
             "- {id: score, name: score, parent_id: report, dependencies: [load]}\n"
             "- {id: load, name: load, parent_id: report, inputs: {n: 4}}"),
    ("code", "await first\nCALLS"),
    ("md", "## Edit one cell, run again\nHere the `score` cell is run with new code (in a notebook you would edit "
           "the cell above). `load` is taken from the cache; `score` and `report` (whose input changed) run. The "
           "view counts the cached tasks apart, and the frame says which task each cached result came from."),
    ("code", "%%executor --cache --quiet\ndef score(rows: int) -> dict:\n    CALLS.append(\"score\")\n"
             "    return {\"score\": rows + 2}  # edited"),
    ("code", "CALLS.clear()\nsecond = apflow_nb.run([{\"id\": \"report\", \"name\": \"report\", "
             "\"dependencies\": [\"score\"]},\n"
             "                        {\"id\": \"score\", \"name\": \"score\", \"parent_id\": \"report\", "
             "\"dependencies\": [\"load\"]},\n"
             "                        {\"id\": \"load\", \"name\": \"load\", \"parent_id\": \"report\", "
             "\"inputs\": {\"n\": 4}}])\nawait second\nCALLS"),
    ("code", "second.frame()[[\"key\", \"status\", \"cached_from\", \"result.score\", \"result.line\"]]"),
    ("md", "## Retries and timeouts\n`--retries N` tries a failed task again (after `--retry-delay` seconds, "
           "stretched by up to `--retry-jitter`); `--timeout S` stops an attempt through the normal cancellation "
           "path and counts it as a failure (`TaskTimeout`). Each retry is a `task_retrying` event; the task keeps "
           "its `attempts`."),
    ("code", "%%executor --retries 3 --retry-delay 0.05 --quiet\nTRIES = []\n\ndef flaky(url: str) -> dict:\n"
             "    TRIES.append(url)\n    if len(TRIES) < 3:\n        raise ConnectionError(\"the server hung up\")\n"
             "    return {\"url\": url, \"tries\": len(TRIES)}"),
    ("code", "flaky_run = apflow_nb.run([{\"id\": \"get\", \"name\": \"flaky\", \"inputs\": {\"url\": \"https://example.org\"}}])\n"
             "await flaky_run\nflaky_run.frame()[[\"key\", \"status\", \"attempts\", \"result.tries\"]]"),
    ("code", "%apflow cache"),
    ("code", "# checks (CI runs every notebook)\nassert sorted(CALLS) == [\"report\", \"score\"]\n"
             "frame = second.frame().set_index(\"key\")\n"
             "assert frame.loc[\"load\", \"cached_from\"] == first.tree.find(\"load\").task.id\n"
             "assert frame.loc[\"report\", \"result.line\"] == \"score 42\"\n"
             "assert second.state.counts[\"cached\"] == 1\n"
             "assert flaky_run.tree.task.attempts == 3 and flaky_run.status == \"completed\""),
])

