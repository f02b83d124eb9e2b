"""Message templates, imported on first use (they pull in the formatting helpers)."""

from __future__ import annotations

TEMPLATES = {"alert": "[{host}] {text}", "digest": "{count} events today"}


def render(name: str, **fields: object) -> str:
    return TEMPLATES[name].format(**fields)
