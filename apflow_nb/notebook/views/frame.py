"""The frame: everything a view of a run shows at one moment, computed once from a RunState.

Like tqdm's ``format_dict``, one plain value feeds every drawer: the text repr, the HTML repr and
the live widget render the same Frame, so they cannot disagree. It holds no markup and no
widgets; drawers turn it into characters, HTML or widget values. Every string in it is the raw
value (ids, keys, errors as stored): drawers escape for their medium.

Which rows a frame shows (at most ``max_rows`` tasks):
- a run of at most ``max_rows`` tasks: every task in tree order, indented by depth (rows never move);
- a bigger run: sections, each titled: the running tasks first (in stable slots, see ``Slots``),
  then the failed ones, then the tree from its top; a last line counts the tasks left out;
- a page (``start=k``): the tasks k … k + max_rows in tree order.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Union

from apflow_nb.core.types import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, PENDING
from apflow_nb.analysis.palette import CACHED, CANCELLING, SHOWN, SKIPPED, UNKNOWN, words
from apflow_nb.notebook.progress import RunState, TaskRow

GROUPS_FROM = 20  # group summary lines appear from this many tasks on
MAX_GROUPS = 12
LINGER = 1.0  # seconds a free row at the end of the running section stays, showing how its task ended
MAX_FAILURES = 20
BUTTON_AFTER = 0.5  # a running task gets its Cancel button once it has run this long (no flicker for quick ones)
SEGMENTS = (COMPLETED, CACHED, FAILED, SKIPPED, CANCELLED, IN_PROGRESS)


@dataclass(frozen=True)
class RowFrame:
    """One task as a view shows it. ``cancel`` is "" (no button), "cancel" or "cancelling"."""

    id: str
    key: str
    depth: int
    executor: str
    status: str  # a shown status (palette): pending, in_progress, cancelling, completed, failed, ...
    words: str  # the status cell: "running", "skipped: upstream 'bad' failed", "cancelling… (grace 3 s)"
    progress: float
    seconds: str
    note: str  # one line under the status: the error's first line, a cancel message
    error: str  # the whole error with its traceback ("" when none)
    cancel: str = ""

    @property
    def tooltip(self) -> str:
        """``task t1 · id t1@5f3a · executor tick``."""
        return tooltip(self.key, self.id, self.executor)


@dataclass(frozen=True)
class Mark:
    """A line of the table that is not a task: a section title, or a count of tasks left out."""

    text: str
    kind: str = "gap"  # "gap" or "section"
    count: int = 0


Line = Union[RowFrame, Mark]


@dataclass(frozen=True)
class GroupFrame:
    """One executor's summary line: ``tick 183/300 · 2 failed``, with its own bar."""

    name: str
    total: int
    done: int
    counts: tuple[tuple[str, int], ...]
    segments: tuple[tuple[str, float], ...]
    progress: float

    @property
    def line(self) -> str:
        parts = [f"{self.name} {self.done}/{self.total}"]
        parts += [f"{n} {words(s) if s != IN_PROGRESS else 'running'}" for s, n in self.counts
                  if s not in (COMPLETED, PENDING) and n]
        return " · ".join(parts)


@dataclass(frozen=True)
class Frame:
    """A run at one moment: the header's numbers, the group lines, the table's lines, the failures."""

    root_id: str
    root_key: str
    status: str
    final: bool
    total: int
    done: int
    counts: tuple[tuple[str, int], ...]  # shown statuses with a count, in palette order
    progress: float
    segments: tuple[tuple[str, float], ...]
    elapsed: str
    lines: tuple[Line, ...]
    groups: tuple[GroupFrame, ...] = ()
    more_groups: int = 0
    note: str = ""  # under the table: how many tasks are shown, and in what order
    failures: tuple[tuple[str, str, str, str], ...] = ()  # (id, key, first line, whole error)
    more_failures: int = 0
    error: str = ""  # the run could not run at all
    blocked: str = ""
    can_cancel: bool = False  # a "Cancel run" makes sense now
    cancelling: bool = False  # the whole run was asked to cancel and is winding down
    paged: bool = False  # the table is a page of the tree, chosen by the user

    @property
    def rows(self) -> list[RowFrame]:
        """The task lines only."""
        return [line for line in self.lines if isinstance(line, RowFrame)]

    @property
    def counts_text(self) -> str:
        """``5 completed · 1 failed · 2 skipped``."""
        return " · ".join(f"{n} {words(s)}" for s, n in self.counts)

    @property
    def headline(self) -> str:
        """``failed · 8/8 done (1 failed, 2 skipped) · 100% · 1.2 s``: what is not completed, apart."""
        status = "cancelling" if self.cancelling and not self.final else self.status
        counts = dict(self.counts)
        apart = ", ".join(f"{counts[s]} {s}" for s in (CACHED, FAILED, SKIPPED, CANCELLED, IN_PROGRESS, UNKNOWN)
                          if counts.get(s))
        return (f"{status} · {self.done}/{self.total} done" + (f" ({apart})" if apart else "")
                + f" · {self.progress:.0%} · {self.elapsed}")


@dataclass
class Slots:
    """Stable places for a big run's running tasks: the first rows of its table.

    A task keeps its row while it runs. Once it ended, its row shows how it ended until a newly
    started task needs a place: the rows of the tasks that ended longest ago are taken first, new
    rows are added only when none is free (up to ``cap``), and free rows at the end go once their
    task ended ``LINGER`` seconds ago. Rows never shift, and a Cancel button names the task it
    cancels (the widget also ignores a click that arrives right after a row changed task, see
    ``WidgetDrawer``).
    """

    cap: int
    ids: list[str] = field(default_factory=list)
    _ended: dict[str, float] = field(default_factory=dict)

    def update(self, state: RunState, now: float) -> list[str]:
        """The slot rows' task ids for this frame (running ones placed, ended ones kept while room allows)."""
        rows = state.rows
        for tid in self.ids:
            row = rows.get(tid)
            if (row is None or row.status != IN_PROGRESS) and tid not in self._ended:
                self._ended[tid] = row.ended if row is not None and row.ended is not None else now
        placed = set(self.ids)
        room = self.cap - len(self.ids) + len(self._ended)
        waiting = list(islice((tid for tid in state.iter_ids(IN_PROGRESS) if tid not in placed), max(0, room)))
        if waiting:
            free = sorted((self._ended[tid], i) for i, tid in enumerate(self.ids) if tid in self._ended)
            for _, i in free[:len(waiting)]:
                self._ended.pop(self.ids[i])
                self.ids[i] = waiting.pop(0)
            while waiting and len(self.ids) < self.cap:
                self.ids.append(waiting.pop(0))
        while self.ids and now - self._ended.get(self.ids[-1], now) >= LINGER:  # the last rows, once free, go
            self._ended.pop(self.ids.pop(), None)
        return [tid for tid in self.ids if tid in rows]


def tooltip(key: str, task_id: str, executor: str) -> str:
    """A row's tooltip: its key, its stored id and its executor."""
    return f"task {key} · id {task_id} · executor {executor or '?'}"


def _seconds(row: TaskRow, now: float, digits: int) -> str:
    elapsed = row.elapsed(now)
    if elapsed is None:
        return ""
    return f"{elapsed:.{digits if row.status == IN_PROGRESS else 1}f} s"


def row_frame(state: RunState, row: TaskRow, now: float, digits: int = 1, flat: bool = False) -> RowFrame:
    """One task's line: its shown status and words, time, note and Cancel state."""
    status, note, cancel = row.bucket, "", ""
    text = words(status)
    if status == IN_PROGRESS:
        if row.cancel_asked is not None:
            status, cancel = CANCELLING, "cancelling"
            text = f"cancelling… (grace {state.grace:g} s)"
        elif not state.finished and (now - row.started if row.started is not None else 0.0) >= BUTTON_AFTER:
            cancel = "cancel"
    elif status == SKIPPED:
        text = f"skipped: upstream {row.upstream!r} " + ("failed" if row.status == FAILED else "was cancelled")
    elif status == CACHED:
        note = f"result of {row.cached_from}"
    elif status == FAILED:
        note = row.error_line
    elif status == CANCELLED and row.message:
        note = row.message
    return RowFrame(id=row.id, key=row.key, depth=0 if flat else row.depth, executor=row.executor or "",
                    status=status, words=text, progress=row.progress, seconds=_seconds(row, now, digits),
                    note=note[:300], error=row.error or "" if status == FAILED else "", cancel=cancel)


def _plural(n: int, what: str = "task") -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _focus_lines(state: RunState, max_rows: int, now: float, digits: int, slots: Slots | None) -> list[Line]:
    """A big run's table: running tasks (in their slots), failed ones, then the tree from the top."""
    shown: dict[str, None] = {}
    lines: list[Line] = []

    def section(title: str, ids: list[str], flat: bool = True) -> None:
        ids = [t for t in ids if t not in shown]
        if ids:
            lines.append(Mark(title, "section", len(ids)))
            for tid in ids:
                shown[tid] = None
                lines.append(row_frame(state, state.rows[tid], now, digits, flat))

    if not state.finished:
        running = state.counts[IN_PROGRESS]
        ids = slots.update(state, now) if slots is not None else list(islice(state.iter_ids(IN_PROGRESS),
                                                                               max_rows * 3 // 4))
        hidden = running - sum(1 for t in ids if state.rows[t].status == IN_PROGRESS)
        section(f"running · {running}" + (f" ({hidden} not shown here)" if hidden > 0 else ""), ids)
    failed = state.ids(FAILED)
    section(f"failed · {len(failed)}", failed[:max(1, max_rows // 4)])
    budget = max_rows - len(shown)
    rest = []
    for tid in state.rows:
        if len(rest) >= budget:
            break
        if tid not in shown:
            rest.append(tid)
    section("all tasks, in tree order", rest, flat=False)
    left = state.total - len(shown)
    if left > 0:
        lines.append(Mark(f"⋯ {_plural(left)} not shown", "gap", left))
    return lines


def _page_lines(state: RunState, max_rows: int, start: int, now: float, digits: int) -> list[Line]:
    start = max(0, min(start, max(0, state.total - 1)))
    rows = list(state.rows.values())
    page = rows[start:start + max_rows]
    lines: list[Line] = [Mark(f"⋯ {_plural(start)} above", "gap", start)] if start else []
    lines += [row_frame(state, row, now, digits) for row in page]
    below = state.total - start - len(page)
    if below > 0:
        lines.append(Mark(f"⋯ {_plural(below)} below", "gap", below))
    return lines


def _groups(state: RunState) -> tuple[tuple[GroupFrame, ...], int]:
    if state.total < GROUPS_FROM:
        return (), 0
    groups = state.groups
    out = []
    for g in groups[:MAX_GROUPS]:
        counts = tuple((s, g.counts.get(s, 0)) for s in SHOWN if g.counts.get(s, 0))
        segments = tuple((s, g.share(s)) for s in SEGMENTS)
        out.append(GroupFrame(g.name, g.total, g.done, counts, segments, g.progress))
    return tuple(out), max(0, len(groups) - MAX_GROUPS)


def build_frame(state: RunState, max_rows: int = 100, *, start: int | None = None, slots: Slots | None = None,
                now: float | None = None, digits: int = 1) -> Frame:
    """The frame of ``state``: header numbers, group lines, at most ``max_rows`` task lines, failures.

    ``start``: show the page of tasks from that position in tree order. ``slots``: keep running
    tasks in stable rows between frames (a live view passes the same Slots every time).
    ``digits``: decimals of running tasks' times (0 keeps a live table from changing every redraw).
    """
    now = time.time() if now is None else now
    if max_rows <= 0:
        lines = []
    elif start is not None:
        lines = _page_lines(state, max_rows, start, now, digits)
    elif state.total <= max_rows:
        lines = [row_frame(state, row, now, digits) for row in state.rows.values()]
    else:
        lines = _focus_lines(state, max_rows, now, digits, slots)
    shown = sum(1 for line in lines if isinstance(line, RowFrame))
    note = ""
    if shown < state.total:
        how = f"from task {start + 1}" if start is not None else "running and failed first"
        note = f"{shown} of {state.total} tasks shown ({how}); run.frame() lists them all"
    errors = state.errors
    failures = tuple((tid, state.rows[tid].key, state.rows[tid].error_line, error)
                     for tid, error in list(errors.items())[:MAX_FAILURES])
    groups, more_groups = _groups(state)
    counts = state.counts
    root = state.rows.get(state.root_id)
    seconds = state.elapsed(now)
    return Frame(
        root_id=state.root_id, root_key=root.key if root is not None else state.root_id,
        status=state.status, final=state.finished, total=state.total, done=state.done,
        counts=tuple((s, counts[s]) for s in SHOWN if counts.get(s)), progress=state.progress,
        segments=tuple((s, state.share(s)) for s in SEGMENTS),
        elapsed=f"{seconds:.1f} s" if state.finished or digits else f"{seconds:.0f} s",
        lines=tuple(lines), groups=groups, more_groups=more_groups, note=note, failures=failures,
        more_failures=max(0, len(errors) - MAX_FAILURES), error=state.error or "", blocked=state.blocked or "",
        can_cancel=not state.finished, cancelling=state.cancel_run_asked and not state.finished,
        paged=start is not None)
