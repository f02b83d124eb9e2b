"""Runs a helper command as a child process and hands back its output."""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import subprocess
import sys
import threading


class ChildFailed(RuntimeError):
    pass


def run_helper(args: list[str]) -> dict[str, object]:
    proc = subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=10)
    if proc.returncode:
        raise ChildFailed(f"helper exited with {proc.returncode}")
    return json.loads(out)


def in_background(fn, *args: object) -> queue.Queue[object]:  # type: ignore[no-untyped-def]
    """Runs ``fn`` on a helper thread; its result arrives on the returned queue."""
    results: queue.Queue[object] = queue.Queue()
    threading.Thread(target=lambda: results.put(fn(*args)), daemon=True).start()
    return results


def in_process(fn, *args: object, timeout: float = 5) -> int:  # type: ignore[no-untyped-def]
    proc = mp.Process(target=fn, args=args)
    proc.start()
    proc.join(timeout)
    return proc.exitcode if proc.exitcode is not None else -1
