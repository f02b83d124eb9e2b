"""Spill entries to $CACHEKIT_DIR as JSON files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    return Path(os.environ["CACHEKIT_DIR"])


def spill(name: str, value: Any) -> Path:
    path = cache_dir() / f"{name}.json"
    path.write_text(json.dumps(value))
    return path


#: Append handles kept open between writes (closing and reopening costs a syscall each time).
_JOURNALS: dict[str, Any] = {}


def journal(name: str) -> Any:
    handle = _JOURNALS.get(name)
    if handle is None:
        handle = _JOURNALS[name] = open(cache_dir() / f"{name}.log", "a+")  # noqa: SIM115
    return handle


def load(name: str) -> Any:
    return json.loads((cache_dir() / f"{name}.json").read_text())
