from __future__ import annotations

import socket
import time

import pytest
from echosvc import EchoServer, default_port, notify, roundtrip


@pytest.fixture
def server():
    srv = EchoServer().start()
    yield srv
    srv.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_roundtrip_echoes_line(server):
    assert roundtrip(server.address, b"ping\n", timeout=2) == b"ping\n"


def test_served_counter_counts_lines(server):
    for index in range(3):
        roundtrip(server.address, f"{index}\n".encode(), timeout=2)
    assert server.wait_served(3, timeout=2)


# tlsfuzzer/tlsfuzzer#781 ("socket.timeout: timed out" on a slow CI setup): a fixed client
# read timeout shorter than a slow peer's reply.
def test_stats_reply_within_client_timeout(server):
    server.reply_delay = 0.6
    assert roundtrip(server.address, b"stats\n", timeout=0.2) == b"stats\n"


# equinor/ert#2982 and qgis/QGIS#3563: the client connects before the server thread has bound
# its port ("Connection refused").
def test_client_connects_while_server_starts():
    port = _free_port()
    late = EchoServer(port=port, bind_delay=0.3).start()
    try:
        assert roundtrip(("127.0.0.1", port), b"hello\n", timeout=2) == b"hello\n"
    finally:
        late.stop()


# dask/distributed#3800 and caikit/caikit#646 ("Address already in use"): a second server is
# started on a port another one still holds.
def test_replica_starts_on_configured_port(server):
    replica = EchoServer(port=server.port).start()
    try:
        assert roundtrip(replica.address, b"sync\n", timeout=2) == b"sync\n"
    finally:
        replica.stop()


# Luo et al. FSE 2014 "Network": a server at capacity resets new connections instead of
# queueing them.
def test_second_client_is_served():
    capped = EchoServer(max_clients=1).start()
    try:
        first = socket.create_connection(capped.address, timeout=2)
        assert roundtrip(capped.address, b"second\n", timeout=2) == b"second\n"
        first.close()
    finally:
        capped.stop()


# pytest's "Exception in thread" reports (camunda-community-hub/pyzeebe#116, cylc/cylc-flow#4706):
# a connection handler thread dies on a command it does not know.
def test_flush_command_is_accepted(server):
    roundtrip(server.address, b"warm\n", timeout=2)
    notify(server.address, b"!flush\n")
    time.sleep(0.2)
    assert server.served == 1


# A server a test starts and never stops keeps its thread and its listening socket.
def test_serves_on_default_port():
    srv = EchoServer(port=default_port()).start()
    assert roundtrip(srv.address, b"hi\n", timeout=2) == b"hi\n"


#: Connections the suite keeps for reuse across tests.
_KEPT: list[socket.socket] = []


# A client socket kept open in a module-level list after the test.
def test_server_accepts_raw_connection(server):
    raw = socket.create_connection(server.address, timeout=2)
    _KEPT.append(raw)
    raw.sendall(b"raw\n")
    assert raw.recv(16) == b"raw\n"


# "deque mutated during iteration" (the deque flavour of PiCN#4): a new client is accepted on the
# accept thread while broadcast iterates the client list.
def test_broadcast_reaches_every_client(server):
    listeners = [socket.create_connection(server.address, timeout=2) for _ in range(2)]
    deadline = time.monotonic() + 2
    while len(server.clients) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    joined = []

    def late_joiner(client: socket.socket) -> None:
        if not joined:
            joined.append(socket.create_connection(server.address, timeout=2))
            while len(server.clients) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)

    server.on_send = late_joiner
    try:
        assert server.broadcast(b"deploy at 12:00\n") == 2
    finally:
        for sock in listeners + joined:
            sock.close()


# Same root cause as dask/distributed#3800, by order: an earlier test left a server on the
# default port running.
def test_metrics_endpoint_on_default_port():
    metrics = EchoServer(port=default_port()).start()
    try:
        assert roundtrip(metrics.address, b"metrics\n", timeout=2) == b"metrics\n"
    finally:
        metrics.stop()
