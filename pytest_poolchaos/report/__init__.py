"""Reporters: each turns a finished SessionResult into one output.

The terminal section is registered in every reporting process; a green run ends with its one
line, and nothing else of this package (rich included) is loaded for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .. import guard
from ..guard import guarded
from ..sanitize import safe_text
from ..settings import SETTINGS

if TYPE_CHECKING:
    from typing import Protocol

    from ..model import SessionResult
    from ..settings import Settings

    class SessionSource(Protocol):
        """Whoever holds the session's result (the controller)."""

        session: SessionResult

__all__ = ["TerminalSection", "write_files"]


class TerminalSection:
    def __init__(self, config: pytest.Config, controller: SessionSource) -> None:
        self.config = config
        self.controller = controller
        self.drawn = False  # no summary (a usage error, --no-summary): no annotations either

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        result = self.controller.session
        # Problems met after the controller closed its books (reruns, files) count too.
        result.problems = list(dict.fromkeys([*result.problems, *guard.PROBLEMS]))
        if not self._draw(terminalreporter, result):
            problem = guard.PROBLEMS[-1] if guard.PROBLEMS else "?"
            terminalreporter.write_line(f"poolchaos: could not draw the report: "
                                        f"{safe_text(problem)}")
        guard.SHOWN[0] = len(guard.PROBLEMS)
        self.drawn = True

    @guard.guarded(False)
    def _draw(self, terminalreporter: pytest.TerminalReporter, result: SessionResult) -> bool:
        from .summary import clean_line, safe

        line = clean_line(result)
        if line is not None:
            terminalreporter.write_line(safe(line, result))
            return True
        from .terminal import render, view_of  # rich and the rest load only to say something

        view = view_of(self.config, terminalreporter)
        terminalreporter.write_sep("=", "poolchaos")
        terminalreporter.write(safe(render(result, view), result, styled=True))
        return True

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # After pytest's short summary and stats line: the annotations close the output.
        if self.drawn and config.stash[SETTINGS].annotations:
            self._annotate(config.pluginmanager.get_plugin("terminalreporter"))

    @guard.guarded(None)
    def _annotate(self, terminalreporter: pytest.TerminalReporter | None) -> None:
        from .github import commands

        if terminalreporter is not None:
            for command in commands(self.controller.session):
                terminalreporter.write_line(command)



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
    from . import json as json_report

    return json_report.build(result)


@guarded(None)
def _write_json(data: dict[str, Any], settings: Settings) -> None:
    assert settings.json is not None
    from . import json as json_report

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
    from .summary import safe

    markdown.write(settings.markdown, safe(markdown.build(result), result))
