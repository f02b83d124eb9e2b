"""Module globals and class attributes of the project's own modules, by a cheap fingerprint.

The project's modules are those imported from under the rootdir, never from an installed
environment (site-packages, the interpreter's prefix), and not the test modules and conftest
files themselves. A snapshot is the ``id`` of every value of their namespaces (module globals
and the attributes of classes they define) that is state rather than code (functions,
classes, modules and descriptors are left out), plus the length of each plain dict, list and
set among them, so rebinding ``settings.TIMEOUT = 1`` or filling a module-level cache shows.
The modules are listed again only when ``sys.modules`` grew, and at most ``_LIMIT`` values
are compared per test, so a large project pays a bounded price (500 values, about ten
microseconds).

A container that grew or shrank (a cache, a registry of instances) and a value that was None
before the test (a lazy initialisation) are as often by design as a leak: they go to the
ledger (evidence for a later failure, and where the polluter search starts) without a leak
line. A value rebound from another value (``settings.TIMEOUT = 1``) is a leak line too.

The attributes of a module-level instance of one of the project's classes (``SETTINGS =
Settings()``, then ``SETTINGS.port = 9``) are compared the same way, after every module and
class namespace and within the same budget; such an object is as often a service whose state
moves by design as a configuration, so its changes go to the ledger without a leak line.
"""

from __future__ import annotations

import operator
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...probe import Change, Held, Probe
from ...sanitize import clip, printable
from .globals import test_file

_RUNNER = ("pytest_poolchaos", "_pytest", "pytest", "pluggy", "xdist")
_INSTALLED = ("site-packages", "dist-packages")
_SHOWN = 120
#: values compared per test at most: the first modules' state, not every module's
_LIMIT = 500
#: code, not state: rebinding these is what mock patches do (and the patch probe sees)
_CODE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
         type, staticmethod, classmethod, property)
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
        self._labels: list[str] = []
        #: (label, namespace, a getter of the names, names) and (label, name, container)
        self._values: list[tuple[str, Any, Any, tuple[str, ...]]] = []
        self._containers: list[tuple[str, str, Any]] = []
        #: labels of the namespaces that are a module-level instance's attributes
        self._instances: frozenset[str] = frozenset()
        self._layout = 0
        #: module name -> (id of the module object, whether it is the project's): listing
        #: again only looks at modules imported since (a session start lists ~300 modules)
        self._known: dict[str, tuple[int, bool]] = {}

    def take(self) -> Any:
        if len(sys.modules) != self._modules:
            self._list()
        if not self._values:
            return self._layout  # nothing of the project's is imported
        try:
            values = tuple([tuple(map(id, get(space))) for _, space, get, _ in self._values])
        except KeyError:  # a name was deleted: list again next time, compare nothing now
            self._modules = -1
            return None
        return (self._layout, values, tuple([len(box) for _, _, box in self._containers]))

    def _list(self) -> None:
        self._modules = len(sys.modules)
        spaces: list[tuple[str, Any]] = []
        own = self._own_modules()
        for name, module in own.items():
            spaces.append((name, module.__dict__))
            spaces.extend((f"{name}.{value.__qualname__}", value.__dict__)
                          for value in list(module.__dict__.values())
                          if isinstance(value, type) and value.__module__ == name)
        instances = [(f"{name}.{key}", attributes)
                     for name, module in own.items()
                     for key, value in list(module.__dict__.items())
                     if not _special(key) and not isinstance(value, _CODE)
                     and type(value).__module__ in own
                     and (attributes := _attributes(value)) is not None]
        self._instances = frozenset(label for label, _ in instances)
        spaces.extend(instances)
        if [label for label, _ in spaces] == self._labels:
            return  # the same modules: snapshots stay comparable
        self._labels = [label for label, _ in spaces]
        self._values = []
        budget = _LIMIT
        for label, space in spaces:
            keys = tuple([key for key, value in list(space.items())
                          if not _special(key) and not isinstance(value, _CODE)])[:budget]
            if keys:
                self._values.append((label, space, _getter(keys), keys))
                budget -= len(keys)
            if budget <= 0:
                break
        self._containers = [(label, key, space[key]) for label, space, _, keys in self._values
                            for key in keys if type(space[key]) in (dict, list, set)]
        self._layout += 1

    def _own_modules(self) -> dict[str, Any]:
        known = self._known
        if len(known) > 4 * len(sys.modules) + 1000:  # names come and go (pytester)
            known.clear()
        own = {}
        for name, module in list(sys.modules.items()):
            seen = known.get(name)
            if seen is None or seen[0] != id(module):
                seen = known[name] = (id(module), self._own(name, module))
            if seen[1]:
                own[name] = module
        return own

    def _own(self, name: str, module: Any) -> bool:
        try:  # the namespace, not getattr: a lazy module's __getattr__ raises for __file__
            path = module.__dict__.get("__file__")
        except Exception:  # not a module: no namespace of its own
            return False
        if not isinstance(path, str) or not path.startswith(self.root):
            return False
        if path.startswith(self.prefixes) or any(part in path for part in _INSTALLED):
            return False
        return not name.startswith(_RUNNER) and not test_file(os.path.basename(path))

    def diff(self, before: Any, after: Any) -> Sequence[Change | Held]:
        if not isinstance(before, tuple) or not isinstance(after, tuple) or before[0] != after[0]:
            return []  # listed again during the test: the new modules were just imported
        changes: list[Change] = []
        for (label, space, _, keys), old, new in zip(self._values, before[1], after[1],
                                                     strict=False):
            if old != new:
                changes.extend(self._rebound(label, space, key, was)
                               for key, was, now in zip(keys, old, new, strict=False)
                               if was != now)
        for (label, key, _box), old_len, new_len in zip(self._containers, before[2], after[2],
                                                       strict=False):
            if old_len != new_len:
                changes.append(Change(self.kind, f"{label}.{key}", f"{old_len} item(s)",
                                      f"{new_len} item(s)", self.fix, shown=False))
        return [c for c in changes if c.key not in self.watched
                and c.key.split("[", 1)[0] not in self.watched and c.after is not _PATCHED][:20]

    def _rebound(self, label: str, space: Any, key: str, old_id: int) -> Change:
        value = space.get(key)
        if type(value).__module__ == "unittest.mock":
            return Change(self.kind, f"{label}.{key}", None, _PATCHED, self.fix)
        shown = clip(printable(_safe_repr(value)), _SHOWN)
        return Change(self.kind, f"{label}.{key}", "None" if old_id == id(None) else "another "
                      "value", shown, self.fix,
                      shown=old_id != id(None) and label not in self._instances)


def _getter(keys: tuple[str, ...]) -> Any:
    """The values of ``keys`` as one tuple, read in C (itemgetter of one key is no tuple)."""
    if len(keys) == 1:
        return operator.itemgetter(keys[0], keys[0])
    return operator.itemgetter(*keys)


def _attributes(value: Any) -> dict[str, Any] | None:
    """The instance dictionary of ``value``, read without running its class's code."""
    try:
        attributes = object.__getattribute__(value, "__dict__")
    except Exception:  # no dictionary (slots), or a C type
        return None
    return attributes if type(attributes) is dict and attributes else None


def _special(name: str) -> bool:
    # __dunder__ and _sunder_ names belong to Python and enum, not to the project's state.
    return name.startswith("_") and name.endswith("_")


def _safe_repr(value: Any) -> str:
    # Only builtin values are shown as they are: a user repr() could do anything.
    if type(value) in (int, float, bool, str, bytes, type(None)):
        return repr(value)
    return f"<{type(value).__qualname__} object>"
