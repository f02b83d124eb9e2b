from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("metrics")
log.setLevel(logging.INFO)


class Counter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.value = 0
        self.listeners: list[Callable[[int], None]] = []

    def inc(self, by: int = 1) -> None:
        current = self.value
        for listener in self.listeners:
            listener(current)
        self.value = current + by


class Histogram:
    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, value: float) -> None:
        self.values.append(value)

    def percentile(self, p: float) -> float:
        """Linear interpolation between closest ranks (numpy's default)."""
        ordered = sorted(self.values)
        rank = p / 100 * len(ordered)
        low = int(rank)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class RingBuffer:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[Any] = []

    def append(self, item: Any) -> None:
        self.items.append(item)
        if len(self.items) > self.size:
            self.items.pop(0)

    def last(self, n: int) -> list[Any]:
        return [self.items[len(self.items) - i] for i in range(n)]


class Exporter(threading.Thread):
    def __init__(self, counter: Counter, interval: float) -> None:
        super().__init__(name="exporter", daemon=True)
        self.counter, self.interval = counter, interval
        self.snapshots: list[int] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.snapshots.append(self.counter.value)

    def stop(self) -> None:
        self.stopped.set()
        self.join(2)


def emit(name: str, value: float) -> None:
    log.info("metric %s=%s", name, value)


def format_value(value: Any) -> str:
    return f"{value:.2f}"


def top(samples: list[Any], n: int = 3) -> list[Any]:
    return sorted(samples, reverse=True)[:n]


def sort_series(points: list[tuple[float, float]]) -> None:
    points.sort(key=lambda point: (point[0], -point[1]))


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
