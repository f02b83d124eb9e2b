"""What surrounded a failure: the machine's load, and what was alive when pytest-timeout fired.

Both are computed only for failed phases, so a passing suite pays nothing but one
``psutil.cpu_percent`` call at session start (it measures from the previous call, so the
first call primes it).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

import pytest

from .guard import guarded
from .model import Evidence

__all__ = ["alive_threads", "enrich", "prime", "sample_load"]

#: pytest-timeout's dump: ``~~~~ Stack of <name> (<ident>) ~~~~`` then traceback.format_stack.
_STACK = re.compile(r"^~+ Stack of (?P<name>.+?) \((?P<ident>\d+)\) ~+$", re.M)
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)', re.M)
_SECTION_END = re.compile(r"^[+~]{5,}", re.M)
#: frames of the machinery a thread waits in; the caller tells what it waited for
_WAIT_MODULES = ("threading.py", "queue.py", "selectors.py", "socket.py", "ssl.py",
                 os.path.join("concurrent", "futures"), os.path.join("multiprocessing", ""))
_OWN_THREADS = ("pytest_timeout", "<unknown>")
_EMPTY: dict[str, float] = {}
MAX_ALIVE = 10


@guarded(None)
def prime() -> None:
    """Start psutil's CPU measurement so the first failure gets a meaningful figure."""
    import psutil

    psutil.cpu_percent(interval=None)


@guarded(_EMPTY)
def sample_load() -> dict[str, float]:
    """1-minute load average, logical cores and system CPU use since the previous sample."""
    load: dict[str, float] = {"cpus": float(os.cpu_count() or 1)}
    if hasattr(os, "getloadavg"):
        load["load1"] = round(os.getloadavg()[0], 2)
    try:
        import psutil
    except ImportError:
        return load
    load["cpu_percent"] = float(psutil.cpu_percent(interval=None))
    return load


def alive_threads(text: str) -> list[str]:
    """Threads in pytest-timeout's stack dump, as "thread 'name' waiting in f (file:line)"."""
    found = []
    matches = list(_STACK.finditer(text or ""))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end():end]
        cut = _SECTION_END.search(body)
        name = match.group("name")
        if name.startswith(_OWN_THREADS):
            continue  # pytest-timeout's timer and xdist's channel reader say nothing
        found.append(_describe(name, body[: cut.start()] if cut else body))
    return found[:MAX_ALIVE]


def _describe(name: str, stack: str) -> str:
    frames = [(m.group("func"), m.group("file"), m.group("line")) for m in _FRAME.finditer(stack)]
    if not frames:
        return f"thread {name!r}"
    func, path, line = frames[-1]
    text = f"thread {name!r} {_verb(path)} in {func} ({_short(path)}:{line})"
    caller = next((f for f in reversed(frames) if not _is_wait(f[1])), None)
    if _is_wait(path) and caller is not None:
        text += f" from {caller[0]} ({_short(caller[1])}:{caller[2]})"
    return text


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
    extra: dict[str, Any] = dict(evidence.extra)
    if evidence.timeout is not None and evidence.timeout.fired and evidence.timeout.method in (
            None, "signal"):
        # Empty on purpose when no other thread was alive: the rules read that as "nothing
        # was doing the work" (pytest-timeout prints no dump with a single thread).
        extra["alive"] = alive_threads(_dump_text(report))
    return replace(evidence, load=sample_load(), extra=extra)


def _dump_text(report: pytest.TestReport) -> str:
    # With the signal method the dump is printed while output is captured, so it is in the
    # report's captured sections; keep the longrepr too for plugins that print elsewhere.
    parts = [content for _, content in report.sections]
    parts.append(str(report.longrepr or ""))
    return "\n".join(parts)
