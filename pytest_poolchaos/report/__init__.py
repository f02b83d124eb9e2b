"""Reporters (interim)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..controller import SessionResult
    from ..settings import Settings


def write_files(result: SessionResult, settings: Settings) -> None:
    pass
