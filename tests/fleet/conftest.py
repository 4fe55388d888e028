"""Fixtures of the fleet tests: a store with HELP's NAS-Bench-201 latencies and accuracies, and
small fleets of replayed, simulated, unmeasurable and unreachable devices."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fleetnas.devices import Device
from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit
from fleetnas.sim import generate_fleet
from fleetnas.spaces import get_space
from fleetnas.store import Store, open_store


@pytest.fixture(scope="session")
def help_db_master(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store with HELP NAS-Bench-201 latencies, NAS-Bench-201 accuracies and two
    small optimizer networks (:func:`_train_optimizers`)."""
    from fleetnas.data import import_all

    path = tmp_path_factory.mktemp("help-db") / "help.db"
    with open_store(str(path)) as store:
        import_all(store, data_dir, parts=["help-nasbench201", "nats"])
        _train_optimizers(store)
    return path


def _train_optimizers(store: Store) -> None:
    """Two small Approach 2 optimizers: ``tiny`` reads probe latencies (the default), and
    ``tiny-spec`` reads spec features only (network and latency predictor), so it serves
    devices that cannot be measured."""
    from fleetnas.data import reference_archs
    from fleetnas.l2o.train import (
        TrainConfig,
        default_devices,
        store_training_data,
        train_optimizer,
    )
    from fleetnas.predict import DeviceAwarePredictor

    small = {"synthetic": 12, "epochs": 10, "n_lambda": 12, "hidden": (64, 64), "seed": 0}
    train_optimizer(store, TrainConfig(space="nb201", name="tiny", predictor_epochs=4, **small))
    space = get_space("nb201")
    probes = reference_archs(store, space)
    archs, values, real = store_training_data(store, space, default_devices(space), probes)
    rows = np.random.default_rng(0).choice(len(archs), 3000, replace=False)
    spec = DeviceAwarePredictor(
        space, probes=probes, features="spec", hidden=(64, 64), n_members=2, epochs=4, seed=0
    )
    spec.fit(archs[rows], real.spec, values[rows]).save(store, "tiny-spec/latency")
    train_optimizer(
        store,
        TrainConfig(
            space="nb201",
            name="tiny-spec",
            features="spec",
            latency_predictor="tiny-spec/latency",
            **small,
        ),
    )


@pytest.fixture
def help_db(help_db_master: Path, tmp_path: Path) -> str:
    """A fresh copy of the HELP store for one test (its URL)."""
    path = tmp_path / "store.db"
    shutil.copy(help_db_master, path)
    return f"sqlite:///{path}"


def budgets(*ms: float) -> tuple[Budget, ...]:
    return tuple(Budget(Limit(value=float(v)), None, f"{v:g}ms") for v in ms)


def sim_devices(
    n: int, seed: int = 0, quantiles: tuple[float, ...] = (30, 70)
) -> list[FleetDevice]:
    """``n`` simulated devices with absolute budgets at quantiles of their NB201 latencies."""
    space = get_space("nb201")
    archs = space.sample(300, 0)
    out = []
    for s in generate_fleet(n, rng=seed):
        lat = s.latency(space, archs)
        qs = np.percentile(lat, quantiles)
        out.append(FleetDevice(s.device, budgets(*(float(f"{q:.4g}") for q in qs))))
    return out


def _mixed_fleet(n_sim: int = 3, blind: bool = False) -> Fleet:
    """Two replayed HELP devices, ``n_sim`` simulated ones, (with ``blind``) one that cannot be
    measured, and one behind an agent that is gone."""
    from fleetnas.devices.catalog import get_catalog_device

    devs = [
        FleetDevice(get_catalog_device("pixel2"), budgets(12, 15)),
        FleetDevice(get_catalog_device("raspi4"), budgets(16)),
        *sim_devices(n_sim),
        *([_blind()] if blind else []),
        FleetDevice(
            Device(
                "gone", "embedded_cpu", {"cores": 4}, measurer="agent:http://127.0.0.1:9#retries=0"
            ),
            budgets(10),
        ),
    ]
    return Fleet("mixed", devs, source="test")


@pytest.fixture
def mixed_fleet() -> Callable[..., Fleet]:
    """Factory of :func:`_mixed_fleet` fleets."""
    return _mixed_fleet


def _blind() -> FleetDevice:
    """A phone known by its spec sheet only (no measurer)."""
    from fleetnas.devices.catalog import catalog_features

    feats = catalog_features("pixel3")
    return FleetDevice(Device("blind-phone", "mobile_cpu", feats, measurer=None), budgets(9, 14))


@pytest.fixture
def one_device_fleet(tmp_path: Path) -> Callable[[str, float], Path]:
    """``make(measurer, budget_ms)``: a fleet file with one device ``phone`` measured by
    ``measurer`` under one latency budget."""
    import yaml

    def make(measurer: str, budget: float) -> Path:
        path = tmp_path / "fleet.yaml"
        doc = {"devices": [{"name": "phone", "measurer": measurer, "budgets": [budget]}]}
        path.write_text(yaml.safe_dump(doc))
        return path

    return make
