"""The space registry and factory."""

from __future__ import annotations

import pytest

from fleetnas.errors import UnknownNameError
from fleetnas.spaces import SPACES, get_space, space_names
from fleetnas.spaces.fbnet import FBNetSpace
from fleetnas.spaces.nb201 import NB201Space
from fleetnas.spaces.ofa_mbv3 import OFAMobileNetV3Space


def test_builtin_spaces_are_registered() -> None:
    assert {"nb201", "fbnet", "ofa_mbv3", "ofa_mbv3_w1.0"} <= set(space_names())
    assert "nb201" in SPACES
    assert isinstance(get_space("nb201"), NB201Space)
    assert isinstance(get_space("fbnet"), FBNetSpace)
    ofa = get_space("ofa_mbv3")
    assert isinstance(ofa, OFAMobileNetV3Space) and ofa.width_mult == 1.2
    assert get_space("ofa_mbv3_w1.0").name == "ofa_mbv3_w1.0"
    assert get_space("nb201") is get_space("nb201")
    assert {get_space(n).name for n in space_names()} == set(space_names())


def test_unknown_space_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown space 'nb101'.*nb201"):
        get_space("nb101")
