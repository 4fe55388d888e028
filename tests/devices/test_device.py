from __future__ import annotations

import pytest

from fleetnas.devices import Device
from fleetnas.errors import InputError


def test_fingerprint_depends_on_features_not_name():
    a = Device("a", "mobile_cpu", {"cores": 4})
    b = Device("b", "mobile_cpu", {"cores": 4})
    c = Device("a", "mobile_cpu", {"cores": 8})
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_round_trip_dict():
    d = Device("pixel2", "mobile_cpu", {"cores": 8, "clock_ghz": 2.35}, measurer="table:pixel2")
    assert Device.from_dict(d.to_dict()) == d


@pytest.mark.parametrize(
    "kwargs, message",
    [({"name": ""}, "non-empty"), ({"name": "x", "family": "toaster"}, "family 'toaster'")],
)
def test_bad_device_is_rejected(kwargs, message):
    with pytest.raises(InputError, match=message):
        Device(**kwargs)


def test_measurer_kind_is_the_spec_before_its_first_colon():
    assert Device("a", measurer="table:pixel2").measurer_kind == "table"
    assert Device("b", measurer="agent:http://127.0.0.1:8765").measurer_kind == "agent"
    assert Device("c", measurer="onnxruntime").measurer_kind == "onnxruntime"
    assert Device("d").measurer_kind == ""
