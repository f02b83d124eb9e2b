from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .registry import REGISTRY


def is_enabled(name: str) -> bool:
    override = os.environ.get(f"FLAG_{name.upper()}")
    if override is not None:
        return override == "on"
    return REGISTRY.get(name, False)


def checkout_page() -> str:
    return "checkout-v2.html" if is_enabled("checkout_v2") else "checkout.html"


def load_file(path: str = "config/flags.json") -> dict[str, Any]:
    """Flags from the project's flags file; the registry defaults when there is none."""
    file = Path(path)
    if not file.exists():
        return dict(REGISTRY)
    return json.loads(file.read_text())


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(poll)


class RemoteProvider:
    """Pulls flags from the flag service on a background thread."""

    def __init__(self, fetch: Callable[[], dict[str, bool]], delay: float = 0.0) -> None:
        self.fetch, self.delay = fetch, delay
        self.flags: dict[str, bool] = {}
        self.synced = False

    def start(self) -> RemoteProvider:
        threading.Thread(target=self._sync, name="flag-sync", daemon=True).start()
        return self

    def _sync(self) -> None:
        time.sleep(self.delay)
        self.flags = self.fetch()
        self.synced = True
