"""Runs waiting to enter the history file: a green run's record without loading SQLite.

A run in which every test passed quickly reads nothing from the history, so it need not open
the database: importing sqlite3 and the store and writing a transaction cost a one-test run
more than all the rest of the plugin's history. Such a run appends one JSON line to
``<history file>.pending`` instead (one ``os.write`` with ``O_APPEND``: concurrent runs never
interleave), and ``HistoryStore.open`` moves the waiting runs into the database before anyone
reads or writes it. The file is also folded as soon as it outgrows ``FOLD_BYTES``, so it
stays small whether or not a run ever fails.

Writers and the folder take an exclusive ``flock`` on the pending file: the folder reads,
stores and empties it while no run can append a line it would then erase.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: appends are still whole lines; folding races are not guarded
    fcntl = None  # type: ignore[assignment]

__all__ = ["FOLD_BYTES", "append", "claimed", "exists", "path_of"]

#: a pending file this large is folded into the database by the run that made it so
FOLD_BYTES = 1 << 20


def path_of(history: Path) -> Path:
    return history.with_name(history.name + ".pending")


def append(history: Path, run: dict[str, Any]) -> int:
    """Add one run (builtins only) to the pending file; the file's size after it."""
    history.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(run, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
    fd = os.open(path_of(history), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        _lock(fd)
        os.write(fd, line)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


@contextmanager
def claimed(history: Path) -> Iterator[list[dict[str, Any]]]:
    """The waiting runs, locked against appends; emptied when the block ends without error
    (the runs are in the database then; one left there twice is ignored by its run id)."""
    try:
        fd = os.open(path_of(history), os.O_RDWR)
    except FileNotFoundError:
        yield []
        return
    try:
        _lock(fd)
        yield list(_runs(_read(fd)))
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def exists(history: Path) -> bool:
    return path_of(history).is_file()


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed


def _read(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _runs(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        try:
            run = json.loads(line)
        except ValueError:  # a line cut short by a crash mid-write: that run is lost alone
            continue
        if isinstance(run, dict) and run.get("id") and run.get("created"):
            yield run
