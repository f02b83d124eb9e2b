"""GitHub Actions workflow commands: one ``::error`` annotation per diagnosed failure.

GitHub reads them from the job's log and pins them to the test's line in the pull request.
(The module is not called ``annotations``: ``from __future__ import annotations`` in the
package would shadow it.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import summary

if TYPE_CHECKING:
    from ..model import Diagnosis, SessionResult, TestRecord

__all__ = ["command", "commands", "escape_data", "escape_property"]


def escape_data(text: str) -> str:
    """Escape a command's message as the runner expects (``%`` first, or it escapes twice)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Property values additionally may not contain the separators ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def commands(result: SessionResult) -> list[str]:
    return [command(record, diagnosis, result) for record, diagnosis in summary.failures(result)]


def command(record: TestRecord, diagnosis: Diagnosis, result: SessionResult) -> str:
    path, line = _place(record)
    props = [f"file={escape_property(path)}"]
    if line is not None:
        props.append(f"line={line}")
    props.append(f"title={escape_property(f'poolchaos {diagnosis.category.value}')}")
    message = summary.safe(_message(record, diagnosis), result)
    return f"::error {','.join(props)}::{escape_data(message)}"


def _place(record: TestRecord) -> tuple[str, int | None]:
    # pytest's locations count lines from 0, GitHub's from 1.
    if record.location is not None:
        path, line, _ = record.location
        return path, None if line is None else line + 1
    return record.nodeid.split("::", 1)[0], None


def _message(record: TestRecord, diagnosis: Diagnosis) -> str:
    lines = [f"{record.nodeid}: {diagnosis.category.value} "
             f"(confidence {diagnosis.confidence:.2f}, {summary.short_verdict(diagnosis)})"]
    if diagnosis.polluter:
        lines.append(f"polluter: {diagnosis.polluter}")
    lines += diagnosis.reasons[:3]
    lines += [f"fix: {s.text}" for s in diagnosis.suggestions[:2]]
    return "\n".join(lines)
