from __future__ import annotations

import concurrent.futures as cf
import socket
import threading
from unittest.mock import MagicMock, Mock, patch

import pytest
from connpool import Connection, Pool, settings
from echosvc import EchoServer


@pytest.fixture
def server():
    srv = EchoServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def pool(server):
    p = Pool(server.address, size=2)
    yield p
    p.close()


def test_request_returns_echo(pool):
    assert pool.request(b"hello\n") == b"hello\n"


def test_connections_are_reused(pool):
    pool.request(b"a\n")
    pool.request(b"b\n")
    assert pool.stats().idle == 1


# Luo et al. FSE 2014 "Async Wait" / Eck et al. FSE 2019: an unbounded wait on a resource that
# an earlier step never released; only the run-wide limit ends the test.
@pytest.mark.timeout(0.5)
def test_export_after_report_uses_free_connection(server):
    small = Pool(server.address, size=1)
    report_conn = small.checkout()  # the report step forgets to check it back in
    report_conn.send(b"report\n")
    export_conn = small.checkout()
    export_conn.send(b"export\n")
    assert export_conn.readline() == b"export\n"


# Shaker (ICSME 2020): "no request ever waits for a connection" holds for a lone client, not for
# six clients sharing a pool of two.
def test_requests_never_wait_for_a_connection(server):
    server.reply_delay = 0.05
    shared = Pool(server.address, size=2)
    start = threading.Barrier(6, timeout=2)

    def client(index: int) -> bytes:
        start.wait()
        return shared.request(f"req-{index}\n".encode())

    with cf.ThreadPoolExecutor(6) as clients:
        replies = list(clients.map(client, range(6)))
    shared.close()
    assert len(replies) == 6
    assert shared.stats().waits == 0


# redis/redis-py#3535 and python/cpython#78667: a lock owned by one thread released from
# another (here the completion callback's thread).
def test_transaction_committed_from_callback(pool):
    pool.begin()
    pool.request(b"UPDATE\n")
    with cf.ThreadPoolExecutor(1, thread_name_prefix="on-done") as callbacks:
        callbacks.submit(pool.commit).result(timeout=2)
    assert pool.stats().busy == 0


# urllib3/requests-style stale keep-alive: the pool hands out an idle connection whose server
# went away during a restart.
def test_request_after_server_restart(server):
    pooled = Pool(server.address, size=1)
    pooled.request(b"warm\n")
    server.stop()
    restarted = EchoServer(port=server.port).start()
    try:
        assert pooled.request(b"after-restart\n") == b"after-restart\n"
    finally:
        pooled.close()
        restarted.stop()


# equinor/ert#2982 and python-hyper/hyper: the server side of a connection goes away before the
# reply on some runs (here the handler drops the first connection when the box is loaded).
def test_first_request_is_answered(server, contended):
    if contended:
        server.drop_next = 1
    fresh = Pool(server.address, size=1)
    try:
        assert fresh.request(b"first\n") == b"first\n"
    finally:
        fresh.close()


# Python docs "autospeccing": spec= covers class attributes, not attributes set in __init__.
def test_keepalive_enabled_on_new_connections(pool):
    conn = Mock(spec=Connection)
    pool.keepalive(conn)
    conn.sock.setsockopt.assert_called_once()


# hypothesis/h#4825 and ansible/ansible#12269: a MagicMock attribute compared with an int.
def test_pool_grows_when_clients_wait(pool):
    stats = MagicMock()
    stats.waits = 9
    assert pool.should_grow(stats)


# testing-cabal/mock#171 and the unittest.mock "where to patch" docs: the pool bound the real
# function as a default argument, so patching the module attribute does not reach it.
def test_checkout_uses_patched_connect():
    fake = MagicMock(spec=socket.socket)
    with patch("socket.create_connection", return_value=fake):
        offline = Pool(("127.0.0.1", _closed_port()), size=1)
        conn = offline.checkout()
    assert conn.sock is fake


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ansible/awx#1094 "remove some leaky mock.patch() that were causing sporadic test failures":
# a patcher started in a test and never stopped.
def test_prune_keeps_healthy_connections(pool):
    patch("connpool.health.ping", return_value=True).start()
    pool.request(b"x\n")
    assert pool.prune() == 0


def test_prune_drops_dead_connections(server, pool):
    pool.request(b"x\n")
    server.stop()
    assert pool.prune() == 1
    assert pool.stats().idle == 0


# jtriley/pystun#16 and Broadcom/rally-rest-toolkit-python#187: a library sets the process-wide
# default socket timeout.
def test_configure_sets_connect_timeout():
    settings.configure(connect_timeout=0.5)
    assert socket.getdefaulttimeout() == 0.5
