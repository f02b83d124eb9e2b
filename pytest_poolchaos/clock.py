"""The clocks the plugin reads, bound before any test can patch them.

Tests patch ``time.monotonic`` and ``time.sleep`` (mock.patch, freezegun) and sometimes leave
the patch in place. The plugin's own deadlines (cleanup grace, the exit guard, settle waits)
must not follow: a frozen clock would make a bounded wait endless. The originals are kept in a
tuple, not as module attributes, so tools that swap every reference to the real functions
they find in modules leave them alone.
"""

from __future__ import annotations

import time

__all__ = ["monotonic", "sleep", "wall"]

_REAL = (time.monotonic, time.time, time.sleep)


def monotonic() -> float:
    return _REAL[0]()


def wall() -> float:
    return _REAL[1]()


def sleep(seconds: float) -> None:
    _REAL[2](seconds)
