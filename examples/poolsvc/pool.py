"""A named pool of workers with round-robin routing and optional session affinity."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from .adapters import MockAdapter, RealAdapter, WorkerGone, adapter_named
from .config import SETTINGS

# Pool names are process-wide, like registered names in a supervision tree.
_STARTED: dict[str, WorkerPool] = {}


class PoolAlreadyStarted(RuntimeError):
    pass


@dataclass
class LoadResult:
    successful_operations: int = 0
    failed_operations: int = 0
    errors: list[str] = field(default_factory=list, repr=False)


@dataclass
class AffinityResult:
    calls: int = 0
    hits: int = 0

    @property
    def affinity_success_rate(self) -> float:
        return self.hits / self.calls if self.calls else 0.0


class WorkerPool:
    def __init__(self, name: str, size: int | None = None,
                 adapter: RealAdapter | MockAdapter | None = None,
                 session_affinity: bool | None = None, warmup_s: float | None = None) -> None:
        self.name = name
        self.size = size if size is not None else SETTINGS["workers"]
        self.adapter = adapter if adapter is not None else adapter_named(SETTINGS["adapter"])
        self.session_affinity = (SETTINGS["session_affinity"] if session_affinity is None
                                 else session_affinity)
        self.warmup_s = warmup_s if warmup_s is not None else SETTINGS["warmup_s"]
        self.workers: list[Any] = []
        self._next = itertools.count()
        self._sessions: dict[str, int] = {}
        self._affinity = {"sessions": 0, "hits": 0, "misses": 0}
        self._executor: ThreadPoolExecutor | None = None
        self._heartbeat: threading.Thread | None = None
        self.first_beat = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> WorkerPool:
        if self.name in _STARTED:
            raise PoolAlreadyStarted(f"pool {self.name!r} already started")
        self.workers = [self.adapter.start_worker(i, self.warmup_s) for i in range(self.size)]
        _STARTED[self.name] = self
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if _STARTED.get(self.name) is self:
            del _STARTED[self.name]

    def kill_worker(self, index: int) -> None:
        """Chaos: the worker process dies without warning."""
        self.workers[index].kill()

    def replace_worker(self, index: int, warmup_s: float) -> None:
        self.workers[index].close()
        self.workers[index] = self.adapter.start_worker(index, warmup_s)

    def start_heartbeat(self, interval: float) -> None:
        def beat() -> None:
            while True:
                for worker in self.workers:
                    worker.call("ping")
                self.first_beat.set()
                threading.Event().wait(interval)

        self._heartbeat = threading.Thread(target=beat, name=f"{self.name}-heartbeat",
                                           daemon=True)
        self._heartbeat.start()

    # -- work --------------------------------------------------------------------------------

    def execute(self, op: str, session: str | None = None, **args: Any) -> dict[str, Any]:
        reply: dict[str, Any] = self.workers[self._route(session)].call(op, **args)
        return reply

    def run_load(self, operations: int) -> LoadResult:
        result = LoadResult()
        for n in range(operations):
            try:
                self.execute("echo", value=n)
                result.successful_operations += 1
            except WorkerGone as exc:
                result.failed_operations += 1
                result.errors.append(str(exc))
        return result

    def run_concurrent(self, operations: int, timeout: float) -> list[dict[str, Any]]:
        self._executor = self._executor or ThreadPoolExecutor(operations, f"{self.name}-op")
        futures = [self._executor.submit(self.execute, "echo", value=n)
                   for n in range(operations)]
        _, pending = wait(futures, timeout=timeout)
        if pending:
            raise TimeoutError(f"{len(pending)} of {operations} operations not done after "
                               f"{timeout} s")
        return [f.result() for f in futures]

    def measure_affinity(self, sessions: int, calls_per_session: int) -> AffinityResult:
        """Share of session calls served by the worker the session is bound to."""
        result = AffinityResult()
        for s in range(sessions):
            session = f"session-{s}"
            for _ in range(calls_per_session):
                reply = self.execute("echo", session=session)
                bound = self.workers[self._sessions[session]]
                result.calls += 1
                result.hits += reply.get("pid") == bound.pid
        return result

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "adapter": self.adapter.name,
            "workers": len(self.workers),
            "session_affinity": dict(self._affinity) if self.session_affinity else {},
        }

    def _route(self, session: str | None) -> int:
        if session is None or not self.session_affinity:
            return next(self._next) % len(self.workers)
        if session not in self._sessions:
            self._sessions[session] = next(self._next) % len(self.workers)
            self._affinity["sessions"] += 1
        return self._sessions[session]
