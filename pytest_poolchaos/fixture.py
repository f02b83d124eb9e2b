"""The pool_scope fixture (interim)."""

from __future__ import annotations

import pytest


@pytest.fixture
def pool_scope() -> object:
    return object()
