"""Mock gap: a test double does not implement what the code under test needs."""

from __future__ import annotations

import re

from ..model import Evidence, Finding, Suggestion
from .expectation import measured, nothing_measured
from .signals import describe, hit, num, search, where

_NO_ATTRIBUTE = re.compile(r"Mock object has no attribute '(\w+)'")
_BAD_ASSERT = re.compile(r"'(\w+)' is not a valid assertion|Attributes cannot start with "
                         r"'assert' or 'assret'")
_FAKE = re.compile(r"(?i)fake|mock|stub|dummy|double")
_MOCK_NAME = re.compile(r"\b(?:NonCallable)?(?:Magic|Async|Property)?Mock\b")
_NOT_AWAITABLE = re.compile(r"object (?:Magic)?Mock can't be used in 'await' expression")
_MOCK_ASSERTION = re.compile(
    r"Expected '?[\w.]+'? to (?:have been|be) (?:called|awaited)|expected call not found"
    r"|expected await not found|call not found|Expected await:|Expected '?[\w.]+'? to not "
    r"have been (?:called|awaited)|Expected mock to have been awaited"
)
_ASYNC_MOCK = "AsyncMockMixin._execute_mock_call"


def spec_attribute(e: Evidence) -> Finding | None:
    """A spec'd Mock has no attribute the code under test uses."""
    match = search(_NO_ATTRIBUTE, e)
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
        Suggestion(f"If the real class has {name!r}, the double's spec is out of date: build it "
                   f"from the class with unittest.mock.create_autospec(RealClass, "
                   f"instance=True) or add {name!r} to the fake; if the real class lacks it "
                   f"too, the code calls a method that does not exist.",
                   "create_autospec(RealClass, instance=True)"),
    )


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


def mock_value(e: Evidence) -> Finding | None:
    """A Mock/MagicMock turned up where a real value was expected."""
    awaited = search(_NOT_AWAITABLE, e)
    if awaited is not None:
        return hit(0.9, [f"{awaited.group(0)}{where(e)}: an async method was replaced by a "
                         f"synchronous Mock"],
                   Suggestion("Patch async methods with AsyncMock (patch(..., new_callable="
                              "AsyncMock)) or autospec the class so they get one.",
                              "patch('module.Client.fetch', new_callable=AsyncMock)"))
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
        "Check the code path reached the double: patch the name where it is looked up "
        "(patch('package.module_that_uses_it.name'), not where it is defined), and for "
        "background work wait until it has run before asserting the call.",
    )


def real_resources(e: Evidence) -> Finding | None:
    """A test that used doubles still started real processes or sockets."""
    if not e.mocked or not e.spawned:
        return None
    # The real thing's own error (refused, not found) is what the missed patch caused: it
    # outranks the lifecycle reading of that error.
    caused = e.any_exception("builtins.ConnectionError", "builtins.FileNotFoundError",
                             "subprocess.CalledProcessError")
    return hit(
        0.9 if caused is not None else 0.6,
        [f"this test used test doubles but still started {len(e.spawned)} real "
         f"process(es)/socket(s): {', '.join(e.spawned[:3])}"],
        "The patch does not cover the path the code takes: patch the function that spawns the "
        "process or opens the socket where it is looked up, or inject the dependency.",
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
        Suggestion(f"Implement what {expr} measures in the double (or build it with "
                   f"create_autospec and configure the returns the feature needs); if the "
                   f"double is not meant to support it, skip this check for the mock "
                   f"adapter instead of asserting {op} {num(bound)}."),
    )


def side_effect_exhausted(e: Evidence) -> Finding | None:
    """StopIteration raised inside unittest.mock: a double's side_effect list ran out."""
    exc = next((x for x in e.exceptions if x.type == "builtins.StopIteration"
                and "unittest.mock" in x.modules), None)
    if exc is None:
        return None
    doubles = [f.detail for f in e.facts("double")]
    return hit(
        0.85,
        [f"StopIteration{where(e)} came from inside unittest.mock: a double's side_effect "
         f"sequence was used up",
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
                   f"with create_autospec(RealClass) and configure what the code reads."),
    )
