"""``apflow-nb run TREE.(yaml|json)``: check, store and run a task tree with text progress.

Exit status: 0 when the tree completed, 1 when it failed or was cancelled, 2 for bad input, 130
after Ctrl-C (the first Ctrl-C cancels the tree through the normal path, executors' ``cancel()`` and
grace period included; a second one stops at once; either way no task is left in_progress).
SIGTERM is handled like Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from apflow_nb.cli.common import CliUsageError, add_store, load_executors, load_tree, mask_url, store_url

INTERRUPTED = 130


def add_parser(commands: Any) -> None:
    p = commands.add_parser("run", help="check, store and run a task tree (JSON or YAML file) with text progress",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tree", metavar="TREE", help="task array file: .json, .yaml or .yml")
    p.add_argument("--executors", action="append", metavar="MODULE_OR_FILE",
                   help="a module or .py file that registers executors (repeatable)")
    add_store(p)
    p.add_argument("--max-concurrency", dest="max_concurrency", type=int, default=None, metavar="N",
                   help="run at most N tasks at once")
    p.add_argument("--quiet", action="store_true", help="no progress line, only the final summary line")
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from apflow_nb.core.execution.task_manager import TaskManager
    from apflow_nb.core.storage.session import create_session
    from apflow_nb.core.storage.task_array import check_executors, create_task_tree_from_array, normalize_task_array

    if args.max_concurrency is not None and args.max_concurrency < 1:
        raise CliUsageError(f"--max-concurrency must be a positive integer, got {args.max_concurrency}")
    load_executors(args.executors)
    tasks = load_tree(args.tree)
    check_executors(normalize_task_array(tasks))  # every check before anything is written
    url = store_url(args.store)
    manager = TaskManager(create_session(url), max_concurrency=args.max_concurrency)
    node = create_task_tree_from_array(manager.task_repository, tasks, validate_executors=True)
    print(f"run {node.task.id}: {len(node)} task(s) in {mask_url(url)} "
          f"(watch it elsewhere: apflow-nb watch {node.task.id})", flush=True)
    status, interrupted = asyncio.run(_run(manager, node, quiet=args.quiet))
    if interrupted:
        print(f"interrupted: the run ended {status}", file=sys.stderr, flush=True)
        return INTERRUPTED
    return 0 if status == "completed" else 1


async def _run(manager: Any, node: Any, *, quiet: bool) -> tuple[str, bool]:
    from apflow_nb.notebook.run import Run
    from apflow_nb.notebook.views.text import render_text

    run = Run(node, manager, display=False if quiet else "text")
    main = asyncio.current_task()
    signals: list[int] = []

    def on_signal(signum: int) -> None:
        signals.append(signum)
        if len(signals) == 1:
            print("\ncancelling the run (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
            run.cancel()
        elif main is not None:
            main.cancel()  # Run tears the tree down: every unfinished task ends cancelled

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await run
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if not quiet:
        print(render_text(run.state), flush=True)
    else:
        print(run.state.summary(), flush=True)
    return run.tree.tree_status if not run.state.error else "failed", bool(signals)
