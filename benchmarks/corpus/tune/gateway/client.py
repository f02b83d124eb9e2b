"""Line-framed request/reply clients, the service they talk to, and a pool of clients."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from socket import create_connection

from . import settings

#: "host:port" of a forwarding proxy that every connection goes through, when set
PROXY_ENV = "GATEWAY_PROXY"


class PoolClosed(RuntimeError):
    pass


class Upstream:
    """A line echo service on a thread of its own. With ``accept_limit`` it stops listening
    once it has accepted that many connections; with ``hold`` set, a reply waits for it."""

    def __init__(self, host: str = "127.0.0.1", accept_limit: int | None = None,
                 hold: threading.Event | None = None) -> None:
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.05)
        self.host, self.port = self.listener.getsockname()[:2]
        self.accept_limit = accept_limit
        self.hold = hold
        self.received = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="upstream", daemon=True)

    def start(self) -> Upstream:
        self._thread.start()
        return self

    def _serve(self) -> None:
        accepted = 0
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                accepted += 1
                if self.accept_limit is not None and accepted >= self.accept_limit:
                    self.listener.close()  # the limit is reached: stop listening
                conn.settimeout(None)
                threading.Thread(target=self._echo, args=(conn,), daemon=True).start()
                if self.listener.fileno() == -1:
                    return
        finally:
            self.listener.close()

    def _echo(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                self.received.set()
                if self.hold is not None:
                    self.hold.wait(5)
                with contextlib.suppress(OSError):
                    conn.sendall(line)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _open(address: tuple[str, int]) -> socket.socket:
    proxy = os.environ.get(PROXY_ENV)
    if proxy:
        host, _, port = proxy.rpartition(":")
        address = (host, int(port))
    return create_connection(address, timeout=2)


class Client:
    """One connection; a request is a line, its reply the line echoed back."""

    def __init__(self, port: int, host: str | None = None) -> None:
        self.address = (host or settings.HOST, port)
        self.sock = _open(self.address)
        self._lock = threading.Lock()
        self._buffer = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, request: bytes) -> bytes:
        with self._lock:
            self.sock.sendall(request + b"\n")
            return self._read_line(self.sock)

    def _read_line(self, sock: socket.socket) -> bytes:
        while b"\n" not in self._buffer:
            chunk = sock.recv(4096)
            if len(chunk) == 0:
                raise ConnectionResetError("peer closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def upload(self, chunks: Iterable[bytes], on_chunk=None) -> int:  # type: ignore[no-untyped-def]
        """Sends the chunks one by one, each acknowledged, on one connection."""
        with self._lock:
            sock = self.sock
            sent = 0
            for chunk in chunks:
                sock.sendall(chunk + b"\n")
                self._read_line(sock)
                sent += 1
                if on_chunk is not None:
                    on_chunk(sent)
            return sent

    def stream(self, request: bytes) -> list[bytes]:
        """Length-prefixed frames until a zero-length one."""
        self.sock.sendall(request + b"\n")
        frames = []
        with self.sock.makefile("rb") as reader:
            while True:
                header = reader.read(4)
                if len(header) < 4:
                    raise EOFError("stream ended before a frame header")
                size = int.from_bytes(header, "big")
                if size == 0:
                    return frames
                frames.append(reader.read(size))

    def refresh(self) -> None:
        """Replaces the connection with a fresh one (run by the keep-alive timer)."""
        old, self.sock = self.sock, _open(self.address)
        old.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class ConnPool:
    """Clients to one port, handed out one caller at a time."""

    def __init__(self, port: int, size: int = 2, host: str | None = None) -> None:
        self.port = port
        self.host = host
        self.size = size
        self.closed = False
        self._idle: list[Client] = []
        self._leased: list[Client] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def session(self) -> Iterator[Client]:
        with self._lock:
            if self.closed:
                raise PoolClosed("connection pool is closed")
            client = self._idle.pop() if self._idle else None
        client = client or Client(self.port, self.host)
        with self._lock:
            self._leased.append(client)
        try:
            yield client
        finally:
            with self._lock:
                self._leased.remove(client)
                if self.closed or len(self._idle) >= self.size:
                    client.close()
                else:
                    self._idle.append(client)

    def call(self, request: bytes) -> bytes:
        with self.session() as client:
            return client.call(request)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for client in [*self._idle, *self._leased]:
                client.close()
            self._idle.clear()


def broadcast(pool: ConnPool, requests: list[bytes]) -> list[bytes]:
    """Sends every request through the pool, two at a time."""
    if pool.closed:
        raise PoolClosed("connection pool is closed")
    with ThreadPoolExecutor(max_workers=2) as workers:
        return list(workers.map(pool.call, requests))


class Gateway:
    """Runs requests on a pool of its own threads."""

    def __init__(self, port: int) -> None:
        self.pool = ConnPool(port)
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gateway")

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True)
        self.pool.close()

    def submit(self, request: bytes):  # type: ignore[no-untyped-def]
        return self.executor.submit(self.pool.call, request)


class Forwarder:
    """A producer thread hands items to a small pool until told to stop."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self._stopping = False
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")

    def start(self, items: Iterable[bytes]) -> threading.Thread:
        producer = threading.Thread(target=self._produce, args=(iter(items),), name="producer")
        producer.start()
        return producer

    def _produce(self, items: Iterator[bytes]) -> None:
        while not self._stopping:
            item = next(items, None)
            if item is None:
                return
            self.pool.submit(self.sent.append, item)

    def stop(self) -> None:
        self._stopping = True
        self.pool.shutdown(wait=True)


_PORT: int | None = None
_SHARED: Client | None = None


def configure(port: int) -> None:
    global _PORT
    _PORT = port


def shared() -> Client:
    """The process-wide client, made on first use."""
    global _SHARED
    if _SHARED is None:
        assert _PORT is not None, "configure() first"
        _SHARED = Client(_PORT)
    return _SHARED


def close_all() -> None:
    """Closes the process-wide client (called at application exit)."""
    if _SHARED is not None:
        _SHARED.close()
