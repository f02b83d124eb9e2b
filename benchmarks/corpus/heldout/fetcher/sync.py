"""A blocking entry point for scripts that are not async themselves."""

from __future__ import annotations

import asyncio

from .crawler import Crawler, Page


def fetch_sync(host: str, port: int, path: str) -> Page:
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop.run_until_complete(Crawler(host, port).fetch(path))
