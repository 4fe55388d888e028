"""Designs a target cannot measure: recorded, skipped, never charged twice, never inferred from."""

from __future__ import annotations

import numpy as np

from fleetnas.devices import Device
from fleetnas.proxy import (
    ProxyEntry,
    ProxyPool,
    ReplaySession,
    design_codes,
    guided_search,
    verify_candidates,
)


def _full(space, archs, lat):
    full = np.full(space.size, 1e6)
    full[design_codes(space, archs)] = lat
    return full


def test_a_replayed_gap_is_unmeasurable_free_and_remembered(nb201):
    archs = nb201.enumerate()[:5]
    full = _full(nb201, archs, [1.0, 2.0, 3.0, 4.0, 5.0])
    full[design_codes(nb201, archs[2:3])] = np.nan
    s = ReplaySession(nb201, "t", full)
    v = s.measure(archs)
    assert np.isnan(v[2, 0]) and np.allclose(v[[0, 1, 3, 4], 0], [1, 2, 4, 5])
    assert s.cost.measurements == 4
    assert len(s.unmeasurable) == 1 and (s.unmeasurable[0] == archs[2]).all()
    assert len(s.measured[0]) == 4
    known, _ = s.lookup(archs[2:3])
    assert known[0]
    s.measure(archs[2:3])
    assert s.cost.measurements == 4


def test_verify_skips_an_unmeasurable_design_without_inferring_from_it(nb201):
    cands = nb201.enumerate()[:15]
    lat = np.arange(15, dtype=float)
    full = _full(nb201, cands, lat)
    full[design_codes(nb201, cands[7:8])] = np.nan  # the first design bisection would measure
    s = ReplaySession(nb201, "t", full)
    sel = verify_candidates(nb201, cands, s, 10.5)
    # an unmeasurable design must not make the slower ones look infeasible
    assert sel.status == "ok" and sel.index == 10
    assert any("unmeasurable" in st.decision for st in sel.trace)


def test_guided_search_skips_unmeasurable_designs(nb201):
    cands = nb201.enumerate()[:40]
    acc = np.linspace(60, 90, 40)
    lat = np.linspace(1, 40, 40)
    full = _full(nb201, cands, lat)
    full[design_codes(nb201, cands[25:30])] = np.nan  # the best designs within 30 ms
    pool = ProxyPool(
        nb201,
        [ProxyEntry("p", lambda a: np.interp(design_codes(nb201, a), np.arange(40), lat * 2))],
    )
    blend = pool.blend(cands)
    s = ReplaySession(nb201, "t", full)
    sel, _ = guided_search(
        nb201,
        cands,
        acc,
        lambda a: np.interp(design_codes(nb201, a), np.arange(40), acc),
        s,
        blend,
        30.5,
        max_measurements=12,
    )
    assert sel.status == "ok" and sel.latency <= 30.5
    assert design_codes(nb201, sel.arch[None])[0] not in range(25, 30)
    assert sel.index == 24  # the best measurable design within the budget
    assert len(s.unmeasurable) >= 1


def test_a_table_measurer_with_gaps_yields_unmeasurable_not_an_error(nb201):
    from fleetnas.measure import get_measurer
    from fleetnas.proxy import MeasurerSession
    from fleetnas.store import MeasurementBatch, open_store

    archs = nb201.enumerate()[:6]
    store = open_store("memory://")
    with store.run("t") as run:
        run.add_device(Device("gappy", measurer="table:gappy"))
        run.add_measurements(
            MeasurementBatch(nb201, archs[:4], "gappy", "latency", np.arange(1.0, 5.0), "ms")
        )
    s = MeasurerSession(get_measurer("table:gappy", store=store), nb201, ledger=False)
    v = s.measure(archs)
    assert np.isnan(v[4:, 0]).all() and np.allclose(v[:4, 0], [1, 2, 3, 4])
    assert s.cost.measurements == 4 and len(s.unmeasurable) == 2
