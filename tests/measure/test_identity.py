"""Device identity: a measurer never reuses or mixes stored values of another setting that
carries the same device name (issue 18, case 1)."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import IdentityError
from fleetnas.measure import get_measurer
from fleetnas.sim import generate_fleet
from fleetnas.spaces import get_space
from fleetnas.store import MeasurementBatch, open_store

_MODELS = [s.device.measurer for s in generate_fleet(2, rng=0)]
SPEC = f"{_MODELS[0]},name=phone"
OTHER = f"{_MODELS[1]},name=phone"


@pytest.fixture
def store(tmp_path):
    with open_store(str(tmp_path / "s.db")) as s:
        yield s


def test_same_identity_reuses_stored_values_for_free(store):
    space = get_space("nb201")
    archs = space.sample(5, 0)
    first = get_measurer(SPEC, store).measure(space, archs)
    again = get_measurer(SPEC, store)
    second = again.measure(space, archs)
    assert first.cost.measurements == 5 and second.cost.measurements == 0
    assert second.cost.reused == 5
    np.testing.assert_allclose(second["latency"], first["latency"])
    assert set(store.device_identities("phone")) == {again.identity_key}


@pytest.mark.parametrize("other", [OTHER, SPEC + ",noise=0.1,seed=3"], ids=["model", "noise"])
def test_another_setting_under_the_same_name_is_refused(store, other):
    space = get_space("nb201")
    archs = space.sample(5, 0)
    get_measurer(SPEC, store).measure(space, archs)
    imposter = get_measurer(other, store)
    with pytest.raises(IdentityError, match=r"device 'phone'.*holds 5 measurements.*differ"):
        imposter.measure(space, archs)
    with pytest.raises(IdentityError):
        imposter.measure(space, space.sample(3, 9))  # new designs would mix the store too
    assert sum(store.device_identities("phone").values()) == 5


def test_identity_names_the_fields_that_differ(store):
    space = get_space("nb201")
    get_measurer(SPEC, store).measure(space, space.sample(2, 0))
    with pytest.raises(IdentityError, match=r"\(device, model differ\)"):
        get_measurer(OTHER, store).measure(space, space.sample(2, 0))


def test_values_without_identity_are_not_reused(store):
    space = get_space("nb201")
    archs = space.sample(3, 0)
    with store.run("import") as run:
        run.add_measurements(MeasurementBatch(space, archs, "phone", "latency", [1.0, 2, 3], "ms"))
    with pytest.raises(IdentityError, match="without an identity"):
        get_measurer(SPEC, store).measure(space, archs)


def test_table_replay_refuses_a_mixed_device(store):
    space = get_space("nb201")
    archs = space.sample(3, 0)
    with store.run("import") as run:
        run.add_measurements(MeasurementBatch(space, archs, "phone", "latency", [1.0, 2, 3], "ms"))
    table = get_measurer("table:phone", store)
    assert table.measure(space, archs).cost.measurements == 3
    with store.run("measure") as run:
        run.add_measurements(
            MeasurementBatch(space, archs, "phone", "latency", [5.0, 6, 7], "ms", identity="k")
        )
    with pytest.raises(IdentityError, match="come from 2 settings"):
        get_measurer("table:phone", store).measure(space, archs)


def test_data_verify_finds_a_mixed_device_and_exits_non_zero(tmp_path, capsys):
    from fleetnas.cli.main import main
    from fleetnas.store.verify import mixed_devices

    db = str(tmp_path / "v.db")
    space = get_space("nb201")
    with open_store(db) as s:
        get_measurer(SPEC, s).measure(space, space.sample(4, 0))
        get_measurer(OTHER.replace("name=phone", "name=tablet"), s).measure(
            space, space.sample(2, 0)
        )
    assert main(["data", "verify", "--db", db, "--store-only"]) == 0
    with open_store(db) as s, s.run("import") as run:  # an import under the phone's name
        run.add_measurements(
            MeasurementBatch(space, space.sample(3, 5), "phone", "latency", [1.0, 2, 3], "ms")
        )
    with open_store(db) as s:
        rows = mixed_devices(s)
    assert [(r["device"], r["identities"], r["rows"]) for r in rows] == [("phone", 2, 7)]
    capsys.readouterr()
    assert main(["data", "verify", "--db", db, "--store-only"]) == 1
    out = capsys.readouterr().out
    assert "1 devices hold values of more than one setting" in " ".join(out.split())
