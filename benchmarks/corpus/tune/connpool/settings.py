"""Process-wide client settings."""

from __future__ import annotations

import socket


def configure(connect_timeout: float | None = None) -> None:
    # Applies to every socket the process opens afterwards, not only the pool's.
    socket.setdefaulttimeout(connect_timeout)
