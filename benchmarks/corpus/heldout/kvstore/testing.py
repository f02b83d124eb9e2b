"""An in-memory fake of the store's storage backend, for unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class FakeBackend:
    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}

    def read(self, key: str) -> Any:
        return self.rows[key]

    def write(self, key: str, value: Any) -> None:
        self.rows[key] = value

    def scan(self, prefix: str) -> Iterator[tuple[str, Any]]:
        raise NotImplementedError("scan")


def export_prefix(backend: Any, prefix: str) -> dict[str, Any]:
    return dict(backend.scan(prefix))
