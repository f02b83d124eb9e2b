"""A rich progress bar for the diagnostic phase, on a terminal only.

Reruns and the polluter search can take a while after the summary line; on a TTY the user sees
which test and which run is going on. Piped or captured output (CI logs, pytester) stays silent.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest


class DiagnosticProgress:
    def __init__(self, config: pytest.Config, total: int) -> None:
        self.total = total
        self._progress: Any = None
        self._task: Any = None
        stream = _terminal_file(config)
        if stream is not None and total > 0:
            self._progress = _make(stream)

    def __enter__(self) -> DiagnosticProgress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("poolchaos: diagnosing", total=self.total)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    @property
    def active(self) -> bool:
        return self._progress is not None

    def show(self, nodeid: str, what: str) -> None:
        """Name the test and the run now going on."""
        if self._progress is not None:
            self._progress.update(self._task, description=f"poolchaos: {what} {nodeid}")

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)


def _terminal_file(config: pytest.Config) -> Any:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not getattr(reporter, "isatty", False):
        return None
    return getattr(getattr(reporter, "_tw", None), "_file", None)


def _make(stream: Any) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=stream, force_terminal=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)
