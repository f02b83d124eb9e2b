"""Process-wide state a test can change and forget to restore: snapshot, compare, put back.

Each probe takes a cheap snapshot (copies of small containers, never deep copies; measured
costs in reference.md §3.6) before setup and after teardown. Only when two snapshots differ is
any work done to describe the change. Probes of modules that are not imported yet (logging,
unittest.mock, socket, watched modules) snapshot nothing: a test that never imported them
cannot have changed them.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ...sanitize import clip, printable, redact_value

_ABSENT = object()
# Bound at import: a test that patches os.getcwd (and leaks the patch) must not fool the probe.
_getcwd = os.getcwd
_getsignal = importlib.import_module("_signal").getsignal
#: os.environ's raw mapping of bytes: copying it is what a snapshot of the environment costs
_ENVIRON: dict[Any, Any] | None = (os.environ._data  # type: ignore[attr-defined]
                                   if isinstance(getattr(os.environ, "_data", None), dict)
                                   else None)
#: Environment variables pytest and its plugins set per test.
_RUNNER_ENV = frozenset({"PYTEST_CURRENT_TEST"})
_RUNNER_MODULES = ("_pytest", "pytest_timeout", "pytest_poolchaos", "xdist", "pluggy")
_SIGNALS = tuple(getattr(signal, name) for name in
                 ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD",
                  "SIGPIPE") if hasattr(signal, name))
_REPR = 120


class Change:
    """One difference between two snapshots, ready for a leak line and a ledger entry."""

    __slots__ = ("after", "before", "fix", "key", "kind", "undo")

    def __init__(self, kind: str, key: str, before: str | None, after: str | None, fix: str,
                 undo: Callable[[], None]) -> None:
        self.kind = kind
        self.key = key
        self.before = before
        self.after = after
        self.fix = fix
        self.undo = undo

    @property
    def ident(self) -> tuple[str, str, str | None]:
        return (self.kind, self.key, self.after)

    def describe(self) -> str:
        from ...model import describe_change

        return describe_change(self.kind, self.key, self.before, self.after)


class Probe:
    """One kind of process-wide state: what changed between two snapshots of it.

    The built-in probes' state is taken together by ``builtin_snapshot``; others (watched
    objects) take their own.
    """

    kind = ""
    fix = ""

    def take(self) -> Any:
        raise NotImplementedError

    def diff(self, before: Any, after: Any) -> list[Change]:
        raise NotImplementedError

    def change(self, key: str, before: Any, after: Any, undo: Callable[[], None]) -> Change:
        return Change(self.kind, key, _text(before), _text(after), self.fix, undo)


class EnvProbe(Probe):
    kind, fix = "env", "monkeypatch.setenv(...) / monkeypatch.delenv(...)"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before == after:
            return []
        changes = []
        for raw in before.keys() | after.keys():
            old, new = before.get(raw), after.get(raw)
            name = _decode(raw)
            if old == new or name in _RUNNER_ENV:
                continue
            old_s = None if old is None else _decode(old)
            new_s = None if new is None else _decode(new)
            # Shown: redacted, encodable, clipped; put back: exactly what was there.
            changes.append(Change("env", printable(name), _env_text(name, old_s),
                                  _env_text(name, new_s), self.fix, _env_undo(name, old_s)))
        return sorted(changes, key=lambda c: c.key)


class CwdProbe(Probe):
    kind, fix = "cwd", "monkeypatch.chdir(...)"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before == after:
            return []
        return [Change("cwd", "os.getcwd()", before, after, self.fix, lambda: os.chdir(before))]


class SysPathProbe(Probe):
    kind, fix = "sys.path", "monkeypatch.syspath_prepend(...)"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before == after:
            return []
        # Counters, not sets: inserting a directory that is already there is still a change.
        added = list((Counter(after) - Counter(before)).elements())
        removed = list((Counter(before) - Counter(after)).elements())
        summary = ", ".join([*(f"+{p}" for p in added), *(f"-{p}" for p in removed)]) or "reordered"

        def undo() -> None:
            sys.path[:] = before

        return [Change("sys.path", "sys.path", f"{len(before)} entries",
                       f"{len(after)} entries ({summary[:_REPR]})", self.fix, undo)]


class LoggingProbe(Probe):
    kind, fix = "logging", "caplog.set_level(...) or restore the handler in teardown"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before is None or after is None or before == after:
            return []
        import logging

        root = logging.getLogger()
        changes = []
        if before[0] != after[0]:
            changes.append(self.change("logging.root.level", logging.getLevelName(before[0]),
                                       logging.getLevelName(after[0]),
                                       lambda: root.setLevel(before[0])))
        if before[1] != after[1]:
            def undo_handlers() -> None:
                for handler in after[1]:
                    if handler not in before[1]:
                        root.removeHandler(handler)
                for handler in before[1]:
                    root.addHandler(handler)

            changes.append(self.change("logging.root.handlers", _names(before[1]),
                                       _names(after[1]), undo_handlers))
        if before[2] != after[2]:
            changes.append(self.change("logging.disable", before[2], after[2],
                                       lambda: logging.disable(before[2])))
        return changes


class WarningsProbe(Probe):
    kind, fix = "warnings", "pytest.warns / warnings.catch_warnings() around the change"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before is None or after is None or before == after:
            return []
        import warnings

        added = ([f for f in after if f not in before]
                 or [new for new, old in zip(after, before, strict=False) if new != old][:1])

        def undo() -> None:
            filters: Any = warnings.filters  # typed as a Sequence, is a list at runtime
            filters[:] = before
            mutated = getattr(warnings, "_filters_mutated", None)
            if mutated is not None:
                mutated()

        shown = "; ".join(f"{f[0]} {getattr(f[2], '__name__', f[2])}" for f in added[:3])
        return [self.change("warnings.filters", f"{len(before)} filters",
                            f"{len(after)} filters" + (f" (added {shown})" if shown else ""),
                            undo)]


class SignalProbe(Probe):
    kind, fix = "signal", "restore the previous handler (signal.signal(sig, old)) in teardown"

    def diff(self, before: Any, after: Any) -> list[Change]:
        changes = []
        for sig, old, new in zip(_SIGNALS, before, after, strict=False):
            if old is new or old == new or _runner_callable(new) or _runner_callable(old):
                continue
            changes.append(self.change(f"signal.getsignal({signal.Signals(sig).name})",
                                       _handler(old), _handler(new), _signal_undo(sig, old)))
        return changes


class PatchProbe(Probe):
    kind, fix = "mock-patch", "`with patch(...)` or patcher.stop() in teardown"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if after is None or before == after:
            return []
        started = [p for p in after if before is None or all(p is not q for q in before)]
        return [Change(self.kind, _patch_target(p), "not patched", "patched (never stopped)",
                       self.fix, p.stop) for p in started]


class SocketTimeoutProbe(Probe):
    kind, fix = "socket-timeout", "socket.setdefaulttimeout(None) in a finally block"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before is _ABSENT or before == after:
            return []
        import socket

        return [self.change("socket.getdefaulttimeout()", before, after,
                            lambda: socket.setdefaulttimeout(before))]


class WatchProbe(Probe):
    """One ``package.module:attribute`` from poolchaos_watch, snapshotted shallowly."""

    kind, fix = "watched", "monkeypatch.setattr(...) / monkeypatch.setitem(...)"

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.module, _, self.attr = spec.partition(":")

    def change(self, key: str, before: Any, after: Any, undo: Callable[[], None]) -> Change:
        # User values are shown as Python would: 'basic' and None must not read alike.
        return Change(self.kind, key, _shown(before), _shown(after), self.fix, undo)

    def take(self) -> Any:
        module = sys.modules.get(self.module)
        if module is None:
            return _ABSENT
        value = getattr(module, self.attr, _ABSENT)
        if isinstance(value, dict):
            return (value, dict(value))
        if isinstance(value, list):
            return (value, value[:])
        return (value, None)

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before is _ABSENT or after is _ABSENT:
            return []
        (old_obj, old_items), (new_obj, new_items) = before, after
        if old_obj is not new_obj:
            module = sys.modules[self.module]
            return [self.change(self.spec, old_obj, new_obj,
                                lambda: setattr(module, self.attr, old_obj))]
        if old_items is None or _same(old_items, new_items):
            return []
        if isinstance(old_items, dict):
            return self._dict_changes(new_obj, old_items, new_items)

        def undo_list() -> None:
            new_obj[:] = old_items

        return [self.change(self.spec, old_items, new_items, undo_list)]

    def _dict_changes(self, obj: dict[Any, Any], old: dict[Any, Any],
                      new: dict[Any, Any]) -> list[Change]:
        changes = []
        for key in list(old.keys() | new.keys()):
            a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
            if a is b or _same(a, b):
                continue
            changes.append(self.change(f"{self.spec}[{key!r}]", None if a is _ABSENT else a,
                                       None if b is _ABSENT else b, _item_undo(obj, key, a)))
        return changes


#: The built-in probes, in the order ``builtin_snapshot`` takes their state.
BUILTIN: tuple[type[Probe], ...] = (EnvProbe, CwdProbe, SysPathProbe, LoggingProbe,
                                    WarningsProbe, SignalProbe, PatchProbe, SocketTimeoutProbe)


def probes(watch: Sequence[str]) -> list[Probe]:
    return [kind() for kind in BUILTIN] + [WatchProbe(spec) for spec in watch]


def builtin_snapshot() -> list[Any]:
    """The state every built-in probe diffs, in ``BUILTIN`` order, taken in one go.

    Twice per test in every suite: copies of small containers only (the raw environ mapping
    copies in about a microsecond where ``dict(os.environ)`` decodes every value), and nothing
    of a module that is not imported yet (a test that never imported it cannot have changed
    it).
    """
    modules = sys.modules
    logging, warnings = modules.get("logging"), modules.get("warnings")
    mock, socket = modules.get("unittest.mock"), modules.get("socket")
    try:
        cwd = _getcwd()
    except OSError:  # the directory was removed under us
        cwd = "<deleted directory>"
    return [
        _ENVIRON.copy() if _ENVIRON is not None else dict(os.environ),
        cwd,
        sys.path[:],
        None if logging is None else (logging.root.level, _own_handlers(logging.root.handlers),
                                      logging.root.manager.disable),
        None if warnings is None else warnings.filters[:],
        tuple(map(_getsignal, _SIGNALS)),
        None if mock is None else mock._patch._active_patches[:],
        _ABSENT if socket is None else socket.getdefaulttimeout(),
    ]


def same(before: list[Any], after: list[Any]) -> bool:
    """Snapshots equal? Watched user objects may compare oddly: then assume a change."""
    try:
        return bool(before == after)
    except Exception:
        return False


def take(all_probes: Sequence[Probe]) -> list[Any]:
    snapshot = builtin_snapshot()
    if len(all_probes) > len(BUILTIN):
        snapshot.extend(probe.take() for probe in all_probes[len(BUILTIN):])
    return snapshot


def diff(all_probes: Sequence[Probe], before: list[Any], after: list[Any]) -> list[Change]:
    changes: list[Change] = []
    for probe, old, new in zip(all_probes, before, after, strict=False):
        if old is new:
            continue
        changes.extend(probe.diff(old, new))
    return changes


# -- helpers ------------------------------------------------------------------------------------

def _decode(value: Any) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return _clipped(value if isinstance(value, str) else repr(value))


def _env_text(name: str, value: str | None) -> str | None:
    shown = redact_value(name, value)
    return None if shown is None else _clipped(printable(shown))


def _shown(value: Any) -> str:
    return _clipped(repr(value))


def _clipped(text: str) -> str:
    return clip(printable(text), _REPR)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # user objects with odd __eq__: identity is all we can trust
        return a is b


def _own_handlers(handlers: list[Any]) -> tuple[Any, ...]:
    """The handlers a test can own: pytest's capture handlers come and go with each phase."""
    if not handlers:
        return ()
    return tuple([h for h in handlers if not _runner_type(type(h))])


_RUNNER_TYPES: dict[type, bool] = {}


def _runner_type(kind: type) -> bool:
    found = _RUNNER_TYPES.get(kind)
    if found is None:
        found = _RUNNER_TYPES[kind] = str(kind.__module__).startswith(_RUNNER_MODULES)
    return found


def _names(handlers: tuple[Any, ...]) -> str:
    return "[" + ", ".join(type(h).__name__ for h in handlers) + "]"


def _handler(value: Any) -> str:
    return getattr(value, "__qualname__", None) or getattr(value, "name", None) or repr(value)


def _runner_callable(value: Any) -> bool:
    return str(getattr(value, "__module__", "") or "").startswith(_RUNNER_MODULES)


def _patch_target(patcher: Any) -> str:
    if hasattr(patcher, "in_dict"):
        return f"patch.dict({_text(patcher.in_dict)})"
    target = getattr(patcher, "target", None)
    owner = getattr(target, "__name__", None) or type(target).__name__
    return f"{owner}.{getattr(patcher, 'attribute', '?')}"


def _env_undo(name: str, old: str | None) -> Callable[[], None]:
    def undo() -> None:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old

    return undo


def _signal_undo(sig: int, old: Any) -> Callable[[], None]:
    def undo() -> None:
        if old is not None:
            signal.signal(sig, old)

    return undo


def _item_undo(obj: dict[Any, Any], key: Any, old: Any) -> Callable[[], None]:
    def undo() -> None:
        if old is _ABSENT:
            obj.pop(key, None)
        else:
            obj[key] = old

    return undo
