"""Storage backends shipped as plain modules in a directory the user names."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def load_backends(directory: Path) -> dict[str, ModuleType]:
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    found = {}
    for path in sorted(directory.glob("*.py")):
        found[path.stem] = importlib.import_module(path.stem)
    return found
