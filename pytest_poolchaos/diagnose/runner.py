"""Run a few tests in a fresh ``python -m pytest`` subprocess and read back what happened.

Every diagnostic subprocess (isolated reruns, pair runs, bisection steps) goes through
``Runner.run``: same rootdir, ini and passed-through plugins as the main run, serial, with the
environment as it was before the first test (the main run's leftovers must not leak in), and a
bounded timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .. import clock
from ..guard import record
from ..inherited import restored
from ..model import Evidence
from ..settings import Settings
from . import child

# Options of the invocation that change how tests run, so the subprocess must see them too.
_PASS_WITH_VALUE = ("-p", "-o", "--override-ini", "--timeout", "--timeout-method",
                    "--import-mode", "--confcutdir", "-W", "--pythonwarnings")
# Nobody reads a diagnostic run's tracebacks, only the crash line (the same in every style):
# pytest's own style parses each traceback entry's source file, ~0.1 s per failure.
_TB = "--tb=native"
# ini keys of the plugin that can change what a test does: a light run keeps the plugin then
_SHAPES_OUTCOMES = ("poolchaos_isolate", "poolchaos_leaks")
_OWN_PLUGINS = {"poolchaos", "no:poolchaos", "pytest_poolchaos.plugin"}
_DROP_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_CURRENT_TEST",
             "PYTEST_XDIST_TESTRUNUID", child.OUT, child.TIMEOUT, child.ONLY)


@dataclass(frozen=True)
class ChildTest:
    """One test as a diagnostic subprocess saw it."""

    nodeid: str
    outcome: str
    duration_s: float
    call_s: float = 0.0
    message: str = ""
    evidence: Evidence | None = None


@dataclass(frozen=True)
class ChildRun:
    nodeids: tuple[str, ...]
    seconds: float
    returncode: int | None
    killed: bool = False
    tests: Mapping[str, ChildTest] = field(default_factory=dict)

    def result(self, nodeid: str) -> ChildTest:
        """The test's result; a test the run never finished counts as failed (it was killed)."""
        found = self.tests.get(nodeid)
        if found is not None:
            return found
        why = ("killed after the diagnostic time limit" if self.killed
               else f"the pytest subprocess ended (status {self.returncode}) before it finished")
        return ChildTest(nodeid, "failed", self.seconds, message=why)


class Runner:
    """Starts diagnostic pytest subprocesses and counts them."""

    def __init__(self, config: pytest.Config, settings: Settings,
                 environ: Mapping[str, str], inherited: dict[str, Any] | None = None) -> None:
        self.cwd = Path(config.rootpath)
        self.base = _base_args(config, settings)
        self.light = _light_args(config) if _can_go_light(config) else self.base
        self.environ = {k: v for k, v in (environ or os.environ).items() if k not in _DROP_ENV}
        #: what a child inherits, as it was before the first test: the current state may
        #: be an earlier test's (a tightened umask, an ignored signal, a lowered limit)
        self.inherited = inherited
        self.runs = 0

    def run(self, nodeids: Sequence[str], timeout: float,
            raise_limit: float | Mapping[str, float] | None = None, light: bool = False,
            extra: Sequence[str] = (), only: Sequence[str] = ()) -> ChildRun:
        """``light``: only the last test's outcome matters, so the plugin can stay out.
        ``extra``: more options for the plugin (a chaos spec); not with ``light``.
        ``raise_limit``: one limit for every test, or a limit per nodeid (a batch).
        ``only``: of all that ``nodeids`` (files, say) collect, run these tests only."""
        self.runs += 1
        with tempfile.TemporaryDirectory(prefix="poolchaos-diagnose-") as tmp:
            out = Path(tmp, "tests.jsonl")
            env = dict(self.environ, **{child.OUT: str(out)})
            if only:
                env[child.ONLY] = json.dumps(list(only))
            if isinstance(raise_limit, int | float):
                env[child.TIMEOUT] = f"{raise_limit:.3f}"
            elif raise_limit:
                env[child.TIMEOUT] = json.dumps({k: round(v, 3) for k, v in raise_limit.items()})
            # No report file: the controller writes none in a diagnostic child (child.OUT).
            args = [*(self.light if light else [*self.base, *extra]), *nodeids]
            start = time.perf_counter()
            returncode, killed = _call(args, self.cwd, env, max(1.0, timeout), self.inherited,
                                       out)
            seconds = time.perf_counter() - start
            tests = _read(out)
        return ChildRun(tuple(nodeids), seconds, returncode, killed, tests)


def _base_args(config: pytest.Config, settings: Settings) -> list[str]:
    args = [sys.executable, "-m", "pytest", "-p", "poolchaos", "-p", child.__name__,
            "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--no-header", _TB,
            f"--rootdir={config.rootpath}", "--poolchaos-rerun=0", "--poolchaos-no-bisect",
            "--poolchaos-confirm=off",
            "--poolchaos-journal=off", "--poolchaos-annotations=off",
            # quiet and single unless a caller adds noise (an ini file may ask for either)
            "--poolchaos-chaos=off", "--poolchaos-hunt=0"]
    if config.inipath is not None:
        args += ["-c", str(config.inipath)]
    if config.pluginmanager.hasplugin("xdist"):
        args += ["-n", "0"]  # bisection needs the original order in one process
    if settings.markdown is not None:
        args += [f"--poolchaos-markdown={os.devnull}"]
    return args + passed_through(config.invocation_params.args)


def _light_args(config: pytest.Config) -> list[str]:
    # pytest startup dominates a bisection step; without the plugin a step is ~30% cheaper.
    args = [sys.executable, "-m", "pytest", "-p", "no:poolchaos", "-p", child.__name__,
            "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--no-header", _TB,
            f"--rootdir={config.rootpath}"]
    if config.inipath is not None:
        args += ["-c", str(config.inipath)]
    if config.pluginmanager.hasplugin("xdist"):
        args += ["-n", "0"]
    return args + passed_through(config.invocation_params.args)


def _can_go_light(config: pytest.Config) -> bool:
    """True unless the environment or the ini file's options ask for the plugin, or the ini
    file or an ``-o`` sets one of its options that can change an outcome. Its other ini keys
    are declared by the child plugin in a light run."""
    if "poolchaos" in os.environ.get("PYTEST_ADDOPTS", ""):
        return False
    try:
        text = config.inipath.read_text(encoding="utf-8") if config.inipath else ""
    except OSError:
        return False
    overrides = " ".join(map(str, config.invocation_params.args))
    asked = "--poolchaos" in text or re.search(r"-p\s*(pytest_)?poolchaos", text) is not None
    return not asked and not any(key in text or key in overrides for key in _SHAPES_OUTCOMES)


def passed_through(invocation: Sequence[str]) -> list[str]:
    """The invocation's plugin, ini-override, timeout and warning options, in order."""
    out: list[str] = []
    items = [str(arg) for arg in invocation]
    for index, arg in enumerate(items):
        for name in _PASS_WITH_VALUE:
            value = _value_of(name, arg, items[index + 1] if index + 1 < len(items) else None)
            if value is None:
                continue
            if name == "-p" and value in _OWN_PLUGINS:
                break
            out.append(f"{name}={value}" if name.startswith("--") else f"{name}{value}")
            break
    return out


def _value_of(name: str, arg: str, following: str | None) -> str | None:
    if arg == name:
        return following
    if name.startswith("--") and arg.startswith(name + "="):
        return arg[len(name) + 1:]
    if not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
        return arg[len(name):]
    return None


def _call(args: list[str], cwd: Path, env: dict[str, str], timeout: float,
          inherited: dict[str, Any] | None = None, out: Path | None = None
          ) -> tuple[int | None, bool]:
    """The child's exit status and whether it had to be killed, started with the session's
    inheritable state and waited for under it (an ignored SIGCHLD would also reap the child
    before its status is read)."""
    with restored(inherited):
        return _started(args, cwd, env, timeout, (inherited or {}).get("umask"), out)


def _started(args: list[str], cwd: Path, env: dict[str, str], timeout: float,
             umask: int | None, out: Path | None) -> tuple[int | None, bool]:
    """Once the child wrote its last line (``out``), its exit gets ``EXIT_GRACE_S``: a thread
    or process a test left behind must not hold a diagnosis until the whole budget is
    spent."""
    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, umask=-1 if umask is None else umask)
    deadline = clock.monotonic() + timeout
    while True:
        try:
            return process.wait(timeout=max(0.0, min(_POLL_S, deadline - clock.monotonic()))), \
                False
        except subprocess.TimeoutExpired:
            pass
        finished = _finished(out)
        if finished is not None or clock.monotonic() >= deadline:
            break
    if finished is not None:
        try:
            return process.wait(timeout=max(0.0, min(EXIT_GRACE_S,
                                                     deadline - clock.monotonic()))), False
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return finished, False  # its tests all ran; only its exit hung
    _kill_group(process)
    return None, True


#: how long a child that finished its session may take to exit
EXIT_GRACE_S = 3.0
_POLL_S = 0.5


def _finished(out: Path | None) -> int | None:
    """The exit status the child's session ended with, once its last line is written."""
    if out is None:
        return None
    try:
        with open(out, "rb") as lines:
            lines.seek(max(0, os.path.getsize(out) - 200))
            tail = lines.read().splitlines()
    except OSError:
        return None
    if not tail:
        return None
    try:
        last = json.loads(tail[-1])
    except ValueError:
        return None
    if isinstance(last, dict) and last.get(child.FINISHED):
        status = last.get("exitstatus")
        return status if isinstance(status, int) else 1
    return None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # The whole session: tests of the subprocess may have started children of their own.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.wait(timeout=10)


def _read(path: Path) -> dict[str, ChildTest]:
    tests: dict[str, ChildTest] = {}
    if not path.exists():
        return tests
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
            if data.get(child.FINISHED):
                continue
            evidence = Evidence.from_json(data["evidence"]) if data.get("evidence") else None
            tests[data["nodeid"]] = ChildTest(
                data["nodeid"], data["outcome"], float(data["duration_s"]),
                float(data.get("call_s", 0.0)), data.get("message", ""), evidence)
        except (ValueError, KeyError, TypeError) as error:
            record("diagnostic subprocess output", error)
    return tests
