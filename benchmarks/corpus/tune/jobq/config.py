"""Queue defaults; JOBQ_* environment variables override them."""

from __future__ import annotations

import os

DEFAULTS = {"workers": 4, "max_retries": 3, "drain_timeout": None}


def workers() -> int:
    return int(os.environ.get("JOBQ_WORKERS", DEFAULTS["workers"]))


def max_retries() -> int:
    return int(os.environ.get("JOBQ_MAX_RETRIES", DEFAULTS["max_retries"]))
