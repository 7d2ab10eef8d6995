"""One task's run, as small steps: resolve the executor → create it → merge the inputs → pre-hooks →
validate → execute → classify the result → record it (then storages and post-hooks).

A step that cannot go on raises :class:`Stop` with the outcome to record; whatever happens, the
task ends in a final state (an interrupt ends it cancelled, a bug of ours ends it failed).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any

from apflow_nb.core.errors import InputValidationError
from apflow_nb.core.execution.inputs import merge_dependency_results
from apflow_nb.core.tracebacks import format_user_traceback as user_traceback
from apflow_nb.core.execution.attempts import run_attempts
from apflow_nb.core.execution.lifecycle import ExecutorEventQueue, apply_values
from apflow_nb.core.execution.outcome import Outcome, cancelled, classify_result, failure
from apflow_nb.core.execution.plan import TaskState
from apflow_nb.core.execution.runner import BlockWatch, ExecutionContext
from apflow_nb.core.extensions.hooks import PRE_ARGS, hook_label, invoke_hook
from apflow_nb.core.extensions.registry import RegistryEntry, get_registry
from apflow_nb.core.extensions.types import ExtensionCategory
from apflow_nb.core.secrets import forget as forget_secrets, keep as keep_secrets, reveal as reveal_secrets
from apflow_nb.core.secrets import secret_paths, split as split_secrets
from apflow_nb.core.storage.cache_keys import cache_key, fingerprint
from apflow_nb.core.storage.json_text import Encoded, loads
from apflow_nb.core.storage.task_fields import json_problem
from apflow_nb.core.types import COMPLETED, FINAL_STATUSES, executor_id_of

if TYPE_CHECKING:
    from apflow_nb.core.execution.task_manager import TaskManager

logger = logging.getLogger("apflow_nb.execution")


class Stop(Exception):
    """A step ended the task early with this outcome."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.error or outcome.status)
        self.outcome = outcome


async def run_task(manager: "TaskManager", s: TaskState) -> None:
    """Run one task to a final state."""
    task = s.task
    inputs: dict[str, Any] = task.inputs if isinstance(task.inputs, dict) else {}
    try:
        entry, executor_id = s.entry, s.executor_id
        manager.lifecycle.start(s, executor_id, manager.owner)
        if s.run.storages:
            await manager.lifecycle.save_to_storages(s)
        key = None
        try:
            if s.prepared is not None:  # a cache miss found when the task started: its inputs are ready
                executor, inputs, validated, key, changed = s.prepared
                s.prepared = None
                if changed:
                    s.run.writer.mark(s.id, {"inputs": inputs})
            else:
                executor = create(entry, executor_id, s)
                inputs = await prepare_inputs(manager, s, executor)
                validated = validate(executor, inputs, task, _secret_paths(s, executor))
                if s.policy.cache:
                    key, hit = lookup(s, executor, validated)
                    if hit is not None:
                        await complete(manager, s, hit, inputs)
                        return
            outcome = await execute(manager, s, executor, executor_id, validated)
        except Stop as stop:
            outcome = stop.outcome
        await complete(manager, s, outcome, inputs, key)
    except asyncio.CancelledError:
        # the whole tree is being torn down (interrupt): leave nothing in progress
        manager.lifecycle.finalize(s, cancelled("run interrupted"))
        raise
    except Exception as exc:  # a bug of ours or of a storage extension: never leave the task running
        logger.exception("apflow_nb: internal error while running task %s", task.id)
        manager.lifecycle.finalize(s, failure(f"internal error: {type(exc).__name__}: {exc}", "InternalError"))
    finally:
        if s.status == "completed":
            forget_secrets(task.id)  # a completed task never runs again: its secret values leave memory
        if s.status not in FINAL_STATUSES:
            manager.lifecycle.finalize(s, failure("internal error: the task ended without an outcome",
                                                  "InternalError"))
        s.executor = s.context = None  # the executor, its queue and checker are not needed once the task ended


def resolve(task: Any) -> tuple[RegistryEntry | None, str]:
    """The registry entry of the task's executor (None when nothing is registered under its id)."""
    executor_id = executor_id_of(task)
    return get_registry().get(ExtensionCategory.EXECUTOR, executor_id), executor_id


def settle_from_cache(manager: "TaskManager", s: TaskState) -> bool:
    """A ready task whose result is in the run's cache index ends at once, without a coroutine of its own
    (True). On a miss its prepared inputs are kept for its run (False). Only for runs without pre-hooks."""
    try:
        executor = create(s.entry, s.executor_id, s)
        task = s.task
        own = task.inputs if isinstance(task.inputs, dict) else {}
        paths = _secret_paths(s, executor)
        if s.deps or paths:
            inputs = merge_dependency_results(own, s.deps, s.run.results, manager.declared_fields.of(executor))
            inputs, held = split_secrets(inputs, paths)  # stored as "***", real values in memory
            keep_secrets(task.id, held)
            validated = executor.validate_inputs(reveal_secrets(task, inputs, executor))
        else:  # nothing merged or hidden: the stored inputs are what the executor gets (as run_task does)
            inputs = own
            validated = executor.validate_inputs(own)
    except Exception:  # the normal path reports it properly
        return False
    changed = inputs is not task.inputs  # else the stored inputs stand: nothing to write
    if changed:
        apply_values(task, {"inputs": inputs})
    key, hit = lookup(s, executor, validated)
    if hit is None:
        s.prepared = (executor, inputs, validated, key, changed)
        return False
    if changed:
        s.run.writer.mark(s.id, {"inputs": inputs})
    manager.lifecycle.finalize_hit(s, hit)
    if s.run.post_hooks or s.run.storages:
        manager.lifecycle.after_unstarted(s)
    return True


def _secret_paths(s: TaskState, executor: Any) -> frozenset[Any]:
    """``secret_paths(executor)``, remembered per class and run when a class-level pydantic model declares them
    (None is remembered when they depend on the instance)."""
    cls = type(executor)
    paths = s.run.class_facts.get(cls, _UNSEEN)
    if paths is _UNSEEN:
        model = getattr(cls, "inputs_schema", None)
        fixed = (isinstance(model, type) and hasattr(model, "model_fields")
                 and "inputs_schema" not in getattr(executor, "__dict__", ()))
        paths = s.run.class_facts[cls] = secret_paths(executor) if fixed else None
    return secret_paths(executor) if paths is None else paths


_UNSEEN = object()


def lookup(s: TaskState, executor: Any, inputs: dict[str, Any]) -> tuple[str, Outcome | None]:
    """The task's cache key, and the cached outcome when the run's cache index has one."""
    key = cache_key(s.executor_id, fingerprint(type(executor), s.policy.cache_version), inputs)
    found = (s.run.cache_index or {}).get(key)
    if found is None:
        return key, None
    result, source = found
    s.cached_from = source
    if type(result) is Encoded:  # as loaded from the store: decoded for this task, its text written as it is
        value = loads(result)
        return key, Outcome(COMPLETED, value, text=None if value is None else result)
    return key, Outcome(COMPLETED, result)


def create(entry: RegistryEntry | None, executor_id: str, s: TaskState) -> Any:
    """A fresh executor object for this task."""
    if entry is None:
        known = ", ".join(get_registry().ids(ExtensionCategory.EXECUTOR)) or "none"
        raise Stop(failure(f"no executor registered as {executor_id!r} for task {s.key!r}. Registered "
                           f"executors: {known}. Register one with executor_register(...), or set "
                           f"schemas['method'] to a registered id.", "ExecutorNotFound"))
    try:
        executor = entry.create()
    except Exception as exc:
        raise Stop(failure(f"could not create executor {executor_id!r}: {type(exc).__name__}: {exc}",
                           type(exc).__name__)) from None
    s.executor = executor
    return executor


async def prepare_inputs(manager: "TaskManager", s: TaskState, executor: Any) -> dict[str, Any]:
    """Own inputs + dependency results, then the pre-hooks; what is stored is what the executor gets."""
    task = s.task
    own = task.inputs if isinstance(task.inputs, dict) else {}
    if not s.deps and not s.run.pre_hooks:
        return own  # nothing merged or changed: what is stored is what the executor gets
    inputs = merge_dependency_results(own, s.deps, s.run.results, manager.declared_fields.of(executor))
    apply_values(task, {"inputs": inputs})
    for hook in s.run.pre_hooks:
        try:
            await manager.lifecycle.bounded(s.run, f"pre-hook {hook_label(hook)}", task.id,
                                            lambda hook=hook: invoke_hook(hook, PRE_ARGS, {"task": task}),
                                            raise_errors=True)
        except Exception as exc:
            raise Stop(failure(f"pre-hook {hook_label(hook)} raised {type(exc).__name__}: {exc}", "PreHookError",
                               user_traceback(exc))) from None
    # secret fields are stored as "***"; a value a pre-hook or a dependency put there stays in memory only
    inputs, held = split_secrets(task.inputs if isinstance(task.inputs, dict) else {}, secret_paths(executor))
    keep_secrets(task.id, held)
    apply_values(task, {"inputs": inputs})
    problem = json_problem(inputs) if s.run.pre_hooks else None  # dependency results are checked JSON
    if problem:
        raise Stop(failure(f"inputs of task {s.key!r} cannot be stored as JSON ({problem}); a pre-hook or "
                           f"dependency put it there", "InputValidationError"))
    s.run.writer.mark(s.id, {"inputs": inputs})
    return inputs


def validate(executor: Any, inputs: dict[str, Any], task: Any, paths: frozenset[Any]) -> dict[str, Any]:
    """The executor's schema check (defaults filled in) of the inputs with the values at its secret ``paths``
    back in (from memory or a resolver); a failure ends the task before execute."""
    try:
        return executor.validate_inputs(reveal_secrets(task, inputs, executor) if paths else inputs)
    except InputValidationError as exc:
        raise Stop(failure(str(exc), "InputValidationError")) from None


async def execute(manager: "TaskManager", s: TaskState, executor: Any, executor_id: str,
                  inputs: dict[str, Any]) -> Outcome:
    """Call the executor (with retries and a timeout when its policy says so)."""
    policy = s.policy
    if s.cancel_requested:
        return cancelled("cancelled before it started")
    if not policy.retries and policy.timeout is None:
        _equip(manager, s, executor)
        s.attempts = 1
        return await call_executor(manager, s, executor, executor_id, inputs)

    def fresh() -> Any:
        return _equip(manager, s, create(s.entry, executor_id, s))

    async def call(current: Any, attempt: Any) -> Outcome:
        return await call_executor(manager, s, current, executor_id, inputs)

    _equip(manager, s, executor)
    return await run_attempts(manager, s, policy, fresh, call)


def _equip(manager: "TaskManager", s: TaskState, executor: Any) -> Any:
    """Give the executor what the seed promises it: its task id, an event queue, a cancellation checker."""
    executor.task_id = s.id
    executor.event_queue = ExecutorEventQueue(manager.lifecycle, s)
    executor.cancellation_checker = s.is_cancel_requested
    executor.task = s.task
    s.executor = executor
    return executor


async def call_executor(manager: "TaskManager", s: TaskState, executor: Any, executor_id: str,
                        inputs: dict[str, Any]) -> Outcome:
    """One call of the executor here (watching for blocked loops) or through the manager's runner."""
    task = s.task
    try:
        if manager.runner is None:
            result = executor.execute(inputs)
            if inspect.iscoroutine(result):
                result = await BlockWatch(result, lambda seconds: manager.lifecycle.blocked(s, seconds))
            elif inspect.isawaitable(result):
                result = await result
        else:
            s.context = ExecutionContext(task.id, s.run.root_id, executor_id, executor.event_queue.put_nowait,
                                         loop=asyncio.get_running_loop())
            if s.cancel_requested:
                s.context.cancel_requested.set()
            result = await manager.runner.run(executor, inputs, s.context)
    except asyncio.CancelledError:
        if not s.cancel_requested:
            raise
        return cancelled(f"cancelled: the executor did not stop within the grace period "
                         f"({manager.cancel_grace_period:g} s), so its asyncio task was cancelled")
    except Exception as exc:
        return failure(f"{type(exc).__name__}: {exc}", type(exc).__name__, user_traceback(exc))
    return classify_result(result, executor_id, cancel_requested=s.cancel_requested)


async def complete(manager: "TaskManager", s: TaskState, outcome: Outcome, inputs: dict[str, Any],
                   key: str | None = None) -> None:
    """Record the outcome of a started task, then storages and post-hooks (the run waits for them).

    A completed result computed under a cache key is stored in the cache (never a failure).
    """
    run = s.run
    current = asyncio.current_task() if run.storages or run.post_hooks else None
    if current is not None:
        run.side_tasks.add(current)  # added before the final state, so the run cannot end without it
        current.add_done_callback(run.side_tasks.discard)
    if key is not None and outcome.status == COMPLETED:
        from apflow_nb.core.storage.cache import cache_table, entry_row

        code = fingerprint(type(s.executor), s.policy.cache_version)
        stored = outcome.result  # the task row's JSON text, when there is one, is not encoded again
        if outcome.text is not None and stored is not None:
            stored = Encoded(outcome.text)
        run.writer.upsert(cache_table, entry_row(key, s.executor_id, code, stored, s.id, s.policy.cache_ttl), "key")
        if run.cache_index is not None:
            run.cache_index[key] = (outcome.result, s.id)
    if manager.lifecycle.finalize(s, outcome):
        if run.storages or run.post_hooks:
            await manager.lifecycle.after_final(s, inputs)
