from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import health


class PoolExhausted(Exception):
    pass


class PoolClosed(Exception):
    pass


class ServerDisconnected(ConnectionResetError):
    """The server closed the connection without replying (cf. http.client.RemoteDisconnected)."""


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = False
        self.reader = sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def readline(self) -> bytes:
        line = self.reader.readline()
        if not line:
            raise ServerDisconnected("server closed the connection without replying")
        return line

    def close(self) -> None:
        self.closed = True
        self.reader.close()
        self.sock.close()


@dataclass(frozen=True)
class PoolStats:
    size: int
    idle: int
    busy: int
    waits: int


class Pool:
    def __init__(self, address: tuple[str, int], size: int = 2,
                 connect: Callable[..., Any] = socket.create_connection) -> None:
        self.address, self.size = address, size
        self._connect = connect
        self._idle: list[Connection] = []
        self._busy: set[Connection] = set()
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._txn = threading.RLock()
        self.waits = 0
        self.closed = False

    def checkout(self, timeout: float | None = None) -> Connection:
        if self.closed:
            raise PoolClosed("pool is closed")
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.waits += 1
            # threading.Semaphore reads timeout=-1 as "already expired", unlike Lock: None
            # is its "wait for ever"
            if not self._slots.acquire(timeout=timeout):
                raise PoolExhausted(f"no connection free after {timeout}s")
        with self._lock:
            conn = self._idle.pop() if self._idle else Connection(self._connect(self.address))
            self._busy.add(conn)
        return conn

    def checkin(self, conn: Connection) -> None:
        with self._lock:
            self._busy.discard(conn)
            if not conn.closed:
                self._idle.append(conn)
        self._slots.release()

    def request(self, line: bytes) -> bytes:
        conn = self.checkout(timeout=1.0)
        try:
            conn.send(line)
            return conn.readline()
        finally:
            self.checkin(conn)

    def begin(self) -> None:
        """Start a pool-wide transaction (no checkouts by others until commit)."""
        self._txn.acquire()

    def commit(self) -> None:
        self._txn.release()

    def keepalive(self, conn: Connection) -> None:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def should_grow(self, stats: PoolStats) -> bool:
        return stats.waits > stats.size

    def prune(self) -> int:
        dead = [conn for conn in self._idle if not health.ping(conn)]
        for conn in dead:
            self._idle.remove(conn)
            conn.close()
        return len(dead)

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(self.size, len(self._idle), len(self._busy), self.waits)

    def close(self) -> None:
        self.closed = True
        for conn in self._idle + list(self._busy):
            conn.close()
        self._idle.clear()
