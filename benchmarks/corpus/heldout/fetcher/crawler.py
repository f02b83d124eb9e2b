from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Page:
    path: str
    status: int
    body: str


class PageServer:
    """Serves '200 <path upper-cased>' after ``latency`` seconds; '/hang' never answers."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.server: Any = None
        self.served = 0

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode().split()
        path = request[1] if len(request) > 1 else "/"
        try:
            if path == "/hang":
                await _sleep_until_cancelled()
                return
            delay = self.latency * (3 if path.startswith("/slow") else 1)
            await asyncio.sleep(delay)
            writer.write(f"200 {path.upper()}\n".encode())
            await writer.drain()
            self.served += 1
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _sleep_until_cancelled() -> None:
    # Shutting down ends the sleep quietly instead of cancelling the handler task.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)


class Crawler:
    def __init__(self, host: str, port: int, concurrency: int = 4, timeout: float = 1.0) -> None:
        self.host, self.port = host, port
        self.concurrency, self.timeout = concurrency, timeout
        self.todo: asyncio.Queue[str] = asyncio.Queue()
        self.elapsed = 0.0

    async def fetch(self, path: str) -> Page:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(f"GET {path}\n".encode())
                await writer.drain()
                status, _, body = (await reader.readline()).decode().strip().partition(" ")
            finally:
                writer.close()
        return Page(path, int(status), body)

    async def crawl(self, paths: list[str]) -> list[Page]:
        """Fetch every path with ``concurrency`` workers; pages come back as they finish."""
        start = time.perf_counter()
        for path in paths:
            self.todo.put_nowait(path)
        done: list[Page] = []

        async def worker() -> None:
            while True:
                path = await self.todo.get()
                try:
                    done.append(await self.fetch(path))
                finally:
                    self.todo.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        try:
            await self.todo.join()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        self.elapsed = time.perf_counter() - start
        return done


class PoliteCrawler(Crawler):
    async def fetch_robots(self) -> Page:
        return await self.fetch("/robots.txt")


async def crawl_site(crawler: Crawler, paths: list[str]) -> list[Page]:
    """Crawl ``paths`` unless robots.txt forbids it."""
    robots = await crawler.fetch_robots()  # type: ignore[attr-defined]
    if "DISALLOW" in robots.body:
        return []
    return await crawler.crawl(paths)


async def titles(session: Any, paths: list[str]) -> list[str]:
    out = []
    for path in paths:
        async with session.get(path) as response:
            out.append(await response.text())
    return out


def summarize(api: Any) -> str:
    data = api.stats()
    return f"{data['pages']} pages, {data['errors']} errors"


def status_of(client: Any, path: str) -> int:
    result = client.head(path)
    return result["status"]
