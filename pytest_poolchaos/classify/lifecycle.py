"""Lifecycle: a worker, process, thread, loop or connection was not alive when it was used."""

from __future__ import annotations

import re
import sys

from ..model import (
    Comparison,
    Evidence,
    ExceptionRecord,
    Finding,
    FrameFact,
    Suggestion,
    Verdict,
)
from .signals import (
    FALLBACK_SCORE,
    RACED,
    abandoned,
    closed_descriptor,
    describe,
    double_stopped,
    exit_codes,
    hidden_errors,
    hit,
    killed,
    line,
    literal,
    polluted_path,
    refused_by_machinery,
    refused_shared,
    search,
    stood_in,
    where,
)
from .timeout import (
    QUEUE_EMPTY,
    TIMEOUT_ERRORS,
    killed_by_thread_timer,
    noticed,
    signallers_done,
)

_SHUT_DOWN = re.compile(r"cannot schedule new futures after (?:interpreter )?shutdown"
                        r"|Pool not running|Executor is shut ?down", re.I)
_LOOP = re.compile(r"Event loop is closed|attached to a different loop"
                   r"|is bound to a different event loop|no running event loop")
_IN_USE = re.compile(r"Address already in use|\[Errno (?:98|48)\]|EADDRINUSE|WinError 10048")
_OBJECT_TWICE = re.compile(r"threads can only be started once|cannot start a process twice"
                           r"|process has already been started", re.I)
_TWICE = re.compile(_OBJECT_TWICE.pattern + r"|already started", re.I)  # or a named resource
_NAMED = re.compile(r"\b(pool|server|service|worker|listener|scheduler|queue)\s+['\"]([^'\"]+)['\"]"
                    r"\s+(?:is\s+)?already started", re.I)
_EXIT_CODE = re.compile(r"exit ?code[=: ]+(-?\d+)|exited with (?:code )?(-?\d+)", re.I)
_CRASH = re.compile(r"terminated abruptly|crashed while running")
_CONNECTION = {
    "builtins.ConnectionRefusedError": "nothing was listening when the client connected",
    "builtins.ConnectionResetError": "the peer closed the connection while it was in use",
    "builtins.ConnectionAbortedError": "the connection was aborted while it was in use",
    "builtins.BrokenPipeError": "the other end of the pipe or socket was already gone",
}
_PIPE_MODULES = ("multiprocessing", "socket", "asyncio", "subprocess", "selectors", "ssl")
_LIVE_KINDS = ("thread", "process", "pool")


def broken_executor(e: Evidence) -> Finding | None:
    """BrokenExecutor / BrokenProcessPool / BrokenThreadPool: a pool lost a worker."""
    exc = e.any_exception("concurrent.futures._base.BrokenExecutor")
    if exc is None:
        return None
    if "initializer" in exc.message:
        cause = "the pool's initializer raised, so no worker could start"
    else:
        cause = f"a worker process died while work was pending ({_exit_code(e)})"
    return hit(
        # a shared pool an earlier test broke: the pollution readings tell that; a worker
        # that ran the real code a patch of the test never reached: mock-gap.missed-patch
        _own(e, 0.95, elsewhere=bool(e.facts("patch-not-in-child"))),
        [f"{describe(exc)}{where(e)}", cause, *_live_leaks(e)],
        _per_test_pool(e),
        Suggestion(f"Find why the worker died ({_exit_code(e)}): os._exit/sys.exit in the task, "
                   f"a crash, or the OOM killer; a negative exit code -N is signal N."),
    )


def pool_shut_down(e: Evidence) -> Finding | None:
    """Work was submitted to a pool that was already shut down or closed."""
    match = search(_SHUT_DOWN, e)
    if match is None:
        return None
    return hit(
        _own(e, 0.9, elsewhere=bool(e.facts("closed-elsewhere"))),
        [f"work was submitted to a pool after it was shut down: {match.group(0)!r}{where(e)}",
         f"the call: `{line(e)}`" if line(e) else ""],
        _per_test_pool(e),
    )


def used_after_close(e: Evidence) -> Finding | None:
    """The call that raised used a resource the frame held after it had been closed or shut
    down (a file, socket, pipe end, queue, database connection, executor): its own state says
    so, whatever the message."""
    exc = e.outermost
    if exc is None or not exc.is_a(*_CLOSED_RAISES) or exc.is_a(*TIMEOUT_ERRORS, *QUEUE_EMPTY):
        return None
    # only what the failing line itself used: a file closed earlier in the test is not why
    # a later, unrelated call failed
    closed = [fact for fact in e.facts("closed") if _uses(line(e), fact.detail.split(" (")[0])]
    if not closed:
        return None
    by = (f"; {len(e.workers)} worker(s) ran in this test ({e.workers[0].describe()}), one "
          f"of which may have closed it") if e.concurrent else ""
    return hit(
        # another of the test's threads closed it under this one (race.closed-under-use), or
        # an earlier test closed what the two share (the pollution readings)
        _own(e, 0.75, elsewhere=bool(e.facts("closed-elsewhere"))),
        [f"{describe(exc)}{where(e)}: {closed[0].detail}{by}"],
        Suggestion(f"{closed[0].detail.split(' (', 1)[0]} was used after it was closed: close "
                   f"it only after the last use (one owner that closes it in teardown, e.g. a "
                   f"fixture with yield or a `with` block around every user), and stop the "
                   f"threads or tasks that still use it before closing it."),
    )


def waited_on_shut_pool(e: Evidence) -> Finding | None:
    """A wait for results ran out in a frame whose pool had already been shut down (a with
    block that ended before the results were fetched: Pool.__exit__ terminates)."""
    exc = e.outermost
    shut = [fact for fact in e.facts("closed") if "was shut down" in fact.detail]
    if exc is None or not exc.is_a(*TIMEOUT_ERRORS) or not shut:
        return None
    pool = shut[0].detail.split(" (", 1)[0]
    return hit(
        0.9,
        [f"{describe(exc)}{where(e)}: {shut[0].detail} before its results were collected",
         f"the wait: `{line(e)}`" if line(e) else ""],
        Suggestion(f"Collect the results while {pool} is still running: fetch them inside its "
                   f"`with` block (multiprocessing.Pool's exit terminates the workers, it does "
                   f"not wait), or call close() and join() before leaving it."),
    )


#: what a closed file, socket, pipe, queue, connection or executor raises when it is used
_CLOSED_RAISES = ("builtins.ValueError", "builtins.OSError", "builtins.RuntimeError",
                  "builtins.EOFError", "sqlite3.ProgrammingError", "sqlite3.Error",
                  "asyncio.exceptions.InvalidStateError")


def _uses(source: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?![\w\"'])", source) is not None


_CANCELLED = ("asyncio.exceptions.CancelledError", "concurrent.futures._base.CancelledError")


def cancelled(e: Evidence) -> Finding | None:
    """The test awaited a task that was cancelled (a stop() or shutdown ran while it still
    had work): asyncio's CancelledError reached the test."""
    exc = e.outermost
    c = e.comparison
    gone = [f for f in e.facts("cancelled") if not _cancelled_later(f, e)]
    if gone and c is not None and c.op == "==" and _fewer(c):
        return hit(
            0.7,
            [f"{gone[0].detail}, and the assert{where(e)} found {c.left} where {c.right} was "
             f"expected: what it would have delivered never came"],
            _CANCEL_ADVICE)
    if exc is None or not exc.is_a(*_CANCELLED):
        return None
    return hit(
        0.75,
        [f"{describe(exc)}{where(e)}: the task or future it waited on was cancelled before "
         f"it finished its work"],
        _CANCEL_ADVICE,
    )


def _cancelled_later(fact: FrameFact, e: Evidence) -> bool:
    """A task read as cancelled after the failure (a ``finally:`` cancelled it), while the
    test's tasks as they were at the failed assert were none of them cancelled."""
    tasks = [w for w in e.workers if w.kind == "task"]
    return "(Task)" in fact.detail and bool(tasks) and all(w.state != "cancelled"
                                                           for w in tasks)


_CANCEL_ADVICE = Suggestion(
    "Something stopped the work while it still had items (a shutdown with cancel_futures, a "
    "context's exit, cancel()): let it finish first (wait for the futures, await queue.join() "
    "or the task itself before cancelling, or signal it to stop and await it), and cancel only "
    "what must not finish.")


def connection(e: Evidence) -> Finding | None:
    """BrokenPipe / ConnectionReset / ConnectionRefused, or EOFError on a pipe."""
    for qualname, meaning in _CONNECTION.items():
        exc = e.any_exception(qualname)
        if exc is not None:
            # In a test that used doubles and still opened a real socket, the patch missed
            # (mockgap.real_resources): the refusal is its consequence. Where the code raised
            # it because of what a double answered (an unset recv() read as the peer's end),
            # no connection was there to close: mock-gap.unset-attribute reads that.
            score = SUPPORTS if e.facts("double-decided") else \
                0.5 if e.mocked and e.spawned else _own(
                    e, 0.8, elsewhere=_passes_alone(e) or bool(e.facts("closed-elsewhere")))
            return hit(score, [f"{describe(exc)}{where(e)}: {meaning}"],
                       _connection_advice(qualname, e))
    exc = e.any_exception("builtins.EOFError")
    if exc is None or not any(m.startswith(_PIPE_MODULES) for m in exc.modules):
        return None  # EOFError from input() or a parser is an ordinary bug
    return hit(0.7, [f"{describe(exc)}{where(e)}: the pipe's other end closed (a worker exited)"],
               _connection_advice("builtins.BrokenPipeError", e))


def end_of_stream(e: Evidence) -> Finding | None:
    """A read the assert checked came back as b'' (the peer closed, or the child's pipe
    ended) where bytes were expected, in a test that ran a server, worker or process."""
    short = e.any_exception("struct.error")
    if short is not None and e.facts("socket"):
        return _short_read(e, short)
    c = e.comparison
    if c is None or c.op != "==" or not (e.concurrent or e.spawned):
        return None
    left, right = literal(c.left), literal(c.right)
    position, expected = _empty_read(left, right), c.right
    if position is None:
        position, expected = _empty_read(right, left), c.left
    if position is None:
        return None
    return hit(
        0.6,
        [f"a read returned b'' (end of stream){position} where {expected} was expected"
         f"{where(e)}: the other end had closed or exited",
         f"the read: `{line(e)}`" if line(e) else ""],
        _END_OF_STREAM,
    )


def _short_read(e: Evidence, exc: ExceptionRecord) -> Finding:
    sock = e.facts("socket")[0].detail.split(" ", 1)[0]
    return hit(
        0.6,
        [f"{describe(exc)}{where(e)}, unpacking what was read from the socket {sock}: the "
         f"read came back short, as it does once the peer has closed its side"],
        _END_OF_STREAM,
    )


_END_OF_STREAM = Suggestion(
    "The peer closed the connection (or the child closed its pipe) before this read: a "
    "server that answers once and closes, a worker that exited, a keep-alive connection "
    "reused after the far end dropped it. Check the peer is still serving before reusing the "
    "connection, or reconnect on b''.")


def _empty_read(got: object, want: object) -> str | None:
    """Where ``got`` holds b'' and ``want`` holds bytes: '' for the whole value, or
    ' at item N' of two sequences of the same length."""
    if got == b"" and isinstance(want, bytes) and want:
        return ""
    if isinstance(got, list | tuple) and isinstance(want, list | tuple) and len(got) == len(
            want):
        for index, (mine, theirs) in enumerate(zip(got, want, strict=True)):
            if mine == b"" and isinstance(theirs, bytes) and theirs:
                return f" at item {index}"
    return None


def loop_closed(e: Evidence) -> Finding | None:
    """An asyncio object outlived its event loop ("Event loop is closed")."""
    match = search(_LOOP, e)
    if match is None:
        return None
    return hit(
        # another thread of the test closed it under this one: race.closed-under-use
        _own(e, 0.85, elsewhere=bool(e.facts("closed-elsewhere"))),
        [f"asyncio: {match.group(0)!r}{where(e)}: an object created on one event loop was "
         f"used after that loop closed or from another loop"],
        "Create async clients, servers and queues inside the test's own loop (a function-scoped "
        "async fixture) and close them before the loop closes; never keep them in module globals.",
    )


def address_in_use(e: Evidence) -> Finding | None:
    """OSError EADDRINUSE: a server from earlier is still bound to the port."""
    match = search(_IN_USE, e)
    if match is None:
        return None
    call = f" by `{line(e)}`" if line(e) else ""
    return hit(
        0.9,
        [f"the address is already in use{call}{where(e)}: a server or socket that an earlier "
         f"test (or a parallel worker) opened on the same port is still bound"],
        Suggestion(f"The port{call} was taken: bind to port 0 and read the port the system "
                   f"chose (getsockname()[1]), close servers in teardown, and set "
                   f"SO_REUSEADDR for quick rebinds."),
    )


def already_started(e: Evidence) -> Finding | None:
    """A thread or process object was started twice, or a named pool/server still runs."""
    match = search(_TWICE, e)
    if match is None:
        return None
    if _OBJECT_TWICE.search(match.group(0)):
        return hit(
            # two threads of the test raced to start it (race.started-twice): it supports
            SUPPORTS if e.facts("started-twice") else 0.85,
            [f"{match.group(0)!r}{where(e)}: a Thread/Process object was started a second "
             f"time (shared between tests or restarted after stopping)"],
            "Create a new Thread/Process per start (a function-scoped fixture), never reuse "
            "one kept in a module or session fixture.",
        )
    name = _NAMED.search(e.text())
    what = f"{name.group(1)} {name.group(2)!r}" if name else "something registered by name"
    return hit(
        0.85,
        [f"{describe(e.outermost) if e.outermost else match.group(0)}{where(e)}: {what} is "
         f"still running from an earlier start that was never stopped (names are process-wide, "
         f"so an earlier test that forgot to stop it breaks every later start)"],
        _unique_name(e, name.group(2) if name else None),
    )


def _unique_name(e: Evidence, name: str | None) -> Suggestion:
    """The failing line with its literal name replaced by a unique one, when it has it."""
    text = ("Stop what a test starts in its teardown (a fixture with yield), and give each "
            "test its own name so a leftover cannot collide: the pool_scope fixture's "
            "name(prefix) returns a unique one")
    source = line(e).strip()
    literal = next((q + name + q for q in "'\"" if name and q + name + q in source), None)
    if literal is None or name is None:
        return Suggestion(f"{text}.")
    fixed = source.replace(literal, f"pool_scope.name({literal})", 1)
    return Suggestion(f"{text}; {name!r} is taken{where(e)}, so there:", fixed)


def unhandled_thread(e: Evidence) -> Finding | None:
    """An exception in a background thread (or a finaliser) was never handled."""
    raised = [f"PytestUnhandledThreadExceptionWarning: {x.message}" for x in e.exceptions
              if x.type.endswith(".PytestUnhandledThreadExceptionWarning")]
    thread = raised + [w for w in e.warnings if w.startswith("PytestUnhandledThreadException")]
    unraisable = [w for w in e.warnings if w.startswith("PytestUnraisableException")]
    if not thread and not unraisable:
        return None
    return hit(
        # a thread that died of a test double's own error: the mock gap is the cause
        # ... or of what another thread closed under it: race.closed-under-use reads that
        SUPPORTS if double_stopped(e) else _own(e, 0.7 if thread else 0.5,
                                                elsewhere=bool(e.facts("closed-elsewhere"))),
        [_after_colon(text) for text in (thread + unraisable)[:3]],
        "Collect the outcome of background work: submit it to an executor and call "
        "future.result(), or join the thread and re-raise the exception it stored; an "
        "exception that only prints never fails the step that depends on it.",
    )


def child_failed(e: Evidence) -> Finding | None:
    """A child process the test ran exited with a failure status and the code raised on it
    (CalledProcessError carries it; or the raising frame held the finished child): the
    child's own run broke, the test only saw its exit."""
    exc = e.any_exception("subprocess.CalledProcessError")
    checked = e.facts("exit-checked")
    if (exc is None and not checked) or e.crash is not None:
        return None
    if exc is not None:
        code = re.search(r"exit status (-?\d+)", exc.message)
        status = f" with status {code.group(1)}" if code else ""
        what = f"{describe(exc)}{where(e)}: the child process exited{status} before doing " \
               f"its work"
    else:
        status = "".join(f" with status {code}" for code in exit_codes(e)[:1])
        what = f"{describe(e.outermost) if e.outermost else 'the failure'}{where(e)}: " \
               f"{checked[0].detail}"
    return hit(
        0.75 if exc is not None else 0.6,
        [what],
        Suggestion(f"Read the child's own output (capture stderr and show it in the assertion "
                   f"message): it failed{status} for a reason of its own; a negative status "
                   f"-N is signal N (-9: killed, often by the OOM killer)."),
    )


def refused_by_state(e: Evidence) -> Finding | None:
    """The concurrency machinery itself refused the call because of its object's state: a
    thread or process joined before it started, a future set twice, asyncio.run inside a
    running loop, daemon status changed on a live thread, a descriptor used after close."""
    exc = e.outermost
    if exc is None:
        return None
    raiser = exc.modules[-1] if exc.modules else ""
    # exact types: a subclass (BrokenBarrierError, a project's own error) has a meaning of
    # its own
    machinery = refused_by_machinery(exc)
    closed_fd = closed_descriptor(exc)
    if not machinery and not closed_fd:
        return None
    what = ("a file descriptor was used after it was closed" if closed_fd and not machinery
            else f"{raiser} refused the call in its object's current state (not started yet, "
                 f"already finished, already running)")
    # With several workers running, the state it found may be another worker's doing (a
    # race rule reads that); a patch that stood in for the start left it unstarted
    # (mock-gap.patched-worker reads that): here it only supports.
    return hit(
        # A shut-down pool or a closed loop is the same refusal pool-shut-down or
        # loop-closed read: one event counts once, here it only supports.
        _own(e, 0.65, elsewhere=e.concurrent or bool(stood_in(e))
             or search(_SHUT_DOWN, e) is not None or search(_LOOP, e) is not None),
        [f"{describe(exc)}{where(e)}: {what}"],
        Suggestion("Order the start, use and stop of that object explicitly: start before join, "
                   "set a result once, close only after the last user (a fixture that starts it "
                   "and stops it in teardown keeps the order in one place)."),
    )


#: what a lifecycle reading scores when another reading owns the event it saw: it supports
SUPPORTS = 0.3


def _own(e: Evidence, score: float, elsewhere: bool = False) -> float:
    """``score`` for this test's own lifecycle; SUPPORTS when reruns put the event on an
    earlier test (a shared object it ended, a setting of the code it went through that it
    changed) or ``elsewhere`` says another reading owns it (another thread's close, a patch
    that stood in for the start, several workers); at most UNOBSERVED when nothing but the
    error itself says anything of this test's own objects."""
    if elsewhere or _earlier_tests_doing(e) or polluted_path(e):
        return SUPPORTS
    return score if _observed(e) else min(score, UNOBSERVED)


#: a lifecycle reading resting on the error alone: it claims, but as a guess
UNOBSERVED = 0.5


def _observed(e: Evidence) -> bool:
    """Something of this test's own was seen to start, end or be closed: a thread, process
    or task it ran (running or ended), an object the failing frames held found closed, or
    the test's own process dying; and no test double sat in the frame that raised. Without
    it a refused connection, a shut-down pool or a closed loop was something the test did
    not make (a module's, a wider fixture's, an earlier test's), or a double's answer, as
    often as its own mistake."""
    # a module global found closed was closed by whoever closed it, not seen as the test's
    shared = {fact.detail for fact in e.facts("closed-global")}
    closed = [fact for fact in e.facts("closed") if fact.detail not in shared]
    if e.facts("double-at-raise") and not closed:
        return False  # what refused may have been the double's own answer
    return bool(e.workers or closed or e.crash is not None)


def _passes_alone(e: Evidence) -> bool:
    """Reruns proved the test passes without the tests before it (the order reproduced, or
    the search for which earlier test it was ran out of budget): whatever it connects to
    was there and answered when it ran alone, so a refused or reset connection after the
    earlier tests is what they left (a server stopped, an address or proxy changed), not
    this test's own peer's lifecycle."""
    reruns = e.reruns
    return reruns is not None and (reruns.verdict is Verdict.ORDER_DEPENDENT
                                   or (reruns.verdict is Verdict.UNKNOWN
                                       and reruns.passes_alone))


def _earlier_tests_doing(e: Evidence) -> bool:
    """Reruns proved the test passes alone (the order reproduced, or the search for which
    earlier test it was ran out of budget), and the object that refused was not this test's
    own (it started no worker): an earlier test left it shut down or closed, which the
    pollution readings tell, not this test's use of it."""
    return _passes_alone(e) and bool(refused_shared(e))




def worker_exit(e: Evidence) -> Finding | None:
    """A worker or process exited (an exit code, "terminated abruptly", a crashed worker)."""
    if e.crash is not None:
        return None  # the test's own process died: process-died speaks for that
    if e.any_exception("concurrent.futures._base.BrokenExecutor") is not None:
        return None  # the same death, which broken-executor reads: one event counts once
    code = search(_EXIT_CODE, e)
    crash = search(_CRASH, e)
    if code is None and crash is None:
        return None
    return hit(
        _own(e, 0.8),
        [f"a worker process exited while in use ({_exit_code(e)})",
         f"{crash.group(0)!r}" if crash else ""],
        _per_test_pool(e),
    )


def own_leaks(e: Evidence) -> Finding | None:
    """This test left threads, processes or pools running when it failed."""
    live = _live_leaks(e)
    if not live:
        return None
    return hit(
        0.3,  # supports other lifecycle signals; too weak to claim a failure alone
        [f"this test left {len(live)} thread(s)/process(es)/pool(s) running", *live[:3]],
        "Stop what the test starts in teardown (join threads with a timeout, shut pools down, "
        "terminate child processes); the failure may have skipped the test's own cleanup, so "
        "use a fixture with yield or try/finally.",
    )


def never_awaited(e: Evidence) -> Finding | None:
    """A real coroutine was created and never awaited: the task never started."""
    if e.mocked or any("AsyncMock" in w for w in e.warnings):
        return None  # an un-awaited AsyncMock is a mock gap (mockgap.never_awaited)
    seen = [w for w in e.warnings if "was never awaited" in w]
    if not seen:
        return None
    return hit(0.5, [_after_colon(seen[0]) + ": that work never ran"],
               "await the coroutine, or schedule it with asyncio.create_task(...) and keep a "
               "reference until it is done.")


def _exit_code(e: Evidence) -> str:
    match = search(_EXIT_CODE, e)
    code = next((g for g in match.groups() if g), None) if match else None
    return f"exit code {code}" if code is not None else "exit code unknown"


def _live_leaks(e: Evidence) -> list[str]:
    return [leak.detail for leak in e.leaks if leak.kind in _LIVE_KINDS]


_EXECUTORS = {
    "concurrent.futures.process": "ProcessPoolExecutor",
    "concurrent.futures.thread": "ThreadPoolExecutor",
}
_NOT_USER = ("pytest_poolchaos", "_pytest", "pluggy", "pytest", "conftest")
_CONNECTED_TO = re.compile(r"socket connect to (\S+)")


def _per_test_pool(e: Evidence) -> Suggestion:
    """A pool per test, written out only for the pool class the failure went through."""
    modules = {m for exc in e.exceptions for m in exc.modules}
    executor = next((cls for module, cls in _EXECUTORS.items() if module in modules), None)
    if executor is not None:
        return Suggestion(
            f"Create the {executor} per test (a function-scoped fixture that shuts it down "
            f"after the test) instead of sharing one, so one dead worker or early shutdown "
            f"cannot break other tests.",
            f"@pytest.fixture\ndef pool():\n    with {executor}(max_workers=2) as ex:\n"
            f"        yield ex")
    owner = user_class(e)
    what = f"{owner[1]} ({owner[0]})" if owner else "worker or pool"
    return Suggestion(
        f"Give each test its own {what}: a function-scoped fixture that starts it and stops "
        f"it after the test, instead of one shared across tests, so one that an earlier test "
        f"stopped or crashed ({_exit_code(e)}) cannot break later ones.")


def user_class(e: Evidence) -> tuple[str, str] | None:
    """(module, class) of the first frame that raised in the project's own code (not the
    test module, not the standard library), from ``module:Owner.function``."""
    for raiser in e.raised_in:
        module, _, qualname = str(raiser).partition(":")
        owner = qualname.rpartition(".")[0]
        top, leaf = module.split(".", 1)[0], module.rsplit(".", 1)[-1]
        if (owner and not is_test_module(leaf) and top not in sys.stdlib_module_names
                and not top.startswith(_NOT_USER)):
            return module, owner
    return None


def is_test_module(name: str) -> bool:
    """pytest's default python_files patterns, and conftest."""
    return name.startswith("test_") or name.endswith("_test") or name == "conftest"


def _connection_advice(qualname: str, e: Evidence) -> Suggestion:
    if qualname.endswith("RefusedError"):
        address = next((m.group(1) for m in map(_CONNECTED_TO.search, e.spawned) if m), None)
        at = f" on {address}" if address else ""
        return Suggestion(f"Nothing listened{at} when the test connected{where(e)}: start the "
                          f"server first and wait until it is ready (have it set a "
                          f"threading.Event after listen() and wait on it with a timeout, or "
                          f"poll the port with a deadline).")
    owner = user_class(e)
    what = f"{owner[1]} ({owner[0]})" if owner else "the server or worker"
    return Suggestion(f"{what} was gone when the test used it{where(e)}: keep it alive until "
                      f"every client is done with it (stop it in teardown, after the "
                      f"clients), and check it did not crash.")


def _after_colon(text: str) -> str:
    return text.split(": ", 1)[1] if ": " in text else text


def process_died(e: Evidence) -> Finding | None:
    """The process running the test died under it (an xdist worker crash, os._exit, a signal,
    the out-of-memory killer) and no timeout explains it."""
    crash = e.crash
    if crash is None or killed_by_thread_timer(e):
        return None
    lines = [f"{crash.how} while running this test"
             + ("; xdist started a replacement and the run went on" if crash.worker else ""),
             noticed(crash.ran_s)]
    return hit(0.8 if crash.exit_code is not None else 0.6, lines,
               _death_advice(crash.exit_code))


def _death_advice(code: int | None) -> Suggestion:
    if code == -9:
        return Suggestion("SIGKILL comes from outside the test: the out-of-memory killer (check "
                          "`dmesg` and the job's memory limit) or a test/fixture that kills its "
                          "own process group; watch the worker's memory while this test runs.")
    if code is not None and code < 0:
        return Suggestion("The process died from a signal: a crash in a C extension or a signal "
                          "sent to the wrong pid; run the test alone with `python -X "
                          "faulthandler -m pytest -p no:xdist NODEID` to get the stack.")
    return Suggestion("Something in the test ended the process (os._exit, sys.exit in a forked "
                      "child, a pool initializer calling exit): run it alone with -p no:xdist "
                      "and look for os._exit/exit calls in the code it runs.")


#: exit statuses a process gets from whoever stops it (SIGKILL, SIGTERM), often after the wait
#: already ran out: they say nothing about why the wait ran out
_STOPPED = (0, -9, -15)


def died_with_work(e: Evidence) -> Finding | None:
    """A wait ran out after a worker task had died with an exception nobody retrieved: the
    work it owned (a task_done(), a result, a signal) was never going to come."""
    waited = e.any_exception(*TIMEOUT_ERRORS, *QUEUE_EMPTY, *_CANCELLED) or (
        e.timeout is not None and e.timeout.fired) or e.facts("bounded-wait")
    # a task that gave up the same way as the failure waited too; it did not die with work
    same = e.outermost.type.rsplit(".", 1)[-1] + ":" if e.outermost is not None else "\0"
    # ... nor did one that another thread's write broke (a race rule reads that)
    hidden = [text for text in hidden_errors(e)
              if not text.startswith(same) and not RACED.search(text)]
    if not waited or not hidden:
        return None
    return hit(
        # the task died of a test double's own error: the mock gap is the cause
        SUPPORTS if double_stopped(e) else 0.9,
        [f"a worker task raised {hidden[0]} and nobody retrieved it; the wait{where(e)} was "
         f"for work that task never finished",
         *(f"also raised in a task: {text}" for text in hidden[1:2])],
        Suggestion(f"Fix or handle {hidden[0]} inside the worker (catch it per item and still "
                   f"mark the item done, e.g. queue.task_done() in a finally:), and await or "
                   f".result() every task so its error surfaces; a longer timeout would only "
                   f"wait longer for a worker that is gone."),
    )


def killed_with_work(e: Evidence) -> Finding | None:
    """A process of the test had been killed by a signal when the assert found results
    missing (fewer items, or nothing): what it had not yet handed over died with it."""
    stopped = killed(e)
    c = e.comparison
    if not stopped or c is None or c.op != "==" or not _fewer(c):
        return None
    signal = -(stopped[0].exit_code or 0)
    return hit(
        0.75,
        [f"{stopped[0].describe()}: killed by signal {signal} before the assert{where(e)}, "
         f"which found {c.left} where {c.right} was expected",
         "what the process had not yet written (a final result, a queue item, a flushed "
         "file) went with it"],
        Suggestion(f"The process was stopped by signal {signal} (terminate()/kill() skip its "
                   f"finally blocks and exit handlers): ask it to stop (an Event or a "
                   f"sentinel on its queue) and join it, and kill only after that join times "
                   f"out; read its results before killing it."),
    )


def _fewer(c: Comparison) -> bool:
    """The assert's left side has fewer items (or is empty/zero) where more were expected."""
    if c.left_len is not None and c.right_len is not None:
        return c.left_len < c.right_len
    if c.left_value is not None and c.right_value is not None:
        return 0 <= c.left_value < c.right_value
    return c.left in ("None", "[]", "()", "{}", "''", "b''")


def abandoned_queue(e: Evidence) -> Finding | None:
    """The assert found results missing while a queue the test held still had items in it
    and every thread of the test had ended: its consumer stopped before the work was done
    (an exception that ended its loop, a stop that came too early)."""
    queued = abandoned(e)
    threads = [w for w in e.workers if w.kind == "thread"]
    c = e.comparison
    if not queued or c is None or c.op != "==" or not _fewer(c):
        return None
    if e.facts("deadline") or e.facts("ran-out-call"):
        # the consumer was a loop that gave up at its deadline, or a call whose wait for
        # the next item ran out: a timeout
        return None
    return hit(
        0.7,
        [f"{queued[0].detail}, and no thread of the test was left to take them "
         f"({threads[0].describe()}): the assert{where(e)} found {c.left} where {c.right} "
         f"was expected"],
        Suggestion(f"The consumer ({threads[0].name}) stopped while work was still queued: "
                   f"find what ended its loop (an exception from one item should be handled "
                   f"per item, not end the thread) and have close() drain the queue or "
                   f"report what was left."),
    )


def setter_gone(e: Evidence) -> Finding | None:
    """An Event.wait(timeout) the test went past came back False, and every thread of the
    test had ended well before: the worker that was to set it had stopped, so no wait would
    have been long enough."""
    dropped = e.facts("dropped-wait")
    if not dropped or not signallers_done(e):
        return None
    threads = [w.describe() for w in e.workers if w.kind in ("thread", "process", "task")]
    return hit(
        0.75,
        [f"{dropped[0].detail}{where(e)}, and every worker of the test had already ended "
         f"({'; '.join(threads[:3])}): nobody was left to set it"],
        Suggestion("The worker that should have set the event had stopped (it returned, was "
                   "stopped by a restart, or lost the object it worked for): keep it running "
                   "until its work is done, and check the wait's result so the test says the "
                   "event never came."),
    )


def dead_before_timeout(e: Evidence) -> Finding | None:
    """A wait ran out while a process the test started had already died: the timeout is the
    consequence, the dead worker the cause."""
    waited = e.any_exception(*TIMEOUT_ERRORS, *QUEUE_EMPTY) or (
        e.timeout is not None and e.timeout.fired)
    dead = [w for w in e.workers if w.kind == "process" and w.state == "exited"
            and w.exit_code is not None and w.exit_code not in _STOPPED]
    if not waited or not dead or e.any_exception("subprocess.TimeoutExpired"):
        return None
    return hit(
        0.9,
        [f"{dead[0].describe()} before the wait ran out: nothing was left to do the work",
         *(w.describe() for w in dead[1:3])],
        Suggestion(f"Find why {dead[0].kind} {dead[0].name!r} died (exit code "
                   f"{dead[0].exit_code}: an exception, os._exit, a crash); a longer timeout "
                   f"would only wait longer for a worker that is gone. Check the worker is "
                   f"alive (is_alive(), exitcode) before waiting on its results."),
    )


def worker_failed(e: Evidence) -> Finding | None:
    """Consulted only when no rule claims the failure: a process of the test had ended with a
    failing exit code when the test failed, so the work it owed never came."""
    failed = [w for w in e.workers if w.kind == "process" and w.exit_code not in (None, 0)]
    if not failed:
        return None
    return hit(
        FALLBACK_SCORE,
        [f"{failed[0].describe()} had failed when the test did{where(e)}, and no other signal "
         f"explains the failure: what it was to deliver never came"],
        Suggestion(f"Find why {failed[0].name} exited with {failed[0].exit_code} (its stderr, "
                   f"an exception in the child, a signal), and make the test check the "
                   f"child's exit code before reading its results."),
    )


def stopped_under_it(e: Evidence) -> Finding | None:
    """Consulted only when no rule claims the failure: an error other than an assert was
    raised in library code that held a resource already closed or shut down, or while a
    process of the test had already exited: what it used had stopped under it."""
    if e.outermost is None or e.any_exception("builtins.AssertionError") is not None:
        return None
    closed = [f.detail for f in e.facts("closed") if not _in_test_code(f.detail)]
    ended = [w for w in e.workers if w.kind == "process" and w.state == "exited"]
    if closed:
        what = closed[0]
    elif ended and not any(w.state == "busy" for w in e.workers):
        what = f"{ended[0].describe()} by then"
    else:
        return None
    return hit(
        FALLBACK_SCORE,
        [f"{describe(e.outermost)}{where(e)}: {what}, and no other signal explains the "
         f"failure"],
        Suggestion(f"The code used something that had already stopped ({what}): make the "
                   f"owner report that it is closed (raise a clear error, or refuse the call) "
                   f"and keep it alive until its last user is done."),
    )


def _in_test_code(detail: str) -> bool:
    """A frame fact's ``in func (file:line)`` names a test module or conftest."""
    place = detail.rsplit("(", 1)[-1]
    return place.startswith(("test_", "conftest")) or "_test.py" in place
