"""The probes of one session: collected once through ``pytest_poolchaos_probe``, then taken
around every test as one list.

The built-in probes come through the same hook as a team's own (``BuiltinProbes``), so the
extension path is the one every run uses. Per test the scope pays one list comprehension of
``take()`` calls, never a pluggy call; a probe that raises is reported once and replaced by one
that does nothing, so it can neither fail a test nor cost the slow path twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from ...guard import call_each, record
from ...probe import Change, Held, Probe
from ...settings import Settings

__all__ = ["BuiltinProbes", "close", "collect", "diff", "take"]

_BROKEN = object()


class BuiltinProbes:
    """The built-in probes, registered as the ``poolchaos-probes`` plugin."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @pytest.hookimpl(trylast=True)
    def pytest_poolchaos_probe(self, config: pytest.Config) -> list[Probe]:
        from .globals import Globals
        from .leaks import CheckedOut, OpenFiles, PendingTasks
        from .project import ProjectState

        watch = self.settings.watch
        return [Globals(watch, config.rootpath), ProjectState(config.rootpath, watch),
                OpenFiles(), PendingTasks(), CheckedOut()]


class _Off(Probe):
    """Stands in for a probe that raised: takes nothing, finds nothing."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def take(self) -> None:
        return None

    def diff(self, before: Any, after: Any) -> list[Change | Held]:
        return []


def collect(config: pytest.Config) -> list[Probe]:
    found: list[Probe] = []
    for result in call_each(config.hook.pytest_poolchaos_probe, config=config):
        for probe in result if isinstance(result, (list, tuple)) else [result]:
            if callable(getattr(probe, "take", None)) and callable(getattr(probe, "diff", None)):
                found.append(probe)
            else:
                record("pytest_poolchaos_probe", TypeError(
                    f"{probe!r} is not a probe (it needs take() and diff())"))
    return found


def take(probes: list[Probe]) -> list[Any]:
    try:
        return [probe.take() for probe in probes]
    except Exception:
        return [_take_one(probes, index) for index in range(len(probes))]


def _take_one(probes: list[Probe], index: int) -> Any:
    probe = probes[index]
    try:
        return probe.take()
    except Exception as error:
        _switch_off(probes, index, "take", error)
        return _BROKEN


def diff(probes: list[Probe], before: list[Any], after: list[Any]) -> list[Change | Held]:
    found: list[Change | Held] = []
    for index, (probe, old, new) in enumerate(zip(probes, before, after, strict=False)):
        if old is new or old is _BROKEN or new is _BROKEN or _equal(old, new):
            continue
        try:
            found.extend(probe.diff(old, new))
        except Exception as error:
            _switch_off(probes, index, "diff", error)
    return found


def close(probes: Sequence[Probe]) -> None:
    for probe in probes:
        closing = getattr(probe, "close", None)
        if callable(closing):
            try:
                closing()
            except Exception as error:
                record(f"probe {_kind(probe)}: close", error)


def _switch_off(probes: list[Probe], index: int, step: str, error: Exception) -> None:
    kind = _kind(probes[index])
    record(f"probe {kind}: {step} (switched off for the rest of the session)", error)
    probes[index] = _Off(kind)


def _kind(probe: Any) -> str:
    return str(getattr(probe, "kind", "") or type(probe).__name__)


def _equal(old: Any, new: Any) -> bool:
    try:
        return bool(old == new)
    except Exception:  # snapshots of user objects may compare oddly: look closer
        return False
