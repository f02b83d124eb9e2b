"""Notice threads, processes and pools as they are started, instead of scanning at every test.

Installing wraps a handful of constructors and ``start`` methods once per session; each wrapper
does its original work first and then appends one small record to the running test's list.
A test that starts nothing therefore costs nothing here. Records hold weak references only, so
the scope never keeps a pool, thread or process object alive.
"""

from __future__ import annotations

import importlib.abc
import linecache
import os
import sys
import threading
import weakref
from _thread import get_ident as _get_ident
from collections.abc import Callable
from types import CodeType
from typing import Any

from ... import clock
from ...guard import record
from ...sanitize import redact_args
from .forks import at_fork

# The real clock: a test that patches time.time and leaks the patch must not stop the scope.
_now = clock.wall

#: Modules whose threads and processes belong to the test runner, not to the test.
RUNNER_MODULES = ("_pytest", "pytest_timeout", "pluggy", "pytest_poolchaos", "xdist", "execnet",
                  "pytest_rerunfailures", "coverage", "pytest_cov")


#: asyncio tasks recorded per test: enough to tell several from one, never a cost that grows
#: with a test that creates thousands
MAX_TASKS = 16
_MAX_HIDDEN = 8
_MAX_CLOSERS = 64
#: a MagicMock's conversion methods -> how the code calls them and what they give unset
MAGIC_CONVERSIONS = {"__int__": ("int", 1), "__index__": ("index", 1),
                     "__float__": ("float", 1.0), "__len__": ("len", 0),
                     "__complex__": ("complex", 1j)}

#: A thread told to stop just before teardown ended gets at least this long to finish on its own
#: before it counts as left behind, so the report does not depend on who wins that race.
SETTLE_S = 0.05
#: ...and up to this long when time allows (no timer is about to fire): a helper thread or
#: process that ends on its own a moment after the test (a 0.1 s sleeper, a cancelled task's
#: worker being stopped) is not left behind, and reporting it would not be true.
LINGER_S = 0.3


class Started:
    """One thing started during a test: a thread, a process or a pool."""

    __slots__ = ("cancelled", "fresh", "held", "kind", "label", "phase", "pid", "ref", "where")

    def __init__(self, kind: str, ref: Callable[[], Any], label: str, where: str, phase: str,
                 pid: int | None = None) -> None:
        self.kind = kind  # thread | process | pool | task
        self.ref = ref  # weak reference to the object
        self.label = label
        self.where = where
        self.phase = phase
        self.pid = pid
        #: a pool's worker containers (not the pool): its workers are still found once the
        #: pool object itself is gone
        self.held: tuple[Any, ...] = ()
        #: an asyncio task that ended cancelled (told by its done callback: the task object
        #: may be gone by the time evidence is read)
        self.cancelled = False
        #: the multiprocessing start method of a pool's or process's workers when they start
        #: as fresh interpreters ('spawn', 'forkserver'): a patch made in the test is not
        #: in them
        self.fresh = ""


_NONE: frozenset[Any] = frozenset()


def _no_object() -> None:
    """A weak reference whose object is gone."""
    return None


def _awaited_work(task: Any) -> str:
    """The innermost coroutine of ``task``'s await chain that is not asyncio's own: the
    work a timeout around it cuts off (the task's own coroutine when it awaits asyncio's
    machinery directly)."""
    coro = task.get_coro()
    found = str(getattr(coro, "__qualname__", None) or task.get_name())
    for _ in range(32):  # an await chain is short; a cycle must not hold the loop
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            break
        if not str(frame.f_globals.get("__name__", "")).startswith("asyncio"):
            found = str(getattr(coro, "__qualname__", found))
        coro = getattr(coro, "cr_await", None)
    return found


class SpawnLog:
    """What was started during the running test, in order."""

    __slots__ = ("before_fork", "closers", "connections", "died_elsewhere", "ended", "foreign",
                 "fork_phases", "forked", "hidden", "internal", "magic", "mocked", "opened",
                 "patches", "path", "phase", "raised_on", "ran_out", "refused_by_double",
                 "runner", "started", "started_again", "starters", "tasks", "testfile_",
                 "threads", "unset_reads")

    def __init__(self, opened: float = 0.0, path: object = None) -> None:
        self.phase = "setup"
        #: the thread that runs the test, and the threads it (or they) started with the phase
        #: each descends from: only what these start is the test's (a session service's
        #: thread is not), and what a thread started in setup starts later is setup's too
        self.runner = threading.get_ident()
        #: made on the first thread the test starts (most tests start none): id(thread) ->
        #: (weak reference, phase); a plain dict, checked by identity, costs a thread start
        #: a fraction of a WeakKeyDictionary's callbacks
        self.threads: dict[int, tuple[weakref.ref[threading.Thread], str]] | None = None
        self.opened = opened
        #: the running test's file: its line is named when a library started something
        self.path = path
        #: str(path), made on the first start that asks (most tests start nothing)
        self.testfile_: str | None = None
        self.started: list[Started] = []
        #: asyncio tasks the test's own threads created, the first MAX_TASKS: evidence of
        #: concurrency only (a pending task is the asyncio-task probe's business, not a leak here)
        self.tasks: list[Started] = []
        #: id(thread) -> clock.monotonic() when each of the test's threads ended: a thread a
        #: finally block joined after the failure had not ended when the failure happened
        self.ended: dict[int, float] | None = None
        #: exceptions the test's pool and asyncio tasks raised, the first few (when, and
        #: error_line): nobody may ever call result() to see them
        self.hidden: list[tuple[float, str]] | None = None
        #: os.fork() seen: children without a Popen/Process record may exist
        self.forked = False
        #: the phases the forks descend from (see origin); replaced, never changed in place
        self.fork_phases: frozenset[str] = _NONE
        #: pids of processes other threads started meanwhile: never the test's forks
        self.foreign: frozenset[int] = _NONE
        #: this process's children just before the test's first fork: none of them is one of
        #: its forks (start times in clock ticks cannot tell a worker an earlier test's pool
        #: started a few milliseconds before this test from one this test forked)
        self.before_fork: frozenset[int] | None = None
        #: a unittest.mock double or patch was made while the test ran
        self.mocked = False
        #: (conversion, double's name, the magic method's mock) for the first few int(),
        #: len(), float() ... taken of a MagicMock: whether it was left at its default and
        #: called is read only if the test fails
        self.magic: list[tuple[str, str, Any]] | None = None
        #: (target, attribute, original, what replaced it) of the first few patches started
        self.patches: list[tuple[Any, str, Any, Any]] | None = None
        #: real socket connects, the first few
        self.connections: list[str] = []
        #: those of them made, while a double was in use, to a port this process listens on
        self.internal: list[str] | None = None
        #: id(socket or pool) -> (weak reference, thread ident, thread name, when, the code
        #: each other thread of the test was running then) of a close by one of the test's
        #: threads while others ran, the first few
        self.closers: dict[int, tuple[weakref.ref[Any], int, str, float,
                                      dict[int, frozenset[CodeType]]]] | None = None
        #: id(error) -> (thread ident, thread name, its type, when) a pool task of the test
        #: raised it on
        self.raised_on: dict[int, tuple[int, str, type, float]] | None = None
        #: (weak reference to the object, attribute, thread name, the thread then still
        #: in its __init__) of each AttributeError that ended one of the test's threads or
        #: pool tasks, the first few
        self.unset_reads: list[tuple[weakref.ref[Any], str, str, str]] | None = None
        #: names of threads the test did not start (an earlier test's, a session service's)
        #: that died of an exception while it ran: pytest reports them in this test
        self.died_elsewhere: frozenset[str] = _NONE
        #: (code, line) of the frames outside the machinery, innermost first, of each place
        #: where a wait with a timeout on the test's own thread ran out (an Event, Condition,
        #: Queue.get, Future.result, futures.wait, a join that left the thread alive), the
        #: first few, and how often: what the code returned then was read before the work
        #: was done
        self.ran_out: dict[tuple[tuple[CodeType, int], ...], int] | None = None
        #: (fact kind, what happened) of each error a test double itself raised on one of the
        #: test's threads, pool tasks or asyncio tasks (its side_effect list used up, an
        #: attribute its spec lacks), the first few: the worker died of the double
        self.refused_by_double: list[tuple[str, str]] | None = None
        #: a thread or process the test started that another of its threads then started
        #: again (refused: it was already started), the first few: both checked it was not
        #: started yet before either started it
        self.started_again: list[str] | None = None
        #: id(thread or process) -> (weak reference, name of the thread that first asked to
        #: start it), noted before the start itself, so a second start racing the first
        #: finds it
        self.starters: dict[int, tuple[weakref.ref[Any], str]] | None = None

    def own_phase(self) -> str | None:
        """The phase the current thread descends from; None when it is not the test's."""
        if threading.get_ident() == self.runner:
            return self.phase
        return self.phase_of(threading.current_thread()) if self.threads is not None else None

    def owns_current(self) -> bool:
        return self.own_phase() is not None

    def origin(self) -> str:
        """The phase the current (owned) thread descends from."""
        return self.own_phase() or self.phase

    def phase_of(self, thread: threading.Thread) -> str | None:
        """The phase ``thread`` descends from; None when the test did not start it."""
        entry = self.threads.get(id(thread)) if self.threads is not None else None
        return entry[1] if entry is not None and entry[0]() is thread else None

    def adopt(self, thread: threading.Thread, phase: str) -> None:
        """``thread`` is about to start, by one of the test's threads: it is the test's, with
        the ``phase`` label (its starter's, or "shared")."""
        if self.threads is None:
            self.threads = {}
        self.threads[id(thread)] = (weakref.ref(thread), phase)

    def testfile(self) -> str:
        found = self.testfile_
        if found is None:
            found = self.testfile_ = str(self.path) if self.path else ""
        return found


class Spawns:
    """The installed wrappers and the log they write to (one per process)."""

    def __init__(self) -> None:
        self.log: SpawnLog | None = None
        self._undo: list[Callable[[], None]] = []
        self._modules_seen = 0
        #: names of threads that died of an exception while no test's log was open (after
        #: one test's teardown, before the next opens): pytest reports such a death in the
        #: next test, which did not start the thread
        self._died_between: frozenset[str] = _NONE

    # -- install / uninstall -------------------------------------------------------------------

    def install(self) -> None:
        self._hook = _AfterImport(_LAZY_MODULES, self.refresh)
        sys.meta_path.insert(0, self._hook)
        self._undo.append(lambda: sys.meta_path.remove(self._hook)
                          if self._hook in sys.meta_path else None)
        self._wrap_thread_start()
        self._try_wrap("threading", "Thread", "_delete", self._wrap_light, self._thread_ended)
        self._wrap_waits()
        import subprocess

        self._wrap(subprocess.Popen, "__init__", self._popen_created)
        self._chain_excepthook()
        # Cannot be unregistered: held weakly, and the callbacks check that we are installed.
        at_fork(self._before_fork, self._forked)
        self._refresh_contained()

    def refresh(self, force: bool = False) -> None:
        """Wrap pool and multiprocessing classes once their modules have been imported.

        Importing them ourselves would add tens of milliseconds to every session; checking
        ``len(sys.modules)`` at each test open costs well under a microsecond.
        """
        count = len(sys.modules)
        if count == self._modules_seen and not force:
            return
        self._modules_seen = count
        targets = (
            ("concurrent.futures.thread", "ThreadPoolExecutor", "__init__", self._pool_created),
            ("concurrent.futures.process", "ProcessPoolExecutor", "__init__", self._pool_created),
            # The package keeps the classes its lazy __getattr__ returned, and they outlive
            # their modules when those are dropped from sys.modules (pytester does that).
            ("concurrent.futures", "ThreadPoolExecutor", "__init__", self._pool_created),
            ("concurrent.futures", "ProcessPoolExecutor", "__init__", self._pool_created),
            ("multiprocessing.pool", "Pool", "__init__", self._pool_created),
            ("multiprocessing.process", "BaseProcess", "start", self._process_started),
        )
        # Each target on its own: one that cannot be wrapped (a C type swapped in by a shim)
        # costs only its own records, never the others' or the scope's opening.
        for module_name, cls_name, method, callback in targets:
            self._try_wrap(module_name, cls_name, method, self._wrap, callback)
        for module_name, cls_name, method in _MOCK_ENTRIES:
            self._try_wrap(module_name, cls_name, method, self._wrap_light, self._mock_used)
        self._try_wrap("unittest.mock", "MagicProxy", "create_mock", self._wrap_returning_self,
                       self._magic_made)
        self._try_wrap("unittest.mock", "_patch", "__enter__", self._wrap_returning_self,
                       self._patched)
        self._try_wrap("socket", "socket", "connect", self._wrap_light, self._connected)
        # Who closed what: read only when a failure finds it closed under another thread.
        self._try_wrap("socket", "socket", "close", self._wrap_light, self._closing)
        for module_name, cls_name in (("concurrent.futures.thread", "ThreadPoolExecutor"),
                                      ("concurrent.futures.process", "ProcessPoolExecutor")):
            self._try_wrap(module_name, cls_name, "shutdown", self._wrap_light, self._closing)
        for method in ("close", "terminate"):  # multiprocessing's Pool refuses work after either
            self._try_wrap("multiprocessing.pool", "Pool", method, self._wrap_light,
                           self._closing)
        # an event loop closed, a child process killed or terminated (Popen's kill() and
        # terminate() send their signal through send_signal)
        self._try_wrap("asyncio.base_events", "BaseEventLoop", "close", self._wrap_light,
                       self._closing)
        self._try_wrap("subprocess", "Popen", "send_signal", self._wrap_light, self._closing)
        for method in ("terminate", "kill"):
            self._try_wrap("multiprocessing.process", "BaseProcess", method, self._wrap_light,
                           self._closing)
        self._try_wrap("concurrent.futures._base", "Future", "set_exception",
                       self._wrap_light, self._future_failed)
        self._try_wrap("asyncio.base_events", "BaseEventLoop", "create_task",
                       self._wrap_returning, self._task_created)
        # From Python 3.12 on wait_for runs the awaited work in the waiting task itself, under
        # asyncio.timeout(): no task of its own is cancelled when the time runs out.
        self._try_wrap("asyncio.timeouts", "Timeout", "_on_timeout", self._wrap_light,
                       self._timed_out)

    def _try_wrap(self, module_name: str, cls_name: str, method: str,
                  wrap: Callable[..., None], callback: Callable[..., Any]) -> None:
        try:
            cls = _class(module_name, cls_name)
            if cls is not None and not _wrapped(cls, method):
                wrap(cls, method, callback)
        except Exception as error:
            record(f"wrapping {module_name}.{cls_name}.{method}", error)

    def _refresh_contained(self) -> None:
        try:
            self.refresh()
        except Exception as error:  # the scope opens all the same, with what is wrapped
            record("spawn refresh", error)

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()
        self.log = None
        self._modules_seen = 0

    def _wrap(self, cls: type, method: str, callback: Callable[[Any, str], None]) -> None:
        original = getattr(cls, method)
        starts = method == "start"

        # The recording steps are contained inline, not through _contained: a test that
        # starts processes or pools pays for this wrapper on each start.
        def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True  # the user's traceback shows their call, not this wrapper
            log = self.log
            if starts and log is not None:
                try:
                    _note_starter(log, obj)
                except Exception as error:
                    _failed(error)
            try:
                result = original(obj, *args, **kwargs)
            except (RuntimeError, AssertionError):  # started already (BaseProcess)
                if starts and self.log is not None:
                    self._started_again(obj)
                raise
            if self.log is not None:
                try:
                    self._after(obj, method, callback)
                except Exception as error:
                    _failed(error)
            return result

        self._install(cls, method, original, wrapper)

    def _wrap_thread_start(self) -> None:
        """Thread.start, the hot path of suites that start threads: the steps of ``_wrap`` and
        its callback in one place, who is starting asked once."""
        original = threading.Thread.start

        def start(obj: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            log = self.log
            if log is None:
                return original(obj, *args, **kwargs)
            started = None
            try:
                started = _before_thread_start(log, obj)
            except Exception as error:
                _failed(error)
            try:
                result = original(obj, *args, **kwargs)
            except (RuntimeError, AssertionError):  # started already
                if self.log is not None:
                    self._started_again(obj)
                raise
            if started is not None and self.log is log:
                log.started.append(started)
            return result

        self._install(threading.Thread, "start", original, start)

    def _after(self, obj: Any, method: str, callback: Callable[[Any, str], None]) -> None:
        log = self.log
        if log is None:
            return
        if not log.owns_current():  # started by a thread the test did not start: not the test's
            pid = getattr(obj, "pid", None)
            if isinstance(pid, int):
                log.foreign = log.foreign | {pid}
            return
        # past _after, the wrapper
        where, pooled, shared = _caller(log.testfile(), depth=3)
        if shared:
            # the module's object did it: not the test's (a thread was adopted as "shared"
            # before it started, so what it starts is not the test's either)
            pid = getattr(obj, "pid", None)
            if isinstance(pid, int):  # a forked worker: not the test's fork either
                log.foreign = log.foreign | {pid}
            return
        # A pool's own workers are the pool's business: the pool is checked instead;
        # with no user frame at all, the runtime's own helper threads started it.
        if where != "?" and (method == "__init__" or not pooled):
            callback(obj, where)

    def _wrap_light(self, cls: type, method: str, callback: Callable[..., None]) -> None:
        """Like _wrap, for hot paths: no frame walk, the callback sees the call's arguments."""
        original = getattr(cls, method)

        def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            if self.log is not None:
                try:
                    callback(obj, *args)
                except Exception as error:
                    _failed(error)
            return original(obj, *args, **kwargs)

        self._install(cls, method, original, wrapper)

    def _wrap_returning(self, cls: type, method: str, callback: Callable[[Any], None]) -> None:
        """Like _wrap_light, for a call whose result is what gets recorded (a task)."""
        original = getattr(cls, method)

        def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            result = original(obj, *args, **kwargs)
            if self.log is not None:
                _contained(callback, result)
            return result

        self._install(cls, method, original, wrapper)

    def _wrap_returning_self(self, cls: type, method: str,
                             callback: Callable[[Any, Any], None]) -> None:
        """Like _wrap_returning, for a callback that needs the receiver too."""
        original = getattr(cls, method)

        def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            result = original(obj, *args, **kwargs)
            if self.log is not None:
                _contained(callback, obj, result)
            return result

        self._install(cls, method, original, wrapper)

    def _wrap_waits(self) -> None:
        """Note where a wait with a timeout ran out on the test's own thread. Condition.wait
        is what Event.wait, Queue.get, Future.result, futures.wait and Barrier.wait wait in;
        a join with a timeout leaves the thread alive when it runs out. The waiting itself is
        the original's: the wrapper only looks at the result, and walks frames only when
        the wait ran out."""
        condition_wait = threading.Condition.wait
        thread_join = threading.Thread.join

        def wait(obj: Any, timeout: float | None = None) -> bool:
            __tracebackhide__ = True
            result: bool = condition_wait(obj, timeout)
            # a wait of 0 is a poll (Semaphore.acquire(timeout=0) in every submit)
            if not result and timeout and self.log is not None:
                self._ran_out()
            return result

        def join(obj: Any, timeout: float | None = None) -> None:
            __tracebackhide__ = True
            thread_join(obj, timeout)
            if timeout and self.log is not None and obj.is_alive():
                self._ran_out()

        self._install(threading.Condition, "wait", condition_wait, wait)
        self._install(threading.Thread, "join", thread_join, join)

    def _ran_out(self) -> None:
        # Called inside Condition.wait, with the caller's lock held again: nothing here may
        # run code a test can replace. threading.get_ident is such code (a library that
        # patches it to set the very Event being waited on deadlocked here); _thread's is not.
        log = self.log
        if log is None or _get_ident() != log.runner:
            return
        try:
            if log.ran_out is None:
                log.ran_out = {}
            place = _outside_machinery(sys._getframe(2))
            if place and (place in log.ran_out or len(log.ran_out) < _MAX_RAN_OUT):
                log.ran_out[place] = log.ran_out.get(place, 0) + 1
        except Exception as error:
            _failed(error)

    def _install(self, cls: type, method: str, original: Any, wrapper: Any) -> None:
        own = method in cls.__dict__  # inherited methods are removed again, not overwritten
        for attr in ("__name__", "__qualname__", "__doc__"):
            setattr(wrapper, attr, getattr(original, attr, None))
        wrapper.__wrapped__ = original
        wrapper.__poolchaos__ = True
        setattr(cls, method, wrapper)
        self._undo.append(lambda: setattr(cls, method, original) if own
                          else delattr(cls, method))

    # -- per test ------------------------------------------------------------------------------

    def open(self, path: object = None) -> SpawnLog:
        if len(sys.modules) != self._modules_seen:  # refresh's own test, without two calls
            self._refresh_contained()
        self.log = SpawnLog(opened=_now(), path=path)
        self.log.died_elsewhere, self._died_between = self._died_between, _NONE
        return self.log

    def close(self) -> SpawnLog | None:
        log, self.log = self.log, None
        return log

    # -- callbacks (run inside the user's code: cheap, never raise) ----------------------------

    def _record(self, started: Started) -> None:
        log = self.log
        if log is not None and not started.where.startswith(RUNNER_MODULES):
            started.phase = log.origin()
            log.started.append(started)

    def _popen_created(self, popen: Any, where: str) -> None:
        self._record(Started("process", weakref.ref(popen),
                             f"process {popen.pid} `{_command_line(popen.args)}`", where, "",
                             pid=popen.pid))

    def _process_started(self, process: Any, where: str) -> None:
        started = Started("process", weakref.ref(process),
                          f"process {process.pid} ({process.name})", where, "", pid=process.pid)
        started.fresh = _fresh(getattr(process, "_start_method", None))
        self._record(started)

    def _pool_created(self, pool: Any, where: str) -> None:
        started = Started("pool", weakref.ref(pool), type(pool).__name__, where, "")
        started.held = tuple(held for held in (getattr(pool, attr, None) for attr in
                                               ("_threads", "_processes", "_pool"))
                             if isinstance(held, set | dict | list))
        context = getattr(pool, "_mp_context", None) or getattr(pool, "_ctx", None)
        if context is not None:
            started.fresh = _fresh(getattr(context, "_name", None))
        self._record(started)

    def _started_again(self, obj: Any) -> None:
        """A start the machinery refused: when another thread of the test had started that
        same object during the test, both raced through a not-started check."""
        log = self.log
        if log is None or not log.owns_current():
            return
        try:
            entry = (log.starters or {}).get(id(obj))
            again = threading.current_thread().name
            alive = bool(obj.is_alive())
            if entry is None or entry[0]() is not obj or entry[1] == again or not alive:
                # started before the test, restarted by the thread that started it, or
                # restarted after its run ended: a lifecycle order, not two starters racing
                return
            if log.started_again is None:
                log.started_again = []
            if len(log.started_again) < _MAX_HIDDEN:
                what = (f"thread {obj.name!r}" if isinstance(obj, threading.Thread)
                        else f"process {getattr(obj, 'name', '?')!r}")
                log.started_again.append(f"{what} was started by thread '{entry[1]}' and "
                                         f"started again by thread '{again}'")
        except Exception as error:
            _failed(error)

    def _thread_ended(self, thread: Any, *_: Any) -> None:
        log = self.log
        if log is None or log.threads is None or log.phase_of(thread) is None:
            return
        if log.ended is None:
            log.ended = {}
        log.ended[id(thread)] = clock.monotonic()

    def _task_created(self, task: Any) -> None:
        log = self.log
        if log is None or len(log.tasks) >= MAX_TASKS or not log.owns_current():
            return
        coro = getattr(task, "get_coro", lambda: None)()
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and str(frame.f_globals.get("__name__", "")).startswith("asyncio") \
                and _asyncio_made_it():
            return  # the loop's own housekeeping (asyncio.run's shutdown steps)
        name = getattr(coro, "__qualname__", None) or task.get_name()
        log.tasks.append(Started("task", weakref.ref(task), f"task {name}", "", log.origin()))
        task.add_done_callback(self._task_done)

    def _timed_out(self, timeout: Any) -> None:
        """An ``asyncio.timeout()`` (``wait_for``'s, from 3.12 on) ran out: the work it awaited
        is cut off as a cancelled task of its own was before."""
        log = self.log
        task = getattr(timeout, "_task", None)
        if log is None or task is None or len(log.tasks) >= MAX_TASKS or \
                not log.owns_current():
            return
        entry = Started("task", _no_object, f"task {_awaited_work(task)}", "", log.origin())
        entry.cancelled = True
        log.tasks.append(entry)

    def _task_done(self, task: Any) -> None:
        """A task ended with an exception. Whether anyone retrieved it cannot be told later
        (cancel() on a finished task clears asyncio's own flag): the evidence keeps those
        that did not become the failure itself."""
        if task.cancelled():
            log = self.log
            for entry in log.tasks if log is not None else ():
                if entry.ref() is task:
                    entry.cancelled = True
            return
        error = getattr(task, "_exception", None)
        self._hide(error)
        log = self.log
        if log is not None:
            _note_double(log, error, f"task {task.get_name()}")

    def _future_failed(self, _future: Any, error: Any = None, *_: Any) -> None:
        log = self.log
        if log is not None and log.owns_current():
            self._hide(error)
            _note_raised(log, error, threading.current_thread())
            _note_unset(log, error, threading.current_thread().name)
            _note_double(log, error, f"thread '{threading.current_thread().name}'")

    def _chain_excepthook(self) -> None:
        """See each thread of a test die (pytest's own hook, which reports it, stays next)."""
        previous = threading.excepthook

        def hook(args: Any) -> Any:
            log = self.log
            thread = getattr(args, "thread", None)
            if log is None and thread is not None and len(self._died_between) < _MAX_CLOSERS:
                self._died_between = self._died_between | {thread.name}
            elif log is not None and thread is not None:
                try:
                    if log.phase_of(thread) is not None:
                        # when and where it died, as for a pool task's error: what another
                        # thread closed under it is read from that
                        _note_raised(log, getattr(args, "exc_value", None), thread)
                        _note_unset(log, getattr(args, "exc_value", None), thread.name)
                        _note_double(log, getattr(args, "exc_value", None),
                                     f"thread '{thread.name}'")
                    elif thread.ident != log.runner:
                        log.died_elsewhere = log.died_elsewhere | {thread.name}
                except Exception as error:
                    _failed(error)
            return previous(args)

        threading.excepthook = hook
        self._undo.append(lambda: setattr(threading, "excepthook", previous)
                          if threading.excepthook is hook else None)

    def _closing(self, obj: Any, *_: Any) -> None:
        log = self.log
        if log is None or (log.threads is None and threading.get_ident() == log.runner):
            return  # no other thread of the test: no one else can have been using it
        if not log.owns_current() or (log.closers is not None and (
                len(log.closers) >= _MAX_CLOSERS or id(obj) in log.closers)):
            return
        # A close in the test's own code orders the test's own steps: not the code's race.
        users = {} if in_test_file(_closing_file()) else _stacks(log)
        if users:
            if log.closers is None:
                log.closers = {}
            log.closers[id(obj)] = (weakref.ref(obj), threading.get_ident(),
                                    threading.current_thread().name, clock.monotonic(), users)

    def _hide(self, error: Any) -> None:
        log = self.log
        if log is None or not isinstance(error, BaseException):
            return
        if log.hidden is None:
            log.hidden = []
        if len(log.hidden) < _MAX_HIDDEN:
            log.hidden.append((_now(), error_line(error)))

    def _mock_used(self, *_: Any) -> None:
        if self.log is not None:
            self.log.mocked = True

    def _magic_made(self, proxy: Any, method: Any) -> None:
        """A MagicMock's conversion method was first reached (int(), len(), float() ...)."""
        log = self.log
        name = getattr(proxy, "name", None)
        if log is None or name not in MAGIC_CONVERSIONS or not log.owns_current():
            return
        if log.magic is None:
            log.magic = []
        if len(log.magic) < _MAX_HIDDEN:
            parent = getattr(proxy, "parent", None)
            named = getattr(parent, "_extract_mock_name", None)
            log.magic.append((name, named() if callable(named) else "mock", method))

    def _patched(self, patch: Any, _result: Any) -> None:
        """A patch took effect: what it replaced is kept, to tell later whether the code under
        test still reached the original through a name of its own."""
        log = self.log
        if log is None:
            return
        log.mocked = True
        target, attribute = getattr(patch, "target", None), getattr(patch, "attribute", None)
        if log.patches is None:
            log.patches = []
        if isinstance(attribute, str) and target is not None and len(log.patches) < _MAX_HIDDEN:
            log.patches.append((target, attribute, getattr(patch, "temp_original", None),
                                getattr(target, attribute, None)))

    def _connected(self, sock: Any, address: Any = None, *_: Any) -> None:
        log = self.log
        if log is not None and len(log.connections) < 5 and isinstance(address, tuple) \
                and len(address) >= 2:
            label = f"socket connect to {address[0]}:{address[1]}"
            log.connections.append(label)
            # Only a test using doubles is asked: whether the double should have stood in
            # for this connection. Its own in-process server may be gone by the failure.
            if log.mocked and str(address[0]) in _LOOPBACK and address[1] in listening_ports():
                log.internal = [*(log.internal or ()), label]

    def _before_fork(self) -> None:
        log = self.log
        if log is not None and log.before_fork is None and log.owns_current():
            try:
                from .children import child_pids

                log.before_fork = frozenset(child_pids())
            except Exception:  # a fork must happen whatever this fails to note
                log.before_fork = _NONE

    def _forked(self) -> None:
        log = self.log
        if log is not None and log.owns_current():
            log.forked = True
            log.fork_phases = log.fork_phases | {log.origin()}


#: errors a unittest.mock double raises of its own, and the fact each makes: its side_effect
#: iterator ran out (StopAsyncIteration from an AsyncMock), its spec lacks the attribute.
#: An exception the test gave it as side_effect is the test's simulation, not a gap.
_DOUBLE_ERRORS = {StopIteration: "double-exhausted", StopAsyncIteration: "double-exhausted",
                  AttributeError: "double-refused"}


def _note_double(log: SpawnLog, error: Any, worker: str) -> None:
    """An error a test double raised itself, inside unittest.mock, on a worker of the test:
    noted with the call that reached the double."""
    kind = _DOUBLE_ERRORS.get(type(error))
    if kind is None:
        return
    tb = error.__traceback__
    caller: Any = None  # the call that reached the double: the project's, else the pool's
    while tb is not None and tb.tb_next is not None:
        if tb.tb_frame.f_globals.get("__name__") != "unittest.mock" and (
                caller is None or not tb.tb_frame.f_code.co_filename.startswith(_STDLIB)):
            caller = tb
        tb = tb.tb_next
    if tb is None or tb.tb_frame.f_globals.get("__name__") != "unittest.mock" or caller is None:
        return
    if log.refused_by_double is None:
        log.refused_by_double = []
    if len(log.refused_by_double) < _MAX_HIDDEN:
        code, lineno = caller.tb_frame.f_code, caller.tb_lineno
        source = linecache.getline(code.co_filename, lineno).strip()
        log.refused_by_double.append(
            (kind, f"{error_line(error).rstrip(': ')} raised by a test double called at "
                   f"`{source}` in {code.co_name} ({_basename(code.co_filename)}:{lineno}) "
                   f"on {worker}"))


def _fresh(method: object) -> str:
    """``method`` (a start method, or None for the default one) when its workers start as
    fresh interpreters, else ''."""
    if method is None:
        import multiprocessing

        method = multiprocessing.get_start_method(allow_none=True)
    return method if method in ("spawn", "forkserver") else ""


def _before_thread_start(log: SpawnLog, thread: Any) -> Started | None:
    """Before ``thread`` starts: adopt it when one of the test's threads starts it (what it
    starts at once is then the test's, or the shared object's), note who asked first, and
    make its record, kept once the start succeeds; None when it is not the test's to report
    (another thread's, a pool's own worker, a module-level object's, the runner's)."""
    phase = log.own_phase()
    if phase is None:
        return None
    # depth 3: this function, the wrapper, then whoever called start()
    where, pooled, shared = _caller(log.testfile(), depth=3)
    log.adopt(thread, "shared" if shared else phase)
    _first_starter(log, thread)
    if shared or pooled or where == "?" or where.startswith(RUNNER_MODULES):
        return None
    return Started("thread", weakref.ref(thread), f"thread {thread.name!r}", where, phase)


def _note_starter(log: SpawnLog, obj: Any) -> None:
    """The thread that first asks to start ``obj`` during the test (a later, refused start
    leaves it as it is)."""
    if log.owns_current():
        _first_starter(log, obj)


def _first_starter(log: SpawnLog, obj: Any) -> None:
    """Note the current thread, one of the test's, as ``obj``'s starter unless one is."""
    if log.starters is None:
        log.starters = {}
    known = log.starters.get(id(obj))
    if (known is None or known[0]() is not obj) and len(log.starters) < _MAX_CLOSERS:
        log.starters[id(obj)] = (weakref.ref(obj), threading.current_thread().name)


def _note_raised(log: SpawnLog, error: Any, thread: threading.Thread) -> None:
    """The thread ``error`` was raised on, and when (a pool task's, or a thread's that died of
    it)."""
    if not isinstance(error, BaseException):
        return
    if log.raised_on is None:
        log.raised_on = {}
    if len(log.raised_on) < _MAX_HIDDEN:
        # by id, not the error: holding it would keep its frames' sockets open
        log.raised_on[id(error)] = (thread.ident or 0, thread.name, type(error),
                                    clock.monotonic())


def _note_unset(log: SpawnLog, error: Any, thread: str) -> None:
    """An AttributeError the interpreter raised looking ``name`` up on an object: kept (the
    object weakly) to tell later whether the attribute was only set after the read."""
    name, obj = getattr(error, "name", None), getattr(error, "obj", None)
    if type(error) is not AttributeError or not isinstance(name, str) or obj is None:
        return
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or in_test_file(tb.tb_frame.f_code.co_filename):
        return  # the test's own thread read too early: the test's order, not the code's
    builder = _constructing(obj)
    if not builder:
        return  # built before the read: a missing attribute, or one set by a later call
    try:
        ref = weakref.ref(obj)
    except TypeError:  # an object that takes no weak reference: not kept alive for this
        return
    if log.unset_reads is None:
        log.unset_reads = []
    if len(log.unset_reads) < _MAX_HIDDEN:
        log.unset_reads.append((ref, name, thread, builder))


def _constructing(obj: Any) -> str:
    """The name of another thread whose stack is in ``obj``'s __init__ right now."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, top in _other_threads_frames():
        frame: Any = top
        while frame is not None:
            if frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is obj:
                return names.get(ident, "?")
            frame = frame.f_back
    return ""


def _stacks(log: SpawnLog) -> dict[int, frozenset[CodeType]]:
    """For each of the test's other threads, the code of the frames it is in now (not the
    test's, not the standard library's machinery): which functions were under way when
    something was closed. Code objects only: holding frames would hold their locals."""
    me = threading.get_ident()
    wanted = {thread.ident for thread in threading.enumerate() if thread.ident != me
              and (thread.ident == log.runner or log.phase_of(thread) is not None)}
    stacks = {}
    for ident, top in _other_threads_frames():
        if ident not in wanted:
            continue
        codes = set()
        frame: Any = top
        while frame is not None:
            code = frame.f_code
            if not str(frame.f_globals.get("__name__", "")).startswith(_CLOSING + _MACHINERY) \
                    and not in_test_file(code.co_filename):
                codes.add(code)
            frame = frame.f_back
        if codes:
            stacks[ident] = frozenset(codes)
    return stacks


def _other_threads_frames() -> list[tuple[int, Any]]:
    """sys._current_frames() without this thread's own: a local that held the frame of the
    function it is in would make a cycle, and keep every caller's locals (a socket the
    caller is closing) alive until the collector runs."""
    frames = sys._current_frames()
    frames.pop(threading.get_ident(), None)
    return list(frames.items())


def _closing_file() -> str:
    """The file of the code that asked for the close, past socket's, the executors' and
    contextlib's own frames (a `with` block's exit)."""
    frame: Any = sys._getframe(3)  # past this, _closing and the wrapper
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(_CLOSING):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


def in_test_file(path: str) -> bool:
    name = _basename(path)
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def error_line(error: BaseException) -> str:
    """How a task's error is told: its type and the start of its message."""
    return f"{type(error).__name__}: {str(error)[:120]}"


def _asyncio_made_it() -> bool:
    """The task being recorded was created by asyncio itself, not through its helpers by the
    test (a task of asyncio.sleep() the test made is the test's, one asyncio.run made to
    shut the loop down is not)."""
    caller: Any = sys._getframe(4)  # past this, _task_created, _contained and the wrapper
    while caller is not None and caller.f_globals.get("__name__") in _TASK_HELPERS:
        caller = caller.f_back
    return caller is None or str(caller.f_globals.get("__name__", "")).startswith("asyncio")


_TASK_HELPERS = frozenset({"asyncio.tasks", "asyncio.futures"})


def _contained(func: Callable[..., None], *args: Any) -> None:
    """Run a recording step inside the user's call: whatever it fails to record, the user's
    call behaves exactly as it would without the plugin."""
    try:
        func(*args)
    except Exception as error:
        _failed(error)


def _failed(error: Exception) -> None:
    record("scope: recording a start", error)


#: the hosts a connection to this machine itself is made to
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def listening_ports() -> set[int]:
    """The TCP ports this process listens on (an in-process test server's among them)."""
    try:
        import psutil

        return {conn.laddr.port for conn in psutil.Process().net_connections("inet")
                if conn.status == psutil.CONN_LISTEN and conn.laddr}
    except Exception:  # no /proc, or not allowed to read it: nothing is known to be own
        return set()


def _command_line(args: Any) -> str:
    """The command as a person would tell it apart: long paths keep their last two parts, so
    ``/opt/venv/bin/python -u …/poolsvc/worker.py`` still names the script after 80 chars."""
    if isinstance(args, str | bytes | os.PathLike):
        parts = [os.fsdecode(args)]
    else:
        parts = [os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a) for a in args]
    # Masked before shortening: a shortened URL no longer looks like one.
    shown = [f"…/{'/'.join(p.rsplit('/', 2)[-2:])}" if len(p) > 30 and p.count("/") > 2 else p
             for p in redact_args(parts)]
    text = " ".join(shown)
    return text if len(text) <= 80 else text[:79] + "…"


def _caller(testfile: str = "", depth: int = 2) -> tuple[str, bool, bool]:
    """``module (file:line)`` of the first frame outside the standard library's machinery
    (plus the test file's line when a library in between did the starting), whether pool
    machinery was on the way (then it is the pool's own thread or process), and whether the
    library did it for an object the test module holds (then it is that object's, started
    lazily by its first use, and lives as long as the module), or for a library's own
    process-wide instance (``_singleton``)."""
    frame: Any = sys._getframe(depth)
    pooled = False
    where = ""
    selves: list[object] = []
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not isinstance(name, str):  # code run by exec() with globals of its own
            name = ""
        if not where and not name.startswith(_MACHINERY):
            where = f"{name} ({_basename(frame.f_code.co_filename)}:{frame.f_lineno})"
            if not testfile or frame.f_code.co_filename == testfile:
                return where, pooled, False
        elif not where:
            pooled = pooled or name.startswith(_POOL_MACHINERY)
        elif frame.f_code.co_filename == testfile:
            return (f"{where} from {os.path.basename(testfile)}:{frame.f_lineno}", pooled,
                    _held_by_module(selves, frame.f_globals) or _singleton(selves))
        if where and frame.f_code.co_argcount and frame.f_code.co_varnames[0] == "self":
            selves.append(frame.f_locals.get("self"))
        frame = frame.f_back
    return where or "?", pooled, _singleton(selves)


def _outside_machinery(frame: Any) -> tuple[tuple[CodeType, int], ...]:
    """(code, line) of the first few frames from ``frame`` outwards that are not the
    machinery of waiting (threading, queue, concurrent.futures ...) or this plugin."""
    found: list[tuple[CodeType, int]] = []
    while frame is not None and len(found) < _RAN_OUT_DEPTH:
        name = frame.f_globals.get("__name__", "")
        if not isinstance(name, str) or not any(
                name == module or name.startswith(module + ".") for module in _WAITING):
            found.append((frame.f_code, frame.f_lineno))
        elif found:
            break  # the caller's own machinery again (a pool's worker): the place is known
        frame = frame.f_back
    return tuple(found)


_STDLIB = os.path.dirname(os.__file__) + os.sep
#: frames of how a wait is done, not of who waited
_WAITING = ("threading", "queue", "concurrent.futures", "multiprocessing", "asyncio",
            "selectors", "subprocess", "pytest_poolchaos", "_pytest", "pluggy")
#: places where a wait ran out, per test, and frames kept of each
_MAX_RAN_OUT = 8
_RAN_OUT_DEPTH = 6
#: a place where waits ran out more often than this paces a loop: each was a sleep (a join
#: loop over the test's threads runs out once per thread still alive)
PACED = 8


def _basename(path: str) -> str:
    # os.path.basename once per file: a test that starts threads asks on every start.
    found = _BASENAMES.get(path)
    if found is None:
        found = _BASENAMES[path] = os.path.basename(path)
    return found


_BASENAMES: dict[str, str] = {}


def _held_by_module(selves: list[object], module: dict[str, Any]) -> bool:
    """One of ``selves`` is a global of the test module, or in the closure of one (a function
    decorated with a module-level pool)."""
    if not selves:
        return False
    wanted = {id(obj) for obj in selves if obj is not None}
    for value in list(module.values()):
        if id(value) in wanted:
            return True
        for _ in range(3):  # through decorators: the wrapper's closure, then __wrapped__
            cells = getattr(value, "__closure__", None) or ()
            if any(id(_cell(cell)) in wanted for cell in cells):
                return True
            value = getattr(value, "__wrapped__", None)
            if value is None:
                break
    return False


def _singleton(selves: list[object]) -> bool:
    """One of ``selves`` is a global of the module its class (or a base class) is defined in:
    a library's process-wide instance (a reusable executor, a default client) that starts its
    workers on first use and keeps them for every later caller, by design. Identity only: a
    library module's functions are not searched for closures."""
    unique = {id(obj): obj for obj in selves if obj is not None}  # a method calls its own
    for wanted, obj in list(unique.items())[:_SELVES]:
        # the class's module or a base class's (a subclass elsewhere of a pool kept by the
        # base's module)
        names = {getattr(cls, "__module__", "") for cls in type(obj).__mro__[:-1]}
        for module in filter(None, map(sys.modules.get, names - _NOT_LIBRARIES)):
            if any(id(value) == wanted for value in list(vars(module).values())):
                return True
    return False


#: library objects on the way to a start that are asked whether their module keeps them
_SELVES = 4
_NOT_LIBRARIES = frozenset({"", "builtins", "threading", "multiprocessing.process"})


def _cell(cell: Any) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


_MOCK_ENTRIES = (
    ("unittest.mock", "NonCallableMock", "__init__"),
    ("unittest.mock", "_patch", "start"),
)
_POOL_MACHINERY = ("concurrent.futures", "multiprocessing.pool")
#: frames of how a socket or pool gets closed, not of who closed it
_CLOSING = ("socket", "contextlib", "concurrent.futures", "ssl", "asyncio", "selectors",
            "multiprocessing", "subprocess", "pytest_poolchaos.worker.scope")
# Frames of these modules are how a thread/process/pool gets started, not who started it.
_MACHINERY = ("threading", "subprocess", "multiprocessing", "concurrent.futures",
              "pytest_poolchaos.worker.scope", "pytest_poolchaos.chaos.noise", "asyncio",
              "selectors")


def _class(module_name: str, cls_name: str) -> type | None:
    module = sys.modules.get(module_name)
    # vars(), not getattr(): a module's lazy __getattr__ would import what is not used yet
    cls = vars(module).get(cls_name) if module is not None else None
    return cls if isinstance(cls, type) else None


def _wrapped(cls: type, method: str) -> bool:
    return bool(getattr(getattr(cls, method, None), "__poolchaos__", False))


#: Modules whose classes are wrapped; they are often first imported inside a test
#: (``multiprocessing.Pool()`` imports multiprocessing.pool on first use).
_LAZY_MODULES = frozenset({"concurrent.futures.thread", "concurrent.futures.process",
                           "multiprocessing.pool", "multiprocessing.process", "unittest.mock",
                           "socket", "asyncio.base_events", "asyncio.timeouts",
                           "concurrent.futures._base"})


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``refresh`` right after one of ``names`` is imported, then gets out of the way."""

    def __init__(self, names: frozenset[str], refresh: Callable[..., None]) -> None:
        self.names = names
        self.refresh = refresh

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.names:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader,
                                                                         "exec_module"):
                spec.loader = _ThenRefresh(spec.loader, self.refresh)
                return spec
        return None


class _ThenRefresh(importlib.abc.Loader):
    def __init__(self, loader: Any, refresh: Callable[..., None]) -> None:
        self.loader = loader
        self.refresh = refresh

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        try:
            self.refresh(force=True)
        except Exception as error:  # never break the user's import
            from ...guard import record

            record("scope import hook", error)
