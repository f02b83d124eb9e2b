from __future__ import annotations

from typing import Any


def ping(conn: Any) -> bool:
    try:
        conn.send(b"PING\n")
        return conn.readline() == b"PING\n"
    except OSError:
        return False
