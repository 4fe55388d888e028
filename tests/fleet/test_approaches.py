"""The approaches behind a plan: the network alone, the verified hybrid, Approach 1's fallback,
relative budgets and the probe measurements Approach 2 takes."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit, PlanConfig, plan_fleet
from fleetnas.l2o.artifact import load_optimizer
from fleetnas.l2o.features import DeviceSet, spec_features
from fleetnas.sim import generate_fleet
from fleetnas.spaces import get_space
from fleetnas.store import open_store


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETNAS_AGENT_TOKEN", "test-token")


def test_auto_uses_network_hybrid_and_reports_failures(help_db: str, mixed_fleet) -> None:
    fleet = mixed_fleet(3, blind=True)
    cfg = PlanConfig(space="nb201", approach="auto", optimizer="tiny-spec", chunk_size=4)
    with open_store(help_db) as store:
        run = plan_fleet(fleet, cfg, store)
    by_key = {e["key"]: e for e in run.entries}
    blind = [e for e in run.entries if e["device"] == "blind-phone"]
    assert [e["method"] for e in blind] == ["l2o", "l2o"]
    for e in blind:
        assert e["measurements"] == 0 and e["measured"] is None and e["truth"] is None
        assert e["status"] in ("ok", "infeasible") and e["design"]
        assert 0.0 <= e["confidence"] <= 1.0 and e["optimizer"] == "tiny-spec"
        assert e["predicted"]["latency_bound_ms"] >= e["predicted"]["latency_ms"]
    assert by_key["gone@10ms"]["status"] == "failed"
    measured = [e for e in run.entries if e["measurer"] and e["status"] != "failed"]
    assert measured and {e["method"] for e in measured} <= {"hybrid", "proxy-fallback"}
    for e in measured:
        assert e["status"] == "ok" and e["confidence"] == 1.0
        assert e["measured"]["latency_ms"] <= e["budget"]["latency_ms"]
        assert e["truth"]["violation"] is False and e["truth"]["regret_pp"] >= 0
        if e["method"] == "hybrid":
            assert e["measurements"] <= cfg.hybrid_measurements
            assert all(s["phase"] == "l2o-hybrid" for s in e["trace"])
        else:
            assert e["fallback_reason"]
    methods = {r["method"]: r for r in run.summary["by_method"]}
    assert methods["l2o"]["entries"] == 2 and methods["l2o"]["measurements"] == 0
    assert run.summary["measurements"] == sum(e["measurements"] for e in run.entries)


def test_network_alone_measures_probes_once_and_resolves_relative_budgets(help_db: str) -> None:
    space = get_space("nb201")
    from fleetnas.devices.catalog import get_catalog_device

    rel = (Budget(Limit(quantile=30.0), None, "p30"), Budget(Limit(quantile=70.0), None, "p70"))
    sims = generate_fleet(2, rng=4, families=["mobile_cpu", "npu"])
    fleet = Fleet(
        "rel",
        [FleetDevice(s.device, rel) for s in sims]
        + [FleetDevice(get_catalog_device("pixel3"), rel)],
    )
    cfg = PlanConfig(space="nb201", approach="l2o", optimizer="tiny", chunk_size=8)
    with open_store(help_db) as store:
        run = plan_fleet(fleet, cfg, store)
        opt = load_optimizer(store, "tiny")
    k = len(opt.probes)
    e = {x["key"]: x for x in run.entries}
    for s in sims:
        first, second = e[f"{s.name}@p30"], e[f"{s.name}@p70"]
        assert first["measurements"] == first["probe_measurements"] == k
        assert second["measurements"] == 0 and "probe_measurements" not in second
        probes = s.latency(space, opt.probes)
        devs = DeviceSet([s.name], probes=probes[None, :], spec=spec_features([s.device]))
        lat = opt.objective.matrix(devs, opt.objective.reference)[:, 0]
        assert first["budget"]["latency_ms"] == pytest.approx(np.percentile(lat, 30), rel=1e-6)
        assert second["budget"]["latency_ms"] == pytest.approx(np.percentile(lat, 70), rel=1e-6)
        assert first["budget_spec"]["latency_ms"] == "p30"
        assert first["truth"]["latency_ms"] == pytest.approx(
            s.latency(space, space.parse_many([first["design"]]))[0]
        )
    assert e["pixel3@p30"]["measurements"] == 0  # its probes were measured before (HELP)
    truth_violations = sum(bool((x["truth"] or {}).get("violation")) for x in run.entries)
    assert run.summary["violations_known"] == truth_violations
    assert all(x["method"] == "l2o" and x["measured"] is None for x in run.entries)


def test_probe_reading_network_cannot_serve_unmeasurable_devices(help_db: str, mixed_fleet) -> None:
    fleet = Fleet("blind", [d for d in mixed_fleet(0, blind=True) if d.name == "blind-phone"])
    cfg = PlanConfig(space="nb201", approach="auto", optimizer="tiny")
    with open_store(help_db) as store:
        run = plan_fleet(fleet, cfg, store)
    for e in run.entries:
        assert e["status"] == "failed" and "cannot be measured" in e["reason"]
        assert "spec features" in e["reason"]
