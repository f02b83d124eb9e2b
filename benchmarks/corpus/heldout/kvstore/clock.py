"""The store's notion of now; one place to change in tests."""

from __future__ import annotations

import time


def now() -> float:
    return time.monotonic()
