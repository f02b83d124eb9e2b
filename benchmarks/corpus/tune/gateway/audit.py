"""Audit events go on one multiprocessing queue that a collector process drains."""

from __future__ import annotations

import multiprocessing as mp
import queue

QUEUE: mp.Queue[str] = mp.Queue()


def record(event: str) -> None:
    QUEUE.put(event)


def drain(timeout: float = 1.0) -> list[str]:
    events = []
    while True:
        try:
            events.append(QUEUE.get(timeout=timeout))
        except queue.Empty:
            return events


def close() -> None:
    """Flushes what was put and closes the queue (called at application exit)."""
    QUEUE.close()
    QUEUE.join_thread()


class Sink:
    """An audit queue of one component."""

    def __init__(self) -> None:
        self.queue: mp.Queue[str] = mp.Queue()

    def record(self, event: str) -> None:
        self.queue.put(event)

    def close(self) -> None:
        self.queue.close()
        self.queue.join_thread()
