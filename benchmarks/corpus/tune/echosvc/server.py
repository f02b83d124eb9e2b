from __future__ import annotations

import collections
import contextlib
import socket
import struct
import threading
import time

_DEFAULT_PORT: int | None = None


def default_port() -> int:
    """The port the service uses when none is configured, fixed for the life of the process."""
    global _DEFAULT_PORT
    if _DEFAULT_PORT is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            _DEFAULT_PORT = probe.getsockname()[1]
    return _DEFAULT_PORT


class EchoServer:
    def __init__(self, port: int = 0, reply_delay: float = 0.0, bind_delay: float = 0.0,
                 max_clients: int | None = None, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.reply_delay = reply_delay
        self.bind_delay = bind_delay
        self.max_clients = max_clients
        self.clients: collections.deque[socket.socket] = collections.deque()
        self.served = 0
        self.drop_next = 0
        self.on_send = None
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._handlers: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def start(self) -> EchoServer:
        if self.bind_delay:
            self._thread = threading.Thread(target=self._bind_later, name="echo-accept",
                                            daemon=True)
        else:
            self._bind()
            self._thread = threading.Thread(target=self._accept_loop, name="echo-accept",
                                            daemon=True)
        self._thread.start()
        return self

    def _bind(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(16)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._sock = sock

    def _bind_later(self) -> None:
        time.sleep(self.bind_delay)
        self._bind()
        self._accept_loop()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            if self.max_clients is not None and len(self.clients) >= self.max_clients:
                # Over capacity: refuse hard so clients fail fast instead of queueing.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.recv(64)
                conn.close()
                continue
            if self.drop_next:
                self.drop_next -= 1
                conn.close()
                continue
            self.clients.append(conn)
            handler = threading.Thread(target=self._serve, args=(conn,), name="echo-conn",
                                       daemon=True)
            self._handlers.append(handler)
            handler.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            try:
                for line in reader:
                    if line.startswith(b"!"):
                        self._command(line[1:].strip().decode())
                        continue
                    if self.reply_delay:
                        time.sleep(self.reply_delay)
                    conn.sendall(line)
                    self.served += 1
            except OSError:
                pass  # the client or stop() closed the connection

    def _command(self, name: str) -> None:
        handlers = {"reset": self._reset_counters}
        handlers[name]()

    def _reset_counters(self) -> None:
        self.served = 0

    def wait_served(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.served >= count:
                return True
            time.sleep(0.01)
        return False

    def broadcast(self, message: bytes) -> int:
        sent = 0
        for client in self.clients:
            if self.on_send is not None:
                self.on_send(client)
            client.sendall(message)
            sent += 1
        return sent

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        for client in list(self.clients):
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for handler in self._handlers:
            handler.join(timeout=2)
