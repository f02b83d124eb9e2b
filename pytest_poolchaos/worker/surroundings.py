"""What surrounded a failure: the machine's load, and what was alive when pytest-timeout fired.

Both are computed only for failed phases, so a passing suite pays nothing but one read of
/proc/stat at session start (CPU use is measured from the previous sample).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from ..guard import guarded

if TYPE_CHECKING:
    from ..model import Evidence

__all__ = ["alive_threads", "enrich", "prime", "sample_load"]

#: pytest-timeout's dump: ``~~~~ Stack of <name> (<ident>) ~~~~`` then traceback.format_stack.
# Patterns as text: the re module caches them compiled, and only a timed-out test needs them.
_STACK = r"^~+ Stack of (?P<name>.+?) \((?P<ident>\d+)\) ~+$"
_FRAME = r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)'
_SECTION_END = r"^[+~]{5,}"
#: frames of the machinery a thread waits in; the caller tells what it waited for
_WAIT_MODULES = ("threading.py", "queue.py", "selectors.py", "socket.py", "ssl.py",
                 os.path.join("concurrent", "futures"), os.path.join("multiprocessing", ""))
_OWN_THREADS = ("pytest_timeout", "<unknown>")
#: files of the test runner: a thread whose own code (its first frame past threading.py) is
#: here belongs to the runner (rerunfailures' status server, xdist, coverage), not the test
_RUNNER_FILES = tuple(f"{os.sep}{name}" for name in (
    f"_pytest{os.sep}", f"pluggy{os.sep}", f"xdist{os.sep}", f"execnet{os.sep}",
    "pytest_rerunfailures", "pytest_timeout", f"pytest_poolchaos{os.sep}",
    f"coverage{os.sep}", "pytest_cov"))
_EMPTY: dict[str, float] = {}
MAX_ALIVE = 10


_last_cpu: tuple[float, float] | None = None


@guarded(None)
def prime() -> None:
    """Start the CPU measurement so the first failure gets a meaningful figure.

    On Linux this reads one line of /proc/stat; importing psutil at every session start
    would cost more than the rest of the plugin's start-up.
    """
    global _last_cpu
    _last_cpu = _proc_cpu()
    if _last_cpu is None:
        import psutil

        psutil.cpu_percent(interval=None)


@guarded(_EMPTY)
def sample_load() -> dict[str, float]:
    """1-minute load average, logical cores and system CPU use since the previous sample."""
    global _last_cpu
    load: dict[str, float] = {"cpus": float(os.cpu_count() or 1)}
    if hasattr(os, "getloadavg"):
        load["load1"] = round(os.getloadavg()[0], 2)
    now = _proc_cpu()
    if now is not None and _last_cpu is not None and now[1] > _last_cpu[1]:
        busy, total = now[0] - _last_cpu[0], now[1] - _last_cpu[1]
        load["cpu_percent"] = round(100.0 * busy / total, 1)
        _last_cpu = now
        return load
    try:
        import psutil
    except ImportError:
        return load
    load["cpu_percent"] = float(psutil.cpu_percent(interval=None))
    return load


def _proc_cpu() -> tuple[float, float] | None:
    """(busy, total) clock ticks of all CPUs from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat", "rb") as handle:
            fields = [float(v) for v in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    total = sum(fields)
    return total - idle, total


#: the scope's wrappers of Condition.wait and Thread.join: part of the wait they wrap
_SCOPE_FILE = os.path.join("pytest_poolchaos", "worker", "scope", "spawn.py")
_SCOPE_WAITS = ("wait", "join")


def _wrapper(func: str, path: str) -> bool:
    return func in _SCOPE_WAITS and path.endswith(_SCOPE_FILE)


def alive_threads(text: str) -> list[str]:
    """Threads in pytest-timeout's stack dump, as "thread 'name' waiting in f (file:line)"."""
    found = []
    matches = list(re.finditer(_STACK, text or "", re.M))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end():end]
        cut = re.search(_SECTION_END, body, re.M)
        name = match.group("name")
        if name.startswith(_OWN_THREADS):
            continue  # pytest-timeout's timer and xdist's channel reader say nothing
        stack = body[: cut.start()] if cut else body
        if _runners(stack):
            continue
        found.append(_describe(name, stack))
    return found[:MAX_ALIVE]


def _describe(name: str, stack: str) -> str:
    frames = [(m.group("func"), m.group("file"), m.group("line"))
              for m in re.finditer(_FRAME, stack, re.M)
              if not _wrapper(m.group("func"), m.group("file"))]
    if not frames:
        return f"thread {name!r}"
    func, path, line = frames[-1]
    text = f"thread {name!r} {_verb(path)} in {func} ({_short(path)}:{line})"
    caller = next((f for f in reversed(frames) if not _is_wait(f[1])), None)
    if _is_wait(path) and caller is not None:
        text += f" from {caller[0]} ({_short(caller[1])}:{caller[2]})"
    return text


def _runners(stack: str) -> bool:
    """The thread's own code is the test runner's (see _RUNNER_FILES)."""
    for match in re.finditer(_FRAME, stack, re.M):
        path = match.group("file")
        if os.path.basename(path) != "threading.py" and not _wrapper(match.group("func"), path):
            return any(part in path for part in _RUNNER_FILES)
    return False


def _verb(path: str) -> str:
    return "waiting" if _is_wait(path) else "running"


def _is_wait(path: str) -> bool:
    return any(part in path for part in _WAIT_MODULES) and "site-packages" not in path


def _short(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("..") else os.path.basename(path)


@guarded(None)
def enrich(evidence: Evidence, report: pytest.TestReport) -> Evidence:
    """``evidence`` with the load now and, for a pytest-timeout failure, the alive threads."""
    alive = evidence.alive
    if evidence.timeout is not None and evidence.timeout.fired and evidence.timeout.method in (
            None, "signal"):
        # Empty on purpose when no other thread was alive: the rules read that as "nothing
        # was doing the work" (pytest-timeout prints no dump with a single thread).
        alive = tuple(alive_threads(_dump_text(report)))
    return replace(evidence, load=sample_load(), alive=alive)


def _dump_text(report: pytest.TestReport) -> str:
    # With the signal method the dump is printed while output is captured, so it is in the
    # report's captured sections; keep the longrepr too for plugins that print elsewhere.
    parts = [content for _, content in report.sections]
    parts.append(str(report.longrepr or ""))
    return "\n".join(parts)
