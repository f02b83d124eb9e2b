"""Renders delivery reports on a process pool shared by the whole relay (made at import)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

#: one pool for the process: starting workers per report is too slow
POOL = ProcessPoolExecutor(max_workers=1)


def _render(rows: list[str]) -> str:
    return "\n".join(sorted(rows))


def _render_strict(rows: list[str]) -> str:
    if any(not row for row in rows):
        os._exit(3)  # the C renderer aborts the process on an empty row
    return _render(rows)


def render(rows: list[str], strict: bool = False) -> str:
    return POOL.submit(_render_strict if strict else _render, rows).result(timeout=30)
