"""An asyncio record pipeline: running totals, a line client, batching stages and a sink."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


class MemoryStore:
    """Where totals are persisted; a network store in production."""

    def __init__(self) -> None:
        self.saved: dict[str, int] = {}

    async def save(self, key: str, value: int) -> None:
        await asyncio.sleep(0)  # one round trip
        self.saved[key] = value


class RunningTotals:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.totals: dict[str, int] = {}

    async def add(self, key: str, amount: int) -> int:
        current = self.totals.get(key, 0)
        await self.store.save(key, current + amount)
        self.totals[key] = current + amount
        return self.totals[key]


class LineClient:
    """One connection to a line-oriented lookup service."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, host: str, port: int) -> LineClient:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        return self

    async def request(self, line: bytes) -> bytes:
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(line)
        await self.writer.drain()
        return await self.reader.readline()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


class UpperServer:
    """A lookup service on a free port that answers each line in upper case."""

    def __init__(self) -> None:
        self.handlers: list[asyncio.Task[Any]] = []
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.append(task)
        try:
            while line := await reader.readline():
                writer.write(line.upper())
                await writer.drain()
        except ConnectionError:
            pass  # the client hung up with replies unread
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=1)


class Inbox:
    """Records waiting for the next batch; one per service, shared by every run."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def next_batch(self, size: int) -> list[Any]:
        return [await self.queue.get() for _ in range(size)]

    async def put(self, item: Any) -> None:
        await self.queue.put(item)


class Sink:
    """Buffers records and ships them in one write when flushed."""

    def __init__(self) -> None:
        self.buffer: list[bytes] = []
        self.delivered: list[bytes] = []

    def write(self, record: bytes) -> None:
        self.buffer.append(record)

    async def flush(self) -> None:
        await asyncio.sleep(0)
        self.delivered.extend(self.buffer)
        self.buffer.clear()

    def close(self) -> None:
        self.flush()


class Shipper:
    """A background task that ships queued records until stopped."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.shipped: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            record = await self.queue.get()
            await asyncio.sleep(0.01)
            self.shipped.append(record)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()

    async def wait_stopped(self) -> None:
        assert self._task is not None
        await self._task


async def run_stage(items: Iterable[Any], handler: Callable[[Any], Awaitable[Any]],
                    workers: int = 2, timeout: float = 1.0) -> None:
    """Feed items to ``workers`` consumer tasks and wait until every item is handled."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def consume() -> None:
        while True:
            item = await queue.get()
            await handler(item)
            queue.task_done()

    tasks = [asyncio.create_task(consume()) for _ in range(workers)]
    try:
        await asyncio.wait_for(queue.join(), timeout)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def fetch_all(keys: list[str], fetch: Callable[[str], Awaitable[Any]], limit: int = 2,
                    deadline: float = 0.25) -> list[Any]:
    """Fetch every key, at most ``limit`` at a time, within one overall deadline."""
    gate = asyncio.Semaphore(limit)

    async def one(key: str) -> Any:
        async with gate:
            return await fetch(key)

    async with asyncio.timeout(deadline):
        return await asyncio.gather(*(one(key) for key in keys))


class Enricher:
    def __init__(self, geo: Any) -> None:
        self.geo = geo

    async def enrich(self, record: dict[str, Any]) -> dict[str, Any]:
        record["country"] = await self.geo.lookup(record["ip"])
        return record


class Stage:
    """Up to ``workers`` handlers run at once; ``peak`` is the most seen in flight."""

    def __init__(self, workers: int = 4) -> None:
        self.workers = workers
        self.in_flight = 0
        self.peak = 0

    async def run(self, source: Any, handler: Callable[[Any], Awaitable[Any]]) -> int:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.workers)
        handled = 0

        async def consume() -> None:
            nonlocal handled
            while (item := await queue.get()) is not None:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                try:
                    await handler(item)
                finally:
                    self.in_flight -= 1
                handled += 1

        consumers = [asyncio.create_task(consume()) for _ in range(self.workers)]
        async for item in source:
            await queue.put(item)
        for _ in consumers:
            await queue.put(None)
        await asyncio.gather(*consumers)
        return handled
