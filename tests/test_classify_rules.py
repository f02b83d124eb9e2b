"""Every built-in rule against hand-built Evidence: one positive and its nearest negative.

Each positive must win its category through ``decide`` (unless the rule is documented as weak
on its own), with evidence lines that carry the numbers and suggestions that quote them.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import struct
import subprocess
import threading
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from pytest_poolchaos.classify.catalogue import RULES, by_id
from pytest_poolchaos.classify.decide import decide
from pytest_poolchaos.model import (
    Category,
    Comparison,
    CrashFacts,
    Evidence,
    ExceptionRecord,
    FrameFact,
    Leak,
    LedgerEntry,
    RerunFacts,
    TimeoutInfo,
    Verdict,
    Worker,
)


def rec(error: BaseException, *modules: str, relation: str = "") -> ExceptionRecord:
    bases = tuple(f"{k.__module__}.{k.__qualname__}" for k in type(error).__mro__)
    return ExceptionRecord(bases[0], bases, str(error), modules, relation)


def ev(*errors: BaseException, **values: Any) -> Evidence:
    records = tuple(rec(e) if isinstance(e, BaseException) else e for e in errors)
    message = values.pop("message", records[0].message if records else "")
    return Evidence(nodeid="t.py::test_x", when="call", message=message, exceptions=records,
                    **values)


def cmp(op: str, left: Any, right: Any, **values: Any) -> Comparison:
    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    return Comparison(op, repr(left), repr(right), type(left).__name__, type(right).__name__,
                      num(left), num(right), **values)


def entry(kind: str, key: str, after: str | None, before: str | None = None,
          fix: str = "") -> LedgerEntry:
    return LedgerEntry("t.py::test_polluter", kind, key, before, after, fix)


ASSERT = AssertionError("assert")
#: what the scope saw: pool threads still working, and the same threads all done
BUSY = (Worker("thread", "pool_0", "busy", "fetch (app.py:9)"),
        Worker("thread", "pool_1", "busy", "fetch (app.py:9)"))
DONE = (Worker("thread", "pool_0", "idle"), Worker("thread", "pool_1", "exited"))
class Pool:  # an object the test expected to be shared
    pass


ON_WORKER = FrameFact("worker-thread", "raised on a worker thread (through "
                                       "concurrent.futures.thread.run)")


class LockTimeout(Exception):
    pass
FAILED_TIMEOUT = "Failed: Timeout (>0.5s) from pytest-timeout."
WAIT_MESSAGE = ("assert False\n +  where False = <bound method Event.wait of "
                "<threading.Event at 0x7f: unset>>(0.5)")


@dataclass
class Case:
    rule: str
    positive: Evidence
    negative: Evidence
    evidence: str = ""  # must appear in the diagnosis' evidence lines
    suggestion: str = ""  # must appear in one of its suggestions
    wins: bool = True  # False for supporting rules too weak to claim a category alone
    extra: dict[str, Any] = field(default_factory=dict)


HELD_TRANSACTION = FrameFact("holds-transaction", "`with self.conn:` in record (db.py:30) held "
                             "a write transaction while _check (db.py:12) waited for the lock "
                             "on another connection")
STOOD_IN = FrameFact("patched-worker", "thread: app.Thread was patched with a MagicMock that the "
                                      "code called 1 time(s): the thread it asked for never ran")

CASES = [
    # -- timeout ------------------------------------------------------------------------------
    Case("timeout.busy-timeout",
         ev(sqlite3.OperationalError("database is locked"), workers=BUSY),
         # the same error while the failing thread held a transaction the other waited for
         ev(sqlite3.OperationalError("database is locked"), workers=BUSY,
            frame_facts=(HELD_TRANSACTION,)),
         "the busy timeout ran out while another connection held", "timeout"),
    Case("timeout.pytest-timeout",
         ev(message=FAILED_TIMEOUT, duration_s=0.51,
            timeout=TimeoutInfo(0.5, "signal", "marker at t.py:3", fired=True)),
         ev(message="assert 1 == 2", timeout=TimeoutInfo(0.5, "signal", "cli")),
         "limit 0.5 s", "@pytest.mark.timeout(1)"),
    Case("timeout.timeout-error",
         ev(TimeoutError(), source_line="fut.result(timeout=2)"),
         ev(ValueError("timeout must be positive"), source_line="fut.result(timeout=2)"),
         "after 2 s", "allowed 2 s"),
    Case("timeout.subprocess",
         ev(subprocess.TimeoutExpired(["sleep", "5"], 0.5)),
         ev(subprocess.CalledProcessError(1, ["false"])),
         "given 0.5 s", "did not finish in 0.5 s"),
    Case("timeout.queue-empty",
         ev(queue.Empty(), source_line="item = q.get(timeout=1.5)"),
         ev(queue.Empty(), source_line="item = q.get_nowait()"),
         "after 1.5 s", "allowed 1.5 s"),
    Case("timeout.event-wait",
         ev(AssertionError(WAIT_MESSAGE), source_line="assert ready.wait(0.5)"),
         ev(AssertionError("assert False"), source_line="assert ok"),
         "within 0.5 s", "wait(timeout=1.5)"),
    Case("timeout.near-limit",
         ev(ASSERT, duration_s=4.7, timeout=TimeoutInfo(5.0, "signal", "ini")),
         ev(ASSERT, duration_s=1.0, timeout=TimeoutInfo(5.0, "signal", "ini")),
         "4.7 s of its 5 s limit (94%)", "timeout(10)"),
    Case("timeout.thread-method-kill",
         ev(crash=CrashFacts("worker 'gw0' crashed (exit code 1)", 1, 1.9, "gw0"),
            timeout=TimeoutInfo(2.0, "thread", "cli")),
         ev(crash=CrashFacts("worker 'gw0' crashed (exit code 1)", 1, 0.2, "gw0"),
            timeout=TimeoutInfo(2.0, "thread", "cli")),
         "the 2 s limit comes from cli (method thread)", "--timeout-method=signal"),
    Case("timeout.dropped-wait",
         ev(AssertionError("assert False"), workers=BUSY,
            frame_facts=(FrameFact("dropped-wait", "`cache.warmed.wait(0.2)` at line 38 "
                                                   "returned False and the test went on"),)),
         # the same failure with no wait whose result was dropped
         ev(AssertionError("assert False"), workers=BUSY),
         "`cache.warmed.wait(0.2)` at line 38 returned False", "assert event.wait"),
    Case("timeout.deadline-gave-up",
         ev(AssertionError("assert None"), source_line="assert wait_for_token(b, deadline=0.3)",
            frame_facts=(FrameFact("deadline", "wait_for_token() polls until a clock "
                                               "deadline (bucket.py:39)"),)),
         ev(AssertionError("assert None"), source_line="assert wait_for_token(b, deadline=0.3)"),
         "wait_for_token() polls until a clock deadline (bucket.py:39) and gave up",
         "bucket.py:39"),
    Case("timeout.bounded-wait",
         ev(AssertionError("assert False"), source_line="assert lock.acquire(timeout=0.1)",
            frame_facts=(FrameFact("bounded-wait", "`lock.acquire(timeout=0.1)` at line 9 "
                                                   "waited 0.1 s on a lock and ran out"),)),
         # the same assert, but frames found no timed wait on a live object behind it
         ev(AssertionError("assert False"), source_line="assert lock.acquire(timeout=0.1)"),
         "`lock.acquire(timeout=0.1)` at line 9 waited 0.1 s", "what held it up"),
    Case("timeout.barrier",
         ev(threading.BrokenBarrierError(), source_line="meeting.wait()",
            frame_facts=(FrameFact("barrier", "Barrier meeting in test_x (t.py:4): 2 parties, "
                                              "default timeout 0.1"),)),
         # a barrier without a timeout breaks when it is aborted, not when time runs out
         ev(threading.BrokenBarrierError(), source_line="meeting.wait()",
            frame_facts=(FrameFact("barrier", "Barrier meeting in test_x (t.py:4): 2 parties, "
                                              "default timeout None"),)),
         "2 parties, default timeout 0.1", "slowest party"),
    # -- expectation --------------------------------------------------------------------------
    Case("expectation.threshold",
         ev(ASSERT, comparison=cmp(">=", 5, 10), source_line="assert ok >= 10", workers=BUSY),
         ev(ASSERT, comparison=cmp("<", "b", "a"), source_line="assert x < 'a'"),
         "asserted ok >= 10, got 5 (50% of the bound)", "5 short of the asserted >= 10"),
    Case("expectation.exact-count",
         ev(ASSERT, comparison=cmp("==", 11, 10), source_line="assert len(done) == 10",
            workers=BUSY),
         # the same count in code that ran nothing concurrently: an ordinary bug
         ev(ASSERT, comparison=cmp("==", 11, 10), source_line="assert len(done) == 10"),
         "counted 11, expected exactly 10 (off by 1", "count unique ids"),
    Case("expectation.distribution",
         ev(ASSERT, comparison=cmp("==", [1, 19], [5, 5, 5, 5]), workers=DONE),
         # a total that differs: something was lost, not merely shared out differently
         ev(ASSERT, comparison=cmp("==", [1, 18], [5, 5, 5, 5]), workers=DONE),
         "the same 20 in all, spread as [1, 19]", "assert the total (20)"),
    Case("expectation.ordering",
         ev(ASSERT, comparison=cmp("==", [3, 1, 2], [1, 2, 3], left_len=3, right_len=3),
            reordered=True, workers=DONE, source_line="assert done == [1, 2, 3], done"),
         ev(ASSERT, comparison=cmp("==", [3, 1, 4], [1, 2, 3], left_len=3, right_len=3),
            workers=DONE),
         "same 3 items in another order", "assert sorted(done) == sorted([1, 2, 3])"),
    Case("expectation.approx",
         ev(ASSERT, comparison=Comparison("==", "0.5", "0.6 ± 6.0e-07", "float",
                                          "ApproxScalar", 0.5, 0.6), workers=BUSY),
         ev(ASSERT, comparison=cmp("==", 0.5, 0.6), workers=BUSY),
         "expected 0.6 ± 6.0e-07, got 0.5 (off by 0.1, 16.7%)", "pytest.approx(0.6, rel=0.25)"),
    # -- lifecycle ----------------------------------------------------------------------------
    Case("lifecycle.broken-executor",
         ev(BrokenProcessPool("A process in the process pool was terminated abruptly while "
                              "the future was running or pending."),
            message="exitcode=-9"),
         ev(RuntimeError("the pool said no")),
         "exit code -9", "fixture"),
    Case("lifecycle.pool-shut-down",
         ev(RuntimeError("cannot schedule new futures after shutdown")),
         ev(RuntimeError("cannot schedule a meeting")),
         "after it was shut down", "function-scoped fixture"),
    Case("lifecycle.used-after-close",
         ev(ValueError("I/O operation on closed file."), source_line="self.out.write(line)",
            frame_facts=(FrameFact("closed", "self.out (TextIOWrapper) was closed in write "
                                             "(sink.py:12)"),)),
         # a file closed earlier, but the failing line used something else
         ev(ValueError("invalid literal for int()"), source_line="int(text)",
            frame_facts=(FrameFact("closed", "self.out (TextIOWrapper) was closed in write "
                                             "(sink.py:12)"),)),
         "self.out (TextIOWrapper) was closed", "after the last use"),
    Case("lifecycle.died-with-work",
         ev(TimeoutError(), frame_facts=(FrameFact("hidden-error", "UnicodeDecodeError: "
                                                                   "'ascii' codec"),)),
         ev(TimeoutError()),
         "a worker task raised UnicodeDecodeError", "task_done()"),
    Case("lifecycle.waited-on-shut-pool",
         ev(TimeoutError(), source_line="return [r.get(timeout=1) for r in pending]",
            frame_facts=(FrameFact("closed", "pool (Pool) was shut down in render_all "
                                             "(pages.py:7)"),)),
         # the same wait with the pool still running: slow work, a timeout
         ev(TimeoutError(), source_line="return [r.get(timeout=1) for r in pending]"),
         "pool (Pool) was shut down in render_all", "inside its `with` block"),
    Case("lifecycle.child-failed",
         ev(subprocess.CalledProcessError(3, ["python", "worker.py"])),
         ev(subprocess.SubprocessError("no such option")),
         "the child process exited with status 3", "stderr"),
    Case("lifecycle.child-failed",
         ev(RuntimeError("python: can't open file 'scripts/free.py'"),
            frame_facts=(FrameFact("exit-checked", "`p` in sh (helpers.py:12) exited with 2, "
                                                   "and the code raised on it"),)),
         # the same error, raised with no finished child in the raising frame
         ev(RuntimeError("python: can't open file 'scripts/free.py'")),
         "`p` in sh (helpers.py:12) exited with 2", "failed with status 2"),
    Case("lifecycle.refused-by-state",
         ev(rec(RuntimeError("cannot join thread before it is started"), "test_x",
                "threading")),
         # the same error type raised by the project's own code, not by the machinery
         ev(rec(RuntimeError("cannot join thread before it is started"), "test_x", "jobs")),
         "threading refused the call in its object's current state", "start before join"),
    Case("lifecycle.cancelled",
         ev(asyncio.CancelledError()),
         ev(asyncio.TimeoutError()),
         "was cancelled before it finished its work", "queue.join()"),
    Case("lifecycle.connection",
         ev(ConnectionRefusedError(111, "Connection refused")),
         ev(EOFError("EOF when reading a line"), message="EOFError"),
         "nothing was listening", "threading.Event"),
    Case("lifecycle.end-of-stream",
         ev(ASSERT, comparison=cmp("==", [b"PONG\n", b""], [b"PONG\n", b"PONG\n"]),
            source_line="assert [client.ping(), client.ping()] == [b'PONG\\n'] * 2",
            workers=(Worker("thread", "relay", "exited"),)),
         # the same empty reply from code that ran nothing concurrently is an ordinary bug
         ev(ASSERT, comparison=cmp("==", [b"PONG\n", b""], [b"PONG\n", b"PONG\n"])),
         "b'' (end of stream) at item 1", "reconnect on b''"),
    Case("lifecycle.end-of-stream",
         ev(struct.error("unpack requires a buffer of 4 bytes"),
            frame_facts=(FrameFact("socket", "sock timeout=None"),)),
         # a short buffer in a parser that read no socket is an ordinary bug
         ev(struct.error("unpack requires a buffer of 4 bytes")),
         "unpacking what was read from the socket sock", "reconnect on b''"),
    Case("lifecycle.killed-with-work",
         ev(ASSERT, comparison=cmp("==", [], ["final: 3 jobs"]),
            workers=(Worker("process", "checkpointer", "exited", exit_code=-15),)),
         # the process ended on its own (exit code 0): what is missing is not its death's
         ev(ASSERT, comparison=cmp("==", [], ["final: 3 jobs"]),
            workers=(Worker("process", "checkpointer", "exited", exit_code=0),)),
         "killed by signal 15 before the assert", "join it, and kill only after"),
    Case("lifecycle.cancelled",
         ev(ASSERT, comparison=cmp("==", ["a"], ["a", "b"], left_len=1, right_len=2),
            frame_facts=(FrameFact("cancelled", "second (Future) was cancelled before it ran, "
                                                "in test_x (t.py:9)"),)),
         # the same shortfall with every future run: nothing was cancelled
         ev(ASSERT, comparison=cmp("==", ["a"], ["a", "b"], left_len=1, right_len=2)),
         "second (Future) was cancelled before it ran", "cancel_futures"),
    Case("lifecycle.abandoned-queue",
         ev(ASSERT, comparison=cmp("==", ["a"], ["a", "b", "c"], left_len=1, right_len=3),
            workers=(Worker("thread", "spool-consumer", "exited"),),
            frame_facts=(FrameFact("queued", "spool.queue (Queue) still held 2 item(s) in "
                                             "test_x (t.py:9)"),)),
         # the consumer is still there (waiting on the queue): the items are merely late
         ev(ASSERT, comparison=cmp("==", ["a"], ["a", "b", "c"], left_len=1, right_len=3),
            workers=(Worker("thread", "spool-consumer", "busy", "run (lib.py:4)"),),
            frame_facts=(FrameFact("queued", "spool.queue (Queue) still held 2 item(s) in "
                                             "test_x (t.py:9)"),)),
         "no thread of the test was left to take them", "drain the queue"),
    Case("lifecycle.setter-gone",
         ev(AssertionError("assert False"),
            workers=(Worker("thread", "ticker", "exited", ended_ago=0.56),),
            frame_facts=(FrameFact("dropped-wait", "`ran.wait(0.5)` at line 86 returned False "
                                                   "and the test went on"),)),
         # the ticker was still at work when the wait gave up: the wait was short, not orphaned
         ev(AssertionError("assert False"), workers=BUSY,
            frame_facts=(FrameFact("dropped-wait", "`ran.wait(0.5)` at line 86 returned False "
                                                   "and the test went on"),)),
         "nobody was left to set it", "keep it running until its work is done"),
    Case("lifecycle.loop-closed",
         ev(RuntimeError("Event loop is closed")),
         ev(RuntimeError("loop counter overflow")),
         "Event loop is closed", "async fixture"),
    Case("lifecycle.address-in-use",
         ev(OSError(98, "Address already in use"), source_line="s.bind(('127.0.0.1', 8080))"),
         ev(OSError(2, "No such file or directory")),
         "s.bind(('127.0.0.1', 8080))", "getsockname()[1]"),
    Case("lifecycle.already-started",
         ev(RuntimeError("threads can only be started once")),
         ev(RuntimeError("thread pool is busy")),
         "threads can only be started once", "new Thread/Process per start"),
    Case("lifecycle.unhandled-thread",
         ev(ASSERT, warnings=("PytestUnhandledThreadExceptionWarning: Exception in thread "
                              "poller: ValueError: bad frame",)),
         ev(ASSERT),
         "Exception in thread poller: ValueError: bad frame", "future.result()"),
    Case("lifecycle.worker-exit",
         ev(RuntimeError("worker <Process name='w' pid=4 stopped exitcode=-11> died")),
         ev(subprocess.CalledProcessError(1, ["false"])),
         "exit code -11", "function-scoped fixture"),
    Case("lifecycle.own-leaks",
         ev(ASSERT, leaks=(Leak("thread", "thread 'poller' (daemon=False) still alive"),)),
         ev(ASSERT, leaks=(Leak("env", "os.environ['X'] set", "X"),)),
         "this test left 1 thread(s)", "join threads", wins=False),
    Case("lifecycle.never-awaited",
         ev(ASSERT, warnings=("RuntimeWarning: coroutine 'work' was never awaited",)),
         ev(ASSERT, mocked=True,
            warnings=("RuntimeWarning: coroutine 'work' was never awaited",)),
         "coroutine 'work' was never awaited", "asyncio.create_task"),
    Case("lifecycle.process-died",
         ev(crash=CrashFacts("worker 'gw1' crashed (killed by SIGKILL (9))", -9, 0.3, "gw1")),
         ev(crash=CrashFacts("worker 'gw0' crashed (exit code 1)", 1, 1.9, "gw0"),
            timeout=TimeoutInfo(2.0, "thread", "cli")),
         "the crash was seen 0.3 s after the test started", "out-of-memory killer"),
    Case("lifecycle.dead-before-timeout",
         ev(queue.Empty(), source_line="item = results.get(timeout=1.5)",
            workers=(Worker("process", "Process-1", "exited", exit_code=1),)),
         # the worker still alive: the wait was simply too short (timeout.queue-empty)
         ev(queue.Empty(), source_line="item = results.get(timeout=1.5)",
            workers=(Worker("process", "Process-1", "alive"),)),
         "process 'Process-1' exited (exit code 1) before the wait ran out", "is_alive()"),
    # -- config-pollution ---------------------------------------------------------------------
    Case("config-pollution.ledger-match",
         ev(AssertionError("assert 'mock' == 'real'"),
            pollution=(entry("env", "POOL_MODE", "mock",
                             fix="monkeypatch.setenv('POOL_MODE', ...)"),)),
         ev(AssertionError("assert 3 == 4"), pollution=(entry("env", "POOL_MODE", "mock"),)),
         "t.py::test_polluter left os.environ['POOL_MODE'] = 'mock' (was unset)",
         "monkeypatch.setenv('POOL_MODE', 'mock')"),
    Case("config-pollution.watched",
         ev(rec(ValueError("unknown backend"), "app.pool", "app.settings"),
            pollution=(entry("watched", "app.settings:CONFIG['mode']", "'mock'"),)),
         # the same change, but the failure never went near app.settings
         ev(rec(ValueError("unknown backend"), "app.pool"),
            pollution=(entry("watched", "app.settings:CONFIG['mode']", "'mock'"),)),
         "went through app.settings",
         "monkeypatch.setitem(app.settings.CONFIG, 'mode', 'mock')"),
    Case("config-pollution.env-key-error",
         ev(KeyError("DATABASE_URL"), pollution=(entry("env", "DATABASE_URL", None, "x"),)),
         ev(KeyError("name"), pollution=(entry("env", "DATABASE_URL", None, "x"),)),
         "KeyError 'DATABASE_URL'", "t.py::test_polluter"),
    Case("config-pollution.cwd-relative-path",
         ev(FileNotFoundError(2, "No such file or directory", "data/pool.json"),
            pollution=(entry("cwd", "cwd", "/tmp/elsewhere", "/repo"),)),
         ev(FileNotFoundError(2, "No such file or directory", "/etc/pool.json"),
            pollution=(entry("cwd", "cwd", "/tmp/elsewhere", "/repo"),)),
         "'data/pool.json'", "monkeypatch.chdir"),
    Case("config-pollution.sys-path-import",
         ev(ModuleNotFoundError("No module named 'plugins'"),
            pollution=(entry("sys.path", "sys.path[0]", "/tmp/other"),)),
         ev(ModuleNotFoundError("No module named 'plugins'")),
         "No module named 'plugins'", "monkeypatch.syspath_prepend"),
    Case("config-pollution.leaked-patch",
         ev(ASSERT, mocks=("left operand is <MagicMock name='connect()'>",),
            pollution=(entry("mock-patch", "db.pool.connect", "<MagicMock>"),)),
         ev(ASSERT, mocked=True, mocks=("left operand is <MagicMock name='connect()'>",),
            pollution=(entry("mock-patch", "db.pool.connect", "<MagicMock>"),)),
         "started a patch of 'db.pool.connect'", "stop() in teardown"),
    Case("config-pollution.socket-timeout",
         ev(TimeoutError("timed out"), pollution=(entry("socket-timeout", "socket", "0.01"),)),
         ev(ValueError("x"), pollution=(entry("socket-timeout", "socket", "0.01"),)),
         "socket = 0.01", "setdefaulttimeout(None)"),
    Case("config-pollution.timeout-alarm",
         ev(message=FAILED_TIMEOUT, duration_s=0.01, source_line="os.kill(pid, signal.SIGALRM)",
            timeout=TimeoutInfo(60, "signal", "cli", fired=True)),
         # the same alarm line, but the limit had run out: pytest-timeout's own timer fired
         ev(message=FAILED_TIMEOUT, duration_s=60.2, source_line="os.kill(pid, signal.SIGALRM)",
            timeout=TimeoutInfo(60, "signal", "cli", fired=True)),
         "reported its 60 s limit after 0.01 s", '@pytest.mark.timeout(60, method="thread")'),
    Case("config-pollution.captured-logs",
         ev(AssertionError("assert 'bucket empty' in ''"),
            frame_facts=(FrameFact("caplog", "caplog in test_warns (test_log.py:30)"),),
            pollution=(entry("logging", "logging.root.level", "ERROR", "WARNING"),)),
         # caplog in use but no logging change outstanding: the code did not log
         ev(AssertionError("assert 'bucket empty' in ''"),
            frame_facts=(FrameFact("caplog", "caplog in test_warns (test_log.py:30)"),),
            pollution=(entry("env", "OTHER", "1"),)),
         "asserts on captured logs", "caplog.set_level"),
    Case("config-pollution.read-on-the-way",
         ev(RuntimeError("connection dropped"),
            frame_facts=(FrameFact("reads", "max_retries: DEFAULTS JOBQ_MAX_RETRIES environ "
                                            "get int os"),),
            pollution=(entry("env", "JOBQ_MAX_RETRIES", "0"),)),
         # the same change, but nothing on the failing path reads it
         ev(RuntimeError("connection dropped"),
            frame_facts=(FrameFact("reads", "max_workers: DEFAULTS JOBQ_WORKERS environ "
                                            "get int os"),),
            pollution=(entry("env", "JOBQ_MAX_RETRIES", "0"),)),
         "max_retries on the failing path reads JOBQ_MAX_RETRIES", "monkeypatch.setenv"),
    Case("config-pollution.order-dependent",
         ev(ASSERT, reruns=RerunFacts(Verdict.ORDER_DEPENDENT, "t.py::test_a")),
         ev(ASSERT, reruns=RerunFacts(Verdict.FLAKY)),
         "the polluter is t.py::test_a", "t.py::test_a"),
    Case("config-pollution.passes-alone",
         ev(ASSERT, pollution=(entry("env", "OTHER", "1"),),
            reruns=RerunFacts(Verdict.UNKNOWN, None, 2, 2)),
         # failed once of its runs alone: whatever decides it is not only the earlier tests
         ev(ASSERT, pollution=(entry("env", "OTHER", "1"),),
            reruns=RerunFacts(Verdict.UNKNOWN, None, 2, 1)),
         "passed 2/2 run(s) without the tests before it", "monkeypatch"),
    Case("config-pollution.outstanding",
         ev(ZeroDivisionError("division by zero"), pollution=(entry("env", "OTHER", "1"),)),
         ev(ZeroDivisionError("division by zero")),
         "1 global change(s) from earlier tests", "t.py::test_polluter", wins=False),
    # -- mock-gap -----------------------------------------------------------------------------
    Case("mock-gap.spec-attribute",
         ev(AttributeError("Mock object has no attribute 'stop'")),
         ev(AttributeError("'NoneType' object has no attribute 'stop'")),
         "has no attribute 'stop'", "create_autospec"),
    Case("mock-gap.not-implemented",
         ev(NotImplementedError("affinity"),
            raised_in=("tests.fakes:FakeAdapter.affinity",)),
         ev(NotImplementedError("affinity"), raised_in=("app.base:Adapter.affinity",)),
         "tests.fakes:FakeAdapter.affinity", "FakeAdapter.affinity"),
    Case("mock-gap.mock-value",
         ev(TypeError("'>=' not supported between instances of 'MagicMock' and 'int'")),
         ev(TypeError("'>=' not supported between instances of 'str' and 'int'")),
         "'MagicMock' and 'int'", "return_value"),
    Case("mock-gap.never-awaited",
         ev(ASSERT, warnings=("RuntimeWarning: coroutine 'AsyncMockMixin._execute_mock_call' "
                              "was never awaited",)),
         ev(ASSERT, warnings=("RuntimeWarning: coroutine 'work' was never awaited",)),
         "AsyncMockMixin._execute_mock_call", "await the call"),
    Case("mock-gap.never-awaited",
         ev(AttributeError("'coroutine' object has no attribute 'count'"),
            frame_facts=(FrameFact("double-at-raise", "receipt is an un-awaited coroutine an "
                                                      "AsyncMock returned, in forward (b.py:3)"),)),
         # the same error where the frame held a plain Mock: no coroutine was made
         ev(AttributeError("'coroutine' object has no attribute 'count'"),
            frame_facts=(FrameFact("double-at-raise", "transport is a Mock in forward (b.py:3)"),)),
         "receipt is an un-awaited coroutine an AsyncMock returned", "await the call"),
    Case("mock-gap.mock-assertion",
         ev(AssertionError("Expected 'send' to have been called once. Called 0 times.")),
         ev(AssertionError("Expected value 3, got 4")),
         "Expected 'send' to have been called", "where it is looked up"),
    Case("mock-gap.zero-from-double",
         ev(AssertionError("assert 0.0 >= 0.9"), mocked=True,
            comparison=cmp(">=", 0.0, 0.9), source_line="assert result.hit_rate >= 0.9"),
         # the same zero from real code is a threshold under load, not a gap in a double
         ev(AssertionError("assert 0.0 >= 0.9"),
            comparison=cmp(">=", 0.0, 0.9), source_line="assert result.hit_rate >= 0.9"),
         "result.hit_rate is 0", "the double does none of what it measures"),
    Case("mock-gap.magic-default",
         ev(ASSERT, comparison=cmp("==", [], ["a"]),
            frame_facts=(FrameFact("double", "conn is a MagicMock in test_x (t.py:3)"),)),
         # an empty result with no MagicMock anywhere: the code found nothing
         ev(ASSERT, comparison=cmp("==", [], ["a"])),
         "what iterating an unconfigured MagicMock yields", "create_autospec"),
    Case("mock-gap.magic-default",
         ev(ASSERT, comparison=cmp("==", 1, 250),
            frame_facts=(FrameFact("magic-default", "int() of conn.execute().fetchone() gave 1"),)),
         # int() of a double was taken, but the assert saw another value
         ev(ASSERT, comparison=cmp("==", 2, 250),
            frame_facts=(FrameFact("magic-default", "int() of conn.execute().fetchone() gave 1"),)),
         "int() of conn.execute().fetchone() gave 1", "conn.execute().fetchone()"),
    Case("mock-gap.missed-patch",
         ev(ASSERT, frame_facts=(FrameFact(
             "missed-patch", "os.getloadavg was patched and its double never called, while "
                             "health.getloadavg still holds the original it replaced"),)),
         ev(ASSERT, mocked=True),  # a patch was made, and nothing says it missed
         "health.getloadavg still holds the original", "patch('health.getloadavg')"),
    Case("mock-gap.unset-call",
         ev(ASSERT, comparison=cmp("==", 0, 2), frame_facts=(FrameFact(
             "double-mismatch", "client was set up for upload(), which the code never "
                                "called; the code called post(), which was not set up"),)),
         ev(ASSERT, comparison=cmp("==", 0, 2), frame_facts=(FrameFact(
             "double", "client is a Mock in test_x (t.py:3)"),)),
         "the code called post(), which was not set up", "create_autospec"),
    Case("mock-gap.side-effect-exhausted",
         ev(rec(StopIteration(), "test_export", "app.export", "unittest.mock"),
            frame_facts=(FrameFact("double", "reader is a Mock in test_rows (test_export.py:5)"),)),
         # a generator of the code itself running out is an ordinary bug
         ev(rec(StopIteration(), "test_export", "app.export")),
         "came from inside unittest.mock", "one item per call"),
    Case("mock-gap.double-in-computation",
         ev(ZeroDivisionError("float division by zero"),
            frame_facts=(FrameFact("double-at-raise", "quota is a test-defined StubQuota in "
                                                      "pacing (bucket.py:84)"),)),
         # the double was used elsewhere in the test, not where the division failed
         ev(ZeroDivisionError("float division by zero"),
            frame_facts=(FrameFact("double", "quota is a test-defined StubQuota in "
                                             "test_pacing (test_bucket.py:9)"),)),
         "raised where quota is a test-defined StubQuota", "create_autospec"),
    Case("mock-gap.unset-attribute",
         ev(ConnectionError("connection closed by peer"),
            frame_facts=(FrameFact("double-decided", "`self.sock.closed` in send (conn.py:32) "
                                                     "read self.sock.closed, an attribute a "
                                                     "Mock made itself (a Mock: true)"),)),
         # the double was in the raising frame, and no condition read an attribute it made
         ev(ConnectionError("connection closed by peer"),
            frame_facts=(FrameFact("double-at-raise", "self.sock is a Mock in send "
                                                      "(conn.py:32)"),)),
         "raised because `self.sock.closed`", "double.closed = False"),
    Case("mock-gap.frozen-clock",
         ev(TimeoutError("not ready after 0.5 s"),
            frame_facts=(FrameFact("frozen-clock", "time.monotonic was patched with a double "
                                                   "that gave 100.0 on each of its 40 calls: a "
                                                   "clock that never moves"),)),
         # the same frozen clock, and a failure that waited on nothing
         ev(ASSERT, frame_facts=(FrameFact("frozen-clock", "time.monotonic was patched with a "
                                                           "double that gave 100.0 on each of "
                                                           "its 40 calls: a clock that never "
                                                           "moves"),)),
         "a clock that never moves", "itertools.count"),
    Case("mock-gap.patched-worker",
         ev(queue.Empty(), source_line="item = results.get(timeout=0.5)",
            frame_facts=(STOOD_IN,)),
         # the same patch, but a real thread of the test ran: the wait was for that one
         ev(queue.Empty(), source_line="item = results.get(timeout=0.5)",
            frame_facts=(STOOD_IN,), workers=(Worker("thread", "producer", "running"),)),
         "the thread it asked for never ran", "wraps=threading.Thread"),
    Case("mock-gap.none-from-double",
         ev(AttributeError("'NoneType' object has no attribute 'result'"),
            frame_facts=(FrameFact("none-from-double", "pool.submit() of the test-defined "
                                   "InlinePool returns nothing, and staged (app.py:9) used what "
                                   "it returned"),)),
         # the same None with no double behind it: an ordinary bug
         ev(AttributeError("'NoneType' object has no attribute 'result'")),
         "InlinePool returns nothing", "done Future"),
    Case("mock-gap.real-resources",
         ev(ASSERT, mocked=True, spawned=("process 4312 'sleep 30'",)),
         ev(ASSERT, spawned=("process 4312 'sleep 30'",)),
         "1 real process(es)/socket(s): process 4312 'sleep 30'", "patch"),
    # -- race ---------------------------------------------------------------------------------
    Case("race.closed-under-use",
         ev(OSError(9, "Bad file descriptor"),
            frame_facts=(FrameFact("closed-elsewhere", "self.sock (socket) was closed by "
                                   "thread 'send_1' while thread 'send_0' was using it, in send "
                                   "(conn.py:30)"),)),
         # the same closed socket, closed by the thread that then used it
         ev(OSError(9, "Bad file descriptor"),
            frame_facts=(FrameFact("closed", "self.sock (socket) was closed in send "
                                             "(conn.py:30)"),)),
         "was closed by thread 'send_1' while thread 'send_0' was using it",
         "let the last one close it"),
    Case("race.set-late",
         ev(ASSERT, frame_facts=(FrameFact("set-late", "thread 'beat' died reading "
                                           "Beat.interval while thread 'MainThread' was still "
                                           "in its __init__; the object has it now"),)),
         # the same assert with no thread that died on an attribute set later
         ev(ASSERT),
         "died reading Beat.interval while thread 'MainThread'", "start the thread last"),
    Case("race.started-twice",
         ev(RuntimeError("threads can only be started once"),
            frame_facts=(FrameFact("started-twice", "thread 'flusher' was started by thread "
                                   "'send_0' and started again by thread 'send_1'"),)),
         # the same refusal with no second starter seen: a restart, the lifecycle mistake
         ev(RuntimeError("threads can only be started once")),
         "started again by thread 'send_1': both found it not started yet",
         "start it under a lock and check again"),
    Case("race.lock-ownership",
         ev(RuntimeError("cannot release un-acquired lock"),
            workers=(Worker("thread", "on-done_0", "exited"),),
            frame_facts=(ON_WORKER, FrameFact("lock", "RLock self._txn in commit (pool.py:99)"))),
         # the same double release in code that ran no thread is an ordinary bug
         ev(RuntimeError("cannot release un-acquired lock"),
            frame_facts=(FrameFact("lock", "RLock self._txn in commit (pool.py:99)"),)),
         "on a worker thread; the lock: RLock self._txn in commit (pool.py:99)",
         "thread 'on-done_0' exited"),
    Case("race.concurrent-mutation",
         ev(RuntimeError("dictionary changed size during iteration"),
            workers=(Worker("thread", "writer", "busy", "put (cache.py:30)"),),
            frame_facts=(FrameFact("container", "dict self._data in sweep (cache.py:58)"),)),
         ev(RuntimeError("dictionary changed size during iteration"),
            frame_facts=(FrameFact("container", "dict self._data in sweep (cache.py:58)"),)),
         "dict self._data in sweep (cache.py:58) was changed", "snapshot taken under that lock"),
    Case("race.generator-reentry",
         ev(ValueError("generator already executing"), workers=DONE,
            frame_facts=(ON_WORKER, FrameFact("generator", "generator jobs in consume "
                                                           "(queue.py:75)"))),
         ev(ValueError("generator already executing"),
            frame_facts=(FrameFact("generator", "generator jobs in consume (queue.py:75)"),)),
         "generator jobs in consume (queue.py:75) is shared", "queue.Queue"),
    Case("race.lost-update",
         ev(ASSERT, comparison=cmp("==", 1, 2), workers=DONE,
            source_line="assert stats.completed == 2"),
         # the threads still working: the count is late, not lost (expectation.exact-count)
         ev(ASSERT, comparison=cmp("==", 1, 2), workers=BUSY,
            source_line="assert stats.completed == 2"),
         "counted 1, expected exactly 2, after every worker", "atomic under one lock"),
    Case("race.duplicate-instance",
         ev(ASSERT, comparison=cmp("is", Pool(), Pool()), workers=DONE),
         # nothing ran beside the test: two objects from sequential code are an ordinary bug
         ev(ASSERT, comparison=cmp("is", Pool(), Pool())),
         "two distinct Pool objects", "under a lock"),
    Case("race.negative-count",
         ev(ASSERT, comparison=cmp("==", -1, 0),
            workers=(Worker("thread", "dispatcher", "exited"),)),
         # the same count from code that ran nothing concurrently is an ordinary bug
         ev(ASSERT, comparison=cmp("==", -1, 0)),
         "counted -1, expected exactly 0", "Make the read-modify-write"),
    Case("race.broken-invariant",
         ev(ASSERT, comparison=cmp(">=", -60, 0), workers=DONE,
            source_line="assert account.balance >= 0"),
         # the same check while the workers still ran: not every update had landed yet
         ev(ASSERT, comparison=cmp(">=", -60, 0), workers=BUSY,
            source_line="assert account.balance >= 0"),
         "account.balance ended at -60", "compare-and-set"),
    Case("race.thread-bound",
         ev(sqlite3.ProgrammingError("SQLite objects created in a thread can only be used in "
                                     "that same thread."),
            workers=DONE, frame_facts=(ON_WORKER,)),
         # a closed connection refuses every thread: lifecycle.used-after-close tells that
         ev(sqlite3.ProgrammingError("Cannot operate on a closed database."),
            workers=DONE, frame_facts=(ON_WORKER, FrameFact("closed", "db (Connection) was "
                                                                      "closed"))),
         "a connection made on one thread was used on another", "threading.local()"),
    Case("race.over-release",
         ev(rec(ValueError("Semaphore released too many times"), "uploads", "threading"),
            workers=DONE),
         # the same release, but from sequential code: an ordinary double release
         ev(rec(ValueError("Semaphore released too many times"), "uploads", "threading")),
         "released once more than it was acquired", "released flag"),
    Case("race.shared-reader",
         ev(rec(RuntimeError("readuntil() called while another coroutine is already waiting "
                             "for incoming data"), "client", "asyncio.streams"),
            workers=(Worker("task", "lookup", "exited"), Worker("task", "lookup", "exited"))),
         # one task alone: the stream was not shared
         ev(rec(RuntimeError("readuntil() called while another coroutine is already waiting "
                             "for incoming data"), "client", "asyncio.streams"),
            workers=(Worker("task", "main", "exited"),)),
         "raised by asyncio while 2 tasks ran", "asyncio.Lock"),
    Case("race.database-locked",
         ev(sqlite3.OperationalError("database is locked"), workers=BUSY,
            frame_facts=(HELD_TRANSACTION,)),
         # the same lock wait, while the failing thread held no transaction of its own
         ev(sqlite3.OperationalError("database is locked"), workers=BUSY),
         "held a write transaction while _check (db.py:12) waited", "commit before waiting"),
    Case("race.lost-wakeup",
         ev(AssertionError("assert None"), message="AssertionError: assert None",
            workers=DONE,
            frame_facts=(FrameFact("timed-call", "box.take() (box.py:9) returns after a wait "
                                                 "with a timeout: `self.cond.wait(timeout)` on "
                                                 "a Condition"),)),
         # the producer is still at work: the wait was too short, not its signal lost
         ev(AssertionError("assert None"), message="AssertionError: assert None",
            workers=BUSY,
            frame_facts=(FrameFact("timed-call", "box.take() (box.py:9) returns after a wait "
                                                 "with a timeout: `self.cond.wait(timeout)` on "
                                                 "a Condition"),)),
         "yet every worker had already finished", "under the same lock"),
    Case("race.file-check-then-act",
         ev(FileExistsError(17, "File exists", "/tmp/spool"), workers=DONE,
            frame_facts=(ON_WORKER,)),
         ev(FileExistsError(17, "File exists", "/tmp/spool")),
         "raised on a worker thread while 2 threads ran", "exist_ok=True"),
    Case("race.self-deadlock",
         ev(TimeoutError("worker still running after 1 s"),
            frame_facts=(FrameFact("self-deadlock", "`with self.lock:` in _store (reg.py:9) "
                                                    "waits for self.lock, which the same thread "
                                                    "already holds at `with self.lock:` in add "
                                                    "(reg.py:5); a Lock is not reentrant"),)),
         # the same wait on a lock another thread holds: no fact, a plain timeout
         ev(TimeoutError("worker still running after 1 s"),
            frame_facts=(FrameFact("lock", "lock self.lock in _store (reg.py:9)"),)),
         "the thread waits for itself", "RLock"),
    Case("race.lock-order",
         ev(LockTimeout("timed out locking bob after 0.5s"), workers=DONE,
            frame_facts=(ON_WORKER, FrameFact("lock", "lock first.lock in transfer (bank.py:20)"),
                         FrameFact("lock", "lock second.lock in transfer (bank.py:20)"))),
         ev(LockTimeout("timed out locking bob after 0.5s"), workers=DONE,
            frame_facts=(ON_WORKER, FrameFact("lock", "lock first.lock in transfer (bank.py:20)"))),
         "lock first.lock, lock second.lock", "one global order"),
    Case("race.undrained-pipe",
         ev(TimeoutError("export worker still running after 0.5s"),
            workers=(Worker("process", "Process-1", "exited", exit_code=-9),),
            frame_facts=(FrameFact("unread-pipe", "out (Queue) had data in its pipe that "
                                                  "nobody read, in export (app.py:12)"),)),
         # the same wait with nothing sent: the child was only slow
         ev(TimeoutError("export worker still running after 0.5s"),
            workers=(Worker("process", "Process-1", "exited", exit_code=-9),)),
         "had data in its pipe that nobody read", "before join()"),
    Case("race.flips-alone",
         ev(ASSERT, reruns=RerunFacts(Verdict.FLAKY), workers=DONE),
         ev(ASSERT, reruns=RerunFacts(Verdict.FLAKY)),
         "flips between reruns with no earlier test", "interleaving", wins=False),
]


def ids(case: Case) -> str:
    return case.rule


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_rule_fires_on_its_signal(case):
    found = by_id()[case.rule].check(case.positive)
    assert found is not None
    assert found.rule == case.rule
    assert 0 < found.score <= 1
    assert found.reasons, "a rule must say why"
    assert found.suggestions


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_rule_stays_quiet_on_the_nearest_negative(case):
    assert by_id()[case.rule].check(case.negative) is None


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_positive_is_diagnosed_with_its_numbers(case):
    findings = [f for rule in RULES if (f := rule.check(case.positive)) is not None]
    # A supporting rule alone claims nothing; the fallback would, so it is off here.
    disabled = () if case.wins else ("race.unexplained-concurrency",)
    diagnosis = decide(case.positive, findings, disabled)
    expected = by_id()[case.rule].category if case.wins else Category.UNCLASSIFIED
    assert diagnosis.category is expected, diagnosis.reasons
    assert any(case.evidence in line for line in diagnosis.reasons), diagnosis.reasons
    if case.wins:
        assert case.rule in {rule.id for rule in diagnosis.rules}
        assert any(case.suggestion in s.text + s.detail for s in diagnosis.suggestions), (
            diagnosis.suggestions)


def test_every_category_has_at_least_four_signals():
    per_category: dict[Category, set[str]] = {}
    for case in CASES:
        if case.wins:
            per_category.setdefault(by_id()[case.rule].category, set()).add(case.rule)
    assert all(len(rules) >= 4 for rules in per_category.values()), per_category
    assert set(per_category) == set(Category) - {Category.UNCLASSIFIED}


EXPECTATIONS = [case for case in CASES if case.rule.startswith("expectation.")]


@pytest.mark.parametrize("case", EXPECTATIONS, ids=ids)
def test_the_same_mismatch_in_sequential_code_is_an_ordinary_bug(case):
    sequential = replace(case.positive, workers=())
    findings = [f for rule in RULES if (f := rule.check(sequential)) is not None]
    diagnosis = decide(sequential, findings)
    assert diagnosis.category is Category.UNCLASSIFIED, diagnosis.reasons
    advice = " ".join(s.text for s in diagnosis.suggestions).lower()
    assert not any(word in advice for word in ("load", "concurren", "arrived", "tolerance"))


def test_an_exit_status_compared_with_the_expected_one_is_not_a_count_of_events():
    # `assert p.wait() == 1` got 127 (command not found): a child's status, not a count
    exited = FrameFact("exit-checked", "`p` in test_cli (test_cli.py:9) exited with 127, and "
                                       "the code raised on it")
    compared = ev(AssertionError("assert 127 == 1"), comparison=cmp("==", 127, 1),
                  frame_facts=(exited,),
                  workers=(Worker("process", "4242", "exited", exit_code=127),))
    assert by_id()["expectation.exact-count"].check(compared) is None
    # nearest negative: the same numbers with no finished child behind them
    assert by_id()["expectation.exact-count"].check(replace(compared, frame_facts=())) is not None
    findings = [f for rule in RULES if (f := rule.check(compared)) is not None]
    diagnosis = decide(compared, findings)
    assert diagnosis.category is Category.LIFECYCLE, diagnosis.reasons
    assert any("exited with 127" in reason for reason in diagnosis.reasons)


def test_one_named_code_where_another_was_expected_is_not_a_count_of_events():
    codes = FrameFact("named-codes", "EVENT_JOB_ERROR = 8192, EVENT_JOB_MISSED = 16384")
    compared = ev(AssertionError("assert 16384 == 8192"), comparison=cmp("==", 16384, 8192),
                  frame_facts=(codes,), workers=(Worker("pool", "ProcessPoolExecutor", "alive"),))
    assert by_id()["expectation.exact-count"].check(compared) is None
    # nearest negative: the same numbers, not named as one family's members
    assert by_id()["expectation.exact-count"].check(replace(compared, frame_facts=())) is not None


def test_a_closed_shared_socket_that_passes_alone_is_left_to_the_pollution_readings():
    # the polluter search ran out of budget, but the runs alone put the cause before the test
    closed = OSError(9, "Bad file descriptor")
    alone = RerunFacts(Verdict.UNKNOWN, None, 2, 2)
    shared = ev(closed, pollution=(entry("env", "OTHER", "1"),), reruns=alone)
    findings = [f for rule in RULES if (f := rule.check(shared)) is not None]
    assert decide(shared, findings).category is Category.CONFIG_POLLUTION
    # the same closed socket in a test that also failed alone once: its own lifecycle
    own = replace(shared, reruns=RerunFacts(Verdict.UNKNOWN, None, 2, 1))
    findings = [f for rule in RULES if (f := rule.check(own)) is not None]
    assert decide(own, findings).category is Category.LIFECYCLE


def test_a_shared_pool_broken_by_an_earlier_test_is_read_once_and_left_to_pollution():
    # a worker's death breaks the pool: worker-exit and broken-executor read one event, and
    # two supporting readings of it must not add up above the runs that put the cause earlier
    broken = BrokenProcessPool("A child process terminated abruptly, the process pool is not "
                               "usable anymore")
    shared = ev(broken, pollution=(entry("env", "OTHER", "1"),),
                reruns=RerunFacts(Verdict.UNKNOWN, None, 2, 2))
    findings = [f for rule in RULES if (f := rule.check(shared)) is not None]
    assert "lifecycle.worker-exit" not in [f.rule for f in findings]
    assert decide(shared, findings).category is Category.CONFIG_POLLUTION



def test_results_left_in_a_queue_after_a_deadline_loop_gave_up_are_a_timeout():
    # The consumer that stopped was the test's own loop, and the clock stopped it.
    late = ev(ASSERT, comparison=cmp("==", [], [1, 2, 3], left_len=0, right_len=3),
              workers=(Worker("thread", "producer", "exited"),),
              frame_facts=(FrameFact("queued", "results (Queue) still held 3 item(s) in "
                                               "test_x (t.py:9)"),
                           FrameFact("deadline", "test_x() polls until a clock deadline "
                                                 "(t.py:5) before the assert")))
    findings = [f for rule in RULES if (f := rule.check(late)) is not None]
    assert "lifecycle.abandoned-queue" not in [f.rule for f in findings]
    assert decide(late, findings).category is Category.TIMEOUT

def test_every_rule_has_a_case_a_doc_and_a_unique_id():
    assert {case.rule for case in CASES} == {rule.id for rule in RULES}
    assert len({rule.id for rule in RULES}) == len(RULES)
    assert all(rule.doc and rule.id.startswith(rule.category.value + ".") for rule in RULES)


@pytest.mark.parametrize("error", [
    ZeroDivisionError("division by zero"),
    KeyError("user_id"),
    AssertionError("assert 'alice' == 'bob'"),
    AttributeError("'NoneType' object has no attribute 'name'"),
    ValueError("invalid literal for int() with base 10: 'x'"),
], ids=lambda e: type(e).__name__)
def test_ordinary_bugs_stay_unclassified(error):
    evidence = ev(error, location="app.py:12", source_line="return a / b", duration_s=0.02)
    findings = [f for rule in RULES if (f := rule.check(evidence)) is not None]
    diagnosis = decide(evidence, findings)
    assert diagnosis.category is Category.UNCLASSIFIED
    assert findings == []
    assert type(error).__name__ in diagnosis.reasons[0]
    assert "app.py:12" in diagnosis.suggestions[0].text
    assert "0.02 s" in diagnosis.suggestions[0].text


def test_a_named_pool_already_started_is_not_called_a_thread_started_twice():
    evidence = ev(RuntimeError("pool 'orders' already started"),
                  location="test_pools.py:67")
    found = by_id()["lifecycle.already-started"].check(evidence)
    assert found is not None
    assert "pool 'orders' is still running from an earlier start" in found.reasons[0]
    assert "Thread/Process" not in found.reasons[0]
    assert "pool_scope" in found.suggestions[0].text


def diagnose(evidence: Evidence):
    return decide(evidence, [f for rule in RULES if (f := rule.check(evidence)) is not None])


def test_a_missed_patch_outranks_the_refused_connection_it_caused():
    refused = ConnectionRefusedError(111, "Connection refused")
    missed = diagnose(ev(refused, mocked=True, spawned=("socket connect to 127.0.0.1:5000",)))
    assert missed.category is Category.MOCK_GAP, missed.reasons
    # nearest negative: no double in the test, the server really was not there
    assert diagnose(ev(refused, spawned=("socket connect to 127.0.0.1:5000",))).category \
        is Category.LIFECYCLE


def test_a_crash_seen_late_is_not_a_test_that_ran_past_its_limit():
    # pytest-timeout's thread method ends the worker at 2 s; children holding its pipes
    # made the controller see the death 10 s after the test started
    late = ev(crash=CrashFacts("worker 'gw0' crashed (exit code 1)", 1, 10.0, "gw0"),
              timeout=TimeoutInfo(2.0, "thread", "cli"), duration_s=10.0)
    assert by_id()["timeout.near-limit"].check(late) is None
    diagnosis = diagnose(late)
    assert diagnosis.category is Category.TIMEOUT
    assert "the crash was seen 10 s after the test started" in diagnosis.reasons
    assert not any("%" in line for line in [*diagnosis.reasons,
                                            *(s.text for s in diagnosis.suggestions)])


def test_a_socket_with_its_own_timeout_is_not_blamed_on_the_default():
    default = (entry("socket-timeout", "socket.getdefaulttimeout()", "0.5", "None"),)
    own = ev(TimeoutError("timed out"), pollution=default,
             frame_facts=(FrameFact("socket", "sock timeout=0.2"),))
    assert by_id()["config-pollution.socket-timeout"].check(own) is None
    assert diagnose(own).category is Category.TIMEOUT
    inherited = replace(own, frame_facts=(FrameFact("socket", "sock timeout=0.5"),))
    assert diagnose(inherited).category is Category.CONFIG_POLLUTION


def test_a_module_loaded_from_a_directory_an_earlier_test_added_is_pollution():
    added = (entry("sys.path", "sys.path", "10 entries (+/tmp/plugins0)", "9 entries"),)
    shadowed = ev(AttributeError("module 'serializers' has no attribute 'JSON'"),
                  pollution=added,
                  frame_facts=(FrameFact("module", "serializers /tmp/plugins0/serializers.py"),))
    diagnosis = diagnose(shadowed)
    assert diagnosis.category is Category.CONFIG_POLLUTION, diagnosis.reasons
    assert "loaded from /tmp/plugins0/serializers.py" in diagnosis.reasons[0]
    # the project's own module, from its own directory: an ordinary AttributeError
    own = replace(shadowed, frame_facts=(FrameFact("module", "serializers /repo/serializers.py"),))
    assert diagnose(own).category is Category.UNCLASSIFIED


@pytest.mark.parametrize(("got", "want"), [(45, 30), (4, 0)])
def test_timed_counts_in_concurrent_code_are_expectations_and_not_in_sequential(got, want):
    failed = ev(ASSERT, comparison=cmp("==", got, want), workers=DONE)
    assert diagnose(failed).category is Category.EXPECTATION
    assert by_id()["race.lost-update"].check(failed) is None
    assert diagnose(replace(failed, workers=())).category is Category.UNCLASSIFIED


def test_a_changed_tz_is_read_by_the_time_functions_on_the_failing_path():
    tz = (entry("env", "TZ", "<+0545>-5:45"),)
    formats = ev(AssertionError("assert '03:58' == '22:13'"), pollution=tz,
                 frame_facts=(FrameFact("reads", "format_ts: localtime strftime time"),))
    diagnosis = diagnose(formats)
    assert diagnosis.category is Category.CONFIG_POLLUTION, diagnosis.reasons
    assert "format_ts on the failing path reads localtime" in diagnosis.reasons[0]
    # nearest negative: the same change, and code that never asks for local time
    plain = replace(formats, frame_facts=(FrameFact("reads", "format_ts: isoformat utc"),))
    assert diagnose(plain).category is Category.UNCLASSIFIED


def test_an_order_dependence_with_no_global_change_is_read_as_the_leftover_it_met():
    # An earlier test left a named pool registered: the victim passes alone (order-dependent)
    # and the ledger holds no global change of that test, so the lifecycle reading wins.
    reruns = RerunFacts(Verdict.ORDER_DEPENDENT, "t.py::test_polluter")
    leftover = ev(RuntimeError("pool 'orders' already started"), reruns=reruns)
    assert diagnose(leftover).category is Category.LIFECYCLE
    # the same failure after that test changed a watched global: config-pollution
    changed = ev(RuntimeError("pool 'orders' already started"), reruns=reruns,
                 pollution=(entry("env", "POOL_MODE", "x"),))
    assert diagnose(changed).category is Category.CONFIG_POLLUTION


def test_a_setting_the_polluter_changed_in_the_code_that_then_broke_is_the_cause():
    # Reruns named the polluter, and it left a limit of the module whose server then died
    # and whose client found the connection reset: however many lifecycle readings that
    # gives, they are the change's consequence.
    reruns = RerunFacts(Verdict.ORDER_DEPENDENT, "t.py::test_polluter")
    limit = LedgerEntry("t.py::test_polluter", "module-state", "echo.server.MAX_REQUEST",
                        "another value", "4")
    died = "PytestUnhandledThreadExceptionWarning: Exception in thread serve: ValueError: big"
    reset = ev(rec(ConnectionResetError("server closed the connection"), "echo.server"),
               reruns=reruns, pollution=(limit,), warnings=(died,))
    diagnosis = diagnose(reset)
    assert diagnosis.category is Category.CONFIG_POLLUTION, diagnosis.reasons
    assert any("and the failure went through echo.server" in line
               for line in diagnosis.reasons), diagnosis.reasons
    assert "went through echo.server" in " ".join(diagnosis.reasons)
    # the same change of a module the failure never went through, or an environment
    # variable no code of that module names: no setting explains it, yet the test passes
    # alone and started no peer of its own, so the reset came from what the earlier tests
    # left (lifecycle.connection only supports: this test's own peer was fine alone)
    elsewhere = replace(reset, exceptions=(rec(ConnectionResetError("reset"), "socket"),))
    assert diagnose(elsewhere).category is Category.CONFIG_POLLUTION
    assert "went through echo.server" not in " ".join(diagnose(elsewhere).reasons)
    mode = LedgerEntry("t.py::test_polluter", "env", "ECHO_MODE", None, "strict")
    unnamed = replace(reset, pollution=(mode,), frame_facts=(
        FrameFact("module-reads", "echo.server: ECHO_MAX_REQUEST"),))
    assert diagnose(unnamed).category is Category.CONFIG_POLLUTION
    named = replace(unnamed, frame_facts=(FrameFact("module-reads", "echo.server: ECHO_MODE"),))
    assert diagnose(named).category is Category.CONFIG_POLLUTION
    # nearest negatives: a default port the polluter chose on first use (None before) for
    # the server it left running, which the lifecycle reading tells, and below
    port = LedgerEntry("t.py::test_polluter", "module-state", "echo.server._DEFAULT_PORT",
                       "None", "43171")
    in_use = ev(rec(OSError(98, "Address already in use"), "echo.server"), reruns=reruns,
                pollution=(port,))
    assert diagnose(in_use).category is Category.LIFECYCLE


def test_a_connection_refused_in_a_test_that_passes_alone_is_not_its_own_lifecycle():
    # An earlier test stopped a server the tests share (a module-scoped fixture's): the
    # victim started no server, passes alone and is refused after that test. Its own
    # lifecycle cannot be the cause: it only supports the order dependence.
    refused = rec(ConnectionRefusedError(111, "Connection refused"), "gateway.client",
                  "socket")
    reruns = RerunFacts(Verdict.ORDER_DEPENDENT, "t.py::test_stops_the_shared_server")
    shared = diagnose(ev(refused, reruns=reruns))
    assert shared.category is Category.CONFIG_POLLUTION, shared.reasons
    assert "the peer it connected to refused or dropped the connection" in \
        " ".join(shared.reasons)
    assert {r.id: r.score for r in shared.rules}["lifecycle.connection"] == 0.3
    # the same with a server of its own that passed alone (an address or proxy the earlier
    # test changed): still not its own lifecycle, and the search that ran out of budget
    own_server = (Worker("thread", "upstream", "idle", "serve (srv.py:9)"),)
    budget = RerunFacts(Verdict.UNKNOWN, None, alone_runs=2, alone_passes=2)
    changed = diagnose(ev(refused, reruns=budget, workers=own_server,
                          pollution=(entry("env", "GATEWAY_PROXY", "127.0.0.1:9"),)))
    assert changed.category is Category.CONFIG_POLLUTION, changed.reasons
    # nearest negatives: it fails alone too (its own server was not up), and no reruns ran
    alone = RerunFacts(Verdict.DETERMINISTIC, None, alone_runs=1, alone_passes=0)
    assert diagnose(ev(refused, reruns=alone)).category is Category.LIFECYCLE
    assert diagnose(ev(refused, workers=own_server)).category is Category.LIFECYCLE


def test_a_lifecycle_reading_with_nothing_of_the_tests_own_seen_is_a_guess():
    # "cannot schedule new futures after shutdown" from a module's executor, in a test that
    # started no worker and held nothing found closed: the message alone says the pool was
    # shut down, not that this test shut it down (an earlier test's exit hook, a module
    # fixture's teardown): it still claims lifecycle, at UNOBSERVED.
    refusal = RuntimeError("cannot schedule new futures after shutdown")
    shared = diagnose(ev(refusal))
    assert shared.category is Category.LIFECYCLE
    assert {r.id: r.score for r in shared.rules}["lifecycle.pool-shut-down"] == 0.5
    refused = diagnose(ev(ConnectionRefusedError(111, "Connection refused")))
    assert {r.id: r.score for r in refused.rules}["lifecycle.connection"] == 0.5
    # nearest negatives: the test ran a worker of its own, or its frames held the pool,
    # found shut down: its own lifecycle, at the rule's own score
    own = diagnose(ev(refusal, workers=(Worker("thread", "pool_0", "exited"),)))
    assert {r.id: r.score for r in own.rules}["lifecycle.pool-shut-down"] == 0.9
    held = diagnose(ev(refusal, frame_facts=(FrameFact(
        "closed", "self.pool (ThreadPoolExecutor) was shut down in submit (app.py:9)"),)))
    assert {r.id: r.score for r in held.rules}["lifecycle.pool-shut-down"] == 0.9
    # a worker of its own ran, but the frame that raised held a test double in the pool's
    # place: the refusal may be the double's answer, a guess again
    doubled = diagnose(ev(refusal, workers=(Worker("thread", "pool_0", "exited"),),
                          frame_facts=(FrameFact("double-at-raise",
                                                 "self.pool is a Mock in run (app.py:9)"),)))
    assert {r.id: r.score for r in doubled.rules}["lifecycle.pool-shut-down"] == 0.5
    # and a socket another thread of the test closed under the connection: the race owns it
    closed = FrameFact("closed-elsewhere", "self.sock (socket) was closed by thread 'closer' "
                                           "while thread 'caller' was using it, in recv (a:1)")
    under = diagnose(ev(ConnectionResetError("peer closed"), frame_facts=(closed,),
                        workers=(Worker("thread", "closer", "exited"),)))
    assert under.category is Category.RACE
    assert {r.id: r.score for r in under.rules}["lifecycle.connection"] == 0.3


def test_a_registry_the_polluter_grew_is_the_trace_of_a_leftover_not_a_setting():
    reruns = RerunFacts(Verdict.ORDER_DEPENDENT, "t.py::test_polluter")
    grew = LedgerEntry("t.py::test_polluter", "module-state", "poolsvc.pool._STARTED",
                       "0 item(s)", "1 item(s)")
    leftover = ev(RuntimeError("pool 'orders' already started"), reruns=reruns,
                  pollution=(grew,))
    assert diagnose(leftover).category is Category.LIFECYCLE


def test_an_order_dependence_of_the_collected_modules_blames_an_import_not_a_test():
    collected = diagnose(ev(TypeError("work() takes 1 positional argument but 2 were given"),
                            reruns=RerunFacts(Verdict.ORDER_DEPENDENT, None, 2, 2,
                                              collected=True)))
    assert collected.category is Category.CONFIG_POLLUTION
    assert "changes at import what it uses" in collected.reasons[0]
    assert "registered under the same name" in collected.suggestions[0].text
    # nearest negative: an earlier test reproduced it: that test is what to look at
    earlier = diagnose(ev(TypeError("work() takes 1 positional argument but 2 were given"),
                          reruns=RerunFacts(Verdict.ORDER_DEPENDENT, "t.py::test_a", 2, 2)))
    assert "t.py::test_a changes" in earlier.suggestions[0].text
