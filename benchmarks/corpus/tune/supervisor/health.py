"""Load shedding: stop taking work when the machine is overloaded."""

from __future__ import annotations

from os import getloadavg


def shed_load(threshold: float) -> bool:
    one_minute, _, _ = getloadavg()
    return one_minute > threshold
