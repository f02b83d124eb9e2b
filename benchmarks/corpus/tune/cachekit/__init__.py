"""An in-process TTL cache with optional disk spill and pluggable codecs."""

from .cache import Entry, TTLCache

__all__ = ["Entry", "TTLCache"]
