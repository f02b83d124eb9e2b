"""Helpers shared by the corpus: a line-oriented child process with a bounded read."""

from __future__ import annotations

import selectors
import subprocess
import sys
import time


def read_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    """The child's next stdout line, or None when none came within ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
    return process.stdout.readline().strip()


def python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-S", "-c", code], stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
