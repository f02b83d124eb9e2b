"""Reporters: each turns a finished SessionResult into one output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..guard import guarded
from . import json as json_report

if TYPE_CHECKING:
    from ..controller import SessionResult
    from ..settings import Settings


def write_files(result: SessionResult, settings: Settings) -> None:
    data = _build(result) if settings.json or settings.html else None
    if settings.json is not None and data is not None:
        _write_json(data, settings)
    if settings.markdown is not None:
        _write_markdown(result, settings)
    if settings.html is not None and data is not None:
        _write_html(data, settings)


# One reporter failing must not cost the others their file.
@guarded(None)
def _build(result: SessionResult) -> dict[str, Any]:
    return json_report.build(result)


@guarded(None)
def _write_json(data: dict[str, Any], settings: Settings) -> None:
    assert settings.json is not None
    json_report.write(settings.json, data)


@guarded(None)
def _write_html(data: dict[str, Any], settings: Settings) -> None:
    # The HTML is drawn from the JSON report's data, as `poolchaos html REPORT.json` does.
    from . import html

    assert settings.html is not None
    html.write(settings.html, data)


@guarded(None)
def _write_markdown(result: SessionResult, settings: Settings) -> None:
    from . import markdown

    assert settings.markdown is not None
    markdown.write(settings.markdown, markdown.build(result))
