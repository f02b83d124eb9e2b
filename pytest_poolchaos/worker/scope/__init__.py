"""The per-test pool scope: opened before setup, closed after teardown.

It puts together the spawn log (threads, processes and pools as they start), the globals
snapshots, and the pollution ledger, and applies ``--poolchaos-leaks`` (warn, cleanup, fail)
and ``--poolchaos-isolate`` (off, restore) plus the per-test ``poolchaos`` marker.

Fixtures wider than a function legitimately start servers and change globals during the setup
of the first test that needs them and keep them until their own teardown; what a test's setup
started or changed and still holds at its end is credited to those fixtures when the test has
any, and is neither reported as that test's leak nor restored.
"""

from __future__ import annotations

import sys
from types import CodeType, FunctionType
from typing import TYPE_CHECKING, Any

import pytest

from ...guard import record

if TYPE_CHECKING:
    from ...model import Leak, LedgerEntry
    from .resources import Alive, Stopping
from ...probe import Change, Held, Probe
from ...roles import INLINE_RERUN
from ...settings import Settings
from . import probes as registry
from .ledger import Ledger
from .spawn import PACED, SETTLE_S, SpawnLog, Spawns, Started, in_test_file, listening_ports

__all__ = ["PoolScope", "ScopeResult"]


class ScopeResult:
    """What the scope found when it closed: leaks, the processes and connections it saw, and
    the threads it did not start that died while it ran."""

    __slots__ = ("died_elsewhere", "fail_message", "leaks", "mocked", "spawned")

    def __init__(self, leaks: tuple[Leak, ...] = (), spawned: tuple[str, ...] = (),
                 mocked: bool = False, fail_message: str | None = None,
                 died_elsewhere: frozenset[str] = frozenset()) -> None:
        self.leaks = leaks
        self.spawned = spawned
        self.mocked = mocked
        self.fail_message = fail_message
        self.died_elsewhere = died_elsewhere


#: what most tests leave: nothing (never changed: every field is read only)
_QUIET = ScopeResult()


class _Open:
    __slots__ = ("before", "log", "wide")

    def __init__(self, before: list[Any], log: SpawnLog) -> None:
        self.before = before
        self.log = log
        #: what the fixtures wider than a function that set up during this test's setup
        #: changed (they were not taken from pytest's cache, as in the tests after the first
        #: that uses them); None when none did
        self.wide: _Wide | None = None


class _Wide:
    """What wide fixtures changed while they set up, each between a snapshot before it and
    one after it: theirs to keep until their own teardown, not the test's. What the test's
    function fixtures change in the same setup stays the test's."""

    __slots__ = ("after", "before", "held")

    def __init__(self) -> None:
        #: (kind, key) -> the value before a wide fixture changed it
        self.before: dict[tuple[str, str], str | None] = {}
        #: resources the probes found a wide fixture holding
        self.held: set[tuple[str, str, str | None]] = set()
        #: the snapshot after the last of them
        self.after: list[Any] = []


_NOT_HELD = "\0poolchaos: not held"


class PoolScope:
    """The per-test pool scope of one process: ``open`` before setup, ``close`` after teardown."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.spawns = Spawns()
        self.ledger = Ledger()
        #: collected through pytest_poolchaos_probe once collection is done (conftest files
        #: register their probes while collecting), else when the first test opens
        self.probes: list[Probe] | None = None
        #: (kind, key) -> value before a wide fixture changed it and still holds it
        self._held: dict[tuple[str, str], str | None] = {}
        #: the open scope of the running test (one test runs at a time in a process)
        self._item: pytest.Item | None = None
        self._opened: _Open | None = None
        #: the snapshot a quiet test ended with: nothing but pytest runs before the next test
        #: opens, so it is that test's "before" too (one snapshot per test instead of two)
        self._quiet_after: list[Any] | None = None
        #: per fixture-info object (shared by a function's parametrized items): wide or not
        self._wide: dict[int, bool] = {}
        #: a cleanup whose waiting was left for after pytest-timeout's timer
        self.pending: Stopping | None = None

    def install(self) -> None:
        self.spawns.install()

    def prepare(self) -> None:
        """Make the probes before the first test: their cost is the plugin's, not part of
        the duration pytest measures for that test's setup (which the history compares)."""
        if self.probes is None:
            self.probes = registry.collect(self.config)

    def uninstall(self) -> None:
        self.spawns.uninstall()
        if self.probes is not None:
            registry.close(self.probes)

    # -- one test ------------------------------------------------------------------------------

    def open(self, item: pytest.Item) -> SpawnLog:
        """Open ``item``'s scope; its spawn log, whose ``phase`` the caller moves on."""
        log = self.spawns.open(getattr(item, "path", None))
        self._item = item
        if self.probes is None:
            self.probes = registry.collect(self.config)
        before, self._quiet_after = self._quiet_after, None
        if before is None:
            before = registry.take(self.probes)
        self._opened = _Open(before, log)
        return log

    def _is_wide(self, item: pytest.Item) -> bool:
        info = getattr(item, "_fixtureinfo", None)
        key = id(info)
        found = self._wide.get(key)
        if found is None:
            found = self._wide[key] = _wider_fixtures(item)
        return found

    def fixture_setup(self, fixturedef: Any) -> list[Any] | None:
        """A fixture is about to set up (not taken from pytest's cache) for the running test.
        For one wider than a function, in the test's setup: the snapshot before it, which
        ``fixture_done`` is given back once it has set up."""
        opened = self._opened
        if opened is None or opened.log.phase != "setup" or self.probes is None or \
                getattr(fixturedef, "scope", "function") == "function" or _builtin(fixturedef):
            return None
        if opened.wide is None:
            opened.wide = _Wide()
        return registry.take(self.probes)

    def fixture_done(self, before: list[Any]) -> None:
        """The wide fixture ``fixture_setup`` took ``before`` for has set up: what changed
        since is that fixture's."""
        opened = self._opened
        if opened is None or opened.wide is None or self.probes is None:
            return
        wide = opened.wide
        wide.after = after = registry.take(self.probes)
        for change in registry.diff(self.probes, before, after):
            if isinstance(change, Change):
                wide.before.setdefault((change.kind, change.key), change.before)
            else:
                wide.held.add(change.ident)

    def close(self, item: pytest.Item, defer: bool = False, settle: float = SETTLE_S
              ) -> ScopeResult | None:
        """Leaks, cleanup and the ledger for ``item``; None when it was never opened.

        With ``defer`` (a timer still runs) cleanup only asks things to stop; the waiting is
        left to ``finish_cleanup``, called once the timer is off. What ends on its own
        within ``settle`` seconds was not left behind.
        """
        opened = self._opened
        if opened is None or self._item is not item:
            return None
        self._item = self._opened = None
        log = self.spawns.close() or opened.log
        after = registry.take(self.probes or [])
        try:
            same = opened.before == after
        except Exception:  # snapshots of watched user objects may compare oddly
            same = False
        settled = not log.forked and _all_done(log.started)
        if same and settled:
            # The common case, kept short: nothing started (or only threads that have
            # finished), nothing changed, nothing will be restored or cleaned up before the
            # next test opens.
            self._quiet_after = after
            if not log.mocked and not log.connections and not log.died_elsewhere:
                return _QUIET
            return ScopeResult(mocked=log.mocked, spawned=tuple(log.connections),
                               died_elsewhere=log.died_elsewhere)
        # Asked only here, past the quiet case: whether the test uses module, class or
        # session fixtures of its own suite
        wide = self._is_wide(item)
        from .resources import alive

        resources = alive(log, skip_setup=bool(wide), settle=settle)
        if not settled:
            # What the test left running has had its settle time, and may only now have
            # done what the test asked of it: a loop thread makes the task that
            # run_coroutine_threadsafe scheduled when it next gets the GIL, on a busy
            # machine after the read above.
            after = registry.take(self.probes or [])
        found = self._own_changes(opened, after)
        mode, ignored = _leak_mode(item, self.settings.leaks)
        resources = [r for r in resources if r.kind not in ignored]
        found = [c for c in found if c.kind not in ignored]
        changes = [c for c in found if isinstance(c, Change)]
        clean = mode == "cleanup" or item.stash.get(INLINE_RERUN, False)
        leaks = self._settle(resources, changes, clean, item.nodeid, defer)
        leaks += _held([h for h in found if isinstance(h, Held)], mode)
        return ScopeResult(
            leaks=tuple(leaks),
            # Where it was started names the module that looked the spawning call up: the
            # patch target a missed patch should have used.
            spawned=tuple([f"{s.label} started by {s.where}" for s in log.started
                           if s.kind == "process"]
                          + log.connections),
            mocked=log.mocked,
            fail_message=_fail_message(item.nodeid, leaks) if mode == "fail" and leaks else None,
            died_elsewhere=log.died_elsewhere,
        )

    def finish_cleanup(self) -> list[str]:
        """Wait for a deferred cleanup (bounded by the grace); what would not stop."""
        pending, self.pending = self.pending, None
        return pending.finish() if pending is not None else []

    def _log(self) -> SpawnLog | None:
        """The running test's spawn log: open while it runs, kept in its result after."""
        return self.spawns.log or (self._opened.log if self._opened is not None else None)

    def hidden_errors(self, limit: float | None = None, armed: float | None = None
                      ) -> list[str]:
        """Exceptions the running test's pool and asyncio tasks raised (the evidence drops
        those that reached the failure itself); with the ``limit`` of a pytest-timeout that
        fired on the whole test, only those raised before it fired: the tasks a library
        aborts as the timeout's exception unwinds did not die first. The limit counts from
        when the timer was ``armed`` (before the scope opened; a loaded machine or a slow
        hook can put a good part of the limit between the two), else from the opening."""
        log = self._log()
        if log is None:
            return []
        start = log.opened
        if limit and armed is not None and 0 <= log.opened - armed < limit:
            start = armed  # this test's timer: one armed earlier would have fired already
        fired = start + limit if limit else float("inf")
        return [text for when, text in log.hidden or () if when < fired]

    def closed_objects(self) -> list[tuple[object, int, str, float,
                                           dict[int, frozenset[CodeType]]]]:
        """(object, thread ident, thread name, when, the code each other thread of the test
        was running then) of what the running test's threads closed or shut down while
        others ran, still alive."""
        log = self._log()
        found = [(ref(), ident, name, when, users)
                 for ref, ident, name, when, users in (log.closers or {}).values()] \
            if log is not None else []
        return [entry for entry in found if entry[0] is not None]

    def died_elsewhere(self) -> frozenset[str]:
        """Names of threads the running test did not start that died of an exception while
        it ran (an earlier test's thread, a session service's)."""
        log = self._log()
        return log.died_elsewhere if log is not None else frozenset()

    def refused_by_double(self) -> list[tuple[str, str]]:
        """(fact kind, what happened) of each error a test double raised itself on one of the
        running test's workers (its side_effect used up, an attribute its spec lacks)."""
        log = self._log()
        return list(log.refused_by_double or ()) if log is not None else []

    def started_again(self) -> list[str]:
        """Threads or processes the running test started that another of its threads then
        started again (refused: already started)."""
        log = self._log()
        return list(log.started_again or ()) if log is not None else []

    def late_attributes(self) -> list[str]:
        """Attributes a thread or pool task of the running test died reading (AttributeError)
        that its object has now: they were set after the read."""
        log = self._log()
        found = []
        for ref, name, thread, builder in (log.unset_reads or ()) if log is not None else ():
            obj = ref()
            try:  # the instance's own dictionary: no code of its class runs
                attributes = object.__getattribute__(obj, "__dict__")
            except Exception:  # gone since, or no dictionary
                continue
            if type(attributes) is dict and name in attributes:
                found.append(f"thread '{thread}' died reading {type(obj).__name__}.{name} "
                             f"while thread '{builder}' was still in its __init__; the "
                             f"object has it now")
        return found

    def raised_on(self, error: BaseException) -> tuple[int, str, float] | None:
        """(ident, name, when) of the thread a pool task of the running test raised
        ``error`` on."""
        log = self._log()
        found = (log.raised_on or {}).get(id(error)) if log is not None else None
        return (found[0], found[1], found[3]) \
            if found is not None and found[2] is type(error) else None

    def magic_defaults(self) -> list[str]:
        """int(), len(), float() ... of a MagicMock the running test called and never set up:
        '<conversion> of <double> gave <default>'."""
        log = self._log()
        return [text for entry in (log.magic or ()) if (text := _unset(*entry))] \
            if log is not None else []

    def missed_patches(self, root: str) -> list[str]:
        """Patches whose double the test never called while a project module still holds
        the original under the patched name (``from os import getloadavg``)."""
        log = self._log()
        return [text for entry in (log.patches or ())
                if (text := _missed(*entry, root=root, testfile=log.testfile()))] \
            if log is not None else []

    def patches_not_in_children(self) -> list[str]:
        """Patches whose double the test never called while the test ran work in processes
        that start as fresh interpreters (a pool or process of the spawn or forkserver start
        method): they import the patched module again, without the patch."""
        log = self._log()
        fresh = next((s for s in (log.started if log is not None else ()) if s.fresh), None)
        if log is None or fresh is None:
            return []
        return [f"{_owner(target)}.{attribute} was patched and its double never called, "
                f"while the test ran its work in {fresh.label} processes started by "
                f"{fresh.fresh!r}, which import {_owner(target)} afresh, without the patch"
                for target, attribute, original, double in (log.patches or ())
                if original is not None and getattr(double, "called", True) is False][:2]

    def frozen_clocks(self) -> list[str]:
        """Clock functions (time.monotonic, time.time ...) the running test patched with a
        double that gave one fixed value on every call, and that the code called again:
        a deadline measured with it never comes, or has always passed."""
        log = self._log()
        return [text for entry in (log.patches or ()) if (text := _frozen(*entry))] \
            if log is not None else []

    def patched_workers(self) -> list[str]:
        """Patches of the running test that replaced what starts a thread, process or task
        (threading.Thread, subprocess.Popen ...) with a double the code then called: the
        worker it asked for never ran."""
        log = self._log()
        return [text for entry in (log.patches or ()) if (text := _stand_in(*entry))] \
            if log is not None else []

    def own_servers(self) -> list[str]:
        """The running test's recorded connections that went to a port this process itself
        listens on (a test server the test runs in-process): not a real service a double
        should have stood in for. Those made while a double was in use were checked when
        they were made; the rest are checked now, while such a server may still listen."""
        log = self._log()
        if log is None or not log.mocked or not log.connections:
            return []
        known = log.internal or []
        listening = listening_ports() if len(known) < len(log.connections) else set()
        return [label for label in log.connections
                if label in known or _port(label) in listening]

    def none_returns(self) -> list[tuple[object, str]]:
        """(target, attribute) of the running test's patches whose double was set to return
        None and was called."""
        log = self._log()
        return [(target, attribute) for target, attribute, _, double in (log.patches or ())
                if _gave_none(double)] if log is not None else []

    def ran_out(self) -> list[tuple[tuple[CodeType, int], ...]]:
        """Where waits with a timeout ran out on the running test's own thread: (code, line)
        of the frames outside the machinery, innermost first. A place where they ran out
        again and again paces a loop (``while not stop.wait(0.1):``): that wait was a
        sleep, not one that gave up."""
        log = self._log()
        return [place for place, times in (log.ran_out or {}).items() if times <= PACED] \
            if log is not None else []

    def ended(self) -> dict[int, float]:
        """When each of the running test's threads that has ended did (id -> monotonic)."""
        log = self._log()
        return dict(log.ended or {}) if log is not None else {}

    def started(self) -> list[Started]:
        """What the running test (setup included) started so far, its asyncio tasks last."""
        log = self._log()
        return [*log.started, *log.tasks] if log is not None else []

    def outstanding(self) -> tuple[LedgerEntry, ...]:
        return self.ledger.outstanding()

    # -- steps ---------------------------------------------------------------------------------

    def _own_changes(self, opened: _Open, after: list[Any]) -> list[Change | Held]:
        probes = self.probes or []
        changes = registry.diff(probes, opened.before, after)
        if not changes:
            return changes
        # A wide fixture's teardown runs in the last test's teardown: putting back what it
        # changed is not that test's doing.
        changes = [c for c in changes if not isinstance(c, Change)
                   or self._held.pop((c.kind, c.key), _NOT_HELD) != c.after]
        wide = opened.wide
        if wide is None or not (wide.before or wide.held):
            return changes
        # Where a wide fixture changed a value, the test's own change is what it changed
        # since (a function fixture adding a second handler beside the module fixture's).
        since = {(c.kind, c.key): c for c in registry.diff(probes, wide.after, after)
                 if isinstance(c, Change)}
        own: list[Change | Held] = []
        for change in changes:
            if not isinstance(change, Change):
                if change.ident not in wide.held:
                    own.append(change)
                continue
            key = (change.kind, change.key)
            if key not in wide.before:
                own.append(change)
                continue
            self._held[key] = wide.before[key]
            if key in since:
                own.append(since[key])
        return own

    def _settle(self, resources: list[Alive], changes: list[Change], clean: bool,
                nodeid: str, defer: bool = False) -> list[Leak]:
        if not resources and not changes:
            # What was alive at the end ended within the settle time: a green run must not
            # load the diagnosis values (model.values) for nothing to report.
            return []
        from ...model import Leak

        leaks = [Leak(r.kind, r.detail, r.key) for r in resources]
        if clean and resources:
            leaks = self._clean(resources, defer)
        if self.settings.isolate == "restore":
            restored = _restore(changes)
            leaks += [Leak(c.kind, c.describe() + (" (restored)" if c in restored else ""),
                           f"{c.kind}:{c.key}") for c in changes if c.shown]
            self.ledger.record(nodeid, [c for c in changes if c not in restored])
        else:
            leaks += [Leak(c.kind, c.describe(), f"{c.kind}:{c.key}") for c in changes
                      if c.shown]
            self.ledger.record(nodeid, changes)
        return leaks

    def _clean(self, resources: list[Alive], defer: bool) -> list[Leak]:
        from ...model import Leak
        from .resources import Stopping

        self.finish_cleanup()  # an earlier test's, should it still be pending
        grace = self.settings.cleanup_grace
        stopping = Stopping(resources, grace)
        stopping.begin()
        if defer:
            # Waiting here would spend pytest-timeout's time on the plugin's cleanup.
            self.pending = stopping
            note = f" (cleanup: asked to stop; up to {grace:g} s more after the test's timer)"
            return [Leak(r.kind, r.detail + note, r.key) for r in resources]
        stubborn = set(stopping.finish())
        failed = f" (cleanup failed: still running after {grace:g} s)"
        return [Leak(r.kind, r.detail + (failed if r.detail in stubborn else " (cleaned up)"),
                     r.key) for r in resources]


def _held(held: list[Held], mode: str) -> list[Leak]:
    """Resources a probe found; with cleanup, closed where the probe says how."""
    if not held:
        return []
    from ...model import Leak

    leaks = []
    for found in held:
        detail = found.detail
        if mode == "cleanup" and found.close is not None:
            try:
                found.close()
                detail += " (cleaned up)"
            except Exception as error:
                detail += f" (cleanup failed: {type(error).__name__})"
        leaks.append(Leak(found.kind, detail, found.key))
    return leaks


def _restore(changes: list[Change]) -> list[Change]:
    restored = []
    for change in reversed(changes):
        try:
            change.undo()
        except Exception:
            continue
        restored.append(change)
    return restored


def _wider_fixtures(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {}) or {}
    return any(getattr(d, "scope", "function") != "function" and not _builtin(d)
               for chain in defs.values() for d in chain)


def _port(label: str) -> int | None:
    """The port of a ``socket connect to host:port`` label."""
    port = label.rpartition(":")[2]
    return int(port) if port.isdigit() else None


def _builtin(fixturedef: Any) -> bool:
    # pytest's own wide fixtures (tmp_path_factory, ...) neither start pools nor change globals;
    # the ones it makes for setUpClass and setup_module/setup_class run the user's code.
    if str(getattr(fixturedef, "argname", "")).startswith(_XUNIT):
        return False
    module = getattr(getattr(fixturedef, "func", None), "__module__", "") or ""
    return module.startswith(("_pytest", "pytest_poolchaos"))


_XUNIT = ("_unittest_setUpClass_fixture_", "_xunit_setup_module_fixture_",
          "_xunit_setup_class_fixture_")


def _leak_mode(item: pytest.Item, default: str) -> tuple[str, frozenset[str]]:
    marker = item.get_closest_marker("poolchaos")
    if marker is None:
        return default, frozenset()
    mode = marker.kwargs.get("leaks") or default
    if mode not in ("warn", "cleanup", "fail"):
        record("poolchaos marker", ValueError(
            f"{item.nodeid}: @pytest.mark.poolchaos(leaks=...) accepts warn, cleanup or fail, "
            f"got {mode!r}; using {default!r}"))
        mode = default
    ignore = marker.kwargs.get("ignore_leaks", ())
    ignored = frozenset([ignore] if isinstance(ignore, str) else ignore)
    return str(mode), ignored


def _fail_message(nodeid: str, leaks: list[Leak]) -> str:
    lines = "\n".join(f"  - {leak.kind}: {leak.detail}" for leak in leaks[:10])
    return (f"poolchaos: {nodeid} left {len(leaks)} thing(s) behind after teardown "
            f"(--poolchaos-leaks=fail):\n{lines}")


def _all_done(started: list[Started]) -> bool:
    """Nothing was started, or only threads that have already ended: none can be left
    behind, so the leak search has nothing to look at."""
    for entry in started:
        if entry.kind != "thread":
            return False
        thread = entry.ref()
        if thread is not None and thread.is_alive():
            return False
    return True


def _unset(name: str, double: str, method: object) -> str:
    """The conversion, if the test called it and left it at what MagicMock returns unset."""
    from .spawn import MAGIC_CONVERSIONS

    how, default = MAGIC_CONVERSIONS[name]
    value = getattr(method, "return_value", None)
    if not getattr(method, "called", False) or getattr(method, "side_effect", None) is not None:
        return ""
    if type(value) is not type(default) or value != default:
        return ""
    return f"{how}() of {double} gave {default!r}"


_CLOCKS = frozenset({"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time",
                     "time_ns"})


def _records(double: object) -> tuple[object, dict[str, Any]]:
    """The mock behind a patch's double (an autospec'd function keeps its records on its
    mock) and its own records: reading .return_value of an unset Mock would make one."""
    if isinstance(double, FunctionType):
        double = getattr(double, "mock", None)
    recorded = getattr(double, "__dict__", {})
    return double, recorded if type(recorded) is dict else {}


def _frozen(target: object, attribute: str, original: object, double: object) -> str:
    if attribute not in _CLOCKS or getattr(original, "__module__", None) != "time":
        return ""
    recorded = _records(double)[1]
    calls, value = recorded.get("_mock_call_count"), recorded.get("_mock_return_value")
    if not isinstance(calls, int) or calls < 2 or type(value) not in (int, float) \
            or recorded.get("_mock_side_effect") is not None:
        return ""
    return (f"{_owner(target)}.{attribute} was patched with a double that gave {value!r} on "
            f"each of its {calls} calls: a clock that never moves")


#: what starts a worker, by (module, qualname) of the original a patch replaced
_STARTERS = {("threading", "Thread"): "thread", ("threading", "Timer"): "thread",
             ("threading", "Thread.start"): "thread",
             ("subprocess", "Popen"): "process", ("multiprocessing.context", "Process"): "process",
             ("multiprocessing.process", "BaseProcess.start"): "process",
             ("concurrent.futures.thread", "ThreadPoolExecutor"): "thread",
             ("concurrent.futures.process", "ProcessPoolExecutor"): "process",
             ("asyncio.tasks", "create_task"): "task", ("asyncio.tasks", "ensure_future"): "task"}


def _stand_in(target: object, attribute: str, original: object, double: object) -> str:
    if getattr(original, "__poolchaos__", False):  # the scope's own wrapper of Thread.start
        original = getattr(original, "__wrapped__", original)
    kind = _STARTERS.get((str(getattr(original, "__module__", "")),
                          str(getattr(original, "__qualname__", ""))))
    double, recorded = _records(double)
    calls = recorded.get("_mock_call_count")
    if kind is None or not isinstance(calls, int) or calls < 1:
        return ""
    return (f"{kind}: {_owner(target)}.{attribute} was patched with a "
            f"{type(double).__name__} that the code called {calls} time(s): the {kind} it "
            f"asked for never ran")


def _gave_none(double: object) -> bool:
    recorded = _records(double)[1]
    calls = recorded.get("_mock_call_count")
    return "_mock_return_value" in recorded and recorded["_mock_return_value"] is None \
        and isinstance(calls, int) and calls > 0 and recorded.get("_mock_side_effect") is None


def _missed(target: object, attribute: str, original: object, double: object,
            root: str, testfile: str = "") -> str:
    if original is None or getattr(double, "called", True) is not False:
        return ""
    owner = _owner(target)
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if module is target or not path.startswith(root) or "site-packages" in path:
            continue
        if path != testfile and in_test_file(path):
            continue  # another test's module: not code this test runs
        if vars(module).get(attribute) is original:
            holder = f"{name}.{attribute} still holds the original it replaced"
        elif bound := _default_holding(module, original):
            holder = (f"{name}.{bound} still holds the original it replaced as a default "
                      f"argument")
        else:
            continue
        return f"{owner}.{attribute} was patched and its double never called, while {holder}"
    return ""


def _owner(target: object) -> str:
    """How a patch's target reads in a message: a module's name, else its type's."""
    return str(getattr(target, "__name__", type(target).__name__))


def _default_holding(module: object, original: object) -> str:
    """``func`` or ``Class.method`` of the module whose default arguments hold ``original``
    (bound when the def ran, before any patch)."""
    for name, value in list(vars(module).items()):
        functions = [(name, value)]
        if isinstance(value, type) and value.__module__ == getattr(module, "__name__", ""):
            functions = [(f"{name}.{attr}", member) for attr, member in vars(value).items()]
        for qualname, func in functions:
            if not isinstance(func, FunctionType):
                continue
            defaults = (*(func.__defaults__ or ()), *(func.__kwdefaults__ or {}).values())
            if any(item is original for item in defaults):
                return qualname
    return ""
