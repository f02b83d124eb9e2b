"""Live descendants of this process, cheaply, without ever reaping one.

On Linux each task's ``/proc/self/task/<tid>/children`` file lists the children that task
forked (about 30 µs for all of them; psutil's scan of every process on the system costs about
5 ms). Elsewhere psutil is the fallback. Nothing here calls ``waitpid``: reaping would steal
the exit code a ``Popen`` or ``multiprocessing.Process`` object is waiting for.
"""

from __future__ import annotations

import os
import time

from ... import clock
from ...model.frozen import frozen

_PROC = "/proc/self/task"


@frozen
class Child:
    pid: int
    ppid: int
    state: str  # one letter as in /proc/<pid>/stat; "Z" is a zombie
    started: float | None  # seconds since the epoch, None when unknown
    cmdline: str
    #: what tells this process apart from a later one given the same pid (its start time in
    #: clock ticks since boot, or psutil's create time); None when unknown
    stamp: float | None = None


def descendants() -> list[Child]:
    """Every live descendant of this process (children first, then theirs)."""
    if os.path.isdir(_PROC) and _has_children_files():
        pids = _proc_descendants(os.getpid())
        boot = _boot_time()
        return [child for child in (_proc_child(pid, boot) for pid in pids)
                if child is not None]
    return _psutil_descendants()


def _has_children_files() -> bool:
    return os.path.exists(f"{_PROC}/{os.getpid()}/children")


def _children_of(pid: int) -> list[int]:
    tasks = f"/proc/{pid}/task"
    found: list[int] = []
    try:
        for tid in os.listdir(tasks):
            with open(f"{tasks}/{tid}/children", "rb") as handle:
                found.extend(int(p) for p in handle.read().split())
    except OSError:  # the process or one of its threads ended while we looked
        pass
    return found


def child_pids() -> list[int]:
    """This process's direct children now (cheap on Linux: one small file per thread)."""
    if _has_children_files():
        return _children_of(os.getpid())
    return [child.pid for child in descendants() if child.ppid == os.getpid()]


def _proc_descendants(root: int) -> list[int]:
    result: list[int] = []
    queue = _children_of(root)
    while queue:
        pid = queue.pop(0)
        result.append(pid)
        queue.extend(_children_of(pid))
    return result


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _boot_time() -> float:
    """The boot moment in epoch seconds, to the microsecond: /proc/stat's ``btime`` is whole
    seconds, which dates a child started early in a second up to 1 s too early."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        try:
            return clock.wall() - time.clock_gettime(boottime)
        except OSError:
            pass
    try:
        with open("/proc/uptime", "rb") as handle:
            return clock.wall() - float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def _proc_child(pid: int, boot: float | None = None) -> Child | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().replace(b"\0", b" ").strip().decode(errors="replace")
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    close = stat.rfind(b")")
    fields = stat[close + 2:].split()
    if not cmdline:  # a zombie's (or a kernel thread's) command line is gone: its name is not
        cmdline = stat[stat.find(b"(") + 1:close].decode(errors="replace")
    ticks = int(fields[19])
    boot = _boot_time() if boot is None else boot
    started = boot + ticks / _TICKS if boot else None
    return Child(pid, int(fields[1]), fields[0].decode(), started, cmdline[:200], float(ticks))


def stamp(pid: int) -> float | None:
    """The identity stamp of the process now holding ``pid`` (see ``Child.stamp``)."""
    if os.path.isdir(_PROC):
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
            return float(stat[stat.rfind(b")") + 2:].split()[19])
        except (OSError, IndexError, ValueError):
            return None
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _psutil_descendants() -> list[Child]:
    import psutil

    found = []
    try:
        for proc in psutil.Process().children(recursive=True):
            try:
                with proc.oneshot():
                    zombie = proc.status() == psutil.STATUS_ZOMBIE
                    found.append(Child(proc.pid, proc.ppid(), "Z" if zombie else "R",
                                       proc.create_time(), " ".join(_cmdline(proc))[:200],
                                       proc.create_time()))
            except psutil.Error:
                continue
    except psutil.Error:
        return []
    return found


def _cmdline(proc: object) -> list[str]:
    import psutil

    try:
        return list(proc.cmdline())  # type: ignore[attr-defined]
    except psutil.Error:
        return []
