"""An RPC gateway: clients that send line-framed requests to an upstream service over TCP, a
pool of those clients, a module-level fan-out executor, an audit queue, a background event
loop for async callers and a child-process worker."""

from __future__ import annotations

from . import settings
from .client import (
    PROXY_ENV,
    Client,
    ConnPool,
    Forwarder,
    Gateway,
    PoolClosed,
    Upstream,
    broadcast,
    close_all,
    configure,
    shared,
)

__all__ = ["PROXY_ENV", "Client", "ConnPool", "Forwarder", "Gateway", "PoolClosed", "Upstream",
           "broadcast", "close_all", "configure", "settings", "shared"]
