"""Timeout: something did not finish in time."""

from __future__ import annotations

import re

from ..model import Evidence, Finding, FrameFact, Suggestion
from .signals import (
    FALLBACK_SCORE,
    WAIT_ARG,
    describe,
    double_stopped,
    fired_early,
    hit,
    line,
    num,
    pct,
    search,
    secs,
    still_working,
    stood_in,
    waited,
    where,
)

TIMEOUT_ERRORS = (
    "builtins.TimeoutError",
    "concurrent.futures._base.TimeoutError",
    "asyncio.exceptions.TimeoutError",
    "multiprocessing.context.TimeoutError",
)
QUEUE_EMPTY = ("_queue.Empty", "queue.Empty")
_TIMED_OUT_AFTER = re.compile(r"timed out after ([0-9.]+) seconds")
_NOWAIT = re.compile(r"get_nowait\(|block\s*=\s*False|\.get\(\s*False")
_WAIT_FALSE = re.compile(
    r"where False = <bound method (\w+)\.(wait|is_set|wait_for)\b"
    # the call is the whole assertion (a message may follow): `assert p.wait() == 3` compares
    # what a Popen's wait() returned, it is no event that stayed unset
    r"|^\s*assert\s+(?!not\b)[\w.\[\]()]+\.(wait|is_set|wait_for)\((?:[^()]|\([^()]*\))*\)"
    r"\s*(?:,.*)?$"
)
NEAR = 0.8  # share of the limit a failed test used before "near the limit" counts
#: a wait measured with a clock the test froze (a double with one return value), or one on a
#: thread that waits for a lock it holds itself, says nothing about how long the work takes:
#: only supporting (mock-gap.frozen-clock, race.self-deadlock tell the cause)
_STILL = 0.3


def pytest_timeout(e: Evidence) -> Finding | None:
    """pytest-timeout fired ("Timeout (>Xs) from pytest-timeout")."""
    info = e.timeout
    if info is None or not info.fired or not info.seconds or fired_early(e) is not None:
        return None  # early: not its timer (config-pollution.timeout-alarm)
    limit = info.seconds
    ran = f", the test ran {secs(e.duration_s)}" if e.duration_s else ""
    scope = "the test function" if info.func_only else "setup, call and teardown"
    alive = [str(entry) for entry in e.alive or ()][:5]
    return hit(
        _STILL if e.facts("frozen-clock") or e.facts("self-deadlock") or stood_in(e) else 0.95,
        [f"pytest-timeout fired during {e.when}: limit {secs(limit)} on {scope}{ran}",
         f"the {secs(limit)} limit comes from {info.source or 'the pytest-timeout configuration'}"
         f" (method {info.method or 'signal'})",
         "alive when it fired: " + "; ".join(alive) if alive else "",
         _load_line(e)],
        Suggestion(f"Find the call that blocked: give every wait in this test a timeout well "
                   f"below {secs(limit)} (event.wait(timeout=...), future.result(timeout=...), "
                   f"queue.get(timeout=...)) so the failure names the stuck step."),
        _stuck_or_slow(e, limit, alive),
    )


def _load_line(e: Evidence) -> str:
    if not e.load.get("cpus"):
        return ""
    load = f"load {num(e.load['load1'])} " if "load1" in e.load else ""
    cpu = f", CPU {num(e.load['cpu_percent'])}%" if "cpu_percent" in e.load else ""
    return f"machine when it failed: {load}on {num(e.load['cpus'])} cores{cpu}"


def _busy(e: Evidence) -> bool:
    cpus = e.load.get("cpus") or 0
    return bool(cpus) and (e.load.get("load1", 0) >= cpus or e.load.get("cpu_percent", 0) >= 90)


def _stuck_or_slow(e: Evidence, limit: float, alive: list[str]) -> Suggestion:
    # What the other threads were doing separates "nothing was working" from "too slow".
    raise_it = f"@pytest.mark.timeout({num(limit * 2)})"
    if _SLEEP.search(line(e)):
        return Suggestion(f"It fired in the test's own `{line(e)}`: a fixed sleep spends the "
                          f"{secs(limit)} limit whatever the other threads do. Wait for the "
                          f"condition itself (an Event, a poll with a deadline) instead of "
                          f"sleeping, or raise the limit for this test alone, e.g. {raise_it}.",
                          raise_it)
    here = not _work_elsewhere(e, alive)  # else its threads may all wait on another process
    if here and e.alive is not None and not alive:  # the dump was read: no other thread
        return Suggestion("No other thread was alive when it fired: the test was waiting for "
                          "work nobody was doing (a worker that never started or already "
                          "died, an event nothing sets). Check the worker is started and alive "
                          "before waiting on it; a longer limit will not help.")
    if here and alive and all(" waiting in " in entry for entry in alive):
        return Suggestion("Every other thread was waiting too: a deadlock or a lost wake-up "
                          "(each waits for another). Find who should set/release what the "
                          "test waits on; a longer limit will not help.")
    if _busy(e):
        return Suggestion(f"The machine was saturated ({_load_line(e).split(': ', 1)[-1]}): "
                          f"the work is slow under load. Run fewer workers (-n) or raise the "
                          f"limit for this test alone, e.g. {raise_it}.", raise_it)
    idle = " on an idle machine" if e.load.get("cpus") else ""
    return Suggestion(f"The work was still running{idle}, so it is simply slow on its own: "
                      f"make it faster or raise the limit for this test alone (it used all "
                      f"{secs(limit)}), e.g. {raise_it}.", raise_it)


def _work_elsewhere(e: Evidence, alive: list[str]) -> bool:
    """The test started a process, one was alive in its failing frames, or a thread here
    waited on a pipe or socket: what the threads of this process wait for may be work going
    on in another process, so their waiting says neither "deadlock" nor "nobody working"."""
    return (any(entry.startswith("process ") for entry in e.spawned)
            or any(w.kind == "process" and w.state == "alive" for w in e.workers)
            or any(ipc in entry for entry in alive for ipc in _IPC_WAITS))


#: the line it fired in is a sleep of the test's own
_SLEEP = re.compile(r"\bsleep\(")
#: where a thread waits on another process or the network (as the stack dump shows files)
_IPC_WAITS = ("(selectors.py:", "(connection.py:", "(socket.py:", "(ssl.py:",
              "(subprocess.py:", "(popen_fork.py:")


def timeout_error(e: Evidence) -> Finding | None:
    """TimeoutError from futures, asyncio, multiprocessing, sockets or your own deadline."""
    exc = e.any_exception(*TIMEOUT_ERRORS)
    if exc is None:
        return None
    seconds = waited(e)
    gave_up = f" after {secs(seconds)}" if seconds is not None else ""
    call = f" in `{line(e)}`" if line(e) else ""
    return hit(
        # a worker that died of its test double was never going to deliver
        _STILL if double_stopped(e) else 0.85 if exc is e.outermost else 0.7,
        [f"{describe(exc)} raised{where(e)}: a wait gave up{gave_up}",
         f"the wait{call}" if call else ""],
        _slow_or_stuck(seconds, e),
    )


def subprocess_timeout(e: Evidence) -> Finding | None:
    """subprocess.TimeoutExpired: a child process ran longer than run()/communicate() allowed."""
    exc = e.any_exception("subprocess.TimeoutExpired")
    if exc is None:
        return None
    match = _TIMED_OUT_AFTER.search(exc.message)
    seconds = float(match.group(1)) if match else waited(e)
    return hit(
        0.9,
        [f"{describe(exc)}", f"the child process was given {secs(seconds)}{where(e)}"],
        Suggestion(f"The command did not finish in {secs(seconds)}: run it with a longer "
                   f"timeout (e.g. timeout={num((seconds or 1) * 3)}) if it is slow under load, "
                   f"or check it is not waiting for input (pass stdin=subprocess.DEVNULL)."),
    )


def queue_empty(e: Evidence) -> Finding | None:
    """queue.Empty after a timed get(): the producer did not deliver in time."""
    exc = e.any_exception(*QUEUE_EMPTY)
    if exc is None or _NOWAIT.search(line(e)):
        return None  # get_nowait() raises Empty by design: a race, not a wait that ran out
    seconds = waited(e)
    gave_up = f"after {secs(seconds)}" if seconds is not None else "after its timeout"
    return hit(
        _STILL if stood_in(e) or double_stopped(e) else 0.75 if seconds is not None else 0.55,
        [f"queue.Empty{where(e)}: get() gave up {gave_up} without an item",
         f"the call: `{line(e)}`" if line(e) else ""],
        _slow_or_stuck(seconds, e),
    )


def event_wait(e: Evidence) -> Finding | None:
    """``assert event.wait(t)`` / ``assert event.is_set()`` failed: the event was never set."""
    if e.any_exception("builtins.AssertionError") is None:
        return None
    match = search(_WAIT_FALSE, e)
    if match is None:
        return None
    method = match.group(2) or match.group(3) or "wait"
    seconds = waited(e)
    within = f" within {secs(seconds)}" if seconds is not None else ""
    return hit(
        0.8,
        [f"{method}() returned False{where(e)}: the event was not set{within}",
         f"the assertion: `{line(e)}`" if line(e) else ""],
        Suggestion(f"The code that sets the event did not get there{within}: check that its "
                   f"thread started and did not die with an exception (look for an unhandled "
                   f"thread exception), then wait longer only if it is merely slow, e.g. "
                   f"wait(timeout={num((seconds or 1) * 3)})."),
    )


def near_limit(e: Evidence) -> Finding | None:
    """The failed test used most of its pytest-timeout limit without it firing."""
    info = e.timeout
    if info is None or info.fired or not info.seconds or e.crash is not None:
        return None  # a crash's time is when it was seen (thread-method-kill, process-died)
    used = e.call_duration_s if info.func_only else e.duration_s
    if used < NEAR * info.seconds:
        return None
    return hit(
        0.6 if used >= 0.95 * info.seconds else 0.5,
        [f"the test ran {secs(used)} of its {secs(info.seconds)} limit "
         f"({pct(used, info.seconds)}) before failing"],
        _near_limit_advice(e, used, info.seconds),
    )


def _near_limit_advice(e: Evidence, used: float, limit: float) -> Suggestion:
    share = pct(used, limit)
    seconds = waited(e) if e.any_exception(*TIMEOUT_ERRORS, *QUEUE_EMPTY) else None
    if seconds is not None:
        # The call's own timeout ran out, not pytest-timeout: that is the number to change.
        return Suggestion(f"The wait `{line(e).strip()}` gave up after {secs(seconds)}{where(e)}, "
                          f"at {share} of the test's {secs(limit)} limit: if the work is only "
                          f"slow, raise that wait's timeout and keep the test's limit above "
                          f"it; if it never finishes, look at what it waits on.")
    raise_it = f"@pytest.mark.timeout({num(limit * 2)})"
    return Suggestion(f"It failed at {share} of its {secs(limit)} limit: an internal wait "
                      f"probably ran out first; give it room ({raise_it}) or make the work "
                      f"faster.", raise_it)


def _slow_or_stuck(seconds: float | None, e: Evidence) -> Suggestion:
    if seconds is None:
        return Suggestion("Check whether the work it waited for was started at all (a worker "
                          "that never started or already died) before raising the timeout.")
    limit = e.timeout.seconds if e.timeout and e.timeout.seconds else None
    cap = f", keeping it below the test's {secs(limit)} limit" if limit else ""
    call = f"`{line(e).strip()}`{where(e)}" if line(e) else f"The wait{where(e)}"
    return Suggestion(
        f"{call} allowed {secs(seconds)} and gave up. If the work is only slow under load, "
        f"allow more there (3x is {secs(seconds * 3)}{cap}; --poolchaos-rerun measures what "
        f"it needs); if it never finishes, check the worker it waits on was started and is "
        f"not blocked or dead."
    )


#: a death this far into a thread-method limit is that timer (it calls os._exit(1))
THREAD_KILL_SHARE = 0.8


def killed_by_thread_timer(e: Evidence) -> bool:
    """The death looks like pytest-timeout's thread method: armed, exit status 1 (or unknown),
    and at least most of the limit used (or unknown)."""
    crash, info = e.crash, e.timeout
    if crash is None or info is None or info.method != "thread" or not info.seconds:
        return False
    if crash.exit_code not in (None, 1):
        return False
    return crash.ran_s is None or crash.ran_s >= THREAD_KILL_SHARE * info.seconds


def thread_method_kill(e: Evidence) -> Finding | None:
    """The process died with pytest-timeout's thread method armed and near its limit: that
    method dumps the stacks and calls os._exit(1) on expiry."""
    crash, info = e.crash, e.timeout
    if crash is None or info is None or not killed_by_thread_timer(e):
        return None
    limit = secs(info.seconds)
    return hit(
        0.9,
        [f"{crash.how} while this test was running, with pytest-timeout's thread method "
         f"active: on expiry it dumps the stacks and calls os._exit(1)",
         f"the {limit} limit comes from {info.source or 'the pytest-timeout configuration'} "
         f"(method thread)",
         noticed(crash.ran_s)],
        Suggestion(f"The test did not finish within {limit}: give every wait in it a timeout "
                   f"well below that (event.wait(timeout=...), future.result(timeout=...)) so "
                   f"it fails with a report instead of killing the process."),
        Suggestion("Use --timeout-method=signal where available: the test then fails normally "
                   "and the rest of the session still runs."),
    )


def noticed(ran_s: float | None) -> str:
    # The controller learns of a dead worker when its pipes close, which children that
    # inherited them can delay: a bound on how long the test ran, not the time it died.
    return f"the crash was seen {secs(ran_s)} after the test started" if ran_s is not None \
        else ""


def dropped_wait(e: Evidence) -> Finding | None:
    """An Event.wait(timeout) whose False result the test ignored, the event still unset when
    a later line failed (or seen to run out, and set only later): the wait ran out, the
    failure is its consequence."""
    # a dropped wait on an event set only later had a setter: it was late
    dropped = e.facts("ran-out-wait")
    if not dropped:
        dropped = e.facts("dropped-wait")
        if not dropped or signallers_done(e):
            return None  # nobody was left to set it: lifecycle.setter-gone
    busy = [w.describe() for w in e.workers if w.state == "busy"]
    return hit(
        0.8,
        [f"{dropped[0].detail}{where(e)}",
         f"still working when it failed: {busy[0]}" if busy else ""],
        Suggestion("Check the result of the wait (`assert event.wait(timeout=...)`) so the "
                   "failure says the wait ran out; the work it waited for was not done in "
                   "time: give it longer only if it is merely slow."),
    )


def bounded_wait(e: Evidence) -> Finding | None:
    """The failing assert checked the result of a wait with a timeout on a live lock, event,
    condition, semaphore, thread, pipe or selector, and it had run out (frames read which
    object it was and what the assert checked)."""
    waits, called = ran_out(e)
    if not waits or (signallers_done(e) and "on a Condition" in waits[0].detail):
        return None  # nobody was left to notify it: race.lost_wakeup
    busy = [w.describe() for w in e.workers if w.state == "busy"]
    return hit(
        0.7 if called else 0.8,
        [f"{waits[0].detail}{where(e)}",
         f"still working when it failed: {busy[0]}" if busy else ""],
        Suggestion(f"{waits[0].detail.split(' at line', 1)[0]} gave up before the other side "
                   f"got there: find what held it up (the thread holding the lock, the "
                   f"producer that should signal) before allowing longer; a longer wait only "
                   f"helps when that side is merely slow under load."),
    )


def ran_out(e: Evidence) -> tuple[list[FrameFact], bool]:
    """The waits with a timeout the failing assert checked, and whether they were only read
    from the code of a function it called (weaker: the wait itself was not seen running
    out)."""
    if e.any_exception("builtins.AssertionError") is None:
        return [], False
    # a call whose wait was seen to run out on the test's thread: the wait itself was seen
    waits = e.facts("bounded-wait") or e.facts("ran-out-call")
    if not waits and still_working(e):
        # a method that waits on the checked object's own thread: only when a worker was
        # still running when the assert failed did that wait run out
        waits = e.facts("bounded-call")
    if waits:
        return waits, False
    called = e.facts("timed-call") if _falsy_result(e) else []
    return called, bool(called)


def signallers_done(e: Evidence) -> bool:
    """Every thread, process or task the test started had finished, none by raising: nobody
    was left to signal, so the wait was not too short (race.lost_wakeup reads it)."""
    workers = [w for w in e.workers if w.kind in ("thread", "process", "task")]
    # a thread that ended only just before the failure was read was joined on the way out
    # (a finally: block): it was still running when the wait ran out
    return bool(workers) and all(
        w.state in ("exited", "idle") and (w.ended_ago is None or w.ended_ago >= _LONG_DONE)
        for w in workers) and not e.facts("hidden-error")


#: seconds before the failure was read that a thread must have ended to count as done before
#: the wait ran out
_LONG_DONE = 0.1


def _falsy_result(e: Evidence) -> bool:
    """The assert checked a result that came back empty: None, False, nothing."""
    c = e.comparison
    if c is not None:
        return c.left in _EMPTY or c.right in _EMPTY
    return bool(re.search(r"(?:^|: )assert (?:None|False|\[\]|\{\}|\(\)|''|0)(?:$|\s)",
                          e.message))


_EMPTY = frozenset({"None", "False", "[]", "{}", "()", "''", "0", "b''"})


def barrier_timeout(e: Evidence) -> Finding | None:
    """A Barrier with a timeout broke: a party did not arrive in time (a barrier without one
    breaks only when it is aborted or a waiting party is interrupted)."""
    exc = e.any_exception("threading.BrokenBarrierError")
    timed = [f for f in e.facts("barrier") if not f.detail.endswith("default timeout None")]
    if exc is None or not (timed or WAIT_ARG.search(line(e))):
        return None
    barriers = timed or e.facts("barrier")
    what = barriers[0].detail if barriers else f"the barrier at `{line(e)}`"
    return hit(
        0.7,
        [f"{describe(exc)}{where(e)}: {what}; not every party reached it before the timeout"],
        Suggestion("A party of the barrier arrived late or never: check that every thread "
                   "meant to meet there started and did not fail first, then size the "
                   "barrier's timeout for the slowest party under load."),
    )


def deadline_gave_up(e: Evidence) -> Finding | None:
    """The failing line called a function that polls against a clock deadline, and it gave
    up (returned a false value), or such a function raised when its deadline passed."""
    polls = e.facts("deadline")
    raised = [p for p in polls if ", raised " in p.detail]
    if not polls or (e.any_exception("builtins.AssertionError") is None and not raised):
        return None
    return hit(
        _STILL if e.facts("frozen-clock") else 0.75,
        [f"{polls[0].detail} and gave up{where(e)}",
         f"the call: `{line(e)}`" if line(e) else ""],
        Suggestion(f"The deadline ran out before the condition held: {polls[0].detail}. Find "
                   f"why the condition was late (the work it waits for) before giving the "
                   f"deadline more room."),
    )


def work_in_progress(e: Evidence) -> Finding | None:
    """Consulted only when no rule claims the failure: when the assert failed, a thread or
    task of the test was still at work (read at that moment, before any finally: ran), or the
    value it checked was stored before a later line joined the workers, so the test checked
    a result before the work behind it had finished."""
    working = still_working(e)
    cut = [w for w in e.workers if w.state == "cancelled"]
    early = e.facts("read-before-join") if e.any_exception("builtins.AssertionError") else []
    if not working and not cut and not early:
        return None
    if not working and not cut:
        return hit(
            FALLBACK_SCORE,
            [f"{early[0].detail}, and no other signal explains the failure{where(e)}: the "
             f"value was taken while the work behind it may still have been going on"],
            Suggestion("Take the value the assert checks after the workers are done: join "
                       "them (or wait, with a generous bound, for an Event they set) first, "
                       "and check that wait's result."),
        )
    if not working:
        return hit(
            FALLBACK_SCORE,
            [f"{cut[0].describe()} before it finished (a wait_for or wait with a timeout, or "
             f"a loop shut down while it was pending), and no other signal explains the "
             f"failure{where(e)}"],
            Suggestion(f"{cut[0].name} did not finish within the time it was given: find what "
                       f"it waits on before allowing it longer, and have the code report the "
                       f"tasks it gave up on instead of dropping them."),
        )
    return hit(
        FALLBACK_SCORE,
        [f"when the assert failed{where(e)}, {working[0].describe()} was still at work, and "
         f"no other signal explains the failure: the result was read before the work "
         f"behind it had finished"],
        Suggestion(f"Wait for {working[0].name} to finish (join it, wait on its future or an "
                   f"Event it sets) before asserting on what it produces, with a generous "
                   f"bound, instead of reading the result while it is still running."),
    )


def busy_timeout(e: Evidence) -> Finding | None:
    """SQLite gave up waiting for its write lock ("database is locked") while another
    connection held it, and the waiting thread held no transaction of its own: the other
    writer took longer than this connection's busy timeout."""
    exc = e.any_exception("sqlite3.OperationalError")
    if exc is None or "locked" not in exc.message or e.facts("holds-transaction"):
        return None
    busy = [w.describe() for w in e.workers if w.kind in ("thread", "process")]
    return hit(
        0.7,
        [f"{describe(exc)}{where(e)}: the busy timeout ran out while another connection held "
         f"SQLite's write lock",
         f"the other writers in this test: {'; '.join(busy[:3])}" if busy else ""],
        Suggestion("Another connection held the write lock longer than this connection waits "
                   "for it (sqlite3.connect(timeout=...), 5 s by default): keep that write "
                   "transaction short (commit in batches), or give this connection a timeout "
                   "longer than the longest write it may wait behind."),
    )
