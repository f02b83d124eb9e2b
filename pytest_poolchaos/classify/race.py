"""Race: the test is right and the code under test is wrong under concurrency.

A lock used from a thread that does not own it, a container changed while another thread
iterates it, a generator entered from two threads, a lost update, a check-then-act on a file,
locks taken in opposite orders. Every check needs concurrency the scope saw (threads, pools
or processes this test started, or a traceback that crossed a worker thread) plus the object
involved, found live in the frame that raised; the advice names the threads and the object,
never a longer timeout or a looser bound.
"""

from __future__ import annotations

import re

from ..model import Evidence, ExceptionRecord, Finding, FrameFact, Suggestion, Verdict
from .expectation import broken_invariant as broken_invariant_of
from .expectation import measured
from .signals import (
    FALLBACK_SCORE,
    RACED,
    all_finished,
    describe,
    explained_short,
    hidden_errors,
    hit,
    killed,
    line,
    num,
    read_early,
    where,
)
from .timeout import TIMEOUT_ERRORS, ran_out, signallers_done

#: the message of each container type's "changed during iteration" RuntimeError
_MUTATED = {"dict": "dictionary", "OrderedDict": "OrderedDict", "defaultdict": "dictionary",
            "set": "Set", "deque": "deque", "list": "list"}
_LOCK_WORDS = re.compile(r"(?i)\block\b|un-?acquired|release unlocked|not owned|owner")
_COUNT_OFF = 2  # a lost update or a double check-then-act moves a count by one or two


def self_deadlock(e: Evidence) -> Finding | None:
    """A thread of the test waits for a plain Lock it already holds itself (read from its
    live frames): nothing else will ever release it, so whatever waited on that thread
    (a join, pytest-timeout) was bound to run out."""
    stuck = e.facts("self-deadlock")
    if not stuck:
        return None
    return hit(
        0.97,
        [f"{stuck[0].detail}: the thread waits for itself", *(f.detail for f in stuck[1:2])],
        Suggestion("The same thread takes the lock again while holding it (a method that "
                   "holds it calls another that takes it too): use threading.RLock, or have "
                   "the inner method expect the lock held (a _locked variant) instead of "
                   "taking it again; a longer timeout never helps."),
    )


def lock_ownership(e: Evidence) -> Finding | None:
    """A lock was released or used from a thread that does not own it: the RuntimeError
    about a lock, raised in a frame holding that lock, in a test that ran threads."""
    exc = _exact(e, "builtins.RuntimeError")
    locks = e.facts("lock")
    named = _threads_named(e)
    if exc is None or not locks or not e.concurrent:
        return None
    if not _LOCK_WORDS.search(exc.message) and not named:
        return None
    return hit(
        0.85,
        [f"{describe(exc)}{where(e)}{_on_worker(e)}; the lock: {_first(locks)}",
         f"threads in this test: {_threads(e)}",
         f"the failure names the thread(s) {', '.join(named)}" if named else ""],
        Suggestion(f"A lock is acquired on one thread and released (or re-entered) on another: "
                   f"{_first(locks)}. Threading locks belong to the thread that acquired "
                   f"them; release it on that thread (use `with lock:` in one function), or "
                   f"hand work over with a queue or a threading.Event instead of a lock "
                   f"({_threads(e)})."),
    )


def concurrent_mutation(e: Evidence) -> Finding | None:
    """A container changed size while it was iterated, with another thread of the test
    writing to it."""
    exc = _exact(e, "builtins.RuntimeError")
    if not e.concurrent:
        return None
    if exc is None:
        return _mutated_in_a_task(e)
    changed = [f for f in e.facts("container")
               if _MUTATED.get(f.detail.split(" ", 1)[0], "\0") in exc.message]
    if not changed:
        return _mutated_in_a_task(e)
    return hit(
        0.85,
        [f"{describe(exc)}{where(e)}: {_first(changed)} was changed while being iterated",
         f"threads in this test: {_threads(e)}"],
        Suggestion(f"Another thread writes to {_first(changed)} while this one iterates it. "
                   f"Guard every read and write of it with the same lock, or iterate over a "
                   f"snapshot taken under that lock (`for key in list(items):` inside "
                   f"`with lock:`)."),
    )


def _mutated_in_a_task(e: Evidence) -> Finding | None:
    """A worker task died of another thread's write to what it iterated, and nobody
    retrieved its error: the failure the test saw (a wait that ran out, a short count) is
    what that task never delivered."""
    raced = next((text for text in hidden_errors(e) if RACED.search(text)), None)
    if raced is None:
        return None
    return hit(
        0.85,
        [f"a worker task raised {raced} and nobody retrieved it: another thread changed what "
         f"it was iterating while it ran; the failure{where(e)} is the work it never finished",
         f"workers in this test: {_threads(e)}"],
        Suggestion("Two workers use one container at once: guard every read and write of it "
                   "with the same lock, or let each task iterate a snapshot taken under that "
                   "lock; also call result() on every future so a task's error surfaces."),
    )


def generator_reentry(e: Evidence) -> Finding | None:
    """One generator was advanced from two threads at once ("generator already executing")."""
    exc = _exact(e, "builtins.ValueError")
    generators = e.facts("generator")
    if exc is None or not generators or not e.concurrent or "generator" not in exc.message:
        return None
    return hit(
        0.85,
        [f"{describe(exc)}{where(e)}: {_first(generators)} is shared by several threads",
         f"threads in this test: {_threads(e)}"],
        Suggestion(f"Generators are not thread-safe: {_first(generators)} is advanced from "
                   f"several threads ({_threads(e)}). Feed the threads through a "
                   f"queue.Queue filled by one producer, or wrap next() in a lock."),
    )


def lost_update(e: Evidence) -> Finding | None:
    """An exact count is off by one or two after every thread, process or task of the test had
    finished: an update was lost or a check-then-act ran twice, the work was not merely
    unfinished."""
    counts = _count(e)
    if counts is None or not all_finished(e) or read_early(e):
        # a count read when a wait gave up was read while the work still ran: late, not lost
        return None
    got, want = counts
    if explained_short(e, got, want):
        return None  # the missing ones raised: an error hidden on their futures, not a race
    share = _one_share_lost(e, got, want)
    if not got or not want or not (1 <= abs(got - want) <= _COUNT_OFF or share):
        # "none should wait" is an expectation about contention, and a count of zero means
        # nothing ran at all: a lost update leaves at least one of the racing updates.
        return None
    what = ("a check-then-act ran on more than one thread" if got > want
            else f"one of {share} equal shares is missing: a worker's whole update was lost "
                 f"(it read the total before another wrote it back)" if share
            else "an update was lost (a read-modify-write raced)")
    return hit(
        0.7,
        [f"counted {got}, expected exactly {want}, after every worker of the test had "
         f"finished: {what}",
         f"workers in this test: {_threads(e)}"],
        Suggestion(f"The workers ({_threads(e)}) had all finished, so the missing or extra "
                   f"{abs(got - want)} is not late work: {_atomic(e)}; keep the exact "
                   f"assertion."),
    )


def _counts_items(text: str) -> bool:
    """The assert compares a len(): on its left, or as the whole right side (a len() inside
    an expected total, ``2 * sum(len(r) for r in batch)``, counts bytes, not items)."""
    left, _, right = text.partition("==")
    return re.search(r"\blen\(", left) is not None or right.strip().startswith("len(")


def _one_share_lost(e: Evidence, got: int, want: int) -> int:
    """k when the total is short by exactly one of k equal shares, k no more than the
    workers the test ran (each added want/k; the last writer overwrote with what it read
    before another's write), else 0."""
    n = len([w for w in e.workers if w.kind in ("thread", "process", "task")])
    short = want - got
    if not 0 < got < want or want % short:
        return 0
    k = want // short
    return k if 2 <= k <= n else 0


def undrained_pipe(e: Evidence) -> Finding | None:
    """A wait for a child process gave up while the multiprocessing queue it writes to held
    data nobody read: a child does not exit until its queue's data is flushed into the pipe,
    so joining it before reading the queue deadlocks once the data outgrows the pipe."""
    pipes = e.facts("unread-pipe")
    processes = [w for w in e.workers if w.kind == "process"]
    exc = e.any_exception(*TIMEOUT_ERRORS)
    if exc is None and killed(e):
        exc = e.outermost
    if not pipes or not processes or exc is None:
        return None
    return hit(
        0.9,
        [f"{describe(exc)}{where(e)} while {pipes[0].detail}",
         f"processes in this test: {_threads(e)}"],
        Suggestion(f"The parent waited for the child before reading what it sent: "
                   f"{pipes[0].detail.split(' had ', 1)[0]} must be drained (get() every "
                   f"item) before join(), because a process that put items on a "
                   f"multiprocessing.Queue waits at exit until they are written to the pipe, "
                   f"and a full pipe waits for a reader."),
    )


def _atomic(e: Evidence) -> str:
    if any(w.kind == "task" for w in e.workers) and not any(
            w.kind in ("thread", "process") for w in e.workers):
        return ("tasks interleave only at an await, so an await between reading the shared "
                "value and writing it back lets another task's update be lost: do not await "
                "in between, or hold one asyncio.Lock across the read and the write")
    return ("make the read-modify-write (or the check and the act) atomic under one lock, or "
            "use a thread-safe counter/queue (multiprocessing.Value's get_lock() across "
            "processes)")


def duplicate_instance(e: Evidence) -> Finding | None:
    """``assert a is b`` failed after several workers had each fetched the same thing: both
    ran a check-then-create (get-or-create, a lazy singleton) and each made its own."""
    c = e.comparison
    if c is None or c.op != "is" or c.left_type != c.right_type or c.left_type == "NoneType":
        return None
    if not all_finished(e) or read_early(e):
        return None
    return hit(
        0.7,
        [f"two distinct {c.left_type} objects where one shared instance was expected, after "
         f"every worker had finished: a check-then-create ran on more than one of them",
         f"workers in this test: {_threads(e)}"],
        Suggestion(f"Several workers found no {c.left_type} yet and each created one: create "
                   f"it under a lock (check again inside it), or create it once before the "
                   f"workers start."),
    )


def broken_invariant(e: Evidence) -> Finding | None:
    """A quantity that must never go below zero did, after every worker had finished: two of
    them each checked there was enough, then both took (an atomicity violation)."""
    found = measured(e)
    if found is None or not broken_invariant_of(found) or not all_finished(e) \
            or read_early(e):
        return None
    got, op, _, expr = found
    return hit(
        0.7,
        [f"{expr} ended at {num(got)}, below the {op} 0 the test requires, after every worker "
         f"had finished: a check and the update that relied on it were not atomic",
         f"workers in this test: {_threads(e)}"],
        Suggestion(f"Two workers passed the check on {expr} before either updated it: hold "
                   f"one lock across the check and the update (or use an atomic "
                   f"compare-and-set), and keep the assertion."),
    )


def negative_count(e: Evidence) -> Finding | None:
    """A count the assert expected at zero or more came out below zero, in a test that ran
    concurrent work: more decrements than increments were applied, so an increment was lost
    or a decrement ran twice (late work leaves a count short, never negative)."""
    counts = _count(e)
    if counts is None or not e.concurrent:
        return None
    got, want = counts
    if not (got < 0 <= want):
        return None
    return hit(
        0.7,
        [f"counted {got}, expected exactly {want}: a count that no order of correct updates "
         f"takes below zero",
         f"workers in this test: {_threads(e)}"],
        Suggestion(f"An increment and a decrement of the same count raced ({_threads(e)}): "
                   f"one read the old value and wrote it back over the other. "
                   f"{_atomic(e).capitalize()}; keep the exact assertion."),
    )


def thread_bound(e: Evidence) -> Finding | None:
    """A SQLite connection made on one thread was used on another (sqlite3's own check): the
    code shares a per-thread object between workers."""
    exc = _exact(e, "sqlite3.ProgrammingError")
    if exc is None or not e.facts("worker-thread") or not e.concurrent:
        return None
    if e.facts("closed"):
        return None  # a closed connection refuses everyone: lifecycle.used_after_close
    return hit(
        0.75,
        [f"{describe(exc)}{where(e)} on a worker thread: a connection made on one thread was "
         f"used on another",
         f"threads in this test: {_threads(e)}"],
        Suggestion("Give each thread its own connection (threading.local(), or open one per "
                   "task), or send all database work to one thread through a queue; "
                   "check_same_thread=False only hides the check, it does not make sharing "
                   "safe."),
    )


def over_release(e: Evidence) -> Finding | None:
    """A BoundedSemaphore released more often than acquired, in a test that ran workers: two
    of them each decided it was theirs to release (a check outside the lock)."""
    exc = _exact(e, "builtins.ValueError")
    if exc is None or "threading" not in exc.modules or not e.concurrent:
        return None
    return hit(
        0.75,
        [f"{describe(exc)}{where(e)}: a bounded semaphore was released once more than it was "
         f"acquired, with several workers running",
         f"workers in this test: {_threads(e)}"],
        Suggestion("Two workers both released one slot: make 'who releases' a decision taken "
                   "once, under a lock (set a released flag and release inside the same "
                   "`with lock:`), or release only in the worker that acquired."),
    )


def shared_reader(e: Evidence) -> Finding | None:
    """asyncio refused a second waiter on an object that allows one (a StreamReader read by
    two tasks at once): tasks share one connection without a lock."""
    exc = _exact(e, "builtins.RuntimeError")
    tasks = [w for w in e.workers if w.kind == "task"]
    if exc is None or len(tasks) < 2 or not any(m.startswith("asyncio.") for m in exc.modules):
        return None
    if "loop" in exc.message:
        return None  # a closed or foreign loop: lifecycle.loop_closed
    return hit(
        0.7,
        [f"{describe(exc)}{where(e)}, raised by asyncio while {len(tasks)} tasks ran: two of "
         f"them used one single-reader object at the same time",
         f"tasks in this test: {_threads(e)}"],
        Suggestion("Several tasks read one stream (connection) at once: give each task its own "
                   "connection, or serialise the request/response pairs with one asyncio.Lock "
                   "held across the write and the read."),
    )


def database_locked(e: Evidence) -> Finding | None:
    """SQLite's write lock was held by a transaction of the failing thread while another
    connection, on another worker, needed it for work that thread waited for ("database is
    locked" once the busy timeout ran out)."""
    exc = e.any_exception("sqlite3.OperationalError")
    held = e.facts("holds-transaction")
    if exc is None or "locked" not in exc.message or not e.concurrent or not held:
        return None
    return hit(
        0.75,
        [f"{describe(exc)}{where(e)}: {held[0].detail}",
         f"workers in this test: {_threads(e)}"],
        Suggestion("One transaction holds the write lock while waiting for work that needs "
                   "the same lock: commit before waiting on other threads, keep write "
                   "transactions short, or route writes through one connection."),
    )


#: what a wait that a notify can miss waits on (a lock held elsewhere is not a lost signal)
_SIGNALLED = ("on a Condition",)


def lost_wakeup(e: Evidence) -> Finding | None:
    """A wait with a timeout ran out although every worker that could signal it had already
    finished without an error: the signal came before the wait began (a notify or set
    outside the lock, a predicate checked without it) and was lost."""
    waits = [w for w in ran_out(e)[0] if w.detail.endswith(_SIGNALLED)
             or f"{_SIGNALLED[0]} and ran out" in w.detail]
    if not waits or not signallers_done(e):
        return None
    return hit(
        0.75,
        [f"{waits[0].detail}{where(e)}, yet every worker had already finished: the signal it "
         f"waited for was sent before the wait began and was lost",
         f"workers in this test: {_threads(e)}"],
        Suggestion("Check the condition and wait under the same lock the signaller holds when "
                   "it changes the state (`with cond: cond.wait_for(predicate, timeout)`), so a "
                   "notify that comes first is not lost; a longer timeout does not help."),
    )


def file_check_then_act(e: Evidence) -> Finding | None:
    """FileExistsError raised on one of several worker threads: both checked, both created."""
    exc = e.any_exception("builtins.FileExistsError")
    threads = [w for w in e.workers if w.kind == "thread"]
    if exc is None or not e.facts("worker-thread") or len(threads) < 2:
        return None
    return hit(
        0.75,
        [f"{describe(exc)}{where(e)} raised on a worker thread while {len(threads)} threads "
         f"ran: another thread created it between the check and the create",
         f"threads in this test: {_threads(e)}"],
        Suggestion("Create it without checking first (os.makedirs(path, exist_ok=True), or "
                   "open(..., 'x') and treat FileExistsError as 'someone else made it'): a "
                   "check followed by a create is not atomic across threads."),
    )


def lock_order(e: Evidence) -> Finding | None:
    """A worker thread gave up while holding or waiting for one of several locks: two
    threads took the same locks in opposite orders."""
    locks = e.facts("lock")
    exc = e.outermost
    threads = [w for w in e.workers if w.kind == "thread"]
    if exc is None or len({f.detail.split(" in ", 1)[0] for f in locks}) < 2:
        return None
    if not e.facts("worker-thread") or len(threads) < 2 or _exact(e, "builtins.RuntimeError"):
        return None
    mirrored = _mirrored(e, exc)
    return hit(
        0.9 if mirrored else 0.6,
        [f"{describe(exc)}{where(e)} on a worker thread whose frame held "
         f"{', '.join(f.detail.split(' in ', 1)[0] for f in locks[:3])}",
         f"another worker gave up the same way ({mirrored}): each waited for a lock the "
         f"other held" if mirrored else "",
         f"threads in this test: {_threads(e)}"],
        Suggestion("Two threads take the same locks in opposite orders and each waits for the "
                   "other's: always acquire them in one global order (e.g. sorted by id or "
                   "name), or take a single lock for the pair."),
    )


def _mirrored(e: Evidence, exc: ExceptionRecord) -> str:
    """The error another worker raised the same way, when the raising frame acquires locks
    itself: two workers that each gave up acquiring while holding a lock wait on each other
    (a slow holder makes waiters give up too, but only one of them holds a lock)."""
    if not any("acquire" in fact.detail.split(": ", 1)[-1].split() for fact in e.facts("reads")):
        return ""
    kind = exc.type.rsplit(".", 1)[-1]
    return next((text for text in hidden_errors(e) if text.startswith(f"{kind}:")), "")


def flips_alone(e: Evidence) -> Finding | None:
    """Reruns saw the outcome flip with no polluter, in a test that ran threads (weak on its
    own: it supports the other race signals)."""
    reruns = e.reruns
    if reruns is None or reruns.verdict is not Verdict.FLAKY or reruns.polluter:
        return None
    if not e.concurrent:
        return None
    return hit(
        0.3,
        [f"the outcome flips between reruns with no earlier test involved, and the test ran "
         f"{_threads(e)}"],
        "Look at what these threads share: an interleaving that only sometimes happens "
        "decides the outcome.",
    )


def unexplained(e: Evidence) -> Finding | None:
    """Consulted only when no rule claims the failure: the test ran threads, processes or
    several tasks, and nothing else explains how it failed. Concurrency faults in the code
    are the most common cause of such failures, so race is claimed, weakly."""
    fired = e.timeout is not None and e.timeout.fired
    if not e.concurrent or e.when != "call" or fired or hidden_errors(e) or _checks_logs(e):
        return None
    exc = e.outermost
    what = describe(exc) if exc else "the failure"
    return hit(
        FALLBACK_SCORE,
        [f"{what}{where(e)}, with {_threads(e)} in this test, and no timeout, lifecycle, "
         f"mock or pollution signal: how these workers share state is the likeliest cause"],
        f"Find what {_threads(e)} share with the failing line: state one of them writes "
        f"while another reads or writes it needs a lock, or hand results over through a "
        f"queue. --poolchaos-chaos makes the interleaving happen more often, and "
        f"--poolchaos-rerun=N tells whether it depends on timing.",
    )


# -- readers --------------------------------------------------------------------------------


def _checks_logs(e: Evidence) -> bool:
    """The failing check is a log assertion (unittest's assertLogs/assertNoLogs, or an assert
    on caplog): it lists the records that were or were not emitted, which depends on the
    logging configuration and on what the code logs, not on how workers share state."""
    exc = e.outermost
    if exc is None or not exc.is_a("builtins.AssertionError"):
        return False
    # unittest's context raises through its case's fail(): its own module is the one before
    return "unittest._log" in exc.modules[-2:] or bool(e.facts("caplog"))


def _exact(e: Evidence, qualname: str) -> ExceptionRecord | None:
    """An exception of exactly that type (subclasses carry their own meaning)."""
    return next((exc for exc in e.exceptions if exc.type == qualname), None)


def _first(facts: list[FrameFact]) -> str:
    return facts[0].detail


def _on_worker(e: Evidence) -> str:
    return ", raised on a worker thread" if e.facts("worker-thread") else ""


def _threads(e: Evidence) -> str:
    shown = [w.describe() for w in e.workers[:4]]
    more = f" and {len(e.workers) - 4} more" if len(e.workers) > 4 else ""
    return "; ".join(shown) + more if shown else "a worker thread"


def _threads_named(e: Evidence) -> list[str]:
    text = e.text()
    return [w.name for w in e.workers if w.kind == "thread" and len(w.name) > 3
            and w.name in text][:3]


def _count(e: Evidence) -> tuple[int, int] | None:
    c = e.comparison
    if c is None or c.op != "==" or e.reordered:
        return None
    left, right = c.left_value, c.right_value
    if left is not None and right is not None and left.is_integer() and right.is_integer():
        counts = int(left), int(right)
    elif c.left_len is not None and c.right_len is not None:
        counts = c.left_len, c.right_len
    else:
        return None
    collection = c.left_len is not None or _counts_items(line(e))
    # A collection with more items than expected: an act ran twice. One with fewer lost no
    # update: appending to a list or adding to a set is one atomic step in CPython (its
    # missing items were never made, or duplicates collapsed); a counter's read-modify-write
    # is where updates get lost.
    return None if collection and counts[0] < counts[1] else counts


def closed_under_use(e: Evidence) -> Finding | None:
    """A socket or pool was closed or shut down by one of the test's threads while another
    was still using it: the code lets one worker end what others share."""
    facts = e.facts("closed-elsewhere")
    exc = e.outermost
    if not facts or exc is None:
        return None
    detail = facts[0].detail
    return hit(
        0.9,
        [f"{describe(exc)}{where(e)}: {detail}"],
        Suggestion(f"One thread ended what another still used ({detail.rsplit(', in ', 1)[0]}): "
                   f"close it only after its last user is done (join the workers, or count "
                   f"the users and let the last one close it), or give each thread its own."),
    )


def started_twice(e: Evidence) -> Finding | None:
    """A thread or process that one thread of the test started was started again by another
    (the machinery refused: already started): both checked it was not started yet, then both
    started it (a lazy start without a lock)."""
    facts = e.facts("started-twice")
    if not facts:
        return None
    return hit(
        0.9,
        [f"{facts[0].detail}: both found it not started yet, then both started it",
         f"then: {describe(e.outermost)}{where(e)}" if e.outermost is not None else ""],
        Suggestion("Make the check and the start one step: start it under a lock and check "
                   "again inside it (or start it once, before the threads that use it), so "
                   "that a second caller finds it started."),
    )


def set_late(e: Evidence) -> Finding | None:
    """A thread or pool task of the test died of an AttributeError on an object that has the
    attribute now: it ran before its owner had set it up (a thread started in __init__
    before the attributes it reads)."""
    facts = e.facts("set-late")
    if not facts:
        return None
    return hit(
        0.9,
        [f"{facts[0].detail}: the thread ran before the code that sets it",
         f"then: {describe(e.outermost)}{where(e)}" if e.outermost is not None else ""],
        Suggestion(f"Set everything the thread reads before starting it ({facts[0].detail}): "
                   f"start the thread last in __init__, or from a start() method called after "
                   f"construction."),
    )
