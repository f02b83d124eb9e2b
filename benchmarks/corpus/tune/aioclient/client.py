from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    line: bytes
    attempts: int


async def fetch(host: str, port: int, line: bytes, timeout: float = 1.0) -> bytes:
    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(line)
            await writer.drain()
            return await reader.readline()
        finally:
            writer.close()

    return await asyncio.wait_for(exchange(), timeout)


class Client:
    """Keeps one event loop's resources (a lock, the retry timer) for its whole life."""

    def __init__(self, host: str, port: int, retries: int = 2) -> None:
        self.host, self.port, self.retries = host, port, retries
        self.loop = asyncio.new_event_loop()
        self.retried = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def call(self, line: bytes) -> bytes:
        return self.loop.run_until_complete(fetch(self.host, self.port, line))

    def close(self) -> None:
        self.loop.close()

    async def request(self, line: bytes) -> Reply:
        for attempt in range(1, self.retries + 2):
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                reply = await fetch(self.host, self.port, line)
            finally:
                self.in_flight -= 1
            if reply != b"BUSY\n":
                return Reply(reply, attempt)
            self.retried += 1
            await asyncio.sleep(0.01 * attempt)
        raise RuntimeError(f"{line!r} still busy after {self.retries} retries")

    async def gather(self, lines: list[bytes]) -> list[Reply]:
        return list(await asyncio.gather(*(self.request(line) for line in lines)))


class Session:
    """Wraps a transport; used by services that push frames."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.sent = 0

    async def push(self, frame: bytes) -> None:
        await self.transport.drain()
        if not self.transport.is_closing():
            self.transport.write(frame)
            self.sent += 1

    async def read_frame(self) -> bytes:
        return await self.transport.read()
