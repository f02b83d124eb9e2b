"""Facts read from live objects when a test fails: its workers and its traceback's frames.

Runs once per failure, never on a green test. Nothing here calls user code: objects are
judged by ``type()`` against exact types, and attributes are read from instance and class
dictionaries (``object.__getattribute__``), never through ``getattr`` or ``len``.
"""

from __future__ import annotations

import _thread
import collections
import linecache
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import (
    BuiltinFunctionType,
    CodeType,
    CoroutineType,
    FrameType,
    FunctionType,
    GeneratorType,
    MappingProxyType,
    ModuleType,
    TracebackType,
)
from typing import TYPE_CHECKING, Any

from .. import clock
from ..model import FrameFact, Worker

if TYPE_CHECKING:
    from .scope.spawn import Started

__all__ = ["class_attr", "frame_facts", "named_codes", "own", "self_deadlocks", "workers"]

_LOCKS: tuple[type, ...] = (_thread.LockType, _thread.RLock, threading.Condition,
                            threading.Semaphore, threading.BoundedSemaphore)
_CONTAINERS: tuple[type, ...] = (dict, set, list, collections.deque, collections.OrderedDict,
                                 collections.defaultdict)
_DOUBLE_WORDS = ("fake", "stub", "dummy", "mock", "double")
_WORKER_RUNS = {("concurrent.futures.thread", "run"), ("concurrent.futures.thread", "_worker"),
                ("threading", "run"), ("multiprocessing.pool", "worker")}
_IDLE_IN = ("queue.py", "threading.py", "concurrent/futures/thread.py", "selectors.py")
_STDLIB = os.path.dirname(os.__file__)
#: (function, file) of the standard library where a thread sits while it waits for work
_WAITING_FOR_WORK = frozenset({("get", "queue.py"), ("accept", "socket.py"),
                               ("select", "selectors.py"), ("poll", "selectors.py")})
_PER_KIND = 4
_MAX_READS = 16
_MAX_TOKENS = 120
_TOKEN = re.compile(r"[A-Za-z_][\w.-]{2,60}")
#: a statement that is only ``something.wait(...)``: its result is dropped
_BARE_WAIT = re.compile(r"^\s*([A-Za-z_][\w.]*)\.wait\([^)]*\)\s*(?:#.*)?$")
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\(")
_COUNTED_LOOP = re.compile(r"^\s*for\b.*\bin\s+range\(")
_PAUSE = re.compile(r"\b(?:sleep|wait)\(")
_CLOCK_LOOP = re.compile(r"^\s*while\b.*\b(?:monotonic|time|perf_counter)\(\)")
_MAX_WORKERS = 16
_TIMED_CALL = re.compile(r"(?P<obj>[A-Za-z_][\w.]*)\.(?P<method>wait|wait_for|acquire|join|poll"
                         r"|select|get|result)\((?P<args>[^()]*(?:\([^()]*\)[^()]*)*)\)")
_WITH_AS = re.compile(r"\bas\s+([A-Za-z_]\w*)\s*[,:)]")
_METHOD_CALL = re.compile(r"([A-Za-z_][\w.]*)\.([A-Za-z_]\w*)\(")
_CTOR_METHOD = re.compile(r"\b([A-Z]\w*)\([^()]*\)\.([A-Za-z_]\w*)\(")
_STORED = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*=[^=]")
_WAIT_LOOKBACK = 6  # lines before the failing assert where the wait it checks may be
#: modules of the objects whose timed waits are read (threading, multiprocessing, ...)
_WAIT_MODULES = frozenset({"threading", "_thread", "multiprocessing", "selectors", "queue",
                           "asyncio", "concurrent"})


# -- workers --------------------------------------------------------------------------------


def workers(started: Iterable[Started], ended: dict[int, float] | None = None
            ) -> tuple[Worker, ...]:
    """Each thread, pool and process the scope saw start, as it is now; ``ended`` (id of a
    thread -> monotonic time it ended) dates the threads that have exited."""
    frames = sys._current_frames()
    frames.pop(threading.get_ident(), None)  # its own frame in a local would make a cycle
    ended = ended or {}
    out: list[Worker] = []
    seen: set[int] = set()
    for entry in started:
        obj = entry.ref()
        if obj is None and entry.kind == "pool":
            # A pool made and shut down inside one library call is gone by the assert; the
            # workers it ran are still in the containers the scope kept.
            out.extend(_pool_workers(entry.held, frames, seen, ended))
        elif obj is None:
            # Only what finished is collected: threading keeps running threads, the loop its
            # pending tasks, multiprocessing its unreaped children.
            gone = _gone(entry)
            if gone is not None:
                out.append(gone)
        else:
            out.extend(_worker(entry.kind, obj, frames, seen, ended))
        if len(out) >= _MAX_WORKERS:
            break
    return tuple(out[:_MAX_WORKERS])


def _pool_workers(held: tuple[Any, ...], frames: dict[int, FrameType], seen: set[int],
                  ended: dict[int, float]) -> list[Worker]:
    """The threads and processes in a collected pool's worker containers, as they are now."""
    found: list[Worker] = []
    for container in held:
        members = container.values() if isinstance(container, dict) else container
        for member in list(members)[:_MAX_WORKERS]:
            if isinstance(member, threading.Thread):
                found += _thread_worker(member, frames, seen, ended.get(id(member)))
            elif hasattr(member, "_popen") or hasattr(member, "returncode"):
                found.append(_process_worker(member))
    return found


def _gone(entry: Started) -> Worker | None:
    """A thread, task or process whose object was collected: threading keeps running threads
    and the loop its pending tasks, so those finished; a Popen dropped while its child ran
    leaves a live child, so a process is judged by its pid."""
    name = entry.label.split(" ", 1)[-1].strip("'")
    if entry.kind == "task":
        return Worker("task", name, "cancelled" if entry.cancelled else "exited")
    if entry.kind == "thread":
        return Worker(entry.kind, name, "exited")
    if entry.kind == "process" and entry.pid is not None and os.path.isdir("/proc"):
        ended = not os.path.exists(f"/proc/{entry.pid}") or _zombie(entry.pid)
        return Worker("process", name, "exited" if ended else "alive")
    return None


def _worker(kind: str, obj: Any, frames: dict[int, FrameType], seen: set[int],
            ended: dict[int, float]) -> list[Worker]:
    if kind == "thread" and isinstance(obj, threading.Thread):
        return _thread_worker(obj, frames, seen, ended.get(id(obj)))
    if kind == "pool":
        threads = own(obj, "_threads") or ()  # ThreadPoolExecutor keeps a set of them
        found = [w for t in list(threads) if isinstance(t, threading.Thread)
                 for w in _thread_worker(t, frames, seen, ended.get(id(t)))]
        return found or [Worker("pool", type(obj).__name__, "alive")]
    if kind == "process":
        return [_process_worker(obj)]
    if kind == "task":
        coro = getattr(obj, "get_coro", lambda: None)()
        name = getattr(coro, "__qualname__", None)
        if getattr(obj, "done", lambda: True)():
            state = "cancelled" if obj.cancelled() else "exited"
        elif getattr(coro, "cr_running", False):
            state = "running"  # the task whose code is raising: the test's own
        else:
            state = "idle" if _awaits_work(coro) else "busy"
        return [Worker("task", str(name or obj.get_name()), state)]
    return []


def _awaits_work(coro: Any) -> bool:
    """A pending task waiting to be given work or told to go on (a queue's get(), an event or
    condition), as a pool thread idles in its queue, rather than busy with work of its own."""
    for _ in range(20):
        code = getattr(coro, "cr_code", None)
        if code is not None and (code.co_name, os.path.basename(code.co_filename)) in \
                _AWAITING_WORK:
            return True
        coro = getattr(coro, "cr_await", None)
        if coro is None:
            return False
    return False


_AWAITING_WORK = frozenset({("get", "queues.py"), ("wait", "locks.py"),
                            ("wait_for", "locks.py")})


def _thread_worker(thread: threading.Thread, frames: dict[int, FrameType],
                   seen: set[int], ended: float | None = None) -> list[Worker]:
    ident = thread.ident
    if ident is None or id(thread) in seen:  # idents of exited threads are reused
        return []
    seen.add(id(thread))
    frame = frames.get(ident)
    if frame is None or not thread.is_alive():
        ago = round(clock.monotonic() - ended, 3) if ended is not None else None
        return [Worker("thread", thread.name, "exited", ended_ago=ago)]
    return [_thread_state(thread.name, frame)]


def _thread_state(name: str, frame: FrameType) -> Worker:
    stack = list(_stack(frame))
    pooled = any(_module(f) == "concurrent.futures.thread" and f.f_code.co_name == "_worker"
                 for f in stack)
    user = next((f for f in stack if not _is_stdlib(f) and not _is_own(f)), None)
    if pooled and user is None and stack[0].f_code.co_filename.endswith(_IDLE_IN):
        return Worker("thread", name, "idle")
    shown = user or stack[0]
    where = f"{shown.f_code.co_name} ({os.path.basename(shown.f_code.co_filename)}:" \
            f"{shown.f_lineno})"
    # a consumer blocked in queue.get(), a server in accept() or select(): waiting for work,
    # not doing any
    waiting = any((f.f_code.co_name, os.path.basename(f.f_code.co_filename)) in _WAITING_FOR_WORK
                  and f.f_code.co_filename.startswith(_STDLIB) for f in stack[:4])
    return Worker("thread", name, "idle" if waiting else "busy", where)


def _stack(frame: FrameType | None) -> Iterator[FrameType]:
    """Innermost first."""
    while frame is not None:
        yield frame
        frame = frame.f_back


def _process_worker(process: Any) -> Worker:
    popen = own(process, "_popen") or process  # multiprocessing.Process, else a Popen
    pid = own(popen, "pid")
    code = own(popen, "returncode")
    name = str(own(process, "_name") or pid)
    if isinstance(code, int):
        return Worker("process", name, "exited", exit_code=code)
    if isinstance(pid, int) and _zombie(pid):
        return Worker("process", name, "exited")
    return Worker("process", name, "alive")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except (OSError, IndexError):  # no /proc, or the pid is gone (reaped)
        return False


# -- the traceback's frames -----------------------------------------------------------------


#: where waits with a timeout ran out on the test's thread: (code, line) of the frames outside
#: the machinery of waiting, innermost first (the scope's observation)
RanOut = Sequence[tuple[tuple[CodeType, int], ...]]


def frame_facts(errors: Iterable[BaseException], root: str,
                ran_out: RanOut = ()) -> tuple[FrameFact, ...]:
    """Locks, containers and generators where each exception was raised, doubles in any user
    frame, and whether it was raised on a worker thread."""
    facts: list[FrameFact] = []
    reads: list[FrameFact] = []
    for error in errors:
        walked = list(_tb_lines(error.__traceback__))
        lines = dict(walked)
        frames = [frame for frame, _ in walked]
        facts += _worker_thread(frames)
        user = [f for f in frames if _is_user(f, root)]
        if user:
            facts += _deadline_raised(user[-1], error)
            facts += _deadline_looped(user[-1], error, lines[user[-1]])
            facts += _held(user[-1], lines[user[-1]], _being_built(frames))
            facts += _exit_checked(user[-1])
            facts += _modules(user[-1])
            facts += _polling_calls(user[-1], dict(user[-1].f_locals), lines[user[-1]],
                                    ran_out)
        for frame in user:
            facts += _doubles(frame)
            facts += _test_frame(frame, lines[frame], ran_out)
        if none_looked_up(error):
            facts += _returned_nothing(user)
        if _sqlite_locked(error) and user:
            facts += _held_transaction(user, lines)
        reads += [r for frame in user for r in _reads(frame, root)]
        facts += _settings_named(user)
    return _capped(facts, _PER_KIND) + _capped(reads, _MAX_READS)


def _settings_named(frames: list[FrameType]) -> list[FrameFact]:
    """The names of environment variables (upper-case string constants) that the code of each
    project module on the failure's path mentions anywhere, as ``module: NAME NAME``: a
    setting an earlier test changed may be read by that module's other code (a server
    thread of it, a constructor) rather than by the frames that failed."""
    found = []
    for module in dict.fromkeys(_module(frame) for frame in frames):
        space = sys.modules.get(module)
        if space is None or _test_module(module):
            continue
        names = sorted(_env_names(own(space, "__dict__") or {}))[:_MAX_TOKENS]
        if names:
            found.append(FrameFact("module-reads", f"{module}: {' '.join(names)}"))
    return found[:_PER_KIND]


def _env_names(namespace: dict[str, Any]) -> set[str]:
    codes: list[CodeType] = []
    for value in list(namespace.values())[:200]:
        members = class_attr(value, "__dict__") if isinstance(value, type) else {"": value}
        for member in list(members.values())[:100] if isinstance(
                members, dict | MappingProxyType) else ():
            code = own(member, "__code__") if type(member) is FunctionType else None
            if isinstance(code, CodeType):
                codes.append(code)
    names: set[str] = set()
    while codes and len(names) < _MAX_TOKENS:
        code = codes.pop()
        for const in code.co_consts:
            if isinstance(const, CodeType):
                codes.append(const)
            elif isinstance(const, str) and _ENV_NAME.fullmatch(const):
                names.add(const)
    return names


_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+")


def _test_module(module: str) -> bool:
    tail = module.rsplit(".", 1)[-1]
    return tail.startswith("test_") or tail.endswith("_test") or tail == "conftest"


def self_deadlocks(errors: Iterable[BaseException], started: Iterable[Started]
                   ) -> tuple[FrameFact, ...]:
    """Threads of the test (the failing one included) blocked acquiring a plain Lock that an
    outer frame of the same thread already holds: a Lock is not reentrant, so that thread
    waits for itself for ever."""
    stacks = [[frame for frame, _ in _tb_lines(error.__traceback__)][::-1] for error in errors]
    live = sys._current_frames()
    live.pop(threading.get_ident(), None)  # its own frame in a local would make a cycle
    for entry in started:
        thread = entry.ref() if entry.kind == "thread" else None
        if isinstance(thread, threading.Thread) and thread.ident in live:
            stacks.append(list(_stack(live[thread.ident])))
    found = [text for stack in stacks if (text := _waits_for_itself(stack))]
    return tuple(FrameFact("self-deadlock", text) for text in dict.fromkeys(found))


def _waits_for_itself(stack: list[FrameType]) -> str:
    """``stack`` runs innermost first: its innermost user frame waits at ``with X:`` or
    ``X.acquire(`` on a plain Lock that a ``with`` block of an outer frame holds."""
    for index, frame in enumerate(stack):
        if _is_stdlib(frame) or _is_own(frame) or _module(frame).startswith("pytest_timeout"):
            continue  # threading's own frames, or pytest-timeout's handler, sit above the user's
        text = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        wanted = _acquired(text)
        lock = _resolve(wanted, _names(frame)) if wanted else None
        if type(lock) is not _thread.LockType:
            return ""
        for outer in stack[index:]:
            for expression in _holding(outer):
                if _resolve(expression, _names(outer)) is lock:
                    return (f"`{text.split('#', 1)[0].strip()}` in {_where(frame)} waits for "
                            f"{wanted}, which "
                            f"the same thread already holds at `with {expression}:` in "
                            f"{_where(outer)}; a Lock is not reentrant")
        return ""
    return ""


def _exit_checked(frame: FrameType) -> list[FrameFact]:
    """The frame that raised holds a finished child process with a failing exit code: the
    code read the child's result and raised on it (``if p.returncode: raise ...``)."""
    subprocess = sys.modules.get("subprocess")
    if subprocess is None:
        return []
    kinds = (subprocess.Popen, subprocess.CompletedProcess)
    for name, value in list(frame.f_locals.items()):
        code = own(value, "returncode") if isinstance(value, kinds) else None
        if isinstance(code, int) and code != 0:
            return [FrameFact("exit-checked", f"`{name}` in {_where(frame)} exited with "
                                              f"{code}, and the code raised on it")]
    return []


def _names(frame: FrameType) -> dict[str, Any]:
    """What a name in the frame's source means: its locals over its module's globals."""
    return {**frame.f_globals, **frame.f_locals}


def _acquired(text: str) -> str:
    """``self.lock`` of ``with self.lock:`` or ``self.lock.acquire(...)``, else ''."""
    found = _WITH_LOCK.match(text) or _ACQUIRE.match(text)
    return found.group(1) if found else ""


def _holding(frame: FrameType) -> list[str]:
    """The expressions of the ``with`` blocks the frame's current line sits in."""
    return [found.group(1) for _, text in _headers(frame, frame.f_lineno)
            if (found := _WITH_LOCK.match(text))]


_WITH_LOCK = re.compile(r"^\s*with\s+([A-Za-z_][\w.]*)\s*:")
_ACQUIRE = re.compile(r"^.*?([A-Za-z_][\w.]*)\.acquire\(")


def _deadline_raised(frame: FrameType, error: BaseException) -> list[FrameFact]:
    """The frame that raised (not with an assert) is a loop polling a clock, or one that
    tries a fixed number of times with a pause between: it gave up."""
    if isinstance(error, AssertionError):
        return []
    code = frame.f_code
    if _polls_a_clock(code):
        how = "polls until a clock deadline"
    elif _retries_with_pause(code):
        how = "tries a fixed number of times with a pause between"
    else:
        return []
    return [FrameFact("deadline", f"{code.co_name}() {how} "
                                  f"({os.path.basename(code.co_filename)}:"
                                  f"{code.co_firstlineno}), raised {type(error).__name__}")]


def _retries_with_pause(code: CodeType) -> bool:
    """A ``for ... in range(...)`` loop in the function's source with a sleep or a wait."""
    lines = _own_source(code, 60)
    looped = next((i for i, text in enumerate(lines) if _COUNTED_LOOP.search(text)), None)
    return looped is not None and any(_PAUSE.search(text) for text in lines[looped:])


def _capped(facts: list[FrameFact], per_kind: int) -> tuple[FrameFact, ...]:
    """Unique facts, at most ``per_kind`` of each kind (containers abound: they must not
    crowd out a dropped wait or caplog)."""
    counts: dict[str, int] = {}
    kept = []
    for fact in dict.fromkeys(facts):
        counts[fact.kind] = counts.get(fact.kind, 0) + 1
        if counts[fact.kind] <= per_kind:
            kept.append(fact)
    return tuple(kept)


def named_codes(error: BaseException, values: Iterable[float | None]) -> tuple[FrameFact, ...]:
    """The compared whole numbers when each is a named constant of one family (upper-case
    globals sharing a prefix, ``EVENT_JOB_MISSED``/``EVENT_JOB_ERROR``) in a module the
    failure went through: codes the code chose between, not counts."""
    wanted = {int(v) for v in values if v is not None and float(v).is_integer()}
    if len(wanted) < 2:
        return ()
    for space in _namespaces(error):
        numbers = {name: value for name, value in list(space.items())
                   if isinstance(value, int) and not isinstance(value, bool) and name.isupper()}
        names = {value: name for name, value in numbers.items() if int(value) in wanted}
        families = {name.rsplit("_", 1)[0] for name in names.values() if "_" in name}
        family = families.pop() if len(families) == 1 else ""
        # an enumeration has three members or more (two settings sharing a prefix are none)
        members = sum(1 for name in numbers if name.startswith(family + "_")) if family else 0
        if set(names) >= wanted and members >= 3:
            shown = ", ".join(f"{names[v]} = {v}" for v in sorted(wanted))
            return (FrameFact("named-codes", shown),)
    return ()


def _namespaces(error: BaseException) -> Iterator[dict[str, Any]]:
    """The globals of each frame of the failure, then of the modules those frames' code
    imported from (where a constant the test imported is defined with its siblings)."""
    spaces: dict[int, dict[str, Any]] = {}
    for frame, _ in _tb_lines(error.__traceback__):
        spaces.setdefault(id(frame.f_globals), frame.f_globals)
    for space in list(spaces.values()):
        for value in list(space.values()):
            module = value if isinstance(value, ModuleType) else sys.modules.get(
                getattr(value, "__module__", None) or "") if callable(value) else None
            if module is not None and len(spaces) < _MAX_SPACES:
                spaces.setdefault(id(vars(module)), vars(module))
    yield from spaces.values()


_MAX_SPACES = 24


def _tb_lines(tb: TracebackType | None) -> Iterator[tuple[FrameType, int]]:
    """Each frame with the line it failed at: a frame's own f_lineno has moved on to its
    ``finally:`` block by the time the failure is read."""
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _worker_thread(frames: list[FrameType]) -> list[FrameFact]:
    for frame in frames:
        if (_module(frame), frame.f_code.co_name) in _WORKER_RUNS:
            return [FrameFact("worker-thread", f"raised on a worker thread (through "
                                               f"{_module(frame)}.{frame.f_code.co_name})")]
    return []


def _being_built(frames: list[FrameType]) -> frozenset[int]:
    """ids of the objects whose ``__init__`` is on the failing stack: not started yet, so not
    stopped either, whatever a ``closed`` flag set at birth says."""
    return frozenset(id(own_self) for frame in frames if frame.f_code.co_name == "__init__"
                     and (own_self := frame.f_locals.get("self")) is not None)


def _held(frame: FrameType, at: int, building: frozenset[int] = frozenset()
          ) -> list[FrameFact]:
    """Locks, shared containers and generators the raising frame held, directly or as
    attributes of ``self``."""
    facts = [FrameFact("double-at-raise", fact.detail) for fact in _doubles(frame)]
    failing = linecache.getline(frame.f_code.co_filename, at)
    # a `with` block's exit closed what it bound on the failure's way out: closed now, not
    # when the failing line ran
    managed = _enclosing_with(frame, at)
    condition = _deciding_condition(frame, at)
    sockets = sys.modules.get("socket")
    for name, value in _reachable(frame):
        kind = type(value)
        label = f"{kind.__name__} {name} in {_where(frame)}"
        if sockets is not None and kind is sockets.socket:
            facts.append(FrameFact("socket", f"{name} timeout={value.gettimeout()!r}"))
        elif (kind in _LOCKS or _is_python_rlock(kind)) and not _library_part(frame, name):
            facts.append(FrameFact("lock", label))
        elif kind in _CONTAINERS:
            facts.append(FrameFact("container", label))
        elif kind is GeneratorType:
            facts.append(FrameFact("generator", label))
        elif kind is CoroutineType and _from_async_mock(value):
            facts.append(FrameFact("double-at-raise", f"{name} is an un-awaited coroutine an "
                                                      f"AsyncMock returned, in {_where(frame)}"))
        elif kind is threading.Barrier:
            facts.append(FrameFact("barrier", f"{label}: {own(value, '_parties')} parties, "
                                              f"default timeout {own(value, '_timeout')}"))
        if "." in name and _mentions(failing, name):
            what = double_kind(value)  # self.client on the failing line is a double
            if what:
                facts.append(FrameFact("double-at-raise", f"{name} is {what} in "
                                                          f"{_where(frame)}"))
        unset = (_unset_attribute(value, name, condition)
                 or _unset_value(value, name, condition)) if condition else ""
        if unset:
            facts.append(FrameFact("double-decided", f"`{condition}` in {_where(frame)} read "
                                                     f"{unset}"))
        waiting = _queued(value)
        if waiting:
            facts.append(FrameFact("queued", f"{name} ({kind.__name__}) still held {waiting} "
                                             f"item(s) in {_where(frame)}"))
        if _unread_pipe(value):
            facts.append(FrameFact("unread-pipe", f"{name} ({kind.__name__}) had data in its "
                                                  f"pipe that nobody read, in {_where(frame)}"))
        # what a with block or a finally: stopped on the failure's way out was not stopped
        # when the failing line ran
        cleaned_up = name.split(".", 1)[0] in managed
        if not cleaned_up and _cancelled(value):
            facts.append(FrameFact("cancelled", f"{name} ({kind.__name__}) was cancelled "
                                                f"before it ran, in {_where(frame)}"))
        state = closed_state(value) if not cleaned_up and id(value) not in building else ""
        if state:
            facts.append(FrameFact("closed", f"{name} ({kind.__name__}) was {state} in "
                                             f"{_where(frame)}"))
    for name, value in _named_globals(frame, failing):
        state = closed_state(value)
        if state:  # a module's shared connection or pool, closed by whoever closed it
            detail = f"{name} ({type(value).__name__}) was {state} in {_where(frame)}"
            facts += [FrameFact("closed", detail), FrameFact("closed-global", detail)]
    return facts


def _named_globals(frame: FrameType, failing: str) -> Iterator[tuple[str, Any]]:
    """Module globals the failing line uses (``_CONN.execute(...)``), other than modules,
    classes and functions."""
    local = frame.f_locals
    for name in frame.f_code.co_names[:60]:
        if name in local or not _mentions(failing, name):
            continue
        value = frame.f_globals.get(name)
        if value is not None and not isinstance(value, (ModuleType, type, FunctionType,
                                                        BuiltinFunctionType)):
            yield name, value


def _queued(value: Any) -> int:
    """Items waiting in a queue.Queue (its own deque, read without its lock), else 0."""
    if type(value).__module__ != "queue" or not isinstance(own(value, "queue"), deque):
        return 0
    return len(own(value, "queue"))


def _unread_pipe(value: Any) -> bool:
    """A multiprocessing queue with items put and never taken: in its pipe (polled, which
    reads nothing) or still in its feeder's buffer."""
    if type(value).__module__ != "multiprocessing.queues":
        return False
    buffered = own(value, "_buffer")
    if isinstance(buffered, deque) and buffered:
        return True
    reader = own(value, "_reader")
    try:
        return reader is not None and not reader.closed and bool(reader.poll())
    except (OSError, ValueError):  # closed under us
        return False


def _cancelled(value: Any) -> bool:
    """A concurrent.futures or asyncio future that was cancelled (a shutdown with
    cancel_futures, or cancel()), read from its own state."""
    kind = type(value)
    if str(class_attr(kind, "__module__") or "") not in _FUTURE_MODULES:
        return False
    state = own(value, "_state")
    return state in ("CANCELLED", "CANCELLED_AND_NOTIFIED") or (
        kind.__module__ == "_asyncio" and callable(class_attr(kind, "cancelled"))
        and value.cancelled())


_FUTURE_MODULES = frozenset({"concurrent.futures._base", "_asyncio", "asyncio.futures",
                             "asyncio.tasks"})


def _from_async_mock(coroutine: CoroutineType[Any, Any, Any]) -> bool:
    code = coroutine.cr_code
    return code.co_name == "_execute_mock_call" and code.co_filename.endswith(
        os.path.join("unittest", "mock.py"))


def _enclosing_with(frame: FrameType, at: int) -> set[str]:
    """Names bound by the `with` blocks the failing line sits in, and names the `finally:`
    of a `try` it sits in uses: their exit and cleanup ran on the failure's way out. A block
    that had ended before the line ran closed its object then."""
    names: set[str] = set()
    for indent, text in _headers(frame, at):
        names.update(_WITH_AS.findall(text))
        if text.strip() == "try:":
            names.update(_finally_names(frame, at, indent))
    return names


def _headers(frame: FrameType, at: int) -> Iterator[tuple[int, str]]:
    """(indentation, text) of each block header line ``at`` sits in, innermost first: the
    first line above it indented less, then the first above that indented less again."""
    failing = linecache.getline(frame.f_code.co_filename, at)
    depth = len(failing) - len(failing.lstrip())
    for _, text in reversed(list(_lines_before(frame, at))):
        indent = len(text) - len(text.lstrip())
        if text.strip() and indent < depth:
            yield indent, text
            depth = indent


def _finally_names(frame: FrameType, at: int, indent: int) -> set[str]:
    """Objects (``conn`` of ``conn.close()``) the `finally:` of the `try` at ``indent``
    uses, reading on from the failing line."""
    body: list[str] = []
    inside = False
    for lineno in range(at + 1, at + _AHEAD):
        text = linecache.getline(frame.f_code.co_filename, lineno)
        if not text:
            break
        if not text.strip():
            continue
        level = len(text) - len(text.lstrip())
        if inside and level <= indent:
            break
        if level < indent:
            break
        if level == indent:
            inside = text.strip().startswith("finally")
            body.append(text.split(":", 1)[1] if inside else "")
        elif inside:
            body.append(text)
    return set(_USED.findall("\n".join(body)))


_AHEAD = 200  # lines read past the failing one for its `finally:`
_USED = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\.")


def _deciding_condition(frame: FrameType, at: int) -> str:
    """What decided the failure from the failing line's source: the ``if``/``elif``
    condition a ``raise`` sits under, or the right side of a failing unpacking
    (``out, err = proc.communicate()``); else ''."""
    failing = linecache.getline(frame.f_code.co_filename, at)
    unpacked = _UNPACKING.match(failing)
    if unpacked:
        return unpacked.group(1).strip()
    if not failing.lstrip().startswith("raise"):
        return ""
    for _, text in _headers(frame, at):
        found = _CONDITION.match(text)
        return found.group(1).strip() if found else ""
    return ""


_CONDITION = re.compile(r"^\s*(?:if|elif)\s+(.+?):\s*(?:#.*)?$")
_UNPACKING = re.compile(r"^\s*\(?\s*\w+\s*,[\w\s,*]*\)?\s*=\s*([^=].*?)\s*(?:#.*)?$")


def _unset_attribute(double: Any, name: str, condition: str) -> str:
    """'self.sock.closed, an attribute the Mock made itself (...)': an attribute of a
    unittest.mock double that ``condition`` reads, or a method it calls, that nobody set up,
    so the double answered with a child Mock, which is true as a condition (the real
    object's flag or ``is_alive()`` was False)."""
    made_by = mock_module(type(double))
    children = own(double, "_mock_children") if made_by is not None else None
    if made_by is None or type(children) is not dict:
        return ""
    for attr, child in children.items():
        read = re.search(rf"(?<![\w.]){re.escape(name)}\.{re.escape(attr)}\b(\s*\()?",
                         condition)
        if read is None or mock_module(type(child)) is not made_by \
                or own(child, "_mock_side_effect") is not None \
                or own(child, "_mock_wraps") is not None:
            continue
        if read.group(1) is None and own(child, "_mock_return_value") is made_by.get("DEFAULT"):
            return (f"{name}.{attr}, an attribute {double_kind(double)} made itself (a Mock: "
                    f"true, equal to no real value, empty when iterated)")
        if read.group(1) is not None and own(child, "_mock_called") is True \
                and not _set_up(child):
            return (f"{name}.{attr}(), a call {double_kind(double)} answered with a Mock of "
                    f"its own (true, equal to no real value, empty when iterated)")
    return ""


def _unset_value(double: Any, name: str, condition: str) -> str:
    """'chunk, a MagicMock that sock.recv() gave (...)': a value ``condition`` reads itself
    (``len(chunk) == 0``, ``not reply``) that a unittest.mock double handed the code on its
    own, as the return value or attribute nobody set up: its len() is 0, it is true and
    equal to no real value, so the code decided on the double's default."""
    made_by = mock_module(type(double))
    if made_by is None or "." in name or re.search(
            rf"(?<![\w.]){re.escape(name)}(?![\w.(\[])", condition) is None:
        return ""
    parent = own(double, "_mock_new_parent")
    if parent is None or mock_module(type(parent)) is not made_by:
        return ""  # made by the test itself, not handed out by another double
    extract = class_attr(type(double), "_extract_mock_name")
    origin = extract(double) if callable(extract) else "the double"
    return (f"{name}, {double_kind(double)} that {origin} gave on its own (nobody set it up: "
            f"its len() is 0, it is true and equal to no real value)")


def closed_state(value: Any) -> str:
    """'closed' / 'shut down' when ``value`` is a resource that has been closed or shut down
    (a file, socket, pipe end, queue, database connection, executor, pool, event loop), read
    from its own state, else ''."""
    kind = type(value)
    module = str(class_attr(kind, "__module__") or "")
    if module.split(".", 1)[0] not in _RESOURCE_MODULES:
        attributes = own(value, "__dict__")  # a project's own resource: its plain flags only
        flags = attributes if type(attributes) is dict else {}
        return "closed" if flags.get("closed") is True or flags.get("_closed") is True else ""
    if module in ("_asyncio", "asyncio.futures", "asyncio.tasks") and callable(
            class_attr(kind, "get_loop")):
        # a future left pending on a loop that has closed can never get its result
        try:
            stranded = not value.done() and value.get_loop().is_closed()
        except Exception:  # a subclass with a get_loop of its own
            return ""
        return "left pending on a closed event loop" if stranded else ""
    if _is_connection(value):
        # a closed connection refuses every read of its state
        return "closed" if own(value, "total_changes") is None else ""
    if own(value, "_shutdown") is True or own(value, "_shutdown_thread") is True:
        return "shut down"
    if module == "multiprocessing.pool" and own(value, "_state") not in (None, "RUN"):
        return "shut down"
    for flag in ("closed", "_closed"):
        if own(value, flag) is True:
            return "closed"
    return ""


#: modules whose resources' state is read through their own attributes (properties included)
_RESOURCE_MODULES = frozenset({"_io", "io", "socket", "_socket", "ssl", "sqlite3", "_asyncio",
                               "multiprocessing", "concurrent", "asyncio", "selectors",
                               "subprocess"})


def _reads(frame: FrameType, root: str) -> list[FrameFact]:
    """The names and string constants of the code on the failing path: each user frame's
    function and the project functions it calls by name (one level), as
    ``qualname: token token ...``; what an earlier test changed can be looked up in them."""
    code = frame.f_code
    codes = [(getattr(code, "co_qualname", code.co_name), code)]
    names = code.co_names
    local = dict(frame.f_locals)
    for name in names[:40]:
        codes += _project_code(frame.f_globals.get(name), names, root)
    for value in list(local.values())[:20]:  # methods the frame calls on its project objects
        codes += _methods(value, names, root)
    return [FrameFact("reads", f"{label}: {' '.join(_tokens(each))}")
            for label, each in codes[:8]]


def _project_code(value: Any, names: tuple[str, ...], root: str
                  ) -> list[tuple[str, CodeType]]:
    """(qualified name, code) of functions under ``root`` that ``value`` (a function, or a
    module whose attribute ``names`` mentions) holds. The name is the function's: code
    objects carry it only from Python 3.11 on."""
    if type(value) is FunctionType:
        code = own(value, "__code__")
        if not isinstance(code, CodeType) or not code.co_filename.startswith(root):
            return []
        label = own(value, "__qualname__")
        return [(label if isinstance(label, str) else code.co_name, code)]
    if type(value) is ModuleType:
        members = own(value, "__dict__") or {}
        found = []
        for name in names:
            member = members.get(name) if isinstance(members, dict) else None
            if type(member) is FunctionType:
                found += _project_code(member, (), root)
        return found[:4]
    return []


def _methods(value: Any, names: tuple[str, ...], root: str) -> list[tuple[str, CodeType]]:
    members = class_attr(type(value), "__dict__")
    found: list[tuple[str, CodeType]] = []
    if members is None:
        return found
    for name in names:
        member = members.get(name)
        if type(member) is FunctionType:
            found += _project_code(member, (), root)
    return found[:4]


def _tokens(code: CodeType) -> list[str]:
    # comprehensions and lambdas are code objects of their own, run as part of this one
    inner = [c for c in code.co_consts if type(c) is CodeType]
    words: set[str] = set()
    for each in (code, *inner):
        words |= {c for c in each.co_consts if type(c) is str and _TOKEN.fullmatch(c)}
        words |= set(each.co_names)
    return sorted(words)[:_MAX_TOKENS]


def _modules(frame: FrameType) -> list[FrameFact]:
    """Modules of the project the raising frame used, with the file each was loaded from."""
    names = set(frame.f_code.co_names) | set(frame.f_code.co_varnames)
    scopes = (dict(frame.f_locals), frame.f_globals)
    found = {}
    for name in names:
        value = next((scope[name] for scope in scopes if name in scope), None)
        if type(value) is ModuleType:
            path = (own(value, "__dict__") or {}).get("__file__")
            if isinstance(path, str) and not path.startswith(_STDLIB) and \
                    "site-packages" not in path:
                found[name] = path
    return [FrameFact("module", f"{name} {path}") for name, path in sorted(found.items())]


def _test_frame(frame: FrameType, lineno: int, ran_out: RanOut = ()) -> list[FrameFact]:
    """caplog in use, and an Event left unset after a wait whose result was dropped."""
    facts = []
    local = dict(frame.f_locals)
    for name, value in local.items():
        kind = type(value)
        if kind.__name__ == "LogCaptureFixture" and class_attr(kind, "__module__") == \
                "_pytest.logging":
            facts.append(FrameFact("caplog", f"{name} in {_where(frame)}"))
    return facts + _dropped_waits(frame, local, lineno, ran_out) + \
        _bounded_waits(frame, local, lineno) + _read_before_join(frame, local, lineno)


def _bounded_waits(frame: FrameType, local: dict[str, Any], at: int) -> list[FrameFact]:
    """A wait with a timeout on a live synchronisation or I/O object (a lock, event,
    condition, semaphore, thread, pipe end, selector) whose result the failing line asserted,
    directly (``assert lock.acquire(timeout=1)``), through the name it was stored in
    (``ok = sem.acquire(timeout=1)`` ... ``assert ok``) or through the object it waited on
    (``t.join(2)`` ... ``assert not t.is_alive()``): the wait ran out."""
    failing = linecache.getline(frame.f_code.co_filename, at)
    if not failing.lstrip().startswith("assert"):
        return []
    lines = [*list(_lines_before(frame, at))[-_WAIT_LOOKBACK:], (at, failing)]
    for lineno, text in reversed(lines):
        for match in _TIMED_CALL.finditer(text):
            obj = _resolve(match["obj"], local)
            seconds = _timeout_arg(match["method"], match["args"])
            if seconds is None or not _waitable(obj):
                continue
            stored = _STORED.match(text)
            if stored is not None and lineno != at:
                # the stored result says whether it ran out: True, a non-empty list, a
                # permit... means it did not
                linked = _mentions(failing, stored["name"]) and not local.get(stored["name"])
            else:
                # the assert that failed checks the object waited on (a thread's is_alive()
                # after join): its state now may be a `finally:` block's doing, not the wait's
                linked = lineno == at or _mentions(failing, match["obj"])
            if linked:
                call = f"{match['obj']}.{match['method']}({match['args'].strip()})"
                return [FrameFact("bounded-wait", f"`{call}` at line {lineno} waited "
                                                  f"{seconds:g} s on a {type(obj).__name__} "
                                                  f"and ran out")]
        if lineno != at:
            found = _wait_one_call_deep(text, lineno, frame, local, failing)
            if found:
                return found
    return []


def _wait_one_call_deep(text: str, lineno: int, frame: FrameType, local: dict[str, Any],
                        failing: str) -> list[FrameFact]:
    """``worker.stop(timeout=0.1)`` ... ``assert not worker.thread.is_alive()``: a method of
    an object the assert checks returns after a timed wait on that object's own thread,
    lock or event (``self.thread.join(timeout)``)."""
    for name, code, receiver in _called_code(text, frame, local):
        owner = name.rpartition(".")[0]
        if not owner or receiver is None or not _mentions(failing, owner):
            continue
        wait, on = _timed_wait_in(code, receiver)
        if wait and on:
            return [FrameFact("bounded-call", f"`{text.strip()}` at line {lineno} returns "
                                              f"after `{wait}`{on}, and the assert checks "
                                              f"{owner} afterwards")]
    return []


def _timeout_arg(method: str, args: str) -> float | None:
    keyword = re.search(r"\btimeout\s*=\s*([0-9]*\.?[0-9]+)", args)
    if keyword:
        return float(keyword.group(1))
    if method in _KEYWORD_ONLY:
        return None  # d.get(key, 0.5) is no wait: only timeout= says it is one
    parts = [part.strip() for part in args.split(",")]
    # wait(t), join(t), poll(t), select(t) take the timeout first; acquire(blocking, t) and
    # wait_for(awaitable, t) second
    index = 1 if method in ("acquire", "wait_for") else 0
    if index < len(parts) and re.fullmatch(r"[0-9]*\.?[0-9]+", parts[index]):
        return float(parts[index])
    return None


def _waitable(obj: Any) -> bool:
    module = str(class_attr(type(obj), "__module__") or "")
    return module.split(".", 1)[0] in _WAIT_MODULES or type(obj) in _LOCKS


def _mentions(source: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", source) is not None


def _read_before_join(frame: FrameType, local: dict[str, Any], at: int) -> list[FrameFact]:
    """The value the failing assert checks was stored before a later line joined the
    test's threads or processes (``seen = len(results)`` ... ``t.join()`` ... ``assert seen
    == 6``): it was taken while they may still have been at work, so that they have all
    finished now says nothing about when it was read. Only a value that cannot change
    (a number, a string, a tuple) was fixed when it was stored: a list or a shared counter
    the workers fill is read at the assert. Only the measured side counts, the left one (an
    expected ``n * 100`` worked out before the workers started is no reading of theirs), and
    a value compared with itself (``assert snap["records"] == 10 * snap["batches"]``) is a
    check of one snapshot's consistency, whenever it was taken."""
    failing = linecache.getline(frame.f_code.co_filename, at)
    if not failing.lstrip().startswith("assert"):
        return []
    sides = _COMPARED.split(failing.split("#", 1)[0].split(",", 1)[0], maxsplit=1)
    if len(sides) != 2:
        return []
    lines = list(_lines_before(frame, at))
    for index in range(len(lines) - 1, -1, -1):
        lineno, text = lines[index]
        stored = _STORED.match(text)
        if stored is None or not _mentions(failing, stored["name"]):
            continue
        if type(local.get(stored["name"])) not in _FIXED or not _mentions(sides[0], stored[
                "name"]) or _mentions(sides[1], stored["name"]):
            return []
        for joined_at, later in lines[index + 1:]:
            join = _JOINED.search(later)
            if join is not None and _joinable(_resolve(join["obj"], local)):
                return [FrameFact("read-before-join",
                                  f"`{text.strip()}` at line {lineno} was read before "
                                  f"`{later.strip()}` at line {joined_at} waited for the "
                                  f"workers")]
        return []  # the last store of a name it checks came after every join
    return []


_JOINED = re.compile(r"(?P<obj>[A-Za-z_][\w.]*)\.join\(")
_COMPARED = re.compile(r"==|!=|<=|>=|<|>")
#: values that stay what they were when stored
_FIXED = frozenset({int, float, str, bytes, bool, tuple, frozenset, type(None)})


def _taken_before_a_join(lines: list[tuple[int, str]], local: dict[str, Any],
                         measured: str) -> bool:
    """No line joins the test's workers, or a name of the assert's measured side is stored
    before the first that does."""
    for _, text in lines:
        join = _JOINED.search(text)
        if join is not None and _joinable(_resolve(join["obj"], local)):
            return False
        stored = _STORED.match(text)
        if stored is not None and _mentions(measured, stored["name"]):
            return True
    return True


def _joinable(obj: Any) -> bool:
    """A thread or a multiprocessing process: what a join() waits to end."""
    if isinstance(obj, threading.Thread):
        return True
    process = sys.modules.get("multiprocessing.process")
    return process is not None and isinstance(obj, process.BaseProcess)


def _dropped_waits(frame: FrameType, local: dict[str, Any], at: int,
                   ran_out: RanOut = ()) -> list[FrameFact]:
    """A wait whose result the frame dropped, on an Event still unset now, or seen to run
    out there although the event was set later ("ran-out-wait"), unless a later line joined
    the workers before the assert's measured value was taken (a wait that only paced the
    test, whose assert then read their finished work)."""
    facts = []
    seen = {place[0] for place in ran_out if place}
    before = list(_lines_before(frame, at))
    failing = linecache.getline(frame.f_code.co_filename, at)
    measured = _COMPARED.split(failing.split("#", 1)[0], maxsplit=1)[0]
    for index, (lineno, text) in enumerate(before):
        match = _BARE_WAIT.match(text)
        if match is None:
            continue
        event = _resolve(match.group(1), local)
        if not _taken_before_a_join(before[index + 1:], local, measured):
            continue
        if type(event) is threading.Event and not event.is_set():
            facts.append(FrameFact("dropped-wait", f"`{text.strip()}` at line {lineno} "
                                                   f"returned False and the test went on"))
        elif (frame.f_code, lineno) in seen:
            facts.append(FrameFact("ran-out-wait", f"`{text.strip()}` at line {lineno} ran "
                                                   f"out and the test went on (what it waited "
                                                   f"for came only later)"))
    return facts[:2]


def _deadline_looped(frame: FrameType, error: BaseException, at: int) -> list[FrameFact]:
    """The assert that failed comes after a loop of its own frame that polled a clock: the
    loop gave up at its deadline, and the assert then found what had not arrived yet."""
    code = frame.f_code
    if not isinstance(error, AssertionError) or \
            not {"monotonic", "time", "perf_counter"} & set(code.co_names):
        return []
    own = {line for _, _, line in code.co_lines()}  # not a nested function's loop
    before = list(_lines_before(frame, at))
    loop = next((lineno for index, (lineno, text) in enumerate(before)
                 if lineno in own and _CLOCK_LOOP.search(text)
                 and _waits_in_body(before[index:])), None)
    if loop is None:
        return []
    return [FrameFact("deadline", f"{code.co_name}() polls until a clock deadline "
                                  f"({os.path.basename(code.co_filename)}:{loop}) before "
                                  f"the assert")]


def _waits_in_body(lines: list[tuple[int, str]]) -> bool:
    """The loop that starts the list waits in its body (a timed get or wait, a sleep): it
    polls for something to arrive, rather than working until the time is up (a throughput
    window, which an expectation reads)."""
    header = lines[0][1]
    indent = len(header) - len(header.lstrip())
    for _, text in lines[1:]:
        if not text.strip():
            continue
        if len(text) - len(text.lstrip()) <= indent:
            return False
        if _TIMED_CALL.search(text) or "sleep(" in text:
            return True
    return False


def _polling_calls(frame: FrameType, local: dict[str, Any], at: int,
                   ran_out: RanOut = ()) -> list[FrameFact]:
    line = linecache.getline(frame.f_code.co_filename, at)
    calls = [*_called_code(line, frame, local)]
    if line.lstrip().startswith("assert"):
        # ``result = crawl(budget=0.2)`` ... ``assert result.missing == []``: the call whose
        # result the assert reads may sit a few lines above it
        for _, text in list(_lines_before(frame, at))[-_WAIT_LOOKBACK:]:
            stored = _STORED.match(text)
            if stored is not None and _mentions(line, stored["name"]):
                calls += _called_code(text, frame, local)
    facts = []
    for name, code, receiver in calls:
        place = f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"
        if _polls_a_clock(code):
            facts.append(FrameFact("deadline", f"{name}() polls until a clock deadline "
                                               f"({place})"))
            continue
        wait, on = _timed_wait_in(code, receiver)
        gave_up = _ran_out_under(code, ran_out)
        if gave_up is not None:
            inner, lineno = gave_up
            if inner is not code or not wait:  # in a function it called: that line
                wait, on = linecache.getline(inner.co_filename, lineno).strip(), ""
            facts.append(FrameFact("ran-out-call", f"{name}() ({place}) returned after a wait "
                                                   f"with a timeout in it ran out "
                                                   f"({os.path.basename(inner.co_filename)}:"
                                                   f"{lineno}): `{wait}`{on}"))
        elif wait:
            facts.append(FrameFact("timed-call", f"{name}() ({place}) returns after a wait "
                                                 f"with a timeout: `{wait}`{on}"))
    return facts


def _ran_out_under(code: CodeType, ran_out: RanOut) -> tuple[CodeType, int] | None:
    """(code, line) where a wait ran out while ``code`` was running on the test's thread (in
    it, or in a function it called), else None."""
    return next((place[0] for place in ran_out if any(outer is code for outer, _ in place)),
                None)


def _called_code(line: str, frame: FrameType, local: dict[str, Any]
                 ) -> Iterator[tuple[str, CodeType, Any]]:
    """Code of the plain functions and of the methods of live objects the line calls, with
    the object a method was called on."""
    for name in _CALLED.findall(line):
        func = local.get(name, frame.f_globals.get(name))
        code = own(func, "__code__") if type(func) is FunctionType else None
        if isinstance(code, CodeType):
            yield name, code, None
    for cls_name, method in _CTOR_METHOD.findall(line):  # Crawler(fetch).crawl(...)
        cls = local.get(cls_name, frame.f_globals.get(cls_name))
        code = _method_code(cls if isinstance(cls, type) else None, method)
        if code is not None:
            yield f"{cls_name}(...).{method}", code, None
    for dotted, method in _METHOD_CALL.findall(line):
        obj = _resolve(dotted, {**frame.f_globals, **local})
        code = _method_code(type(obj) if obj is not None else None, method)
        if code is not None:
            yield f"{dotted}.{method}", code, obj


def _method_code(kind: type | None, method: str) -> CodeType | None:
    """The code of ``kind.method`` when it is a plain function outside the standard library."""
    func = class_attr(kind, method) if kind is not None else None
    code = own(func, "__code__") if type(func) is FunctionType else None
    return code if isinstance(code, CodeType) and not code.co_filename.startswith(_STDLIB) \
        else None


def _timed_wait_in(code: CodeType, receiver: Any = None) -> tuple[str, str]:
    """The first wait with a timeout in the function's own source, as written, and what it
    waits on when that is an attribute of ``receiver`` (``self.cond``): ' on a Condition'."""
    for text in _own_source(code, 81):
        match = _TIMED_CALL.search(text)
        if match and (_timeout_arg(match["method"], match["args"]) is not None
                      or "timeout" in match["args"] or _second_arg(match)):
            head, _, rest = match["obj"].partition(".")
            target = _resolve(f"_.{rest}", {"_": receiver}) if head == "self" and rest else None
            on = f" on a {type(target).__name__}" if _waitable(target) else ""
            return match.group(0).strip(), on
    return "", ""


def _second_arg(match: re.Match[str]) -> bool:
    """``asyncio.wait_for(job(), limit)``: a bound given by name, as its second argument."""
    return match["method"] == "wait_for" and match["args"].count(",") >= 1


#: methods that take a timeout only as ``timeout=`` (their second positional is a default)
_KEYWORD_ONLY = frozenset({"get", "result"})


def _polls_a_clock(code: CodeType) -> bool:
    """A loop in the function's source whose condition reads a clock."""
    lines = _own_source(code, 60)
    return any(_CLOCK_LOOP.search(text) for text in lines) and \
        bool({"monotonic", "time", "perf_counter"} & set(code.co_names))


def _own_source(code: CodeType, limit: int) -> list[str]:
    """The source lines of the function itself, at most ``limit``: never the functions that
    follow it in the file."""
    last = max((end for *_, end in code.co_lines() if end is not None),
               default=code.co_firstlineno)
    first = code.co_firstlineno
    return [linecache.getline(code.co_filename, lineno)
            for lineno in range(first, min(last, first + limit - 1) + 1)]


def _lines_before(frame: FrameType, at: int) -> Iterator[tuple[int, str]]:
    first = frame.f_code.co_firstlineno
    for lineno in range(first, min(at, first + 200)):
        yield lineno, linecache.getline(frame.f_code.co_filename, lineno)


def _resolve(dotted: str, local: dict[str, Any]) -> Any:
    head, *rest = dotted.split(".")
    value = local.get(head)
    for part in rest:
        inner = own(value, "__dict__")
        value = inner.get(part) if type(inner) is dict else None
    return value


def _is_python_rlock(kind: type) -> bool:
    return kind.__module__ == "threading" and kind.__name__ == "_RLock"


def _reachable(frame: FrameType) -> Iterator[tuple[str, Any]]:
    local = {k: v for k, v in dict(frame.f_locals).items() if not k.startswith("@py")}
    for name, value in local.items():
        yield name, value
        plain = class_attr(type(value), "__module__") != "builtins"
        attributes = own(value, "__dict__") if plain else None
        if type(attributes) is dict:  # one level into the frame's objects: self._lock
            for attr, inner in list(attributes.items())[:50]:
                if type(attr) is str:
                    yield f"{name}.{attr}", inner


def _library_part(frame: FrameType, name: str) -> bool:
    """``name`` is an attribute of a standard-library object (``q.mutex`` of a Queue, an
    Event's condition): that library takes and gives back its own locks inside each call, so
    the frame holding the object does not hold them."""
    owner, dot, _ = name.partition(".")
    if not dot:
        return False
    defined_in = class_attr(type(frame.f_locals.get(owner)), "__module__")
    module = sys.modules.get(defined_in) if isinstance(defined_in, str) else None
    if module is None:
        return False
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):  # built into the interpreter
        return defined_in.partition(".")[0] in sys.stdlib_module_names
    # by where it lives, not by name: a project's own ``test`` package is not the stdlib's
    return _in_stdlib(path)


def _doubles(frame: FrameType) -> list[FrameFact]:
    facts = []
    for name, value in dict(frame.f_locals).items():
        what = double_kind(value) if not name.startswith("@py") else ""
        if what:
            facts.append(FrameFact("double", f"{name} is {what} in {_where(frame)}"))
            mismatch = _set_up_elsewhere(value)
            if mismatch:
                facts.append(FrameFact("double-mismatch", f"{name} {mismatch}"))
    return facts


def _sqlite_locked(error: BaseException) -> bool:
    kind = type(error)
    return kind.__module__ == "sqlite3" and kind.__name__ == "OperationalError" \
        and "locked" in str(error)


def _held_transaction(frames: list[FrameType], lines: dict[FrameType, int]) -> list[FrameFact]:
    """An outer frame of the failure sat in ``with conn:`` (a SQLite transaction) on another
    connection than the one that waited for the write lock: the thread held the lock while
    it waited for work that needed it."""
    raising = frames[-1]
    called = _EXECUTES.findall(linecache.getline(raising.f_code.co_filename, lines[raising]))
    used = [_resolve(name, _names(raising)) for name in called] or \
        list(dict(raising.f_locals).values())
    waiting = {id(value) for value in used if _is_connection(value)}
    for frame in frames[:-1]:
        for _, text in _headers(frame, lines[frame]):
            found = _WITH_LOCK.match(text)
            held = _resolve(found.group(1), _names(frame)) if found else None
            if _is_connection(held) and id(held) not in waiting:
                # the traceback's line: a thread that raised it may have moved on since
                waiter = (f"{raising.f_code.co_name} "
                          f"({os.path.basename(raising.f_code.co_filename)}:{lines[raising]})")
                return [FrameFact("holds-transaction",
                                  f"`{text.strip()}` in {_where(frame)} held a write "
                                  f"transaction while {waiter} waited for the lock on another "
                                  f"connection")]
    return []


#: the connection a line uses to write: ``conn.execute(`` or ``self.db.commit(``
_EXECUTES = re.compile(r"([A-Za-z_][\w.]*)\.(?:execute|executemany|executescript|commit)\(")


def _is_connection(value: object) -> bool:
    kind = type(value)
    return kind.__module__ == "sqlite3" and kind.__name__ == "Connection"


def none_looked_up(error: BaseException) -> bool:
    """An attribute was looked up on None (the interpreter's own AttributeError names it)."""
    return type(error) is AttributeError and bool(getattr(error, "name", None)) \
        and getattr(error, "obj", True) is None


def closed_elsewhere(errors: Iterable[BaseException], root: str,
                     closed: list[tuple[object, int, str, float,
                                        dict[int, frozenset[CodeType]]]],
                     raised_on: Callable[[BaseException], tuple[int, str, float] | None]
                     ) -> tuple[FrameFact, ...]:
    """A socket or pool that a frame of the failure held (or held through one attribute) was
    closed by another of the test's threads while the thread that then failed was already
    in a function of its traceback, before it failed (not by a `with` or `finally:` on the
    failure's way out)."""
    if not closed:
        return ()
    by_id = {id(entry[0]): entry for entry in closed}
    for error in errors:
        if type(error) not in _REFUSED_CLOSED:
            continue  # how a closed socket or loop, a shut-down pool, a killed child refuse
        failing = _failing_thread(error, raised_on)
        if failing is None:
            continue
        walked = list(_tb_lines(error.__traceback__))
        codes = {frame.f_code for frame, _ in walked if _is_user(frame, root)}
        for frame, at in reversed(walked):
            if not _is_user(frame, root):
                continue
            managed = _enclosing_with(frame, at)  # closed on the failure's way out
            for path, value in _reachable(frame):
                found = by_id.get(id(value))
                # the failing thread was already in a function of its traceback (past the
                # test's own) when the other closed it: that use was under way
                if found is None or found[0] is not value or found[3] > failing[2] \
                        or not codes & found[4].get(failing[0], frozenset()) \
                        or path.split(".", 1)[0] in managed:
                    continue
                state = "shut down" if hasattr(type(value), "submit") else "stopped" \
                    if hasattr(type(value), "send_signal") or hasattr(type(value), "exitcode") \
                    else "closed"
                return (FrameFact("closed-elsewhere",
                                  f"{path} ({type(value).__name__}) was {state} by thread "
                                  f"'{found[2]}' while thread '{failing[1]}' was using it, in "
                                  f"{_where(frame)}"),)
    return ()


#: what a closed socket, file or loop, a shut-down pool or a killed child's pipe raises
_REFUSED_CLOSED = (OSError, ValueError, RuntimeError, BrokenPipeError, ConnectionResetError,
                   EOFError)


def _failing_thread(error: BaseException,
                    raised_on: Callable[[BaseException], tuple[int, str, float] | None]
                    ) -> tuple[int, str, float] | None:
    """(ident, name, by when) of the thread that raised ``error``: a pool task's or a dying
    thread's, as recorded, or this one's when no thread's own run() is in its traceback; None
    when unknown (a thread the test did not start)."""
    recorded = raised_on(error)
    if recorded is not None:
        return recorded
    if any(_module(frame) == "threading" and frame.f_code.co_name in ("run", "_bootstrap_inner")
           for frame, _ in _tb_lines(error.__traceback__)):
        return None
    return threading.get_ident(), threading.current_thread().name, float("inf")


def none_from_patch(errors: Iterable[BaseException], root: str,
                    patched: list[tuple[object, str]]) -> tuple[FrameFact, ...]:
    """The code of a class (or module) whose method the test patched to return None looked an
    attribute up on None: the double's None went where the real method's object belongs."""
    if not patched:
        return ()
    for error in errors:
        if not none_looked_up(error):
            continue
        for frame, _ in _tb_lines(error.__traceback__):
            if not _is_user(frame, root):
                continue
            owner = frame.f_locals.get("self")
            for target, attribute in patched:
                if (isinstance(target, type) and isinstance(owner, target)) \
                        or (isinstance(target, ModuleType) and frame.f_globals is vars(target)):
                    name = getattr(target, "__name__", "?")
                    return (FrameFact("none-from-double",
                                      f"{name}.{attribute} was patched to return None, and "
                                      f"{_where(frame)} looked up "
                                      f".{getattr(error, 'name', '')} on None"),)
    return ()


def _returned_nothing(frames: list[FrameType]) -> list[FrameFact]:
    """A method of a test-defined double that the failing frame called returns nothing: the
    None it gave is what the code then used as a result."""
    for frame in reversed(frames):
        called = _all_names(frame.f_code)
        for name, value in dict(frame.f_locals).items():
            if not double_kind(value).startswith("a test-defined"):
                continue
            for method in sorted(called & set(vars(type(value)))):
                function = vars(type(value))[method]
                if isinstance(function, FunctionType) and _returns_nothing(function):
                    return [FrameFact("none-from-double",
                                      f"{name}.{method}() of the test-defined "
                                      f"{type(value).__name__} returns nothing, and "
                                      f"{_where(frame)} used what it returned")]
    return []


def _all_names(code: CodeType) -> set[str]:
    """The names the code and its comprehensions and inner functions use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _all_names(const)
    return names


def _returns_nothing(function: FunctionType) -> bool:
    """No ``return <value>`` or ``yield`` in the function's source (one in a function nested
    in it counts too: that can only make the answer no)."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    return not any((isinstance(node, ast.Return) and node.value is not None)
                   or isinstance(node, (ast.Yield, ast.YieldFrom)) for node in ast.walk(tree))


def _set_up_elsewhere(double: Any) -> str:
    """A Mock whose set-up method the code never called while it called another that nobody
    set up: '' or 'was set up for upload(), never called; the code called post(), which was
    not set up'. Read from the mock's own records, never through its attributes."""
    children = own(double, "_mock_children")
    if type(children) is not dict:
        return ""
    unused = [name for name, child in children.items() if _set_up(child)
              and own(child, "_mock_called") is False]
    unset = [name for name, child in children.items() if own(child, "_mock_called") is True
             and not _set_up(child)]
    if not unused or not unset:
        return ""
    return (f"was set up for {unused[0]}(), which the code never called; the code called "
            f"{unset[0]}(), which was not set up")


def _set_up(child: Any) -> bool:
    """The test gave this mock method a side effect or a return value of its own (a value,
    or a Mock it put attributes on)."""
    made_by = mock_module(type(child))
    if made_by is None:
        return False
    if own(child, "_mock_side_effect") is not None:
        return True
    value = own(child, "_mock_return_value")
    if value is made_by.get("DEFAULT"):
        return False
    if mock_module(type(value)) is None:
        return True
    attributes = own(value, "__dict__")
    return type(attributes) is dict and any(
        not key.startswith("_") and key != "method_calls" for key in attributes)


def double_kind(value: object) -> str:
    """'a Mock' / 'a test-defined FakeClock' / '' -- judged by its class alone."""
    kind = type(value)
    if mock_module(kind) is not None:
        return f"a {kind.__name__}"
    module = str(class_attr(kind, "__module__") or "")
    name = kind.__name__
    tail = module.rsplit(".", 1)[-1]
    if tail.startswith("test_") or tail.endswith("_test") or tail == "conftest":
        return "" if _test_class(kind) else f"a test-defined {name}"
    if any(word in name.lower() for word in _DOUBLE_WORDS) and kind.__module__ != "builtins":
        return f"a {name}"
    return ""


def _test_class(kind: type) -> bool:
    """The running test's own class: a unittest.TestCase, or a class pytest collects (named
    Test..., no ``__init__`` of its own). Its instance, ``self`` in the test, is no double."""
    if any(base.__name__ == "TestCase" and base.__module__ == "unittest.case"
           for base in class_attr(kind, "__mro__") or ()):
        return True
    return kind.__name__.startswith("Test") and class_attr(kind, "__init__") is object.__init__


# -- small helpers --------------------------------------------------------------------------


def mock_module(kind: type) -> dict[str, Any] | None:
    """The globals of the unittest.mock that made ``kind``'s doubles, if it is one: found
    through the class itself, not sys.modules, which may hold another copy of the module by
    now (one removed and imported again holds classes and sentinels of its own)."""
    for base in class_attr(kind, "__mro__") or ():
        if base.__name__ == "NonCallableMock" and base.__module__ == "unittest.mock":
            method = base.__dict__.get("__init__")
            for _ in range(5):  # past wrappers (the scope's own records calls to it)
                method = getattr(method, "__wrapped__", None) or method
            made = getattr(method, "__globals__", None)
            return made if type(made) is dict else None
    return None


def own(obj: Any, name: str) -> Any:
    """``obj.name`` from the instance dictionary or slots, without running user code."""
    try:
        return object.__getattribute__(obj, name)
    except Exception:
        return None


def class_attr(kind: type, name: str) -> Any:
    """``kind.name`` from the class and its bases, without a metaclass's code running."""
    try:
        return type.__getattribute__(kind, name)
    except Exception:
        return None


def _module(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _is_own(frame: FrameType) -> bool:
    return _module(frame).startswith(("pytest_poolchaos", "_pytest", "pluggy"))


def _is_stdlib(frame: FrameType) -> bool:
    return _in_stdlib(frame.f_code.co_filename)


def _in_stdlib(filename: str) -> bool:
    return filename.startswith(_STDLIB + os.sep) and "site-packages" not in filename


def _is_user(frame: FrameType, root: str) -> bool:
    filename = frame.f_code.co_filename
    return filename.startswith(root) and "site-packages" not in filename and not _is_own(frame)


def _where(frame: FrameType) -> str:
    return f"{frame.f_code.co_name} ({os.path.basename(frame.f_code.co_filename)}:" \
           f"{frame.f_lineno})"
