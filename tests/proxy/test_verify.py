"""verify_candidates: bisection counts, reuse of known values, energy, and the guarantee."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.proxy import ReplaySession, choose_design, design_codes, verify_candidates


def _session(space, archs, lat, energy=None):
    full = np.full(space.size, 1e6)
    full[design_codes(space, archs)] = lat
    e = None
    if energy is not None:
        e = np.full(space.size, 1e6)
        e[design_codes(space, archs)] = energy
    return ReplaySession(space, "t", full, e)


def test_bisection_needs_log2_measurements_on_a_monotone_front(nb201):
    n = 31
    cands = nb201.enumerate()[:n]
    lat = np.arange(n, dtype=float)
    for budget in (0.5, 7.5, 17.5, 30.5, 100.0):
        s = _session(nb201, cands, lat)
        sel = verify_candidates(nb201, cands, s, budget)
        best = int(min(n - 1, math.floor(budget)))
        assert sel.status == "ok" and sel.index == best
        assert sel.measurements <= math.ceil(math.log2(n + 1))


def test_a_good_start_and_known_values_save_measurements(nb201):
    cands = nb201.enumerate()[:31]
    lat = np.arange(31, dtype=float)
    s = _session(nb201, cands, lat)
    sel = verify_candidates(nb201, cands, s, 17.5, start=17)
    assert sel.index == 17 and sel.measurements == 2  # 17 meets, 18 does not
    again = verify_candidates(nb201, cands, s, 17.5)
    assert again.index == 17 and again.measurements <= 3 and again.reused >= 0
    assert s.cost.measurements == sel.measurements + again.measurements


def test_two_budgets_infer_each_metric_from_its_own_order(nb201):
    rng = np.random.default_rng(0)
    n = 40
    cands = nb201.enumerate()[:n]
    lat = np.sort(rng.uniform(1, 10, n))
    energy = rng.uniform(1, 10, n)
    acc = np.arange(n, dtype=float)
    s = _session(nb201, cands, lat, energy)
    sel = verify_candidates(
        nb201,
        cands,
        s,
        7.0,
        5.0,
        accuracy=acc,
        proxy_latency=lat,
        proxy_energy=energy,
        max_measurements=40,
    )
    ok = (lat <= 7.0) & (energy <= 5.0)
    assert sel.status == "ok" and sel.index == int(np.flatnonzero(ok).max())
    assert sel.measurements <= 2 * math.ceil(math.log2(n + 1)) + 2


def test_never_a_violation_whatever_the_target_order(nb201):
    rng = np.random.default_rng(1)
    cands = nb201.enumerate()[:25]
    for trial in range(30):
        lat = rng.uniform(1, 10, 25)  # not monotone in the list order at all
        budget = float(rng.uniform(0.5, 10))
        s = _session(nb201, cands, lat)
        sel = verify_candidates(nb201, cands, s, budget, max_measurements=6)
        assert sel.measurements <= 6
        if sel.status == "ok":
            assert sel.latency <= budget and lat[sel.index] == sel.latency
        else:
            measured = [st.latency for st in sel.trace]
            assert min(measured) > budget and sel.latency == min(measured), trial


def test_choose_design_rules():
    acc = np.array([90.0, 95.0, 95.0, 80.0])
    lat = np.array([5.0, 9.0, 8.0, 2.0])
    assert choose_design(acc, lat, None, 8.5) == (2, "ok")
    assert choose_design(acc, lat, None, 1.0) == (3, "infeasible")
    assert choose_design(acc[:0], lat[:0], None, 1.0) == (-1, "infeasible")
    with pytest.raises(InputError, match="energy budget"):
        choose_design(acc, lat, None, 8.5, 3.0)
