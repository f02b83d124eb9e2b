"""Writing report files: whole or not at all, with the permissions the user's umask gives.

``tempfile.mkstemp`` creates its file mode 0600, so an atomically replaced report would be
unreadable to the CI user that uploads it; the temporary file is made with ``os.open`` and
mode 0666 instead, which the umask trims as it does for every other file the run writes.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..sanitize import printable

__all__ = ["append_text", "is_step_summary", "write_text"]


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically: a reader sees the old file or the new one, never half."""
    text = printable(text)  # a report read from elsewhere may hold lone surrogates
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_text(path: Path, text: str) -> None:
    """Add ``text`` after what ``path`` holds (a file other steps of a CI job write too)."""
    text = printable(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        if handle.tell() and not text.startswith("\n"):
            handle.write("\n")
        handle.write(text)


def is_step_summary(path: Path) -> bool:
    """``path`` is GitHub Actions' job summary file, which every step of the job appends to."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return False
    try:
        return path.resolve() == Path(summary).resolve()
    except OSError:
        return False
