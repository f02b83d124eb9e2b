"""The statsd line format."""

from __future__ import annotations


def format_line(name: str, value: float, kind: str = "c") -> str:
    return f"{name}:{value:g}|{kind}"
