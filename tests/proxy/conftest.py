"""Fixtures of the Approach 1 tests: small hand-built problems on NAS-Bench-201 designs (no data
needed), simulated fleets, and a store with a few replayed HELP devices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from fleetnas.proxy import ProxyProblem, ReplaySession, design_codes
from fleetnas.spaces import SearchSpace, get_space


@pytest.fixture(scope="session")
def nb201() -> SearchSpace:
    return get_space("nb201")


@dataclass
class Toy:
    """``k`` candidate designs with chosen accuracy, proxy latency and target latency."""

    space: SearchSpace
    problem: ProxyProblem
    target: np.ndarray  # full-space target latency (size values)

    def session(self, energy: np.ndarray | None = None) -> ReplaySession:
        return ReplaySession(self.space, "toy-target", self.target, energy)


def _make_toy(space: SearchSpace, acc, proxy_lat, target_lat, energy=None) -> Toy:
    """Candidates = the first ``k`` designs of the space; every other design is slower than all
    of them on the target (it is never a candidate anyway)."""
    k = len(acc)
    archs = space.enumerate()[:k]
    problem = ProxyProblem(
        space,
        archs,
        np.asarray(acc, float),
        np.asarray(proxy_lat, float),
        None if energy is None else np.asarray(energy, float),
    )
    full = np.full(space.size, 1e6)
    full[design_codes(space, archs)] = target_lat
    return Toy(space, problem, full)


@pytest.fixture
def convex_toy(nb201) -> Toy:
    """Ten designs on a concave accuracy/latency front; the target is 3x slower plus 1 ms."""
    lat = np.arange(1.0, 11.0)
    acc = 100 * np.sqrt(lat / 10)
    return _make_toy(nb201, acc, lat, 3 * lat + 1)


@pytest.fixture
def make_toy(nb201):
    """``make_toy(acc, proxy_lat, target_lat)``: a :class:`Toy` on the first designs of NB201."""
    return lambda acc, lat, target, energy=None: _make_toy(nb201, acc, lat, target, energy)


@dataclass
class SimWorld:
    """Seven simulated devices on a fixed subset of NB201 designs (``archs``, n x 6): latency
    and energy (7 x n) and an accuracy-like score (n: log parameter count plus a seeded term).
    Designs outside the subset are never candidates; :meth:`full` gives them a huge value."""

    space: SearchSpace
    devices: list
    archs: np.ndarray
    lat: np.ndarray
    en: np.ndarray
    acc: np.ndarray
    acc_all: np.ndarray

    def accuracy(self, archs: np.ndarray) -> np.ndarray:
        """The accuracy-like score of any design (defined on the whole space)."""
        return self.acc_all[design_codes(self.space, archs)]

    def full(self, values: np.ndarray, fill: float = 1e6) -> np.ndarray:
        out = np.full(self.space.size, fill)
        out[design_codes(self.space, self.archs)] = values
        return out

    def fn(self, values: np.ndarray):
        """A metric callable over the subset (full-space lookup)."""
        return _lookup(self.space, self.full(values))


@pytest.fixture(scope="session")
def sim_world(nb201) -> SimWorld:
    from fleetnas.proxy import spread_designs
    from fleetnas.sim import energy_matrix, generate_fleet, latency_matrix

    archs = spread_designs(nb201, 1200, seed=0)
    devs = generate_fleet(
        7, rng=3, families=["mobile_cpu", "desktop_gpu", "server_cpu", "embedded_cpu"]
    )
    models = [d.model for d in devs]
    lat = latency_matrix(models, nb201, archs)
    en = energy_matrix(models, nb201, archs)
    every = nb201.enumerate()
    bonus = np.random.default_rng(5).normal(0, 0.3, len(every))
    acc_all = 80 + 3 * np.log10(nb201.params(every)) + bonus
    acc = acc_all[design_codes(nb201, archs)]
    return SimWorld(nb201, devs, archs, lat, en, acc, acc_all)


def _lookup(space: SearchSpace, values: np.ndarray):
    vals = np.asarray(values, dtype=float)
    return lambda archs: vals[design_codes(space, archs)]


@pytest.fixture(scope="session")
def lookup():
    """``lookup(space, values)``: a metric callable reading ``size`` values by design code."""
    return _lookup


@pytest.fixture(scope="module")
def help_store(data_dir):
    """In-memory store with NATS accuracies and six HELP devices of NB201."""
    from fleetnas.data import import_help, import_nats
    from fleetnas.store import open_store

    store = open_store("memory://")
    import_help(
        store,
        data_dir,
        "nb201",
        ["pixel3", "raspi4", "gold_6226", "silver_4210r", "titan_rtx_32", "fpga"],
    )
    import_nats(store, data_dir, ["cifar10"])
    yield store
    store.close()
