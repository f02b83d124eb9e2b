"""Run a service until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable


async def serve(main: Callable[[], Awaitable[None]]) -> str:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await main()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    return "stopped cleanly"


def run(main: Callable[[], Awaitable[None]]) -> str:
    return asyncio.run(serve(main))
