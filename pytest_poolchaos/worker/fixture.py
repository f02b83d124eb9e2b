"""What the ``pool_scope`` fixture gives a test: tools for pools, with cleanup built in.

Everything it creates is stopped when the test ends, so tests using it cannot leak, and its
failures say what was waited for and how long, which is what the diagnosis needs.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, TypeVar

from .. import clock
from ..model.frozen import frozen

if TYPE_CHECKING:
    from concurrent.futures import Executor

T = TypeVar("T")
_COUNTER = itertools.count(1)


@frozen
class Outcome:
    """One callable's result under ``run_concurrently``."""

    index: int
    value: Any = None
    error: BaseException | None = None
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@frozen
class ConcurrentRun:
    """Every outcome, in the order the callables were given."""

    outcomes: tuple[Outcome, ...]
    elapsed_s: float
    errors: tuple[BaseException, ...] = field(default=())

    @property
    def success_rate(self) -> float:
        if not self.outcomes:
            return 0.0
        return sum(outcome.ok for outcome in self.outcomes) / len(self.outcomes)

    @property
    def values(self) -> list[Any]:
        return [outcome.value for outcome in self.outcomes]

    @property
    def max_latency_s(self) -> float:
        return max((outcome.latency_s for outcome in self.outcomes), default=0.0)


class PoolTools:
    """What the ``pool_scope`` fixture gives a test (the pool scope itself wraps every test)."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.id = f"{next(_COUNTER)}-{uuid.uuid4().hex[:8]}"
        self._executors: list[Executor] = []
        self._names = itertools.count(1)

    def name(self, prefix: str = "pool") -> str:
        """A name no other test of this session (or of a parallel worker) will use."""
        # the test's id keeps it apart from other tests; the count from this test's other names
        return f"{prefix}-{self.id}-{next(self._names)}"

    def executor(self, kind: str = "thread", max_workers: int | None = None) -> Executor:
        """A thread or process pool that is shut down when the test ends."""
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

        if kind == "thread":
            pool: Executor = ThreadPoolExecutor(max_workers=max_workers,
                                                thread_name_prefix=self.name("poolchaos"))
        elif kind == "process":
            pool = ProcessPoolExecutor(max_workers=max_workers)
        else:
            raise ValueError(f"pool_scope.executor(kind=...) accepts 'thread' or 'process', "
                             f"got {kind!r}")
        self._executors.append(pool)
        return pool

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0,
                 interval: float = 0.01, what: str | None = None) -> T:
        """Poll ``predicate`` until it returns something truthy; return that value.

        Raises TimeoutError naming the condition and the time waited.
        """
        start = clock.monotonic()
        deadline = start + timeout
        while True:
            value = predicate()
            if value:
                return value
            if clock.monotonic() >= deadline:
                label = what or getattr(predicate, "__qualname__", repr(predicate))
                raise TimeoutError(f"wait_for({label}) still false after "
                                   f"{clock.monotonic() - start:.3g} s (timeout={timeout})")
            clock.sleep(min(interval, max(0.0, deadline - clock.monotonic())))

    def run_concurrently(self, callables: Sequence[Callable[[], Any]],
                         timeout: float = 10.0) -> ConcurrentRun:
        """Start every callable at the same moment (behind a barrier) and collect outcomes."""
        count = len(callables)
        barrier = threading.Barrier(count + 1) if count else None
        outcomes: list[Outcome | None] = [None] * count

        def run(index: int, func: Callable[[], Any]) -> None:
            assert barrier is not None
            barrier.wait(timeout)
            begin = clock.monotonic()
            try:
                outcomes[index] = Outcome(index, func(), None, clock.monotonic() - begin)
            except BaseException as error:  # the test asked for every outcome, errors too
                outcomes[index] = Outcome(index, None, error, clock.monotonic() - begin)

        threads = [threading.Thread(target=run, args=(i, f), daemon=True,
                                    name=f"{self.name('concurrent')}-{i}")
                   for i, f in enumerate(callables)]
        for thread in threads:
            thread.start()
        start = clock.monotonic()
        if barrier is not None:
            barrier.wait(timeout)
        deadline = start + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - clock.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            raise TimeoutError(f"run_concurrently: {len(stuck)} of {count} callables still "
                               f"running after {timeout} s ({', '.join(stuck[:3])})")
        done = tuple(o for o in outcomes if o is not None)
        return ConcurrentRun(done, clock.monotonic() - start,
                             tuple(o.error for o in done if o.error is not None))

    def close(self) -> None:
        for pool in reversed(self._executors):
            pool.shutdown(wait=True, cancel_futures=True)
        self._executors.clear()

