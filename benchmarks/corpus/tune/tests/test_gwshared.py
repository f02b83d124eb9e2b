from __future__ import annotations

import os

import pytest
from gateway import (
    PROXY_ENV,
    Client,
    ConnPool,
    Upstream,
    close_all,
    configure,
    settings,
    shared,
)


@pytest.fixture(scope="module")
def service():
    """One upstream for the whole module: starting one per test is slow in CI."""
    server = Upstream().start()
    configure(server.port)
    yield server
    server.stop()


def test_shared_client_is_reused(service):
    assert shared() is shared()
    assert shared().call(b"first") == b"first"


# Polluter: the application's exit hook, called from a test, closes the process-wide client
# and leaves it in place.
def test_close_all_releases_sockets(service):
    client = shared()
    close_all()
    assert client.sock.fileno() == -1


# Victim of test_close_all_releases_sockets (Lam et al., iDFlakies 2019: a shared client left
# closed by an earlier test; nothing in this test closes it).
def test_shared_client_round_trip(service):
    assert shared().call(b"again") == b"again"


# Polluter: checks that stopping the service twice is harmless, on the module's shared one.
def test_service_stop_is_idempotent(service):
    service.stop()
    service.stop()


# Victim of test_service_stop_is_idempotent (Luo et al., FSE 2014 test order dependency on a
# shared fixture; pytest docs: a module-scoped fixture is shared by every test of the module).
def test_fresh_client_round_trip(service):
    with Client(service.port) as client:
        assert client.call(b"fresh") == b"fresh"


@pytest.fixture
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


# Polluter: points the module's default host at an alias address for its own server and
# leaves it there.
def test_client_reaches_service_alias():
    alias = Upstream(host="127.0.0.2").start()
    try:
        settings.HOST = "127.0.0.2"
        with Client(alias.port) as client:
            assert client.call(b"hello") == b"hello"
    finally:
        alias.stop()


# Victim of test_client_reaches_service_alias (Gruber et al., ICST 2021: a module attribute
# an earlier test changed; the connection goes to the wrong host and is refused).
def test_client_round_trip(upstream):
    with Client(upstream.port) as client:
        assert client.call(b"ping") == b"ping"


# Polluter: routes clients through a proxy it starts, then stops the proxy and leaves the
# environment variable set.
def test_calls_go_through_proxy(upstream):
    proxy = Upstream().start()
    try:
        os.environ[PROXY_ENV] = f"127.0.0.1:{proxy.port}"
        with Client(upstream.port) as client:
            assert client.call(b"via-proxy") == b"via-proxy"
    finally:
        proxy.stop()


# Victim of test_calls_go_through_proxy (Gruber et al., ICST 2021 and Luo et al., FSE 2014
# test order dependency: an environment variable left by an earlier test sends the connection
# to a proxy that is gone).
def test_pooled_call_round_trip(upstream):
    pool = ConnPool(upstream.port, host=upstream.host)
    try:
        assert pool.call(b"pooled") == b"pooled"
    finally:
        pool.close()
