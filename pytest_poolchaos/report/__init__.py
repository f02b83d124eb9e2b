"""Reporters: each turns a finished SessionResult into one output."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..guard import guarded
from . import json as json_report

if TYPE_CHECKING:
    from ..model import SessionResult
    from ..settings import Settings


def write_files(result: SessionResult, settings: Settings) -> None:
    if settings.json is not None:
        _write_json(result, settings)
    if settings.markdown is not None:
        _write_markdown(result, settings)


# One reporter failing must not cost the others their file.
@guarded(None)
def _write_json(result: SessionResult, settings: Settings) -> None:
    assert settings.json is not None
    json_report.write(settings.json, json_report.build(result))


@guarded(None)
def _write_markdown(result: SessionResult, settings: Settings) -> None:
    from . import markdown

    assert settings.markdown is not None
    markdown.write(settings.markdown, markdown.build(result))
