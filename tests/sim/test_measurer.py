"""The ``sim`` measurer: spec strings, noise with a seed, cost counting, stored as estimates."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.measure import get_measurer
from fleetnas.sim import METHOD, SimDevice, SimMeasurer, generate_fleet
from fleetnas.store import open_store


@pytest.fixture(scope="module")
def sim_device() -> SimDevice:
    return generate_fleet(1, rng=21, families=["mobile_cpu"])[0]


def test_spec_string_rebuilds_the_device(sim_device: SimDevice, nb201, nb201_archs) -> None:
    archs = nb201_archs[:50]
    m = get_measurer(sim_device.device.measurer)
    assert isinstance(m, SimMeasurer) and m.model == sim_device.model
    res = m.measure(nb201, archs, ("latency", "energy"))
    np.testing.assert_array_equal(res["latency"], sim_device.latency(nb201, archs))
    np.testing.assert_array_equal(res["energy"], sim_device.energy(nb201, archs))
    assert res.units == {"latency": "ms", "energy": "mJ"}
    assert res.is_estimate == {"latency": True, "energy": True}
    by_device = get_measurer("sim", device=sim_device.device)
    assert by_device.model == sim_device.model and by_device.device == sim_device.device
    assert SimDevice.from_device(sim_device.device) == sim_device


def test_cost_counts_simulated_measurements(sim_device: SimDevice, nb201, nb201_archs) -> None:
    archs = nb201_archs[:40]
    m = get_measurer("sim", device=sim_device.device, repeats=3)
    res = m.measure(nb201, archs)
    truth = sim_device.latency(nb201, archs)
    assert res.cost.measurements == 40
    assert res.cost.device_seconds == pytest.approx(truth.sum() * 1e-3 * 3)
    m.measure(nb201, archs[:10])
    assert m.total_cost.measurements == 50


def test_noise_is_seeded_and_centred(sim_device: SimDevice, nb201, nb201_archs) -> None:
    archs = nb201_archs[:300]
    spec = f"{sim_device.device.measurer},noise=0.1,seed=4,repeats=5"
    a = get_measurer(spec).measure(nb201, archs)
    b = get_measurer(spec).measure(nb201, archs)
    c = get_measurer(spec.replace("seed=4", "seed=5")).measure(nb201, archs)
    truth = sim_device.latency(nb201, archs)
    np.testing.assert_array_equal(a["latency"], b["latency"])
    assert not np.array_equal(a["latency"], c["latency"])
    ratio = np.log(a["latency"] / truth)
    assert abs(ratio.mean()) < 0.02 and 0.02 < ratio.std() < 0.1
    stats = a.stats["latency"]
    assert np.all(stats["min"] <= a["latency"]) and np.all(a["latency"] <= stats["p90"])
    assert np.all(stats["n"] == 5)


def test_values_are_stored_as_estimates_and_reused(
    sim_device: SimDevice, nb201, nb201_archs
) -> None:
    archs = nb201_archs[:20]
    with open_store("memory://") as store:
        m = get_measurer("sim", store=store, device=sim_device.device)
        first = m.measure(nb201, archs, ("latency", "energy"))
        frame = store.measurements_frame(nb201, [sim_device.name])
        assert set(frame["metric"]) == {"latency", "energy"}
        assert frame["is_estimate"].all() and set(frame["method"]) == {METHOD}
        again = m.measure(nb201, archs, ("latency", "energy"))
        assert again.cost.reused == 20 and again.cost.measurements == 0
        np.testing.assert_allclose(again["latency"], first["latency"])
        assert store.get_device(sim_device.name).measurer == sim_device.device.measurer


def test_bad_specs_raise_input_errors(sim_device: SimDevice) -> None:
    with pytest.raises(InputError, match="needs a model"):
        get_measurer("sim")
    with pytest.raises(InputError, match="volume"):
        get_measurer("sim", device=sim_device.device, volume=11)
    with pytest.raises(InputError, match="noise"):
        get_measurer(f"{sim_device.device.measurer},noise=-1")
    with pytest.raises(InputError, match="flux_capacitor"):
        get_measurer(f"{sim_device.device.measurer},flux_capacitor=1")
    with pytest.raises(InputError, match="not a simulated device"):
        SimDevice.from_device(sim_device.device.__class__(name="x", measurer="onnxruntime"))
