"""Planning a fleet end to end: the store path, plan.json, failures, resumability, executors."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetnas.errors import InputError
from fleetnas.fleet import (
    PlanConfig,
    make_executor,
    plan_fleet,
    read_fleet,
    read_plan,
    write_fleet,
)
from fleetnas.fleet.plan import HEADER_KIND
from fleetnas.spaces import get_space
from fleetnas.store import open_store

#: Keys that say when and where an entry was computed, not what it is.
VOLATILE = ("wall_s", "run", "chunk")


def comparable(entries: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in VOLATILE} for e in entries]


def same(a: object, b: object, path: str = "") -> None:
    """Equal plans: same keys, strings, statuses and counts; floats equal up to summation order
    (the simulator sums layer costs in the order a process first saw the layers)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETNAS_AGENT_TOKEN", "test-token")


def test_proxy_plan_store_json_and_failures(help_db: str, tmp_path: Path, mixed_fleet) -> None:
    fleet = mixed_fleet(3)
    cfg = PlanConfig(space="nb201", approach="proxy", chunk_size=3)
    out = tmp_path / "plan.json"
    with open_store(help_db) as store:
        run = plan_fleet(fleet, cfg, store, out=out)
        stored = store.get_plan("mixed-nb201")
        sim = fleet.devices[2].device.name
        frame = store.measurements_frame(get_space("nb201"), [sim], ["latency"])
        header = json.loads(store.load_artifact("mixed-nb201", HEADER_KIND).payload)
    doc = read_plan(out)
    assert doc["format"] == "fleetnas-plan/2" and doc["plan"] == "mixed-nb201"
    assert doc["space"] == "nb201" and doc["accuracy"] == "accuracy_cifar10"
    assert header["digest"] == cfg.digest() == doc["config"]["digest"]
    entries = doc["devices"]
    assert [e["key"] for e in entries] == [t for d in fleet for t in d.keys()]  # noqa: SIM118
    assert sorted(comparable(entries), key=lambda e: e["key"]) == sorted(
        comparable(stored), key=lambda e: e["key"]
    )
    gone = entries[-1]
    assert gone["status"] == "failed" and "agent http://127.0.0.1:9" in gone["reason"]
    assert "\n" not in gone["reason"] and gone["design"] is None
    ok = [e for e in entries if e["status"] == "ok"]
    assert len(ok) == len(entries) - 1
    for e in ok:
        assert e["method"] in ("proxy", "proxy-fallback") and e["design"]
        assert e["measured"]["latency_ms"] <= e["budget"]["latency_ms"]
        assert 1 <= e["measurements"] <= (20 if e.get("cap_extended") else 10) or e["key"].endswith(
            "15ms"
        )
        assert e["truth"] is not None and e["truth"]["violation"] is False
        assert e["truth"]["regret_pp"] >= 0 and e["confidence"] == 1.0
        assert e["trace"] and all("measured_latency_ms" in s for s in e["trace"])
    s = doc["summary"]
    assert (s["devices"], s["entries"], s["ok"], s["failed"]) == (6, 10, 9, 1)
    assert s["measurements"] == sum(e["measurements"] for e in entries)
    assert s["violations_known"] == 0 and s["truth_checked"] == 9
    assert {r["method"] for r in s["by_method"]} <= {"proxy", "proxy-fallback"}
    assert len(frame) == sum(e["measurements"] for e in entries if e["device"] == sim)
    assert run.computed == 10 and run.reused == 0


def test_rerun_resumes_and_retries_failed(help_db: str, mixed_fleet) -> None:
    fleet = mixed_fleet(2)
    cfg = PlanConfig(space="nb201", approach="proxy", chunk_size=2)
    with open_store(help_db) as store:
        first = plan_fleet(fleet, cfg, store)
        again = plan_fleet(fleet, cfg, store)
        kept = plan_fleet(fleet, cfg, store, retry_failed=False)
        with pytest.raises(InputError, match=r"another config .*seed"):
            plan_fleet(fleet, PlanConfig(space="nb201", approach="proxy", seed=1), store)
    assert again.computed == 1 and again.reused == len(first.entries) - 1
    assert kept.computed == 0 and kept.reused == len(first.entries)
    # the plan's own wall time: every invocation that computed entries, not the last one
    walls = [r.summary["wall_s"] for r in (first, again, kept)]
    assert first.summary["plan_wall_s"] == pytest.approx(walls[0])
    assert again.summary["plan_wall_s"] == pytest.approx(walls[0] + walls[1])
    assert kept.summary["plan_wall_s"] == again.summary["plan_wall_s"] > walls[2]
    runs = {e["key"]: e["run"] for e in first.entries}
    for e in again.entries:
        assert (e["run"] == runs[e["key"]]) == (e["status"] != "failed")
    same(comparable(again.entries), comparable(first.entries))


def _plan_cmd(fleet: Path, db: str, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "fleetnas.cli.main", "plan", str(fleet), "--space", "nb201",
        "--approach", "proxy", "--executor", "serial", "--chunk-size", "2", "--db", db,
        "--out", str(out), "--quiet", "--no-truth",
    ]  # fmt: skip


def _stored_entries(db: str) -> int:
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=30) as conn:
        return conn.execute("select count(*) from plans").fetchone()[0]


def test_sigkill_mid_plan_then_resume_loses_and_recomputes_nothing(
    help_db: str, help_db_master: Path, tmp_path: Path, mixed_fleet
) -> None:
    fleet = mixed_fleet(8)
    path = write_fleet(fleet, tmp_path / "fleet.yaml")
    out = tmp_path / "plan.json"
    env = {**os.environ, "FLEETNAS_AGENT_TOKEN": "test-token"}
    for sig, at_least in ((signal.SIGINT, 2), (signal.SIGKILL, 4)):
        proc = subprocess.Popen(
            _plan_cmd(path, help_db, out), env=env, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        try:
            while _stored_entries(help_db) < at_least:
                assert proc.poll() is None, "the plan finished before it could be stopped"
                assert time.monotonic() < deadline, "no chunk was stored within 60 s"
                time.sleep(0.05)
            proc.send_signal(sig)
        finally:
            err = proc.communicate()[1]
        if sig == signal.SIGINT:  # Ctrl-C: a clear line, exit code 130
            assert proc.returncode == 130, err
            assert "run the same command again to continue" in err
        else:
            assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    with open_store(help_db) as store:
        before = {e["key"]: e["run"] for e in store.get_plan("mixed-nb201")}
    assert 4 <= len(before) < fleet.n_tasks
    done = subprocess.run(_plan_cmd(path, help_db, out), env=env, check=False)
    assert done.returncode == 3  # done; the entry of the agent that is gone failed
    resumed = read_plan(out)["devices"]
    for e in resumed:
        if e["key"] in before and e["status"] != "failed":
            assert e["run"] == before[e["key"]], f"{e['key']} was recomputed"
    shutil.copy(help_db_master, tmp_path / "fresh.db")
    with open_store(str(tmp_path / "fresh.db")) as fresh_store:
        cfg = PlanConfig(space="nb201", approach="proxy", chunk_size=2, truth=False)
        fresh = plan_fleet(read_fleet(path), cfg, fresh_store)
    same(comparable(resumed), comparable(fresh.entries))


def read_fleet_for(path: Path):
    from fleetnas.fleet import read_fleet

    return read_fleet(path)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_plan_equals_local_pool_plan(
    help_db: str, help_db_master: Path, tmp_path: Path, mixed_fleet
) -> None:
    from fleetnas.fleet import ray_available

    if not ray_available():
        pytest.skip("ray is not installed (pip install 'fleetnas[ray]')")
    fleet = mixed_fleet(6, blind=True)
    cfg = PlanConfig(space="nb201", approach="auto", optimizer="tiny-spec", chunk_size=3)
    other = str(tmp_path / "ray.db")
    shutil.copy(help_db_master, other)
    with open_store(help_db) as store:
        local = plan_fleet(fleet, cfg, store, executor=make_executor("local", 2))
    with open_store(other) as store:
        ray = plan_fleet(fleet, cfg, store, executor=make_executor("ray", 2))
    assert local.summary["run"]["executor"] == "local" and ray.summary["run"]["executor"] == "ray"
    same(comparable(ray.entries), comparable(local.entries))
    assert {e["method"] for e in ray.entries} >= {"l2o", "proxy"}
    assert any(e.get("network_proxy") == "l2o:tiny-spec" for e in ray.entries)
    assert ray.summary["failed"] == 1 and ray.summary["entries"] == fleet.n_tasks


def test_chunks_keep_devices_whole_and_local_runtimes_last() -> None:
    from fleetnas.fleet import Fleet, fleet_tasks, sim_fleet
    from fleetnas.fleet.plan import chunk_tasks, is_exclusive

    local = read_fleet(Path(__file__).resolve().parents[2] / "examples/fleets/local.yaml")
    sims = sim_fleet(5, seed=1, budgets=("p25", "p50", "p75"))
    fleet = Fleet("mix", [local.devices[0], *sims.devices, *local.devices[1:]])
    tasks = fleet_tasks(fleet)
    chunks = chunk_tasks(tasks, 4)
    assert [c for c, _ in chunks] == list(range(len(chunks)))
    assert sorted(t.index for _, part in chunks for t in part) == list(range(len(tasks)))
    for _, part in chunks:
        names = [t.device.name for t in part]
        assert len({is_exclusive(t) for t in part}) == 1
        for name in set(names):
            assert names.count(name) == sum(t.device.name == name for t in tasks)
    flags = [is_exclusive(part[0]) for _, part in chunks]
    assert flags == sorted(flags) and flags[-1] and not flags[0]
    assert all(
        t.device.family == "local_runtime" for _, p in chunks if is_exclusive(p[0]) for t in p
    )
