"""aggregate_results_executor: collects its dependencies' results into one dict."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from apflow_nb.core.interfaces.executable_task import ExecutableTask


class AggregateResultsExecutor(ExecutableTask):
    """Returns ``{"summary", "timestamp", "results": {<dependency id>: <result>}, "result_count"}``.

    Dependency results reach it keyed by dependency id (it declares no input fields); other
    inputs are left out of ``results`` unless the task has no dependencies, in which case every
    input counts as a result.
    """

    id = "aggregate_results_executor"
    name = "Aggregate Results"
    description = "Collects the results of the task's dependencies"

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        task = self.task
        dep_ids = [d["id"] if isinstance(d, dict) else d for d in (getattr(task, "dependencies", None) or [])]
        if dep_ids:
            results = {dep_id: inputs[dep_id] for dep_id in dep_ids if dep_id in inputs}
        else:
            results = dict(inputs)
        return {
            "summary": f"Aggregated {len(results)} result(s)",
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "results": results,
            "result_count": len(results),
        }
