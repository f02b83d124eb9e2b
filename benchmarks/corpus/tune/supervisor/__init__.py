"""A small worker supervisor: threads and processes it starts, restarts, probes and stops."""

from __future__ import annotations

import multiprocessing as mp
import queue
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Job = Callable[[], None]


def backoff(attempt: int, base: float = 0.1, cap: float = 5.0) -> float:
    """Delay before restart number ``attempt`` (1-based): base, 2*base, 4*base ..."""
    return min(cap, base * 2 ** attempt)


class Worker:
    def __init__(self, name: str, job: Job) -> None:
        self.name = name
        self.job = job
        self.lock = threading.Lock()
        self.state = "new"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"worker-{name}")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.job()

    def start(self) -> None:
        self._stop.clear()
        self.thread.start()
        self.state = "running"

    def stop(self, join_timeout: float = 2.0) -> None:
        self._stop.set()
        self.thread.join(join_timeout)
        self.state = "stopped"

    def restart(self) -> None:
        self.stop()
        self.start()


class Supervisor:
    def __init__(self, lock_wait: float = 0.3) -> None:
        self.workers: dict[str, Worker] = {}
        self.registry_lock = threading.Lock()
        self.lock_wait = lock_wait
        self.per_cpu = 2
        self.log: list[str] = []

    def _take(self, lock: threading.Lock, what: str) -> None:
        if not lock.acquire(timeout=self.lock_wait):
            raise RuntimeError(f"{what} lock still held by another thread after "
                               f"{self.lock_wait} s")

    def add(self, worker: Worker) -> Worker:
        self.workers[worker.name] = worker
        return worker

    def mark_restarting(self, name: str, between: Callable[[], None] | None = None) -> None:
        """Registry first, then the worker."""
        self._take(self.registry_lock, "registry")
        try:
            if between is not None:
                between()
            worker = self.workers[name]
            self._take(worker.lock, f"worker {name}")
            try:
                worker.state = "restarting"
            finally:
                worker.lock.release()
        finally:
            self.registry_lock.release()

    def report(self, worker: Worker, line: str,
               between: Callable[[], None] | None = None) -> None:
        """Called by a worker about itself: its own lock first, then the registry."""
        self._take(worker.lock, f"worker {worker.name}")
        try:
            if between is not None:
                between()
            self._take(self.registry_lock, "registry")
            try:
                self.log.append(f"{worker.name}: {line}")
            finally:
                self.registry_lock.release()
        finally:
            worker.lock.release()

    def capacity(self, host: object) -> int:
        return len(host.cpus) * self.per_cpu  # type: ignore[attr-defined]


@dataclass
class Host:
    name: str
    cpus: list[int] = field(default_factory=list)


class RestartingWorker:
    """Runs a job in a thread and starts it again ``delay`` seconds after it crashes."""

    def __init__(self, job: Job, delay: float = 0.05, restarts: int = 1) -> None:
        self.job = job
        self.delay = delay
        self.restarts = restarts
        self.crashed_at: list[float] = []
        self.started_at: list[float] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="restarting-worker")

    def _run(self) -> None:
        for _ in range(self.restarts + 1):
            self.started_at.append(time.monotonic())
            try:
                self.job()
                return
            except Exception:
                self.crashed_at.append(time.monotonic())
                if self._stop.wait(self.delay):
                    return

    def run(self, within: float = 2.0) -> None:
        self.thread.start()
        self.thread.join(within)


# -- processes -------------------------------------------------------------------------------


def _checkpointing_main(results: mp.Queue, stop: mp.synchronize.Event) -> None:  # type: ignore
    results.put("ready")
    stop.wait(5)
    results.put("final: 3 jobs")


class ProcessWorker:
    """A child process that reports "ready", works, and writes a final checkpoint."""

    def __init__(self) -> None:
        ctx = mp.get_context("fork")
        self.results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        self._stop = ctx.Event()
        self.proc = ctx.Process(target=_checkpointing_main, args=(self.results, self._stop),
                                name="checkpointer", daemon=True)

    def start(self) -> None:
        self.proc.start()

    def wait_ready(self, within: float) -> bool:
        return self.results.get(timeout=within) == "ready"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(0.5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1)

    def drain(self) -> list[str]:
        got = []
        while True:
            try:
                got.append(self.results.get_nowait())
            except queue.Empty:
                return got

    def close(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1)
        self.results.close()
        self.results.join_thread()


class ChildWorker:
    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)

    def stop(self, grace: float = 0.3) -> str:
        """Ask politely, then insist; say which it took."""
        self.proc.terminate()
        try:
            self.proc.wait(grace)
            return "terminated"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(2)
            return "killed"


def probe(argv: list[str], within: float) -> str:
    """Run a health-check command and return what it printed."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return out.strip()


def remote_status(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return reply.read().decode()


class HeartbeatLog:
    """Buffers heartbeat lines and writes them out from a background thread."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self.buffer: list[str] = []
        self._lock = threading.Lock()
        self._flusher = threading.Thread(target=self._loop, name="heartbeat-flush",
                                         daemon=True)
        self._flusher.start()

    def beat(self, line: str) -> None:
        with self._lock:
            self.buffer.append(line)

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self.buffer = self.buffer, []
        with self.path.open("a") as out:
            out.writelines(f"{line}\n" for line in lines)


def start_heartbeat(period: float = 60.0) -> threading.Thread:
    """A daemon thread that ticks for as long as the process lives."""
    ticks = threading.Event()
    thread = threading.Thread(target=lambda: [ticks.wait(period) for _ in iter(int, 1)],
                              name="supervisor-heartbeat", daemon=True)
    thread.start()
    return thread
