from __future__ import annotations

import multiprocessing
import subprocess
import time
from subprocess import run
from typing import Any


def sort_lines(lines: list[str]) -> list[str]:
    done = subprocess.run(["sort"], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          check=True)
    return done.stdout.split()


def run_tool(args: list[str], data: str, timeout: float) -> str:
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(data, timeout=timeout)
    return out


def reload_agent() -> int:
    return run(["pipeline-agent", "reload"], check=True).returncode


def _worker(conn: Any) -> None:
    while True:
        item = conn.recv()
        if item == "bad-record":
            return  # the worker gives up on malformed input and exits
        conn.send(item.upper())


def feed_worker(items: list[str]) -> list[str]:
    """Send items one by one to a worker process; it answers each."""
    parent, child_end = multiprocessing.Pipe()
    worker = multiprocessing.Process(target=_worker, args=(child_end,), daemon=True)
    worker.start()
    child_end.close()
    answers = []
    try:
        for item in items:
            parent.send(item)
            time.sleep(0.2)  # pace the worker: one item at a time
        while parent.poll(0.5):
            answers.append(parent.recv())
    finally:
        parent.close()
        worker.join(2)
    return answers
