"""What the ``chaos`` fixture gives a test: faults it injects itself, bounded and undone.

Everything started here stops when the test ends (or earlier, when its time is up), and only
processes of this test session are ever signalled: ``kill_worker`` refuses a pid that is not
a descendant of this process, and the plugin's own stress helpers.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..worker.fixture import ConcurrentRun, PoolTools
from .noise import Delay, Noise
from .spec import ChaosSpec
from .stress import Stress, alive

__all__ = ["ChaosTools"]

MAX_STRESS_S = 60.0
MAX_DELAY_S = 10.0
_KILL_WAIT_S = 5.0


class ChaosTools:
    """What ``chaos`` gives a test."""

    def __init__(self, nodeid: str, session_noise: Noise | None = None) -> None:
        self.nodeid = nodeid
        self.session_noise = session_noise
        seed = session_noise.spec.seed if session_noise is not None else 0
        self.spec: ChaosSpec | None = session_noise.spec if session_noise is not None else None
        self._rng = random.Random(f"{seed}:{nodeid}:fixture")
        self._stresses: list[Stress] = []
        self._noises: list[Noise] = []
        self._scope = PoolTools(nodeid)

    @property
    def applied(self) -> list[Delay]:
        """Delays the session's chaos mode injected into this test so far (empty when off)."""
        return list(self.session_noise.applied) if self.session_noise is not None else []

    # -- faults ---------------------------------------------------------------------------------

    def kill_worker(self, target: Any, sig: int = signal.SIGKILL,
                    timeout: float = _KILL_WAIT_S) -> int:
        """Kill one worker process of ``target`` (a process pool, a multiprocessing Pool, a
        Process, a Popen, or a pid) and wait until it is gone; return its pid.

        With several workers, which one dies is drawn from the chaos seed and the test's id.
        """
        pids = _worker_pids(target)
        if not pids:
            raise ValueError(f"chaos.kill_worker: {target!r} has no live worker process")
        pid = self._rng.choice(sorted(pids))
        _check_ours(pid, [p for s in self._stresses for p in s.pids])
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while alive([pid]) and time.monotonic() < deadline:
            time.sleep(0.005)
        if alive([pid]):
            raise TimeoutError(f"chaos.kill_worker: process {pid} still running {timeout} s "
                               f"after signal {sig}")
        return pid

    def stress(self, cpu: int = 1, seconds: float = 5.0) -> Stress:
        """``cpu`` busy processes for ``seconds`` (at most 60), stopped at the test's end at
        the latest; use as a context manager to stop them earlier."""
        if not 1 <= cpu <= 64:
            raise ValueError(f"chaos.stress(cpu=...) takes 1..64, got {cpu!r}")
        if not 0 < seconds <= MAX_STRESS_S:
            raise ValueError(f"chaos.stress(seconds=...) takes (0, {MAX_STRESS_S:g}], "
                             f"got {seconds!r}")
        stress = Stress(cpu, seconds).start()
        self._stresses.append(stress)
        return stress

    @contextmanager
    def _delays(self, noise: Noise) -> Iterator[Noise]:
        try:
            yield noise
        finally:
            self._remove(noise)

    def delay_starts(self, seconds: float) -> Any:
        """From now on (or within a ``with`` block), every pool worker thread, worker process
        and ``Popen`` child this test starts begins ``seconds`` later (at most 10)."""
        if not 0 < seconds <= MAX_DELAY_S:
            raise ValueError(f"chaos.delay_starts(seconds) takes (0, {MAX_DELAY_S:g}], "
                             f"got {seconds!r}")
        noise = Noise(ChaosSpec(slow_start=seconds), spread=False)
        noise.install()
        noise.begin(self.nodeid)
        self._noises.append(noise)
        return self._delays(noise)

    def thundering_herd(self, fn: Callable[[], Any], n: int,
                        timeout: float = 10.0) -> ConcurrentRun:
        """Call ``fn`` from ``n`` threads released at the same moment through a barrier;
        every outcome (value or exception) comes back in order."""
        if n < 1:
            raise ValueError(f"chaos.thundering_herd(n=...) takes n >= 1, got {n!r}")
        return self._scope.run_concurrently([fn] * n, timeout=timeout)

    # -- end of test ----------------------------------------------------------------------------

    def close(self) -> None:
        while self._noises:
            self._remove(self._noises[-1])
        stresses, self._stresses = self._stresses, []
        for stress in stresses:
            stress.stop()
        self._scope.close()

    def _remove(self, noise: Noise) -> None:
        if noise in self._noises:
            self._noises.remove(noise)
            noise.uninstall()


def _worker_pids(target: Any) -> list[int]:
    if isinstance(target, int) and not isinstance(target, bool):
        return [target]
    if hasattr(target, "_processes") and isinstance(target._processes, dict):
        return [p.pid for p in target._processes.values() if p.is_alive()]  # process pools
    if isinstance(getattr(target, "_pool", None), list):
        return [p.pid for p in target._pool if p.is_alive()]  # multiprocessing Pool
    if hasattr(target, "_threads") or hasattr(target, "_max_workers"):
        raise TypeError("chaos.kill_worker: a thread pool has no process to kill; make the "
                        "work raise instead, or use a process pool")
    pid = getattr(target, "pid", None)  # Popen, multiprocessing.Process
    if isinstance(pid, int):
        return [pid]
    raise TypeError(f"chaos.kill_worker takes a process pool, a Pool, a Process, a Popen or "
                    f"a pid, got {type(target).__name__}")


def _check_ours(pid: int, helpers: list[int]) -> None:
    from ..worker.scope.children import descendants

    if pid in helpers or pid not in {child.pid for child in descendants()}:
        raise ValueError(f"chaos.kill_worker: process {pid} was not started by this test "
                         f"session; only its own worker processes are signalled")
