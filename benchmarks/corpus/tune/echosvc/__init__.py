"""A line-based TCP echo service and its client helpers."""

from .client import notify, roundtrip
from .server import EchoServer, default_port

__all__ = ["EchoServer", "default_port", "notify", "roundtrip"]
