"""timeline(): keys as labels, a mark for tasks that took no time, one row per executor beyond
``max_tasks`` (a bounded height), the legend outside the plot. Real runs on a SQLite file."""
from __future__ import annotations

import asyncio

import pytest

import apflow_nb
from apflow_nb import TaskManager, executor_register
from apflow_nb.analysis.timeline import MAX_INCHES
from apflow_nb.analysis.palette import hex_color


@pytest.fixture(autouse=True)
def _executors():
    @executor_register
    async def nap(s: float = 0.0, fail: bool = False) -> dict:
        await asyncio.sleep(s)
        if fail:
            raise RuntimeError("nap failed")
        return {}


async def test_small_run_labels_keys_marks_instant_tasks_and_keeps_the_legend_outside(db):
    run = apflow_nb.run([{"id": "all", "name": "aggregate_results_executor", "dependencies": ["slow", "bad"]},
                         {"id": "slow", "name": "nap", "parent_id": "all", "inputs": {"s": 0.2}},
                         {"id": "bad", "name": "nap", "parent_id": "all", "inputs": {"fail": True}}],
                        manager=TaskManager(db), display=False)
    await run
    run2 = apflow_nb.run([{"id": "all", "name": "aggregate_results_executor"}], manager=TaskManager(db), display=False)
    await run2  # a second run of the same ids: labels stay the keys the user wrote
    fig = apflow_nb.timeline(run2.run_id, db)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["all"]
    fig = apflow_nb.timeline(run.run_id, db)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["all", "  slow", "  bad"]
    marks = [c for c in ax.collections if len(c.get_offsets())]
    assert {tuple(c.get_offsets()[0])[1] for c in marks} >= {2.0}  # "bad" failed at once: a diamond on its row
    assert any(p.get_width() >= 0.15 for p in ax.patches)  # "slow" a bar
    colors = {tuple(round(v, 3) for v in c.get_facecolor()[0][:3]) for c in marks}
    from matplotlib.colors import to_rgb
    assert tuple(round(v, 3) for v in to_rgb(hex_color("failed"))) in colors
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # outside, to the right: covers no bar
    texts = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"completed", "failed"} <= texts and "skipped" in texts  # "all" never ran: skipped, not failed


async def test_a_big_run_is_one_row_per_executor_and_its_height_is_capped(db):
    specs = [{"id": "root", "name": "aggregate_results_executor"}]
    specs += [{"id": f"n{i}", "name": "nap", "parent_id": "root", "inputs": {"s": 0.001 * (i % 5)}} for i in range(120)]
    run = apflow_nb.run(specs, manager=TaskManager(db), display=False)
    await run
    fig = apflow_nb.timeline(run.run_id, db, max_tasks=40)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["aggregate_results_executor (1 tasks)", "nap (120 tasks)"]
    assert fig.get_figheight() <= MAX_INCHES and "one row per executor" in ax.get_title()
    fig = apflow_nb.timeline(run.run_id, db, max_tasks=500)
    assert len(fig.axes[0].get_yticklabels()) == 121 and fig.get_figheight() <= MAX_INCHES
