"""Per-queue spool directories on local disk."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _filesystem_is_writable(parent: Path) -> bool:
    probe = parent / f".probe-{os.getpid()}-{time.monotonic_ns()}"
    probe.write_text("x")
    time.sleep(0.05)  # network filesystems need a moment before the probe is visible
    probe.unlink()
    return True


def ensure_spool(path: Path) -> Path:
    if not path.exists():
        if not _filesystem_is_writable(path.parent):
            raise PermissionError(path.parent)
        path.mkdir()
    return path
