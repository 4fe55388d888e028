"""A small, data-free Approach 2 problem on NAS-Bench-201 shared by the l2o tests.

Accuracy: a table built from the cells' parameter counts plus a fixed cell-dependent term (no
public data needed); latency: a device-aware network fitted on simulated devices (the simulator
prices every design); devices: simulated ones described by their latency on 10 probe designs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from fleetnas.l2o.features import DeviceSet, spec_features
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.predict import DeviceAwarePredictor, TableLookup
from fleetnas.sim import generate_fleet, latency_matrix
from fleetnas.spaces import SearchSpace, get_space

FAMILIES = ["mobile_cpu", "desktop_gpu", "server_cpu", "npu", "embedded_cpu"]


@dataclass
class Toy:
    space: SearchSpace
    objective: PredictedObjective
    probes: np.ndarray
    train: DeviceSet
    test: DeviceSet
    all_archs: np.ndarray


def sim_devices(space: SearchSpace, probes: np.ndarray, n: int, seed: int) -> DeviceSet:
    sims = generate_fleet(n, rng=seed, families=FAMILIES)
    lat = latency_matrix([s.model for s in sims], space, probes)
    return DeviceSet(
        [s.name for s in sims], probes=lat, spec=spec_features([s.device for s in sims])
    )


@pytest.fixture(scope="session")
def toy() -> Toy:
    space = get_space("nb201")
    all_archs = space.enumerate()
    params = space.params(all_archs)
    bonus = np.random.default_rng(7).normal(0, 0.05, size=len(all_archs))
    acc = TableLookup(space).fit(all_archs, 80 + 5 * np.log(params / params.min()) + bonus)
    probes = space.sample(10, 11)
    sims = generate_fleet(10, rng=1, families=FAMILIES)
    designs = np.concatenate([probes, space.sample(1200, 0)])
    lat = latency_matrix([s.model for s in sims], space, designs).T
    pred = DeviceAwarePredictor(
        space, probes=probes, hidden=(32, 32), n_members=2, epochs=8, seed=0
    ).fit(designs, lat[: len(probes)].T, lat)
    obj = PredictedObjective(space, acc, pred, n_reference=1024)
    train = DeviceSet(
        [s.name for s in sims],
        probes=lat[: len(probes)].T,
        spec=spec_features([s.device for s in sims]),
    )
    return Toy(space, obj, probes, train, sim_devices(space, probes, 4, 2), all_archs)


@pytest.fixture(scope="session")
def help_store(data_dir):
    """An in-memory store with HELP's NAS-Bench-201 latencies (27 devices) and the
    NAS-Bench-201 accuracies; tests only add artifacts to it."""
    from fleetnas.data.help import import_help
    from fleetnas.data.nats import import_nats
    from fleetnas.store import InMemoryStore

    store = InMemoryStore()
    import_help(store, data_dir, "nb201")
    import_nats(store, data_dir)
    return store
