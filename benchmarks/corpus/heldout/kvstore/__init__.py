"""An in-memory key-value store with versions, expiry and a replicating follower."""

from .store import Follower, Store

__all__ = ["Follower", "Store"]
