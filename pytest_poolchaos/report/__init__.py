"""Reporters: each turns a finished SessionResult into one output."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import json as json_report

if TYPE_CHECKING:
    from ..controller import SessionResult
    from ..settings import Settings


def write_files(result: SessionResult, settings: Settings) -> None:
    if settings.json is not None:
        json_report.write(settings.json, json_report.build(result))
