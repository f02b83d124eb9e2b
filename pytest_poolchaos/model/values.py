"""The values a diagnosis is made of: evidence, findings, diagnoses and their parts.

Loaded when first needed (a failure, a leak, a timeout), not by a green run's start-up.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field, fields, replace
from typing import Any, TypeVar

from .frozen import frozen
from .timeout import TimeoutInfo

__all__ = [
    "Attempt",
    "Category",
    "Comparison",
    "CrashFacts",
    "Diagnosis",
    "Evidence",
    "ExceptionRecord",
    "Finding",
    "FrameFact",
    "Leak",
    "LedgerEntry",
    "RerunFacts",
    "Rule",
    "RuleScore",
    "Suggestion",
    "TimeoutInfo",
    "Verdict",
    "Worker",
    "describe_change",
]

JSON = dict[str, Any]
T = TypeVar("T")

class Category(str, enum.Enum):
    """Why a test failed; exactly one per diagnosis."""

    TIMEOUT = "timeout"
    EXPECTATION = "expectation"
    LIFECYCLE = "lifecycle"
    CONFIG_POLLUTION = "config-pollution"
    MOCK_GAP = "mock-gap"
    RACE = "race"
    UNCLASSIFIED = "unclassified"


class Verdict(str, enum.Enum):
    """Whether the failure repeats; ``unknown`` until the test was rerun."""

    DETERMINISTIC = "deterministic"
    FLAKY = "flaky"
    ORDER_DEPENDENT = "order-dependent"
    UNKNOWN = "unknown"


@frozen
class Suggestion:
    """One concrete thing to change; ``detail`` holds code or the numbers behind it."""

    text: str
    detail: str = ""

    def to_json(self) -> JSON:
        out: JSON = {"text": self.text}
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Suggestion:
        return cls(text=str(data["text"]), detail=str(data.get("detail", "")))


@frozen
class ExceptionRecord:
    """One exception of a failure's chain, outermost first.

    ``bases`` holds qualified names (``module.QualName``) of the type and its bases so rules can
    match ``concurrent.futures.BrokenExecutor`` subclasses without importing anything.
    """

    type: str
    bases: tuple[str, ...]
    message: str
    modules: tuple[str, ...] = ()
    relation: str = ""  # "" for the outermost, else "cause", "context" or "group"

    def is_a(self, *qualnames: str) -> bool:
        return any(name in self.bases for name in qualnames)


@frozen
class Comparison:
    """Operands of the failed ``assert left <op> right`` as captured by pytest's rewriting."""

    op: str
    left: str
    right: str
    left_type: str
    right_type: str
    left_value: float | None = None
    right_value: float | None = None
    left_len: int | None = None
    right_len: int | None = None


@frozen
class Leak:
    """State a test left behind after its teardown: a live resource or a changed global."""

    kind: str
    detail: str
    key: str = ""

    def to_json(self) -> JSON:
        out: JSON = {"kind": self.kind, "detail": self.detail}
        if self.key:
            out["key"] = self.key
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Leak:
        return cls(str(data["kind"]), str(data["detail"]), str(data.get("key", "")))


@frozen
class LedgerEntry:
    """A global change an earlier test left in place (values already redacted)."""

    nodeid: str
    kind: str
    key: str
    before: str | None
    after: str | None
    fix: str = ""

    def describe(self) -> str:
        return describe_change(self.kind, self.key, self.before, self.after, with_kind=True)


def describe_change(kind: str, key: str, before: str | None, after: str | None,
                    with_kind: bool = False) -> str:
    """One change to a global; ``with_kind`` where no column already names the kind."""
    if kind == "env":
        if after is None:
            return f"os.environ[{key!r}] deleted (was {before!r})"
        was = "unset" if before is None else repr(before)
        return f"os.environ[{key!r}] = {after!r} (was {was})"
    if kind == "mock-patch":
        return f"patch of {key} was started and never stopped"
    # Other kinds hold repr() text already: quoting it again would turn True into 'True'.
    return f"{kind + ' ' if with_kind else ''}{key} = {after} (was {before})"


@frozen
class Attempt:
    """One diagnostic rerun."""

    mode: str  # inline | isolated | confirm | pair | bisect | chaos
    outcome: str  # passed | failed | error | skipped
    duration_s: float
    message: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    chaos: str | None = None  # the noise the attempt ran under (chaos mode)

    def to_json(self) -> JSON:
        out: JSON = {"mode": self.mode, "outcome": self.outcome, "duration_s": self.duration_s}
        if self.message:
            out["message"] = self.message
        if self.chaos:
            out["chaos"] = self.chaos
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(str(data["mode"]), str(data["outcome"]), float(data["duration_s"]),
                   str(data.get("message", "")), chaos=data.get("chaos"))


#: passes without its neighbours before a failure can be put on the tests that ran before it
STABLE_ALONE = 2


@frozen
class RerunFacts:
    """What diagnostic reruns proved about a failure; rules read it like any other fact."""

    verdict: Verdict
    polluter: str | None = None
    #: runs without the suite's earlier tests (isolated or confirming) and how many passed
    alone_runs: int = 0
    alone_passes: int = 0
    #: no earlier test made it fail; the run's test modules collected with it did
    collected: bool = False

    @property
    def passes_alone(self) -> bool:
        """Passed every run without its neighbours, at least twice: what made it fail in
        the suite came from the tests before it, whether or not the search found which."""
        return self.alone_runs >= STABLE_ALONE and self.alone_passes == self.alone_runs


@frozen
class CrashFacts:
    """The process running the test died before it could report (xdist crash, hard kill)."""

    how: str  # "worker 'gw0' crashed (exit code 1)", "the pytest process ended", ...
    exit_code: int | None = None  # negative: killed by that signal
    ran_s: float | None = None  # how long the test had run when it died, when known
    worker: str | None = None


@frozen
class Worker:
    """A thread, pool or process the test's scope saw start, as it was when the test failed."""

    kind: str  # thread | pool | process | task (asyncio)
    name: str
    #: busy | idle (waiting for work) | exited | alive | cancelled (an asyncio task)
    state: str
    where: str = ""  # for a busy thread: the function and line it was in
    exit_code: int | None = None
    #: for a thread that has exited: how many seconds before the failure was read it did
    #: (None when not known)
    ended_ago: float | None = None

    def describe(self) -> str:
        code = f" (exit code {self.exit_code})" if self.exit_code is not None else ""
        at = f" in {self.where}" if self.where else ""
        return f"{self.kind} {self.name!r} {self.state}{at}{code}"


@frozen
class FrameFact:
    """What the live traceback held where it failed: ``kind`` is lock, container, generator,
    double (in any user frame), double-at-raise (in the frame that raised), socket (with its
    own timeout), worker-thread, module (name and file), caplog, dropped-wait, deadline,
    exit-checked (a failed child's exit code the raising frame read), closed (an object a
    failing frame held, found closed) with closed-global beside it when that object is a
    module global the failing line used, or
    reads (a function on the failing path and the names and strings its code uses);
    ``detail`` names the object and its frame."""

    kind: str
    detail: str


@frozen
class Evidence:
    """Everything gathered about one failed test; rules read nothing else."""

    nodeid: str
    when: str
    outcome: str = "failed"
    message: str = ""
    exceptions: tuple[ExceptionRecord, ...] = ()
    comparison: Comparison | None = None
    timeout: TimeoutInfo | None = None
    duration_s: float = 0.0
    call_duration_s: float = 0.0
    leaks: tuple[Leak, ...] = ()
    pollution: tuple[LedgerEntry, ...] = ()
    mocks: tuple[str, ...] = ()
    mocked: bool = False
    spawned: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    worker: str | None = None
    load: Mapping[str, float] = field(default_factory=dict)
    #: the source line the failure was raised at (test file first, else user code) ...
    source_line: str = ""
    #: ... and its ``path:lineno``
    location: str = ""
    #: per exception of the chain, ``module:Owner.function`` of the frame that raised it
    raised_in: tuple[str, ...] = ()
    #: the failed ``==`` compared two sequences holding the same items in another order
    reordered: bool = False
    #: threads alive when pytest-timeout fired, from its stack dump; None when not read
    alive: tuple[str, ...] | None = None
    reruns: RerunFacts | None = None
    crash: CrashFacts | None = None
    #: threads, pools and processes this test (or its fixtures) started, at the failure
    workers: tuple[Worker, ...] = ()
    #: locks, shared containers, generators and doubles found in the traceback's frames
    frame_facts: tuple[FrameFact, ...] = ()

    @property
    def outermost(self) -> ExceptionRecord | None:
        return self.exceptions[0] if self.exceptions else None

    def text(self) -> str:
        """Every message of the failure, for rules that match words."""
        parts = [self.message, *(exc.message for exc in self.exceptions), *self.warnings]
        return "\n".join(part for part in parts if part)

    def any_exception(self, *qualnames: str) -> ExceptionRecord | None:
        return next((exc for exc in self.exceptions if exc.is_a(*qualnames)), None)

    @property
    def concurrent(self) -> bool:
        """The test ran something concurrently: the scope saw a thread, pool or process start,
        or several asyncio tasks (asyncio.run wraps even a lone coroutine in one), or the
        failure crossed a worker thread."""
        tasks = sum(1 for w in self.workers if w.kind == "task")
        return len(self.workers) > tasks or tasks >= 2 or any(
            f.kind == "worker-thread" for f in self.frame_facts)

    def facts(self, kind: str) -> list[FrameFact]:
        return [fact for fact in self.frame_facts if fact.kind == kind]

    def to_json(self) -> JSON:
        out: JSON = {}
        for item in fields(self):
            value = getattr(self, item.name)
            out[item.name] = _plain(value)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        values = _known(cls, data)
        values["exceptions"] = _tuple_of(ExceptionRecord, values.get("exceptions", ()))
        values["leaks"] = tuple(Leak.from_json(x) for x in values.get("leaks", ()))
        values["pollution"] = _tuple_of(LedgerEntry, values.get("pollution", ()))
        values["workers"] = _tuple_of(Worker, values.get("workers", ()))
        values["frame_facts"] = _tuple_of(FrameFact, values.get("frame_facts", ()))
        for name in ("mocks", "spawned", "warnings", "raised_in"):
            values[name] = tuple(values.get(name) or ())
        if values.get("alive") is not None:
            values["alive"] = tuple(values["alive"])
        values["comparison"] = _maybe(Comparison, values.get("comparison"))
        values["timeout"] = _maybe(TimeoutInfo, values.get("timeout"))
        values["crash"] = _maybe(CrashFacts, values.get("crash"))
        reruns = values.get("reruns")
        values["reruns"] = None if reruns is None else RerunFacts(
            Verdict(reruns["verdict"]), reruns.get("polluter"),
            int(reruns.get("alone_runs", 0)), int(reruns.get("alone_passes", 0)),
            bool(reruns.get("collected", False)))
        return cls(**values)


@frozen
class Finding:
    """What one rule concluded: a category, a score in [0, 1], and the lines that say why.

    Built-in checks return it without ``rule`` and ``category`` (the catalogue fills both in,
    so no check repeats its own id); third-party rules fill them in themselves.
    """

    rule: str
    category: Category
    score: float
    reasons: tuple[str, ...]
    suggestions: tuple[Suggestion, ...] = ()


@frozen
class Rule:
    """A named check; ``check`` returns a Finding or None when its signal is absent."""

    id: str
    category: Category
    check: Callable[[Evidence], Finding | None]
    doc: str = ""


@frozen
class RuleScore:
    """One rule that fired for a diagnosis, so a confidence can be traced to its causes."""

    id: str
    category: Category
    score: float

    def to_json(self) -> JSON:
        return {"id": self.id, "category": self.category.value, "score": round(self.score, 3)}


@frozen
class Diagnosis:
    """The conclusion for one failed test, refined by reruns when they ran.

    ``reasons`` are the numbered lines shown under "evidence" in every report.
    """

    category: Category
    confidence: float
    reasons: tuple[str, ...]
    suggestions: tuple[Suggestion, ...]
    rules: tuple[RuleScore, ...] = ()
    verdict: Verdict = Verdict.UNKNOWN
    pass_rate: float | None = None
    reruns: int = 0
    polluter: str | None = None
    polluter_search: Mapping[str, Any] | None = None
    attempts: tuple[Attempt, ...] = ()
    cleaners: tuple[str, ...] = ()

    def evolve(self, **changes: Any) -> Diagnosis:
        return replace(self, **changes)

    def to_json(self) -> JSON:
        return {
            "category": self.category.value,
            "confidence": round(self.confidence, 3),
            "verdict": self.verdict.value,
            "pass_rate": self.pass_rate,
            "reruns": self.reruns,
            "polluter": self.polluter,
            "polluter_search": dict(self.polluter_search) if self.polluter_search else None,
            "evidence": list(self.reasons),
            "suggestions": [s.to_json() for s in self.suggestions],
            "rules": [r.to_json() for r in self.rules],
            "attempts": [a.to_json() for a in self.attempts],
            **({"cleaners": list(self.cleaners)} if self.cleaners else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Diagnosis:
        return cls(
            category=Category(data["category"]),
            confidence=float(data["confidence"]),
            reasons=tuple(str(line) for line in data.get("evidence", ())),
            suggestions=tuple(Suggestion.from_json(s) for s in data.get("suggestions", ())),
            rules=tuple(_rule_score(rule, data) for rule in data.get("rules", ())),
            verdict=Verdict(data.get("verdict", "unknown")),
            pass_rate=data.get("pass_rate"),
            reruns=int(data.get("reruns", 0)),
            polluter=data.get("polluter"),
            polluter_search=data.get("polluter_search"),
            attempts=tuple(Attempt.from_json(a) for a in data.get("attempts", ())),
            cleaners=tuple(str(c) for c in data.get("cleaners", ())),
        )


# -- helpers -----------------------------------------------------------------------------------


def _rule_score(rule: Any, diagnosis: Mapping[str, Any]) -> RuleScore:
    if isinstance(rule, str):  # written before rules carried their category and score
        return RuleScore(rule, Category(diagnosis["category"]), float(diagnosis["confidence"]))
    return RuleScore(str(rule["id"]), Category(rule["category"]), float(rule["score"]))


def _plain(value: Any) -> Any:
    """A value of these dataclasses as builtins (enums by value, tuples as lists)."""
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a NamedTuple
        return {key: _plain(item) for key, item in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def _known(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    # Reports from a newer worker may carry fields this version does not know.
    names = set(getattr(cls, "_fields", ())) or {f.name for f in fields(cls)}
    return {key: value for key, value in values.items() if key in names}


def _maybe(cls: Callable[..., T], data: Mapping[str, Any] | None) -> T | None:
    if data is None:
        return None
    values = _known(cls, data)  # type: ignore[arg-type]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _tuple_of(cls: Callable[..., T], items: Sequence[Mapping[str, Any]]) -> tuple[T, ...]:
    out = []
    for item in items:
        values = _known(cls, item)  # type: ignore[arg-type]
        for key, value in values.items():
            if isinstance(value, list):
                values[key] = tuple(value)
        out.append(cls(**values))
    return tuple(out)


