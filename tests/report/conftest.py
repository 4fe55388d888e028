"""A small realistic plan built from real data, independent of fleet/: HELP NAS-Bench-201
latencies of a few devices and NATS-Bench CIFAR-10 accuracies in a temporary store, entries
whose designs come from a bisection along a proxy device's true Pareto front (Approach 1) or
from a slightly conservative direct pick (standing in for Approach 2), with truth blocks
computed from the same tables."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fleetnas.data.help import import_help
from fleetnas.data.nats import get_accuracy, import_nats
from fleetnas.devices.catalog import get_catalog_device
from fleetnas.search.pareto import BudgetIndex, pareto_front
from fleetnas.spaces import get_space
from fleetnas.store import SQLStore
from fleetnas.store.base import Store

PROXY = "titan_rtx_1"
TARGETS = ("pixel3", "raspi4", "gold_6226", "silver_4114", "fpga", "titanx_32")
FRONT_IN_PLAN = "gold_6226"


@dataclass
class Fixture:
    store: Store
    db: Path
    plan: dict[str, Any]
    plan_path: Path
    tables: dict[str, np.ndarray]  # device -> latency per design (row order of `archs`)
    accuracy: np.ndarray
    archs: np.ndarray


def _truth(acc: np.ndarray, lat: np.ndarray, i: int, budget: float) -> dict[str, Any]:
    best = int(BudgetIndex(acc, lat).query(budget))
    oracle = float(acc[best]) if best >= 0 else None
    return {
        "accuracy": float(acc[i]),
        "latency_ms": float(lat[i]),
        "energy_mj": None,
        "oracle_accuracy": oracle,
        "regret_pp": None if oracle is None else oracle - float(acc[i]),
        "violation": bool(lat[i] > budget),
    }


def _bisect(
    space, archs, acc, proxy_lat, target_lat, budget
) -> tuple[int | None, list[dict[str, Any]]]:
    """Bisection over the proxy's front (ordered fast -> slow) for the slowest front design
    whose target latency fits; each step is one measurement on the target."""
    front = pareto_front(acc, proxy_lat)
    lo, hi, best, trace = 0, len(front) - 1, None, []
    while lo <= hi:
        mid = (lo + hi) // 2
        i = int(front[mid])
        fits = target_lat[i] <= budget
        trace.append(
            {
                "step": len(trace) + 1,
                "t": round(1.0 - mid / (len(front) - 1), 4),
                "proxy_latency": float(proxy_lat[i]),
                "design": space.format(archs[i]),
                "measured_latency_ms": float(target_lat[i]),
                "decision": "fits: try slower" if fits else "over budget: try faster",
            }
        )
        if fits:
            best, lo = i, mid + 1
        else:
            hi = mid - 1
    return best, trace


def build_plan(
    store: Store,
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    space = get_space("nb201")
    archs, acc = get_accuracy(store, "cifar10")
    tables = {}
    for dev in (PROXY, *TARGETS):
        _, lat = store.get_measurements(space, dev, "latency", "mean", archs=archs)
        tables[dev] = lat
    entries: list[dict[str, Any]] = []
    for k, dev in enumerate(TARGETS):
        lat = tables[dev]
        fam = get_catalog_device(dev).family
        for q in (30, 70):
            budget = float(np.percentile(lat, q))
            base = {
                "device": dev,
                "family": fam,
                "measurer": f"table:{dev}",
                "budget": {"latency_ms": budget, "energy_mj": None},
                "budget_label": f"p{q}",
                "proxy": None,
                "confidence": 0.9,
                "wall_s": 0.05,
            }
            if k % 2 == 0:
                i, trace = _bisect(space, archs, acc, tables[PROXY], lat, budget)
                assert i is not None
                entry = {
                    **base,
                    "method": "proxy" if q == 30 else "proxy-fallback",
                    "proxy": PROXY,
                    "trace": trace,
                    "measurements": len(trace),
                    "measured": {"latency_ms": float(lat[i]), "energy_mj": None},
                }
            else:
                i = int(BudgetIndex(acc, lat).query(0.93 * budget))
                entry = {
                    **base,
                    "method": "l2o",
                    "trace": [],
                    "measurements": 1,
                    "measured": {"latency_ms": float(lat[i]), "energy_mj": None},
                }
            entry.update(
                status="ok",
                reason=None,
                design=space.format(archs[i]),
                predicted={"accuracy": float(acc[i]) + 0.2, "latency_ms": float(lat[i]) * 0.97},
                device_seconds=entry["measurements"] * float(lat[i]) / 1000 * 20,
                truth=_truth(acc, lat, i, budget),
            )
            if dev == FRONT_IN_PLAN and q == 30:
                f = pareto_front(acc, lat)
                entry["front"] = [[float(lat[j]), float(acc[j])] for j in f]
            entries.append(entry)
    tiny = float(tables["raspi4"].min()) * 0.5
    entries.append(
        {
            "device": "raspi4",
            "family": get_catalog_device("raspi4").family,
            "budget": {"latency_ms": tiny, "energy_mj": None},
            "budget_label": "tiny",
            "method": "proxy",
            "status": "infeasible",
            "reason": f"no design is faster than {tiny:.3g} ms on raspi4",
            "design": None,
            "measurements": 2,
            "device_seconds": 0.01,
            "truth": None,
        }
    )
    entries.append(
        {
            "device": "field_phone_17",
            "family": "mobile_cpu",
            "budget": {"latency_ms": 25.0, "energy_mj": None},
            "budget_label": "p50",
            "method": "l2o",
            "status": "failed",
            "reason": "agent at http://10.0.0.17:8000 did not answer",
            "design": None,
            "measurements": 0,
            "device_seconds": 0.0,
            "truth": None,
        }
    )
    plan = {
        "format": "fleetnas-plan/1",
        "plan": "report-test",
        "space": "nb201",
        "accuracy": "accuracy_cifar10",
        "created": "2026-11-25T14:00:00Z",
        "fleet": "tests/report (built from HELP)",
        "approach": "auto",
        "config": {"proxy": PROXY, "seed": 0},
        "summary": {
            "devices": len({e["device"] for e in entries}),
            "ok": sum(e["status"] == "ok" for e in entries),
            "measurements": sum(e["measurements"] for e in entries),
        },
        "devices": entries,
    }
    return plan, tables, acc, archs


@pytest.fixture(scope="session")
def report_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """Store (SQLite file) + plan (dict and plan.json); read-only for the tests."""
    root = tmp_path_factory.mktemp("report")
    db = root / "store.db"
    store = SQLStore(f"sqlite:///{db}")
    import_help(store, data_dir, "nb201", [PROXY, *TARGETS])
    import_nats(store, data_dir, ["cifar10"])
    plan, tables, acc, archs = build_plan(store)
    path = root / "plan.json"
    path.write_text(json.dumps(plan, indent=1))
    yield Fixture(store, db, plan, path, tables, acc, archs)
    store.close()


@pytest.fixture
def plan(report_data: Fixture) -> dict[str, Any]:
    """A private deep copy of the fixture plan (tests may edit it)."""
    return copy.deepcopy(report_data.plan)
