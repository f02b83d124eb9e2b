"""Exports: CSV files, summary lines, rate tables."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ExportConfig:
    def __init__(self, max_rows: int = 1000, compress: bool = False) -> None:
        self.max_rows = max_rows
        self.compress = compress

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ExportConfig:
        config = cls()
        config.max_row = raw.get("max_rows", config.max_rows)
        config.compress = raw.get("compress", config.compress)
        return config


def summary_line(report: dict[str, Any]) -> str:
    return f"{report['title']}: {report['rows']} rows in {report['elapsed_ms']} ms"


def format_row(values: Iterable[Any], width: int) -> str:
    return " | ".join(str(value).ljust(width) for value in values)


def format_table(rows: list[list[Any]], width: int = 8) -> str:
    return "\n".join(format_row(width, row) for row in rows)  # type: ignore[arg-type]


def stream_rows(reader: Any) -> list[bytes]:
    """Read a CSV stream chunk by chunk until the reader returns b''."""
    rows: list[bytes] = []
    while True:
        chunk = reader.read(4096)
        if chunk == b"":
            return rows
        rows.extend(line for line in chunk.split(b"\n") if line)


def export_deadline(settings: Any) -> float:
    return time.monotonic() + settings.export_timeout


def write_report(name: str, lines: list[str]) -> Path:
    path = Path(name)
    path.write_text("\n".join(lines) + "\n")
    return path


def load_rates(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
