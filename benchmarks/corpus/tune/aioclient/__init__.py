"""An asyncio client for the line protocol, with a small service runner."""

from .client import Client, Reply, fetch
from .server import LineServer

__all__ = ["Client", "LineServer", "Reply", "fetch"]
