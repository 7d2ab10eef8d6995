"""``apflow-nb cancel ID`` and ``apflow-nb executors``.

``cancel`` cancels a run (its root id) or one task wherever it runs (``apflow_nb.cancel``): through a
cancel request to the process that runs it, as orphan recovery does when that process is gone, or
in the store when nobody runs it; then it waits (``--wait`` seconds, 10 by default) until the tasks
it aimed at are final. Exit status: 0 when they are, 1 when the wait ran out, 2 for an unknown id.
"""
from __future__ import annotations

import argparse
from typing import Any

from apflow_nb.cli.common import add_store, load_executors, store_url


def add_parsers(commands: Any) -> None:
    p = commands.add_parser("cancel", help="cancel a run (root id) or one task, wherever it runs",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("id", metavar="ID", help="a run's root id, or one task's id")
    add_store(p)
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="wait at most this long for the tasks to end (0: do not wait); default 10")
    p.add_argument("--reason", default="cancelled with apflow-nb cancel", help="stored with the cancelled tasks")
    p.set_defaults(handler=cancel_command)
    e = commands.add_parser("executors", help="list the registered executors (built-in, entry points, --executors)")
    e.add_argument("--executors", action="append", metavar="MODULE_OR_FILE",
                   help="a module or .py file that registers executors (repeatable)")
    e.set_defaults(handler=executors_command)


def cancel_command(args: argparse.Namespace) -> int:
    from apflow_nb.notebook.control import cancel

    outcome = cancel(args.id, store_url(args.store), reason=args.reason)
    print(outcome.message, flush=True)
    if args.wait <= 0 or outcome.action in ("finished", "cancelled", "recovered"):
        return 0
    if outcome.wait(args.wait):
        print(f"{args.id}: every task it aimed at has ended", flush=True)
        return 0
    print(f"{args.id}: tasks still running after {args.wait:g} s (the owner may still be in its grace period)",
          flush=True)
    return 1


def executors_command(args: argparse.Namespace) -> int:
    from apflow_nb.core.extensions.registry import get_registry
    from apflow_nb.notebook._magic_tables import executors_table

    load_executors(args.executors)
    get_registry()  # built-ins and entry points load on first use
    print(repr(executors_table(title="registered executors", with_source=False)), flush=True)
    return 0
