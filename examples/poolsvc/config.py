"""Process-wide defaults, read by every pool when it is created."""

from __future__ import annotations

from typing import Any

SETTINGS: dict[str, Any] = {
    "adapter": "real",
    "workers": 2,
    "session_affinity": False,
    "warmup_s": 0.0,
}


def configure(**changes: Any) -> None:
    """Change the defaults for every pool created from now on (there is no undo)."""
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise KeyError(f"unknown settings: {sorted(unknown)}")
    SETTINGS.update(changes)
