"""A background event loop, on a thread of its own, for callers that are not async."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

_LOOP: asyncio.AbstractEventLoop | None = None
_THREAD: threading.Thread | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The loop, started on first use."""
    global _LOOP, _THREAD
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        _THREAD = threading.Thread(target=_LOOP.run_forever, name="gateway-loop", daemon=True)
        _THREAD.start()
    return _LOOP


def run(coro: Coroutine[Any, Any, Any], timeout: float = 5) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, loop()).result(timeout)


def stop() -> None:
    """Stops and closes the loop (called at application exit)."""
    if _LOOP is None or _THREAD is None:
        return
    _LOOP.call_soon_threadsafe(_LOOP.stop)
    _THREAD.join(5)
    _LOOP.close()
