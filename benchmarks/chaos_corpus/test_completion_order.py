"""Completion order: concurrent work assumed to finish (or start) in submission order.

Sleep gaps of 10 ms keep the order on an idle machine; under load, workers start late by
more than the gaps and the order is anyone's.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed


def _warm(pool: ThreadPoolExecutor, workers: int) -> None:
    """Start every worker first, as a shared pool fixture has by the time a test runs."""
    barrier = threading.Barrier(workers)
    for future in [pool.submit(barrier.wait, 30) for _ in range(workers)]:
        future.result(timeout=60)


def test_flaky_as_completed_order():
    """Source: posit-dev/py-shiny#2350, test_as_completed_maintains_context_per_task: "asserts
    on as_completed completion order, which is timing-dependent; the sleep-based ordering is
    too tight for CI runners" (10/20/30 ms sleeps there; 5/10/15 ms here, as tight for a
    loaded Linux runner as theirs was for Windows' 15.6 ms timer)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        _warm(pool, 3)
        futures = {pool.submit(lambda d=delay: (time.sleep(d), d)[1]): name
                   for name, delay in (("Q", 0.005), ("R", 0.010), ("P", 0.015))}
        order = [futures[f] for f in as_completed(futures, timeout=30)]
    assert order == ["Q", "R", "P"]


def test_flaky_tasks_consume_in_submission_order():
    """Source: apache/pinot#18341, "submitted four identical tasks to a fixed thread pool and
    relied on those tasks consuming answers in submission order; thread scheduling can
    reorder those calls in CI". Submissions 2 ms apart."""
    answers = iter(["a", "b", "c", "d"])
    lock = threading.Lock()
    taken: list[tuple[int, str]] = []

    def take(index: int) -> None:
        with lock:
            taken.append((index, next(answers)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        _warm(pool, 4)
        futures = []
        for index in range(4):
            futures.append(pool.submit(take, index))
            time.sleep(0.002)
        for future in futures:
            future.result(timeout=30)
    assert taken == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]


def test_stable_as_completed_as_a_set():
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(lambda d=delay: (time.sleep(d), d)[1])
                   for delay in (0.01, 0.02, 0.03)]
        done = {f.result() for f in as_completed(futures, timeout=30)}
    assert done == {0.01, 0.02, 0.03}
