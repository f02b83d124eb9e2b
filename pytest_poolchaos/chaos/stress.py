"""CPU stress: busy helper processes that can never outlive the process that started them.

Three independent ways out, so neither Ctrl-C nor a hard kill of pytest (pytest-timeout's
thread method ends it with ``os._exit``) leaves a helper spinning:

1. ``stop()`` closes the helper's stdin and waits (then kills it: a helper is ours to signal);
2. the helper watches its stdin: when the last write end closes, even because the parent
   died, ``read`` returns and the helper exits;
3. on Linux the helper asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG),
   which also covers children the parent forked later that inherited the pipe's write end
   (the write end is closed in forked children as well, see ``_close_in_child``).

Only ``Popen`` objects made here are ever signalled.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["HELPER_MARK", "Stress", "alive"]

#: argv[1] of every helper, so a test (and a person with ``ps``) can tell them apart
HELPER_MARK = "poolchaos-stress-helper"
_STOP_WAIT_S = 2.0
_HELPER = r"""
import os, sys, threading, time
parent, seconds = int(sys.argv[2]), float(sys.argv[3])
try:
    import ctypes, signal
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != parent:  # the parent died before the line above ran
    os._exit(0)
def watch():
    try:
        sys.stdin.buffer.read()  # returns at EOF: stop() closed it, or the parent is gone
    finally:
        os._exit(0)
threading.Thread(target=watch, daemon=True).start()
deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
while time.monotonic() < deadline:
    for _ in range(20000):
        pass
os._exit(0)
"""

_LIVE: list[subprocess.Popen[bytes]] = []  # every helper of this process, for the fork hook
_LOCK = threading.Lock()


@dataclass
class Stress:
    """``count`` busy processes for ``seconds`` (0: until ``stop``)."""

    count: int
    seconds: float = 0.0
    helpers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [helper.pid for helper in self.helpers]

    def start(self) -> Stress:
        _arm_once()
        for _ in range(self.count):
            helper = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _HELPER, HELPER_MARK, str(os.getpid()),
                 f"{self.seconds:.3f}"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)  # a terminal's Ctrl-C is for pytest, not for them
            self.helpers.append(helper)
            with _LOCK:
                _LIVE.append(helper)
        return self

    def stop(self) -> None:
        """Close every helper's pipe, then wait; kill what is still there after a while."""
        helpers, self.helpers = self.helpers, []
        for helper in helpers:
            _close(helper)
        deadline = time.monotonic() + _STOP_WAIT_S
        for helper in helpers:
            try:
                helper.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait(timeout=_STOP_WAIT_S)
            with _LOCK:
                if helper in _LIVE:
                    _LIVE.remove(helper)

    def __enter__(self) -> Stress:
        return self.start() if not self.helpers else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def alive(pids: Iterable[int]) -> list[int]:
    """Which of ``pids`` still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != b"Z":
            out.append(pid)
    return out


def _close(helper: subprocess.Popen[bytes]) -> None:
    if helper.stdin is not None:
        with contextlib.suppress(OSError):
            helper.stdin.close()


_armed = False


def _arm_once() -> None:
    global _armed
    if _armed:
        return
    _armed = True
    atexit.register(_stop_all)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_close_in_child)


def _close_in_child() -> None:
    # A forked test worker must not hold a helper's pipe open past the parent's death. The
    # descriptor is pointed at /dev/null rather than closed: the file object still owns it.
    if not _LIVE:
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for helper in _LIVE:
            if helper.stdin is not None:
                with contextlib.suppress(OSError, ValueError):
                    os.dup2(null, helper.stdin.fileno())
    finally:
        os.close(null)
    _LIVE.clear()


def _stop_all() -> None:
    for helper in list(_LIVE):
        _close(helper)
    for helper in list(_LIVE):
        try:
            helper.wait(timeout=_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            helper.kill()
