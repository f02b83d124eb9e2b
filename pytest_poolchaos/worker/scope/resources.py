"""Which threads, processes and pools started during a test are still alive, and stopping them.

Only things the spawn log recorded for this test (and descendants of this process created
while it ran) are ever looked at or stopped; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from ... import clock
from ...model.frozen import frozen
from .children import Child, descendants, stamp
from .spawn import SETTLE_S, SpawnLog, Started


@frozen
class Alive:
    """One resource still alive after teardown."""

    kind: str
    detail: str
    key: str
    obj: Any = None
    pid: int | None = None
    zombie: bool = False
    #: the process's identity stamp when it was found (children.stamp): never signal a pid
    #: that now belongs to another process
    stamp: float | None = None


def alive(log: SpawnLog, skip_setup: bool, settle: float = SETTLE_S) -> list[Alive]:
    """Resources from ``log`` still alive after up to ``settle`` seconds; ``skip_setup``
    leaves fixtures' own alone."""
    deadline = clock.monotonic() + settle
    mine = [s for s in log.started
            if s.phase != "shared" and not (skip_setup and s.phase == "setup")]
    found = _live_threads([s for s in mine if s.kind == "thread"], deadline)
    pool_pids: set[int] = set()
    for started in mine:
        if started.kind == "pool":
            found.extend(_open_pool(started, pool_pids, deadline))
    if log.forked or any(s.kind == "process" for s in log.started):
        while True:
            processes = _live_processes(log, mine, pool_pids, skip_setup)
            if clock.monotonic() >= deadline or all(p.zombie for p in processes):
                break
            clock.sleep(0.02)
        found.extend(processes)
    return found


def _settled(threads: list[Any], deadline: float) -> list[Any]:
    """Those of ``threads`` still running at ``deadline``, or sooner, as soon as every one
    still running is parked: none of them can end unless some other thread wakes it, so the
    rest of the wait would only delay the report (a server's idle workers cost each test
    that leaves them the whole linger). Looked at now, once the shortest settle has passed,
    and at the deadline."""
    now = clock.monotonic()
    running = threads
    for until in (now, min(deadline, now + SETTLE_S), deadline):
        running = _joined(running, until)
        if not running or _all_parked(running):
            break
    return running


def _joined(threads: list[Any], deadline: float) -> list[Any]:
    for thread in threads:
        thread.join(max(0.0, deadline - clock.monotonic()))
    return [thread for thread in threads if thread.is_alive()]


def _all_parked(threads: list[Any]) -> bool:
    """Does each of ``threads`` wait, with no timeout, on a condition nobody has notified
    (``Event.wait()``, ``Queue.get()``, ``Condition.wait()``)? A thread blocked elsewhere (a
    sleep, a socket, a wait with a timeout, a lock) may end on its own."""
    frames = sys._current_frames()
    wait = _condition_wait()
    return all(_unnotified(frames.get(thread.ident), wait) for thread in threads)


def _unnotified(frame: Any, wait: Any) -> bool:
    if frame is None or frame.f_code is not wait:
        return False
    local = frame.f_locals
    waiter, condition = local.get("waiter"), local.get("self")
    # notify() takes a waiter off the condition's list as it wakes it
    return (local.get("timeout") is None and waiter is not None and bool(waiter.locked())
            and waiter in getattr(condition, "_waiters", ()))


def _condition_wait() -> Any:
    """The code of the standard library's Condition.wait, under any wrappers (the spawn
    log's own among them)."""
    wait: Any = threading.Condition.wait
    for _ in range(4):
        wait = getattr(wait, "__wrapped__", wait)
    return getattr(wait, "__code__", None)


def _live_threads(started: list[Started], deadline: float) -> list[Alive]:
    threads = [(s, s.ref()) for s in started]
    running = [(s, t) for s, t in threads if t is not None and t.is_alive()]
    _settled([t for _, t in running], deadline)
    return [Alive("thread", f"thread {t.name!r} (daemon={t.daemon}) started in {s.phase} by "
                  f"{s.where} is still running", f"thread:{t.name}", obj=t)
            for s, t in running if t.is_alive()]


def _open_pool(started: Started, pool_pids: set[int], deadline: float) -> list[Alive]:
    pool = started.ref()
    name = type(pool).__name__ if pool is not None else started.label
    where = f"created in {started.phase} by {started.where}"
    if pool is None:
        held = _held_pids(started)
        dropped = _dropped_pool(started, name, where, deadline)
        if dropped is not None:
            pool_pids.update(held)  # the pool's workers: not the test's own children
            return [dropped]
        return _outliving_workers(held, name, where, pool_pids, deadline)
    pids = _pool_pids(pool)
    if _is_open(pool):
        pool_pids.update(pids)  # reported as the pool, not once per worker
        threads = _thread_count(pool)
        if not pids and not threads:
            return []  # never started a worker: it holds nothing, so it is no finding
        size = f"{len(pids)} worker process(es)" if pids else f"{threads} thread(s)"
        return [Alive("pool", f"{name} {where} was never shut down ({size})", f"pool:{name}",
                      obj=pool)]
    busy = _settled(_busy_threads(pool), deadline)
    if busy:
        return [Alive("pool", f"{name} {where} was shut down without waiting; "
                      f"{len(busy)} worker thread(s) still running ({busy[0].name})",
                      f"pool:{name}", obj=pool)]
    # ProcessPoolExecutor.shutdown drops its process table: the one kept at creation remains.
    return _outliving_workers(pids | _held_pids(started), name, where, pool_pids, deadline)


def _held_pids(started: Started) -> set[int]:
    pids: set[int] = set()
    for held in started.held:
        for worker in list(held.values() if isinstance(held, dict) else held):
            pid = getattr(worker, "pid", None)
            if isinstance(pid, int) and not isinstance(worker, threading.Thread):
                pids.add(pid)
    return pids


def _outliving_workers(pids: set[int], name: str, where: str, pool_pids: set[int],
                       deadline: float) -> list[Alive]:
    """Worker processes of a pool that was shut down and still run at ``deadline``: a task
    outlived the shutdown, or the worker ignored SIGTERM (inherited from a test that ignored
    it). Each is a process of its own, so cleanup can end it the way it ends a child."""
    running = [pid for pid in pids if not _exited(pid)]
    while running and clock.monotonic() < deadline:
        clock.sleep(0.01)
        running = [pid for pid in running if not _exited(pid)]
    pool_pids.update(pids)  # found here or gone: not the test's own children
    return [Alive("process", f"worker process {pid} of {name} {where} is still running "
                  f"after the pool was shut down", f"process:{name}", pid=pid, stamp=stamp(pid))
            for pid in running]


def _dropped_pool(started: Started, name: str, where: str, deadline: float) -> Alive | None:
    """A pool object already gone whose worker threads still run (shut down without waiting,
    or dropped while a task ran): its worker containers were kept when it was created."""
    threads = [worker for held in started.held
               for worker in list(held.values() if isinstance(held, dict) else held)
               if isinstance(worker, threading.Thread) and worker.is_alive()]
    threads = _settled(threads, deadline)
    if not threads:
        return None
    return Alive("pool", f"{name} {where} was shut down without waiting (or dropped); "
                 f"{len(threads)} worker thread(s) still running ({threads[0].name})",
                 f"pool:{name}", obj=_Workers(threads))


class _Workers:
    """What cleanup sees of a pool object that is gone: its running worker threads."""

    _shutdown = True

    def __init__(self, threads: list[Any]) -> None:
        self._threads = threads

    def shutdown(self, wait: bool = False, cancel_futures: bool = False) -> None:
        """The pool itself is gone: nothing left to tell its threads."""


def _busy_threads(pool: Any) -> list[Any]:
    workers = list(getattr(pool, "_threads", ()) or ()) + [
        w for w in getattr(pool, "_pool", ()) or () if isinstance(w, threading.Thread)]
    return [t for t in workers if t.is_alive()]


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
    # ThreadPoolExecutor keeps its workers in _threads; multiprocessing's ThreadPool keeps
    # them (threads standing in for processes) in _pool
    return len(_busy_threads(pool))


def _live_processes(log: SpawnLog, mine: list[Started], pool_pids: set[int],
                    skip_setup: bool = False) -> list[Alive]:
    """The test's own processes still alive, and every descendant of theirs.

    Only a process the test started (a recorded ``Popen``/``Process`` of the test's own
    threads, or a child it forked while it ran) roots a family; a process some other
    descendant of this one started (a session service's worker) is never the test's.
    """
    recorded = {s.pid: s for s in mine if s.pid}
    skip = pool_pids | _runtime_helpers()
    family = descendants()
    me = os.getpid()
    forked = any(phase == "call" or phase == "teardown" or (phase == "setup" and not skip_setup)
                 for phase in log.fork_phases)
    roots = [c for c in family if c.pid not in skip and (c.pid in recorded or (
        forked and c.ppid == me and c.pid not in log.foreign
        and c.pid not in (log.before_fork or ()) and _started_during(c, log)))]
    below: dict[int, list[Child]] = {}
    for child in family:
        below.setdefault(child.ppid, []).append(child)
    found: list[Alive] = []
    seen: set[int] = set()
    queue: list[tuple[Child, Child | None]] = [(child, None) for child in roots]
    while queue:
        child, parent = queue.pop(0)
        if child.pid in seen or child.pid in skip:
            continue
        seen.add(child.pid)
        if parent is None or child.state != "Z":  # a grandchild zombie is its parent's to reap
            found.append(_process_leak(child, recorded.get(child.pid), parent))
        queue.extend((grandchild, child) for grandchild in below.get(child.pid, ()))
    return found


def _started_during(child: Child, log: SpawnLog) -> bool:
    # Clock ticks make start times coarse (10 ms): allow that much before the scope opened.
    return child.started is not None and child.started >= log.opened - 0.02


def _process_leak(child: Child, started: Started | None, parent: Child | None) -> Alive:
    label = started.label if started else f"process {child.pid} `{child.cmdline[:80]}`"
    by = f" started in {started.phase} by {started.where}" if started else ""
    if parent is not None:
        by = f" (started by the test's process {parent.pid})"
    obj = started.ref() if started else None
    if child.state == "Z":
        return Alive("process", f"{label}{by} exited but was never waited for (zombie)",
                     f"process:{_command(child)}", pid=child.pid, obj=obj, stamp=child.stamp,
                     zombie=True)
    return Alive("process", f"{label}{by} is still running", f"process:{_command(child)}",
                 pid=child.pid, obj=obj, stamp=child.stamp)


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

class Stopping:
    """A cleanup under way: ``begin`` asks everything to stop without waiting; ``finish``
    waits (bounded by the grace, plus 1 s after SIGKILL) and says what would not stop.

    The two halves are apart so the waiting can happen outside pytest-timeout's timer.
    """

    def __init__(self, leaks: Iterable[Alive], grace: float) -> None:
        self.items = list(leaks)
        self.grace = grace
        self.deadline = 0.0
        self.handles: dict[int, _Process] = {}

    def begin(self) -> None:
        self.deadline = clock.monotonic() + self.grace
        for leak in self.items:
            if leak.kind == "pool":
                _stop_pool(leak.obj)
        # Every member of a family is known (and held by identity) before any is signalled:
        # a grandchild whose parent dies first is still found, never left as an orphan.
        for leak in self.items:
            if leak.kind == "process" and leak.pid:
                self.handles[leak.pid] = _Process(leak.pid, leak.stamp)
        for handle in self.handles.values():
            handle.signal(signal.SIGTERM)

    def finish(self) -> list[str]:
        try:
            return self._finish()
        finally:
            for handle in self.handles.values():
                handle.close()

    def _finish(self) -> list[str]:
        stubborn: list[str] = []
        threads = [leak.obj for leak in self.items if leak.kind == "thread"]
        # Nothing here can stop a thread: when threads are all there is and each is parked,
        # none will end within the grace either (a pool or a process stopped here might
        # still wake one).
        if threads and len(threads) == len(self.items) and _all_parked(threads):
            return [leak.detail for leak in self.items if leak.obj.is_alive()]
        for leak in self.items:
            if self._wait(leak, self.deadline):
                continue
            if leak.kind == "process" and leak.pid in self.handles:
                self._adopt_new_descendants()
                kill = getattr(signal, "SIGKILL", signal.SIGTERM)
                for handle in self.handles.values():
                    if not handle.exited():
                        handle.signal(kill)
                if self._wait(leak, clock.monotonic() + 1.0):
                    continue
            stubborn.append(leak.detail)
        return stubborn

    def _adopt_new_descendants(self) -> None:
        """Children our stubborn processes started during the grace are theirs too."""
        family = [c for c in descendants() if c.pid not in self.handles]
        ours = {pid for pid, handle in self.handles.items() if not handle.exited()}
        for child in sorted(family, key=lambda c: c.started or 0.0):
            if child.ppid in ours:
                self.handles[child.pid] = _Process(child.pid, child.stamp)
                ours.add(child.pid)

    def _wait(self, leak: Alive, deadline: float) -> bool:
        """True once the resource is gone; never reaps a process it has no object for."""
        while True:
            if self._gone(leak):
                return True
            if clock.monotonic() >= deadline:
                return False
            clock.sleep(0.01)

    def _gone(self, leak: Alive) -> bool:
        if leak.kind == "thread":
            return not leak.obj.is_alive()
        if leak.kind == "pool":
            return not _is_open(leak.obj) and not any(t.is_alive() for t in
                                                      getattr(leak.obj, "_threads", ()))
        if leak.obj is not None and hasattr(leak.obj, "poll"):
            return leak.obj.poll() is not None  # the test's own Popen: reaping it is its job
        if leak.obj is not None and hasattr(leak.obj, "is_alive"):
            return not leak.obj.is_alive()
        handle = self.handles.get(leak.pid or 0)
        return handle is None or handle.exited()


def stop(leaks: Iterable[Alive], grace: float) -> list[str]:
    """Stop what was left behind; return one line per resource that would not stop."""
    stopping = Stopping(leaks, grace)
    stopping.begin()
    return stopping.finish()


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


class _Process:
    """One process to stop, held by identity: a pid that another process has taken since is
    never signalled. A pidfd (Linux 5.3+) names the process itself; elsewhere the start-time
    stamp is checked again right before every signal."""

    def __init__(self, pid: int, known: float | None) -> None:
        self.pid = pid
        self.known = known
        self.fd: int | None = None
        self.lost = known is None  # identity unknown: never signalled
        opener = getattr(os, "pidfd_open", None)
        if self.lost or opener is None:
            return
        try:
            self.fd = opener(pid)
        except OSError:  # gone already, or no pidfds here: the stamp check remains
            self.lost = stamp(pid) != known
            return
        if stamp(pid) != known:  # the pid was taken by another process before we held it
            self.close()
            self.lost = True

    def signal(self, sig: int) -> None:
        if self.lost:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.fd is not None:
                signal.pidfd_send_signal(self.fd, sig)
            elif stamp(self.pid) == self.known:
                os.kill(self.pid, sig)

    def exited(self) -> bool:
        if self.lost:
            return True
        if self.fd is not None:
            return bool(select.select([self.fd], [], [], 0)[0])
        return stamp(self.pid) != self.known or _exited(self.pid)

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


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
