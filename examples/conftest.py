"""Fixtures of the demo suite: pools that are stopped after each test, a shared worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from poolsvc import RealWorker, WorkerPool
from poolsvc.affinity import AffinityService


@pytest.fixture
def make_pool() -> Iterator[Callable[..., WorkerPool]]:
    pools: list[WorkerPool] = []

    def make(name: str, **options: Any) -> WorkerPool:
        pool = WorkerPool(name, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop()


@pytest.fixture
def affinity_service() -> Iterator[AffinityService]:
    """The service with its address reserved; tests that need it serving call start()."""
    service = AffinityService()
    yield service
    service.close()


@pytest.fixture(scope="module")
def shared_worker() -> Iterator[RealWorker]:
    """One worker process for the whole module: cheap, and shared by every test that uses it."""
    worker = RealWorker(index=0)
    yield worker
    worker.close()
