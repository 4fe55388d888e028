"""Plans that do not depend on history (issue 18, cases 1 and 7): device identity, ``--fresh``
and concurrent runs of one plan, on simulated fleets.

1. *Identity*: fleet A (``fleet generate --seed 0``) and fleet B (``--seed 1``) share device
   names. A is planned on a store, then B on the same store; B's entries must never use A's
   stored values (before identities, B reused them: 156 of 300 entries broke their budget at
   150 devices). Reported: B's violations against ground truth and how its entries ended, next
   to B planned on a clean store (the baseline, same run).
2. *Fresh*: A planned again with ``fresh=True`` on the store that holds A's values equals A
   planned on a clean store (designs and measurements per entry).
3. *Concurrent*: two threads plan A under one name at the same time on one store; each chunk is
   computed once and both return the same plan.

Results: ``benchmarks/results/reliability_core.{json,md}``.
Run: ``.venv/bin/python benchmarks/reliability_core.py [--devices 10]`` (about 5 minutes on 2
busy cores at 10 devices).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import environment, write_results
from fleetnas.fleet import PlanConfig, plan_fleet, sim_fleet
from fleetnas.paths import data_dir
from fleetnas.store import open_store

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = ("p25", "p50")


def prepare_store(path: Path) -> None:
    """HELP's NB201 latencies, NB201 accuracies and a small optimizer (relative budgets)."""
    from fleetnas.data import import_all
    from fleetnas.l2o.train import TrainConfig, train_optimizer

    with open_store(str(path)) as store:
        import_all(store, data_dir(None), parts=["help-nasbench201", "nats"])
        small = {"synthetic": 12, "epochs": 10, "n_lambda": 12, "hidden": (64, 64), "seed": 0}
        train_optimizer(store, TrainConfig(space="nb201", name="tiny", predictor_epochs=4, **small))


def plan(db: Path, fleet: Any, name: str, chunk_size: int = 256, **kw: Any) -> dict[str, Any]:
    config = PlanConfig(space="nb201", approach="auto", chunk_size=chunk_size)
    with open_store(str(db)) as store:
        run = plan_fleet(fleet, config, store, name=name, **kw)
    return {"plan": run.plan, "computed": run.computed, "chunks": run.chunks}


def facts(doc: dict[str, Any]) -> dict[str, Any]:
    s = doc["summary"]
    es = doc["devices"]
    return {
        "entries": s["entries"],
        "ok": s["ok"],
        "infeasible": s["infeasible"],
        "failed": s["failed"],
        "violations": s["violations_known"],
        "measurements_new": sum(e["measurements_new"] for e in es),
        "measurements_reused": sum(e["measurements_reused"] for e in es),
    }


def differ(a: dict[str, Any], b: dict[str, Any], field: str) -> int:
    by = {e["key"]: e.get(field) for e in b["devices"]}
    return sum(by.get(e["key"]) != e.get(field) for e in a["devices"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10)
    args = parser.parse_args()
    env = environment()
    n = args.devices
    fleet_a = sim_fleet(n, seed=0, budgets=BUDGETS, name="sims")
    fleet_b = sim_fleet(n, seed=1, budgets=BUDGETS, name="sims")
    shared = sum(x.device.name == y.device.name for x, y in zip(fleet_a, fleet_b, strict=True))
    res: dict[str, Any] = {"devices": n, "budgets": list(BUDGETS), "shared_names": shared}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = work / "base.db"
        prepare_store(base)
        used, clean_b, clean_a, both = (work / f"{k}.db" for k in ("used", "b", "a", "both"))
        for p in (used, clean_b, clean_a, both):
            shutil.copy(base, p)

        first = plan(used, fleet_a, "a")
        second = plan(used, fleet_b, "b")
        baseline = plan(clean_b, fleet_b, "b")
        reasons = sorted({str(e["reason"])[:90] for e in second["plan"]["devices"] if e["reason"]})
        res["identity"] = {
            "a_on_store": facts(first["plan"]),
            "b_after_a": facts(second["plan"]),
            "b_clean": facts(baseline["plan"]),
            "b_after_a_reasons": reasons[:2],
        }

        fresh = plan(used, fleet_a, "a", fresh=True)
        clean = plan(clean_a, fleet_a, "a")
        res["fresh"] = {
            "fresh": facts(fresh["plan"]),
            "clean": facts(clean["plan"]),
            "designs_differ": differ(fresh["plan"], clean["plan"], "design"),
            "measurement_counts_differ": differ(fresh["plan"], clean["plan"], "measurements"),
        }

        outs: dict[str, dict[str, Any]] = {}

        def go(tag: str) -> None:
            outs[tag] = plan(both, fleet_a, "both", chunk_size=4)

        threads = [threading.Thread(target=go, args=(t,)) for t in ("x", "y")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with open_store(str(both)) as store:
            writes = [
                r.config["chunk"]
                for r in store.list_runs("plan")
                if r.config.get("plan") == "both" and "chunk" in r.config
            ]
        x, y = outs["x"], outs["y"]
        res["concurrent"] = {
            "chunks": len(set(writes)),
            "chunk_writes": len(writes),
            "computed_by_run": [x["chunks"], y["chunks"]],
            "entries_computed_by_run": [x["computed"], y["computed"]],
            "designs_differ": differ(x["plan"], y["plan"], "design"),
            "runs_differ": differ(x["plan"], y["plan"], "run"),
        }
    res["wall_s"] = time.perf_counter() - t0
    res["environment"] = env
    ident, fr, co = res["identity"], res["fresh"], res["concurrent"]
    md = [
        f"# Plans independent of history ({n} simulated devices x {len(BUDGETS)} budgets)",
        "",
        f"Fleets A (seed 0) and B (seed 1) share {shared} of {n} device names. "
        f"Run: `python benchmarks/reliability_core.py --devices {n}` ({res['wall_s']:.0f} s).",
        "",
        "| case | entries | ok | infeasible | failed | violations | new | reused |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("A on a store", ident["a_on_store"]),
        ("B on A's store", ident["b_after_a"]),
        ("B on a clean store", ident["b_clean"]),
        ("A --fresh on A's store", fr["fresh"]),
        ("A on a clean store", fr["clean"]),
    ]
    for label, f in rows:
        md.append(
            f"| {label} | {f['entries']} | {f['ok']} | {f['infeasible']} | {f['failed']} | "
            f"{f['violations']} | {f['measurements_new']} | {f['measurements_reused']} |"
        )
    md += [
        "",
        f"B on A's store: {'; '.join(ident['b_after_a_reasons']) or 'no failures'}.",
        "",
        f"`--fresh` against a clean store: {fr['designs_differ']} designs and "
        f"{fr['measurement_counts_differ']} measurement counts differ.",
        "",
        f"Two concurrent runs of one plan: {co['chunks']} chunks, {co['chunk_writes']} chunk "
        f"writes, chunks computed per run {co['computed_by_run']}, "
        f"{co['designs_differ']} designs differ between the two results.",
    ]
    write_results(RESULTS / "reliability_core", res, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
