from __future__ import annotations

import re
from collections import deque

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


class SlidingWindow:
    def __init__(self, size: float) -> None:
        self.size = size
        self.events: deque[float] = deque()

    def add(self, stamp: float) -> None:
        self.events.append(stamp)

    def count_in_window(self, now: float) -> int:
        cutoff = now - self.size
        return sum(1 for i in range(1, len(self.events)) if self.events[i] > cutoff)


def backoff(attempt: int, base: float = 0.1, cap: float = 5.0) -> float:
    """Delay before retry ``attempt`` (1-based): base, 2*base, 4*base, ... up to cap."""
    return min(cap, base * 2 ** attempt)


def parse_rate(text: str) -> float:
    """'100/s', '30/m' -> events per second."""
    match = re.fullmatch(r"(\d+)/(\w)", text.strip())
    if match is None:
        raise ValueError(f"bad rate {text!r}")
    count, unit = match.groups()
    return int(count) / _UNITS[unit]
