"""Diagnostic reruns and the polluter search (interim: nothing runs yet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..controller import SessionResult
    from ..settings import Settings


def refine(session: pytest.Session, settings: Settings, result: SessionResult) -> None:
    """Rerun failed tests and search polluters; update result.records' diagnoses in place."""
