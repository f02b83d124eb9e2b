from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any


class WorkerDied(Exception):
    pass


def square(x: int) -> int:
    return x * x


def slow_square(x: int) -> int:
    time.sleep(1.0)
    return x * x


def default_workers() -> int:
    count = os.cpu_count()
    return 1 if count is None else count


class Pipeline:
    def __init__(self, processes: int | None = None) -> None:
        self.pool = multiprocessing.Pool(processes or default_workers())

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any],
            timeout: float | None = None) -> list[Any]:
        return self.pool.map_async(fn, items).get(timeout)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def terminate(self) -> None:
        self.pool.terminate()
        self.pool.join()


def chunk(items: list[Any], size: int) -> list[list[Any]]:
    """Split into lists of ``size`` (the last may be shorter)."""
    return [items[i:i + size] for i in range(0, len(items) - len(items) % size, size)]


def weighted_total(rows: list[dict[str, Any]]) -> float:
    total = 0.0
    for row in rows:
        total += row["value"] * row.get("weight")
    return total


def supervise(args: list[str], timeout: float = 5.0) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode < 0:
        raise WorkerDied(f"worker exited with signal {-done.returncode}")
    return done.stdout.strip()
