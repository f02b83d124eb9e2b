"""The pollution ledger: which earlier test left which global change in effect.

One entry per (kind, key). ``before`` stays the value from before the first unrestored change;
``nodeid`` and ``after`` follow the latest test that changed it. A later test that puts the
original value back closes the entry. Failures are checked against what is open (the
``config-pollution`` rules read it), and the polluter search starts from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...model import LedgerEntry
from .globals import Change

_LIMIT = 500  # a suite that leaks on every test must not grow this without bound


class Ledger:
    def __init__(self) -> None:
        self._open: dict[tuple[str, str], LedgerEntry] = {}

    def record(self, nodeid: str, changes: Iterable[Change]) -> None:
        for change in changes:
            slot = (change.kind, change.key)
            entry = self._open.get(slot)
            before = entry.before if entry is not None else change.before
            if entry is not None and change.after == entry.before:
                del self._open[slot]  # put back as it was before anyone changed it
                continue
            if entry is None and len(self._open) >= _LIMIT:
                continue
            self._open.pop(slot, None)  # re-insert: the order is the order of last change
            self._open[slot] = _entry(nodeid, change.kind, change.key, before,
                                           change.after, change.fix)

    def outstanding(self) -> tuple[LedgerEntry, ...]:
        """Open entries, most recent change last."""
        return tuple(self._open.values())


def _entry(nodeid: str, kind: str, key: str, before: str | None, after: str | None,
           fix: str) -> LedgerEntry:
    from ...model import LedgerEntry

    return LedgerEntry(nodeid, kind, key, before, after, fix)
