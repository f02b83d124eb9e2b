"""Plain value types shared by every part of the plugin.

Everything here is JSON-safe through ``to_json``/``from_json``: these dicts are what travels
inside pytest reports under pytest-xdist, what isolated reruns print, and what the JSON report
is built from. No other module knows the wire shape.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar

__all__ = [
    "Attempt",
    "Category",
    "Comparison",
    "Diagnosis",
    "Evidence",
    "ExceptionRecord",
    "Finding",
    "Leak",
    "LedgerEntry",
    "Rule",
    "Suggestion",
    "TimeoutInfo",
    "Verdict",
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
    UNCLASSIFIED = "unclassified"


class Verdict(str, enum.Enum):
    """Whether the failure repeats; ``unknown`` until the test was rerun."""

    DETERMINISTIC = "deterministic"
    FLAKY = "flaky"
    ORDER_DEPENDENT = "order-dependent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
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
        return cls(text=data["text"], detail=data.get("detail", ""))


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    """One exception of a failure's chain, outermost first.

    ``bases`` holds qualified names (``module.QualName``) of the type and its bases so rules can
    match ``concurrent.futures.BrokenExecutor`` subclasses without importing anything.
    """

    type: str
    bases: tuple[str, ...]
    message: str
    modules: tuple[str, ...] = ()
    relation: str = ""  # "" for the outermost, else "cause" or "context"

    def is_a(self, *qualnames: str) -> bool:
        return any(name in self.bases for name in qualnames)


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class TimeoutInfo:
    """The pytest-timeout limit that applied to a test and whether it fired."""

    seconds: float | None
    method: str | None = None
    source: str | None = None  # "marker at path:line", "cli", "env", "ini"
    func_only: bool = False
    fired: bool = False


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A global change an earlier test left in place (values already redacted)."""

    nodeid: str
    kind: str
    key: str
    before: str | None
    after: str | None
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One diagnostic rerun."""

    mode: str  # inline | isolated | pair | bisect | chaos
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


@dataclass(frozen=True, slots=True)
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
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def outermost(self) -> ExceptionRecord | None:
        return self.exceptions[0] if self.exceptions else None

    def text(self) -> str:
        """Every message of the failure, for rules that match words."""
        parts = [self.message, *(exc.message for exc in self.exceptions), *self.warnings]
        return "\n".join(part for part in parts if part)

    def any_exception(self, *qualnames: str) -> ExceptionRecord | None:
        return next((exc for exc in self.exceptions if exc.is_a(*qualnames)), None)

    def to_json(self) -> JSON:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        values = dict(data)
        values["exceptions"] = _tuple_of(ExceptionRecord, values.get("exceptions", ()))
        values["leaks"] = _tuple_of(Leak, values.get("leaks", ()))
        values["pollution"] = _tuple_of(LedgerEntry, values.get("pollution", ()))
        for name in ("mocks", "spawned", "warnings"):
            values[name] = tuple(values.get(name, ()))
        values["comparison"] = _maybe(Comparison, values.get("comparison"))
        values["timeout"] = _maybe(TimeoutInfo, values.get("timeout"))
        return cls(**_known(cls, values))


@dataclass(frozen=True, slots=True)
class Finding:
    """What one rule concluded: a category, a score in [0, 1], and why."""

    rule: str
    category: Category
    score: float
    evidence: tuple[str, ...]
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """A named check; ``check`` returns a Finding or None when its signal is absent."""

    id: str
    category: Category
    check: Callable[[Evidence], Finding | None]
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The conclusion for one failed test, refined by reruns when they ran."""

    category: Category
    confidence: float
    evidence: tuple[str, ...]
    suggestions: tuple[Suggestion, ...]
    rules: tuple[str, ...] = ()
    verdict: Verdict = Verdict.UNKNOWN
    pass_rate: float | None = None
    reruns: int = 0
    polluter: str | None = None
    polluter_search: Mapping[str, Any] | None = None
    attempts: tuple[Attempt, ...] = ()
    #: rule id -> the score it gave; a rule without one is shown with the confidence
    scores: Mapping[str, float] = field(default_factory=dict)
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
            "evidence": list(self.evidence),
            "suggestions": [s.to_json() for s in self.suggestions],
            "rules": [{"id": rule, "category": self.category.value,
                       "score": round(self.scores.get(rule, self.confidence), 3)}
                      for rule in self.rules],
            "attempts": [a.to_json() for a in self.attempts],
            **({"cleaners": list(self.cleaners)} if self.cleaners else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Diagnosis:
        return cls(
            category=Category(data["category"]),
            confidence=float(data["confidence"]),
            evidence=tuple(data.get("evidence", ())),
            suggestions=tuple(Suggestion.from_json(s) for s in data.get("suggestions", ())),
            rules=tuple(r["id"] if isinstance(r, Mapping) else r for r in data.get("rules", ())),
            scores={r["id"]: float(r["score"]) for r in data.get("rules", ())
                    if isinstance(r, Mapping)},
            verdict=Verdict(data.get("verdict", "unknown")),
            pass_rate=data.get("pass_rate"),
            reruns=int(data.get("reruns", 0)),
            polluter=data.get("polluter"),
            polluter_search=data.get("polluter_search"),
            attempts=tuple(
                Attempt(a["mode"], a["outcome"], a["duration_s"], a.get("message", ""),
                        chaos=a.get("chaos"))
                for a in data.get("attempts", ())
            ),
            cleaners=tuple(data.get("cleaners", ())),
        )


def _known(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    # Reports from a newer worker may carry fields this version does not know.
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in values.items() if key in names}


def _maybe(cls: Callable[..., T], data: Mapping[str, Any] | None) -> T | None:
    return None if data is None else cls(**_known(cls, data))  # type: ignore[arg-type]


def _tuple_of(cls: Callable[..., T], items: Sequence[Mapping[str, Any]]) -> tuple[T, ...]:
    out = []
    for item in items:
        values = _known(cls, item)  # type: ignore[arg-type]
        for key, value in values.items():
            if isinstance(value, list):
                values[key] = tuple(value)
        out.append(cls(**values))
    return tuple(out)
