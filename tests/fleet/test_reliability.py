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
    assert all(e["status"] == "failed" for e in two["devices"]), [
        (e["status"], e["reason"], e["measurements"]) for e in two["devices"]
    ]
    assert all("another setting" in e["reason"] for e in two["devices"]), [
        e["reason"] for e in two["devices"]
    ]
    assert all(e["design"] is None and e["measurements"] == 0 for e in two["devices"])


def _by_key(plan: dict, *fields: str) -> dict:
    return {e["key"]: tuple(e.get(f) for f in fields) for e in plan["devices"]}


def test_fresh_on_a_store_with_earlier_values_equals_a_clean_store(help_db):
    fleet = Fleet("sims", sim_devices(3, seed=2), source="test")
    config = PlanConfig(space="nb201", approach="auto", chunk_size=64)
    with open_store(help_db) as store:
        clean = plan_fleet(fleet, config, store, name="clean").plan
        again = plan_fleet(fleet, config, store, name="again").plan
        fresh = plan_fleet(fleet, config, store, name="clean", fresh=True).plan
    fields = ("design", "measurements", "measurements_new", "measurements_reused")
    assert all(e["measurements_reused"] == 0 for e in clean["devices"])
    assert all(e["measurements_new"] == e["measurements"] for e in clean["devices"])
    assert sum(e["measurements_reused"] for e in again["devices"]) > 0
    assert again["summary"]["measurements"] < clean["summary"]["measurements"]
    assert _by_key(fresh, *fields) == _by_key(clean, *fields)


def test_a_format_1_plan_is_read_with_infeasible_entries_sealed(tmp_path):
    import json

    from fleetnas.fleet import read_plan

    old = {
        "format": "fleetnas-plan/1",
        "devices": [
            {"device": "a", "method": "proxy", "status": "infeasible", "design": "x",
             "measured": {"latency_ms": 4.0, "energy_mj": None}, "truth": None},
            {"device": "b", "method": "l2o", "status": "infeasible", "design": "y",
             "predicted": {"latency_ms": 3.0}, "measured": None},
            {"device": "c", "method": "proxy", "status": "ok", "design": "z",
             "measured": {"latency_ms": 1.0}},
        ],
    }  # fmt: skip
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    doc = read_plan(path)
    a, b, c = doc["devices"]
    assert doc["format"] == "fleetnas-plan/2"
    assert a["design"] is None and a["measured"] is None
    assert a["fastest_measured"] == {"design": "x", "latency_ms": 4.0, "energy_mj": None}
    assert b["design"] is None and b["closest_proposal"]["design"] == "y"
    assert c["design"] == "z" and "fastest_measured" not in c


def test_two_concurrent_runs_of_one_plan_compute_each_chunk_once(help_db):
    import threading

    fleet = Fleet("sims", sim_devices(3, seed=3), source="test")
    config = PlanConfig(space="nb201", approach="proxy", chunk_size=2)
    results: dict = {}

    def go(tag: str) -> None:
        with open_store(help_db) as store:
            results[tag] = plan_fleet(fleet, config, store, name="both")

    threads = [threading.Thread(target=go, args=(tag,)) for tag in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    a, b = results["a"], results["b"]
    assert a.computed + b.computed == fleet.n_tasks == 6
    fields = ("design", "status", "measurements", "run")
    assert _by_key(a.plan, *fields) == _by_key(b.plan, *fields)
    with open_store(help_db) as store:
        chunks = [
            r.config["chunk"]
            for r in store.list_runs("plan")
            if r.config.get("plan") == "both" and "chunk" in r.config
        ]
    assert sorted(chunks) == [0, 1, 2]


def test_a_lease_left_by_a_dead_process_is_taken_over(help_db):
    import subprocess
    import sys

    from fleetnas.fleet import fleet_tasks
    from fleetnas.fleet.lease import LEASE_KIND, holders, lease_key
    from fleetnas.fleet.plan import chunk_tasks

    fleet = Fleet("sims", sim_devices(1, seed=4), source="test")
    config = PlanConfig(space="nb201", approach="proxy")
    ((cid, todo),) = chunk_tasks(fleet_tasks(fleet), config.chunk_size)
    key = lease_key("dead", config.digest(), cid, todo, {})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    import socket
    import time

    with open_store(help_db) as store:
        holder = {"host": socket.gethostname(), "pid": gone.pid, "since": time.time()}
        with store.run(LEASE_KIND, holder, key=key):
            pass
        run = plan_fleet(fleet, config, store, name="dead")
        assert run.computed == 2 and run.summary["ok"] == 2
        assert f"{key}#2" in holders(store)


def test_fleet_generate_prefix_gives_fleets_of_other_seeds_their_own_names(tmp_path):
    from fleetnas.cli.main import main
    from fleetnas.fleet import read_fleet

    out = tmp_path / "s1.yaml"
    args = ["fleet", "generate", "--sim", "3", "--seed", "1", "--budgets", "5", "-o", str(out)]
    assert main([*args, "--prefix", "s1", "--json"]) == 0
    names = [d.device.name for d in read_fleet(out)]
    assert len(names) == 3 and all(n.startswith("s1-") for n in names)
