"""Where a passing test's added time goes: the plugin's per-test parts switched off in turn.

``overhead.py`` compares whole runs. On a shared machine their spread (two to four points of
the ratio) is as large as any single part of the per-test path, so a cut to one part cannot be
seen there. This script compares inside one session instead:

* it generates a suite in 40 files of 250 tests: trivial ones (``def test(): pass``), or
  ``overhead.py``'s realistic or thread-starting tests (``--suite``);
* a helper plugin times each test's whole protocol (setup, call, teardown and their reports,
  every plugin's hooks included) and switches one part of the plugin off in the files with an
  odd number, leaving it on in the even ones;
* the difference between the medians of the two halves is what that part costs a test. Drift of
  the machine falls on both halves alike, because they alternate every 250 tests.

``none`` switches nothing off: its difference is what the halves differ by anyway, the floor
under which no other row means anything (about half a microsecond here for trivial tests; the
thread-starting suite's halves differ by up to ten, so give it five runs).

A part switched off gives back what it gives when nothing changed (the first snapshot or
descriptor count, no line written, the unwrapped ``Thread.start``), so every test still passes
and the plugin finds nothing: a session in which it finds something is refused, since its
slow path would be timed instead. This is a measuring tool, not a setting, and it reaches
into the plugin's internals by name: ``tests/test_per_test_benchmark.py`` runs every part
once, so a rename breaks a test rather than this script.

    python benchmarks/per_test.py                     # every part, 3 sessions each
    python benchmarks/per_test.py --parts journal-line,descriptors --runs 5
    python benchmarks/per_test.py --suite threads --parts none,thread-start,waits
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from overhead import REALISTIC_BODY, THREADS_BODY, _env

FILES, PER_FILE = 40, 250

#: suite -> the source of one file of it
SUITES = {
    "trivial": lambda chunk: "".join(f"def test_{chunk}_{i}():\n    pass\n\n"
                                     for i in range(PER_FILE)),
    "realistic": lambda chunk: REALISTIC_BODY.format(per_file=PER_FILE),
    "threads": lambda chunk: THREADS_BODY.format(per_file=PER_FILE),
}

#: part -> what the helper does to switch it off (body of ``_switch_off``): ``OFF[0]`` is true
#: while a test of an odd file runs; ``first_only`` keeps a function's first answer there
PARTS: dict[str, str] = {
    "none": "pass",
    "snapshot": """
        from pytest_poolchaos.worker.scope import probes
        probes.take = first_only(probes.take)
    """,
    "descriptors": """
        # the first count again, not nothing: from nothing back to the real count would be
        # a descriptor opened by the first test of every even file
        from pytest_poolchaos.worker.scope.leaks import OpenFiles
        OpenFiles.take = first_only(OpenFiles.take)
    """,
    "named-loggers": """
        from pytest_poolchaos.worker.scope import globals as state
        real = state._named_loggers
        state._named_loggers = lambda logging: state._LOGGERS[1] if OFF[0] else real(logging)
    """,
    "library-state": """
        from pytest_poolchaos.worker.scope import globals as state
        state.library_state = first_only(state.library_state)
    """,
    "journal-line": """
        from pytest_poolchaos import journal
        real = journal.JournalWriter.test_start
        journal.JournalWriter.test_start = (
            lambda self, nodeid, limit: None if OFF[0] else real(self, nodeid, limit))
    """,
    "journal-write": """
        # the line is still made; only the system call is left out
        import os as real_os
        from pytest_poolchaos import journal
        class Os:
            def __getattr__(self, name):
                return getattr(real_os, name)
            def write(self, fd, data):
                return len(data) if OFF[0] else real_os.write(fd, data)
        journal.os = Os()
    """,
    "thread-start": """
        UNWRAP.append(("threading", "Thread", "start"))
    """,
    "waits": """
        UNWRAP.extend([("threading", "Condition", "wait"), ("threading", "Thread", "join")])
    """,
    "thread-end": """
        UNWRAP.append(("threading", "Thread", "_delete"))
    """,
    "controller-rows": """
        from pytest_poolchaos.controller.session import ChaosController
        real = ChaosController.pytest_runtest_logreport
        ChaosController.pytest_runtest_logreport = pytest.hookimpl(trylast=True)(
            lambda self, report: None if OFF[0] else real(self, report))
    """,
    "scope": """
        from pytest_poolchaos.worker.scope import PoolScope
        for name in ("open", "close"):
            def switched(self, *args, _real=getattr(PoolScope, name), **kwargs):
                return None if OFF[0] else _real(self, *args, **kwargs)
            setattr(PoolScope, name, switched)
    """,
}

HELPER = '''
import os, statistics, sys, time
import pytest

OFF = [False]
#: OFF -> each test's protocol in nanoseconds
TIMES = {False: [], True: []}
#: (module, class, method) of the plugin's wrappers to go round in the odd files
UNWRAP = []


def first_only(real):
    """``real`` in the even files; in the odd ones, what it gave the first time."""
    first = []

    def switched(*args):
        if not OFF[0]:
            return real(*args)
        if not first:
            first.append(real(*args))
        return first[0]

    return switched


def _switch_off():
%s


_switch_off()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    # The plugin installs its wrappers as the session starts: go round them from then on.
    for module, name, method in UNWRAP:
        cls = getattr(sys.modules[module], name)
        wrapper = cls.__dict__[method]
        original = wrapper.__wrapped__

        setattr(cls, method, _switch(wrapper, original))


def _switch(wrapper, original):
    # Made in a namespace named as the plugin's machinery: a wrapper that starts a thread
    # looks up who called it, and a frame of this helper module would be taken for the
    # starter (walking further, and taking a pool's workers for the test's own).
    space = {"OFF": OFF, "W": wrapper, "O": original,
             "__name__": "pytest_poolchaos.worker.scope.per_test_switch"}
    exec("def switched(*args, _wrapper=W, _original=O, **kwargs):\\n"
         "    return (_original if OFF[0] else _wrapper)(*args, **kwargs)\\n", space)
    return space["switched"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    OFF[0] = int(item.path.stem.rsplit("_", 1)[1]) %% 2 == 1
    start = time.perf_counter_ns()
    try:
        return (yield)
    finally:
        TIMES[OFF[0]].append(time.perf_counter_ns() - start)


def pytest_unconfigure(config):
    on, off = TIMES[False], TIMES[True]  # the part on (even files), off (odd files)
    if on and off:
        sys.stderr.write("PER-TEST %%.3f %%.3f\\n" %% (statistics.median(on) / 1e3,
                                                   statistics.median(off) / 1e3))
'''

_RESULT = re.compile(r"PER-TEST ([\d.]+) ([\d.]+)")


def make_suite(root: Path, kind: str, files: int) -> Path:
    suite = root / "suite"
    suite.mkdir()
    for chunk in range(files):
        (suite / f"test_part_{chunk}.py").write_text(SUITES[kind](chunk))
    (suite / "pytest.ini").write_text("[pytest]\n")
    return suite


def run_part(root: Path, suite: Path, part: str) -> tuple[float, float]:
    """(median µs per test with the part on, with it off) of one session."""
    body = textwrap.indent(textwrap.dedent(PARTS[part]).strip(), "    ")
    (root / "_poolchaos_parts.py").write_text(HELPER % body)
    env = _env()  # overhead.py's: bytecode caches as a user has them, plugins autoload
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    # The journal on, as a default run has it; the history store off: it works at session
    # end, outside the per-test time measured here, and would grow with every session.
    args = [sys.executable, "-m", "pytest", "-q", "-p", "_poolchaos_parts",
            "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist",
            f"--poolchaos-journal={root / 'journal.jsonl'}", "--poolchaos-history=off"]
    done = subprocess.run(args, cwd=suite, env=env, capture_output=True, text=True,
                          timeout=600)
    found = _RESULT.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"part {part} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    if "no failures, no leaks" not in done.stdout:
        # A finding takes the slow path (and its waits): the halves would time that instead.
        raise SystemExit(f"part {part}: the plugin found something in a suite made to be "
                         f"clean:\n{done.stdout[-2000:]}")
    return float(found.group(1)), float(found.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="sessions per part (default 3)")
    parser.add_argument("--suite", choices=sorted(SUITES), default="trivial")
    parser.add_argument("--files", type=int, default=FILES,
                        help=f"files of {PER_FILE} tests (default {FILES})")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of: {', '.join(PARTS)}")
    options = parser.parse_args()
    parts = [p for p in options.parts.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"--parts: unknown {', '.join(unknown)}; accepted: {', '.join(PARTS)}")
    with tempfile.TemporaryDirectory(prefix="poolchaos-per-test-") as tmp:
        root = Path(tmp)
        suite = make_suite(root, options.suite, max(2, options.files))
        run_part(root, suite, "none")  # bytecode caches and the page cache first
        for part in parts:
            results = [run_part(root, suite, part) for _ in range(options.runs)]
            saved = [on - off for on, off in results]
            print(f"{part:<16} saves {statistics.median(saved):6.2f} us/test "
                  f"(sessions: {', '.join(f'{s:.2f}' for s in saved)}; median test "
                  f"{statistics.median(on for on, _ in results):.1f} us with it on)",
                  flush=True)


if __name__ == "__main__":
    main()
