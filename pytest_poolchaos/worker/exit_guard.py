"""Threads that would hang interpreter exit, and an optional deadline for that exit.

At exit, ``threading._shutdown`` joins every non-daemon thread; one still blocked (a
``ThreadPoolExecutor`` worker waiting on a future's event, typically after a timeout) makes the
process, and the CI job, hang forever after the report was printed. The guard remembers which
test was running when each thread first appeared, names the survivors at session end, and with
``--poolchaos-exit-timeout`` ends the process with pytest's own exit status once the report
is out.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

import pytest

from ..guard import guarded
from ..settings import Settings
from . import surroundings

__all__ = ["HANGING_KEY", "ExitGuard"]

HANGING_KEY = "poolchaos_hanging"  # workeroutput key: a worker's hanging threads
_POLL = 0.05


class ExitGuard:
    """Registered wherever tests run (serial run or xdist worker)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.before: set[int | None] = set()
        self.owner: dict[int | None, str] = {}
        self.exitstatus = 0
        self.hanging: list[threading.Thread] = []

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.before = {thread.ident for thread in threading.enumerate()}
        surroundings.prime()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.exitstatus = int(exitstatus)
        self._publish()

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._arm()

    # -- steps ----------------------------------------------------------------------------

    @guarded(None)
    def attribute(self, nodeid: str) -> None:
        """Called by the recorder after a test that left threads running."""
        for thread in threading.enumerate():
            if thread.ident not in self.before and thread.ident not in self.owner:
                self.owner[thread.ident] = nodeid

    def survivors(self) -> list[threading.Thread]:
        """Non-daemon threads started during the session and still alive."""
        main = threading.main_thread()
        return [thread for thread in threading.enumerate()
                if thread.is_alive() and not thread.daemon and thread is not main
                and thread.ident not in self.before]

    def describe(self, thread: threading.Thread) -> str:
        nodeid = self.owner.get(thread.ident)
        who = f"started by {nodeid}" if nodeid else "started during the session"
        return f"thread {thread.name!r} {who}"

    @guarded(None)
    def _publish(self) -> None:
        self.hanging = self.survivors()
        lines = [self.describe(thread) for thread in self.hanging]
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[HANGING_KEY] = lines
            return
        controller = self.config.pluginmanager.get_plugin("poolchaos-controller")
        if controller is not None:
            controller.session.hanging.extend(lines)

    @guarded(None)
    def _arm(self) -> None:
        seconds = self.settings.exit_timeout
        if seconds <= 0 or not any(thread.is_alive() for thread in self.hanging):
            return
        names = [self.describe(thread) for thread in self.hanging if thread.is_alive()]
        watchdog = threading.Thread(target=_watch, args=(seconds, self.exitstatus, names),
                                    name="poolchaos-exit-timeout", daemon=True)
        watchdog.start()


def _watch(seconds: float, exitstatus: int, names: list[str]) -> None:
    """End the process once the main thread is done and ``seconds`` have passed.

    Until the main thread reaches threading._shutdown the interpreter is not exiting
    (pytest.main() embedded in a longer program): keep waiting. Once there, only the joins
    of the hanging threads (and executors' atexit joins) can be holding the process.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or not _exiting():
        time.sleep(_POLL)
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
