from __future__ import annotations

import asyncio
import contextlib


async def _sleep_until_cancelled() -> None:
    # Shutting down ends the sleep quietly instead of cancelling the handler task.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)


class LineServer:
    """Echoes lines; over ``capacity`` concurrent requests it answers BUSY."""

    def __init__(self, capacity: int | None = None, reply_delay: float = 0.0,
                 silent: bool = False) -> None:
        self.capacity, self.reply_delay, self.silent = capacity, reply_delay, silent
        self.active = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        self.active += 1
        try:
            if self.silent:
                await _sleep_until_cancelled()
                return
            if self.capacity is not None and self.active > self.capacity:
                reply = b"BUSY\n"
            else:
                await asyncio.sleep(self.reply_delay)
                reply = line
            writer.write(reply)
            await writer.drain()
        finally:
            self.active -= 1
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
