"""Benchmark of Approach 2 (issue 7): learning to optimize, on unseen real devices.

NAS-Bench-201 (HELP's split): the device-aware latency network and the optimizer train on HELP's
meta-train + meta-valid devices (13) plus synthetic devices; the six meta-test devices are
unseen (each described only by its latency on HELP's 10 reference designs). Accuracy is the exact
NAS-Bench-201 CIFAR-10 table. Reported, over a grid of λ and of latency budgets:

- **objective gap** of a returned design x̂ to the exhaustive optimum x* of the *same predicted
  objective* (eq. 8), ``gap = (f̂(x̂) - f̂(x*)) / (1 + λ2)``: eq. (6)'s ``t``-form, in which
  accuracy and latency are each normalized to their 5-95 % reference spread, so a gap of 0.01 is
  1 % of that spread (reported in %);
- **true gap**: the same with the measured (HELP) latency and its own normalization, against the
  true optimum;
- in budget mode, **true-budget violation rate** (measured latency > budget) and **accuracy
  regret** (best measured-feasible accuracy minus the returned design's, in % points);
- time per query alone and batched (NumPy, 1 and 2 threads), against a per-device exhaustive
  search on the same predictor.

Ablations in the same run: Method 1 vs 2 (and Method 2's relaxations), synthetic devices (none,
simulator families, around calibrated real devices, feature-space perturbation/interpolation,
all), ensemble of 1 vs 5, with/without local refinement, spec features vs probe embedding (the
optimizer's input; the objective keeps its probe-based latency network), and the accuracy
network (exact table vs an MLP ensemble, the paper's Acc_ΘA).

Algorithm 2 (NAS-Bench-201, meta-train devices measured through ``table:DEVICE`` replays, quality
on the meta-valid devices): measurements each exploration strategy needs before the exact optimum
of its predicted objective reaches a given true gap.

OFA-MobileNetV3 (HELP's 12 GPU settings, train 9, test the three V100 settings) and FBNet (HELP's
split; no public accuracy, so a documented stand-in: an MLP fit to a FLOPs/params score): gap to a
long evolutionary search on the same predicted objective (negative = the network found better).

Run: ``.venv/bin/python benchmarks/approach2.py`` (about 20-30 minutes on the shared 2-core
machine; ``--quick`` for a smoke run). Results: ``benchmarks/results/approach2.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from _common import environment, load_average, write_results
from approach2_algorithm2 import algorithm2_section
from approach2_common import (
    NB201Eval,
    Space,
    budget_eval,
    calibrate_margin,
    m1_net,
    oracle_budget,
    synthetic_sets,
    train_m1,
    train_m2,
)
from approach2_evolution import evo_section, fbnet_accuracy
from approach2_report import markdown, verdict
from fleetnas.devices.catalog import help_split
from fleetnas.l2o import method1, method2
from fleetnas.l2o.decode import Decoder
from fleetnas.l2o.features import DeviceSet
from fleetnas.l2o.generate import L2OOptimizer, generate, grid
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.l2o.train import lambda_grid
from fleetnas.predict import MLPEnsemble, TableLookup
from fleetnas.search import (
    ExhaustiveSolver,
    Normalization,
)

RESULTS = Path(__file__).resolve().parent / "results"


def timing(ev: NB201Eval, opt: L2OOptimizer, opt5: L2OOptimizer, quick: bool) -> dict[str, Any]:
    """One query alone and batched, against a per-device exhaustive search."""
    d = ev.d
    one = ev.devs.take([0])
    lam1 = np.array([[0.0, 1.0]])
    out: dict[str, Any] = {}
    for threads in (1, 2):
        with threadpool_limits(threads):
            for _ in range(30):
                generate(opt, one, lam1)
            ts = []
            for _ in range(300):
                t0 = time.perf_counter()
                generate(opt, DeviceSet(["q"], probes=one.probes), lam1)
                ts.append(time.perf_counter() - t0)
            out[f"single_query_ms_{threads}t"] = float(np.median(ts) * 1e3)
            out[f"single_query_p90_ms_{threads}t"] = float(np.quantile(ts, 0.9) * 1e3)
            n_dev, n_lam = (200, 50) if quick else (1000, 100)
            rng = np.random.default_rng(0)
            probes = ev.devs.probes[rng.integers(0, len(ev.devs), n_dev)] * np.exp(
                rng.normal(0, 0.1, (n_dev, ev.devs.probes.shape[1]))
            )
            devs = DeviceSet([f"q{i}" for i in range(n_dev)], probes=probes)
            rows, lam_rows, _ = grid(devs, lambda_grid(n_lam))
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                generate(opt, rows, lam_rows)
                best = min(best, time.perf_counter() - t0)
            out[f"batched_queries_per_s_{threads}t"] = len(rows) / best
            out["batched_queries"] = len(rows)
            # network forward + argmax alone (inputs prepared), the pure inference cost
            x = opt.net.inputs(rows, lam_rows)
            dec = Decoder(d.space)
            t0 = time.perf_counter()
            dec.argmax(opt.net.logits(x))
            out[f"forward_argmax_per_s_{threads}t"] = len(rows) / (time.perf_counter() - t0)
    with threadpool_limits(2):
        rows, lam_rows, idx = ev.rows, ev.lam_rows, ev.idx
        t0 = time.perf_counter()
        sc = ev.obj.scales(ev.devs)
        out["scales_ms_per_device"] = (time.perf_counter() - t0) * 1e3 / len(ev.devs)
        for name, o, kw in (
            ("ensemble5", opt5, {}),
            ("refine2", opt, {"refine_rounds": 2}),
            ("ensemble5_refine2", opt5, {"refine_rounds": 2}),
        ):
            t0 = time.perf_counter()
            generate(o, rows, lam_rows, scales=sc.take(idx), **kw)
            out[f"{name}_ms_per_query"] = (time.perf_counter() - t0) * 1e3 / len(rows)
        # baseline: a per-device exhaustive search on the same predictor (all 15,625 designs)
        t0 = time.perf_counter()
        for j in range(len(ev.devs)):
            dj = ev.devs.take([j])
            lat = ev.obj.matrix(dj, d.archs)[:, 0]
            s = ExhaustiveSolver(
                d.archs, ev.acc, lat, norm=Normalization(ev.obj.acc_scale, sc.take([j]).latency)
            )
            s.solve_weighted(np.c_[np.zeros(len(ev.lam)), ev.lam])
        per_dev = (time.perf_counter() - t0) / len(ev.devs)
        out["exhaustive_ms_per_device"] = per_dev * 1e3
        out["exhaustive_ms_per_query_19_lambdas"] = per_dev * 1e3 / len(ev.lam)
    return out


def nb201_section(quick: bool, res: dict[str, Any]) -> dict[str, Any]:
    d = Space("nb201")
    split = help_split("nb201")
    train_names = [*split["train"], *split["valid"]]
    test_names = list(split["test"])
    acc_pred = TableLookup.nb201_accuracy("cifar10")
    acc = acc_pred.predict(d.archs)
    out: dict[str, Any] = {"train_devices": train_names, "test_devices": test_names}
    t_all = time.perf_counter()
    lat_pred, fit_s = d.fit_latency(train_names)
    obj = PredictedObjective(d.space, acc_pred, lat_pred, reference=d.archs)
    real = d.devices(train_names)
    n_syn = 30 if quick else 100
    syn, cal_s = synthetic_sets(d, real, train_names, n_syn, seed=1)
    sets = {
        "none": real,
        "sim": DeviceSet.concat([real, syn["sim"]]),
        "around": DeviceSet.concat([real, syn["around"]]),
        "features": DeviceSet.concat([real, syn["interp"], syn["perturb"]]),
        "all": DeviceSet.concat([real, syn["sim"], syn["around"], syn["interp"], syn["perturb"]]),
    }
    lam = lambda_grid(40)
    t0 = time.perf_counter()
    devs_all = sets["all"]
    sc_all = obj.scales(devs_all)
    labels_all = method1.exhaustive_labels(obj, devs_all, lam, sc_all, d.archs)
    label_s = time.perf_counter() - t0
    index = {n: i for i, n in enumerate(devs_all.names)}

    def labels_of(ds: DeviceSet) -> np.ndarray:
        return labels_all[[index[n] for n in ds.names]]

    ev = NB201Eval(d, obj, acc, test_names)
    epochs5 = 30 if quick else 100
    net5, m1_s = train_m1(d.space, devs_all, labels_all, lam, members=5, epochs=epochs5)
    out["training_seconds"] = {
        "latency_network": fit_s,
        "calibration_for_synthetic": cal_s,
        "labels": label_s,
        "method1_ensemble5": m1_s,
        "total_main": fit_s + cal_s + label_s + m1_s,
        "devices": len(devs_all),
        "lambdas": len(lam),
    }
    opt5 = L2OOptimizer(net5, obj)
    opt1 = L2OOptimizer(net5.subset([0]), obj)
    rows: dict[str, Any] = {}
    rows["M1 probes, all synthetic, ensemble 5, refine 2"] = ev.run(opt5, refine_rounds=2)
    rows["M1 probes, all synthetic, ensemble 5"] = ev.run(opt5)
    rows["M1 probes, all synthetic, ensemble 1, refine 2"] = ev.run(opt1, refine_rounds=2)
    rows["M1 probes, all synthetic, ensemble 1"] = ev.run(opt1)
    rows["M1 probes, all synthetic, ensemble 1, refine 2 + pairs top-4"] = ev.run(
        opt1, refine_rounds=2, top_k=4
    )
    ep = 20 if quick else 60
    for key in ("none", "sim", "around", "features"):
        ds = sets[key]
        net, _ = train_m1(d.space, ds, labels_of(ds), lam, epochs=ep)
        rows[f"M1 probes, synthetic={key}, ensemble 1"] = ev.run(L2OOptimizer(net, obj))
    for mode in ("spec", "both"):
        net, _ = train_m1(d.space, devs_all, labels_all, lam, mode=mode, epochs=ep)
        rows[f"M1 {mode} features, all synthetic, ensemble 1"] = ev.run(L2OOptimizer(net, obj))
    # Method 2: relaxations, picked by the gap on the real training devices (not the test ones)
    train_ev = NB201Eval(d, obj, acc, train_names)
    m2: dict[str, Any] = {}
    steps = {"softmax": 1500, "gumbel": 1500, "st": 1500, "reinforce": 4000}
    if quick:
        steps = dict.fromkeys(steps, 200)
    for rel, n_steps in steps.items():
        net, h = train_m2(d.space, obj, devs_all, sc_all, rel, n_steps)
        o = L2OOptimizer(net, obj)
        r = ev.run(o)
        r["train_seconds"] = h["seconds"]
        r["train_devices_gap_median"] = train_ev.run(o)["gap"]["median"]
        rows[f"M2 {rel}, probes, all synthetic, ensemble 1"] = r
        rows[f"M2 {rel}, probes, all synthetic, ensemble 1, refine 2"] = ev.run(o, refine_rounds=2)
        m2[rel] = r["train_devices_gap_median"]
    out["method2_pick"] = min(m2, key=m2.get)
    # Method 2 with the MLP accuracy network (Acc_ΘA) instead of the exact table
    rng = np.random.default_rng(3)
    sub = rng.choice(len(d.archs), 1000 if quick else 3000, replace=False)
    t0 = time.perf_counter()
    mlp = MLPEnsemble(d.space, hidden=(128, 128), n_members=3, epochs=60 if quick else 150)
    mlp.fit(d.archs[sub], acc[sub])
    mlp_s = time.perf_counter() - t0
    obj_mlp = PredictedObjective(d.space, mlp, lat_pred, reference=d.archs)
    ev_mlp = NB201Eval(d, obj_mlp, acc, test_names)
    net = m1_net(d.space, devs_all, "probes", 1)
    cfg = method2.Method2Config(
        steps=steps["reinforce"], relaxation="reinforce", batch_size=256, lr=2e-3, entropy=0.02
    )
    method2.train_method2(net, obj_mlp, devs_all, obj_mlp.scales(devs_all), cfg)
    r = ev_mlp.run(L2OOptimizer(net, obj_mlp))
    r["accuracy_network_fit_seconds"] = mlp_s
    r["note"] = (
        "gap vs the exhaustive optimum of the MLP-accuracy objective; true gap uses the table"
    )
    rows["M2 reinforce, MLP accuracy network (3,000 designs), ensemble 1"] = r
    out["lambda_mode"] = rows
    # budgets
    margin = calibrate_margin(d, acc, list(split["train"]), list(split["valid"]))
    out["margin_calibration"] = margin
    m = margin["chosen"]
    bud = {}
    bud["no measurement, margin 0"] = budget_eval(ev, opt1, 0.0)
    bud[f"no measurement, margin {m}"] = budget_eval(ev, opt1, m)
    bud[f"no measurement, margin {m}, refine 2"] = budget_eval(ev, opt1, m, refine=2)
    bud[f"no measurement, margin {m}, ensemble 5"] = budget_eval(ev, opt5, m)
    bud["hybrid, <= 3 measurements, margin 0"] = budget_eval(ev, opt1, 0.0, hybrid=True)
    bud[f"hybrid, <= 3 measurements, margin {m}"] = budget_eval(ev, opt1, m, hybrid=True)
    bud[f"per-device exhaustive search on the predictor, margin {m}"] = oracle_budget(ev, m)
    out["budget_mode"] = bud
    out["timing"] = timing(ev, opt1, opt5, quick)
    out["seconds"] = time.perf_counter() - t_all
    res["nb201"] = out
    return {"d": d, "acc": acc, "acc_pred": acc_pred, "split": split}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small settings (smoke run)")
    ap.add_argument(
        "--sections", default="nb201,algorithm2,ofa,fbnet", help="comma-separated sections"
    )
    ap.add_argument("--out", default=str(RESULTS), help="results folder")
    ap.add_argument(
        "--markdown-only", action="store_true", help="rewrite the .md from the saved .json"
    )
    args = ap.parse_args()
    os.environ.setdefault(
        "FLEETNAS_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    if args.markdown_only:
        stem = Path(args.out) / ("approach2_quick" if args.quick else "approach2")
        res = json.loads(stem.with_suffix(".json").read_text())
        stem.with_suffix(".md").write_text(markdown(res))
        return
    sections = set(args.sections.split(","))
    torch.manual_seed(0)
    res: dict[str, Any] = {
        "environment": environment(torch_threads_training=1),
        "quick": args.quick,
    }
    t0 = time.perf_counter()
    ctx = None
    if "nb201" in sections or "algorithm2" in sections:
        if "nb201" in sections:
            ctx = nb201_section(args.quick, res)
            print("nb201 done", flush=True)
        else:
            d = Space("nb201")
            acc_pred = TableLookup.nb201_accuracy("cifar10")
            ctx = {"d": d, "acc": acc_pred.predict(d.archs), "acc_pred": acc_pred,
                   "split": help_split("nb201")}  # fmt: skip
    if "algorithm2" in sections:
        algorithm2_section(ctx, args.quick, res)
        print("algorithm2 done", flush=True)
    if "ofa" in sections:
        from fleetnas.predict import OFAAccuracyPredictor

        gpus = ["2080ti", "titan_rtx", "titanxp"]
        evo_section(
            "ofa", "ofa_mbv3", [f"{g}_{b}" for g in gpus for b in (1, 32, 64)],
            ["v100_1", "v100_32", "v100_64"], OFAAccuracyPredictor.from_data(None),
            ["desktop_gpu"], args.quick, res,
            "Accuracy: OFA's released predictor (ofa/acc_predictor.pth); the V100 is an unseen GPU",
        )  # fmt: skip
        print("ofa done", flush=True)
    if "fbnet" in sections:
        split = help_split("fbnet")
        acc, note = fbnet_accuracy(args.quick)
        evo_section(
            "fbnet", "fbnet", [*split["train"], *split["valid"]], list(split["test"]), acc,
            None, args.quick, res, note,
        )  # fmt: skip
        print("fbnet done", flush=True)
    res["seconds"] = time.perf_counter() - t0
    res["environment"]["load_after"] = load_average()
    res["verdict"] = verdict(res)
    stem = Path(args.out) / ("approach2_quick" if args.quick else "approach2")
    write_results(stem, res, markdown(res), default=float)
    print(markdown(res))


if __name__ == "__main__":
    main()
