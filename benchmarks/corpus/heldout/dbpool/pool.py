from __future__ import annotations

import concurrent.futures as cf
import queue
import sqlite3
from collections.abc import Sequence
from typing import Any

#: Connections reused across pools in the same process, keyed by database path.
_SHARED: dict[str, sqlite3.Connection] = {}


class PoolTimeout(Exception):
    pass


class DBPool:
    def __init__(self, path: str, size: int = 2, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._idle: queue.Queue[sqlite3.Connection] = queue.Queue()
        self._all = []
        for _ in range(size):
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
            self._all.append(conn)
            self._idle.put(conn)
        self._background = cf.ThreadPoolExecutor(1, thread_name_prefix="db-bg")

    def acquire(self, timeout: float | None = None) -> sqlite3.Connection:
        try:
            return self._idle.get(timeout=timeout)
        except queue.Empty:
            raise PoolTimeout(f"no connection within {timeout}s") from None

    def release(self, conn: sqlite3.Connection) -> None:
        self._idle.put(conn)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self.acquire(timeout=2)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            self.release(conn)

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> cf.Future[Any]:
        """Run on the background thread (for slow maintenance statements)."""
        conn = self.acquire(timeout=2)

        def run() -> list[tuple[Any, ...]]:
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                self.release(conn)

        return self._background.submit(run)

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._background.shutdown(wait=True)


def shared_connection(path: str) -> sqlite3.Connection:
    if path not in _SHARED:
        _SHARED[path] = sqlite3.connect(path)
    return _SHARED[path]


def pages(total: int, per_page: int) -> int:
    """How many pages ``total`` rows take."""
    return total // per_page
