from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import config

log = logging.getLogger("jobq.worker")
log.setLevel(logging.INFO)


class TransientError(Exception):
    """A failure worth retrying (a dropped connection, a busy backend)."""


class JobFailed(Exception):
    pass


@dataclass
class Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    name: str = "job"
    attempts: int = 0
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class Stats:
    completed: int = 0
    failed: int = 0
    retries: int = 0
    on_update: Callable[[str, int], None] | None = None

    def record(self, what: str) -> None:
        current = getattr(self, what)
        if self.on_update is not None:
            self.on_update(what, current)
        setattr(self, what, current + 1)


@dataclass
class JobQueue:
    workers: int = field(default_factory=config.workers)
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="jobq")
        self._futures: list[cf.Future[Any]] = []
        self.completion_order: list[str] = []
        self.queue_waits: list[float] = []
        self._order_lock = threading.Lock()
        log.info("queue started with %d workers", self.workers)

    @property
    def worker_count(self) -> int:
        return self._pool._max_workers

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "job") -> cf.Future[Any]:
        future = self._pool.submit(self._run, Job(fn, args, name))
        self._futures.append(future)
        return future

    def submit_from(self, jobs: Iterator[Callable[[], Any]], consumers: int) -> list[Any]:
        """Feed jobs from one iterator to ``consumers`` workers."""
        results: list[Any] = []

        def consume() -> None:
            for job in jobs:
                results.append(job())

        futures = [self._pool.submit(consume) for _ in range(consumers)]
        for future in futures:
            future.result(timeout=5)
        return results

    def _run(self, job: Job) -> Any:
        with self._order_lock:
            self.queue_waits.append(time.monotonic() - job.submitted)
        limit = config.max_retries()
        while True:
            job.attempts += 1
            try:
                result = job.fn(*job.args)
            except TransientError as error:
                if job.attempts > limit:
                    self.stats.record("failed")
                    raise
                log.warning("retrying %s after %s (attempt %d)", job.name, error, job.attempts)
                self.stats.record("retries")
                continue
            self.stats.record("completed")
            with self._order_lock:
                self.completion_order.append(job.name)
            return result

    def drain(self, timeout: float | None = None) -> None:
        _done, pending = cf.wait(self._futures, timeout=timeout)
        if pending:
            raise JobFailed(f"{len(pending)} job(s) still running after {timeout}s")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
