from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("cachekit")
log.setLevel(logging.INFO)


@dataclass
class Entry:
    value: Any
    expires: float


class TTLCache:
    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._data: dict[Hashable, Entry] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.warm = False
        self.warmed = threading.Event()

    def get(self, key: Hashable, default: Any = None) -> Any:
        entry = self._data.get(key)
        if entry is None or entry.expires <= self.clock():
            with self._lock:
                self.misses += 1
            return default
        with self._lock:
            self.hits += 1
        return entry.value

    def set(self, key: Hashable, value: Any) -> None:
        if value is None:
            log.warning("not caching None for %r", key)
            return
        self._data[key] = Entry(value, self.clock() + self.ttl)

    def get_or_compute(self, key: Hashable, loader: Callable[[Hashable], Any]) -> Any:
        """Compute each missing key once, however many callers ask for it."""
        if key not in self._data:
            value = loader(key)
            self.set(key, value)
            return value
        return self.get(key)

    def sweep(self) -> int:
        """Drop expired entries; returns how many were dropped."""
        dropped = 0
        for key, entry in self._data.items():
            if entry.expires <= self.clock():
                dropped += 1
                log.debug("expired %r", key)
        self._data = {k: e for k, e in self._data.items() if e.expires > self.clock()}
        return dropped

    def warm_async(self, keys: Iterable[Hashable], loader: Callable[[Hashable], Any]) -> None:
        def run() -> None:
            for key in keys:
                self.set(key, loader(key))
            self.warm = True
            self.warmed.set()
            log.info("cache warm")

        threading.Thread(target=run, name="cache-warmer", daemon=True).start()

    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def evict_oldest(self, keep: int) -> list[Hashable]:
        ordered = sorted(self._data, key=lambda k: self._data[k].expires)
        dropped = ordered[: len(ordered) - keep - 1]
        for key in dropped:
            del self._data[key]
        return dropped
