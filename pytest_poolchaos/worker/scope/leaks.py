"""Built-in leak probes: resources a test left open that the spawn log does not see.

* ``OpenFiles``: sockets and regular files (file descriptors) opened during the test and still
  open after its teardown. A new descriptor always takes the lowest free number, so the
  snapshot is that number (one ``dup``/``close``, about a microsecond) and, where Linux tells
  it, the number of open descriptors (a ``stat``, about 3 microseconds); the descriptor table
  is listed only when either moved.
* ``PendingTasks``: asyncio tasks created during the test and still pending on a loop that is
  not closed (a module- or session-scoped loop, or one running in a thread).
* ``CheckedOut``: SQLAlchemy connections checked out of a pool during the test and never
  returned; looked at only when SQLAlchemy is already imported.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ...probe import Change, Held, Probe
from ...sanitize import clip, printable, redact_text
from .forks import CHILD_FORKS

__all__ = ["CheckedOut", "OpenFiles", "PendingTasks"]

_FD_DIRS = ("/proc/self/fd", "/dev/fd")
_SHOWN = 160


def _fd_dir() -> str | None:
    for path in _FD_DIRS:
        if os.path.isdir(path):
            return path
    return None


class OpenFiles(Probe):
    kind = "fd"

    def __init__(self) -> None:
        self.dir = _fd_dir()
        self._key = (-1, -1)
        self._listing: frozenset[int] = frozenset()
        #: the descriptor directory held open, (fd, fork count, (device, inode)): fstat on it
        #: skips the path walk a stat of /proc/self/fd makes every test
        self._held: tuple[int, int, tuple[int, int]] | None = self._hold()

    def _hold(self) -> tuple[int, int, tuple[int, int]] | None:
        if self.dir != _FD_DIRS[0]:
            return None
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        found = os.fstat(fd)
        return fd, len(CHILD_FORKS), (found.st_dev, found.st_ino)

    def _ours(self, held: tuple[int, int, tuple[int, int]]) -> os.stat_result | None:
        # In a forked child it would count the parent's; after a test closed it, the number
        # may be another file's: then it is not ours (and never closed by us).
        fd, forks, identity = held
        try:
            found = os.fstat(fd)
        except OSError:
            return None
        if forks != len(CHILD_FORKS) or (found.st_dev, found.st_ino) != identity:
            return None
        return found

    def _count(self) -> int:
        held = self._held
        if held is not None:
            found = self._ours(held)
            if found is not None:
                return found.st_size
            self._held = None
        assert self.dir is not None
        return os.stat(self.dir).st_size

    def take(self) -> frozenset[int] | None:
        if self.dir is None:
            return None
        try:
            # Linux (6.2 on) gives the number of open descriptors as the size of the
            # directory: a test that opened two and closed the lower one moved the count,
            # though not the lowest free number (elsewhere the size stays 0).
            count = self._count()
            lowest = os.dup(2)
        except OSError:  # no stderr to copy: nothing cheap to watch
            return None
        os.close(lowest)
        if (lowest, count) != self._key:
            self._listing = self._list(lowest)
            self._key = (lowest, count)
        return self._listing

    def close(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if self._ours(held) is not None:
            os.close(held[0])

    def _list(self, lowest: int) -> frozenset[int]:
        assert self.dir is not None
        # Listing the directory opens one descriptor of its own: the lowest free one.
        return frozenset(int(name) for name in os.listdir(self.dir) if name.isdigit()) - {lowest}

    def diff(self, before: Any, after: Any) -> Sequence[Change | Held]:
        if before is None or after is None:
            return []
        found = []
        for fd in sorted(after - before):
            held = self._describe(fd)
            if held is not None:
                found.append(held)
        return found

    def _describe(self, fd: int) -> Held | None:
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return None  # closed since: a descriptor of the listing, or of another thread
        if stat.S_ISSOCK(mode):
            return Held("socket", f"socket (fd {fd}{_socket_text(fd)}) opened in the test is "
                        "still open", "socket")
        if stat.S_ISREG(mode):
            path = self._path(fd)
            return Held("file", f"file {path} (fd {fd}) opened in the test is still open",
                        f"file:{os.path.basename(path)}")
        return None  # pipes, devices, epoll: reported with the process or loop that holds them

    def _path(self, fd: int) -> str:
        try:
            target = os.readlink(f"{self.dir}/{fd}")
        except OSError:
            return "?"
        return clip(printable(redact_text(target)), _SHOWN)


def _socket_text(fd: int) -> str:
    socket = sys.modules.get("socket")
    if socket is None:
        return ""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return ""
    try:
        local = sock.getsockname()
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        family = getattr(sock.family, "name", str(sock.family)).removeprefix("AF_").lower()
    except OSError:
        return ""
    finally:
        sock.detach()  # the descriptor is the test's: never close it here
    if family == "unix" and not local and not peer:
        return ", unix, unnamed: a socketpair, e.g. an event loop's self-pipe"
    shown = f", {family} {_address(local)}" + (f" -> {_address(peer)}" if peer else "")
    return clip(printable(redact_text(shown)), _SHOWN)


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    if isinstance(address, bytes):
        return address.decode("utf-8", "replace") or "unnamed"
    return str(address) or "unnamed"


# -- asyncio ----------------------------------------------------------------------------------

_EMPTY: frozenset[Any] = frozenset()
_NO_REGISTRY = object()


def _task_registry() -> Any:
    """The weak set of tasks asyncio keeps (3.11: ``_all_tasks``; 3.12, 3.13:
    ``_scheduled_tasks``); None where tasks are kept elsewhere or asyncio is not imported."""
    tasks = sys.modules.get("asyncio.tasks")
    if tasks is None:
        return None
    for name in ("_scheduled_tasks", "_all_tasks"):
        found = getattr(tasks, name, None)
        if found is not None and hasattr(found, "data"):
            return found
    return None


class PendingTasks(Probe):
    kind = "asyncio-task"

    def __init__(self) -> None:
        self._registry: Any = None

    def take(self) -> Any:
        registry = self._registry
        if registry is None:
            if "asyncio.tasks" not in sys.modules:
                return None
            registry = self._registry = _task_registry()
            if registry is None:  # kept where this Python keeps them: not followed
                self._registry = _NO_REGISTRY
                return None
        elif registry is _NO_REGISTRY:
            return None
        # Weak references only: the snapshot keeps no task alive.
        return registry.data.copy() if registry.data else _EMPTY

    def diff(self, before: Any, after: Any) -> Sequence[Change | Held]:
        if after is None:
            return []
        found = []
        for ref in after - (before or _EMPTY):
            task = ref()
            if task is None or task.done():
                continue
            loop = task.get_loop()
            if loop.is_closed():
                continue
            coro = task.get_coro()
            name = getattr(coro, "__qualname__", None) or type(coro).__name__
            found.append(Held(self.kind, f"asyncio task {task.get_name()!r} running {name}() is "
                              "still pending on a loop that outlives the test",
                              f"asyncio-task:{name}", _canceller(loop, task)))
        return sorted(found, key=lambda held: held.detail)


def _canceller(loop: Any, task: Any) -> Any:
    def cancel() -> None:
        loop.call_soon_threadsafe(task.cancel)

    return cancel


# -- SQLAlchemy ---------------------------------------------------------------------------------

class CheckedOut(Probe):
    """Connections checked out of any SQLAlchemy pool, followed through SQLAlchemy's own
    class-level pool events once SQLAlchemy is imported (never importing it)."""

    kind = "db-connection"

    def __init__(self) -> None:
        #: id(connection record) -> the pool it was checked out of
        self.out: dict[int, Any] = {}
        self._listening: Any = None

    def take(self) -> Any:
        if self._listening is None:
            if "sqlalchemy.pool" not in sys.modules:
                return None
            self._listen()
        return frozenset(self.out) if self.out else _EMPTY

    def _listen(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        out = self.out

        def checkout(dbapi: Any, record: Any, proxy: Any) -> None:
            out[id(record)] = getattr(record, "_ConnectionRecord__pool", None)

        def checkin(dbapi: Any, record: Any) -> None:
            out.pop(id(record), None)

        listeners: list[tuple[str, Callable[..., None]]] = [
            ("checkout", checkout), ("checkin", checkin), ("detach", checkin)]
        for name, listener in listeners:
            event.listen(Pool, name, listener)
        self._listening = (event, Pool, listeners)
        self._already_out()

    def _already_out(self) -> None:
        """Connections checked out before SQLAlchemy was seen: once per session, the test
        that imported it may hold one already."""
        import gc

        fairy = getattr(sys.modules.get("sqlalchemy.pool.base"), "_ConnectionFairy", None)
        if fairy is None:
            return
        for obj in gc.get_objects():
            if type(obj) is fairy and getattr(obj, "_counter", 0) > 0:
                record = getattr(obj, "_connection_record", None)
                if record is not None:
                    self.out[id(record)] = getattr(obj, "_pool", None)

    def close(self) -> None:
        if self._listening is None:
            return
        event, pool, listeners = self._listening
        for name, listener in listeners:
            if event.contains(pool, name, listener):
                event.remove(pool, name, listener)
        self._listening = None

    def diff(self, before: Any, after: Any) -> Sequence[Change | Held]:
        if not after:
            return []
        found = []
        for key in sorted(after - (before or _EMPTY)):
            pool = self.out.get(key)
            found.append(Held(self.kind, f"a connection checked out of {_pool_text(pool)} was "
                              "never returned (close the Connection or Session, or use `with "
                              "engine.connect()`)", f"db-connection:{type(pool).__name__}"))
        return found


def _pool_text(pool: Any) -> str:
    if pool is None:
        return "a SQLAlchemy pool"
    dialect = getattr(getattr(pool, "_dialect", None), "name", None)
    try:
        status = pool.status()
    except Exception:
        status = ""
    text = f"{type(pool).__name__}{f' ({dialect})' if dialect else ''}"
    return clip(printable(text + (f": {status}" if status else "")), _SHOWN)
