"""Fleet tooling: process-based workers, subprocess tools, shard phases and spool files."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: Workers are forked so they inherit the caller's hooks and synchronisation objects.
CTX = multiprocessing.get_context("fork")


class WorkerCrashed(RuntimeError):
    pass


class ToolFailed(RuntimeError):
    pass


# -- counting rows in several processes ---------------------------------------------------------

def _count_rows(shared: Any, rows: list[str], on_progress: Callable[[], None] | None) -> None:
    for _ in rows:
        seen = shared.value
        if on_progress is not None:
            on_progress()
        shared.value = seen + 1


def count_rows(parts: list[list[str]], on_progress: Callable[[], None] | None = None) -> int:
    """Count rows of every part, one process per part, into one shared counter."""
    shared = CTX.Value("i", 0)
    procs = [CTX.Process(target=_count_rows, args=(shared, part, on_progress)) for part in parts]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(5)
    return int(shared.value)


# -- leader election through a pid file ----------------------------------------------------------

def try_lead(pidfile: Path, before_claim: Callable[[], None] | None = None) -> bool:
    """Become the leader unless another process already wrote the pid file."""
    if pidfile.exists():
        return False
    if before_claim is not None:
        before_claim()
    pidfile.write_text(str(os.getpid()))
    return True


def _candidate(pidfile: Path, results: Any, before_claim: Callable[[], None] | None) -> None:
    results.put(try_lead(pidfile, before_claim))


def elect(pidfile: Path, candidates: int = 2,
          before_claim: Callable[[], None] | None = None) -> int:
    """Start candidate processes; return how many of them believe they lead."""
    results = CTX.Queue()
    procs = [CTX.Process(target=_candidate, args=(pidfile, results, before_claim))
             for _ in range(candidates)]
    for proc in procs:
        proc.start()
    leaders = sum(bool(results.get(timeout=5)) for _ in procs)
    for proc in procs:
        proc.join(5)
    return leaders


# -- exporting rows from a child process ---------------------------------------------------------

def _export(rows: int, out: Any) -> None:
    out.put([f"row-{index:06d}" for index in range(rows)])


def export_rows(rows: int, timeout: float = 1.0) -> list[str]:
    out = CTX.Queue()
    proc = CTX.Process(target=_export, args=(rows, out))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise TimeoutError(f"export worker {proc.pid} still running after {timeout}s")
    return out.get(timeout=1)


# -- rendering pages in a pool -------------------------------------------------------------------

def render(page: int) -> str:
    threading.Event().wait(0.5)  # layout and rasterise
    return f"page-{page}.png"


def render_all(pages: list[int]) -> list[str]:
    with CTX.Pool(2) as pool:
        pending = [pool.apply_async(render, (page,)) for page in pages]
    return [result.get(timeout=1) for result in pending]


# -- thumbnails in a memory-capped child ---------------------------------------------------------

#: Bytes a thumbnail worker may use; the container kills the worker beyond it.
MEMORY_BUDGET = 32 * 1024 * 1024


def _thumbnail(side: int) -> None:
    if side * side * 4 > MEMORY_BUDGET:
        # What the kernel's OOM killer does to a container process over its memory limit.
        os.kill(os.getpid(), signal.SIGKILL)
    bytearray(side * side * 4)


def thumbnail(side: int) -> str:
    proc = CTX.Process(target=_thumbnail, args=(side,))
    proc.start()
    proc.join(5)
    if proc.exitcode != 0:
        raise WorkerCrashed(f"thumbnail worker exited with {proc.exitcode}")
    return f"thumb-{side}.png"


# -- compressing through an external tool --------------------------------------------------------

_COMPRESSOR = """
import sys, zlib
level = int(sys.argv[1])
if not 1 <= level <= 9:
    sys.stderr.write(f"unsupported level {level}\\n")
    sys.exit(2)
sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read(), level))
"""


def compress(data: bytes, level: int = 6) -> bytes:
    """Level 0 stores the data uncompressed."""
    with subprocess.Popen([sys.executable, "-c", _COMPRESSOR, str(level)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(data)
        proc.stdin.close()
        return proc.stdout.read()


def run_tool(script: str, timeout: float = 0.5) -> str:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, check=True)
    return done.stdout.strip()


def tool_version() -> str:
    result = subprocess.run(["fleetctl", "--version"], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise ToolFailed(f"fleetctl --version failed: {result.stderr}")
    return result.stdout.strip().removeprefix("v")


# -- shard phases --------------------------------------------------------------------------------

def run_shards(loaders: list[Callable[[], Any]], phase_timeout: float = 0.3) -> list[Any]:
    """Load every shard in its own thread; all shards merge together once all are loaded."""
    barrier = threading.Barrier(len(loaders), timeout=phase_timeout)
    loaded: list[Any] = [None] * len(loaders)
    errors: list[BaseException] = []

    def shard(index: int) -> None:
        try:
            loaded[index] = loaders[index]()
            barrier.wait()
        except Exception as error:  # handed back to the caller
            errors.append(error)

    threads = [threading.Thread(target=shard, args=(index,), name=f"shard-{index}")
               for index in range(len(loaders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    if errors:
        raise errors[0]
    return loaded


# -- model probe ---------------------------------------------------------------------------------

def _load_model(conn: Any, load: Callable[[], Any]) -> None:
    conn.send(load())
    conn.close()


def probe_model(load: Callable[[], Any], wait: float = 0.2) -> Any:
    """Load a model in a child process; None if it is not ready in time."""
    parent, child = CTX.Pipe()
    proc = CTX.Process(target=_load_model, args=(child, load))
    proc.start()
    try:
        if not parent.poll(wait):
            return None
        return parent.recv()
    finally:
        proc.terminate()
        proc.join(5)


# -- process farm --------------------------------------------------------------------------------

class Farm:
    def __init__(self, workers: int = 4, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = ()) -> None:
        self.pool = cf.ProcessPoolExecutor(workers, mp_context=CTX, initializer=initializer,
                                           initargs=initargs)
        self.completed: list[int] = []

    def run(self, fn: Callable[[int], int], jobs: Iterable[int]) -> list[int]:
        futures = [self.pool.submit(fn, job) for job in jobs]
        for future in cf.as_completed(futures, timeout=5):
            self.completed.append(future.result())
        return self.completed

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# -- spool files and shard listings --------------------------------------------------------------

def write_spool(directory: Path, name: str, payload: str) -> Path:
    path = directory / name
    path.write_text(payload)
    return path


def active_shards(assignments: dict[str, list[int]]) -> list[int]:
    """Shard ids with at least one host, in ascending order."""
    return list({shard for shards in assignments.values() for shard in shards})
