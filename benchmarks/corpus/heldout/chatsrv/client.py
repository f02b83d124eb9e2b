from __future__ import annotations

import socket


class ConnectionClosed(ConnectionError):
    """The server hung up."""


class ChatClient:
    def __init__(self, path: str, timeout: float = 2.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r", encoding="utf-8")

    def _send(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\n")
        return self.read_line()

    def read_line(self) -> str:
        line = self.reader.readline()
        if not line:
            raise ConnectionClosed("connection closed by server")
        return line.rstrip("\n")

    def join(self, room: str, name: str) -> str:
        return self._send(f"JOIN {room} {name}")

    def say(self, text: str) -> str:
        return self._send(f"SAY {text}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()
