"""Reload configuration on SIGHUP."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any


def install_reload_handler(reload: Callable[[], Any]) -> None:
    signal.signal(signal.SIGHUP, lambda signum, frame: reload())
