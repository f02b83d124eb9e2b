from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("ratelimit")


class TokenBucket:
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self._stamp = self.clock()
        self.before_take: Callable[[], None] | None = None
        self.granted = 0

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            if self.before_take is not None:
                self.before_take()
            self.tokens -= 1
            self.granted += 1
            return True
        if self.tokens < 0.5:
            log.warning("bucket empty (rate %.1f/s)", self.rate)
        return False


def wait_for_token(bucket: TokenBucket, deadline: float, poll: float = 0.02) -> bool | None:
    """Poll until a token is free; None once ``deadline`` seconds have gone by."""
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        if bucket.try_acquire():
            return True
        time.sleep(poll)
    return None


class Refiller(threading.Thread):
    """Tops a shared budget up every ``period`` seconds."""

    def __init__(self, period: float, work: Callable[[], None]) -> None:
        super().__init__(name="refiller", daemon=True)
        self.period, self.work = period, work
        self.ticks = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.period):
            self.work()
            self.ticks += 1

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=1)

    def restart(self, period: float) -> None:
        """Apply a new period (after a config reload)."""
        self.stop()
        self.period = period
        self.stopped.clear()
        self.start()


def throttled_call(bucket: TokenBucket, fn: Callable[[], object],
                   sleep: Callable[[float], None] = time.sleep) -> object:
    while not bucket.try_acquire():
        sleep(1.0 / bucket.rate)
    return fn()


def pacing(quota: object) -> float:
    """Seconds between calls so the remaining quota lasts the window."""
    return 1.0 / quota.current_rate()  # type: ignore[attr-defined]
