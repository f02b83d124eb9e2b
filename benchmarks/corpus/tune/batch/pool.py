from __future__ import annotations

import concurrent.futures as cf
import os
import time
from collections.abc import Callable, Iterable
from typing import Any


def crunch(item: int) -> int:
    if item < 0:
        # A native extension aborting on bad input takes the worker process down with it.
        os._exit(3)
    return sum(i * i for i in range(item))


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class BatchRunner:
    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self.pool = cf.ProcessPoolExecutor(workers)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(self.pool.map(fn, items))

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        return self.pool.submit(fn, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def parse_batch(text: str) -> list[str]:
    """One item per line; blank lines are ignored."""
    lines = text.split("\n")
    return [line.strip() for line in lines[:-1] if line.strip()]


def summarize(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)
    return {
        "mean": sum(ordered) / len(ordered),
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[int(len(ordered) * 0.95) + 1],
    }
