"""The frame every drawer renders, from RunStates fed with the core's events (no frontend): which
rows a view shows and in what order, keys first, skipped and cancelling words, group lines, stable
running slots, pages, and the failures list."""
from __future__ import annotations

from apflow_nb.core.events import Event, EventType
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.frame import BUTTON_AFTER, LINGER, Mark, RowFrame, Slots, build_frame
from apflow_nb.notebook.views.text import frame_text


def started(n: int, executor: str = "tick", run_tag: str = "") -> RunState:
    """A run of a root and ``n`` children (ids ``t{i}{run_tag}``, keys ``t{i}``), tree_started applied."""
    state = RunState(root_id="root")
    tasks = [{"id": "root", "key": "root", "name": "aggregate", "parent_id": None, "depth": 0, "status": "pending",
              "executor": "aggregate_results_executor"}]
    tasks += [{"id": f"t{i}{run_tag}", "key": f"t{i}", "name": executor, "parent_id": "root", "depth": 1,
               "status": "pending", "executor": executor} for i in range(n)]
    state.apply(Event(EventType.TREE_STARTED, "root", "root", "in_progress", timestamp=1000.0, data={"tasks": tasks}))
    return state


def start(state: RunState, tid: str, at: float = 1000.0) -> None:
    state.apply(Event(EventType.TASK_STARTED, tid, "root", "in_progress", timestamp=at))


def end(state: RunState, tid: str, status: str = "completed", at: float = 1001.0, **data) -> None:
    kind = {"completed": EventType.TASK_COMPLETED, "failed": EventType.TASK_FAILED,
            "cancelled": EventType.TASK_CANCELLED}[status]
    state.apply(Event(kind, tid, "root", status, timestamp=at, data=data))


def keys(frame) -> list[str]:
    return [line.key if isinstance(line, RowFrame) else f"<{line.kind}>" for line in frame.lines]


def test_a_small_run_is_its_tree_in_order_with_keys_first():
    state = started(3, run_tag="@5f3a")
    start(state, "t1@5f3a", at=1000.0)
    frame = build_frame(state, 100, now=1002.0)
    assert keys(frame) == ["root", "t0", "t1", "t2"]  # the keys the user wrote, not the tagged ids
    row = frame.lines[2]
    assert (row.id, row.key, row.depth, row.words, row.cancel) == ("t1@5f3a", "t1", 1, "running", "cancel")
    assert row.tooltip == "task t1 · id t1@5f3a · executor tick"
    assert frame.lines[1].cancel == "" and frame.lines[1].words == "pending"
    assert frame.root_key == "root" and frame.counts == (("in_progress", 1), ("pending", 3))
    assert frame.headline.startswith("in_progress · 0/4 done (1 in_progress) · 0% · ")
    assert frame.can_cancel and not frame.final and frame.groups == ()  # small: no group lines


def test_a_task_just_started_gets_its_cancel_button_a_moment_later():
    state = started(1)
    start(state, "t0", at=1000.0)
    assert build_frame(state, now=1000.0 + BUTTON_AFTER / 2).lines[1].cancel == ""
    assert build_frame(state, now=1000.0 + BUTTON_AFTER).lines[1].cancel == "cancel"


def test_skipped_tasks_say_why_and_counts_keep_them_apart():
    state = started(3)
    for i in range(3):
        start(state, f"t{i}")
    end(state, "t0")
    end(state, "t1", "failed", error="ValueError: bad\n\nTraceback (most recent call last):\n  ...")
    end(state, "t2", "cancelled", message="cancelled by request")
    end(state, "root", "failed", error="skipped: required dependency 't1' failed", error_type="DependencyFailed",
        upstream="t1")
    state.apply(Event(EventType.TREE_FINISHED, "root", "root", "failed", timestamp=1002.0))
    frame = build_frame(state, now=1003.0)
    by_key = {row.key: row for row in frame.rows}
    assert by_key["root"].status == "skipped" and by_key["root"].words == "skipped: upstream 't1' failed"
    assert by_key["root"].note == "" and by_key["root"].error == ""  # not presented as a failure
    assert by_key["t1"].status == "failed" and by_key["t1"].note == "ValueError: bad" and "Traceback" in by_key["t1"].error
    assert by_key["t2"].note == "cancelled by request" and by_key["t2"].cancel == ""
    assert dict(frame.counts) == {"completed": 1, "failed": 1, "skipped": 1, "cancelled": 1}
    assert frame.counts_text == "1 completed · 1 failed · 1 skipped · 1 cancelled"
    assert [f[1] for f in frame.failures] == ["t1"]  # only real failures get a traceback entry
    assert frame.final and not frame.can_cancel
    segments = dict(frame.segments)
    assert segments["completed"] == 0.25 and segments["failed"] == 0.25 and segments["skipped"] == 0.25
    text = frame_text(frame)
    assert "⤼ root [aggregate_results_executor] skipped: upstream 't1' failed" in text
    assert "✘ t1 [tick] failed" in text and "— ValueError: bad" in text


def test_a_skip_after_a_cancel_says_so():
    state = started(1)
    start(state, "t0")
    end(state, "t0", "cancelled")
    end(state, "root", "cancelled", message="skipped: required dependency 't0' was cancelled",
        error_type="DependencyCancelled", upstream="t0")
    row = build_frame(state).lines[0]
    assert row.status == "skipped" and row.words == "skipped: upstream 't0' was cancelled"


def test_cancelling_shows_the_grace_period_until_the_task_stops():
    state = started(2)
    state.grace = 3.0
    start(state, "t0")
    start(state, "t1")
    state.ask_cancel("t0")
    frame = build_frame(state, now=1005.0)
    t0, t1 = frame.lines[1], frame.lines[2]
    assert (t0.status, t0.words, t0.cancel) == ("cancelling", "cancelling… (grace 3 s)", "cancelling")
    assert (t1.status, t1.cancel) == ("in_progress", "cancel")
    end(state, "t0", "cancelled")
    assert build_frame(state, now=1006.0).lines[1].cancel == ""
    state.ask_cancel()
    frame = build_frame(state, now=1006.0)
    assert frame.cancelling and frame.headline.startswith("cancelling · ")


def test_a_big_run_shows_running_then_failed_then_the_tree_each_titled():
    state = started(300)
    for i in range(300):
        start(state, f"t{i}")
        if i < 183:
            end(state, f"t{i}", "failed" if i in (40, 120) else "completed", error="ValueError: x")
    frame = build_frame(state, 100, now=1010.0)
    lines = frame.lines
    assert isinstance(lines[0], Mark) and lines[0].kind == "section" and lines[0].text == "running · 117 (42 not shown here)"
    running = [line.key for line in lines[1:76]]
    assert running == [f"t{i}" for i in range(183, 258)]  # truly first: 75 of 117 running (3/4 of the rows)
    assert lines[76].text == "failed · 2" and [line.key for line in lines[77:79]] == ["t40", "t120"]
    assert lines[79].text == "all tasks, in tree order" and lines[80].key == "root"
    assert isinstance(lines[-1], Mark) and lines[-1].text.endswith("not shown")
    assert len(frame.rows) == 100 and lines[-1].count == 301 - 100
    assert frame.note == "100 of 301 tasks shown (running and failed first); run.frame() lists them all"
    tick = next(g for g in frame.groups if g.name == "tick")
    assert tick.line == "tick 183/300 · 2 failed · 117 running"
    assert tick.done == 183 and dict(tick.counts)["failed"] == 2


def test_running_slots_keep_their_rows_and_ended_rows_make_room():
    state = started(200)
    slots = Slots(cap=4)
    for i in range(3):
        start(state, f"t{i}", at=1000.0)
    assert slots.update(state, 1001.0) == ["t0", "t1", "t2"]
    end(state, "t1", at=1001.0)
    assert slots.update(state, 1001.1) == ["t0", "t1", "t2"]  # t1 shows how it ended, in its own row
    end(state, "t0", at=1001.2)
    start(state, "t3", at=1001.3)
    assert slots.update(state, 1001.3) == ["t0", "t3", "t2"]  # a newcomer takes the row that ended first
    start(state, "t4", at=1001.4)
    start(state, "t5", at=1001.4)
    assert slots.update(state, 1001.4) == ["t4", "t3", "t2", "t5"]  # then the next; then a new row at the end
    end(state, "t5", at=1001.5)
    assert slots.update(state, 1001.5 + LINGER / 2) == ["t4", "t3", "t2", "t5"]  # rows never shift
    end(state, "t2", at=1002.0)
    assert slots.update(state, 1002.0 + LINGER) == ["t4", "t3"]  # free rows at the end go after LINGER
    end(state, "t3", at=1003.0)
    end(state, "t4", at=1003.0)
    assert slots.update(state, 1003.0 + LINGER) == []


def test_pages_of_the_tree_and_marks_for_what_is_left_out():
    state = started(250)
    frame = build_frame(state, 100, start=100)
    assert isinstance(frame.lines[0], Mark) and frame.lines[0].text == "⋯ 100 tasks above"
    assert [r.key for r in frame.rows] == [f"t{i}" for i in range(99, 199)]
    assert frame.lines[-1].text == "⋯ 51 tasks below" and frame.paged
    assert "(from task 101)" in frame.note
    last = build_frame(state, 100, start=200)
    assert not isinstance(last.lines[-1], Mark) and last.lines[-1].key == "t249"


def test_failures_are_listed_by_key_up_to_a_limit():
    state = started(30)
    for i in range(30):
        start(state, f"t{i}")
        end(state, f"t{i}", "failed", error=f"RuntimeError: {i}\n\nTraceback ...")
    frame = build_frame(state, 100)
    assert len(frame.failures) == 20 and frame.more_failures == 10
    assert frame.failures[0][:3] == ("t0", "t0", "RuntimeError: 0")
