"""A fixed-size pool of TCP connections with health checks."""

from .pool import Connection, Pool, PoolClosed, PoolExhausted, PoolStats, ServerDisconnected

__all__ = ["Connection", "Pool", "PoolClosed", "PoolExhausted", "PoolStats",
           "ServerDisconnected"]
