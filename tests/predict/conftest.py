"""Small synthetic fleets for the predictor tests (the simulator gives latency and energy)."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.sim import energy_matrix, generate_fleet, latency_matrix
from fleetnas.spaces import get_space


@pytest.fixture(scope="session")
def nb201():
    return get_space("nb201")


@pytest.fixture(scope="session")
def sim_fleet(nb201):
    """``(archs n x 6, latency m x n, energy m x n)`` of 8 simulated devices on 1,500 designs."""
    archs = nb201.sample(1500, 0)
    devices = generate_fleet(8, rng=1, families=["mobile_cpu", "desktop_gpu", "server_cpu"])
    models = [d.model for d in devices]
    return archs, latency_matrix(models, nb201, archs), energy_matrix(models, nb201, archs)


@pytest.fixture(scope="session")
def additive_target(nb201):
    """A positive, heavy-tailed, mostly additive latency-like function of NB201 designs."""
    rng = np.random.default_rng(3)
    cost = rng.uniform(0.2, 2.0, size=(6, 5))

    def f(archs: np.ndarray) -> np.ndarray:
        a = nb201.check(archs)
        return np.exp(0.5 * cost[np.arange(6)[None, :], a].sum(axis=1) / 3.0) + 1.0

    return f
