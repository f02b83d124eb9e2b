from __future__ import annotations

import asyncio
import threading
from unittest.mock import AsyncMock, Mock

import pytest
from aioclient import Client, LineServer, fastloop, fetch, service
from aioclient.client import Session
from echosvc import EchoServer


def test_fetch_echoes_line():
    async def main() -> bytes:
        server = LineServer()
        host, port = await server.start()
        try:
            return await fetch(host, port, b"hello\n")
        finally:
            await server.stop()

    assert asyncio.run(main()) == b"hello\n"


# python/asyncio#75 "Some unit tests are flaky" (tight deadlines on a loaded buildbot): an
# asyncio.wait_for bound around a peer that does not answer in time.
def test_fetch_gets_reply_before_deadline():
    async def main() -> bytes:
        server = LineServer(silent=True)
        host, port = await server.start()
        try:
            return await fetch(host, port, b"status\n", timeout=0.2)
        finally:
            await server.stop()

    assert asyncio.run(main()) == b"status\n"


# Shaker (ICSME 2020): "no request needed a retry" only holds when the fan-out stays under the
# server's capacity; the client's retries make every call succeed either way.
def test_fanout_needs_no_retries():
    async def main() -> Client:
        server = LineServer(capacity=5, reply_delay=0.05)
        host, port = await server.start()
        client = Client(host, port, retries=3)
        try:
            replies = await client.gather([f"q{i}\n".encode() for i in range(10)])
            assert len(replies) == 10
            return client
        finally:
            client.close()
            await server.stop()

    client = asyncio.run(main())
    assert client.retried == 0


# pytest-dev/pytest-asyncio#183 and aio-libs reports: a client keeps using the event loop it was
# built with after that loop was closed.
def test_late_retry_after_client_shutdown():
    server = EchoServer().start()
    client = Client(*server.address)
    try:
        assert client.call(b"first\n") == b"first\n"
        client.close()  # the service's shutdown hook
        assert client.call(b"retry\n") == b"retry\n"
    finally:
        server.stop()


# Martiusweb/asynctest#140 and pytest-dev/pytest-asyncio#108: "object Mock can't be used in
# 'await' expression".
def test_push_drains_before_writing():
    transport = Mock()
    session = Session(transport)
    asyncio.run(session.push(b"frame-1"))
    transport.write.assert_called_once_with(b"frame-1")


# python/cpython#84586: AsyncMock children are coroutine functions too, so a synchronous
# is_closing() check gets a (truthy) coroutine object.
def test_push_writes_when_transport_open():
    transport = AsyncMock()
    session = Session(transport)
    asyncio.run(session.push(b"frame-2"))
    transport.write.assert_called_once_with(b"frame-2")


# A background loop thread with a pending task, started for a heartbeat and never stopped.
def test_heartbeat_runs_in_background():
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="heartbeat-loop", daemon=True).start()

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(0.05)

    future = asyncio.run_coroutine_threadsafe(heartbeat(), loop)
    assert not future.done()


# cloudblue/connect-extension-runner#209 ("uvloop.install() sets the global asyncio event loop
# policy ... leaks into every subsequent test").
def test_fanout_loop_is_used_once_installed():
    fastloop.install()

    async def which() -> type:
        return type(asyncio.get_running_loop())

    assert asyncio.run(which()) is fastloop.FanoutLoop


def test_service_stops_cleanly():
    async def main() -> None:
        await asyncio.sleep(0)

    assert service.run(main) == "stopped cleanly"


@pytest.mark.parametrize("lines", [[b"a\n"], [b"a\n", b"b\n", b"c\n"]])
def test_gather_keeps_request_order(lines):
    async def main() -> list[bytes]:
        server = LineServer()
        host, port = await server.start()
        client = Client(host, port)
        try:
            return [reply.line for reply in await client.gather(lines)]
        finally:
            client.close()
            await server.stop()

    assert asyncio.run(main()) == lines
