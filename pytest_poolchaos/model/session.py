"""The session's own records: what crosses from the process that ran a test to the one that
reports, one record per test, and the finished session.

Loaded at start-up: plain classes with ``__slots__`` (a dataclass costs far more to define
than a green run spends on its tests), importing the values of a diagnosis only when a
payload carries one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..sanitize import scrub

if TYPE_CHECKING:
    from .values import Diagnosis, Evidence, Leak

__all__ = ["NEAR_TIMEOUT", "SessionResult", "TestPayload", "TestRecord", "WorkerSummary"]

JSON = dict[str, Any]


class TestPayload:
    """What the process that ran a test tells the reporting side about it.

    Attached to the teardown report as builtins (``PAYLOAD_ATTR``); a passing test that left
    nothing behind and had no timeout carries none at all.
    """

    __test__ = False  # not a test class, whatever pytest's collector thinks of the name
    __slots__ = ("diagnosis", "evidence", "leaks", "timeout_s")

    def __init__(self, leaks: tuple[Leak, ...] = (), timeout_s: float | None = None,
                 evidence: Evidence | None = None, diagnosis: Diagnosis | None = None) -> None:
        self.leaks = leaks
        self.timeout_s = timeout_s
        self.evidence = evidence
        self.diagnosis = diagnosis

    def __bool__(self) -> bool:
        return bool(self.leaks or self.timeout_s or self.evidence or self.diagnosis)

    def to_wire(self) -> JSON:
        out: JSON = {}
        if self.leaks:
            out["leaks"] = [leak.to_json() for leak in self.leaks]
        if self.timeout_s:
            out["timeout_s"] = self.timeout_s
        if self.evidence is not None:
            out["evidence"] = self.evidence.to_json()
        if self.diagnosis is not None:
            out["diagnosis"] = self.diagnosis.to_json()
        # The one place a payload is serialized: what leaves the process is redacted and
        # encodable (a lone surrogate in a thread name kills an xdist worker's channel).
        return scrub(out)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> TestPayload:
        from .values import Diagnosis, Evidence, Leak

        evidence, diagnosis = data.get("evidence"), data.get("diagnosis")
        return cls(
            leaks=tuple(Leak.from_json(leak) for leak in data.get("leaks", ())),
            timeout_s=data.get("timeout_s"),
            evidence=Evidence.from_json(evidence) if evidence else None,
            diagnosis=Diagnosis.from_json(diagnosis) if diagnosis else None,
        )


NEAR_TIMEOUT = 0.8  # share of the timeout a passing test may use before it is listed


class TestRecord:
    """One test as the reporting side saw it."""

    __test__ = False
    __slots__ = ("diagnosis", "duration_s", "evidence", "history", "leaks", "location",
                 "longrepr", "nodeid", "outcome", "start", "stop", "timeout_s", "when", "worker")

    def __init__(self, nodeid: str, location: tuple[str, int | None, str] | None = None,
                 outcome: str = "passed", when: str | None = None, duration_s: float = 0.0,
                 worker: str | None = None, start: float | None = None,
                 stop: float | None = None, timeout_s: float | None = None,
                 leaks: tuple[Leak, ...] = (), evidence: Evidence | None = None,
                 diagnosis: Diagnosis | None = None, longrepr: str = "") -> None:
        self.nodeid = nodeid
        self.location = location
        self.outcome = outcome
        self.when = when
        self.duration_s = duration_s
        self.worker = worker
        self.start = start
        self.stop = stop
        self.timeout_s = timeout_s
        self.leaks = leaks
        self.evidence = evidence
        self.diagnosis = diagnosis
        self.longrepr = longrepr
        #: this test in earlier recorded runs (history.stats.summarize); None when not read
        self.history: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"TestRecord({self.nodeid!r}, outcome={self.outcome!r})"

    @property
    def near_timeout(self) -> bool:
        return (self.outcome == "passed" and bool(self.timeout_s)
                and self.duration_s > NEAR_TIMEOUT * (self.timeout_s or 0))

    def take(self, payload: TestPayload) -> None:
        """Fold in what the process that ran the test said about it."""
        self.leaks = payload.leaks or self.leaks
        self.timeout_s = payload.timeout_s or self.timeout_s
        self.evidence = payload.evidence or self.evidence
        if payload.diagnosis is not None and self.outcome in ("failed", "error"):
            self.diagnosis = payload.diagnosis


class SessionResult:
    """Everything the reporters need, as plain data."""

    def __init__(self, records: dict[str, TestRecord], args: list[str], workers: int,
                 start: float, stop: float = 0.0, exitstatus: int = 0, *,
                 problems: list[str] | None = None, randomly_seed: int | None = None,
                 hanging: list[str] | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.records = records
        self.args = args
        self.workers = workers
        self.start = start
        self.stop = stop
        self.exitstatus = exitstatus
        self.problems: list[str] = problems or []
        self.randomly_seed = randomly_seed
        #: per failed nodeid: tests that overlapped it in time on other workers, most
        #: overlap first, as (nodeid, worker, overlap seconds); filled at session end.
        self.alongside: dict[str, list[tuple[str, str | None, float]]] = {}
        #: non-daemon threads still alive at session end (they hang interpreter exit), one
        #: line each naming the thread and the test that started it.
        self.hanging: list[str] = hanging or []
        #: os.environ as it was before the first test: diagnostic subprocesses start from
        #: it, so variables the tests left behind do not leak into isolated reruns.
        self.environ: dict[str, str] = environ or {}
        #: what a child process inherits, as it was before the first test (umask, ignored
        #: signals, blocked signals, resource limits; see inherited.py): a test that
        #: changed it would otherwise hand it down to every diagnostic subprocess
        self.inherited: dict[str, Any] | None = None
        #: the chaos spec the tests ran under (seed included), None when chaos was off
        self.chaos: str | None = None

    @property
    def diagnosed(self) -> list[TestRecord]:
        return [r for r in self.records.values() if r.diagnosis is not None]

    def by_category(self) -> dict[str, int]:
        from .values import Category

        counts = {category.value: 0 for category in Category}
        for record in self.diagnosed:
            assert record.diagnosis is not None
            if record.outcome in ("failed", "error"):  # not a test that passed on retry
                counts[record.diagnosis.category.value] += 1
        return counts


class WorkerSummary:
    """What a process that ran tests tells the reporting side once, at its session's end."""

    __slots__ = ("hanging", "problems")

    def __init__(self, problems: list[str] | None = None,
                 hanging: list[str] | None = None) -> None:
        self.problems = problems or []
        #: non-daemon threads that would hang this process's exit, one line each
        self.hanging = hanging or []

    def to_wire(self) -> JSON:
        return scrub({"problems": list(self.problems), "hanging": list(self.hanging)})

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> WorkerSummary:
        data = data or {}
        return cls([str(p) for p in data.get("problems", ())],
                   [str(h) for h in data.get("hanging", ())])
