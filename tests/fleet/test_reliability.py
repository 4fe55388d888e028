"""Plans stay correct under history and misuse (issue 18): device identity, honest statuses,
determinism."""

from __future__ import annotations

import numpy as np

from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit, PlanConfig, plan_fleet
from fleetnas.sim import generate_fleet
from fleetnas.spaces import get_space
from fleetnas.store import open_store


def sim_devices(n: int, seed: int) -> list[FleetDevice]:
    """``n`` simulated devices with budgets at the 30th and 70th percentile of their latency."""
    space = get_space("nb201")
    archs = space.sample(300, 0)
    out = []
    for s in generate_fleet(n, rng=seed):
        qs = np.percentile(s.latency(space, archs), (30, 70))
        bs = tuple(Budget(Limit(value=float(f"{q:.4g}")), None, f"q{i}") for i, q in enumerate(qs))
        out.append(FleetDevice(s.device, bs))
    return out


def _plan(db: str, fleet: Fleet, name: str, **kw) -> dict:
    config = PlanConfig(space="nb201", approach="proxy", chunk_size=64)
    with open_store(db) as store:
        return plan_fleet(fleet, config, store, name=name, **kw).plan


def test_same_names_from_another_sim_seed_never_reuse_the_first_fleets_values(help_db):
    first = Fleet("sims", sim_devices(4, seed=0), source="test")
    second = Fleet("sims", sim_devices(4, seed=1), source="test")
    assert [d.device.name for d in first] == [d.device.name for d in second]
    assert [d.device.measurer for d in first] != [d.device.measurer for d in second]
    one = _plan(help_db, first, "one")
    assert one["summary"]["ok"] == 8 and one["summary"]["violations_known"] == 0
    two = _plan(help_db, second, "two")
    assert two["summary"]["violations_known"] == 0
    assert all(e["status"] == "failed" for e in two["devices"])
    assert all("another setting" in e["reason"] for e in two["devices"])
    assert all(e["design"] is None and e["measurements"] == 0 for e in two["devices"])
