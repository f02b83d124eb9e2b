"""The clocks the plugin reads, bound before any test can patch them.

Tests patch ``time.monotonic`` and ``time.sleep`` (mock.patch, freezegun) and sometimes leave
the patch in place. The plugin's own deadlines (cleanup grace, the exit guard, settle waits)
must not follow: a frozen clock would make a bounded wait endless. The originals are kept in a
tuple, not as module attributes, so tools that swap every reference to the real functions
they find in modules leave them alone.
"""

from __future__ import annotations

import time

__all__ = ["REAL", "monotonic", "sleep", "wall"]

#: (monotonic, time, sleep) as they were at import; the per-test path calls these directly
REAL = (time.monotonic, time.time, time.sleep)


def monotonic() -> float:
    return REAL[0]()


def wall() -> float:
    return REAL[1]()


def sleep(seconds: float) -> None:
    REAL[2](seconds)
