"""What ``fleetnas plan --approach auto`` should do on a device that can be measured: Approach 1's
guided search, the verified hybrid of Approach 2, or Approach 1 joined by the network.

Every approach is planned through :func:`fleetnas.fleet.plan_fleet` (the planner, its measurement
sessions and its charging), each run on a fresh copy of one store, with real measurements charged
honestly: a replayed HELP device (``table:NAME``) pays for every distinct design it is asked
for, the optimizer's ten probe designs included; a simulated device (``sim:``) is measured like a
real one, whose values written earlier are reused for free.

Approaches compared in the same run: ``proxy`` (Approach 1: three probes, the proxy pool's
calibrated blend, guided verification; at most 10 measurements per budget, a device's budgets
share its session), ``hybrid`` (the network's proposals verified with at most 3 measurements
after the 10 probes; what ``auto`` used before), ``l2o`` (the network alone: the 10 probes, no
design measured), ``auto`` (the planner's choice: Approach 1, joined by the network's latency
predictor where the device's features are free) and ``auto, join always`` (Approach 1 always
joined by the network, paying its probes where they are not free: the strengthened hybrid).

Scenarios:

- ``help-tight`` / ``help-wide``: HELP's 27 NAS-Bench-201 settings replayed, budgets at the
  10/30/50 % (tight) and 25/50/75 % (wide) quantiles of each device's true latency over the 15,625
  cells. Nothing is known about a device before the plan.
- ``help-relative``: the same devices with relative budgets ``p10/p30/p50`` (percentiles of the
  network's *predicted* latency): every approach must measure the 10 probes to resolve them.
- ``sim-cold`` / ``sim-warm``: ``--sim`` simulated devices (the simulator's family mix), budgets
  at the 25/50/75 % quantiles of their true latency; ``warm``: an earlier network-alone plan
  measured the probes (not counted here), as for a fleet planned before.

The optimizer (``bench-nb201``: :func:`fleetnas.l2o.train.train_optimizer`'s defaults, Method 1 on
HELP's 9 meta-train and 4 meta-valid devices plus synthetic ones) has seen 13 of the 27 HELP
devices in training; their rows are reported apart ("unseen": the other 14).

Results: ``benchmarks/results/fleet_auto.{json,md}``.
Run: ``.venv/bin/python benchmarks/fleet_auto.py`` (about 6 minutes on 2 cores, plus about 30 s
to import the data and train the optimizer the first time; cached in ``--cache``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
OPTIMIZER = "bench-nb201"
#: Runs per scenario: ``--approach`` values, and ``auto, join always``: ``auto`` whose
#: Approach 1 is always joined by the network, its probes measured where they are not free.
APPROACHES = ("proxy", "auto", "auto, join always", "hybrid", "l2o")
SCENARIOS = {
    "help-tight": (10, 30, 50),
    "help-wide": (25, 50, 75),
    "help-relative": (10, 30, 50),
    "sim-cold": (25, 50, 75),
    "sim-warm": (25, 50, 75),
}
SIM_SEED = 2026


# ---- setup -------------------------------------------------------------------------------------
def prepare_store(cache: Path) -> dict[str, Any]:
    """The cached store with HELP's NAS-Bench-201 latencies, the accuracies and the optimizer."""
    from fleetnas.data import import_all
    from fleetnas.l2o.artifact import ARTIFACT_KIND
    from fleetnas.l2o.train import TrainConfig, train_optimizer
    from fleetnas.store import open_store

    cache.mkdir(parents=True, exist_ok=True)
    facts_path = cache / "setup.json"
    facts = json.loads(facts_path.read_text()) if facts_path.exists() else {}
    with open_store(str(cache / "base.db")) as store:
        t0 = time.perf_counter()
        import_all(store, parts=["help-nasbench201", "nats"])
        facts.setdefault("import_s", time.perf_counter() - t0)
        if OPTIMIZER not in {a.name for a in store.list_artifacts(ARTIFACT_KIND)}:
            print(f"training {OPTIMIZER} ...", flush=True)
            t0 = time.perf_counter()
            train_optimizer(store, TrainConfig(space="nb201", name=OPTIMIZER))
            facts["train_s"] = time.perf_counter() - t0
    facts_path.write_text(json.dumps(facts, indent=1))
    return facts


def _budgets(values: dict[int, float]) -> tuple[Any, ...]:
    from fleetnas.fleet import Budget, Limit

    return tuple(Budget(Limit(value=float(f"{v:.5g}")), None, f"q{q}") for q, v in values.items())


def help_fleet(store: Any, quantiles: tuple[int, ...], relative: bool) -> Any:
    """HELP's NB201 devices replayed, with budgets at quantiles of their true latency (or
    relative ``pNN`` budgets)."""
    from fleetnas.devices.catalog import get_catalog_device, help_devices
    from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit
    from fleetnas.spaces import get_space

    space = get_space("nb201")
    devices = []
    for d in help_devices("nb201"):
        dev = get_catalog_device(d.name)
        if relative:
            bs = tuple(Budget(Limit(quantile=float(q)), None, f"p{q}") for q in quantiles)
        else:
            _, lat = store.get_measurements(space, dev.name, "latency", statistic="mean")
            bs = _budgets({q: float(np.percentile(lat, q)) for q in quantiles})
        devices.append(FleetDevice(dev, bs))
    return Fleet("help-nb201", devices, source="benchmark")


def sim_fleet_quantiles(n: int, quantiles: tuple[int, ...]) -> Any:
    """``n`` simulated devices with budgets at quantiles of their true latency over the space."""
    from fleetnas.fleet import Fleet, FleetDevice
    from fleetnas.sim import generate_fleet
    from fleetnas.spaces import get_space

    space = get_space("nb201")
    archs = space.enumerate()
    devices = []
    for s in generate_fleet(n, rng=SIM_SEED):
        lat = s.latency(space, archs)
        devices.append(
            FleetDevice(s.device, _budgets({q: float(np.percentile(lat, q)) for q in quantiles}))
        )
    return Fleet(f"sim-{n}", devices, source="benchmark")


# ---- one plan ----------------------------------------------------------------------------------
def plan_once(fleet: Any, approach: str, db: Path, label: str) -> dict[str, Any]:
    from fleetnas.fleet import PlanConfig, plan_fleet
    from fleetnas.fleet.planner import FleetPlanner
    from fleetnas.store import open_store

    kind, _, join = approach.partition(", join ")
    cfg = PlanConfig(space="nb201", approach=kind, optimizer=OPTIMIZER)
    with open_store(str(db)) as store:
        t0 = time.perf_counter()
        planner = FleetPlanner(cfg, store, join=join or "free")
        run = plan_fleet(fleet, cfg, store, planner, name=label)
        wall = time.perf_counter() - t0
    return {"entries": run.entries, "wall_s": wall}


def _stats(entries: list[dict[str, Any]], devices: list[str]) -> dict[str, Any]:
    """Measurements per device (all budgets together), violations, regret over ``devices``."""
    es = [e for e in entries if e["device"] in devices]
    per_dev = {d: 0 for d in devices}
    for e in es:
        per_dev[e["device"]] += int(e["measurements"])
    meas = np.array(list(per_dev.values()), dtype=float)
    truth = [e["truth"] for e in es if e.get("truth")]
    reg = np.array([t["regret_pp"] for t in truth if t.get("regret_pp") is not None], dtype=float)
    measured_viol = sum(
        1
        for e in es
        if e["status"] == "ok"
        and (e.get("measured") or {}).get("latency_ms") is not None
        and e["measured"]["latency_ms"] > e["budget"]["latency_ms"]
    )
    methods: dict[str, int] = {}
    for e in es:
        key = e["method"] or "none"
        if e.get("network_proxy"):
            key += "+network"
        methods[key] = methods.get(key, 0) + 1
    return {
        "devices": len(devices),
        "entries": len(es),
        "methods": methods,
        "measurements": int(meas.sum()),
        "meas_per_device_mean": float(meas.mean()) if len(meas) else None,
        "meas_per_device_max": int(meas.max()) if len(meas) else None,
        "per_device": per_dev,
        "violations": sum(bool(t.get("violation")) for t in truth),
        "measured_violations": measured_viol,
        "infeasible": sum(e["status"] == "infeasible" for e in es),
        "failed": sum(e["status"] == "failed" for e in es),
        "regret_mean": float(reg.mean()) if len(reg) else None,
        "regret_p90": float(np.percentile(reg, 90)) if len(reg) else None,
        "regret_max": float(reg.max()) if len(reg) else None,
        "regret_per_device": {d: _regret_sum(es, d) for d in devices},
    }


def _regret_sum(entries: list[dict[str, Any]], device: str) -> float:
    return float(
        sum(
            e["truth"]["regret_pp"] or 0.0
            for e in entries
            if e["device"] == device and e.get("truth")
        )
    )


def _versus(a: dict[str, Any], b: dict[str, Any]) -> dict[str, int]:
    """Per device: how often ``a`` used more / fewer measurements than ``b``, and had more /
    less summed regret (over 0.005 pp)."""
    pa, pb = a["per_device"], b["per_device"]
    ra, rb = a["regret_per_device"], b["regret_per_device"]
    return {
        "more_measurements": sum(pa[d] > pb[d] for d in pa),
        "fewer_measurements": sum(pa[d] < pb[d] for d in pa),
        "more_regret": sum(ra[d] > rb[d] + 0.005 for d in ra),
        "less_regret": sum(ra[d] < rb[d] - 0.005 for d in ra),
    }


def run_scenario(name: str, base: Path, work: Path, n_sim: int) -> dict[str, Any]:
    from fleetnas.devices.catalog import help_split
    from fleetnas.store import open_store

    qs = SCENARIOS[name]
    if name.startswith("help"):
        with open_store(str(base)) as store:
            fleet = help_fleet(store, qs, relative=name == "help-relative")
    else:
        fleet = sim_fleet_quantiles(n_sim, qs)
    names = [d.name for d in fleet]
    split = help_split("nb201")
    seen = set(split["train"]) | set(split["valid"])
    groups = {"all": names}
    if name.startswith("help"):
        groups["unseen"] = [n for n in names if n not in seen]
    start = base
    if name == "sim-warm":
        start = work / f"{name}-warm.db"
        shutil.copy(base, start)
        plan_once(fleet, "l2o", start, "warm-up")
    out: dict[str, Any] = {"scenario": name, "quantiles": qs, "devices": len(names), "runs": {}}
    for approach in APPROACHES:
        db = work / f"{name}-{approach.replace(', ', '-').replace(' ', '-')}.db"
        shutil.copy(start, db)
        res = plan_once(fleet, approach, db, db.stem)
        db.unlink()
        row = {g: _stats(res["entries"], devs) for g, devs in groups.items()}
        row["wall_s"] = res["wall_s"]
        out["runs"][approach] = row
        a = row["all"]
        print(
            f"  {name} {approach}: {a['meas_per_device_mean']:.2f} measurements/device, "
            f"violations {a['violations']}, regret mean {a['regret_mean']:.3f} pp, "
            f"{res['wall_s']:.0f} s",
            flush=True,
        )
    out["versus_proxy"] = {
        a: _versus(out["runs"][a]["all"], out["runs"]["proxy"]["all"])
        for a in APPROACHES
        if a != "proxy"
    }
    return out


# ---- report ------------------------------------------------------------------------------------
def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# `auto` on measurable devices: Approach 1, the hybrid, or both",
        "",
        "NAS-Bench-201, exact CIFAR-10 accuracies; every approach planned through `plan_fleet` on "
        "a "
        "fresh copy of one store, in one run. Replayed HELP devices (`table:NAME`) are charged "
        "one measurement per distinct design, the optimizer's 10 probes included; simulated "
        "devices (`sim:`) are measured like real ones (values stored earlier are free). Regret "
        "(pp) over entries that returned a design within the budget; violations: true latency "
        "over the budget; measured violations: a returned design whose *measured* latency "
        "exceeds the budget. Measurements per device count all of its budgets together. "
        f"Machine: {doc['machine']['cpus']} CPUs, {doc['machine']['platform']}.",
        "",
        "| scenario | budgets | devices | approach | methods used | meas./device mean | max "
        "| violations | measured viol. | infeasible | regret mean | p90 | max "
        "| unseen: meas./device | unseen: regret mean | wall s |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc in doc["scenarios"]:
        qs = "/".join(str(q) for q in sc["quantiles"])
        qs = ("p" if sc["scenario"] == "help-relative" else "q") + qs
        for approach, row in sc["runs"].items():
            a, u = row["all"], row.get("unseen")
            methods = ", ".join(f"{k} {v}" for k, v in sorted(a["methods"].items()))
            u_meas = "–" if u is None else f"{u['meas_per_device_mean']:.2f}"
            u_reg = "–" if u is None else _f(u["regret_mean"])
            lines.append(
                f"| {sc['scenario']} | {qs} | {sc['devices']} | **{approach}** | {methods} | "
                f"{a['meas_per_device_mean']:.2f} | {a['meas_per_device_max']} | "
                f"{a['violations']} | {a['measured_violations']} | {a['infeasible']} | "
                f"{_f(a['regret_mean'])} | {_f(a['regret_p90'])} | {_f(a['regret_max'], 2)} | "
                f"{u_meas} | {u_reg} | {row['wall_s']:.0f} |"
            )
    lines += [
        "",
        "Against Approach 1 (`proxy`) in the same scenario: means over devices (measurements per "
        "device, all budgets together; regret per entry), and per device how often the approach "
        "used more / fewer measurements and had more / less summed regret (by over 0.005 pp). "
        "`no more measurements, no more regret` is judged on the means.",
        "",
        "| scenario | approach | meas./device vs proxy | regret mean vs proxy "
        "| no more meas., no more regret | devices: more meas. | fewer meas. | more regret "
        "| less regret |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for sc in doc["scenarios"]:
        p = sc["runs"]["proxy"]["all"]
        for approach, v in sc["versus_proxy"].items():
            a = sc["runs"][approach]["all"]
            ok = (
                a["meas_per_device_mean"] <= p["meas_per_device_mean"] + 1e-9
                and (a["regret_mean"] or 0.0) <= (p["regret_mean"] or 0.0) + 1e-9
                and a["violations"] == 0
            )
            lines.append(
                f"| {sc['scenario']} | {approach} | {a['meas_per_device_mean']:.2f} vs "
                f"{p['meas_per_device_mean']:.2f} | {_f(a['regret_mean'])} vs "
                f"{_f(p['regret_mean'])} | {'yes' if ok else 'no'} | {v['more_measurements']} | "
                f"{v['fewer_measurements']} | {v['more_regret']} | {v['less_regret']} |"
            )
    lines += ["", "## What `auto` does, and why", "", *notes(doc)]
    s = doc["setup"]
    lines += [
        "",
        f"Setup (cached): data import {s.get('import_s', 0):.0f} s"
        + (f", optimizer training {s['train_s']:.0f} s" if "train_s" in s else "")
        + f". Benchmark total {doc['total_s'] / 60:.1f} min.",
    ]
    return "\n".join(lines) + "\n"


def notes(doc: dict[str, Any]) -> list[str]:
    """The choice the numbers support, in words (every number read from ``doc``)."""
    sc = {x["scenario"]: x["runs"] for x in doc["scenarios"]}

    def m(name: str, approach: str, key: str = "meas_per_device_mean") -> float:
        return sc[name][approach]["all"][key]

    out = []
    cold = [n for n in ("help-tight", "help-wide", "sim-cold") if n in sc]
    warm = [n for n in ("help-relative", "sim-warm") if n in sc]
    if cold:
        same = all(
            sc[n]["auto"]["all"]["per_device"] == sc[n]["proxy"]["all"]["per_device"]
            and sc[n]["auto"]["all"]["regret_mean"] == sc[n]["proxy"]["all"]["regret_mean"]
            for n in cold
        )
        gap = [m(n, "proxy") - m(n, "hybrid") for n in cold]
        out.append(
            f"- Devices seen for the first time ({', '.join(cold)}): `auto` is Approach 1's "
            f"guided search{' (the same entries as `proxy`)' if same else ''}. The hybrid, "
            "which `auto` used before, pays the 10 probes and then costs about as much ("
            + "; ".join(
                f"{n}: {m(n, 'hybrid'):.1f} vs {m(n, 'proxy'):.1f} measurements per device, "
                f"regret {m(n, 'hybrid', 'regret_mean'):.2f} vs "
                f"{m(n, 'proxy', 'regret_mean'):.3f} pp"
                for n in cold
            )
            + f"): cheaper by {min(gap):.1f} to {max(gap):.1f} measurements per device, an "
            "order of magnitude worse."
        )
        out.append(
            "- Approach 1 joined by the network everywhere (`auto, join always`: option (a), the "
            "strengthened hybrid) lowers the regret but pays the probes: "
            + "; ".join(
                f"{n}: {m(n, 'auto, join always'):.1f} vs {m(n, 'proxy'):.1f} measurements per "
                f"device, {m(n, 'auto, join always', 'regret_mean'):.3f} vs "
                f"{m(n, 'proxy', 'regret_mean'):.3f} pp"
                for n in cold
            )
            + ". It fails the rule (no more measurements than Approach 1), so `auto` joins the "
            'network only where its features are free (the planner\'s `join="always"` keeps '
            "it for users who trade measurements for regret). Seeding Approach 1 with the "
            "network's proposals alone (option (b)) costs the same probes, since they are the "
            "network's input, and adds less: the proposals lie on the predicted front that the "
            "joined predictor already adds to the candidates."
        )
    if warm:
        out.append(
            "- Features already paid for (relative budgets, which need the probes anyway) or "
            "measured earlier by a real measurer: `auto` joins the network's latency predictor to "
            "the proxy pool, with fewer measurements and less regret than Approach 1 alone ("
            + "; ".join(
                f"{n}: {m(n, 'auto'):.2f} vs {m(n, 'proxy'):.2f} measurements per device, "
                f"{m(n, 'auto', 'regret_mean'):.3f} vs {m(n, 'proxy', 'regret_mean'):.3f} pp"
                for n in warm
            )
            + "). Per device it is not a guarantee (see the counts above): the blend spends "
            "where it expects a gain."
        )
    if "sim-warm" in sc:
        out.append(
            "- The hybrid where its probes are free (option (c); sim-warm) is the cheapest "
            f"measured approach ({m('sim-warm', 'hybrid'):.1f} measurements per device) but its "
            f"regret ({m('sim-warm', 'hybrid', 'regret_mean'):.2f} pp) is not good enough "
            f"against {m('sim-warm', 'auto', 'regret_mean'):.3f} pp; it stays as "
            "`--approach hybrid`, and `auto` uses it only in spaces where the store holds no "
            "proxy device for Approach 1."
        )
    viol = sum(
        r["all"]["measured_violations"] for x in doc["scenarios"] for r in x["runs"].values()
    )
    l2o_viol = sum(x["runs"]["l2o"]["all"]["violations"] for x in doc["scenarios"])
    out.append(
        f"- Measured violations over every run: {viol}. True violations come only from the "
        f"network alone ({l2o_viol} over all scenarios), which measures no design; devices that "
        "cannot be measured keep using it."
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--sim", type=int, default=27, help="simulated devices per sim scenario")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument(
        "--markdown-only", action="store_true", help="rewrite the .md from the stored .json"
    )
    args = ap.parse_args()
    if args.markdown_only:
        doc = json.loads((args.out / "fleet_auto.json").read_text())
        (args.out / "fleet_auto.md").write_text(markdown(doc))
        return
    from fleetnas.paths import cache_dir

    t_all = time.perf_counter()
    cache = args.cache or cache_dir() / "bench-fleet-auto"
    print(f"setup in {cache} ...", flush=True)
    setup = prepare_store(cache)
    scenarios = []
    with tempfile.TemporaryDirectory(prefix="fleet-auto-") as tmp:
        for name in args.scenarios.split(","):
            print(f"{name} ...", flush=True)
            scenarios.append(run_scenario(name, cache / "base.db", Path(tmp), args.sim))
    doc = {
        "config": {"optimizer": OPTIMIZER, "sim_devices": args.sim, "sim_seed": SIM_SEED},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "setup": setup,
        "scenarios": scenarios,
        "total_s": time.perf_counter() - t_all,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet_auto.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = markdown(doc)
    (args.out / "fleet_auto.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
