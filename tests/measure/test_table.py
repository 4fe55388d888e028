"""Replaying HELP devices from the store, charged like real measurements."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.data.help import read_latencies
from fleetnas.errors import InputError, MeasurementError, UnknownNameError
from fleetnas.measure import get_measurer
from fleetnas.spaces import get_space
from fleetnas.store import open_store


@pytest.fixture(scope="module")
def help_store(data_dir):
    from fleetnas.data.help import import_help

    store = open_store("memory://")
    import_help(store, data_dir, space="nb201", devices=["pixel3", "eyeriss"])
    yield store
    store.close()


def test_table_replays_stored_values_and_charges_each_lookup(help_store, data_dir) -> None:
    nb201 = get_space("nb201")
    idx = np.array([0, 17, 4242, 15624])
    from fleetnas.spaces.nb201 import NB201Index

    archs = NB201Index.from_file(data_dir / "help/nasbench201/str_arch2idx.pt").archs_of(idx)
    truth = read_latencies(data_dir, "nb201", "pixel3")[idx]
    counts = help_store.counts()

    m = get_measurer("table:pixel3", store=help_store)
    r = m.measure(nb201, np.concatenate([archs, archs[:1]]))
    np.testing.assert_allclose(r["latency"], np.concatenate([truth, truth[:1]]))
    assert r.cost.measurements == 4 and r.cost.reused == 1
    assert r.cost.device_seconds == pytest.approx(truth.sum() / 1e3)
    assert r.units == {"latency": "ms"} and r.is_estimate == {"latency": False}

    again = m.measure(nb201, archs[:2])
    assert again.cost.measurements == 0 and again.cost.reused == 2
    assert m.total_cost.measurements == 4 and m.looked_up == 4
    assert (
        get_measurer("table:pixel3", store=help_store).measure(nb201, archs[:2]).cost.measurements
        == 2
    )
    assert help_store.counts() == counts  # nothing written back, no run opened


def test_simulated_columns_stay_estimates(help_store) -> None:
    nb201 = get_space("nb201")
    r = get_measurer("table:eyeriss", store=help_store).measure(nb201, nb201.sample(3, rng=0))
    assert r.is_estimate["latency"] is True and np.all(r["latency"] > 0)


def test_table_errors_are_clear(help_store) -> None:
    nb201 = get_space("nb201")
    with pytest.raises(UnknownNameError, match="nope"):
        get_measurer("table:nope", store=help_store)
    with pytest.raises(InputError, match="needs a store"):
        get_measurer("table:pixel3")
    m = get_measurer("table:pixel3", store=help_store)
    with pytest.raises(MeasurementError, match="no stored energy"):
        m.measure(nb201, nb201.sample(1, rng=0), ["energy"])
    assert m.total_cost.measurements == 0
