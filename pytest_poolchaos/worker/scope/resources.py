"""Which threads, processes and pools started during a test are still alive, and stopping them.

Only things the spawn log recorded for this test (and descendants of this process created
while it ran) are ever looked at or stopped; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .children import Child, descendants
from .spawn import SpawnLog, Started

#: A thread told to stop just before teardown ended gets this long to finish on its own before
#: it counts as left behind, so the report does not depend on who wins that race.
SETTLE_S = 0.05


@dataclass(slots=True)
class Alive:
    """One resource still alive after teardown."""

    kind: str
    detail: str
    key: str
    obj: Any = None
    pid: int | None = None


def alive(log: SpawnLog, skip_setup: bool) -> list[Alive]:
    """Resources from ``log`` still alive; ``skip_setup`` leaves fixtures' own alone."""
    mine = [s for s in log.started if not (skip_setup and s.phase == "setup")]
    found: list[Alive] = []
    pool_pids: set[int] = set()
    for started in mine:
        if started.kind == "pool":
            leak = _open_pool(started, pool_pids)
            if leak is not None:
                found.append(leak)
    found.extend(_live_threads([s for s in mine if s.kind == "thread"]))
    if log.forked or any(s.kind == "process" for s in log.started):
        found.extend(_live_processes(log, mine, pool_pids))
    return found


def _live_threads(started: list[Started]) -> list[Alive]:
    threads = [(s, s.ref()) for s in started]
    running = [(s, t) for s, t in threads if t is not None and t.is_alive()]
    deadline = time.monotonic() + SETTLE_S
    for _, thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [Alive("thread", f"thread {t.name!r} (daemon={t.daemon}) started in {s.phase} by "
                  f"{s.where} is still running", f"thread:{t.name}", obj=t)
            for s, t in running if t.is_alive()]


def _open_pool(started: Started, pool_pids: set[int]) -> Alive | None:
    pool = started.ref()
    if pool is None:
        return None
    name = type(pool).__name__
    pids = _pool_pids(pool)
    pool_pids.update(pids)
    where = f"created in {started.phase} by {started.where}"
    if _is_open(pool):
        size = f"{len(pids)} worker process(es)" if pids else f"{_thread_count(pool)} thread(s)"
        return Alive("pool", f"{name} {where} was never shut down ({size})", f"pool:{name}",
                     obj=pool)
    busy = [t for t in getattr(pool, "_threads", ()) if t.is_alive()]
    if busy:
        return Alive("pool", f"{name} {where} was shut down without waiting; "
                     f"{len(busy)} worker thread(s) still running ({busy[0].name})",
                     f"pool:{name}", obj=pool)
    return None


def _is_open(pool: Any) -> bool:
    if hasattr(pool, "_state"):  # multiprocessing.pool.Pool
        return bool(pool._state == "RUN")
    if hasattr(pool, "_shutdown_thread"):  # ProcessPoolExecutor
        return not pool._shutdown_thread
    return not getattr(pool, "_shutdown", True)


def _pool_pids(pool: Any) -> set[int]:
    procs = getattr(pool, "_processes", None) or {}
    pids = set(procs) if isinstance(procs, dict) else set()
    for worker in getattr(pool, "_pool", ()) or ():  # multiprocessing.pool.Pool
        if getattr(worker, "pid", None):
            pids.add(worker.pid)
    return pids


def _thread_count(pool: Any) -> int:
    return sum(1 for t in getattr(pool, "_threads", ()) if t.is_alive())


def _live_processes(log: SpawnLog, mine: list[Started], pool_pids: set[int]) -> list[Alive]:
    recorded = {s.pid: s for s in log.started if s.pid}
    fixture_pids = {s.pid for s in log.started if s.pid and s not in mine}
    skip = pool_pids | fixture_pids | _runtime_helpers()
    found = []
    for child in descendants():
        if child.pid in skip:
            continue
        started = recorded.get(child.pid)
        if started is None and not _started_during(child, log):
            continue
        found.append(_process_leak(child, started))
    return found


def _started_during(child: Child, log: SpawnLog) -> bool:
    # Clock ticks make start times coarse (10 ms): allow that much before the scope opened.
    return child.started is not None and child.started >= log.opened - 0.02


def _process_leak(child: Child, started: Started | None) -> Alive:
    label = started.label if started else f"process {child.pid} `{child.cmdline[:80]}`"
    by = f" started in {started.phase} by {started.where}" if started else ""
    if child.state == "Z":
        return Alive("process", f"{label}{by} exited but was never waited for (zombie)",
                     f"process:{_command(child)}", pid=child.pid,
                     obj=started.ref() if started else None)
    return Alive("process", f"{label}{by} is still running", f"process:{_command(child)}",
                 pid=child.pid, obj=started.ref() if started else None)


def _command(child: Child) -> str:
    return (child.cmdline.split() or ["?"])[0].rsplit("/", 1)[-1]


def _runtime_helpers() -> set[int]:
    """multiprocessing's resource tracker and fork server: shared by the whole session."""
    pids: set[int] = set()
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    pid = getattr(getattr(tracker, "_resource_tracker", None), "_pid", None)
    if pid:
        pids.add(pid)
    forkserver = sys.modules.get("multiprocessing.forkserver")
    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if pid:
        pids.add(pid)
    return pids


# -- cleanup ------------------------------------------------------------------------------------

def stop(leaks: Iterable[Alive], grace: float) -> list[str]:
    """Stop what was left behind; return one line per resource that would not stop."""
    stubborn: list[str] = []
    deadline = time.monotonic() + grace
    items = list(leaks)
    for leak in items:
        if leak.kind == "pool":
            _stop_pool(leak.obj)
    for leak in items:
        if leak.kind == "process" and leak.pid:
            _signal(leak.pid, signal.SIGTERM)
    for leak in items:
        if not _wait(leak, deadline):
            if leak.kind == "process" and leak.pid:
                _signal(leak.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
                if _wait(leak, time.monotonic() + 1.0):
                    continue
            stubborn.append(leak.detail)
    return stubborn


def _stop_pool(pool: Any) -> None:
    if pool is None:
        return
    if hasattr(pool, "terminate"):  # multiprocessing.pool.Pool
        pool.terminate()
        return
    try:
        pool.shutdown(wait=False, cancel_futures=True)
    except TypeError:  # a subclass with an older signature
        pool.shutdown(wait=False)
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait(leak: Alive, deadline: float) -> bool:
    """True once the resource is gone; never reaps a process it does not own an object for."""
    while True:
        if _gone(leak):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _gone(leak: Alive) -> bool:
    if leak.kind == "thread":
        return not leak.obj.is_alive()
    if leak.kind == "pool":
        return not _is_open(leak.obj) and not any(t.is_alive() for t in
                                                  getattr(leak.obj, "_threads", ()))
    if leak.obj is not None and hasattr(leak.obj, "poll"):
        return leak.obj.poll() is not None  # the test's own Popen: reaping it is its job
    if leak.obj is not None and hasattr(leak.obj, "is_alive"):
        return not leak.obj.is_alive()
    return _exited(leak.pid)


def _exited(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X")
    except FileNotFoundError:
        return True
    except OSError:
        return not _pid_exists(pid)


def _pid_exists(pid: int) -> bool:
    import psutil

    return bool(psutil.pid_exists(pid))

