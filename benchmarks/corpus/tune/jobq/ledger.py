"""Balances moved between accounts by concurrent jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable


class LockTimeout(Exception):
    pass


class Account:
    def __init__(self, name: str, balance: int) -> None:
        self.name, self.balance = name, balance
        self.lock = threading.Lock()


def transfer(source: Account, target: Account, amount: int, wait: float = 1.0,
             between: Callable[[], None] | None = None) -> None:
    """Move ``amount``; ``between`` runs once the source is locked (audit hook)."""
    if not source.lock.acquire(timeout=wait):
        raise LockTimeout(f"timed out locking {source.name} after {wait}s")
    try:
        if between is not None:
            between()
        if not target.lock.acquire(timeout=wait):
            raise LockTimeout(f"timed out locking {target.name} after {wait}s")
        try:
            source.balance -= amount
            target.balance += amount
        finally:
            target.lock.release()
    finally:
        source.lock.release()
