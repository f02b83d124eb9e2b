"""Leases: exclusive use of a pool slot, taken when a request starts and given back when its
result is delivered."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class SlotLease:
    """One slot; a re-entrant lock so a handler that calls back into the pool keeps it."""

    def __init__(self) -> None:
        self._slot = threading.RLock()
        self.taken = 0

    def take(self) -> None:
        self._slot.acquire()
        self.taken += 1

    def give_back(self) -> None:
        self._slot.release()


class Dispatcher:
    """Runs each request on a handler thread and hands the result to a delivery thread."""

    def __init__(self) -> None:
        self.lease = SlotLease()
        self._handlers = ThreadPoolExecutor(1, thread_name_prefix="handler")
        self._delivery = ThreadPoolExecutor(1, thread_name_prefix="delivery")

    def call(self, work: Callable[[], Any]) -> Any:
        return self._handlers.submit(self._handle, work).result(timeout=2)

    def _handle(self, work: Callable[[], Any]) -> Any:
        self.lease.take()
        result = work()
        # The slot is given back once the result is delivered, on the delivery thread.
        delivered: Future[None] = self._delivery.submit(self.lease.give_back)
        delivered.result(timeout=2)
        return result

    def close(self) -> None:
        self._handlers.shutdown(wait=True)
        self._delivery.shutdown(wait=True)
