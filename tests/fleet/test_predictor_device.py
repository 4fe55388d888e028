"""A fleet device priced by its own fitted latency predictor (``measurer:
predictor:NAME[,bound=upper]``, the model ``fleetnas predict fit`` stores): the measurer, a plan
end to end, and the one-line refusals of an unknown predictor or bound."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.cli.main import main
from fleetnas.devices import Device
from fleetnas.measure import get_measurer
from fleetnas.predict.base import Persistable
from fleetnas.spaces import get_space
from fleetnas.store import open_store

POOL = ["1080ti_1", "titanx_32", "gold_6240", "silver_4114", "samsung_a50", "essential_ph_1"]
NAME = "my-pixel3/nb201/latency"


@pytest.fixture(scope="module")
def fitted(data_dir, tmp_path_factory) -> str:
    """A store with HELP's pool devices and a user's table-backed device whose own few-shot
    predictor ``predict fit`` built from 20 measurements."""
    from fleetnas.data import import_help
    from fleetnas.predict.own_device import fleet_predictor

    db = str(tmp_path_factory.mktemp("predictor") / "s.db")
    with open_store(db) as store:
        import_help(store, data_dir, "nb201", [*POOL, "pixel3"])
        store.add_device(Device("my-pixel3", family="mobile_cpu", measurer="table:pixel3"))
        fleet_predictor(store, get_space("nb201"), pool=POOL, epochs=2, max_designs=1500)
    args = ["predict", "fit", "--db", db, "--device", "my-pixel3", "--space", "nb201"]
    assert main([*args, "--budget-measurements", "20", "--json"]) == 0
    return db


def test_the_predictor_measurer_prices_designs_by_the_fitted_model(fitted):
    sp = get_space("nb201")
    x = sp.sample(5, 1)
    with open_store(fitted) as store:
        model = Persistable.load(store, NAME, sp)
        before = store.counts()
        res = get_measurer(f"predictor:{NAME}", store, Device("phone")).measure(
            sp, np.concatenate([x, x[:2]]), ("latency",)
        )
        upper = get_measurer(f"predictor:{NAME},bound=upper", store, Device("p2")).measure(sp, x)
        assert store.counts() == before  # estimates, never written
    np.testing.assert_allclose(res["latency"][:5], model.predict(x))
    np.testing.assert_allclose(upper["latency"], model.predict_interval(x)["upper"])
    assert (upper["latency"] > res["latency"][:5]).all()
    assert res.is_estimate["latency"] and res.cost.measurements == 5 and res.cost.reused == 2


def test_plan_prices_a_device_by_its_fitted_predictor(fitted, tmp_path, capsys, one_device_fleet):
    sp = get_space("nb201")
    with open_store(fitted) as store:
        model = Persistable.load(store, NAME, sp)
    spec = f"predictor:{NAME},bound=upper"
    budget = round(float(np.quantile(model.predict_interval(sp.sample(300, 0))["upper"], 0.5)), 3)
    plan = tmp_path / "plan.json"
    args = ["plan", str(one_device_fleet(spec, budget)), "--space", "nb201", "--approach", "proxy"]
    assert main([*args, "--executor", "serial", "--db", fitted, "--out", str(plan), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["ok"] == 1
    (entry,) = json.loads(plan.read_text())["devices"]
    assert entry["measurer"] == spec and entry["status"] == "ok"
    priced = float(model.predict_interval(sp.parse(entry["design"])[None, :])["upper"][0])
    assert entry["measured"]["latency_ms"] == pytest.approx(priced)
    assert priced <= budget and entry["measurements"] >= 1


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("predictor:nope", "no stored latency predictor 'nope'"),
        (f"predictor:{NAME},bound=max", "bound='max' is not one of mean, upper"),
        ("predictor:nb201/device-aware", "is a fleet predictor that needs a device's probe"),
    ],
)
def test_a_bad_predictor_is_one_line_exit_2_and_plans_nothing(
    fitted, tmp_path, capsys, spec, needle, one_device_fleet
):
    plan = tmp_path / "plan.json"
    with open_store(fitted) as store:
        before = store.counts(), len(store.list_runs())
    args = ["plan", str(one_device_fleet(spec, 1.0)), "--space", "nb201", "--approach", "proxy"]
    assert main([*args, "--executor", "serial", "--db", fitted, "--out", str(plan)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not plan.exists()
    with open_store(fitted) as store:
        assert (store.counts(), len(store.list_runs())) == before
