"""Build Evidence from a failed phase (interim: exception chain and message only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .model import Evidence, ExceptionRecord, TimeoutInfo

if TYPE_CHECKING:
    from .scope import ScopeManager


class ComparisonSlot:
    def __init__(self) -> None:
        self.last: tuple[str, object, object] | None = None

    def record(self, op: str, left: object, right: object) -> None:
        self.last = (op, left, right)

    def clear(self) -> None:
        self.last = None


def from_call(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
              comparisons: ComparisonSlot, scope: ScopeManager, worker: str | None) -> Evidence:
    exceptions: list[ExceptionRecord] = []
    if call.excinfo is not None:
        exc: BaseException | None = call.excinfo.value
        while exc is not None and len(exceptions) < 10:
            mro = tuple(f"{k.__module__}.{k.__qualname__}" for k in type(exc).__mro__)
            exceptions.append(ExceptionRecord(mro[0], mro, str(exc)))
            exc = exc.__cause__ or exc.__context__
    crash = getattr(report.longrepr, "reprcrash", None)
    return Evidence(nodeid=item.nodeid, when=report.when,
                    outcome="failed" if report.when == "call" else "error",
                    message=str(crash.message) if crash else str(report.longrepr),
                    exceptions=tuple(exceptions), worker=worker,
                    pollution=scope.outstanding())


def timeout_info(item: pytest.Item) -> TimeoutInfo | None:
    return None
