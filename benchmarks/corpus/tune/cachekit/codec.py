"""Codecs: the default one comes from the project's top-level ``serializers`` module."""

from __future__ import annotations

from typing import Any


def default_codec() -> Any:
    import serializers

    return serializers.JSONSerializer()


def roundtrip(value: Any) -> Any:
    codec = default_codec()
    return codec.loads(codec.dumps(value))
