"""What a check returns, and the small readers and formatters every rule module shares."""

from __future__ import annotations

import math
import re

from ..model import (
    Category,
    Evidence,
    ExceptionRecord,
    Finding,
    FrameFact,
    LedgerEntry,
    Suggestion,
    Verdict,
    Worker,
)

__all__ = ["RACED", "broken_pool", "closed_descriptor", "describe", "exit_codes", "fired_early",
           "hit", "line", "num", "pct", "refused_by_machinery", "refused_shared", "secs", "short",
           "stood_in", "where"]

#: What a fallback rule claims with (it speaks only when no rule explains a failure): about how
#: often such guesses were right on the tune half of the accuracy corpus.
FALLBACK_SCORE = 0.3

#: ``timeout=0.5`` or the first positional number of a blocking call in a source line.
WAIT_ARG = re.compile(
    r"(?:timeout\s*=\s*|\.(?:wait|get|result|join|acquire|wait_for|communicate)\()"
    r"\s*(?:True\s*,\s*)?([0-9]*\.?[0-9]+)"
)


def hit(score: float, lines: list[str], *suggestions: Suggestion | str) -> Finding:
    """A built-in check's finding; the catalogue fills in the rule's id and category."""
    return Finding("", Category.UNCLASSIFIED, score, tuple(text for text in lines if text),
                   tuple(s if isinstance(s, Suggestion) else Suggestion(s) for s in suggestions))


def num(value: float | None) -> str:
    """A number as a person would write it: 10, 0.83, 2.5e-05."""
    if value is None:
        return "?"
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3g}"


def secs(value: float | None) -> str:
    """Seconds as read aloud: 0.3 s, 12 s, 4.2 ms (never 0.000398 s)."""
    if value is not None and 0 < value < 0.01:
        return f"{value * 1000:.2g} ms"
    return f"{num(value)} s"


def pct(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"


def short(qualname: str) -> str:
    return qualname.rsplit(".", 1)[-1]


def describe(exc: ExceptionRecord) -> str:
    """``Type: first line of the message``."""
    first = exc.message.strip().splitlines()[0] if exc.message.strip() else ""
    return f"{short(exc.type)}: {first}" if first else short(exc.type)


def line(evidence: Evidence) -> str:
    """The source line where the failure was raised (test file first), or ''."""
    return evidence.source_line


def where(evidence: Evidence) -> str:
    """`` at path:lineno`` of that line, or ''."""
    return f" at {evidence.location}" if evidence.location else ""


def exit_codes(evidence: Evidence) -> list[int]:
    """The failing exit codes of the finished children the raising frame held (exit-checked
    facts), in the order found."""
    found = (_EXITED.search(fact.detail) for fact in evidence.facts("exit-checked"))
    return [int(match.group(1)) for match in found if match]


_EXITED = re.compile(r"exited with (-?\d+)")


def fired_early(evidence: Evidence) -> float | None:
    """How long the test had run when pytest-timeout's signal method reported its limit, when
    that was under half the limit: its timer cannot fire that early, so a SIGALRM from
    elsewhere (the test, its code) reached the handler pytest-timeout installs for the test."""
    info = evidence.timeout
    if info is None or not info.fired or not info.seconds or info.method not in (None, "signal"):
        return None  # the thread method ends the process: it never reports early
    used = evidence.call_duration_s if info.func_only else evidence.duration_s
    return used if 0 < used < info.seconds / 2 else None


def waited(evidence: Evidence) -> float | None:
    """Seconds the failing blocking call was told to wait, read from its source line."""
    match = WAIT_ARG.search(line(evidence))
    return float(match.group(1)) if match else None


def search(pattern: re.Pattern[str], evidence: Evidence) -> re.Match[str] | None:
    """The first match in the failure's messages, warnings and source line."""
    return pattern.search(evidence.text()) or pattern.search(line(evidence))


def all_finished(evidence: Evidence) -> bool:
    """Several threads, processes or asyncio tasks ran, and none is still at work: a count
    they left short was not merely late."""
    workers = [w for w in evidence.workers if w.kind in ("thread", "process", "task")]
    return len(workers) >= 2 and all(w.state in ("exited", "idle") for w in workers)


#: what the interpreter raises when two threads use one container or generator at once
RACED = re.compile(r"changed size during iteration|mutated during iteration"
                   r"|generator already executing")


def read_early(evidence: Evidence) -> str:
    """A wait of the test's own thread that the failing assert's value came through ran out
    (seen running out, or an event it dropped still unset), or the value was stored before
    the test joined its workers: it was read before the work behind it was done, so workers
    that have all finished by now had not then."""
    waits = [*evidence.facts("ran-out-call"), *evidence.facts("ran-out-wait"),
             *evidence.facts("dropped-wait"), *evidence.facts("read-before-join")]
    return waits[0].detail if waits else ""


def hidden_errors(evidence: Evidence) -> list[str]:
    """Exceptions the test's pool tasks raised and left on their futures, unretrieved."""
    return [fact.detail for fact in evidence.facts("hidden-error")]


def explained_short(evidence: Evidence, got: int, want: int) -> bool:
    """A count short by no more than the tasks that raised: those tasks failed, nothing
    was lost or late."""
    return got < want and 0 < want - got <= len(hidden_errors(evidence))


def killed(evidence: Evidence) -> list[Worker]:
    """The test's processes that a signal ended (a negative exit code)."""
    return [w for w in evidence.workers if w.kind == "process" and w.exit_code is not None
            and w.exit_code < 0]


def stopped_early(evidence: Evidence) -> bool:
    """Work of the test was stopped before it delivered: a process killed by a signal, a
    future or task cancelled, items left in a queue after every thread of the test had
    ended (lifecycle and timeout read each), or a worker ended by its test double's own
    error (mock gap); a count it left short is no exact-count expectation."""
    cut = any(w.state == "cancelled" for w in evidence.workers)
    return bool(killed(evidence) or evidence.facts("cancelled") or abandoned(evidence) or cut
                or double_stopped(evidence))


def abandoned(evidence: Evidence) -> list[FrameFact]:
    """Queues the test held that still had items when every thread of the test had ended:
    nobody was left to take them."""
    threads = [w for w in evidence.workers if w.kind == "thread"]
    if not threads or any(w.state != "exited" for w in threads):
        return []
    return evidence.facts("queued")


def still_working(evidence: Evidence) -> list[Worker]:
    """Threads or tasks of the test busy, or its processes alive, when the assert failed (the
    workers were read at that moment only for a failed assert)."""
    if evidence.any_exception("builtins.AssertionError") is None:
        return []
    return [w for w in evidence.workers if (w.kind in ("thread", "task") and w.state == "busy")
            or (w.kind == "process" and w.state == "alive")]


def literal(text: str) -> object:
    """A captured operand's repr read back as a Python literal (bytes, numbers, lists of
    them), or None: never evaluates code."""
    import ast

    if len(text) > 2000:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


#: the machinery whose objects refuse calls by their state (not started, shut down, closed)
_STATEFUL = ("threading", "multiprocessing", "concurrent.futures", "asyncio", "subprocess",
             "selectors", "queue")
#: how they refuse: exact types (BrokenBarrierError, a project's own error mean more)
_REFUSALS = ("builtins.RuntimeError", "builtins.AssertionError", "builtins.ValueError",
             "asyncio.exceptions.InvalidStateError",
             "concurrent.futures._base.InvalidStateError")


def refused_by_machinery(exc: ExceptionRecord) -> bool:
    """The concurrency machinery itself raised it, refusing a call in its object's state."""
    raiser = exc.modules[-1] if exc.modules else ""
    return raiser.startswith(_STATEFUL) and exc.type in _REFUSALS


def double_stopped(e: Evidence) -> str:
    """A test double raised an error of its own on a worker of the test (its side_effect list
    ran out, its spec lacks an attribute the code used), which ended that worker's work: what
    the test then waited for or counted was never coming."""
    facts = [*e.facts("double-exhausted"), *e.facts("double-refused")]
    return facts[0].detail if facts else ""


def stood_in(e: Evidence) -> str:
    """A patch replaced what starts a thread, process or task with a double the code called,
    and no real worker of that kind ran in the test: the work it waits for was never done."""
    ran = {worker.kind for worker in e.workers}
    for fact in e.facts("patched-worker"):
        kind, _, detail = fact.detail.partition(": ")
        if kind not in ran:
            return detail
    return ""


def closed_descriptor(exc: ExceptionRecord) -> bool:
    """An OSError with errno EBADF: the socket or file it was called on had been closed."""
    return exc.is_a("builtins.OSError") and exc.message.startswith("[Errno 9]")


def refused_shared(e: Evidence) -> str:
    """The module whose object refused the failing call (or was found closed, or whose
    connection was refused or reset), when the test started no worker of its own: a pool,
    loop, connection or server made before the test (a module global, a wide fixture) that
    an earlier test shut down or closed is state the two tests share, not a resource left
    running (a server an earlier test left on a port makes the victim start one of its
    own)."""
    exc = e.outermost
    if exc is None or e.workers or not (refused_by_machinery(exc) or closed_descriptor(exc)
                                        or broken_pool(exc)
                                        or exc.is_a("builtins.ConnectionError")):
        return ""
    return exc.modules[-1] if exc.modules else "the object"


def polluted_path(e: Evidence) -> LedgerEntry | None:
    """Reruns proved the order dependence and named the polluter, and that test left a
    module global or class attribute of a module the failure passed through changed from
    one value to another (a limit, a retry count of the code that then refused, reset or
    died), or an environment variable whose name that module's code holds: what broke here
    is that change's consequence. A value set where there was None
    (a lazy initialisation, a port chosen on first use) or a registry that grew is the trace
    of what the polluter left running, which the lifecycle readings tell."""
    reruns = e.reruns
    if reruns is None or reruns.verdict is not Verdict.ORDER_DEPENDENT or not reruns.polluter:
        return None
    modules = {module for exc in e.exceptions for module in exc.modules}
    named = {module: set(names.split()) for module, _, names in
             (fact.detail.partition(": ") for fact in e.facts("module-reads"))}
    for entry in e.pollution:
        if entry.nodeid != reruns.polluter:
            continue
        if entry.kind == "env" and any(entry.key in named.get(module, ()) for module in modules):
            return entry  # the module's code reads that variable
        if entry.kind in ("module-state", "watched") and entry.before not in (None, "None") \
                and not (entry.before or "").endswith(" item(s)") \
                and any(entry.key.startswith((f"{module}.", f"{module}:")) for module in modules):
            return entry
    return None


def broken_pool(exc: ExceptionRecord) -> bool:
    """A pool that lost a worker refuses all work from then on (BrokenProcessPool ...)."""
    return exc.is_a("concurrent.futures._base.BrokenExecutor")
