"""Session bindings kept by a tiny line-based TCP service, so several pools can share them."""

from __future__ import annotations

import socket
import threading


class AffinityService:
    """Binds its port on creation (so the address is known early); serves once started."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self.address: tuple[str, int] = self._sock.getsockname()
        self.bindings: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AffinityService:
        self._sock.listen()
        self._sock.settimeout(0.05)  # so the loop notices close() promptly
        self._thread = threading.Thread(target=self._serve, name="affinity-service")
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, conn.makefile("rw") as stream:
                command, session, worker = stream.readline().split()
                if command == "BIND":
                    self.bindings.setdefault(session, worker)
                stream.write(self.bindings.get(session, "") + "\n")
                stream.flush()


class AffinityClient:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address

    def bind(self, session: str, worker: int) -> int:
        """Bind ``session`` to ``worker`` unless it is bound already; returns the binding."""
        with socket.create_connection(self.address, timeout=2.0) as conn:
            stream = conn.makefile("rw")
            stream.write(f"BIND {session} {worker}\n")
            stream.flush()
            return int(stream.readline())
