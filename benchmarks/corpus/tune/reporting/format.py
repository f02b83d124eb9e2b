from __future__ import annotations

import logging
import time

log = logging.getLogger("reporting.audit")


def format_timestamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def format_amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def audit(event: str, **fields: object) -> str:
    line = " ".join([event, *(f"{k}={v}" for k, v in sorted(fields.items()))])
    log.warning(line)
    return line
