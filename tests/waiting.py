"""Waiting on a running loop in tests: yield until a condition holds, or fail after a timeout."""
from __future__ import annotations

import asyncio
from typing import Callable


async def until(predicate: Callable[[], bool], timeout: float = 10.0, poll: float = 0.005) -> None:
    """Yield to the loop until ``predicate()`` holds (fails the test after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(poll)
