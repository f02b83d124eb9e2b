"""Module globals and class attributes of the project's own modules, by a cheap fingerprint.

The project's modules are those imported from under the rootdir, never from an installed
environment (site-packages, the interpreter's prefix), and not the test modules and conftest
files themselves. A snapshot is the ``id`` of every value of their namespaces (module globals
and the attributes of classes they define) plus the length of each plain dict, list and set
among them, so rebinding ``settings.TIMEOUT = 1`` or filling a module-level cache shows; the
modules are listed again only when ``sys.modules`` grew.

A value that was None or an empty container before the test is a lazy initialisation as often
as a leak: it goes to the ledger (evidence for a later failure that names it) without a leak
line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...probe import Change, Held, Probe
from ...sanitize import clip, printable

_RUNNER = ("pytest_poolchaos", "_pytest", "pytest", "pluggy", "xdist")
_TESTS = re.compile(r"(test_.*|.*_test|conftest)\.py[co]?")
_INSTALLED = ("site-packages", "dist-packages")
_SHOWN = 120
_PATCHED = "<patched>"


class ProjectState(Probe):
    kind = "module-state"
    fix = "monkeypatch.setattr(...) so the value is put back after the test"

    def __init__(self, rootpath: Path, watch: Sequence[str] = ()) -> None:
        self.root = str(rootpath) + os.sep
        #: poolchaos_watch targets and patched attributes are reported by their own probes
        self.watched = frozenset(spec.replace(":", ".") for spec in watch)
        self.prefixes = tuple({os.path.join(p, "") for p in (sys.prefix, sys.base_prefix,
                                                             sys.exec_prefix)})
        self._modules = -1
        #: [(label, namespace)] and [(label, name, container)] of the last listing
        self._spaces: list[tuple[str, Any]] = []
        self._containers: list[tuple[str, str, Any]] = []
        self._layout = 0

    def take(self) -> Any:
        if len(sys.modules) != self._modules:
            self._list()
        return (self._layout,
                tuple([tuple(map(id, space.values())) for _, space in self._spaces]),
                tuple([len(box) for _, _, box in self._containers]))

    def _list(self) -> None:
        self._modules = len(sys.modules)
        spaces: list[tuple[str, Any]] = []
        for name, module in list(sys.modules.items()):
            if self._own(name, module):
                spaces.append((name, module.__dict__))
                spaces.extend((f"{name}.{value.__qualname__}", value.__dict__)
                              for value in list(module.__dict__.values())
                              if isinstance(value, type) and value.__module__ == name)
        if [label for label, _ in spaces] == [label for label, _ in self._spaces]:
            return  # the same modules: snapshots stay comparable
        self._spaces = spaces
        self._containers = [(label, key, value) for label, space in spaces
                            for key, value in list(space.items())
                            if type(value) in (dict, list, set) and not key.startswith("__")]
        self._layout += 1

    def _own(self, name: str, module: Any) -> bool:
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.startswith(self.root):
            return False
        if path.startswith(self.prefixes) or any(part in path for part in _INSTALLED):
            return False
        return not name.startswith(_RUNNER) and not _TESTS.fullmatch(os.path.basename(path))

    def diff(self, before: Any, after: Any) -> Sequence[Change | Held]:
        if before[0] != after[0]:
            return []  # listed again during the test: the new modules were just imported
        changes: list[Change] = []
        for (label, space), old, new in zip(self._spaces, before[1], after[1], strict=False):
            if old != new and len(old) == len(new):
                keys = list(space)
                changes.extend(self._rebound(label, space, keys[i], old[i])
                               for i in range(len(new)) if old[i] != new[i] and i < len(keys))
        for (label, key, _box), old_len, new_len in zip(self._containers, before[2], after[2],
                                                       strict=False):
            if old_len != new_len:
                changes.append(Change(self.kind, f"{label}.{key}", f"{old_len} item(s)",
                                      f"{new_len} item(s)", self.fix, shown=old_len != 0))
        return [c for c in changes if not _special(c.key.rsplit(".", 1)[-1])
                and c.key not in self.watched and c.key.split("[", 1)[0] not in self.watched
                and c.after is not _PATCHED][:20]

    def _rebound(self, label: str, space: Any, key: str, old_id: int) -> Change:
        value = space.get(key)
        if type(value).__module__ == "unittest.mock":
            return Change(self.kind, f"{label}.{key}", None, _PATCHED, self.fix)
        shown = clip(printable(_safe_repr(value)), _SHOWN)
        return Change(self.kind, f"{label}.{key}", "None" if old_id == id(None) else "another "
                      "value", shown, self.fix, shown=old_id != id(None))


def _special(name: str) -> bool:
    # __dunder__ and _sunder_ names belong to Python and enum, not to the project's state.
    return name.startswith("_") and name.endswith("_")


def _safe_repr(value: Any) -> str:
    # Only builtin values are shown as they are: a user repr() could do anything.
    if type(value) in (int, float, bool, str, bytes, type(None)):
        return repr(value)
    return f"<{type(value).__qualname__} object>"
