"""What a diagnostic child inherits from the session's process that a test can change.

A child started by ``subprocess`` keeps its parent's umask, the signals it ignores (an ignored
signal stays ignored across exec), its blocked-signal mask and its resource limits. A test that
ignored SIGCHLD, blocked a signal or lowered the open-file limit and never put it back would
hand that to every rerun: the victim then fails "alone" too, and its polluter is cleared.

``read`` takes the state before the first test (the controller calls it at start-up, so it
uses nothing that is not already imported); ``restored`` puts the inheritable part back around
one child's start and then returns the process to what the tests left, so the rest of the
session sees no change. Signal dispositions and the mask can only be set from the main thread;
elsewhere those parts are left as they are.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

__all__ = ["read", "restored"]

_LIMITS = "/proc/self/limits"
#: the limits a test plausibly changes, by their name in /proc/self/limits
_LIMIT_NAMES = {"Max open files": "RLIMIT_NOFILE", "Max processes": "RLIMIT_NPROC",
                "Max core file size": "RLIMIT_CORE", "Max address space": "RLIMIT_AS",
                "Max cpu time": "RLIMIT_CPU", "Max file size": "RLIMIT_FSIZE"}


def read() -> dict[str, Any]:
    """The inheritable state of this process, in builtin types."""
    state: dict[str, Any] = {"umask": _umask(), "ignored": _ignored(), "blocked": None,
                             "limits": None}
    if hasattr(signal, "pthread_sigmask"):
        state["blocked"] = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    try:
        with open(_LIMITS, encoding="utf-8") as handle:  # ASCII text; utf-8 is preloaded
            state["limits"] = handle.read()
    except OSError:  # not Linux: the limits are not put back
        pass
    return state


@contextmanager
def restored(state: dict[str, Any] | None) -> Iterator[None]:
    """The session's start state in effect for a child started inside the block."""
    undo: list[Any] = []
    try:
        if state:
            if threading.current_thread() is threading.main_thread():
                _signals(state, undo)
            _limits(state, undo)
        yield
    finally:
        for step in reversed(undo):
            with suppress(OSError, ValueError):
                step()


def _umask() -> int | None:
    # read the only way there is (set it and put it back), before any test thread runs
    try:
        mask = os.umask(0o022)
        os.umask(mask)
        return mask
    except OSError:
        return None


def _ignored() -> list[int]:
    # the classic signals by number (iterating the Signals enum costs several times more,
    # at every start-up); the real-time ones are not what tests ignore
    found = []
    for number in range(1, 32):
        try:
            # _signal's own getsignal: signal's wraps every answer in an enum
            if _getsignal(number) == _IGNORE:
                found.append(number)
        except (OSError, ValueError):
            continue
    return found


_getsignal = importlib.import_module("_signal").getsignal
_IGNORE = int(signal.SIG_IGN)


def _signals(state: dict[str, Any], undo: list[Any]) -> None:
    then = set(state.get("ignored") or ())
    now = set(_ignored())
    for number in then ^ now:
        # only ignoring survives exec: a handler the tests installed is reset in the child
        previous = signal.signal(number, signal.SIG_IGN if number in then else signal.SIG_DFL)
        undo.append(lambda n=number, p=previous: signal.signal(n, p))
    blocked = state.get("blocked")
    if blocked is not None and hasattr(signal, "pthread_sigmask"):
        previous_mask = signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        undo.append(lambda: signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask))


def _limits(state: dict[str, Any], undo: list[Any]) -> None:
    then = _parse(state.get("limits"))
    if not then:
        return
    import resource  # diagnosis time only: nothing loads it at start-up

    for name, soft in then.items():
        which = getattr(resource, _LIMIT_NAMES[name], None)
        if which is None:
            continue
        current = resource.getrlimit(which)
        wanted = resource.RLIM_INFINITY if soft is None else soft
        if current[0] == wanted:
            continue
        hard = current[1]
        if hard != resource.RLIM_INFINITY and (wanted == resource.RLIM_INFINITY or wanted > hard):
            wanted = hard  # a lowered hard limit cannot be raised again without privileges
        try:
            resource.setrlimit(which, (wanted, hard))
        except (OSError, ValueError):
            continue
        undo.append(lambda w=which, c=current: resource.setrlimit(w, c))


def _parse(text: str | None) -> dict[str, int | None]:
    """Soft limits by name (None: unlimited) from /proc/self/limits."""
    found: dict[str, int | None] = {}
    for line in (text or "").splitlines()[1:]:
        for name in _LIMIT_NAMES:
            if line.startswith(name):
                soft = line[len(name):].split()[0]
                found[name] = None if soft == "unlimited" else int(soft)
    return found
