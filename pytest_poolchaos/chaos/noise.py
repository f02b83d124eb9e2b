"""Seeded scheduler noise: delays where concurrent code is sensitive to timing.

* ``jitter``: a random delay (0..jitter) before ``Popen``, process start and socket
  ``connect`` in the calling thread, at the start of a new thread (in that thread, before its
  ``run``: it is scheduled late), and at the start of each task given to an executor's
  ``submit`` (on its worker: tasks submitted in order do not begin in order);
* ``slow-start``: pool worker threads, worker processes (``multiprocessing``, executor and pool
  workers) and ``Popen`` children begin between half of it and all of it later, while their
  parent goes on: a worker that warms up slowly;
* ``switch``: ``sys.setswitchinterval`` for the session, so threads are preempted far more
  often than CPython's 5 ms.

Delays are drawn from generators seeded with the spec's seed and the test's node id, so the
same seed replays the same delays in each test: exactly for the calls the test's own thread
makes, and as the same sequence for calls from the threads it started (which of them draws
which delay is up to the scheduler; their draws never shift the test thread's). They apply
only while a test runs (``begin``/``end``), never to the plugin's own helpers or to diagnostic
runs after the session.

The wrappers go on top of the pool scope's (``scope/spawn.py``) and behave exactly like the
methods they wrap: same arguments, result and exceptions. ``uninstall`` takes off exactly what
was installed; a wrapper someone else has since wrapped again stays in place but goes inert.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..model.frozen import frozen
from .spec import ChaosSpec, duration

__all__ = ["Noise", "late_start"]

_MAX_APPLIED = 1000
_POOL_TARGETS = ("concurrent.futures.thread", "concurrent.futures.process",
                 "multiprocessing.pool")


@frozen
class Delay:
    site: str  # thread start | submit | popen | process start | connect | slow start
    seconds: float
    own: bool = True  # drawn by the test's own thread (the exactly replayed stream)


def late_start(delay: float, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A worker process's target, begun ``delay`` seconds late (picklable for spawn)."""
    time.sleep(delay)
    return target(*args, **kwargs)


class _Layer:
    """One installed wrapper and how to take it off."""

    def __init__(self, cls: type, method: str, original: Any, wrapper: Any) -> None:
        self.cls, self.method, self.original, self.wrapper = cls, method, original, wrapper
        self.own = method in cls.__dict__

    def remove(self) -> None:
        if self.cls.__dict__.get(self.method) is self.wrapper:
            if self.own:
                setattr(self.cls, self.method, self.original)
            else:
                delattr(self.cls, self.method)
        else:  # wrapped again on top of ours since: leave it there, doing nothing
            self.wrapper.__poolchaos_inert__ = True


class Noise:
    def __init__(self, spec: ChaosSpec, spread: bool = True) -> None:
        """``spread``: slow starts vary between half the knob and all of it; without it
        every start is late by exactly the knob (the ``chaos`` fixture's ``delay_starts``)."""
        self.spec = spec
        self.spread = spread
        self.applied: list[Delay] = []
        self.nodeid: str | None = None
        self._rng = random.Random(f"{spec.seed}:session")
        self._others = random.Random(f"{spec.seed}:session:threads")
        self._owner: int | None = None  # ident of the thread running the test
        self._lock = threading.Lock()
        self._layers: list[_Layer] = []
        self._switch: float | None = None
        self._sleep_path = shutil.which("sleep")

    # -- lifetime -------------------------------------------------------------------------------

    def install(self) -> None:
        import concurrent.futures
        import concurrent.futures.process
        import concurrent.futures.thread
        import multiprocessing.process
        import socket
        import subprocess

        if self.spec.switch:
            self._switch = sys.getswitchinterval()
            sys.setswitchinterval(self.spec.switch)
        if not (self.spec.jitter or self.spec.slow_start):
            return
        self._wrap(threading.Thread, "start", self._thread_start)
        self._wrap(subprocess.Popen, "__init__", self._popen_init)
        self._wrap(multiprocessing.process.BaseProcess, "start", self._process_start)
        # The package caches the classes it re-exports: when the submodule was imported
        # again since (pytester restores sys.modules between sessions), both are in use.
        pools = {id(cls): cls for cls in (
            concurrent.futures.ThreadPoolExecutor, concurrent.futures.thread.ThreadPoolExecutor,
            concurrent.futures.ProcessPoolExecutor,
            concurrent.futures.process.ProcessPoolExecutor)}
        for pool in pools.values():
            self._wrap(pool, "submit", self._submit)
        self._wrap(socket.socket, "connect", self._delayed("connect"))

    def uninstall(self) -> None:
        self.nodeid = None
        while self._layers:
            self._layers.pop().remove()
        if self._switch is not None:
            sys.setswitchinterval(self._switch)
            self._switch = None

    def begin(self, nodeid: str) -> None:
        """A test starts: its own generator, so its delays do not depend on earlier tests."""
        with self._lock:
            self._rng = random.Random(f"{self.spec.seed}:{nodeid}")
            self._others = random.Random(f"{self.spec.seed}:{nodeid}:threads")
            self._owner = threading.get_ident()
            self.applied = []
            self.nodeid = nodeid

    def end(self) -> list[Delay]:
        with self._lock:
            self.nodeid = None
            return list(self.applied)

    # -- drawing -------------------------------------------------------------------------------

    def draw(self, site: str, low: float, high: float) -> float:
        """A delay in [low, high] recorded against the running test; 0 outside tests."""
        if high <= 0 or self.nodeid is None:
            return 0.0
        with self._lock:
            own = threading.get_ident() == self._owner
            seconds = (self._rng if own else self._others).uniform(low, high)
            if len(self.applied) < _MAX_APPLIED:
                self.applied.append(Delay(site, seconds, own))
        return seconds

    def jitter(self, site: str) -> float:
        return self.draw(site, 0.0, self.spec.jitter)

    def slow(self) -> float:
        low = self.spec.slow_start / 2 if self.spread else self.spec.slow_start
        return self.draw("slow start", low, self.spec.slow_start)

    # -- wrappers ------------------------------------------------------------------------------

    def _wrap(self, cls: type, method: str,
              make: Callable[[Any], Callable[..., Any]]) -> None:
        original = getattr(cls, method)
        body = make(original)

        def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            if getattr(wrapper, "__poolchaos_inert__", False) or self.nodeid is None:
                return original(obj, *args, **kwargs)
            return body(obj, *args, **kwargs)

        for attr in ("__name__", "__qualname__", "__doc__"):
            setattr(wrapper, attr, getattr(original, attr, None))
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        # The scope's own wrappers mark themselves so they are not installed twice; ours
        # passes on whatever the method it covers said.
        wrapper.__poolchaos__ = getattr(original, "__poolchaos__", False)  # type: ignore[attr-defined]
        self._layers.append(_Layer(cls, method, original, wrapper))
        setattr(cls, method, wrapper)

    def _delayed(self, site: str) -> Callable[[Any], Callable[..., Any]]:
        def make(original: Any) -> Callable[..., Any]:
            def call(obj: Any, *args: Any, **kwargs: Any) -> Any:
                __tracebackhide__ = True
                _sleep(self.jitter(site))
                return original(obj, *args, **kwargs)

            return call

        return make

    def _submit(self, original: Any) -> Callable[..., Any]:
        """The task begins late on its worker, while the caller goes on: a task scheduled
        late is what reorders work submitted in order (a delay in the caller would only
        stretch the gaps between submissions)."""
        def call(pool: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            late = self.jitter("submit")
            if late > 0:
                return original(pool, late_start, late, fn, *args, **kwargs)
            return original(pool, fn, *args, **kwargs)

        return call

    def _thread_start(self, original: Any) -> Callable[..., Any]:
        def call(thread: threading.Thread, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            pooled = _module_of(getattr(thread, "_target", None)).startswith(_POOL_TARGETS)
            delay = self.slow() if pooled else self.jitter("thread start")
            if delay <= 0:
                return original(thread, *args, **kwargs)
            _late_run(thread, delay)
            try:
                return original(thread, *args, **kwargs)
            except BaseException:
                thread.__dict__.pop("run", None)
                raise

        return call

    def _process_start(self, original: Any) -> Callable[..., Any]:
        from multiprocessing.process import BaseProcess

        def call(process: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            _sleep(self.jitter("process start"))
            target = getattr(process, "_target", None)
            plain = getattr(type(process), "run", None) is BaseProcess.run
            delay = self.slow() if target is not None and plain else 0.0
            if target is None or delay <= 0:
                return original(process, *args, **kwargs)
            # The child (forked or unpickled during start) gets the late target; the parent's
            # object gets its own back as soon as start returns.
            process._target = functools.partial(late_start, delay, target)
            try:
                return original(process, *args, **kwargs)
            finally:
                process._target = target

        return call

    def _popen_init(self, original: Any) -> Callable[..., Any]:
        def call(popen: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            _sleep(self.jitter("popen"))
            command = args[0] if args else kwargs.get("args")
            late = self._late_command(command, args, kwargs)
            if late is None:
                return original(popen, *args, **kwargs)
            if args:
                args = (late, *args[1:])
            else:
                kwargs = dict(kwargs, args=late)
            try:
                return original(popen, *args, **kwargs)
            finally:
                popen.args = command  # what the caller passed, as without noise

        return call

    def _late_command(self, command: Any, args: Sequence[Any],
                      kwargs: dict[str, Any]) -> list[str] | None:
        """``sh -c 'sleep D; exec "$@"' sh COMMAND...`` when that changes nothing else: the
        same pid, argv, environment and exit status, and the same error when the program
        does not exist (then it is not wrapped)."""
        if (not self.spec.slow_start or self._sleep_path is None or len(args) > 1
                or kwargs.get("shell") or kwargs.get("executable") is not None
                or not isinstance(command, list | tuple) or not command):
            return None
        program = command[0]
        if not isinstance(program, str):
            return None
        env = kwargs.get("env")
        path = (env if env is not None else os.environ).get("PATH")
        if path is None or (os.sep in program and not os.path.isabs(program)):
            return None
        if shutil.which(program, path=path) is None:
            return None
        delay = self.slow()
        if delay <= 0:
            return None
        return ["/bin/sh", "-c", f'{self._sleep_path} {delay:.4f}; exec "$@"', "sh",
                *[os.fsdecode(part) for part in command]]

    # -- reporting -----------------------------------------------------------------------------

    def summary(self, delays: Sequence[Delay]) -> str:
        """``7 delays (3 thread start 21ms, 4 submit 9ms)`` for an evidence line."""
        if not delays:
            return "no delay was injected (the test started no thread, process or connection)"
        counts: Counter[str] = Counter()
        total: dict[str, float] = {}
        for delay in delays:
            counts[delay.site] += 1
            total[delay.site] = total.get(delay.site, 0.0) + delay.seconds
        parts = [f"{counts[site]} {site} {duration(round(total[site], 4))}"
                 for site in sorted(counts, key=lambda s: -total[s])]
        return f"{len(delays)} delays injected ({', '.join(parts)})"


def _late_run(thread: threading.Thread, delay: float) -> None:
    run = thread.run

    def late() -> None:
        thread.__dict__.pop("run", None)  # the thread object looks as before once running
        time.sleep(delay)
        run()

    thread.run = late  # type: ignore[method-assign]


def _module_of(func: Any) -> str:
    return str(getattr(func, "__module__", "") or "")


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
