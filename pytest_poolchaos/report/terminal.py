"""Terminal section (interim)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..controller import ChaosController


class TerminalSection:
    def __init__(self, config: pytest.Config, controller: ChaosController) -> None:
        self.config = config
        self.controller = controller

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for record in self.controller.session.diagnosed:
            assert record.diagnosis is not None
            category = record.diagnosis.category.value
            terminalreporter.write_line(f"poolchaos: {record.nodeid} {category}")
