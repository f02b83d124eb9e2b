"""``model.frozen`` behaves as ``@dataclass(frozen=True, slots=True)`` does, for every use the
plugin makes of its values: equality, hashing, repr, immutability, ``replace``, ``fields``,
pickling. Each check runs against a real frozen dataclass of the same shape."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass, field, fields, replace
from typing import Any

import pytest

from pytest_poolchaos.model.frozen import frozen


@frozen
class Made:
    kind: str
    count: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    note: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Reference:
    kind: str
    count: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    note: str = field(default="", compare=False, repr=False)


@pytest.mark.parametrize("cls", [Made, Reference])
def test_equality_by_compared_fields_and_class(cls):
    assert cls("a", 1) == cls("a", 1)
    assert cls("a", 1, note="x") == cls("a", 1, note="y")  # compare=False
    assert cls("a", 1) != cls("a", 2)
    assert cls("a", 1).__eq__(("a", 1)) is NotImplemented


def test_equality_and_hash_agree_with_a_dataclass():
    made, reference = Made("a", 3, note="n"), Reference("a", 3, note="n")
    assert repr(made).replace("Made", "Reference") == repr(reference)
    # a dict field makes both unhashable; without one both hash their compared fields
    with pytest.raises(TypeError):
        hash(made)
    with pytest.raises(TypeError):
        hash(reference)

    @frozen
    class Point:
        x: int
        y: int

    @dataclass(frozen=True, slots=True)
    class ReferencePoint:
        x: int
        y: int

    assert hash(Point(1, 2)) == hash(ReferencePoint(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2


@pytest.mark.parametrize("cls", [Made, Reference])
def test_a_set_field_cannot_be_assigned_or_deleted(cls):
    value = cls("a")
    with pytest.raises(FrozenInstanceError):
        value.kind = "b"
    with pytest.raises(FrozenInstanceError):
        del value.kind
    assert value.kind == "a"


@pytest.mark.parametrize("cls", [Made, Reference])
def test_replace_fields_and_pickle_work(cls):
    value = cls("a", 2, {"k": 1})
    assert replace(value, count=5) == cls("a", 5, {"k": 1})
    assert [f.name for f in fields(value)] == ["kind", "count", "extra", "note"]
    assert dataclasses.is_dataclass(value)
    assert pickle.loads(pickle.dumps(value)) == value
    assert not hasattr(value, "__dict__")  # slotted


def test_only_init_is_compiled_per_class():
    # the point of frozen: every class shares one eq, hash, repr, setattr and delattr
    @frozen
    class Other:
        name: str

    for method in ("__eq__", "__hash__", "__repr__", "__setattr__", "__delattr__"):
        assert getattr(Made, method) is getattr(Other, method), method
    assert Made.__init__ is not Other.__init__
