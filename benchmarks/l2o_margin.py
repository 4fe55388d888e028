"""The network alone's safety margin: budget violations against regret, chosen on one simulated
fleet and checked on another.

Budget mode (:func:`fleetnas.l2o.budget.for_budget`) accepts a design when its predicted latency
times ``exp(margin x relative spread)`` meets the budget, so ``margin`` trades violations (true
latency over budget) for accuracy. ``fleetnas plan --margin`` sets it (default 1.0). This
benchmark plans, with ``--approach l2o`` and each margin of a grid, two fleets of ``--devices``
simulated devices x 3 budgets (25th/50th/75th percentile of their true latency, as in
``benchmarks/fleet_scale.py``, whose cached store and optimizers it reuses): a *calibration*
fleet (seed 2027) and the *test* fleet (seed 2026, the devices fleet_scale's serial runs plan).
The smallest margin whose calibration violations are at most ``--target`` is then read off, with
its test-fleet numbers: a margin chosen on devices the test never sees.

Results: ``benchmarks/results/l2o_margin.{json,md}``.
Run: ``.venv/bin/python benchmarks/l2o_margin.py`` (about 6 minutes on 2 cores once
fleet_scale's optimizers are cached).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import environment, write_results
from fleet_scale import (
    DEFAULT_MARGIN,
    FLEET_SEED,
    OPTIMIZER,
    SPACES,
    make_fleet,
    prepare_store,
    run_child,
)

RESULTS = Path(__file__).resolve().parent / "results"
MARGINS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
CALIBRATION_SEED = 2027


def sweep(space: str, n: int, stride: int, base: Path, work: Path) -> list[dict[str, Any]]:
    """One serial ``l2o`` run per (fleet, margin)."""
    rows = []
    for fleet_name, seed in (("calibration", CALIBRATION_SEED), ("test", FLEET_SEED)):
        path = work / f"{space}-{fleet_name}.csv"
        make_fleet(space, n, path, seed=seed)
        for m in MARGINS:
            fact = run_child(
                f"{space}-{fleet_name}-m{m:g}", space, "serial", path, base, work, stride, margin=m
            )
            fact.pop("plan")
            rows.append({"fleet": fleet_name, **fact})
    return rows


def choose(rows: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """The smallest margin with calibration violations <= ``target`` and its test numbers."""
    cal = {r["margin"]: r for r in rows if r["fleet"] == "calibration"}
    test = {r["margin"]: r for r in rows if r["fleet"] == "test"}
    ok = [m for m in sorted(cal) if cal[m]["violations"] / cal[m]["tasks"] <= target]
    m = ok[0] if ok else max(cal)
    return {
        "margin": m,
        "met_target": bool(ok),
        "calibration_violation_rate": cal[m]["violations"] / cal[m]["tasks"],
        "test_violation_rate": test[m]["violations"] / test[m]["tasks"],
        "test_mean_regret_pp": test[m]["mean_regret_pp"],
        "default_test_violation_rate": test[DEFAULT_MARGIN]["violations"]
        / test[DEFAULT_MARGIN]["tasks"],
        "default_test_mean_regret_pp": test[DEFAULT_MARGIN]["mean_regret_pp"],
    }


def markdown(doc: dict[str, Any]) -> str:
    c = doc["config"]
    lines = [
        "# The network alone: safety margin against violations and regret",
        "",
        f"{c['devices'] // c['stride']:,} simulated devices x 3 latency budgets per fleet "
        f"(every {c['stride']}th of {c['devices']:,}), planned with `--approach l2o` (10 probe "
        "measurements per device, no other) for each margin; violations: true latency over the "
        "budget; regret against the exact oracle (NB201) or a 10,000-design reference pool "
        f"(OFA). The margin is chosen on the calibration fleet (seed {CALIBRATION_SEED}) for at "
        f"most {c['target']:.1%} violations and read on the test fleet (seed {FLEET_SEED}). "
        f"Machine: {doc['machine']['cores']} CPUs, {doc['machine']['platform']}.",
        "",
        "| space | fleet | margin | tasks | violations | rate | infeasible | mean regret pp "
        "| p90 regret pp | wall s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["runs"]:
        lines.append(
            f"| {r['space']} | {r['fleet']} | {r['margin']:g} | {r['tasks']:,} | "
            f"{r['violations']} | {r['violations'] / r['tasks']:.1%} | {r['infeasible']} | "
            f"{r['mean_regret_pp']:.3f} | {r['p90_regret_pp']:.3f} | {r['wall_s']:.1f} |"
        )
    lines += ["", "| space | chosen margin | calibration rate | test rate | test mean regret pp "
              f"| default {DEFAULT_MARGIN:g}: test rate | test mean regret pp |",
              "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for space, ch in doc["chosen"].items():
        lines.append(
            f"| {space} | {ch['margin']:g}{'' if ch['met_target'] else ' (target missed)'} | "
            f"{ch['calibration_violation_rate']:.1%} | {ch['test_violation_rate']:.1%} | "
            f"{ch['test_mean_regret_pp']:.3f} | {ch['default_test_violation_rate']:.1%} | "
            f"{ch['default_test_mean_regret_pp']:.3f} |"
        )
    lines += ["", f"Benchmark total {doc['total_s'] / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--target", type=float, default=0.025)
    ap.add_argument("--ofa-steps", type=int, default=1000)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from fleetnas.paths import cache_dir

    t0 = time.perf_counter()
    cache = args.cache or cache_dir() / "bench-fleet-scale"
    setup = prepare_store(cache, args.ofa_steps)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="l2o-margin-") as tmp:
        for space in SPACES:
            runs += sweep(space, args.devices, args.stride, cache / "base.db", Path(tmp))
    chosen = {
        space: choose([r for r in runs if r["space"] == space], args.target) for space in SPACES
    }
    doc = {
        "config": {
            "devices": args.devices,
            "stride": args.stride,
            "target": args.target,
            "margins": MARGINS,
            "optimizers": OPTIMIZER,
        },
        "machine": environment(),
        "setup": setup,
        "runs": runs,
        "chosen": chosen,
        "total_s": time.perf_counter() - t0,
    }
    write_results(args.out / "l2o_margin", doc, markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
