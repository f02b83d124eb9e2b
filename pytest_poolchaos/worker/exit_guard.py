"""Threads and processes that would hang interpreter exit, and an optional deadline for it.

At exit, ``threading._shutdown`` joins every non-daemon thread; one still blocked (a
``ThreadPoolExecutor`` worker waiting on a future's event, typically after a timeout) makes the
process, and the CI job, hang forever after the report was printed. multiprocessing's exit
handler then terminates its daemon children and joins all of them: a non-daemon child still at
work, or a daemon child that ignores SIGTERM (inherited from a test that ignored it), holds
the exit the same way. The guard remembers which test was running when each thread first
appeared, names the survivors at session end, and with ``--poolchaos-exit-timeout`` ends the
process with pytest's own exit status once the report is out. It never signals a child.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import signal
import sys
import threading
from typing import Any

from .. import clock

__all__ = ["ExitGuard"]

_POLL = 0.05


class ExitGuard:
    """Owned by the recorder wherever tests run (serial run or xdist worker)."""

    def __init__(self, exit_timeout: float) -> None:
        self.exit_timeout = exit_timeout
        self.before: set[int | None] = set()
        #: thread ident -> (the thread, the test running when it was first seen); the thread
        #: object is kept so a reused ident is not blamed on an earlier test
        self.owner: dict[int | None, tuple[threading.Thread, str]] = {}
        self.hanging: list[threading.Thread] = []
        #: multiprocessing children that multiprocessing's exit handler would wait on
        self.holding: list[Any] = []
        #: multiprocessing children alive when the session started: not the tests'
        self.children_before: set[int | None] = set()

    def start(self) -> None:
        self.before = {thread.ident for thread in threading.enumerate()}
        self.children_before = {child.pid for child in _mp_children()}

    def attribute(self, nodeid: str) -> None:
        """After a test that left threads running: remember it started the new ones."""
        for thread in threading.enumerate():
            known = self.owner.get(thread.ident)
            if thread.ident not in self.before and (known is None or known[0] is not thread):
                self.owner[thread.ident] = (thread, nodeid)

    def survivors(self) -> list[threading.Thread]:
        """Non-daemon threads started during the session and still alive, except the idle
        workers of a ThreadPoolExecutor: exit wakes those and they end."""
        main = threading.main_thread()
        frames = sys._current_frames()
        return [thread for thread in threading.enumerate()
                if thread.is_alive() and not thread.daemon and thread is not main
                and thread.ident not in self.before
                and not _idle_executor_worker(frames.get(thread.ident or 0))]

    def describe(self, thread: threading.Thread) -> str:
        known = self.owner.get(thread.ident)
        who = (f"started by {known[1]}" if known is not None and known[0] is thread
               else "started during the session")
        return f"thread {thread.name!r} {who}"

    def hanging_lines(self) -> list[str]:
        """Name the threads and processes that would hang interpreter exit (called at session
        finish). A child that is only not a daemon is watched (``arm``) but not named: a
        library's own atexit handler may stop it before multiprocessing joins it. So is a
        thread whose own module gave threading an exit callback: threading runs those before
        it joins, and they wake and join that module's threads (a process pool's manager)."""
        self.hanging = self.survivors()
        self.holding = [child for child in _held_children()
                        if child.pid not in self.children_before]
        stopping = _stopped_at_exit()
        return [self.describe(thread) for thread in self.hanging
                if _module_of(thread) not in stopping] + \
            [_describe_child(child) for child in self.holding if child.daemon]

    def arm(self, exitstatus: int) -> None:
        """With an exit timeout, end the process with ``exitstatus`` if exit hangs."""
        names = [self.describe(thread) for thread in self.hanging if thread.is_alive()]
        names += [_describe_child(child) for child in self.holding if _alive(child)]
        if self.exit_timeout <= 0 or not names:
            return
        watchdog = threading.Thread(target=_watch, args=(self.exit_timeout, exitstatus, names),
                                    name="poolchaos-exit-timeout", daemon=True)
        watchdog.start()


def _stopped_at_exit() -> set[str]:
    """Modules whose threads an exit callback of their own module stops (registered with
    ``threading._register_atexit``, as process pools do for their manager threads). The
    thread pool's workers are judged by what they are doing instead (``survivors``): its
    callback joins a worker that is still inside a task, which then holds the exit."""
    callbacks = getattr(threading, "_threading_atexits", None) or ()
    modules = {getattr(_registered(c), "__module__", None) for c in callbacks}
    modules.discard(_THREAD_POOL)
    return {m for m in modules if isinstance(m, str)}


def _registered(callback: Any) -> Any:
    """The function ``threading._register_atexit`` was given: wrapped in a partial up to
    Python 3.12, in a lambda closing over it from 3.13 on."""
    if hasattr(callback, "func"):
        return callback.func
    code, cells = getattr(callback, "__code__", None), getattr(callback, "__closure__", None)
    if code is not None and cells and "func" in code.co_freevars:
        try:
            return cells[code.co_freevars.index("func")].cell_contents
        except (ValueError, IndexError):  # an empty cell
            pass
    return callback


def _module_of(thread: threading.Thread) -> str | None:
    """The module of the thread's own class, or of its target for a plain Thread."""
    if type(thread) is not threading.Thread:
        return type(thread).__module__
    return getattr(getattr(thread, "_target", None), "__module__", None)


_THREAD_POOL = "concurrent.futures.thread"


def _held_children() -> list[Any]:
    """multiprocessing children its exit handler would wait on: alive and either not daemons
    (joined as they are) or daemons that ignore SIGTERM (terminate() does not end them)."""
    return [child for child in _mp_children() if not child.daemon or _ignores_term(child.pid)]


def _mp_children() -> list[Any]:
    process = sys.modules.get("multiprocessing.process")
    if process is None:  # never imported: no children of that kind
        return []
    return list(process.active_children())


def _idle_executor_worker(frame: Any) -> bool:
    """The thread waits for work in ThreadPoolExecutor's worker loop: the executor's exit
    handler wakes it with a None and it returns."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_worker" and code.co_filename.endswith(_EXECUTOR_FILE):
            return "work_queue.get(" in linecache.getline(code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return False


_EXECUTOR_FILE = os.path.join("concurrent", "futures", "thread.py")


def _ignores_term(pid: int | None) -> bool:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"SigIgn:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except (OSError, ValueError, IndexError):  # gone, or not Linux: terminate() is trusted
        pass
    return False


def _alive(child: Any) -> bool:
    try:
        return bool(child.is_alive())
    except (OSError, ValueError, AssertionError):  # closed or not ours to ask
        return False


def _describe_child(child: Any) -> str:
    why = "ignores SIGTERM, so terminate() at exit does not end it" if child.daemon \
        else "is not a daemon, so exit waits for it to end"
    return f"process {child.name!r} (pid {child.pid}) {why}"


def _watch(seconds: float, exitstatus: int, names: list[str]) -> None:
    """End the process once the main thread is done and ``seconds`` have passed.

    Until the main thread reaches threading._shutdown the interpreter is not exiting
    (pytest.main() embedded in a longer program): keep waiting. Once there, only the joins
    of the hanging threads (and executors' atexit joins) can be holding the process.
    """
    deadline = clock.monotonic() + seconds
    while clock.monotonic() < deadline or not _exiting():
        clock.sleep(_POLL)
    _flush(f"poolchaos: exit took over {seconds:g} s, ending the process with status "
           f"{exitstatus}; still running: {'; '.join(names)}\n")
    os._exit(exitstatus)


def _exiting() -> bool:
    """The interpreter is in threading._shutdown (joining threads) or past it."""
    main = threading.main_thread()
    if not main.is_alive() or getattr(threading, "_SHUTTING_DOWN", False):
        return True
    # _SHUTTING_DOWN is private: fall back on where the main thread is
    frame = sys._current_frames().get(main.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "_shutdown" and frame.f_code.co_filename == threading.__file__:
            return True
        frame = frame.f_back
    return False


def _flush(message: str) -> None:
    with contextlib.suppress(Exception):  # no usable stderr at exit
        sys.__stderr__.write(message)  # type: ignore[union-attr]
    for stream in (sys.stdout, sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):  # a closed stream at exit
            stream.flush()  # type: ignore[union-attr]
