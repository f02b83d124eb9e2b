"""Build Evidence, plain data about one failed phase, from the live objects pytest hands us.

This runs where the test ran (a worker under xdist), at the first failing phase. Everything is
turned into builtins right away: the Evidence crosses the wire, and holding on to a test's
objects could keep the very pools and sockets alive that the scope is about to call leaks.
"""

from __future__ import annotations

import builtins
import collections
import inspect
import linecache
import numbers
import os
import re
import signal
import types
import warnings
from collections import Counter
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import pytest

from .. import timeouts
from ..guard import guarded
from ..model import Comparison, Evidence, ExceptionRecord, FrameFact, TimeoutInfo, Worker
from ..model.frozen import frozen
from ..sanitize import safe_text
from . import frames
from .frames import class_attr, own
from .scope.spawn import error_line

if TYPE_CHECKING:
    from .failure_moment import FailureMoment
    from .scope import PoolScope

__all__ = ["ComparisonSlot", "from_call", "seen_warnings", "timeout_info"]

#: reference.md §3.5: the repr of every kind of unittest.mock double.
MOCK_REPR = re.compile(
    r"<(?:NonCallable)?(?:Magic|Async|Property)?Mock(?: name='[^']*')?"
    r"(?: spec(?:_set)?='[^']*')? id='\d+'>"
)
_MOCK_ID = re.compile(r" id='\d+'")
_MAX_CHAIN = 10
_MAX_MODULES = 12
_MAX_TEXT = 2000
_MAX_REPR = 160
_LIFECYCLE_WARNINGS = ("PytestUnhandledThreadExceptionWarning",
                       "PytestUnraisableExceptionWarning", "ResourceWarning")
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Empty)\b.*$", re.M)
_OWN_CODE = ("pytest_poolchaos.", "_pytest.", "pluggy.")
_NO_WARNINGS: tuple[str, ...] = ()


@frozen
class _Captured:
    comparison: Comparison
    mocks: tuple[str, ...]
    reordered: bool = False
    where: tuple[str, int] | None = None


_NOT_CAPTURED: _Captured | None = None

class ComparisonSlot:
    """The last failed comparison of the running test, kept as data (never the objects)."""

    def __init__(self) -> None:
        self.last: _Captured | None = None

    def record(self, op: str, left: object, right: object) -> None:
        # Called from pytest_assertrepr_compare inside the test's own assert: never raise here.
        self.last = _capture(op, left, right) or self.last

    def clear(self) -> None:
        self.last = None


def from_call(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
              comparisons: ComparisonSlot | None, scope: PoolScope,
              worker: str | None, moment: FailureMoment | None = None) -> Evidence:
    """Evidence for the first failing phase of ``item``."""
    error = call.excinfo.value if call.excinfo is not None else None
    chain = list(_chain(error))
    records = tuple(_record(exc, relation) for exc, relation in chain)
    message = _clean(_crash_message(report))
    text = "\n".join([message, *(record.message for record in records)])
    captured = _matching(comparisons.last if comparisons else None, error) or _unittest(error)
    where, line = _location(item, error)
    timeout = timeouts.effective(item, text)
    workers, facts = _live_facts(item, chain, scope, _fired_after(timeout),
                                 captured.comparison if captured else None)
    then = moment.workers_for(error) if moment is not None else None
    workers = workers if then is None else then  # a finally: may have ended them since
    return Evidence(
        nodeid=item.nodeid,
        when=report.when,
        outcome="failed" if report.when == "call" else "error",
        message=message,
        exceptions=records,
        comparison=captured.comparison if captured else None,
        timeout=timeout,
        pollution=scope.outstanding(),
        mocks=_unique([*(captured.mocks if captured else ()), *_mocks_in(text)]),
        warnings=seen_warnings(scope.died_elsewhere()),
        worker=worker,
        source_line=line,
        location=where,
        raised_in=tuple(_raiser(exc) for exc, _ in chain),
        reordered=bool(captured and captured.reordered),
        workers=workers,
        frame_facts=facts,
    )


def _fired_after(timeout: TimeoutInfo | None) -> float | None:
    """Seconds after its timer was armed by which pytest-timeout's signal had fired, when it
    fired on setup, call and teardown."""
    if timeout is None or not timeout.fired or timeout.func_only or not timeout.seconds \
            or timeout.method not in (None, "signal"):
        return None
    return timeout.seconds


@guarded(((), ()))
def _live_facts(item: pytest.Item, chain: list[tuple[BaseException, str]],
                scope: PoolScope, fired_after: float | None = None,
                compared: Comparison | None = None,
                ) -> tuple[tuple[Worker, ...], tuple[FrameFact, ...]]:
    root = str(item.config.rootpath)
    errors = [error for error, _ in chain]
    # the failure's own chain may be the future's error, retrieved by result(): not hidden
    shown = {error_line(e) for e in errors}
    hidden = tuple(FrameFact("hidden-error", text)
                   for text in scope.hidden_errors(fired_after, timeouts.armed_at(item))
                   if text not in shown)
    hidden += tuple(FrameFact("magic-default", text) for text in scope.magic_defaults())
    hidden += tuple(FrameFact("missed-patch", text) for text in scope.missed_patches(root))
    hidden += tuple(FrameFact("patch-not-in-child", text)
                    for text in scope.patches_not_in_children())
    hidden += tuple(FrameFact("frozen-clock", text) for text in scope.frozen_clocks())
    hidden += tuple(FrameFact("patched-worker", text) for text in scope.patched_workers())
    hidden += frames.none_from_patch(errors, root, scope.none_returns())
    hidden += frames.closed_elsewhere(errors, root, scope.closed_objects(), scope.raised_on)
    hidden += tuple(FrameFact("set-late", text) for text in scope.late_attributes())
    hidden += _alarm_owner()
    hidden += tuple(FrameFact("own-server", text) for text in scope.own_servers())
    hidden += tuple(FrameFact(kind, text) for kind, text in scope.refused_by_double())
    hidden += tuple(FrameFact("started-twice", text) for text in scope.started_again())
    if compared is not None and compared.op == "==" and errors:
        hidden += frames.named_codes(errors[0], (compared.left_value, compared.right_value))
    started = scope.started()
    return (frames.workers(started, scope.ended()),
            frames.frame_facts(errors, root, scope.ran_out()) + hidden
            + frames.self_deadlocks(errors, started))


def _alarm_owner() -> tuple[FrameFact, ...]:
    # pytest-timeout's signal method swaps SIGALRM's handler for its own around each test: a
    # test that reads or uses SIGALRM meets that handler, not the one its code installed.
    sigalrm = getattr(signal, "SIGALRM", None)
    handler = signal.getsignal(sigalrm) if sigalrm is not None else None
    if getattr(handler, "__module__", None) != "pytest_timeout":
        return ()
    return (FrameFact("alarm-owner", f"SIGALRM was handled by pytest_timeout."
                                     f"{getattr(handler, '__qualname__', 'handler')}"),)


def timeout_info(item: pytest.Item) -> TimeoutInfo | None:
    """The pytest-timeout limit in effect for ``item`` (None without one)."""
    return timeouts.effective(item)


@guarded(_NO_WARNINGS)
def seen_warnings(died_elsewhere: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Lifecycle warnings recorded so far in this test, one line each, without the deaths of
    the threads named in ``died_elsewhere`` (pytest reports a thread's exception in whichever
    test runs when it dies, an earlier test's thread included).

    pytest's warnings plugin hands warnings to ``pytest_warning_recorded`` only after the whole
    protocol, too late for the teardown classification, so this peeks at the live
    ``catch_warnings(record=True)`` log that plugin keeps around each test. pytest turns
    unhandled thread exceptions and unraisable exceptions into warnings in that log during each
    phase, before the phase's report is made.
    """
    log = getattr(getattr(warnings, "_showwarnmsg_impl", None), "__self__", None)
    if not isinstance(log, list):
        return ()
    lines = (_warning_line(entry) for entry in list(log))
    return _own_warnings(_unique([line for line in lines if line]), died_elsewhere)


# -- the failed comparison ------------------------------------------------------------------


@guarded(_NOT_CAPTURED)
def _capture(op: str, left: object, right: object) -> _Captured | None:
    comparison = Comparison(
        op=op, left=_repr(left), right=_repr(right),
        left_type=type(left).__name__, right_type=type(right).__name__,
        left_value=_number(left), right_value=_number(right),
        left_len=_length(left), right_len=_length(right),
    )
    mocks = tuple(desc for desc in (_double(left, "left"), _double(right, "right")) if desc)
    return _Captured(comparison, mocks, _reordered(op, left, right), _assert_site())


def _matching(captured: _Captured | None, error: BaseException | None) -> _Captured | None:
    # A comparison the test caught, or one from an earlier assert, must not explain this error.
    if captured is None or not isinstance(error, AssertionError):
        return None
    site = _raise_site(error.__traceback__)
    if captured.where is None or site is None or captured.where == site:
        return captured
    return None


#: unittest's assert methods (and the helpers they call) -> the operator they check, with the
#: names of their two operands
_UNITTEST_OPS = {
    "_baseAssertEqual": ("==", "first", "second"), "assertEqual": ("==", "first", "second"),
    "assertNotEqual": ("!=", "first", "second"), "assertLess": ("<", "a", "b"),
    "assertLessEqual": ("<=", "a", "b"), "assertGreater": (">", "a", "b"),
    "assertGreaterEqual": (">=", "a", "b"), "assertAlmostEqual": ("==", "first", "second"),
    "assertListEqual": ("==", "list1", "list2"), "assertTupleEqual": ("==", "tuple1", "tuple2"),
    "assertSequenceEqual": ("==", "seq1", "seq2"), "assertDictEqual": ("==", "d1", "d2"),
    "assertSetEqual": ("==", "set1", "set2"), "assertCountEqual": ("==", "first", "second"),
}


def _unittest(error: BaseException | None) -> _Captured | None:
    """The operands of a failed unittest assert method, read from its live frame: pytest's
    assertion hook never sees them."""
    if not isinstance(error, AssertionError):
        return None
    for frame, _ in _frames(error.__traceback__):
        if frame.f_globals.get("__name__") != "unittest.case":
            continue
        found = _UNITTEST_OPS.get(frame.f_code.co_name)
        local = frame.f_locals
        if found is not None and found[1] in local and found[2] in local:
            return _capture(found[0], local[found[1]], local[found[2]])
    return None


def _assert_site() -> tuple[str, int] | None:
    frame = inspect.currentframe()
    while frame is not None and _is_own(frame):
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


def _is_own(frame: FrameType) -> bool:
    name = str(frame.f_globals.get("__name__", ""))
    return name.startswith(_OWN_CODE) or name in ("pytest_poolchaos", "pluggy", "_pytest")


def _raise_site(tb: TracebackType | None) -> tuple[str, int] | None:
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return (last.tb_frame.f_code.co_filename, last.tb_lineno) if last is not None else None


# The operands are the test's own objects, seen inside its failing assert: they are judged by
# exact type and read through instance dictionaries only (no len(), getattr, isinstance that
# could reach a user __class__/__len__/__getattr__, no hashing or repr of user objects).
_SIZED = (list, tuple, dict, set, frozenset, str, bytes, bytearray, collections.deque)
_SCALARS = (int, float, str, bytes, bool, type(None))
_SAFE_MODULES = ("builtins", "collections", "datetime", "decimal", "fractions", "pathlib",
                 "_pytest", "unittest.mock", "enum", "uuid")


def _number(value: object) -> float | None:
    kind = type(value)
    if kind is bool:
        return None
    if kind in (int, float) or (_module_of(kind) in ("decimal", "fractions")
                                and issubclass(kind, numbers.Real)):
        return float(value)  # type: ignore[arg-type]
    if kind.__name__.startswith("Approx") and _module_of(kind).startswith("_pytest"):
        expected = own(value, "expected")  # pytest.approx(x) keeps x as ``expected``
        if isinstance(expected, int | float) and type(expected) in (int, float):
            return float(expected)
    return None


def _length(value: object) -> int | None:
    if type(value) not in _SIZED or type(value) in (str, bytes):
        return None
    return len(value)  # type: ignore[arg-type]


def _reordered(op: str, left: object, right: object) -> bool:
    if op != "==" or type(left) not in (list, tuple) or type(right) not in (list, tuple):
        return False
    if not isinstance(left, list | tuple) or not isinstance(right, list | tuple):
        return False  # never: the exact types were checked (this narrows them for mypy)
    if not all(type(item) in _SCALARS for item in (*left, *right)):
        return False  # hashing or comparing user objects would run their code
    if len(left) != len(right) or list(left) == list(right):
        return False
    return bool(Counter(left) == Counter(right))


def _repr(value: object) -> str:
    kind = type(value)
    if not _module_of(kind).startswith(_SAFE_MODULES):
        return f"<{kind.__qualname__} object>"
    try:
        text = repr(value)
    except Exception as error:
        text = f"<repr failed: {type(error).__name__}>"
    return _clean(_MOCK_ID.sub("", text), _MAX_REPR)


def _module_of(kind: type) -> str:
    return str(class_attr(kind, "__module__") or "")


# -- mocks and coroutines -------------------------------------------------------------------


def _is_mock(value: object) -> bool:
    return frames.mock_module(type(value)) is not None


def _double(value: object, side: str) -> str | None:
    if _is_mock(value):
        return f"{side} operand is {_repr(value)}"
    if type(value) is types.CoroutineType:
        return f"{side} operand is an un-awaited coroutine {value.__qualname__!r}"
    return None


def _mocks_in(text: str) -> list[str]:
    return [_MOCK_ID.sub("", found) for found in MOCK_REPR.findall(text)]


# -- the exception chain --------------------------------------------------------------------


def _chain(error: BaseException | None) -> Iterator[tuple[BaseException, str]]:
    seen: set[int] = set()
    pending = [(error, "")] if error is not None else []
    while pending and len(seen) < _MAX_CHAIN:
        exc, relation = pending.pop(0)
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc, relation
        pending.extend(_linked(exc))


def _linked(exc: BaseException) -> list[tuple[BaseException, str]]:
    group = getattr(builtins, "BaseExceptionGroup", None)
    linked: list[tuple[BaseException, str]] = []
    if group is not None and isinstance(exc, group):
        linked.extend((member, "group") for member in exc.exceptions)
    if exc.__cause__ is not None:
        linked.append((exc.__cause__, "cause"))
    elif exc.__context__ is not None and not exc.__suppress_context__:
        linked.append((exc.__context__, "context"))
    return linked


def _record(exc: BaseException, relation: str) -> ExceptionRecord:
    bases = tuple(f"{kind.__module__}.{kind.__qualname__}" for kind in type(exc).__mro__)
    # each module where it last appears, so the innermost frame's (the raiser's) comes last
    # even when the test's module also sits outermost (a coroutine under asyncio.run)
    modules = _unique(reversed(list(_frame_modules(exc.__traceback__))))[::-1]
    return ExceptionRecord(bases[0], bases, _clean(_str(exc)), modules[-_MAX_MODULES:], relation)


def _frames(tb: TracebackType | None) -> Iterator[tuple[FrameType, int]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _frame_modules(tb: TracebackType | None) -> Iterator[str]:
    for frame, _ in _frames(tb):
        if not _is_own(frame):  # pytest's and pluggy's own frames say nothing about the test
            yield str(frame.f_globals.get("__name__", "?"))


def _raiser(exc: BaseException) -> str:
    frames = list(_frames(exc.__traceback__))
    if not frames:
        return ""
    frame = frames[-1][0]
    code = frame.f_code
    owner = frame.f_locals.get("self")
    name = (f"{type(owner).__qualname__}.{code.co_name}" if owner is not None
            else getattr(code, "co_qualname", code.co_name))
    return f"{frame.f_globals.get('__name__', '?')}:{name}"


def _location(item: pytest.Item, error: BaseException | None) -> tuple[str, str]:
    """``path:lineno`` and source line of the innermost frame in the test's file, else in user
    code under the rootdir; empty strings when there is none."""
    frames = list(_frames(error.__traceback__ if error is not None else None))
    test_file = str(getattr(item, "path", ""))
    root = str(item.config.rootpath)
    chosen = next((f for f in reversed(frames) if f[0].f_code.co_filename == test_file), None)
    chosen = chosen or next((f for f in reversed(frames) if _is_user(f[0], root)), None)
    if chosen is None:
        return "", ""
    filename, lineno = chosen[0].f_code.co_filename, chosen[1]
    where = f"{os.path.relpath(filename, root) if filename.startswith(root) else filename}"
    line = linecache.getline(filename, lineno).strip()
    return f"{where}:{lineno}", _clean(line, 300)


def _is_user(frame: FrameType, root: str) -> bool:
    filename = frame.f_code.co_filename
    return filename.startswith(root) and "site-packages" not in filename and not _is_own(frame)


def _crash_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr or "")


def _str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception as error:
        return f"<str() failed: {type(error).__name__}>"


# -- warnings -------------------------------------------------------------------------------


def _own_warnings(lines: tuple[str, ...], elsewhere: frozenset[str]) -> tuple[str, ...]:
    if not elsewhere:
        return lines
    foreign = tuple(f"{_THREAD_DIED}{name}" for name in elsewhere)
    return tuple(line for line in lines
                 if not any(line.startswith(prefix) and line[len(prefix):len(prefix) + 1]
                            in (" ", ":", "") for prefix in foreign))


_THREAD_DIED = "PytestUnhandledThreadExceptionWarning: Exception in thread "


def _warning_line(entry: object) -> str | None:
    category = getattr(entry, "category", None)
    name = getattr(category, "__name__", "")
    text = str(getattr(entry, "message", ""))
    if name not in _LIFECYCLE_WARNINGS and "was never awaited" not in text:
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    errors = _ERROR_LINE.findall(text)
    summary = f"{first}: {errors[-1]}" if errors and errors[-1] != first else first
    return _clean(f"{name}: {summary}", 400)


# -- small helpers --------------------------------------------------------------------------


def _clean(text: str, limit: int = _MAX_TEXT) -> str:
    """Redacted (secrets never leave the worker), encodable and clipped."""
    return safe_text(text, limit)


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for item in items if item))
