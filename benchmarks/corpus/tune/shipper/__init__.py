"""A small log shipper: batches of records uploaded by a thread pool, a consumer thread that
feeds it, an acknowledging forwarder child process, and an asyncio uploader."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]
Upload = Callable[[Sequence[Record]], None]


class ShipError(Exception):
    """An upload the shipper gave up on."""


def chunks(records: Sequence[Record], size: int) -> list[list[Record]]:
    """Split records into batches of at most ``size``, the last one possibly shorter."""
    return [list(records[start:start + size]) for start in range(0, len(records) - size + 1, size)]


def render(record: Record) -> str:
    return f"{record['level']}: {record['msg']}"


@dataclass
class Report:
    sent: int = 0
    failed: int = 0


@dataclass
class Stats:
    batches: int = 0
    records: int = 0


class Shipper:
    """Uploads batches on a thread pool and keeps running totals."""

    def __init__(self, upload: Upload, workers: int = 2, attempts: int = 3,
                 between: Callable[[str], None] | None = None) -> None:
        self.upload = upload
        self.attempts = attempts
        self.between = between
        self.pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="ship")
        self.futures: list[cf.Future[int]] = []
        self.sent: list[str] = []
        self.bytes_sent = 0
        self.stats = Stats()
        self.inflight: dict[str, int] = {}
        self.report: Report | None = None
        self._done_callbacks: list[Callable[[str], None]] = []
        self._lock = threading.Lock()

    def _pause(self, where: str) -> None:
        if self.between is not None:
            self.between(where)

    def _ship(self, name: str, batch: Sequence[Record]) -> int:
        self.inflight[name] = len(batch)
        for attempt in range(1, self.attempts + 1):
            try:
                self.upload(batch)
                break
            except ConnectionError:
                if attempt == self.attempts:
                    raise ShipError(f"{name}: gave up after {attempt} attempts") from None
                time.sleep(0.01)
        size = sum(len(render(record)) for record in batch)
        total = self.bytes_sent
        self._pause("bytes")
        self.bytes_sent = total + size
        self.stats.records += len(batch)
        self._pause("stats")
        self.stats.batches += 1
        with self._lock:
            self.sent.append(name)
        del self.inflight[name]
        for callback in list(self._done_callbacks):
            callback(name)
        return len(batch)

    def submit(self, name: str, batch: Sequence[Record]) -> cf.Future[int]:
        future = self.pool.submit(self._ship, name, batch)
        self.futures.append(future)
        return future

    def on_done(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` as each batch is acknowledged."""
        self._done_callbacks.append(callback)

    def wait_flushed(self, limit: float) -> bool:
        """True once every submitted batch is acknowledged, False if ``limit`` runs out."""
        _, pending = cf.wait(self.futures, timeout=limit)
        return not pending

    def pending_summary(self, fmt: Callable[[str, int], str] = "{}={}".format) -> list[str]:
        return [fmt(name, count) for name, count in self.inflight.items()]

    def snapshot(self) -> tuple[int, int]:
        return self.stats.batches, self.stats.records

    def close(self) -> Report:
        """Stop taking batches and tally what was shipped. Does not wait for the pool."""
        self.pool.shutdown(wait=False)
        report = Report()
        for future in self.futures:
            if future.done() and future.exception() is None:
                report.sent += 1
            else:
                report.failed += 1
        self.report = report
        return report

    def join(self, limit: float = 2.0) -> None:
        cf.wait(self.futures, timeout=limit)
        self.pool.shutdown(wait=True)


class Spool:
    """A queue of records drained by one consumer thread into an upload function."""

    def __init__(self, upload: Callable[[str], None]) -> None:
        self.upload = upload
        self.queue: queue.Queue[Record | None] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._consume, name="spool-consumer")

    def _consume(self) -> None:
        while (record := self.queue.get()) is not None:
            try:
                self.upload(render(record))
            except Exception as exc:  # remembered for close(); the consumer stops here
                self.error = exc
                return

    def start(self) -> Spool:
        self.thread.start()
        return self

    def put(self, record: Record) -> None:
        self.queue.put(record)

    def close(self, limit: float = 1.0) -> None:
        self.queue.put(None)
        self.thread.join(limit)


FORWARDER = r"""
import sys
once = "--once" in sys.argv
for n, line in enumerate(sys.stdin, 1):
    sys.stdout.write(f"ack {n} {len(line.rstrip())}\n")
    sys.stdout.flush()
    if once:
        break
"""


class Forwarder:
    """A child process that forwards lines and acknowledges each with its byte count."""

    def __init__(self, once: bool = True) -> None:
        args = [sys.executable, "-c", FORWARDER] + (["--once"] if once else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def ack(self) -> int:
        assert self.proc.stdout is not None
        reply = self.proc.stdout.readline()
        return int(reply.split()[2])

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(2)


async def ship_all(uploads: Iterable[Awaitable[str]], within: float = 1.0) -> list[str]:
    """Run the uploads together and return the receipts that came back within the bound."""
    tasks = [asyncio.ensure_future(upload) for upload in uploads]
    done, _pending = await asyncio.wait(tasks, timeout=within)
    return sorted(task.result() for task in done)


@dataclass
class Timing:
    latencies: list[float] = field(default_factory=list)

    def percentile(self, pct: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def timed_uploads(upload: Upload, batches: Sequence[Sequence[Record]], workers: int) -> Timing:
    timing = Timing()
    lock = threading.Lock()

    def one(batch: Sequence[Record]) -> None:
        began = time.perf_counter()
        upload(batch)
        with lock:
            timing.latencies.append(time.perf_counter() - began)

    with cf.ThreadPoolExecutor(workers, thread_name_prefix="timed") as pool:
        list(pool.map(one, batches))
    return timing


class HttpClient:
    """The transport the shipper posts through (replaced by a double in tests)."""

    def post(self, path: str, body: str) -> Any:
        raise ConnectionRefusedError(f"no collector at {path}")


def post_batches(client: HttpClient, batches: Sequence[Sequence[Record]],
                 pool: cf.Executor) -> int:
    """Post each batch; count those the collector accepted (status 202)."""
    def one(batch: Sequence[Record]) -> bool:
        reply = client.post("/ingest", "\n".join(render(r) for r in batch))
        return reply.status == 202
    return sum(pool.map(one, batches))
