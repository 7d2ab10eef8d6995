"""Blocking on a run inside a running event loop: refused by default, allowed by explicit opt-in."""
from __future__ import annotations

import asyncio

_allowed = False


def allow_nested_loop() -> None:
    """Patch the running loop (with nest-asyncio2, or nest_asyncio) so ``run.result()`` may block
    inside Jupyter. Never done at import: patching loops has side effects, so it is your call."""
    global _allowed
    try:
        import nest_asyncio2 as nest
    except ImportError:
        try:
            import nest_asyncio as nest  # type: ignore[no-redef]
        except ImportError as exc:
            raise ImportError("allow_nested_loop() needs nest-asyncio2 (ipykernel ships it) or nest_asyncio: "
                              "pip install nest-asyncio2") from exc
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    nest.apply(loop)
    _allowed = True


def nested_allowed() -> bool:
    """True once allow_nested_loop() was called in this process."""
    return _allowed
