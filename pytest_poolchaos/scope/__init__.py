"""The per-test pool scope (interim: records timing only; probes land next)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ..model import Leak, LedgerEntry
from ..settings import Settings


@dataclass(frozen=True, slots=True)
class ScopeResult:
    leaks: tuple[Leak, ...] = ()
    spawned: tuple[str, ...] = ()
    mocked: bool = False
    fail_message: str | None = None


RESULT = pytest.StashKey[ScopeResult]()


class ScopeManager:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings

    def install(self) -> None:
        pass

    def uninstall(self) -> None:
        pass

    def open(self, item: pytest.Item) -> None:
        pass

    def close(self, item: pytest.Item) -> ScopeResult:
        result = ScopeResult()
        item.stash[RESULT] = result
        return result

    def result(self, item: pytest.Item) -> ScopeResult | None:
        return item.stash.get(RESULT, None)

    def outstanding(self) -> tuple[LedgerEntry, ...]:
        return ()
