from __future__ import annotations

import pytest
from echosvc import EchoServer, roundtrip


@pytest.fixture
def slow_server():
    srv = EchoServer(reply_delay=0.8).start()
    yield srv
    srv.stop()


def test_quick_ping_on_fresh_server():
    srv = EchoServer().start()
    try:
        assert roundtrip(srv.address, b"ping\n", timeout=2) == b"ping\n"
    finally:
        srv.stop()


# Broadcom/rally-rest-toolkit-python#187 and nicolargo/glances#3701: a process-wide default
# socket timeout set by another component reaches a client that set none of its own.
def test_nightly_export_over_the_wire(slow_server):
    assert roundtrip(slow_server.address, b"nightly-export\n") == b"nightly-export\n"
