from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Callable

_DEFAULT_PATH: str | None = None


def default_path() -> str:
    """Where the service listens when no path is configured (one per process)."""
    global _DEFAULT_PATH
    if _DEFAULT_PATH is None:
        _DEFAULT_PATH = os.path.join(tempfile.mkdtemp(prefix="chatsrv-"), "chat.sock")
    return _DEFAULT_PATH


class Member:
    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock, self.name = sock, name

    def deliver(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")


class ChatServer:
    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.path.join(tempfile.mkdtemp(prefix="chat-"), "chat.sock")
        self.rooms: dict[str, set[Member]] = {}
        self.log: list[str] = []
        self.on_deliver: Callable[[Member], None] | None = None
        self.drop_next = 0
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    def start(self) -> ChatServer:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        sock.listen(16)
        sock.settimeout(0.1)
        self._sock = sock
        thread = threading.Thread(target=self._accept_loop, name="chat-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.drop_next:
                self.drop_next -= 1
                conn.close()
                continue
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="chat-conn",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("r", encoding="utf-8") as reader, \
                contextlib.suppress(OSError):  # the client hung up or stop() closed it
            member = None
            for raw in reader:
                verb, _, rest = raw.strip().partition(" ")
                if verb == "JOIN":
                    room, _, name = rest.partition(" ")
                    member = Member(conn, name)
                    self.join(room, member)
                    conn.sendall(b"OK\n")
                elif verb == "SAY" and member is not None:
                    self.log.append(f"{member.name}: {rest}")
                    conn.sendall(b"OK\n")

    def join(self, room: str, member: Member) -> None:
        self.rooms.setdefault(room, set()).add(member)

    def broadcast(self, room: str, text: str) -> int:
        delivered = 0
        for member in self.rooms.get(room, set()):
            if self.on_deliver is not None:
                self.on_deliver(member)
            member.deliver(text)
            delivered += 1
        return delivered

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=1)


def decode_frame(frame: bytes) -> str:
    """Frames are 2-byte length + UTF-8 text."""
    size = int.from_bytes(frame[:2], "big")
    return frame[2:2 + size].decode("ascii")
