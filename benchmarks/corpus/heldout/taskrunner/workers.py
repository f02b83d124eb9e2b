from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Report:
    total: int
    succeeded: int
    by_worker: Counter[str]


def run_all(tasks: list[Callable[[], Any]], workers: int = 4) -> Report:
    by_worker: Counter[str] = Counter()
    succeeded = 0

    def run(task: Callable[[], Any]) -> bool:
        by_worker[threading.current_thread().name] += 1
        try:
            task()
        except Exception:
            return False
        return True

    with cf.ThreadPoolExecutor(workers, thread_name_prefix="worker") as pool:
        succeeded = sum(pool.map(run, tasks))
    return Report(len(tasks), succeeded, by_worker)


def start_pool(init: Callable[[], Any], workers: int = 2) -> cf.ThreadPoolExecutor:
    return cf.ThreadPoolExecutor(workers, initializer=init, thread_name_prefix="init-worker")


class Slots:
    """At most ``size`` jobs at once; a watchdog frees the slot of a job that overruns."""

    def __init__(self, size: int) -> None:
        self.sem = threading.BoundedSemaphore(size)
        self.running: set[str] = set()

    def run(self, name: str, fn: Callable[[], Any]) -> None:
        self.sem.acquire()
        self.running.add(name)
        try:
            fn()
        finally:
            self.running.discard(name)
            self.sem.release()

    def watchdog(self, name: str, check: Callable[[], None]) -> None:
        if name in self.running:
            check()
            self.running.discard(name)
            self.sem.release()


def records(reader: Any) -> Iterator[str]:
    """Lines of a paged export; ``reader.read()`` returns a page or [] at the end."""
    while True:
        page = reader.read()
        if not page:
            return
        yield from page


def rotate(path: Path) -> Path:
    """Move the live log aside (writers reopen it on their next line)."""
    rotated = path.with_suffix(path.suffix + ".1")
    if path.exists():
        time.sleep(0.05)  # let writers finish their current line
        path.rename(rotated)
    return rotated
