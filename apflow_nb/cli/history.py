"""``apflow-nb history``: stored tasks, newest first (``apflow_nb.history``), as a table, CSV or JSON.

``--since`` takes an ISO date or time (UTC unless it says otherwise) or an age: 30m, 2h, 7d.
"""
from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from apflow_nb.cli.common import CliUsageError, add_store, store_url

TABLE_COLUMNS = ["task_id", "key", "name", "executor", "status", "started_at", "duration_s", "error"]
AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def add_parser(commands: Any) -> None:
    p = commands.add_parser("history", help="stored tasks, newest first, as a table, CSV or JSON",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--status", help="comma-separated statuses, e.g. failed,cancelled")
    p.add_argument("--executor", help="comma-separated executor ids")
    p.add_argument("--root", dest="root_id", metavar="ROOT_ID", help="one run, in tree order")
    p.add_argument("--since", help="ISO date/time, or an age such as 30m, 2h, 7d")
    p.add_argument("--limit", type=int, metavar="N", help="at most N tasks")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    add_store(p)
    p.set_defaults(handler=history_command)


def since_of(text: str | None, now: datetime | None = None) -> datetime | str | None:
    """An age (``2h``) as the datetime that long ago; anything else is left to history() to read."""
    if text is None:
        return None
    match = AGE.match(text.strip())
    if match is None:
        return text
    now = now or datetime.now(timezone.utc)
    return now - timedelta(**{UNITS[match.group(2)]: float(match.group(1))})


def history_command(args: argparse.Namespace) -> int:
    try:
        from apflow_nb.analysis import history
    except ImportError as exc:  # pandas is an extra
        raise CliUsageError(f"history needs pandas ({exc}): pip install 'apflow_nb[history]'") from None
    split = lambda v: None if v is None else [s for s in v.split(",") if s]  # noqa: E731
    frame = history(store_url(args.store), status=split(args.status), executor=split(args.executor),
                    root_id=args.root_id, since=since_of(args.since), limit=args.limit)
    print(render(frame, args.format), flush=True)
    return 0


def render(frame: Any, fmt: str) -> str:
    """The frame as an aligned table (the main columns, errors on one line), CSV or JSON records."""
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso")
    if frame.empty:
        return "no stored tasks match"
    shown = frame[[c for c in TABLE_COLUMNS if c in frame.columns]].copy()
    if "error" in shown:
        shown["error"] = shown["error"].map(lambda e: "" if not isinstance(e, str) else e.strip().splitlines()[0][:80])
    if "started_at" in shown:
        shown["started_at"] = shown["started_at"].map(lambda t: "" if t is None or t != t else f"{t:%Y-%m-%d %H:%M:%S}")
    if "duration_s" in shown:
        shown["duration_s"] = shown["duration_s"].map(lambda d: "" if d is None or d != d else f"{d:.2f}")
    return shown.fillna("").to_string(index=False)
