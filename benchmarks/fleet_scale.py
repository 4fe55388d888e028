"""Fleet planning at scale: 10,000 simulated devices x 3 latency budgets, planned with the
optimizer network (Approach 2, no verification) on NAS-Bench-201 and on OFA-MobileNetV3, and
checked against the simulator's ground truth.

Setup (cached in ``--cache``, reused by later runs): a store with HELP's latencies of both spaces,
NAS-Bench-201 accuracies and OFA's assets, and one optimizer per space trained by
:func:`fleetnas.l2o.train.train_optimizer` (NB201: its defaults, Method 1 on HELP's meta-train and
meta-valid devices plus 150 synthetic ones; OFA: Method 2 with ``--ofa-steps`` steps on nine of
HELP's twelve OFA settings plus 150 synthetic ones). Each optimizer reads the latency of 10
probe designs, so every simulated device is measured 10 times (through its ``sim:`` spec,
counted) before the network answers its three budgets.

Fleet: ``--devices`` devices drawn by :func:`fleetnas.fleet.sim_fleet` (the simulator's family
mix, seed 2026), each with three absolute budgets at the 25th, 50th and 75th percentile of its
*true* latency over 500 seeded random designs of the space, written to and read back from a CSV
fleet file.

Runs, each in a fresh process on a fresh copy of the store (so peak memory is per run and no run
reuses another's measurements): ``serial`` (in the driver, on every tenth device), ``auto-serial``
(the same devices with ``--approach auto``, for comparison: Approach 1's guided search on NB201,
whose proxy pool is HELP's 27 devices; the verified hybrid on OFA-MobileNetV3, where the store
holds no proxy device; ``benchmarks/fleet_auto.py`` compares the approaches), ``local``
(process pool, 2 workers; the baseline), ``ray`` (local Ray instance with 2 CPUs) and
``serial-full`` (the whole fleet in the driver). Per run: wall time, executor startup, worker and
driver-write seconds, peak RSS of the driver and of the largest worker, entries ok/infeasible,
measurements, violations (true latency over budget) and regret against the exact oracle (NB201)
or a reference pool (OFA: 10,000 seeded designs plus every design returned in the same chunk; a
lower bound). The Ray plan is checked to equal the local-pool plan. The cost model
(:mod:`fleetnas.fleet.costmodel`) is fitted per space on the ``serial`` (per-task costs) and
``local`` (parallel efficiency, startup) runs, checked on those and on the held-out ``ray`` and
``serial-full`` runs, and projects 1,000,000 devices x 3 budgets on Ray clusters.

Results: ``benchmarks/results/fleet_scale.{json,md}``.
Run: ``.venv/bin/python benchmarks/fleet_scale.py`` (about 9-11 minutes on 2 cores once the
optimizers are cached; training them first adds about 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, write_results
from fleetnas.fleet import PlanConfig

RESULTS = Path(__file__).resolve().parent / "results"
SPACES = ("nb201", "ofa_mbv3")
OPTIMIZER = {"nb201": "bench-nb201", "ofa_mbv3": "bench-ofa"}
OFA_TRAIN_DEVICES = (
    "2080ti_1", "2080ti_32", "2080ti_64", "titan_rtx_1", "titan_rtx_32", "titan_rtx_64",
    "titanxp_1", "titanxp_32", "titanxp_64",
)  # fmt: skip
QUANTILES = (25, 50, 75)
FLEET_SEED = 2026
CHUNK = 256
CLUSTERS = ((1, 32), (8, 32), (32, 32))
#: The plan's default safety margin of the network alone.
DEFAULT_MARGIN = PlanConfig.__dataclass_fields__["margin"].default


# ---- setup -------------------------------------------------------------------------------------
def prepare_store(cache: Path, ofa_steps: int) -> dict[str, Any]:
    """The cached base store with data and both optimizers; returns setup facts."""
    from fleetnas.data import import_all
    from fleetnas.l2o.artifact import ARTIFACT_KIND
    from fleetnas.l2o.train import TrainConfig, train_optimizer
    from fleetnas.store import open_store

    cache.mkdir(parents=True, exist_ok=True)
    db = cache / "base.db"
    facts_path = cache / "setup.json"
    facts = json.loads(facts_path.read_text()) if facts_path.exists() else {}
    with open_store(str(db)) as store:
        t0 = time.perf_counter()
        import_all(store, parts=["help-nasbench201", "nats", "help-ofa", "ofa"])
        facts.setdefault("import_s", time.perf_counter() - t0)
        have = {a.name for a in store.list_artifacts(ARTIFACT_KIND)}
        configs = {
            "nb201": TrainConfig(space="nb201", name=OPTIMIZER["nb201"]),
            "ofa_mbv3": TrainConfig(
                space="ofa_mbv3",
                name=OPTIMIZER["ofa_mbv3"],
                method=2,
                steps=ofa_steps,
                devices=OFA_TRAIN_DEVICES,
            ),
        }
        for space, cfg in configs.items():
            if cfg.name in have:
                continue
            print(f"training {cfg.name} ...", flush=True)
            t0 = time.perf_counter()
            train_optimizer(store, cfg)
            facts[f"train_{space}_s"] = time.perf_counter() - t0
            facts[f"train_{space}"] = {"method": cfg.method, "steps": cfg.steps}
    facts_path.write_text(json.dumps(facts, indent=1))
    return facts


def make_fleet(space_name: str, n: int, path: Path, seed: int = FLEET_SEED) -> dict[str, Any]:
    """``n`` simulated devices with budgets at quantiles of their true latency; written as CSV."""
    from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit, read_fleet, sim_fleet, write_fleet
    from fleetnas.sim import SimDevice, latency_matrix
    from fleetnas.spaces import get_space

    t0 = time.perf_counter()
    base = sim_fleet(n, seed=seed, budgets=("p50",))
    space = get_space(space_name)
    models = [SimDevice.from_device(d.device).model for d in base]
    lat = latency_matrix(models, space, space.sample(500, np.random.default_rng(seed)))
    qs = np.percentile(lat, QUANTILES, axis=1).T
    devices = [
        FleetDevice(
            d.device,
            tuple(
                Budget(Limit(value=float(f"{v:.5g}")), None, f"q{q}")
                for v, q in zip(row, QUANTILES, strict=True)
            ),
        )
        for d, row in zip(base, qs, strict=True)
    ]
    fleet = Fleet(f"scale-{space_name}", devices)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_fleet(fleet, path)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = read_fleet(path)
    read_s = time.perf_counter() - t0
    assert [d.device for d in back] == [d.device for d in fleet]
    return {
        "devices": n,
        "tasks": fleet.n_tasks,
        "generate_s": gen_s,
        "csv_write_s": write_s,
        "csv_read_s": read_s,
        "csv_mb": path.stat().st_size / 2**20,
        "families": {
            f: sum(d.device.family == f for d in fleet)
            for f in sorted({d.device.family for d in fleet})
        },
    }


# ---- one run (child process) ---------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """Plan one fleet on one executor; print a JSON line with the run's facts."""
    from fleetnas.fleet import Fleet, PlanConfig, make_executor, plan_fleet, read_fleet
    from fleetnas.fleet.executors import peak_rss_mb
    from fleetnas.store import open_store

    fleet = read_fleet(args.fleet)
    if args.stride > 1:  # every n-th device: the fleet file is ordered by family
        fleet = Fleet(fleet.name, fleet.devices[:: args.stride], source=fleet.source)
    work = Path(args.workdir)
    db = work / f"{args.label}.db"
    shutil.copy(args.base, db)
    cfg = PlanConfig(
        space=args.space,
        approach=args.approach,
        optimizer=OPTIMIZER[args.space],
        chunk_size=CHUNK,
        margin=args.margin,
    )
    out = work / f"{args.label}.plan.json"
    with open_store(str(db)) as store:
        t0 = time.perf_counter()
        run = plan_fleet(
            fleet, cfg, store, name=f"bench-{args.label}", out=out,
            executor=make_executor(args.executor, args.workers),
        )  # fmt: skip
        wall = time.perf_counter() - t0
    s = run.summary
    r = s["run"]
    truth = [e["truth"] for e in run.entries if e.get("truth")]
    regrets = np.array([t["regret_pp"] for t in truth if t.get("regret_pp") is not None])
    fact = {
        "label": args.label,
        "space": args.space,
        "executor": args.executor,
        "approach": args.approach,
        "margin": args.margin,
        "workers": 1 if args.executor == "serial" else args.workers,
        "devices": len(fleet),
        "tasks": fleet.n_tasks,
        "wall_s": wall,
        "prepare_s": r["prepare_s"],
        "startup_s": r["startup_s"],
        "chunks_s": r["chunks_s"],
        "finish_s": r["finish_s"],
        "worker_s": r["worker_s"],
        "truth_s": r["timings"].get("truth_s", 0.0),
        "write_s": r["write_s"],
        "driver_peak_rss_mb": peak_rss_mb(),
        "worker_peak_rss_mb": r["worker_peak_rss_mb"],
        "ok": s["ok"],
        "infeasible": s["infeasible"],
        "failed": s["failed"],
        "measurements": s["measurements"],
        "device_seconds": s["device_seconds"],
        "violations": s["violations_known"],
        "truth_checked": s["truth_checked"],
        "mean_regret_pp": float(regrets.mean()) if len(regrets) else None,
        "p90_regret_pp": float(np.percentile(regrets, 90)) if len(regrets) else None,
        "max_regret_pp": float(regrets.max()) if len(regrets) else None,
        "by_family": [
            {k: row[k] for k in ("family", "entries", "violations", "mean_regret_pp")}
            for row in s["by_family"]
        ],
        "by_method": [
            {k: row[k] for k in ("method", "entries", "measurements", "violations")}
            for row in s["by_method"]
        ],
        "plan": str(out),
    }
    print("RESULT " + json.dumps(fact), flush=True)


def run_child(
    label: str,
    space: str,
    executor: str,
    fleet: Path,
    base: Path,
    work: Path,
    stride: int = 1,
    workers: int = 2,
    approach: str = "l2o",
    margin: float = DEFAULT_MARGIN,
) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--child", "--label", label, "--space", space,
        "--executor", executor, "--fleet", str(fleet), "--base", str(base),
        "--workdir", str(work), "--stride", str(stride), "--workers", str(workers),
        "--approach", approach, "--margin", str(margin),
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"run {label} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    fact = json.loads(line[len("RESULT ") :])
    fact["process_s"] = time.perf_counter() - t0
    print(
        f"  {label}: {fact['tasks']} tasks in {fact['wall_s']:.1f} s (process "
        f"{fact['process_s']:.1f} s), violations {fact['violations']}, mean regret "
        f"{fact['mean_regret_pp']:.3f} pp",
        flush=True,
    )
    return fact


# ---- comparisons -------------------------------------------------------------------------------
_VOLATILE = ("wall_s", "run", "chunk")


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def same_plans(path_a: str, path_b: str) -> dict[str, Any]:
    """Entries equal up to float summation order; count of entries whose design differs."""
    a = json.loads(Path(path_a).read_text())["devices"]
    b = json.loads(Path(path_b).read_text())["devices"]
    strip = [{k: v for k, v in e.items() if k not in _VOLATILE} for e in a]
    strip_b = [{k: v for k, v in e.items() if k not in _VOLATILE} for e in b]
    designs = sum(x["design"] != y["design"] for x, y in zip(a, b, strict=True))
    return {
        "entries": len(a),
        "equal": len(a) == len(b)
        and all(_close(x, y) for x, y in zip(strip, strip_b, strict=True)),
        "design_differences": designs,
    }


def cost_models(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per space: fit on the ``serial`` and ``local`` runs (truth checking excluded: only
    simulated fleets have it), check on all network-alone runs, project 1M devices x 3 budgets
    on Ray clusters."""
    from fleetnas.fleet.costmodel import CostModel, RunSample

    out = {}
    for space in SPACES:
        mine = [r for r in runs if r["space"] == space and r["approach"] == "l2o"]
        samples = [
            RunSample(
                r["label"],
                r["executor"],
                r["workers"],
                r["tasks"],
                r["wall_s"] - r["truth_s"] / r["workers"],
                r["startup_s"],
                r["worker_s"] - r["truth_s"],
                r["write_s"],
                prepare_s=r["prepare_s"],
                finish_s=r["finish_s"],
            )
            for r in mine
        ]
        fit = [s for s in samples if s.label in (f"{space}-serial", f"{space}-local")]
        model = CostModel.fit(fit)
        out[space] = {
            "model": model.to_dict(),
            "check": model.check(samples),
            "projection": [
                model.project(devices=1_000_000, budgets=3, nodes=n, cores_per_node=c)
                for n, c in CLUSTERS
            ],
        }
    return out


# ---- report ------------------------------------------------------------------------------------
def markdown(doc: dict[str, Any]) -> str:
    n = doc["config"]["devices"]
    lines = [
        "# Fleet planning at scale",
        "",
        f"{n:,} simulated devices x 3 latency budgets per space, planned with the optimizer "
        "network alone (10 probe measurements per device, then one batched budget-mode call per "
        "chunk of 256 tasks) and checked against the simulator. Machine: "
        f"{doc['machine']['cores']} CPUs, {doc['machine']['platform']}. Each run in a fresh "
        "process on a fresh copy of the store.",
        "",
        "| space | run | approach | tasks | wall s | startup s | worker s | driver write s "
        "| driver peak MB | worker peak MB | ok | infeasible | measurements | violations "
        "| mean regret pp | p90 regret pp |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["runs"]:
        lines.append(
            f"| {r['space']} | {r['label']} | {r['approach']} | {r['tasks']:,} | "
            f"{r['wall_s']:.1f} | "
            f"{r['startup_s']:.1f} | {r['worker_s']:.1f} | {r['write_s']:.1f} | "
            f"{r['driver_peak_rss_mb']:.0f} | {r['worker_peak_rss_mb']:.0f} | {r['ok']:,} | "
            f"{r['infeasible']} | {r['measurements']:,} | "
            f"{r['violations']:,} ({r['violations'] / r['tasks']:.1%}) | "
            f"{r['mean_regret_pp']:.3f} | {r['p90_regret_pp']:.3f} |"
        )
    lines += ["", "Ray plan vs local-pool plan (same fleet, config and seed):", ""]
    for space, c in doc["ray_equals_local"].items():
        lines.append(
            f"- {space}: {'equal' if c['equal'] else 'DIFFERENT'} over {c['entries']:,} entries "
            f"({c['design_differences']} designs differ)"
        )
    lines += ["", "## Cost model", ""]
    for space, cm in doc["cost_model"].items():
        m = cm["model"]
        lines.append(
            f"**{space}**: {m['task_s'] * 1e3:.2f} ms worker time, {m['write_s'] * 1e3:.2f} ms "
            f"driver write time and {m['finish_s'] * 1e3:.3f} ms plan assembly per task, "
            f"parallel efficiency {m['efficiency']:.2f}, prepare {m['prepare_s']:.1f} s, startup "
            + ", ".join(f"{k} {v:.1f} s" for k, v in m["startup_s"].items())
            + " (fitted on the serial and local runs; truth checking excluded). Efficiency is "
            "measured on this 2-vCPU machine, where the driver and other jobs share the cores "
            "with both workers: a pessimistic value for a cluster."
        )
        lines.append("")
        lines.append("| run | fitted on | measured s | predicted s | error |")
        lines.append("|---|---|---:|---:|---:|")
        for row in cm["check"]:
            lines.append(
                f"| {row['run']} | {'yes' if row['fitted'] else 'no'} | {row['measured_s']:.1f} "
                f"| {row['predicted_s']:.1f} | {row['error']:+.0%} |"
            )
        lines.append("")
        lines.append(
            "| 1M devices x 3 budgets on | wall | workers' part | driver writes | bound by "
            "| core-hours | cost USD |"
        )
        lines.append("|---|---:|---:|---:|---|---:|---:|")
        for p in cm["projection"]:
            lines.append(
                f"| {p['nodes']} x {p['cores_per_node']} cores | {p['wall_s'] / 60:.1f} min | "
                f"{p['compute_s'] / 60:.1f} min | {p['write_s'] / 60:.1f} min | {p['bound']} | "
                f"{p['core_hours']:.1f} | {p['usd']:.2f} |"
            )
        lines.append("")
    lines.append(
        f"Prices assume ${doc['cost_model'][SPACES[0]]['projection'][0]['usd_per_core_hour']} per "
        "core-hour (on-demand general-purpose cloud vCPU; an assumption, not a quote), billed "
        "for the whole wall time on every core. The driver writes every chunk to the store "
        "(SQLite here): at a million devices that serial part, not the workers, sets the pace."
    )
    s = doc["setup"]
    lines += [
        "",
        f"Setup (cached): data import {s.get('import_s', 0):.0f} s"
        + "".join(
            f", training {k.removeprefix('train_').removesuffix('_s')} {v:.0f} s"
            for k, v in s.items()
            if k.startswith("train_") and k.endswith("_s")
        )
        + ". Fleet files: "
        + "; ".join(
            f"{sp} {f['csv_mb']:.1f} MB CSV written in {f['csv_write_s']:.1f} s, read and "
            f"validated in {f['csv_read_s']:.1f} s"
            for sp, f in doc["fleets"].items()
        )
        + f". Benchmark total {doc['total_s'] / 60:.1f} min.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--ofa-steps", type=int, default=1000)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for a in ("--label", "--space", "--executor", "--fleet", "--base", "--workdir"):
        ap.add_argument(a, help=argparse.SUPPRESS)
    ap.add_argument("--approach", default="l2o", help=argparse.SUPPRESS)
    ap.add_argument("--stride", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    from fleetnas.fleet import ray_available
    from fleetnas.paths import cache_dir

    t_all = time.perf_counter()
    cache = args.cache or cache_dir() / "bench-fleet-scale"
    print(f"setup in {cache} ...", flush=True)
    setup = prepare_store(cache, args.ofa_steps)
    runs, fleets, equal = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="fleet-scale-") as tmp:
        work = Path(tmp)
        for space in SPACES:
            path = work / f"{space}.csv"
            fleets[space] = make_fleet(space, args.devices, path)
            print(f"{space}: fleet of {args.devices} devices ready", flush=True)
            base = cache / "base.db"
            small = 10
            runs.append(run_child(f"{space}-serial", space, "serial", path, base, work, small))
            runs.append(
                run_child(
                    f"{space}-auto-serial",
                    space,
                    "serial",
                    path,
                    base,
                    work,
                    small,
                    approach="auto",
                )
            )
            runs.append(run_child(f"{space}-local", space, "local", path, base, work))
            if ray_available():
                runs.append(run_child(f"{space}-ray", space, "ray", path, base, work))
                equal[space] = same_plans(runs[-2]["plan"], runs[-1]["plan"])
            else:
                print("  ray is not installed; skipping the Ray run", flush=True)
            runs.append(run_child(f"{space}-serial-full", space, "serial", path, base, work))
        for r in runs:
            r.pop("plan")
    doc = {
        "config": {
            "devices": args.devices,
            "budgets": QUANTILES,
            "chunk": CHUNK,
            "fleet_seed": FLEET_SEED,
            "ofa_steps": args.ofa_steps,
        },
        "machine": environment(),
        "setup": setup,
        "fleets": fleets,
        "runs": runs,
        "ray_equals_local": equal,
        "cost_model": cost_models(runs),
        "total_s": time.perf_counter() - t_all,
    }
    md = markdown(doc)
    write_results(args.out / "fleet_scale", doc, md)
    print(md)


if __name__ == "__main__":
    main()
