from __future__ import annotations

from pathlib import Path


def export_csv(path: Path, rows: list[tuple[str, float]]) -> Path:
    with open(path, "w") as out:  # the platform's locale picks the encoding
        for name, value in rows:
            out.write(f"{name},{value}\n")
    return path
