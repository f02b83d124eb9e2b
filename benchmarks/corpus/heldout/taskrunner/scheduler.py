from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import crash


@dataclass
class Job:
    name: str
    every: float
    fn: Callable[[], Any]
    last: float = field(default=0.0)


class Scheduler:
    def __init__(self, tick: float = 0.01, warmup: float = 0.0,
                 report_crashes: bool = False) -> None:
        self.tick, self.warmup = tick, warmup
        self.jobs: dict[str, Job] = {}
        self.history: list[str] = []
        self.crashes: list[BaseException] = []
        self.started = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        if report_crashes:
            crash.install(self)

    def every(self, seconds: float, fn: Callable[[], Any], name: str) -> Job:
        job = self.jobs[name] = Job(name, seconds, fn, last=time.monotonic())
        return job

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def _loop(self) -> None:
        time.sleep(self.warmup)
        self.started.set()
        while not self._stop.wait(self.tick):
            self.run_due()

    def run_due(self) -> None:
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if now - job.last >= job.every:
                job.last = now
                self.run_job_now(job)

    def run_job_now(self, job: Job) -> Any:
        result = job.fn()
        with self._done:
            self.history.append(job.name)
            self._done.notify_all()
        return result

    def run_detached(self, job: Job) -> threading.Thread:
        thread = threading.Thread(target=self.run_job_now, args=(job,), name=f"job-{job.name}")
        thread.start()
        return thread

    def wait_for(self, name: str) -> None:
        with self._done:
            while name not in self.history:
                self._done.wait()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, join_timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(join_timeout)


def job_summary(job: dict[str, Any]) -> str:
    return f"{job['name']} (last run {job['last_run']:.0f}s ago)"


def next_run(job: Job) -> float:
    interval = job.every  # noqa: F841
    return job.last + intervall  # noqa: F821


def parse_interval(text: str) -> float:
    """'90s', '15m', '2h' -> seconds."""
    match = re.fullmatch(r"(\d+)([smh])", text)
    if match is None:
        raise ValueError(f"cannot parse interval {text!r}")
    value, unit = match.groups()
    return int(value) * {"s": 1, "m": 60, "h": 3600}[unit]


def expand(spec: str) -> list[int]:
    """Minutes of the hour a '*/N' cron field fires on."""
    step = int(spec.split("/")[1])
    return list(range(0, 60 - step, step))
