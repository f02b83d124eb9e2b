from __future__ import annotations

import multiprocessing
import subprocess
import sys
from collections.abc import Callable
from typing import Any


def run_isolated(fn: Callable[[], Any], timeout: float = 5.0) -> int:
    """Run ``fn`` in a child process (crash containment); returns its exit code."""
    child = multiprocessing.Process(target=fn, name="probe")
    child.start()
    child.join(timeout)
    return child.exitcode if child.exitcode is not None else -1


def _answer(conn: Any, payload: Any) -> None:
    if payload is not None:
        conn.send(payload)
    conn.close()


def run_with_pipe(payload: Any) -> Any:
    parent, child_end = multiprocessing.Pipe()
    child = multiprocessing.Process(target=_answer, args=(child_end, payload))
    child.start()
    child_end.close()
    try:
        return parent.recv()
    finally:
        child.join(5)
        parent.close()


def healthcheck(script: str, timeout: float) -> str:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, check=True)
    return done.stdout.strip()


def selfcheck() -> None:
    """A trivial target the probe uses to check that child processes start at all."""
