"""Typed lifecycle events and the publish/subscribe bus every watcher of a run consumes.

The TaskManager publishes each state change once; the store's event log, live views, text
progress lines and remote bridges all subscribe. Delivery is decoupled from the run: each
subscription has its own bounded buffer in which progress events of one task coalesce, and
callbacks run from the event loop after the publisher has moved on, so a slow or broken
subscriber never slows or breaks a run.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

logger = logging.getLogger("apflow_nb.events")


class EventType(str, Enum):
    """What happened. Task events carry ``task_id``; tree events carry the root's id as both ids."""

    TREE_STARTED = "tree_started"
    TREE_FINISHED = "tree_finished"
    TASK_STARTED = "task_started"
    TASK_PROGRESS = "task_progress"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_CANCELLED = "task_cancelled"
    TASK_RETRYING = "task_retrying"  # an attempt failed; another follows after a delay
    EXECUTOR = "executor"  # anything an executor puts on its event_queue that is not progress
    HOOK_ERROR = "hook_error"  # a hook or storage extension raised or hung; the task's outcome stands
    WARNING = "warning"  # something was converted, dropped or abandoned; the run goes on

    def __str__(self) -> str:
        return self.value


TASK_FINAL_EVENTS = frozenset({EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED})
_LIFECYCLE = frozenset(EventType) - {EventType.TASK_PROGRESS, EventType.EXECUTOR, EventType.HOOK_ERROR,
                                     EventType.WARNING}


@dataclass(slots=True)
class Event:
    """One thing that happened to a task or a tree.

    ``timestamp`` is seconds since the epoch (``time.time()``); ``at`` gives it as an aware
    datetime. ``data`` holds the payload: the executor's own dict for executor events, the
    tree's task list for ``tree_started``, the error for failures.
    """

    type: EventType
    task_id: str | None
    root_id: str | None
    status: str | None = None
    progress: float | None = None
    timestamp: float = field(default_factory=time.time)
    data: dict[str, Any] = field(default_factory=dict)
    name: str | None = None

    @property
    def at(self) -> datetime:
        """The timestamp as a timezone-aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp, tz=timezone.utc)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (what the event log stores)."""
        return {
            "type": self.type.value, "task_id": self.task_id, "root_id": self.root_id,
            "status": self.status, "progress": self.progress, "timestamp": self.timestamp,
            "name": self.name, "data": self.data,
        }


Callback = Callable[[Event], "Awaitable[Any] | Any"]


class Subscription:
    """A subscriber's bounded, coalescing buffer. Iterate with ``async for`` or give a callback.

    Lifecycle events (started, completed, failed, cancelled, tree events) are always kept.
    A newer progress event of a task replaces its older one still in the buffer; progress and
    executor events beyond ``maxsize`` are dropped and counted in ``dropped``.
    """

    def __init__(self, bus: "EventBus", callback: Callback | None, root_id: str | None,
                 types: frozenset[EventType] | None, maxsize: int):
        self._bus = bus
        self.callback = callback
        self.root_id = root_id
        self.types = types
        self.maxsize = maxsize
        self._buffer: collections.deque[list[Event]] = collections.deque()
        self._progress: dict[str, list[Event]] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._drain_scheduled = False
        self._draining_async = False
        self.closed = False
        self.dropped = 0
        self.coalesced = 0
        self.errors = 0
        self.delivered = 0

    # -- publishing side ----------------------------------------------------------------
    def _accepts(self, event: Event) -> bool:
        if self.root_id is not None and event.root_id != self.root_id:
            return False
        return self.types is None or event.type in self.types

    def _push(self, event: Event) -> None:
        if event.type is EventType.TASK_PROGRESS and event.task_id is not None:
            slot = self._progress.get(event.task_id)
            if slot is not None:
                slot[0] = event
                self.coalesced += 1
                return
            if len(self._buffer) >= self.maxsize:
                self.dropped += 1
                return
            slot = [event]
            self._progress[event.task_id] = slot
            self._buffer.append(slot)
        else:
            if event.type not in _LIFECYCLE and len(self._buffer) >= self.maxsize:
                self.dropped += 1
                return
            if event.task_id is not None and event.type in TASK_FINAL_EVENTS:
                # a final event supersedes any progress still queued for the task
                self._progress.pop(event.task_id, None)
            self._buffer.append([event])
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.callback is not None and not self._drain_scheduled:
            loop = _running_loop()
            if loop is None:
                self._drain()  # no loop: deliver now
                return
            self._drain_scheduled = True
            loop.call_soon(self._drain)

    def _pop(self) -> Event:
        slot = self._buffer.popleft()
        event = slot[0]
        if event.type is EventType.TASK_PROGRESS and self._progress.get(event.task_id) is slot:
            del self._progress[event.task_id]
        return event

    # -- callback delivery ---------------------------------------------------------------
    def _drain(self) -> None:
        self._drain_scheduled = False
        if self._draining_async or self.closed:
            return
        while self._buffer:
            event = self._pop()
            try:
                out = self.callback(event)  # type: ignore[misc]
            except Exception:  # a broken subscriber must not break the run
                self._report()
                continue
            self.delivered += 1
            if inspect.isawaitable(out):
                self._draining_async = True
                asyncio.ensure_future(self._drain_async(out))
                return

    async def _drain_async(self, first: Awaitable[Any]) -> None:
        try:
            try:
                await first
            except Exception:
                self._report()
            while self._buffer and not self.closed:
                event = self._pop()
                try:
                    out = self.callback(event)  # type: ignore[misc]
                    if inspect.isawaitable(out):
                        await out
                    self.delivered += 1
                except Exception:
                    self._report()
        finally:
            self._draining_async = False

    def _report(self) -> None:
        self.errors += 1
        if self.errors <= 3:
            logger.exception("apflow_nb event subscriber %r raised; the run goes on", self.callback)

    @property
    def pending(self) -> int:
        """Events buffered and not yet delivered."""
        return len(self._buffer)

    # -- consuming side ------------------------------------------------------------------
    def get_nowait(self) -> Event | None:
        """The next buffered event, or None."""
        return self._pop() if self._buffer else None

    def drain_nowait(self) -> list[Event]:
        """All buffered events, oldest first."""
        out = []
        while self._buffer:
            out.append(self._pop())
        return out

    async def get(self) -> Event:
        """Wait for the next event. Raises StopAsyncIteration once closed and empty."""
        while not self._buffer:
            if self.closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pop()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    async def wait_idle(self, timeout: float = 1.0) -> bool:
        """For callback subscriptions: wait until the buffer is delivered (True) or timeout."""
        deadline = time.monotonic() + timeout
        while self._buffer or self._draining_async or self._drain_scheduled:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0 if not self._draining_async else 0.001)
        return True

    def close(self) -> None:
        """Stop receiving events; an ``async for`` ends once the buffer is empty."""
        self.closed = True
        self._bus._remove(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EventBus:
    """Fan-out of events to subscriptions. ``publish`` never blocks and never raises."""

    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self._everything = 0  # open subscriptions to every tree
        self._roots: dict[str, int] = {}  # root id -> open subscriptions to that tree

    def subscribe(self, callback: Callback | None = None, *, root_id: str | None = None,
                  types: Iterable[EventType | str] | None = None, maxsize: int = 10_000) -> Subscription:
        """Subscribe to events, optionally of one tree (``root_id``) or some ``types``.

        With ``callback`` (sync or async) it is called for each event from the event loop;
        without, iterate the returned subscription with ``async for``.
        """
        kinds = None if types is None else frozenset(EventType(t) for t in types)
        sub = Subscription(self, callback, root_id, kinds, maxsize)
        self._subs = self._subs + (sub,)
        if root_id is None:
            self._everything += 1
        else:
            self._roots[root_id] = self._roots.get(root_id, 0) + 1
        return sub

    def _remove(self, sub: Subscription) -> None:
        if not any(s is sub for s in self._subs):
            return
        self._subs = tuple(s for s in self._subs if s is not sub)
        if sub.root_id is None:
            self._everything -= 1
        elif self._roots.get(sub.root_id, 0) <= 1:
            self._roots.pop(sub.root_id, None)
        else:
            self._roots[sub.root_id] -= 1

    @property
    def has_subscribers(self) -> bool:
        """True when at least one subscription is open (publishers may skip building events)."""
        return bool(self._subs)

    def wants(self, root_id: str | None) -> bool:
        """True when a subscription would take events of the tree ``root_id`` (publishers skip building
        events nobody takes: a view left open on another tree costs this one nothing)."""
        return self._everything > 0 or root_id in self._roots

    def publish(self, event: Event) -> None:
        """Hand the event to every matching subscription."""
        for sub in self._subs:
            if sub._accepts(event):
                try:
                    sub._push(event)
                except Exception:  # pragma: no cover - defensive: never break the publisher
                    logger.exception("apflow_nb: delivering an event failed")

    async def flush(self, timeout: float = 1.0) -> None:
        """Give callback subscribers up to ``timeout`` seconds to take what is buffered."""
        for sub in self._subs:
            if sub.callback is not None:
                await sub.wait_idle(timeout)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


default_bus = EventBus()


def subscribe(callback: Callback | None = None, *, root_id: str | None = None,
              types: Iterable[EventType | str] | None = None, maxsize: int = 10_000) -> Subscription:
    """Subscribe to the process-wide bus every TaskManager publishes to by default."""
    return default_bus.subscribe(callback, root_id=root_id, types=types, maxsize=maxsize)
