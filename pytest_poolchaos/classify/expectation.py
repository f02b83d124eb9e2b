"""Expectation: the code works; the assertion is unrealistic for concurrent conditions.

Every check needs concurrency the scope saw (``Evidence.concurrent``): the same mismatch in a
test that ran nothing concurrently is an ordinary bug, and gets no advice about load.
"""

from __future__ import annotations

import ast
import math
import re

from ..model import Comparison, Evidence, Finding, Suggestion
from .signals import (
    all_finished,
    exit_codes,
    explained_short,
    hit,
    line,
    literal,
    num,
    pct,
    read_early,
    still_working,
    stopped_early,
    where,
)
from .timeout import ran_out

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_MEASURED = re.compile(
    r"(?i)rate|ratio|percent|pct|success|fail|error|latenc|elapsed|duration|time|throughput"
    r"|qps|rps|p\d\d|count|total|hits|calls|ops|speed|delay|len\("
)
_COUNTED = re.compile(r"(?i)len\(|count|calls|events|received|processed|done|completed|hits|"
                      r"total|seen|delivered|results")
_ASSERT = re.compile(r"^\s*assert\s+(?P<left>.+?)\s*(?:<=|>=|<|>|==|!=)\s*(?P<right>[^,]+)")
_LITERAL = re.compile(r"[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TOLERANCE = re.compile(r"± ([0-9.eE+-]+)")


def measured(e: Evidence) -> tuple[float, str, float, str] | None:
    """(value got, operator as seen from it, bound, expression) of a failed numeric bound."""
    c = e.comparison
    if c is None or c.op not in _FLIP or c.left_value is None or c.right_value is None:
        return None
    return _oriented(e, c)


def broken_invariant(found: tuple[float, str, float, str]) -> bool:
    """``assert balance >= 0`` found negative: no load makes a correct counter go below zero,
    unlike a rate or a latency, which load moves."""
    got, op, bound, _ = found
    return bound == 0 and op in (">", ">=") and got < 0


def nothing_measured(e: Evidence, found: tuple[float, str, float, str]) -> bool:
    """A lower bound (``found``, from measured) missed with exactly zero, in a test that used
    doubles: the double did nothing of what is measured (mockgap.zero_from_double), not a
    rate hurt by load."""
    got, op, bound, _ = found
    return e.mocked and got == 0 and op in (">", ">=") and bound > 0


def threshold(e: Evidence) -> Finding | None:
    """A numeric bound on a rate, count or latency was missed (``assert rate >= 0.95``)."""
    found = measured(e)
    if found is None or not (e.concurrent or nothing_measured(e, found)):
        return None  # a bound missed by sequential code is an ordinary bug
    got, op, bound, expr = found
    lower = op in (">", ">=")
    if broken_invariant(found):
        return None  # a quantity that must never go below zero did: race.broken_invariant
    if lower:
        seen = f"got {num(got)} ({pct(got, bound)} of the bound)"
    else:
        seen = f"got {num(got)} ({got / bound:.1f}x the bound)" if bound else f"got {num(got)}"
    score = 0.75 if _MEASURED.search(f"{expr} {line(e)}") else 0.6
    return hit(
        0.45 if nothing_measured(e, found) else score,
        [f"asserted {expr} {op} {num(bound)}, {seen}"],
        _bound_advice(e, got, op, bound, expr),
    )


def _bound_advice(e: Evidence, got: float, op: str, bound: float, expr: str) -> Suggestion:
    """One failing value is no measurement: no new bound is made up from it (a bound set
    below the one value seen only hides the next regression); the reruns measure the spread
    and measures.py turns it into a bound."""
    lower = op in (">", ">=")
    short = f"{num(bound - got)} short" if lower else f"{num(got - bound)} over"
    missing = ("what dropped the rest (timeouts, retries, a dead worker)" if lower
               else "what stalled")
    return Suggestion(
        f"{expr} was {num(got)} in this one run{where(e)}, {short} of the asserted {op} "
        f"{num(bound)}. If the code is meant to vary under load, set the bound from the spread "
        f"of several runs (--poolchaos-rerun=5 measures it) or assert the median; if not, find "
        f"{missing}.")


def exact_count(e: Evidence) -> Finding | None:
    """An exact count of concurrent events is off (``assert len(done) == 10``): by one or two
    while work was still running, or by more (or any, where none was expected) since how
    many happen under load depends on timing."""
    c = e.comparison
    counts = _counts(c) if c is not None and c.op == "==" and e.concurrent else None
    if counts is None:
        return None
    got, want, of_lengths = counts
    if got in exit_codes(e) or e.facts("named-codes"):
        # an exit status (lifecycle.child-failed), or one named code where another was
        # expected (the code chose another outcome): not a count of events
        return None
    if explained_short(e, got, want) or (got < want and (
            stopped_early(e) or still_working(e) or ran_out(e)[0] or read_early(e))):
        # the missing ones raised in their tasks, or were stopped before they delivered, or
        # were still being made when the assert read the count (timeout.work-in-progress),
        # or a wait the result came through ran out (timeout.bounded-wait);
        # more than expected while work ran is this rule's: events that happen concurrently
        return None
    off = abs(got - want)
    if off > 2 or (want == 0 and got > 0):
        return _timed_count(got, want)
    if not off:
        return None
    counted = of_lengths or _COUNTED.search(f"{line(e)}\n{e.message}")
    what = "collection lengths" if of_lengths else "values"
    # Work that had all finished did not arrive late: race.lost_update reads that case.
    return hit(
        0.3 if all_finished(e) else 0.7 if counted else 0.45,
        [f"counted {got}, expected exactly {want} (off by {off}; compared {what})"],
        _count_advice(e, got, want, off),
    )


def ordering(e: Evidence) -> Finding | None:
    """Two sequences hold the same items in another order: concurrent completion order."""
    c = e.comparison
    if c is None or not e.reordered or not e.concurrent:
        return None
    size = c.left_len or c.right_len
    return hit(
        0.8,
        [f"the compared sequences hold the same {size} items in another order",
         f"left {c.left}, right {c.right}"],
        _order_advice(e),
    )


def distribution(e: Evidence) -> Finding | None:
    """Two lists of counts with the same total, spread differently (per-worker shares,
    per-round tallies): nothing was lost or done twice, the scheduler shared the work its
    own way."""
    c = e.comparison
    if c is None or c.op != "==" or not e.concurrent:
        return None
    got, want = _counts_list(literal(c.left)), _counts_list(literal(c.right))
    if not got or not want or sorted(got) == sorted(want) or sum(got) != sum(want):
        return None
    return hit(
        0.65,
        [f"the same {sum(want)} in all, spread as {c.left} where {c.right} was expected: "
         f"nothing was lost or done twice"],
        Suggestion(f"How work is spread over threads or rounds is the scheduler's choice: "
                   f"assert the total ({sum(want)}) and that every item was handled, not "
                   f"the share each worker got."),
    )


def _counts_list(value: object) -> list[int]:
    """``value`` as a list of counts (two to 64 non-negative ints), else []."""
    if not isinstance(value, list | tuple) or not 1 < len(value) <= 64:
        return []
    counts = [item for item in value if type(item) is int and item >= 0]
    return counts if len(counts) == len(value) else []


def _order_advice(e: Evidence) -> Suggestion:
    text = ("Concurrent work completes in any order: compare both sides sorted or as "
            "collections.Counter, or collect results in submission order (executor.map keeps "
            "input order, as_completed does not)")
    sides = _equal_sides(line(e))
    if sides is None:
        return Suggestion(f"{text}.")
    # The failing assert itself, order-free: the names are the test's own.
    return Suggestion(f"{text}{where(e)}:", f"assert sorted({sides[0]}) == sorted({sides[1]})")


def _equal_sides(source: str) -> tuple[str, str] | None:
    """The two sides of ``assert a == b[, message]`` as written, else None."""
    try:
        tree = ast.parse(source.strip())
    except SyntaxError:
        return None
    node = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(node, ast.Assert) or not isinstance(node.test, ast.Compare):
        return None
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return None
    return ast.unparse(test.left), ast.unparse(test.comparators[0])


def approx(e: Evidence) -> Finding | None:
    """A pytest.approx tolerance was exceeded."""
    c = e.comparison
    if c is None or not (c.left_type.startswith("Approx") or c.right_type.startswith("Approx")):
        return None
    if not e.concurrent:
        return None  # sequential code off by a wrong formula is an ordinary bug
    on_right = c.right_type.startswith("Approx")
    expected, got = (c.right_value, c.left_value) if on_right else (c.left_value, c.right_value)
    match = _TOLERANCE.search(c.right if on_right else c.left)
    tolerance = f" ± {match.group(1)}" if match else ""
    if expected is None or got is None or not expected:
        return hit(0.6, [f"approx comparison failed: {c.left} {c.op} {c.right}"],
                   "Widen the tolerance to the spread you measure under load (rel= or abs=).")
    off = abs(got - expected)
    rel = _ceil2(off / abs(expected) * 1.5)
    return hit(
        0.65,
        [f"expected {num(expected)}{tolerance}, got {num(got)} "
         f"(off by {num(off)}, {off / abs(expected):.1%})"],
        Suggestion(f"The value moved {off / abs(expected):.1%} from {num(expected)}; if that "
                   f"spread is normal under load, widen the tolerance: "
                   f"pytest.approx({num(expected)}, rel={num(rel)}).",
                   f"pytest.approx({num(expected)}, rel={num(rel)})"),
    )


def _timed_count(got: int, want: int) -> Finding:
    """An exact count far off in concurrent code: how many happen depends on timing."""
    if want == 0:
        seen = f"expected none, counted {got}"
        advice = (f"Under concurrent load {got} happened where the test expects none: if "
                  f"contention is allowed, bound it (`<= ...`) instead of asserting zero.")
    else:
        seen = f"counted {got}, expected exactly {want} (off by {abs(got - want)})"
        advice = (f"How many happen in a time window or under contention is not exact: "
                  f"{got} where the test expects {want}. Assert a range measured under load, "
                  f"or count the events the code itself controls.")
    return hit(0.55, [f"{seen} in a test that ran concurrent work"], Suggestion(advice))


def _oriented(e: Evidence, c: Comparison) -> tuple[float, str, float, str]:
    """(value got, operator as seen from it, bound, expression) — the bound is the literal."""
    assert c.left_value is not None
    assert c.right_value is not None
    match = _ASSERT.match(line(e))
    left, right = (match["left"].strip(), match["right"].strip()) if match else ("", "")
    if _LITERAL.fullmatch(left) and not _LITERAL.fullmatch(right):
        return c.right_value, _FLIP[c.op], c.left_value, right
    expr = left if left and not _LITERAL.fullmatch(left) else "the value"
    return c.left_value, c.op, c.right_value, expr


def _counts(c: Comparison) -> tuple[int, int, bool] | None:
    left, right = c.left_value, c.right_value
    if left is not None and right is not None and left.is_integer() and right.is_integer():
        return int(left), int(right), False
    if c.left_len is not None and c.right_len is not None:
        return c.left_len, c.right_len, True
    return None


def _count_advice(e: Evidence, got: int, want: int, off: int) -> Suggestion:
    match = _ASSERT.match(line(e))
    sides = [match["left"].strip(), match["right"].strip()] if match else []
    expr = next((side for side in sides if not _LITERAL.fullmatch(side)), "the count")
    if not e.spawned and not e.concurrent:
        # Nothing ran beside the test that the scope saw: no delivery to duplicate or lose.
        step = "one step more than" if got > want else "fewer steps than"
        return Suggestion(
            f"{expr} was {got}, expected {want}{where(e)}, and this test started no threads, "
            f"processes or connections that could deliver twice or late: the code takes "
            f"{step} the test counts ({off} off). Check which of the two is right and fix the "
            f"other.")
    started = (f"{len(e.spawned)} process(es)/connection(s) this test started" if e.spawned
               else f"{len(e.workers)} worker(s) this test started "
                    f"({', '.join(w.describe() for w in e.workers[:2])})")
    if got > want:
        return Suggestion(f"{expr} was {got}, expected {want}{where(e)}: {off} more arrived "
                          f"from the {started}, a retry or duplicate delivery; count unique "
                          f"ids, or make the receiving side ignore repeats.")
    if e.workers and not any(w.state in ("busy", "alive") for w in e.workers):
        return Suggestion(
            f"{expr} was {got} of {want}{where(e)} although every one of the {started} had "
            f"finished: {off} update(s) were lost, which points at an unsynchronised "
            f"read-modify-write in the code they run; guard it with a lock or count with a "
            f"thread-safe structure.")
    return Suggestion(
        f"{expr} was {got} of {want}{where(e)} when the assert ran, with {started} still "
        f"working: wait until they are done before counting (join them, shut the pool down "
        f"with wait=True, or poll until it reaches {want} with a deadline); if losing {off} "
        f"is acceptable, assert a range.",
        f"assert {want - off} <= {expr} <= {want}")


def _ceil2(value: float) -> float:
    """Round up to two significant digits, so the suggested tolerance really covers it."""
    if value <= 0:
        return value
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return float(math.ceil(value / scale) * scale)
