"""Diagnostic reruns, verdicts and the polluter search, run once after the session.

Kept import-free: ``child`` (a plugin of every diagnostic subprocess) lives in this package,
and a bisection step must not pay for importing the whole diagnostic machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

    from ..model import SessionResult
    from ..settings import Settings


def refine(session: pytest.Session, settings: Settings, result: SessionResult) -> str | None:
    """Rerun failed tests and search polluters; update result.records' diagnoses in place.

    Returns a line saying what ran and what it cost, or None when nothing ran."""
    from .pipeline import refine as run

    return run(session, settings, result)
