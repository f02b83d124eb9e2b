from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from . import clock

_MISSING = object()


class ReplicationStalled(Exception):
    pass


class Store:
    default_ttl: float | None = None

    def __init__(self) -> None:
        self._data: dict[Hashable, tuple[Any, int, float | None]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.version = 0
        self.on_write: Callable[[Hashable, Any], None] | None = None
        self._feeds: list[queue.Queue[tuple[Hashable, Any]]] = []
        self.max_feed_depth = 0

    def put(self, key: Hashable, value: Any, ttl: float | None = None) -> int:
        ttl = self.default_ttl if ttl is None else ttl
        expires = None if ttl is None else clock.now() + ttl
        with self._changed:
            self.version += 1
            self._data[key] = (value, self.version, expires)
            self._changed.notify_all()
            version = self.version
        for feed in self._feeds:
            feed.put((key, value))
            self.max_feed_depth = max(self.max_feed_depth, feed.qsize())
        return version

    def get(self, key: Hashable, default: Any = _MISSING) -> Any:
        item = self._data.get(key)
        if item is None or (item[2] is not None and item[2] <= clock.now()):
            if default is _MISSING:
                raise KeyError(key)
            return default
        return item[0]

    def incr(self, key: Hashable, by: int = 1) -> int:
        current = self.get(key, 0)
        if self.on_write is not None:
            self.on_write(key, current)
        self.put(key, current + by)
        return current + by

    def get_or_create(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        if key not in self._data:
            value = factory()
            self.put(key, value)
            return value
        return self.get(key)

    def wait_for_version(self, version: int, timeout: float | None = None) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.version >= version, timeout)

    def subscribe(self) -> queue.Queue[tuple[Hashable, Any]]:
        feed: queue.Queue[tuple[Hashable, Any]] = queue.Queue()
        self._feeds.append(feed)
        return feed

    def keys_by_version(self) -> list[Hashable]:
        return sorted(self._data, key=lambda k: -self._data[k][1])

    def snapshot(self) -> dict[Hashable, Any]:
        with self._lock:
            return {key: item[0] for key, item in self._data.items()}

    def timed_get(self, key: Hashable) -> float:
        start = time.perf_counter()
        with self._lock:
            self._data.get(key)
        return time.perf_counter() - start


class Follower:
    """Applies the leader's changes after ``delay`` seconds, on its own thread."""

    def __init__(self, leader: Store, delay: float = 0.0) -> None:
        self.leader, self.delay = leader, delay
        self.replica: dict[Hashable, Any] = {}
        self.lock = threading.Lock()
        self.lags: list[float] = []
        self._feed = leader.subscribe()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="follower", daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                key, value = self._feed.get(timeout=0.05)
            except queue.Empty:
                continue
            written = time.monotonic()
            time.sleep(self.delay)
            with self.lock:
                self.replica[key] = value
            self.lags.append(time.monotonic() - written)

    def compact(self, hold: float, rounds: int) -> None:
        """Rewrite the leader's log: holds the leader's lock ``hold`` seconds per round."""
        for _ in range(rounds):
            with self.leader._lock:
                time.sleep(hold)
            time.sleep(hold / 3)

    def reconcile(self, wait: float = 0.5,
                  between: Callable[[], None] | None = None) -> None:
        """Copy the leader's snapshot under both locks (follower first)."""
        if not self.lock.acquire(timeout=wait):
            raise ReplicationStalled("follower busy")
        try:
            if between is not None:
                between()
            if not self.leader._lock.acquire(timeout=wait):
                raise ReplicationStalled(f"leader lock not free after {wait}s")
            try:
                self.replica = {k: v[0] for k, v in self.leader._data.items()}
            finally:
                self.leader._lock.release()
        finally:
            self.lock.release()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def push_snapshot(leader: Store, follower: Follower, wait: float = 0.5,
                  between: Callable[[], None] | None = None) -> None:
    """Leader-side push: takes the leader's lock first, then the follower's."""
    if not leader._lock.acquire(timeout=wait):
        raise ReplicationStalled("leader busy")
    try:
        if between is not None:
            between()
        if not follower.lock.acquire(timeout=wait):
            raise ReplicationStalled(f"follower lock not free after {wait}s")
        try:
            follower.replica = {k: v[0] for k, v in leader._data.items()}
        finally:
            follower.lock.release()
    finally:
        leader._lock.release()


def top_keys(counts: dict[str, int], n: int) -> list[str]:
    """The n keys with the highest counts, highest first."""
    return sorted(counts, key=lambda k: counts[k])[:n]
