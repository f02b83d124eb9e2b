from __future__ import annotations

import asyncio
import io
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest.mock import MagicMock, Mock, patch

import pytest
from gateway import (
    Client,
    ConnPool,
    Forwarder,
    Gateway,
    Upstream,
    aio,
    audit,
    broadcast,
    fanout,
)
from gateway.audit import Sink
from gateway.workers import Worker


@pytest.fixture
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture
def unreachable_port():
    """A port with a socket bound to it that does not listen: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


def _double(x: int) -> int:
    return 2 * x


# Polluter: the application's exit hook, called from a test, stops the process-wide executor.
def test_shutdown_waits_for_running_calls():
    assert fanout.fan_out(_double, [1]) == [2]
    fanout.shutdown()
    assert fanout.EXECUTOR._shutdown


# Victim of test_shutdown_waits_for_running_calls (Parsl/parsl#310: later tests fail with
# "cannot schedule new futures after shutdown" once an earlier test shut a shared executor
# down; Lam et al., iDFlakies 2019, polluter/victim pairs).
def test_fan_out_keeps_input_order():
    assert fanout.fan_out(_double, [3, 1, 2]) == [6, 2, 4]


# Polluter: flushes and closes the module's audit queue, as the application does at exit.
def test_audit_close_flushes_pending_events():
    audit.record("login")
    assert audit.drain(timeout=1) == ["login"]
    audit.close()


# Victim of test_audit_close_flushes_pending_events (Lam et al., iDFlakies 2019: shared state
# left closed by an earlier test; the queue refuses the put).
def test_audit_records_calls():
    audit.record("call")
    assert audit.drain(timeout=1) == ["call"]


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


# Polluter: stops and closes the module's background event loop after using it.
def test_background_loop_stops_cleanly():
    assert aio.run(_answer()) == 42
    aio.stop()


# Victim of test_background_loop_stops_cleanly (pytest-dev/pytest-asyncio#310: one loop shared
# by the whole suite, closed after the first test that used it; later tests see it closed).
def test_background_loop_runs_coroutines():
    assert aio.run(_answer()) == 42


# unittest.mock docs, "where to patch" (and fudge-py/fudge#4): the module imported
# create_connection by name, so patching socket.create_connection misses it and a real
# connection is attempted.
def test_client_sends_request_line(unreachable_port):
    fake = MagicMock(spec=socket.socket)
    fake.recv.return_value = b"pong\n"
    with patch("socket.create_connection", return_value=fake):
        client = Client(unreachable_port)
        assert client.call(b"ping") == b"pong"


# unittest.mock docs (autospec): a misspelt attribute of a Mock is just another Mock, so the
# reply was never configured and recv() hands back a MagicMock, whose len() is 0.
def test_call_reads_reply_line():
    sock = MagicMock()
    with patch("gateway.client.create_connection", return_value=sock):
        client = Client(9)
        sock.recv.return_vale = b"pong\n"
        assert client.call(b"ping") == b"pong"


# A Mock configured for the wrong method (Parry et al., TOSEM 2021 survey: test doubles that do
# not match the real dependency): the frames are read through makefile(), not recv().
def test_stream_collects_frames():
    sock = MagicMock(spec=socket.socket)
    sock.recv.return_value = b"\x00\x00\x00\x02hi\x00\x00\x00\x00"
    with patch("gateway.client.create_connection", return_value=sock):
        assert Client(9).stream(b"list") == [b"hi"]


# A bare Mock standing in for a pool: every attribute is a truthy Mock, so the code's check of
# pool.closed reads it as closed.
def test_broadcast_sends_every_request():
    pool = Mock()
    pool.call.side_effect = lambda request: request.upper()
    assert broadcast(pool, [b"a", b"b"]) == [b"A", b"B"]


# Lu et al., ASPLOS 2008 (atomicity violation): the keep-alive refresh swaps and closes the
# connection without the client's lock while an upload holds the old one.
def test_upload_survives_keepalive_refresh(upstream):
    client = Client(upstream.port)

    def refresh_midway(sent: int) -> None:
        if sent == 1:
            keepalive = threading.Thread(target=client.refresh, name="keepalive")
            keepalive.start()
            keepalive.join(2)

    try:
        assert client.upload([b"a", b"b", b"c"], on_chunk=refresh_midway) == 3
    finally:
        client.close()


# mongodb/specifications#682 (a pool must not close checked-out connections): close() closes
# the connection a worker thread is still waiting on.
def test_pool_close_lets_inflight_call_finish():
    release = threading.Event()
    server = Upstream(hold=release).start()
    pool = ConnPool(server.port)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="caller") as callers:
            reply = callers.submit(pool.call, b"report")
            assert server.received.wait(2)
            pool.close()
            release.set()
            assert reply.result(timeout=2) == b"report"
    finally:
        release.set()
        server.stop()


# scylladb/python-driver#209 (a scheduler thread submits after the executor was shut down):
# the producer checked the stop flag, then stop() shut the pool down before its submit.
def test_stop_while_producing_is_clean():
    forwarder = Forwarder()

    def feed():
        yield b"first"
        stopper = threading.Thread(target=forwarder.stop, name="stopper")
        stopper.start()
        stopper.join(2)
        yield b"second"

    producer = forwarder.start(feed())
    producer.join(2)
    assert forwarder.sent == [b"first"]


# Luo et al., FSE 2014 (resource leak / use after close): the client is used after the with
# block that owned it closed it.
def test_client_reused_after_block(upstream):
    with Client(upstream.port) as client:
        assert client.call(b"one") == b"one"
    assert client.call(b"two") == b"two"


# The gateway's with block shuts its executor down; the test submits once more after it.
def test_gateway_accepts_work_after_batch(upstream):
    with Gateway(upstream.port) as gateway:
        assert gateway.submit(b"a").result(timeout=2) == b"a"
    assert gateway.submit(b"b").result(timeout=2) == b"b"


# Luo et al., FSE 2014 (resource leak / lifecycle): a one-connection helper server stops
# listening after its first client, and the test connects a second time.
def test_reconnect_after_first_client_closes():
    server = Upstream(accept_limit=1).start()
    try:
        with Client(server.port) as first:
            assert first.call(b"one") == b"one"
        with Client(server.port) as second:
            assert second.call(b"two") == b"two"
    finally:
        server.stop()


# A worker process that answers one request and exits; the second request's reply never comes
# and the pipe reports its end (python/cpython multiprocessing docs: recv raises EOFError when
# nothing is left and the other end was closed).
def test_worker_answers_two_requests():
    worker = Worker(requests=1)
    worker.send("a")
    worker.send("b")
    worker.start()
    try:
        assert worker.recv() == "a"
        assert worker.recv() == "b"
    finally:
        worker.stop()


# The component closes its own audit queue and records one more event afterwards.
def test_sink_keeps_late_events():
    sink = Sink()
    sink.record("start")
    sink.close()
    sink.record("late")


def test_stream_reads_frames_from_a_buffer():
    sock = MagicMock(spec=socket.socket)
    sock.makefile.return_value = io.BytesIO(b"\x00\x00\x00\x02hi\x00\x00\x00\x00")
    with patch("gateway.client.create_connection", return_value=sock):
        assert Client(9).stream(b"list") == [b"hi"]
