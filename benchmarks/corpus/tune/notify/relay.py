"""A selectors-based relay that answers PING lines, and its client."""

from __future__ import annotations

import selectors
import socket
import threading


class Relay:
    """Answers each ``PING`` line with ``PONG``; with ``one_shot`` it half-closes the
    connection after the first reply (the HTTP/1.0 habit)."""

    def __init__(self, one_shot: bool = False) -> None:
        self.one_shot = one_shot
        self.sel = selectors.DefaultSelector()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ)
        self.address = self.listener.getsockname()[:2]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._loop, name="relay", daemon=True)

    def start(self) -> Relay:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.sel.select(timeout=0.05):
                if key.fileobj is self.listener:
                    conn, _ = self.listener.accept()
                    self._conns.append(conn)
                    self.sel.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                data = conn.recv(1024)
                if not data:
                    self.sel.unregister(conn)
                    continue
                conn.sendall(b"PONG\n" * data.count(b"PING\n"))
                if self.one_shot:
                    self.sel.unregister(conn)
                    conn.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self.listener.close()
        self.sel.close()


class RelayClient:
    """Keeps one connection open and reuses it for every ping."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=2)
        self.reader = self.sock.makefile("rb")

    def ping(self) -> bytes:
        self.sock.sendall(b"PING\n")
        return self.reader.readline()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()
