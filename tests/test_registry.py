from __future__ import annotations

import pytest

from fleetnas.errors import FleetnasError, UnknownNameError
from fleetnas.registry import Registry


def test_registry_creates_and_lists():
    reg: Registry[int] = Registry("thing")
    reg.add("one", lambda: 1)
    reg.add("two", lambda: 2)
    assert reg.create("two") == 2
    assert reg.names() == ["one", "two"]
    assert "one" in reg


def test_registry_unknown_name_lists_choices():
    reg: Registry[int] = Registry("thing")
    reg.add("alpha", lambda: 1)
    with pytest.raises(UnknownNameError) as info:
        reg.create("beta")
    assert isinstance(info.value, FleetnasError)
    assert "unknown thing 'beta'" in str(info.value)
    assert "alpha" in str(info.value)


def test_registry_rejects_duplicates():
    reg: Registry[int] = Registry("thing")
    reg.add("a", lambda: 1)
    with pytest.raises(ValueError):
        reg.add("a", lambda: 2)
