"""A small job scheduler: interval jobs run by timer threads, coroutine jobs on a background
event loop, and heavy jobs on a process pool."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import math
import multiprocessing as mp
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

Action = Callable[[], object]
Pause = Callable[[str], None]

#: Seconds per unit of an interval spec such as "30s" or "5m".
UNITS = {"s": 1, "m": 60}


class NotReady(Exception):
    """A job whose precondition never held."""


def parse_every(spec: str) -> int:
    """Seconds in an interval spec: "30s", "5m", "2h"."""
    return int(spec[:-1]) * UNITS[spec[-1]]


def next_boundary(now: float, every: float) -> float:
    """The first multiple of ``every`` strictly after ``now`` (cron-style alignment)."""
    return math.ceil(now / every) * every


@dataclass
class Job:
    name: str
    every: float
    action: Action
    last_run: float = 0.0
    runs: int = 0


class Scheduler:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 between: Pause | None = None) -> None:
        self.clock = clock
        self.between = between
        self.fired: list[str] = []
        self._registry: dict[str, Job] | None = None
        self._lock = threading.Lock()

    def _pause(self, where: str) -> None:
        if self.between is not None:
            self.between(where)

    def registry(self) -> dict[str, Job]:
        if self._registry is None:
            self._pause("registry")
            created: dict[str, Job] = {}
            self._registry = created
            return created
        return self._registry

    def add(self, name: str, every: float, action: Action) -> Job:
        """Register a job; its first run is one interval from now."""
        job = Job(name, every, action, last_run=self.clock())
        self.registry()[name] = job
        return job

    def get(self, name: str) -> Job:
        return self.registry()[name]

    def due(self, job: Job) -> bool:
        return self.clock() - job.last_run >= job.every

    def run_if_due(self, job: Job) -> bool:
        if not self.due(job):
            return False
        self._pause("due")
        job.last_run = self.clock()
        job.runs += 1
        job.action()
        with self._lock:
            self.fired.append(job.name)
        return True

    def run_pending(self) -> None:
        for job in list(self.registry().values()):
            self.run_if_due(job)


class Ticker:
    """Calls ``run_pending`` every ``period`` seconds from a thread."""

    def __init__(self, sched: Scheduler, period: float) -> None:
        self.sched = sched
        self.period = period
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.sched.run_pending()

    def start(self) -> Ticker:
        self.thread = threading.Thread(target=self._loop, name="ticker", daemon=True)
        self.thread.start()
        return self

    def stop(self, limit: float = 1.0) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(limit)

    def restart(self) -> None:
        self.stop()
        self.start()


class Heartbeat:
    """Ticks a scheduler from a daemon thread for as long as the heartbeat object is alive, so
    that a forgotten heartbeat does not keep a scheduler running."""

    def __init__(self, sched: Scheduler, period: float) -> None:
        self.sched = sched
        self.thread = threading.Thread(target=_heartbeat_loop,
                                       args=(weakref.ref(self), period), name="heartbeat",
                                       daemon=True)
        self.thread.start()


def _heartbeat_loop(ref: weakref.ref[Heartbeat], period: float) -> None:
    idle = threading.Event()
    while not idle.wait(period):
        beat = ref()
        if beat is None:
            return
        beat.sched.run_pending()
        del beat


def fire_when_ready(sched: Scheduler, name: str, ready: Callable[[], bool], checks: int = 5,
                    pause: float = 0.01) -> None:
    """Run job ``name`` once ``ready()`` holds, looking ``checks`` times."""
    for _ in range(checks):
        if ready():
            sched.run_if_due(sched.get(name))
            return
        time.sleep(pause)
    raise NotReady(f"{name}: precondition false on all {checks} checks")


# -- coroutine jobs ----------------------------------------------------------------------------


class AsyncRunner:
    """Coroutine jobs on an event loop that runs in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.results: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._run, name="async-runner", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def start(self) -> AsyncRunner:
        self.thread.start()
        return self

    def submit(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        async def run() -> None:
            self.results[name] = await job()
        asyncio.run_coroutine_threadsafe(run(), self.loop)

    def result(self, name: str) -> Any:
        return self.results[name]

    def stop(self, limit: float = 1.0) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(limit)


async def run_jobs(jobs: dict[str, Callable[[], Awaitable[Any]]],
                   limit: float) -> dict[str, str]:
    """Run coroutine jobs together; a job over ``limit`` seconds is skipped this round."""
    async def one(name: str, job: Callable[[], Awaitable[Any]]) -> tuple[str, str]:
        try:
            await asyncio.wait_for(job(), limit)
        except asyncio.TimeoutError:
            return name, "skipped"
        return name, "ok"
    return dict(await asyncio.gather(*(one(name, job) for name, job in jobs.items())))


# -- heavy jobs ----------------------------------------------------------------------------------


def _heavy(job: tuple[str, float]) -> tuple[str, str]:
    name, seconds = job
    time.sleep(seconds)
    return name, "done"


def run_heavy(jobs: Sequence[tuple[str, float]], within: float,
              processes: int = 2) -> dict[str, str]:
    """Run heavy jobs on a process pool; what is not back within ``within`` s waits a round."""
    with mp.get_context("fork").Pool(processes) as pool:
        batch = pool.map_async(_heavy, jobs)
        try:
            return dict(batch.get(timeout=within))
        except mp.TimeoutError:
            return {}


def count_run(counter: Any, between: Callable[[], object] | None = None) -> None:
    """Called in a pool process when a job finishes: bump the shared run counter."""
    seen = counter.value
    if between is not None:
        between()
    counter.value = seen + 1


def run_spread(jobs: Sequence[Callable[[], object]], workers: int) -> list[str]:
    """Run jobs on worker threads; the name of the thread that ran each, in job order."""
    def one(job: Callable[[], object]) -> str:
        job()
        return threading.current_thread().name

    with cf.ThreadPoolExecutor(workers, thread_name_prefix="cron") as pool:
        return list(pool.map(one, jobs))
