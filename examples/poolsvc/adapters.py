"""Adapters start workers: real ones run a Python process each, the mock one runs nothing."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from pathlib import Path
from subprocess import PIPE, Popen, TimeoutExpired
from typing import Any
from unittest.mock import create_autospec

WORKER_SCRIPT = Path(__file__).with_name("worker.py")


class WorkerGone(RuntimeError):
    """The worker process is no longer there to answer."""


class RealWorker:
    """One worker process, spoken to over its stdin/stdout, one request at a time."""

    def __init__(self, index: int, warmup_s: float = 0.0) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._ready = False
        self._proc = Popen(
            [sys.executable, "-u", str(WORKER_SCRIPT), str(warmup_s)],
            stdin=PIPE, stdout=PIPE, text=True,
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            try:
                if not self._ready:
                    self._read()  # the worker's "ready" line
                    self._ready = True
                self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
                self._proc.stdin.flush()
                return self._read()
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise self._gone() from exc

    def stop(self, timeout: float = 5.0) -> int:
        """Ask the worker to finish and wait for it; returns its exit code."""
        if self.alive:
            with contextlib.suppress(WorkerGone):
                self.call("stop")
        try:
            return self._proc.wait(timeout)
        except TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        self._proc.kill()
        return self._proc.wait()

    def close(self) -> None:
        """Stop the process if needed and release its pipes."""
        if self.alive:
            self.kill()
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise self._gone()
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _gone(self) -> WorkerGone:
        code = self._proc.wait(timeout=5)
        return WorkerGone(f"worker {self.index} (pid {self.pid}) exited with code {code}")


class RealAdapter:
    name = "real"

    def start_worker(self, index: int, warmup_s: float = 0.0) -> RealWorker:
        return RealWorker(index, warmup_s)


class MockAdapter:
    """In-process doubles of RealWorker: fast, no processes; they echo and nothing more."""

    name = "mock"

    def start_worker(self, index: int, warmup_s: float = 0.0) -> Any:
        worker = create_autospec(RealWorker, instance=True)
        worker.index = index
        worker.alive = True
        worker.call.side_effect = lambda op, **args: {"ok": True, "value": args.get("value")}
        return worker


def adapter_named(name: str) -> RealAdapter | MockAdapter:
    return {"real": RealAdapter, "mock": MockAdapter}[name]()
