"""Expectation: the code works; the assertion is unrealistic for concurrent conditions.

Every check needs concurrency the scope saw (``Evidence.concurrent``): the same mismatch in a
test that ran nothing concurrently is an ordinary bug, and gets no advice about load.
"""

from __future__ import annotations

import math
import re

from ..model import Comparison, Evidence, Finding, Suggestion
from .signals import hit, line, num, pct

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
    if lower:
        seen = f"got {num(got)} ({pct(got, bound)} of the bound)"
        change = f"{op} {num(_rounded(got * 0.9, got, bound))}"
    else:
        seen = f"got {num(got)} ({got / bound:.1f}x the bound)" if bound else f"got {num(got)}"
        change = f"{op} {num(_rounded(got * 1.5, got, bound))}"
    score = 0.75 if _MEASURED.search(f"{expr} {line(e)}") else 0.6
    return hit(
        0.45 if nothing_measured(e, found) else score,
        [f"asserted {expr} {op} {num(bound)}, {seen}"],
        Suggestion(
            f"Under concurrent load {expr} came out at {num(got)} against a bound of "
            f"{num(bound)}. If that is acceptable, set the bound from measurements "
            f"(`{expr} {change}`) or assert the median of several runs; if not, find what "
            f"{'dropped the rest (timeouts, retries, a dead worker)' if lower else 'stalled'}.",
            f"assert {expr} {change}",
        ),
    )


def exact_count(e: Evidence) -> Finding | None:
    """An exact count of concurrent events is off (``assert len(done) == 10``): by one or two
    while work was still running, or by more (or any, where none was expected) since how
    many happen under load depends on timing."""
    c = e.comparison
    counts = _counts(c) if c is not None and c.op == "==" and e.concurrent else None
    if counts is None:
        return None
    got, want, of_lengths = counts
    off = abs(got - want)
    if off > 2 or (want == 0 and got > 0):
        return _timed_count(got, want)
    if not off:
        return None
    counted = of_lengths or _COUNTED.search(f"{line(e)}\n{e.message}")
    what = "collection lengths" if of_lengths else "values"
    # Work that had all finished did not arrive late: race.lost_update reads that case.
    return hit(
        0.3 if _all_finished(e) else 0.7 if counted else 0.45,
        [f"counted {got}, expected exactly {want} (off by {off}; compared {what})"],
        _count_advice(got, want, off),
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
        Suggestion("Concurrent work completes in any order: compare sorted(...) or "
                   "collections.Counter(...) of both sides, or collect results in submission "
                   "order (executor.map keeps input order, as_completed does not).",
                   "assert sorted(results) == sorted(expected)"),
    )


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


def _all_finished(e: Evidence) -> bool:
    threads = [w for w in e.workers if w.kind == "thread"]
    return len(threads) >= 2 and all(w.state in ("exited", "idle") for w in threads)


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


def _count_advice(got: int, want: int, off: int) -> Suggestion:
    if got > want:
        return Suggestion(f"{off} more than the {want} expected arrived: a retry or duplicate "
                          f"delivery; make the handler idempotent or count unique ids "
                          f"(len(set(ids)) == {want}).")
    return Suggestion(
        f"Only {got} of {want} had arrived when the assert ran. Wait until the work is done "
        f"before counting (join the threads, pool.shutdown(wait=True), or poll until the count "
        f"reaches {want} with a deadline); if losing {off} is acceptable, assert a range.",
        f"assert {want - off} <= count <= {want}",
    )


def _rounded(value: float, got: float, bound: float) -> float:
    whole = float(got).is_integer() and float(bound).is_integer()
    return float(math.floor(value) if value < got else math.ceil(value)) if whole else value


def _ceil2(value: float) -> float:
    """Round up to two significant digits, so the suggested tolerance really covers it."""
    if value <= 0:
        return value
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return float(math.ceil(value / scale) * scale)
