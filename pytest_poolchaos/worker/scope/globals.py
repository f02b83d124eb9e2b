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
from pathlib import Path
from typing import Any

from ...probe import Change, Held
from ...probe import Probe as _PublicProbe
from ...sanitize import clip, environ_writes, printable, redact_value

__all__ = ["Change", "Globals", "Held"]

_ABSENT = object()
# Bound at import: a test that patches os.getcwd (and leaks the patch) must not fool the probe.
_getcwd = os.getcwd
_getsignal = importlib.import_module("_signal").getsignal
# Always imported (pytest uses both): read straight from the modules, a test may rebind them.
_time = importlib.import_module("time")
_threading = importlib.import_module("threading")
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


class Probe:
    """One kind of process-wide state, a part of ``Globals``: what changed between two
    snapshots of it.

    The built-in parts' state is taken together by ``builtin_snapshot``; others (watched
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
        if not removed and added and all(map(_pytest_import_root, added)):
            return []  # pytest's own import of a test package's __init__.py, at its setup
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


class NamedLoggersProbe(Probe):
    """Named loggers' level, handlers, propagate and disabled (the root logger is
    ``LoggingProbe``'s); ``logging.config.dictConfig`` disabling existing loggers is the
    classic case."""

    kind, fix = "logger", "caplog.set_level(..., logger=name) or restore the logger in teardown"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before is None or after is None or before == after:
            return []
        import logging

        old = dict(zip(*before, strict=False))
        changes = []
        for name, state in zip(*after, strict=False):
            was = old.get(name)
            if was is None or was == state:
                # A logger made during the test is set up by whoever made it (a library
                # configures its own at import): nothing earlier depended on it.
                continue
            logger = logging.getLogger(name)
            changes.append(self.change(f"logging.getLogger({name!r})", _logger_text(was, state),
                                       _logger_text(state, was), _logger_undo(logger, was)))
        return changes[:_MAX_CHANGES]


_MAX_CHANGES = 20


def _logger_text(state: tuple[Any, ...], other: tuple[Any, ...]) -> str:
    import logging

    shown = []
    for name, value, then in zip(("level", "handlers", "propagate", "disabled"), state, other,
                                 strict=False):
        if value != then:
            shown.append(f"{name}={logging.getLevelName(value) if name == 'level' else value}"
                         if name != "handlers" else f"handlers={_names(value)}")
    return " ".join(shown)


def _logger_undo(logger: Any, state: tuple[Any, ...]) -> Callable[[], None]:
    def undo() -> None:
        logger.setLevel(state[0])
        logger.handlers[:] = list(state[1] or ())
        logger.propagate, logger.disabled = state[2], state[3]

    return undo


def _named_loggers(logging: Any) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
    """(names, states): the Logger objects are listed again only when loggers were added."""
    loggers = logging.root.manager.loggerDict
    if len(loggers) != _LOGGERS[0]:
        kind = logging.Logger
        named = [(name, lg) for name, lg in list(loggers.items()) if isinstance(lg, kind)]
        _LOGGERS[:] = [len(loggers), tuple(n for n, _ in named), [lg for _, lg in named]]
    return _LOGGERS[1], tuple([(lg.level, tuple(lg.handlers) if lg.handlers else (),
                                lg.propagate, lg.disabled) for lg in _LOGGERS[2]])


#: [len(loggerDict), names, Logger objects] when last listed
_LOGGERS: list[Any] = [-1, (), []]


class LocaleProbe(Probe):
    """The C locale, read only after ``locale.setlocale`` was called (reading it costs more
    than the rest of the ledger)."""

    kind, fix = "locale", "restore locale.setlocale(...) in teardown (or a fixture that does)"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before == after:
            return []
        import locale

        was, now = LOCALES.before.get(before + 1), locale.setlocale(locale.LC_ALL)
        if was is None or was == now:
            return []

        def undo() -> None:
            locale.setlocale(locale.LC_ALL, was)

        return [self.change("locale.setlocale(LC_ALL)", was, now, undo)]


class TimezoneProbe(Probe):
    """``time.tzname`` after ``time.tzset()``: putting ``TZ`` back without calling ``tzset()``
    again leaves every later test in the other zone."""

    kind, fix = "timezone", "monkeypatch.setenv('TZ', ...) and time.tzset() again in teardown"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before == after:
            return []
        import time

        return [self.change("time.tzname (TZ)", before, after, time.tzset)]


class RandomSeedProbe(Probe):
    """The ``random`` module seeded by a test and left so: every later test draws the same
    numbers. Seeding and putting the state back (``random.setstate``) is no change."""

    kind, fix = "random", "a random.Random(seed) of the test's own instead of random.seed()"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before == after or SEEDS.last_name != "seed":
            return []
        import random

        state = SEEDS.before.get(before + 1)
        undo = (lambda: random.setstate(state)) if state is not None else _no_undo
        return [self.change("random.seed()", "unseeded", f"seeded with {SEEDS.last_arg}",
                            undo)]


def _no_undo() -> None:
    raise NotImplementedError("the state before the seed is not known")


class _Calls:
    """Counts calls of a module's functions by code other than the runner's, keeping the
    state from just before each: a counter is all a snapshot needs to read."""

    __slots__ = ("before", "last_arg", "last_name", "module", "names", "originals", "stamp",
                 "state", "users")

    def __init__(self, module: str, names: tuple[str, ...], state: Callable[[], Any]) -> None:
        self.module, self.names, self.state = module, names, state
        self.users = 0  # sessions in this process (pytester runs one inside another)
        self.stamp = 0
        self.last_name = self.last_arg = ""
        self.originals: dict[str, Any] = {}
        #: stamp -> the state just before that call, the few most recent
        self.before: dict[int, Any] = {}

    def install(self) -> None:
        self.users += 1
        if self.originals:
            return
        module = importlib.import_module(self.module)
        for name in self.names:
            original = self.originals[name] = getattr(module, name)
            setattr(module, name, self._wrap(name, original))

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        calls = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _not_the_runner(sys._getframe(1)):
                calls.saw(name, args, calls.state())
            return original(*args, **kwargs)

        wrapper.__doc__, wrapper.__name__ = original.__doc__, name
        setattr(wrapper, "__wrapped__", original)  # noqa: B010 (a function attribute)
        return wrapper

    def uninstall(self) -> None:
        self.users = max(0, self.users - 1)
        if self.users or not self.originals:
            return
        module = sys.modules.get(self.module)
        for name, original in self.originals.items():
            if getattr(getattr(module, name, None), "__wrapped__", None) is original:
                setattr(module, name, original)
        self.originals = {}

    def saw(self, name: str, args: tuple[Any, ...], state: Any) -> None:
        self.stamp += 1
        self.last_name = name
        self.last_arg = _clipped(repr(args[0]) if args else "None")
        self.before[self.stamp] = state
        if len(self.before) > 32:
            del self.before[min(self.before)]


def _not_the_runner(frame: Any) -> bool:
    return not str(frame.f_globals.get("__name__", "")).startswith(_CALLING_RUNNERS)


def _random_state() -> Any:
    return sys.modules["random"].getstate()


def _locale_now() -> Any:
    return sys.modules["locale"].setlocale(sys.modules["locale"].LC_ALL)


SEEDS = _Calls("random", ("seed", "setstate"), _random_state)
LOCALES = _Calls("locale", ("setlocale",), _locale_now)
#: the state kept is the umask before each call, so a snapshot reads only the count (a
#: lambda: _umask_now is defined with the probe that reads it, below)
UMASKS = _Calls("os", ("umask",), lambda: _umask_now())
_CALLING_RUNNERS = ("_pytest", "pytest_randomly", "pytest_poolchaos", "xdist", "hypothesis",
                    "random", "locale")


class StartMethodProbe(Probe):
    kind, fix = "mp-start-method", ("multiprocessing.get_context(method) for the test's own "
                                    "pools instead of set_start_method()")

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before is after or after is None:
            return []
        context = sys.modules["multiprocessing.context"]._default_context
        if before is None and after is getattr(context, "_default_context", None):
            return []  # chosen lazily, the platform default: nobody set it

        def undo() -> None:
            context._actual_context = before

        return [self.change("multiprocessing start method", _context_name(before),
                            _context_name(after), undo)]


def _context_name(context: Any) -> str:
    return "default" if context is None else str(getattr(context, "_name", context))


class LoopPolicyProbe(Probe):
    kind, fix = "asyncio-policy", "restore asyncio.set_event_loop_policy(old) in teardown"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before is after or before is _ABSENT:
            return []
        events = sys.modules["asyncio.events"]
        if before is None and type(after).__module__.startswith("asyncio"):
            return []  # the default policy, made on first use

        def undo() -> None:
            setattr(events, "_event_loop_policy", before)  # noqa: B010 (private, untyped)

        return [self.change("asyncio event loop policy", _type_name(before), _type_name(after),
                            undo)]


def _type_name(value: Any) -> str:
    return "default" if value is None else type(value).__qualname__


class ExceptHookProbe(Probe):
    kind, fix = "excepthook", "restore the previous hook in teardown (or monkeypatch.setattr)"

    def diff(self, before: Any, after: Any) -> list[Change]:
        changes = []
        for name, old, new in zip(("sys.excepthook", "threading.excepthook"), before, after,
                                  strict=False):
            if old is new or _runner_callable(new) or _runner_callable(old):
                continue
            owner = sys if name.startswith("sys") else sys.modules["threading"]
            changes.append(self.change(name, _handler(old), _handler(new),
                                       _attr_undo(owner, name.split(".")[1], old)))
        return changes


class LibraryProbe(Probe):
    """Process-wide settings of the interpreter and the standard library that one call
    changes for every later test: the umask, the thread switch interval, the recursion
    limit, the decimal context, sqlite3's adapters and converters, urllib's global opener.

    A module's part is read only once the module is imported; a test that imported it first
    changed nothing an earlier test relied on.
    """

    kind, fix = "global", "put the setting back in a finally block or a fixture's teardown"

    def diff(self, before: Any, after: Any) -> list[Change]:
        if before == after:
            return []
        changes = []
        if before[0] != after[0]:
            changes += _umask_change(self, before[0])
        for (key, text, undo), old, new in zip(_LIBRARY_PARTS, before[1:], after[1:],
                                               strict=False):
            if old is None or old == new or (key == _OPENER and _default_opener(new)):
                continue
            if key == _SQLITE3:
                changes += _sqlite3_changes(self, old, new)
                continue
            changes.append(self.change(key, text(old), text(new), undo(old)))
        return changes


def library_state(modules: dict[str, Any]) -> tuple[Any, ...]:
    """What ``LibraryProbe`` compares, in ``_LIBRARY_PARTS`` order after the umask stamp."""
    decimal, sqlite3 = modules.get("decimal"), modules.get("sqlite3")
    request = modules.get("urllib.request")
    context = None if decimal is None else decimal.getcontext()
    return (
        UMASKS.stamp,
        sys.getswitchinterval(),
        sys.getrecursionlimit(),
        None if context is None else (context, context.prec, context.rounding, context.Emax,
                                      context.Emin, context.clamp, context.capitals),
        None if sqlite3 is None else (dict(sqlite3.adapters), dict(sqlite3.converters)),
        None if request is None else (getattr(request, "_opener", None),),
    )


_OPENER = "urllib.request.install_opener()"
_SQLITE3 = "sqlite3 adapters and converters"


def _set_decimal(old: Any) -> Callable[[], None]:
    def undo() -> None:
        context = old[0]
        context.prec, context.rounding, context.Emax, context.Emin = old[1:5]
        context.clamp, context.capitals = old[5:7]
        sys.modules["decimal"].setcontext(context)

    return undo


def _sqlite3_changes(probe: Probe, old: Any, new: Any) -> list[Change]:
    """One change per adapter or converter registered, replaced or removed."""
    changes = []
    for which, (was, now) in zip(("register_adapter", "register_converter"),
                                 zip(old, new, strict=False), strict=False):
        table = getattr(sys.modules["sqlite3"], "adapters" if which.endswith("adapter")
                        else "converters")
        for key in list(was.keys() | now.keys()):
            a, b = was.get(key), now.get(key)
            if a is b:
                continue
            named = getattr(key[0] if isinstance(key, tuple) else key, "__qualname__", key)
            changes.append(probe.change(f"sqlite3.{which}({named})", _callable(a),
                                        _callable(b), _item_undo(table, key,
                                                                 _ABSENT if a is None else a)))
    return changes


def _callable(value: Any) -> str:
    return "none" if value is None else str(getattr(value, "__qualname__", type(value).__name__))


def _set_opener(old: Any) -> Callable[[], None]:
    return _attr_undo(sys.modules["urllib.request"], "_opener", old[0])


#: (key shown, how its value reads, how to put the old value back) of each part after the
#: umask; sqlite3's entries are shown and put back one by one (_sqlite3_changes)
_LIBRARY_PARTS: tuple[tuple[str, Callable[[Any], str], Callable[[Any], Callable[[], None]]],
                      ...] = (
    ("sys.setswitchinterval()", repr, lambda old: lambda: sys.setswitchinterval(old)),
    ("sys.setrecursionlimit()", repr, lambda old: lambda: sys.setrecursionlimit(old)),
    ("decimal.getcontext()", lambda value: f"prec={value[1]} rounding={value[2]}",
     _set_decimal),
    (_SQLITE3, repr, lambda old: _no_undo),
    (_OPENER, lambda value: "default" if value[0] is None else _opener_text(value[0]),
     _set_opener),
)


def _opener_text(opener: Any) -> str:
    custom = [type(h).__qualname__ for h in getattr(opener, "handlers", ())
              if type(h).__module__ != "urllib.request"]
    return f"an opener with {', '.join(custom)}" if custom else "a default opener"


def _default_opener(value: Any) -> bool:
    """urlopen() builds and installs the default opener on first use: no test's doing."""
    opener = value[0] if isinstance(value, tuple) and value else None
    return opener is not None and all(type(h).__module__ == "urllib.request"
                                      for h in getattr(opener, "handlers", ()))


def _umask_change(probe: Probe, stamp: int) -> list[Change]:
    was, now = UMASKS.before.get(stamp + 1), _umask_now()
    if was is None or now is None or was == now:
        return []
    umask = UMASKS.originals.get("umask", os.umask)
    return [probe.change("os.umask()", oct(was), oct(now), lambda: umask(was))]


def _umask_now() -> int | None:
    """The umask read without setting it (Linux's /proc); None elsewhere."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _attr_undo(owner: Any, attr: str, old: Any) -> Callable[[], None]:
    def undo() -> None:
        setattr(owner, attr, old)

    return undo


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
                                    WarningsProbe, SignalProbe, PatchProbe, SocketTimeoutProbe,
                                    NamedLoggersProbe, LocaleProbe, TimezoneProbe,
                                    RandomSeedProbe, StartMethodProbe, LoopPolicyProbe,
                                    ExceptHookProbe, LibraryProbe)


def probes(watch: Sequence[str]) -> list[Probe]:
    return [kind() for kind in BUILTIN] + [WatchProbe(spec) for spec in watch]


class Globals(_PublicProbe):
    """The built-in pollution ledger as one probe: its parts' state is taken in one go."""

    kind = "globals"

    def __init__(self, watch: Sequence[str] = (), rootpath: Path | None = None) -> None:
        self.parts = probes(watch)
        if len(self.parts) == len(BUILTIN):
            # nothing watched: the snapshot is the built-in one, one call fewer per test
            self.take = builtin_snapshot  # type: ignore[method-assign]
        _ROOT[:] = [] if rootpath is None else [rootpath]
        SEEDS.install()
        LOCALES.install()
        UMASKS.install()
        CHDIRS.install()

    def take(self) -> list[Any]:
        return take(self.parts)

    def diff(self, before: Any, after: Any) -> list[Change | Held]:
        return list(diff(self.parts, before, after))

    def close(self) -> None:
        SEEDS.uninstall()
        LOCALES.uninstall()
        UMASKS.uninstall()
        CHDIRS.uninstall()


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
    context = modules.get("multiprocessing.context")
    events = modules.get("asyncio.events")
    # The environment and the working directory are read again only when they were written
    # to since the last snapshot (then the same objects compare equal at once).
    writes = environ_writes()
    if writes < 0 or writes != _LAST_ENV[0] or _ENVIRON is None:
        _LAST_ENV[:] = [writes, _ENVIRON.copy() if _ENVIRON is not None else dict(os.environ)]
    moves = CHDIRS.moves
    if moves != _LAST_CWD[0] or not CHDIRS.installed:
        _LAST_CWD[:] = [moves, _cwd()]
    return [
        _LAST_ENV[1],
        _LAST_CWD[1],
        sys.path[:],
        None if logging is None else (logging.root.level, _own_handlers(logging.root.handlers),
                                      logging.root.manager.disable),
        None if warnings is None else warnings.filters[:],
        tuple(map(_getsignal, _SIGNALS)),
        None if mock is None else mock._patch._active_patches[:],
        _ABSENT if socket is None else socket.getdefaulttimeout(),
        None if logging is None else _named_loggers(logging),
        LOCALES.stamp,
        _time.tzname,
        SEEDS.stamp,
        None if context is None else context._default_context._actual_context,
        _ABSENT if events is None else events._event_loop_policy,
        (sys.excepthook, _threading.excepthook),
        library_state(modules),
    ]


#: [environ_writes() when copied, the copy]; [CHDIRS.moves when read, the directory]
_LAST_ENV: list[Any] = [-1, None]
_LAST_CWD: list[Any] = [-1, None]


def _cwd() -> str:
    try:
        return _getcwd()
    except OSError:  # the directory was removed under us
        return "<deleted directory>"


class _Chdirs:
    """Counts every call of ``os.chdir`` and ``os.fchdir`` (the runner's too: a monkeypatch
    is made by pytest's code), so the working directory is read only after one."""

    __slots__ = ("installed", "moves", "originals", "users")

    def __init__(self) -> None:
        self.moves = 0
        self.users = 0  # sessions in this process (pytester runs one inside another)
        self.installed = False
        self.originals: dict[str, Any] = {}

    def install(self) -> None:
        self.users += 1
        if self.installed:
            return
        for name in ("chdir", "fchdir"):
            original = getattr(os, name, None)
            if original is not None:
                self.originals[name] = original
                setattr(os, name, self._wrap(name, original))
        self.installed = True

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        chdirs = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs)
            finally:
                chdirs.moves += 1

        wrapper.__doc__, wrapper.__name__ = original.__doc__, name
        setattr(wrapper, "__wrapped__", original)  # noqa: B010 (a function attribute)
        return wrapper

    def uninstall(self) -> None:
        self.users = max(0, self.users - 1)
        if self.users or not self.installed:
            return
        for name, original in self.originals.items():
            if getattr(getattr(os, name, None), "__wrapped__", None) is original:
                setattr(os, name, original)
        self.originals = {}
        self.installed = False
        self.moves += 1  # from now on, read it again every time


CHDIRS = _Chdirs()


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

#: the rootdir, for telling pytest's own sys.path insertions apart
_ROOT: list[Path] = []


def test_file(name: str) -> bool:
    """A file pytest collects or loads by default: test_*.py, *_test.py, conftest.py."""
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")
                                     or name == "conftest.py")


def _pytest_import_root(entry: str) -> bool:
    """Would pytest's "prepend"/"append" import insert ``entry``: the rootdir, or a directory
    under it holding test files or a test package? pytest imports a package's ``__init__.py``
    when the package is set up, in the first test's setup, and inserts its parent then."""
    if not _ROOT:
        return False
    path = Path(entry)
    root = _ROOT[0]
    if path == root:
        return True
    if root not in path.parents:
        return False
    return _tests_in(path) or any(_tests_in(child) for child in _children(path)
                                  if (child / "__init__.py").is_file())


def _children(path: Path) -> list[Path]:
    try:
        return [child for child in path.iterdir() if child.is_dir()]
    except OSError:
        return []


def _tests_in(path: Path) -> bool:
    try:
        return any(map(test_file, os.listdir(path)))
    except OSError:
        return False



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
    known = _RUNNER_TYPES
    try:
        return tuple([h for h in handlers if not known[type(h)]])
    except KeyError:  # a handler type not seen yet: sort it out once
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
