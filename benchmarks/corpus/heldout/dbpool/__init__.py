"""A small pool of SQLite connections with background execution and paging helpers."""

from .pool import DBPool, PoolTimeout, pages

__all__ = ["DBPool", "PoolTimeout", "pages"]
