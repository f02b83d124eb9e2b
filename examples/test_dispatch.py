"""Shared state: a lock taken on one pool thread and given back on another."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from poolsvc.lease import Dispatcher


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    dispatcher = Dispatcher()
    yield dispatcher
    dispatcher.close()


def test_request_result_is_delivered(dispatcher):
    # The handler thread takes the slot's lock; the delivery thread gives it back. A lock
    # belongs to the thread that acquired it, so this fails on every run, not only under load.
    assert dispatcher.call(lambda: "pong") == "pong"
