"""Runs a function over many items on one executor shared by the whole process."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: one executor for the process: its threads start on first use
EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fanout")


def fan_out(fn: Callable[[T], R], items: list[T]) -> list[R]:
    futures = [EXECUTOR.submit(fn, item) for item in items]
    return [future.result(timeout=5) for future in futures]


def shutdown() -> None:
    """Waits for running calls and stops the threads (called at application exit)."""
    EXECUTOR.shutdown(wait=True)
