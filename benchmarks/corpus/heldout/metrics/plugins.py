"""Discover exporter plugins shipped in third-party directories."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def discover(directory: Path) -> ModuleType:
    sys.path.insert(0, str(directory))
    return importlib.import_module("metrics_plugins")
