"""The project's serializers (a top-level module, imported lazily by cachekit.codec)."""

from __future__ import annotations

import json
from typing import Any


class JSONSerializer:
    def dumps(self, value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    def loads(self, text: str) -> Any:
        return json.loads(text)
