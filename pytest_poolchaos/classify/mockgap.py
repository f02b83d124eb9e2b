"""Mock gap: a test double does not implement what the code under test needs."""

from __future__ import annotations

import re

from ..model import Evidence, Finding, Suggestion
from .expectation import measured, nothing_measured
from .signals import describe, hit, num, refused_by_machinery, search, stood_in, where
from .timeout import QUEUE_EMPTY, TIMEOUT_ERRORS

_NO_ATTRIBUTE = re.compile(r"Mock object has no attribute '(\w+)'")
_BAD_ASSERT = re.compile(r"'(\w+)' is not a valid assertion|Attributes cannot start with "
                         r"'assert' or 'assret'")
_FAKE = re.compile(r"(?i)fake|mock|stub|dummy|double")
_MOCK_NAME = re.compile(r"\b(?:NonCallable)?(?:Magic|Async|Property)?Mock\b")
_AWAIT_TYPE = re.compile(r"object \w+ can't be used in 'await' expression")
_NOT_AWAITABLE = re.compile(r"object (?:Magic)?Mock can't be used in 'await' expression")
_MOCK_ASSERTION = re.compile(
    r"Expected '?[\w.]+'? to (?:have been|be) (?:called|awaited)|expected call not found"
    r"|expected await not found|call not found|Expected await:|Expected '?[\w.]+'? to not "
    r"have been (?:called|awaited)|Expected mock to have been awaited"
)
_ASYNC_MOCK = "AsyncMockMixin._execute_mock_call"
_MOCK_NAMED = re.compile(r"Expected '([\w.]+)' to")
_SPEC = re.compile(r"spec(?:_set)?='(\w+)'")
#: a spawned label's tail: ``started by poolsvc.adapters (adapters.py:28)``
_STARTED_BY = re.compile(r"started by ([\w.]+) \(([^)]+)\)")


def spec_attribute(e: Evidence) -> Finding | None:
    """A spec'd Mock has no attribute the code under test uses."""
    match = search(_NO_ATTRIBUTE, e) or next(
        (m for m in (_NO_ATTRIBUTE.search(f.detail) for f in e.facts("double-refused")) if m),
        None)  # a worker of the test died of it
    if match is None:
        bad = search(_BAD_ASSERT, e)
        return None if bad is None else hit(
            0.8, [f"a mock assertion method is misspelled{where(e)}: {bad.group(0)!r}"],
            "Fix the assertion's name (assert_called_once_with, ...); with spec= or "
            "create_autospec a misspelling fails loudly instead of passing.")
    name = match.group(1)
    return hit(
        0.95,
        [f"the code under test uses .{name} but the spec'd double has no attribute "
         f"{name!r}{where(e)}"],
        _spec_advice(e, name),
    )


def _spec_advice(e: Evidence, name: str) -> Suggestion:
    spec = next((m.group(1) for m in map(_SPEC.search, e.mocks) if m), None)
    if spec is None:
        return Suggestion(f"If the real class has {name!r}, the double's spec is out of date: "
                          f"rebuild it with unittest.mock.create_autospec from the class and "
                          f"instance=True, or add {name!r} to the fake; if the real class "
                          f"lacks it too, the code calls a method that does not exist.")
    return Suggestion(f"The double is spec'd from {spec}, which has no {name!r}: if {spec} "
                      f"has gained it, rebuild the double from the class "
                      f"(create_autospec({spec}, instance=True)); if not, the code calls a "
                      f"method {spec} does not have.",
                      f"create_autospec({spec}, instance=True)")


def not_implemented(e: Evidence) -> Finding | None:
    """NotImplementedError raised from a fake, mock, stub or dummy."""
    raisers = list(e.raised_in)
    for index, exc in enumerate(e.exceptions):
        raiser = str(raisers[index]) if index < len(raisers) else ""
        if exc.is_a("builtins.NotImplementedError") and _FAKE.search(raiser):
            return hit(
                0.85,
                [f"NotImplementedError raised by the test double {raiser}"
                 + (f": {exc.message}" if exc.message else "")],
                Suggestion(f"The fake does not implement what the code now calls "
                           f"({raiser.rsplit(':', 1)[-1]}): implement it in the fake, or "
                           f"build the double with create_autospec(RealClass) so gaps show "
                           f"up as soon as the real class changes."),
            )
    return None


def _awaited_double_value(e: Evidence) -> re.Match[str] | None:
    """``await self.client.lookup()`` where self.client is a plain Mock: what it returned (a
    str, an int) cannot be awaited."""
    if not e.facts("double-at-raise") or e.any_exception("builtins.TypeError") is None:
        return None
    return search(_AWAIT_TYPE, e)


def mock_value(e: Evidence) -> Finding | None:
    """A Mock/MagicMock turned up where a real value was expected."""
    awaited = search(_NOT_AWAITABLE, e) or _awaited_double_value(e)
    if awaited is not None:
        return hit(0.9, [f"{awaited.group(0)}{where(e)}: an async method was replaced by a "
                         f"synchronous Mock"],
                   Suggestion(f"The code awaited a plain Mock{where(e)}: patch that async "
                              f"method with new_callable=AsyncMock, or autospec its class so "
                              f"async methods get an AsyncMock."))
    operands = [m for m in e.mocks if m.endswith(">") and "operand is <" in m]
    typed = [x for x in e.exceptions
             if x.is_a("builtins.TypeError") and _MOCK_NAME.search(x.message)]
    doubles = [m for m in e.mocks if "coroutine" not in m]
    if not operands and not typed and not doubles:
        return None
    shown = operands or [describe(x) for x in typed] or doubles
    return hit(
        0.85 if operands or typed else 0.6,
        [f"a test double was used where a real value was expected: {shown[0]}",
         *shown[1:2]],
        Suggestion("Give the double a real return value (mock.method.return_value = ..., or "
                   "side_effect) for every call the code makes, or use create_autospec so "
                   "unexpected calls fail where they happen."),
    )


def never_awaited(e: Evidence) -> Finding | None:
    """An AsyncMock (or a coroutine in a mocked test) was called and never awaited."""
    coroutines = [m for m in e.mocks if "un-awaited coroutine" in m]
    coroutines += [f.detail for f in e.facts("double-at-raise") if "un-awaited coroutine" in
                   f.detail]
    warned = [w for w in e.warnings if "was never awaited" in w]
    from_mock = [w for w in warned if _ASYNC_MOCK in w]
    if not coroutines and not from_mock and not (warned and e.mocked):
        return None
    shown = (coroutines + from_mock + warned)[0]
    return hit(
        0.8 if from_mock or coroutines else 0.55,
        [f"a coroutine was never awaited: {shown}"],
        "The code calls an async method without await (or the double is an AsyncMock where "
        "the real method is synchronous): await the call, or patch a sync method with "
        "Mock/MagicMock instead of AsyncMock.",
    )


def mock_assertion(e: Evidence) -> Finding | None:
    """A mock's assert_called*/assert_awaited* failed: the code did not reach the double."""
    match = search(_MOCK_ASSERTION, e)
    if match is None:
        return None
    return hit(
        0.65,
        [f"mock assertion failed{where(e)}: {match.group(0)!r}"],
        _missed_patch(e, _MOCK_NAMED.search(match.group(0))),
    )


def spawn_origin(e: Evidence) -> tuple[str, str] | None:
    """(module, file:line) of the code that started the first real process, when known."""
    found = next((m for m in map(_STARTED_BY.search, e.spawned) if m), None)
    return (found.group(1), found.group(2)) if found else None


def _missed_patch(e: Evidence, named: re.Match[str] | None) -> Suggestion:
    name = named.group(1).rsplit(".", 1)[-1] if named else None
    origin = spawn_origin(e)
    if name and origin:
        module, site = origin
        target = f"patch('{module}.{name}')"
        return Suggestion(f"The double for {name} was never called: {module} "
                          f"({site}) started the real process, so it looks {name} up in its "
                          f"own namespace; patch it there, {target}, not where {name} is "
                          f"defined.", target)
    if name:
        return Suggestion(f"The double for {name} was never called{where(e)}: patch {name} in "
                          f"the module of the code that calls it (where it is looked up, not "
                          f"where it is defined); for background work, wait until it has run "
                          f"before asserting the call.")
    return Suggestion(f"The double was never called{where(e)}: patch the name in the module "
                      f"of the code that calls it (where it is looked up, not where it is "
                      f"defined); for background work, wait until it has run before "
                      f"asserting the call.")


def real_resources(e: Evidence) -> Finding | None:
    """A test that used doubles still started real processes or sockets (a connection to a
    server this process runs itself is the test's own, not one a double missed)."""
    own = {fact.detail for fact in e.facts("own-server")}
    spawned = [label for label in e.spawned if label not in own]
    if not e.mocked or not spawned:
        return None
    origin = spawn_origin(e)
    by = f" by {origin[0]} ({origin[1]})" if origin else ""
    # Every process of one pool has the same origin: say it once, not per process.
    tails = {label.partition(" started by ")[2] for label in spawned}
    shown = [label.partition(" started by ")[0] for label in spawned[:3]] \
        if len(tails) == 1 and "" not in tails else spawned[:3]
    common = f", all started by {tails.pop()}" if shown[0] != spawned[0] else ""
    # The real thing's own error (refused, not found) is what the missed patch caused: it
    # outranks the lifecycle reading of that error.
    caused = e.any_exception("builtins.ConnectionError", "builtins.FileNotFoundError",
                             "subprocess.CalledProcessError")
    return hit(
        0.9 if caused is not None else 0.6,
        [f"this test used test doubles but still started {len(spawned)} real "
         f"process(es)/socket(s){common}: {', '.join(shown)}"],
        f"{len(spawned)} real process(es)/socket(s) were started{by} although the test "
        f"used doubles: the patch does not cover that call; patch it in "
        f"{origin[0] if origin else 'the module that makes it'}, or inject the dependency.",
    )


def zero_from_double(e: Evidence) -> Finding | None:
    """A test that used doubles measured exactly zero where it asserts a positive bound."""
    found = measured(e)
    if found is None or not nothing_measured(e, found):
        return None
    _, op, bound, expr = found
    return hit(
        0.8,
        [f"{expr} is 0 (asserted {op} {num(bound)}) in a test that used test doubles: "
         f"not one event of what is measured happened",
         "a real implementation under load degrades a rate; a double that lacks the feature "
         "gives exactly zero"],
        Suggestion(f"{expr} was exactly 0{where(e)} against {op} {num(bound)}: the double "
                   f"does none of what it measures. Implement that in the double (or "
                   f"configure the returns the feature needs); if the double is not meant to "
                   f"support it, do not assert {expr} {op} {num(bound)} when the double is in "
                   f"use."),
    )


def magic_default(e: Evidence) -> Finding | None:
    """The asserted value is what a MagicMock gives when nobody configured it (iterating it
    gives nothing, len() 0, int() 1): the test called that conversion on a double and left
    it unset, or holds a MagicMock where it failed."""
    c = e.comparison
    if c is None or c.op != "==" or c.right == c.left or c.right in _MAGIC_DEFAULTS:
        return None
    default = _MAGIC_DEFAULTS.get(c.left)
    taken = [f.detail for f in e.facts("magic-default")
             if f.detail.rpartition(" gave ")[2] == c.left]
    magic = [f.detail for f in e.facts("double") if " is a MagicMock" in f.detail
             or " is a AsyncMock" in f.detail or " is a NonCallableMagicMock" in f.detail]
    if default is None or not (taken or magic):
        return None
    double = taken[0].partition(" of ")[2].rpartition(" gave ")[0] if taken else magic[0]
    return hit(
        0.7 if taken else 0.6,
        [f"got {c.left}, {default}, where {c.right} was expected; "
         + (f"{taken[0]}, its default: the test never set it" if taken else magic[0]),
         "the code read a method or attribute of the double that the test did not configure"],
        Suggestion(f"Configure what the code really calls on the double ({double}): "
                   f"create it with create_autospec(RealClass) so a call the test did not "
                   f"set up fails loudly, and set return_value on that very call."),
    )


#: what an unconfigured MagicMock yields, by the repr of the value the assert saw
_MAGIC_DEFAULTS = {"[]": "what iterating an unconfigured MagicMock yields",
                   "0": "what len() of an unconfigured MagicMock gives",
                   "1": "what int() of an unconfigured MagicMock gives",
                   "1.0": "what float() of an unconfigured MagicMock gives"}


def missed_patch(e: Evidence) -> Finding | None:
    """A patch took effect but its double was never called, and a module of the project still
    holds the original under that name: the code read its own imported copy, not the one the
    test replaced."""
    missed = e.facts("missed-patch")
    unseen = e.facts("patch-not-in-child")
    if unseen and not missed:
        return hit(
            0.9,
            [f"{unseen[0].detail}{where(e)}: the code that ran there never saw the double"],
            Suggestion("A process started by 'spawn' or 'forkserver' imports the code anew, "
                       "so a patch made in the test is not in it: run the work in the test's "
                       "own process for this test (an inline or thread executor injected "
                       "into the code), or make the replacement in the worker itself (the "
                       "pool's initializer, or an argument the task reads)."),
        )
    if not missed:
        return None
    detail = missed[0].detail
    holder = detail.rsplit(" while ", 1)[-1].split(" still holds", 1)[0]
    if detail.endswith("as a default argument"):
        advice = Suggestion(f"{holder} took the original as a default argument when it was "
                            f"defined, before any patch: pass the double explicitly in the "
                            f"test, or make the default None and look the function up at "
                            f"call time.")
    else:
        advice = Suggestion(f"Patch the name where it is looked up, not where it is defined: "
                            f"patch('{holder}') instead (unittest.mock's \"where to patch\"), "
                            f"or have the code call it through its module.")
    return hit(0.8, [f"{detail}{where(e)}: the code under test never saw the double"], advice)


def unset_call(e: Evidence) -> Finding | None:
    """A double was set up for one method the code never called, while the code called
    another that nobody set up and so got a bare Mock back."""
    mismatch = e.facts("double-mismatch")
    if not mismatch:
        return None
    return hit(
        0.75,
        [f"{mismatch[0].detail}{where(e)}: what that call returned was a Mock, not the "
         f"value the test meant"],
        Suggestion(f"The double does not match the code: {mismatch[0].detail}. Set up the "
                   f"method the code really calls, and build the double with "
                   f"create_autospec(RealClass) so a call to a method the real class lacks "
                   f"fails at once."),
    )


def side_effect_exhausted(e: Evidence) -> Finding | None:
    """StopIteration raised inside unittest.mock: a double's side_effect list ran out."""
    exc = next((x for x in e.exceptions if x.type == "builtins.StopIteration"
                and "unittest.mock" in x.modules), None)
    ran_out = e.facts("double-exhausted")
    if exc is None and not ran_out:
        return None
    doubles = [f.detail for f in e.facts("double")]
    said = (f"StopIteration{where(e)} came from inside unittest.mock" if exc is not None else
            f"{ran_out[0].detail}, which ended that worker's work before the failure"
            f"{where(e)}")
    return hit(
        0.85,
        [f"{said}: a double's side_effect sequence was used up",
         f"the double: {doubles[0]}" if doubles else ""],
        Suggestion("The code calls the double more often than its side_effect list has "
                   "items: give it one item per call the code makes (including the final "
                   "empty read), or a function as side_effect."),
    )


def double_in_computation(e: Evidence) -> Finding | None:
    """A zero or None from a double reached arithmetic: ZeroDivisionError or TypeError raised
    in a frame that holds a test double."""
    exc = next((x for x in e.exceptions
                if x.type in ("builtins.ZeroDivisionError", "builtins.TypeError")), None)
    doubles = e.facts("double-at-raise")
    if exc is None or not doubles:
        return None
    return hit(
        0.75,
        [f"{describe(exc)}{where(e)}, raised where {doubles[0].detail}",
         "a double's default (0, None) flowed into a computation the real object feeds "
         "with a real value"],
        Suggestion(f"Give the double the value the code computes with ({doubles[0].detail}): "
                   f"set the attribute or return value the real object provides, or build it "
                   f"with create_autospec from the real class and configure what the code "
                   f"reads."),
    )


def unset_attribute_decided(e: Evidence) -> Finding | None:
    """The code raised under a condition that read an attribute of a Mock nobody set: the
    double answered with a child Mock, which is true, where the real object's flag (closed,
    expired, failed) was false."""
    decided = e.facts("double-decided")
    exc = e.outermost
    if not decided or exc is None:
        return None
    return hit(
        0.8,
        [f"{describe(exc)}{where(e)}, raised because {decided[0].detail}"],
        Suggestion("Set the attributes the code checks on the double to the real object's "
                   "values (e.g. double.closed = False), or build it with "
                   "create_autospec(RealClass, instance=True) and configure what the code "
                   "reads: an unset Mock attribute is a Mock, and a Mock is true."),
    )


def frozen_clock(e: Evidence) -> Finding | None:
    """A wait or deadline loop ran out (or never ended) while the test had patched the clock
    it measures with a double that returns one value: time stood still for the code."""
    clocks = e.facts("frozen-clock")
    fired = e.timeout is not None and e.timeout.fired
    if not clocks or not (fired or e.facts("deadline") or e.any_exception(*TIMEOUT_ERRORS)):
        return None
    return hit(
        0.97,
        [f"{clocks[0].detail}; the wait{where(e)} measured its deadline with it"],
        Suggestion("Let the patched clock advance (side_effect=itertools.count(start, step), "
                   "or a fake clock the test moves forward), or patch only the clock of the "
                   "code that needs freezing: the deadline loop reads the same clock."),
    )


def patched_worker(e: Evidence) -> Finding | None:
    """A wait ran out for work a thread, process or task should have done, or the machinery
    refused a call on that worker (a join before it started), while the test had patched
    what starts that worker with a double: the code called the double, nothing ran."""
    detail = stood_in(e)
    fired = e.timeout is not None and e.timeout.fired
    refused = e.outermost is not None and refused_by_machinery(e.outermost)
    if not detail or not (fired or e.facts("dropped-wait") or e.facts("deadline") or refused
                          or e.any_exception(*TIMEOUT_ERRORS, *QUEUE_EMPTY)):
        return None
    what = "the call it refused" if refused else "the wait"
    return hit(
        0.9,
        [f"{detail}; {what}{where(e)} was for its work"],
        Suggestion("The patch replaced the worker itself, so start() did nothing: patch only "
                   "what the test needs to observe (wrap the real class with "
                   "patch(..., wraps=threading.Thread) or check the call's arguments without "
                   "replacing it), or run the target inline from the double's side_effect."),
    )


def none_from_double(e: Evidence) -> Finding | None:
    """The code looked an attribute up on None that a double gave it: a test-defined fake's
    method that returns nothing, or a patch set to return None, where the real one returns an
    object (a future, a socket)."""
    facts = e.facts("none-from-double")
    exc = e.any_exception("builtins.AttributeError")
    if not facts or exc is None:
        return None
    return hit(
        0.8,
        [f"{describe(exc)}{where(e)}: {facts[0].detail}"],
        Suggestion(f"Make the double return what the real one does ({facts[0].detail}): a "
                   f"fake's method returns an object with the attributes the code uses (a "
                   f"done Future, a socket double), a patch gets return_value=Mock() or "
                   f"create_autospec of the real class."),
    )
