from __future__ import annotations

import socket


def roundtrip(address: tuple[str, int], line: bytes, timeout: float | None = None) -> bytes:
    """Send one line, read the echo back. ``timeout`` None means the process default."""
    kwargs = {} if timeout is None else {"timeout": timeout}
    with socket.create_connection(address, **kwargs) as sock:
        sock.sendall(line)
        with sock.makefile("rb") as reader:
            return reader.readline()


def notify(address: tuple[str, int], line: bytes) -> None:
    """Fire and forget: send one line and hang up."""
    with socket.create_connection(address, timeout=2) as sock:
        sock.sendall(line)
