"""Thread-pool races: atomicity violations that need a thread switch in a tiny window.

CPython switches threads every 5 ms by default, so a read-modify-write that takes a
microsecond is almost never interrupted on a quiet machine; under load (and with a short
switch interval) it is, and updates get lost.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

WORKERS = 4


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def unsafe_increment(self) -> None:
        current = self.value
        self.value = self._next(current)  # a call between read and write: a switch point

    def _next(self, current: int) -> int:
        # a bounds check of a few microseconds: the window between the read and the write
        for _ in range(20):
            current = min(current, 10**9)
        return current + 1

    def increment(self) -> None:
        with self.lock:
            self.value += 1


def _hammer(increment, rounds: int) -> None:
    barrier = threading.Barrier(WORKERS)

    def work() -> None:
        barrier.wait(timeout=30)
        for _ in range(rounds):
            increment()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for future in [pool.submit(work) for _ in range(WORKERS)]:
            future.result(timeout=60)


def test_flaky_counter_lost_update():
    """Source: escoffier-labs/brigade#1295, "test_concurrent_timeout_increments_are_not_lost
    loses increments under CI load (193 == 200)". Unlocked read-modify-write from pool threads
    started together; the loss needs a thread switch between the read and the write."""
    counter = Counter()
    _hammer(counter.unsafe_increment, 300)
    assert counter.value == WORKERS * 300


class Registry:
    def __init__(self) -> None:
        self.items: dict[str, object] = {}
        self.created = 0

    def get(self, key: str) -> object:
        if key not in self.items:  # check-then-act without a lock
            self.created += 1
            self.items[key] = self._connect(key)
        return self.items[key]

    def _connect(self, key: str) -> object:
        # The handshake: about 0.1 ms of Python work, far shorter than a 5 ms switch interval.
        checksum = 0
        for index in range(2000):
            checksum = (checksum * 31 + index) % 65521
        return {"key": key, "checksum": checksum, "state": "open"}


def test_flaky_double_initialisation():
    """Source: Luo et al., "An Empirical Analysis of Flaky Tests" (FSE 2014): atomicity
    violations are the largest share of concurrency flakes. Lazy per-key connection creation
    with check-then-act; two pool threads released together both see the key missing."""
    for _ in range(30):
        registry = Registry()
        barrier = threading.Barrier(WORKERS)

        def first_use(registry=registry, barrier=barrier) -> object:
            barrier.wait(timeout=30)
            return registry.get("orders")

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = [f.result(timeout=60) for f in
                       [pool.submit(first_use) for _ in range(WORKERS)]]
        assert registry.created == 1, f"{registry.created} connections for one key"
        assert len({id(r) for r in results}) == 1


def test_stable_counter_with_a_lock():
    counter = Counter()
    _hammer(counter.increment, 500)
    assert counter.value == WORKERS * 500


def test_deterministic_wrong_total():
    """Control: an ordinary bug (the expected total forgets one worker)."""
    counter = Counter()
    _hammer(counter.increment, 10)
    assert counter.value == (WORKERS - 1) * 10
