"""A message relay: a sender that fans messages out over one connection with a thread pool,
a heartbeat, a dispatcher with an idle watchdog, a flusher that writes under a lock, and a
child-process helper."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from . import settings

__all__ = ["DEFAULT_CHANNEL", "Channel", "Dispatcher", "Flusher", "Heartbeat", "Relay",
           "Sender", "Workers", "batches", "collect_replies", "gather", "staged"]


class Channel:
    """One end of a local connection, with the peer kept for reading back."""

    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()
        self.peer.settimeout(2)

    def send(self, payload: bytes) -> None:
        self.sock.sendall(len(payload).to_bytes(4, "big") + payload)

    def read(self) -> bytes:
        size = int.from_bytes(self._exactly(4), "big")
        return self._exactly(size)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            data += self.peer.recv(n - len(data))
        return data

    def close(self) -> None:
        self.sock.close()
        self.peer.close()


#: the channel a Relay uses when it is given none
DEFAULT_CHANNEL = Channel()


def batches(items: list[str]) -> list[list[str]]:
    size = settings.BATCH_SIZE
    return [items[i:i + size] for i in range(0, len(items), size)]


class Sender:
    """Sends queued messages over one channel from a small pool; closes the channel when the
    queue is drained."""

    def __init__(self, channel: Channel, workers: int = 2) -> None:
        self.channel = channel
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self._queue: queue.Queue[str] = queue.Queue()

    def send_all(self, messages: list[str]) -> None:
        for message in messages:
            self._queue.put(message)
        futures = [self.pool.submit(self._send_one) for _ in messages]
        try:
            for future in futures:
                future.result(timeout=5)
        finally:
            self.pool.shutdown(wait=True)

    def _send_one(self) -> None:
        message = self._queue.get_nowait()
        payload = _encode(message)
        self.channel.send(payload)
        # Drained: nobody else will send, so the channel can go.
        if self._queue.empty():
            self.channel.sock.close()


def _encode(message: str) -> bytes:
    if message.startswith("big:"):
        time.sleep(0.2)  # a large message takes a while to serialise
    return json.dumps({"m": message}).encode()


class Heartbeat:
    """Beats every ``interval`` seconds on a daemon thread."""

    def __init__(self, interval: float) -> None:
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        self.interval = interval

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beats += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class Dispatcher:
    """Runs jobs one after another on a pool that a watchdog shuts down once it goes idle."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.active = 0
        self._lock = threading.Lock()
        self._watchdog = threading.Thread(target=self._watch, name="idle-watchdog",
                                          daemon=True)
        self._started = False

    def dispatch_many(self, jobs: list[int]) -> list[int]:
        results = []
        for job in jobs:
            with self._lock:
                self.active += 1
            results.append(self.pool.submit(lambda j=job: j * 2).result(timeout=2))
            with self._lock:
                self.active -= 1
            if not self._started:
                self._started = True
                self._watchdog.start()
            time.sleep(0.05)  # the next job's inputs are read from disk
        return results

    def _watch(self) -> None:
        while True:
            time.sleep(0.005)
            with self._lock:
                idle = self.active == 0
            if idle:
                self.pool.shutdown(wait=False)
                return


class Flusher:
    """Writes buffered records to disk under a lock, in a background thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.buffer: list[str] = []
        self.flushed = threading.Event()

    def flush_async(self) -> threading.Thread:
        worker = threading.Thread(target=self._flush, name="flusher")
        worker.start()
        return worker

    def _flush(self) -> None:
        with self.lock:
            with open(self.path, "a") as out:
                out.write("".join(line + "\n" for line in self.buffer))
                out.flush()
                time.sleep(0.5)  # fsync of a large file on a slow disk
                os.fsync(out.fileno())
            self.buffer.clear()
            self.flushed.set()


class Workers:
    """A fixed set of worker threads that must all check in before work starts."""

    def __init__(self, parties: int, start_delays: list[float]) -> None:
        self.barrier = threading.Barrier(parties, timeout=0.3)
        self.threads = [threading.Thread(target=self._check_in, args=(delay,), daemon=True)
                        for delay in start_delays]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _check_in(self, delay: float) -> None:
        time.sleep(delay)  # loading the worker's model
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait()


def collect_replies(producers: int, per_producer: float) -> queue.Queue[str]:
    """Producers encode under one shared lock and put their reply on a queue."""
    replies: queue.Queue[str] = queue.Queue()
    encode_lock = threading.Lock()

    def produce(n: int) -> None:
        with encode_lock:
            time.sleep(per_producer)  # the encoder is single-threaded
            replies.put(f"reply-{n}")

    for n in range(producers):
        threading.Thread(target=produce, args=(n,), daemon=True).start()
    return replies


def gather(pool: ThreadPoolExecutor, jobs: list[float]) -> list[Future[float]]:
    return [pool.submit(_slow_job, seconds) for seconds in jobs]


def _slow_job(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def staged(items: list[int], pool: object) -> list[int]:
    futures = [pool.submit(pow, item, 2) for item in items]  # type: ignore[attr-defined]
    return [future.result(timeout=2) for future in futures]


class Relay:
    """Forwards lines to a TCP endpoint."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        return socket.create_connection(self.address, timeout=2)

    def forward(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")
