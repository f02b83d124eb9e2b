"""Facts read from live objects when a test fails: its workers and its traceback's frames.

Runs once per failure, never on a green test. Nothing here calls user code: objects are
judged by ``type()`` against exact types, and attributes are read from instance and class
dictionaries (``object.__getattribute__``), never through ``getattr`` or ``len``.
"""

from __future__ import annotations

import _thread
import collections
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from types import FrameType, GeneratorType, TracebackType
from typing import TYPE_CHECKING, Any

from ..model import FrameFact, Worker

if TYPE_CHECKING:
    from .scope.spawn import Started

__all__ = ["frame_facts", "workers"]

_LOCKS: tuple[type, ...] = (_thread.LockType, _thread.RLock, threading.Condition,
                            threading.Semaphore, threading.BoundedSemaphore)
_CONTAINERS: tuple[type, ...] = (dict, set, list, collections.deque, collections.OrderedDict,
                                 collections.defaultdict)
_DOUBLE_WORDS = ("fake", "stub", "dummy", "mock", "double")
_WORKER_RUNS = {("concurrent.futures.thread", "run"), ("concurrent.futures.thread", "_worker"),
                ("threading", "run"), ("multiprocessing.pool", "worker")}
_IDLE_IN = ("queue.py", "threading.py", "concurrent/futures/thread.py", "selectors.py")
_STDLIB = os.path.dirname(os.__file__)
_MAX_FACTS = 12
_MAX_WORKERS = 16


# -- workers --------------------------------------------------------------------------------


def workers(started: Iterable[Started]) -> tuple[Worker, ...]:
    """Each thread, pool and process the scope saw start, as it is now."""
    frames = sys._current_frames()
    out: list[Worker] = []
    seen: set[int] = set()
    for entry in started:
        obj = entry.ref()
        if obj is None:
            continue
        found = _worker(entry.kind, obj, frames, seen)
        out.extend(found)
        if len(out) >= _MAX_WORKERS:
            break
    return tuple(out[:_MAX_WORKERS])


def _worker(kind: str, obj: Any, frames: dict[int, FrameType], seen: set[int]) -> list[Worker]:
    if kind == "thread" and isinstance(obj, threading.Thread):
        return _thread_worker(obj, frames, seen)
    if kind == "pool":
        threads = _own(obj, "_threads") or ()  # ThreadPoolExecutor keeps a set of them
        found = [w for t in list(threads) if isinstance(t, threading.Thread)
                 for w in _thread_worker(t, frames, seen)]
        return found or [Worker("pool", type(obj).__name__, "alive")]
    if kind == "process":
        return [_process_worker(obj)]
    return []


def _thread_worker(thread: threading.Thread, frames: dict[int, FrameType],
                   seen: set[int]) -> list[Worker]:
    ident = thread.ident
    if ident is None or ident in seen:
        return []
    seen.add(ident)
    frame = frames.get(ident)
    if frame is None or not thread.is_alive():
        return [Worker("thread", thread.name, "exited")]
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
    return Worker("thread", name, "busy", where)


def _stack(frame: FrameType | None) -> Iterator[FrameType]:
    """Innermost first."""
    while frame is not None:
        yield frame
        frame = frame.f_back


def _process_worker(process: Any) -> Worker:
    popen = _own(process, "_popen") or process  # multiprocessing.Process, else a Popen
    pid = _own(popen, "pid")
    code = _own(popen, "returncode")
    name = str(_own(process, "_name") or pid)
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


def frame_facts(errors: Iterable[BaseException], root: str) -> tuple[FrameFact, ...]:
    """Locks, containers and generators where each exception was raised, doubles in any user
    frame, and whether it was raised on a worker thread."""
    facts: list[FrameFact] = []
    for error in errors:
        frames = list(_tb_frames(error.__traceback__))
        facts += _worker_thread(frames)
        user = [f for f in frames if _is_user(f, root)]
        if user:
            facts += _held(user[-1])
        for frame in user:
            facts += _doubles(frame)
    return tuple(dict.fromkeys(facts))[:_MAX_FACTS]


def _tb_frames(tb: TracebackType | None) -> Iterator[FrameType]:
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _worker_thread(frames: list[FrameType]) -> list[FrameFact]:
    for frame in frames:
        if (_module(frame), frame.f_code.co_name) in _WORKER_RUNS:
            return [FrameFact("worker-thread", f"raised on a worker thread (through "
                                               f"{_module(frame)}.{frame.f_code.co_name})")]
    return []


def _held(frame: FrameType) -> list[FrameFact]:
    """Locks, shared containers and generators the raising frame held, directly or as
    attributes of ``self``."""
    facts = []
    for name, value in _reachable(frame):
        kind = type(value)
        label = f"{kind.__name__} {name} in {_where(frame)}"
        if kind in _LOCKS or _is_python_rlock(kind):
            facts.append(FrameFact("lock", label))
        elif kind in _CONTAINERS:
            facts.append(FrameFact("container", label))
        elif kind is GeneratorType:
            facts.append(FrameFact("generator", label))
    return facts


def _is_python_rlock(kind: type) -> bool:
    return kind.__module__ == "threading" and kind.__name__ == "_RLock"


def _reachable(frame: FrameType) -> Iterator[tuple[str, Any]]:
    local = {k: v for k, v in dict(frame.f_locals).items() if not k.startswith("@py")}
    for name, value in local.items():
        yield name, value
        plain = _class_attr(type(value), "__module__") != "builtins"
        attributes = _own(value, "__dict__") if plain else None
        if type(attributes) is dict:  # one level into the frame's objects: self._lock
            for attr, inner in list(attributes.items())[:50]:
                if type(attr) is str:
                    yield f"{name}.{attr}", inner


def _doubles(frame: FrameType) -> list[FrameFact]:
    facts = []
    for name, value in dict(frame.f_locals).items():
        what = double_kind(value) if not name.startswith("@py") else ""
        if what:
            facts.append(FrameFact("double", f"{name} is {what} in {_where(frame)}"))
    return facts


def double_kind(value: object) -> str:
    """'a Mock' / 'a test-defined FakeClock' / '' -- judged by its class alone."""
    kind = type(value)
    mock = sys.modules.get("unittest.mock")
    if mock is not None and issubclass(kind, mock.NonCallableMock):
        return f"a {kind.__name__}"
    module = str(_class_attr(kind, "__module__") or "")
    name = kind.__name__
    tail = module.rsplit(".", 1)[-1]
    if tail.startswith("test_") or tail.endswith("_test") or tail == "conftest":
        return f"a test-defined {name}"
    if any(word in name.lower() for word in _DOUBLE_WORDS) and kind.__module__ != "builtins":
        return f"a {name}"
    return ""


# -- small helpers --------------------------------------------------------------------------


def _own(obj: Any, name: str) -> Any:
    """``obj.name`` from the instance dictionary or slots, without running user code."""
    try:
        return object.__getattribute__(obj, name)
    except Exception:
        return None


def _class_attr(kind: type, name: str) -> Any:
    try:
        return type.__getattribute__(kind, name)
    except Exception:
        return None


def _module(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _is_own(frame: FrameType) -> bool:
    return _module(frame).startswith(("pytest_poolchaos", "_pytest", "pluggy"))


def _is_stdlib(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename
    return filename.startswith(_STDLIB) and "site-packages" not in filename


def _is_user(frame: FrameType, root: str) -> bool:
    filename = frame.f_code.co_filename
    return filename.startswith(root) and "site-packages" not in filename and not _is_own(frame)


def _where(frame: FrameType) -> str:
    return f"{frame.f_code.co_name} ({os.path.basename(frame.f_code.co_filename)}:" \
           f"{frame.f_lineno})"
