"""Benchmark of latency prediction for a user's own device (issue 15) on the visible held-out
protocol: no target is ever predicted by a model that saw its twins.

Data: HELP's NAS-Bench-201 latencies (15,625 cells, 27 device settings), HELP's 10 reference
designs as the probes, NAS-Bench-201 CIFAR-10 accuracy for the budget checks. Splits:

- **leave-hardware-out** (LHO, *chooses the parameters*): targets = HELP's own 23 columns, one
  hardware group at a time (a GPU with all its batch sizes; Gold Xeons; Silver Xeons; Pixel;
  Samsung phones; Essential); the pool = the other HELP-own groups. The four HW-NAS-Bench
  columns are never in any LHO pool.
- **leave-source-out** (LSO, reported): pool = HELP's own 23 columns; targets = eyeriss, fpga,
  pixel3, raspi4 (HW-NAS-Bench's measurements), each predicted with the other three never in
  training. Interval calibration: the LHO scores of the 23 HELP-own devices.
- **leave-family-out** (LFO, reported): pool = every device outside the family (GPUs, Xeons,
  phones); calibration: the LHO scores of devices outside the family.
- this machine's runtime stacks (reported when ``benchmarks/results/stacks/`` holds exchange
  files of NB201 latencies, see :func:`stack_targets`): pool = all 27 HELP columns.

Methods, in the same run, per target:

- ``probes``: the device-aware predictor adapted to the 10 probes, with its split-conformal
  interval (:mod:`fleetnas.predict.interval`; misfit weight β chosen on LHO);
- ``active N``: :class:`fleetnas.predict.adapt.FewShotLatency` fitted on the probes and then
  N - 10 designs chosen one at a time by the acquisition rule chosen on LHO (N counts the
  probes, so ``active 10`` is the probes alone through the few-shot model); its interval blends
  the fleet's calibration with cross-conformal on the device's own measurements
  (:mod:`fleetnas.predict.conformal`, prior strength n0 chosen on LHO). Spearman is reported
  over every design not used for fitting and over the designs unmeasured at the largest N (the
  same scored set at every N, so a 160-design stacks table does not shrink it);
- ``ridge N random``: ridge (leave-one-out penalty) of the target's log-latency on [the pool's
  standardized log latencies, one-hot encoding, log FLOPs] fitted to N random designs (mean of
  three draws);
- ``HELP-style MLP`` (encoding + probe embedding, affine log correction through the probes) and
  the ``best pool device`` (the pool column ranking the probes best, log-log line through them),
  both from ``benchmarks/predictors.py``.

Scores are over every design of the target not used for fitting: Spearman, share within ±10 %,
coverage of the nominal 90 % interval. Budget check (network alone's decision rule): budgets at
the 10/30/50/70/90 % quantiles of the target's true latency; the most accurate design whose safe
predicted latency meets the budget, over the whole space (an exhaustive search on the
predictions stands in for the optimizer network: it isolates what the margin does), with the
old fleet-wide margin (0.5 log-std, ``DEFAULT_MARGIN``) and with the interval margin
(``max_violation`` chosen on LHO); violation = true latency over budget; regret in accuracy
points against the best truly feasible design. Two hybrids verify that proposal on the target
with at most 3 real measurements: bisection (``predict_decisions.hybrid_rule``, the library's
``verify_candidates``, proposal window chosen on LHO) and expected improvement
(``predict_decisions.improvement_rule``, the library's ``verify_by_improvement``, shift chosen on
LHO); which of the two is "the hybrid" is chosen on LHO too. Markdown:
``predict_heldout_report.py``.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/predict_heldout.py`` (5-30 minutes on
the shared 2-core machine, depending on its load; ``--quick`` for a smoke run). Results:
``benchmarks/results/predict_heldout.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import STACKS, environment, write_results
from fleetnas.predict.adapt import (
    ACQUISITIONS,
    DEFAULT_PRIOR_STRENGTH,
)
from fleetnas.predict.interval import IntervalCalibration, components, coverage
from predict_decisions import (
    HYBRID_CANDIDATES,
    HYBRID_MEASUREMENTS,
    HYBRID_WINDOWS,
    IMPROVEMENT_SHIFTS,
    summarize_rule,
)
from predict_heldout_eval import (
    BETAS,
    FAMILIES,
    HWNB,
    LEVEL,
    MAX_VIOLATIONS,
    NS,
    PRIOR_STRENGTHS,
    TARGETS,
    Data,
    active_curve,
    evaluate,
    hardware_group,
    help_baselines,
    probes_eval,
    stack_targets,
)
from predict_heldout_report import markdown

RESULTS = Path(__file__).resolve().parent / "results"


# ---- splits -----------------------------------------------------------------------------------
def leave_hardware_out(data: Data, args: argparse.Namespace) -> dict[str, Any]:
    """Fits, score components and the per-target material the parameter choice needs."""
    own = [d.name for d in data.devices if d.name not in HWNB]
    groups = sorted({hardware_group(n) for n in own})
    if args.quick:
        groups = [g for g in groups if g in ("1080ti", "gold", "samsung")]
    parts, preds = [], {}
    for g in groups:
        held = [n for n in own if hardware_group(n) == g]
        pool = [n for n in own if hardware_group(n) != g]
        pred = data.fit(pool, args.epochs, args.seed)
        probe = np.zeros(len(data.archs), dtype=bool)
        probe[data.ref] = True
        y = data.matrix(held)
        parts += components(
            pred, data.archs, y, y[data.ref].T, held, exclude=probe, groups=[g] * len(held)
        )
        for n in held:
            preds[n] = (pred, pool)
    return {"groups": groups, "parts": parts, "preds": preds}


def choose(data: Data, lho: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Parameters chosen on leave-hardware-out: β (coverage closest to 90 % when each group
    is calibrated on the others), the interval margin's ``max_violation`` (least conservative
    with at most 5 % violations), the acquisition rule (mean Spearman over N on the same scored
    set), the few-shot interval's prior strength (coverage closest to 90 % at every N) and the
    hybrid's proposal window (fewest violations, then least regret)."""
    parts = lho["parts"]
    beta_rows = {}
    for b in BETAS:
        covs = []
        for g in lho["groups"]:
            cal = IntervalCalibration.from_components([p for p in parts if p.group != g], b)
            covs += [coverage([p], cal, LEVEL) for p in parts if p.group == g]
        beta_rows[b] = float(np.mean(covs))
    beta = min(BETAS, key=lambda b: (abs(beta_rows[b] - LEVEL), b))
    per_target, viol = {}, {v: [] for v in MAX_VIOLATIONS}
    regret = {v: [] for v in MAX_VIOLATIONS}
    old = {"violation": [], "regret": []}
    for n, (pred, _) in lho["preds"].items():
        g = hardware_group(n)
        cal = IntervalCalibration.from_components([p for p in parts if p.group != g], beta)
        r = probes_eval(data, pred, data.lat[n], cal)
        per_target[n] = r
        for v in MAX_VIOLATIONS:
            for row in r["budget_interval"][v]["per_budget"]:
                viol[v].append(row["violation"])
                if row["regret"] is not None:
                    regret[v].append(row["regret"])
        for row in r["budget_old_margin"]["per_budget"]:
            old["violation"].append(row["violation"])
            if row["regret"] is not None:
                old["regret"].append(row["regret"])
    mv_rows = {
        v: {"violations": float(np.mean(viol[v])), "regret": float(np.mean(regret[v]))}
        for v in MAX_VIOLATIONS
    }
    ok = [v for v in MAX_VIOLATIONS if mv_rows[v]["violations"] <= 0.05]
    mv = max(ok) if ok else min(MAX_VIOLATIONS)
    # acquisition and prior strength: one device per group (the first), both rules, each
    # device's fleet interval calibrated without its group
    acq_rows: dict[str, list[float]] = {a: [] for a in ACQUISITIONS}
    sample = [next(n for n in lho["preds"] if hardware_group(n) == g) for g in lho["groups"]]
    sample = sample[:: max(1, -(-len(sample) // args.acq_devices))]
    acq_detail: dict[str, dict] = {}
    for n in sample:
        pred, _ = lho["preds"][n]
        g = hardware_group(n)
        cal = IntervalCalibration.from_components([p for p in parts if p.group != g], beta)
        acq_detail[n] = {}
        for a in ACQUISITIONS:
            curve = active_curve(data, pred, data.lat[n], a, cal, DEFAULT_PRIOR_STRENGTH)
            acq_detail[n][a] = curve
            acq_rows[a].append(float(np.mean([curve[k]["spearman_common"] for k in NS[1:]])))
    acq = max(ACQUISITIONS, key=lambda a: float(np.mean(acq_rows[a])))
    strength_rows = {
        s0: {
            k: float(np.mean([acq_detail[n][acq][k]["coverage_by_strength"][s0] for n in sample]))
            for k in NS
        }
        for s0 in PRIOR_STRENGTHS
    }
    strength = min(
        PRIOR_STRENGTHS,
        key=lambda s0: (max(abs(c - LEVEL) for c in strength_rows[s0].values()), s0),
    )
    # hybrid window: fewest violations, then least mean regret
    hyb_rows = {
        w: summarize_rule(
            [row for r in per_target.values() for row in r["budget_hybrid"][mv][w]["per_budget"]]
        )
        for w in HYBRID_WINDOWS
    }
    window = min(
        HYBRID_WINDOWS, key=lambda w: (hyb_rows[w]["violations"], hyb_rows[w]["regret_mean"], w)
    )
    # expected-improvement hybrid: the shift the same way; then the hybrid rule itself
    imp_rows = {
        sh: summarize_rule(
            [
                row
                for r in per_target.values()
                for row in r["budget_improvement"][mv][sh]["per_budget"]
            ]
        )
        for sh in IMPROVEMENT_SHIFTS
    }
    shift = min(
        IMPROVEMENT_SHIFTS,
        key=lambda sh: (imp_rows[sh]["violations"], imp_rows[sh]["regret_mean"], sh),
    )
    rule_rows = {"bisection": hyb_rows[window], "improvement": imp_rows[shift]}
    rule = min(rule_rows, key=lambda k: (rule_rows[k]["violations"], rule_rows[k]["regret_mean"]))
    return {
        "beta": beta,
        "max_violation": mv,
        "acquisition": acq,
        "prior_strength": strength,
        "hybrid_measurements": HYBRID_MEASUREMENTS,
        "hybrid_candidates": HYBRID_CANDIDATES,
        "beta_coverage": beta_rows,
        "max_violation_rows": mv_rows,
        "old_margin": {
            "violations": float(np.mean(old["violation"])),
            "regret": float(np.mean(old["regret"])),
        },
        "hybrid_window": window,
        "lho_hybrid": {str(w): r for w, r in hyb_rows.items()},
        "improvement_shift": shift,
        "lho_improvement": {str(sh): r for sh, r in imp_rows.items()},
        "hybrid_rule": rule,
        "acquisition_spearman": {a: float(np.mean(v)) for a, v in acq_rows.items()},
        "acquisition_devices": sample,
        "strength_coverage": strength_rows,
        "lho_probes": {
            n: {k: r[k] for k in ("spearman", "within10", "coverage90")}
            for n, r in per_target.items()
        },
        "lho_active": acq_detail,
    }


def reported_split(
    data: Data,
    name: str,
    pool: list[str],
    targets: dict[str, np.ndarray],
    cal_parts: list,
    chosen: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    print(f"{name}: pool {len(pool)}, targets {list(targets)}", flush=True)
    pred = data.fit(pool, args.epochs, args.seed)
    cal = IntervalCalibration.from_components(cal_parts, chosen["beta"])
    out: dict[str, Any] = {
        "pool": pool,
        "calibration_devices": list(cal.devices),
        "targets": {},
    }
    for t, y in targets.items():
        out["targets"][t] = evaluate(
            data, pred, pool, t, y, cal, chosen, (chosen["acquisition"],), True
        )
    base = help_baselines(data, pool, targets)
    out["mlp_train_s"] = base.pop("_mlp_train_s")
    for t, v in base.items():
        out["targets"][t].update(v)
    out["summary"] = summarize(out["targets"], chosen)
    return out


def summarize(targets: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    acq, mv, hw = chosen["acquisition"], chosen["max_violation"], chosen["hybrid_window"]
    sh = chosen["improvement_shift"]
    rows = list(targets.values())

    def mean(f) -> float:
        vals = [f(r) for r in rows]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else float("nan")

    out: dict[str, Any] = {
        "probes": {
            k: mean(lambda r, k=k: r["probes"][k]) for k in ("spearman", "within10", "coverage90")
        },
        "mlp_help": {k: mean(lambda r, k=k: r["mlp_help"][k]) for k in ("spearman", "within10")},
        "best_pool_device": {
            k: mean(lambda r, k=k: r["best_pool_device"][k]) for k in ("spearman", "within10")
        },
        "active": {},
        "ridge_random": {},
    }
    for n in NS:
        out["active"][n] = {
            k: mean(lambda r, n=n, k=k: r["active"][acq][n][k])
            for k in ("spearman", "spearman_common", "within10", "coverage90")
        }
        out["ridge_random"][n] = {
            k: mean(lambda r, n=n, k=k: r["ridge_random"][n][k]) for k in ("spearman", "within10")
        }
    for key, get in (
        ("old_margin", lambda r: r["probes"]["budget_old_margin"]["per_budget"]),
        ("interval", lambda r: r["probes"]["budget_interval"][mv]["per_budget"]),
        ("hybrid_bisection", lambda r: r["probes"]["budget_hybrid"][mv][hw]["per_budget"]),
        ("hybrid_improvement", lambda r: r["probes"]["budget_improvement"][mv][sh]["per_budget"]),
    ):
        out[f"budget_{key}"] = summarize_rule([b for r in rows for b in get(r)])
    out["budget_hybrid"] = out[f"budget_hybrid_{chosen['hybrid_rule']}"]
    return out


def _first(names: list[str], name: str) -> int:
    """Index of the first device of ``name``'s hardware group in ``names``."""
    g = hardware_group(name)
    return next(i for i, n in enumerate(names) if hardware_group(n) == g)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("FLEETNAS_DATA_DIR", "../shared/data"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 LHO groups, few epochs")
    ap.add_argument(
        "--acq-devices", type=int, default=10, help="LHO devices choosing the rule and n0"
    )
    ap.add_argument(
        "--lfo-targets", type=int, default=5, help="targets per family (one per hardware first)"
    )
    args = ap.parse_args()
    if args.quick:
        args.epochs = 3
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = Data(Path(args.data))
    print("leave-hardware-out (parameter choice)", flush=True)
    lho = leave_hardware_out(data, args)
    chosen = choose(data, lho, args)
    print(f"chosen: beta {chosen['beta']}, max_violation {chosen['max_violation']}, "
          f"acquisition {chosen['acquisition']}, prior strength {chosen['prior_strength']}",
          flush=True)  # fmt: skip
    own = [d.name for d in data.devices if d.name not in HWNB]
    splits: dict[str, Any] = {}
    splits["leave-source-out"] = reported_split(
        data, "leave-source-out", own, {t: data.lat[t] for t in HWNB}, lho["parts"], chosen, args
    )
    _write(args, chosen, splits, "partial", t0)
    fams = list(FAMILIES.items())[:1] if args.quick else list(FAMILIES.items())
    for fam, kinds in fams:
        tests = [d.name for d in data.devices if d.family in kinds]
        pool = [d.name for d in data.devices if d.family not in kinds]
        cal = [p for p in lho["parts"] if data.family[p.device] not in kinds]
        tests = sorted(tests, key=lambda t: (tests.index(t) > _first(tests, t), tests.index(t)))
        tests = tests[: 2 if args.quick else args.lfo_targets]
        splits[f"leave-family-out: {fam}"] = reported_split(
            data, f"leave-family-out {fam}", pool, {t: data.lat[t] for t in tests}, cal,
            chosen, args,
        )  # fmt: skip
        _write(args, chosen, splits, "partial", t0)
    stacks = stack_targets(data)
    if stacks:
        all27 = [d.name for d in data.devices]
        splits["runtime stacks"] = reported_split(
            data, "runtime stacks", all27, stacks, lho["parts"], chosen, args
        )
        note = f"{len(stacks)} devices read from {STACKS}."
    else:
        note = (
            f"{STACKS} does not exist yet; when it holds exchange files of NB201 latencies, "
            "this script adds them as targets (pool = all 27 HELP columns)."
        )
    print(_write(args, chosen, splits, note, t0))


def _write(args: argparse.Namespace, chosen: dict, splits: dict, note: str, t0: float) -> str:
    """Write the results so far (after every split: a long run that is cut keeps them)."""
    res = {
        "host": environment(torch_threads=1),
        "config": {
            "epochs": args.epochs,
            "seed": args.seed,
            "quick": args.quick,
            "ns": NS,
            "acq_devices": args.acq_devices,
            "lfo_targets": args.lfo_targets,
        },
        "targets": TARGETS,
        "chosen": {k: v for k, v in chosen.items() if k != "lho_active"},
        "lho_active": chosen["lho_active"],
        "splits": splits,
        "stacks_note": note,
        "total_s": time.perf_counter() - t0,
    }
    stem = (
        Path(tempfile.gettempdir()) / "predict_heldout_quick"
        if args.quick
        else (RESULTS / "predict_heldout")
    )
    md = markdown(res)
    write_results(stem, res, md, default=_json_default)
    return md


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))


if __name__ == "__main__":
    main()
