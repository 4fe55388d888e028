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
from fleetnas.data.help import read_archs, read_latencies, read_reference_indices
from fleetnas.devices.catalog import get_catalog_device, help_split
from fleetnas.l2o import method1, method2, synthetic
from fleetnas.l2o.budget import for_budget, for_budget_verified
from fleetnas.l2o.decode import Decoder
from fleetnas.l2o.features import DeviceSet, FeatureSpec, spec_features
from fleetnas.l2o.generate import L2OOptimizer, generate, grid
from fleetnas.l2o.network import OptimizerNet
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.l2o.train import lambda_grid
from fleetnas.predict import DeviceAwarePredictor, MLPEnsemble, TableLookup
from fleetnas.search import (
    EvolutionConfig,
    ExhaustiveSolver,
    Normalization,
    Scale,
    WeightedObjective,
    evolve,
)

RESULTS = Path(__file__).resolve().parent / "results"
EVAL_T = np.round(np.arange(0.05, 0.951, 0.05), 2)
BUDGET_Q = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MARGINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


def pct(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=float)
    return {
        "median": float(np.median(x)) * 100,
        "p90": float(np.quantile(x, 0.9)) * 100,
        "mean": float(np.mean(x)) * 100,
        "zero_share": float(np.mean(x <= 1e-9)),
    }


# ---- data -------------------------------------------------------------------------------------
class Space:
    """One space's HELP data: designs, every device's latency vector, probes, devices."""

    def __init__(self, space_name: str) -> None:
        self.space, self.archs = read_archs(None, space_name)
        self.ref = read_reference_indices(None, space_name)
        self.probes = self.archs[self.ref]
        self.lat: dict[str, np.ndarray] = {}

    def latency(self, name: str) -> np.ndarray:
        if name not in self.lat:
            self.lat[name] = read_latencies(None, self.space.name, name)
        return self.lat[name]

    def devices(self, names: list[str]) -> DeviceSet:
        lat = np.stack([self.latency(d) for d in names], axis=1)
        recs = [get_catalog_device(d) for d in names]
        return DeviceSet(list(names), probes=lat[self.ref].T, spec=spec_features(recs))

    def matrix(self, names: list[str]) -> np.ndarray:
        return np.stack([self.latency(d) for d in names], axis=1)

    def fit_latency(self, names: list[str], seed: int = 0) -> tuple[DeviceAwarePredictor, float]:
        t0 = time.perf_counter()
        p = DeviceAwarePredictor(self.space, probes=self.probes, features="probes", seed=seed)
        p.fit(self.archs, self.devices(names).probes, self.matrix(names))
        return p, time.perf_counter() - t0


def synthetic_sets(
    d: Space, real: DeviceSet, real_names: list[str], n: int, seed: int, families=None
) -> tuple[dict[str, DeviceSet], float]:
    """Synthetic devices of each kind (``n`` each) and the seconds spent calibrating."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    models = synthetic.calibrated_models(
        d.space,
        d.archs,
        d.matrix(real_names),
        [get_catalog_device(x) for x in real_names],
        seed=seed,
        max_fit=1500,
    )
    cal_s = time.perf_counter() - t0
    return {
        "sim": synthetic.simulated_devices(d.space, d.probes, n, rng, families=families),
        "around": synthetic.devices_around(d.space, d.probes, models, n, rng),
        "interp": synthetic.interpolated_devices(real, n, rng),
        "perturb": synthetic.perturbed_devices(real, n, rng),
    }, cal_s


# ---- NAS-Bench-201 evaluation -------------------------------------------------------------------
class NB201Eval:
    """Test devices, their scales, exact optima of the predicted and of the true objective."""

    def __init__(self, d: Space, obj: PredictedObjective, acc: np.ndarray, names: list[str]):
        self.d, self.obj, self.names = d, obj, names
        self.devs = d.devices(names)
        self.sc = obj.scales(self.devs)
        self.lam = EVAL_T / (1 - EVAL_T)
        self.labels = method1.exhaustive_labels(obj, self.devs, self.lam, self.sc, d.archs)
        self.rows, self.lam_rows, self.idx = grid(self.devs, self.lam)
        self.rsc = self.sc.take(self.idx)
        self.f_star = obj.score(
            self.labels.reshape(-1, d.space.n_decisions), self.rows, self.lam_rows, self.rsc
        )
        codes = d.space.codes(d.archs)
        self.index_of_code = np.empty(len(codes), dtype=np.int64)
        self.index_of_code[codes] = np.arange(len(codes))
        self.acc = acc
        self.acc_scale = obj.acc_scale
        self.true = d.matrix(names)
        self.true_scale = [Scale.from_values(self.true[:, j]) for j in range(len(names))]
        self.true_opt = np.zeros((len(names), len(self.lam)))
        for j in range(len(names)):
            s = ExhaustiveSolver(
                d.archs, acc, self.true[:, j], norm=Normalization(obj.acc_scale, self.true_scale[j])
            )
            best = s.solve_weighted(np.c_[np.zeros(len(self.lam)), self.lam])
            self.true_opt[j] = self.true_f(d.archs[best], j, self.lam)

    def index(self, archs: np.ndarray) -> np.ndarray:
        return self.index_of_code[self.d.space.codes(archs)]

    def true_f(self, archs: np.ndarray, j: int | np.ndarray, lam: np.ndarray) -> np.ndarray:
        i = self.index(archs)
        jj = np.broadcast_to(np.asarray(j), (len(i),))
        lo = np.array([self.true_scale[k].lo for k in jj])
        span = np.array([self.true_scale[k].span for k in jj])
        lat_n = (self.true[i, jj] - lo) / span
        return -self.acc_scale.apply(self.acc[i]) + lam * lat_n

    def score(self, archs: np.ndarray) -> dict[str, Any]:
        f = self.obj.score(archs, self.rows, self.lam_rows, self.rsc)
        gap = (f - self.f_star) / (1 + self.lam_rows[:, 1])
        tf = self.true_f(archs, self.idx, self.lam_rows[:, 1])
        tgap = (tf - self.true_opt.reshape(-1)) / (1 + self.lam_rows[:, 1])
        return {"gap": pct(gap), "true_gap": pct(tgap)}

    def run(self, opt: L2OOptimizer, **kw: Any) -> dict[str, Any]:
        g = generate(opt, self.rows, self.lam_rows, scales=self.rsc, **kw)
        out = self.score(g.archs)
        out["evaluations_per_query"] = g.evaluations / len(g.archs)
        out["labels"] = method1.label_metrics(opt.net, self.devs, self.lam, self.labels)
        return out


def budget_eval(
    ev: NB201Eval, opt: L2OOptimizer, margin: float, refine: int = 0, hybrid: bool = False
) -> dict[str, Any]:
    """Budgets at the true-latency quantiles of each test device."""
    from fleetnas.proxy import ReplaySession, design_codes

    d = ev.d
    n_dev = len(ev.names)
    b = np.stack([np.quantile(ev.true[:, j], BUDGET_Q) for j in range(n_dev)])
    dev_idx = np.repeat(np.arange(n_dev), len(BUDGET_Q))
    budgets = b.reshape(-1)
    rows = ev.devs.take(dev_idx)
    t0 = time.perf_counter()
    if hybrid:
        codes = design_codes(d.space, d.archs)
        sessions = []
        for j in dev_idx:
            v = np.empty(len(codes))
            v[codes] = ev.true[:, j]
            sessions.append(ReplaySession(d.space, ev.names[j], v))
        res = for_budget_verified(opt, rows, budgets, sessions, max_measurements=3, margin=margin)
    else:
        res = for_budget(opt, rows, budgets, margin=margin, refine_rounds=refine)
    secs = time.perf_counter() - t0
    i = ev.index(res.archs)
    true_lat = ev.true[i, dev_idx]
    returned = res.feasible if hybrid else np.ones(len(budgets), dtype=bool)
    viol = returned & (true_lat > budgets * (1 + 1e-12))
    best = np.array(
        [ev.acc[ev.true[:, j] <= bb].max() for j, bb in zip(dev_idx, budgets, strict=True)]
    )
    regret = best - ev.acc[i]
    ok = returned & ~viol
    out = {
        "queries": len(budgets),
        "violation_rate": float(viol.mean()),
        "answered": float(returned.mean()),
        "regret_median": float(np.median(regret[ok])) if ok.any() else None,
        "regret_mean": float(np.mean(regret[ok])) if ok.any() else None,
        "regret_p90": float(np.quantile(regret[ok], 0.9)) if ok.any() else None,
        "ms_per_query": secs / len(budgets) * 1e3,
        "margin": margin,
    }
    if hybrid:
        out["measurements_max"] = int(res.measurements.max())
        out["measurements_mean"] = float(res.measurements.mean())
    return out


def oracle_budget(ev: NB201Eval, margin: float) -> dict[str, Any]:
    """Per-device exhaustive search on the same predictor and margin (no optimizer network)."""
    feats = ev.obj.predictor_features(ev.devs)
    mean, std = ev.obj.latency.predict_dist(ev.d.archs, feats)
    bound = mean * np.exp(margin * std / mean)
    viol, regret = [], []
    for j in range(len(ev.names)):
        for q in BUDGET_Q:
            bb = np.quantile(ev.true[:, j], q)
            ok = bound[:, j] <= bb
            k = (
                int(np.argmax(np.where(ok, ev.acc, -np.inf)))
                if ok.any()
                else int(np.argmin(bound[:, j]))
            )
            viol.append(ev.true[k, j] > bb)
            if ev.true[k, j] <= bb:
                regret.append(ev.acc[ev.true[:, j] <= bb].max() - ev.acc[k])
    return {
        "violation_rate": float(np.mean(viol)),
        "regret_median": float(np.median(regret)),
        "regret_mean": float(np.mean(regret)),
        "margin": margin,
    }


def calibrate_margin(d: Space, acc: np.ndarray, train9: list[str], valid: list[str]) -> dict:
    """Choose the safety margin: predictor fit on meta-train only, violation rate of the
    constrained optimum on the (then unseen) meta-valid devices; the smallest margin with a rate
    <= 2.5 % (half the 5 % target) is kept."""
    p, _ = d.fit_latency(train9)
    devs = d.devices(valid)
    mean, std = p.predict_dist(d.archs, devs.probes)
    true = d.matrix(valid)
    rates = {}
    for m in MARGINS:
        bound = mean * np.exp(m * std / mean)
        v = []
        for j in range(len(valid)):
            for q in BUDGET_Q:
                bb = np.quantile(true[:, j], q)
                ok = bound[:, j] <= bb
                k = (
                    int(np.argmax(np.where(ok, acc, -np.inf)))
                    if ok.any()
                    else int(np.argmin(bound[:, j]))
                )
                v.append(true[k, j] > bb)
        rates[m] = float(np.mean(v))
    chosen = next((m for m in MARGINS if rates[m] <= 0.025), MARGINS[-1])
    return {"rates": {str(k): v for k, v in rates.items()}, "chosen": chosen}


def m1_net(space, devs: DeviceSet, mode: str, members: int, seed: int = 0) -> OptimizerNet:
    return OptimizerNet(space, FeatureSpec(mode).fit(devs), (256, 256), members, seed)


def train_m2(space, obj, devs, scales, relaxation: str, steps: int):
    """A probe-feature network trained with Method 2; REINFORCE gets smaller batches and a
    lower rate."""
    reinforce = relaxation == "reinforce"
    cfg = method2.Method2Config(
        steps=steps,
        relaxation=relaxation,
        batch_size=256 if reinforce else 512,
        lr=2e-3 if reinforce else 3e-3,
        entropy=0.02,
    )
    net = m1_net(space, devs, "probes", 1)
    return net, method2.train_method2(net, obj, devs, scales, cfg)


def train_m1(space, devs, labels, lam, mode="probes", members=1, epochs=60, seed=0):
    net = m1_net(space, devs, mode, members, seed)
    h = method1.train_method1(
        net, devs, lam, labels, method1.Method1Config(epochs=epochs, seed=seed)
    )
    return net, h["seconds"]


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


# ---- Algorithm 2 --------------------------------------------------------------------------------
def algorithm2_section(ctx: dict[str, Any], quick: bool, res: dict[str, Any]) -> None:
    from fleetnas.data.help import import_help
    from fleetnas.l2o.explore import STRATEGIES, ExploreConfig, explore
    from fleetnas.measure import get_measurer
    from fleetnas.store import InMemoryStore

    d, acc, acc_pred, split = ctx["d"], ctx["acc"], ctx["acc_pred"], ctx["split"]
    train, valid = list(split["train"]), list(split["valid"])
    store = InMemoryStore()
    import_help(store, None, "nb201")
    vdev = d.devices(valid)
    lam = EVAL_T / (1 - EVAL_T)
    true = d.matrix(valid)
    tscale = [Scale.from_values(true[:, j]) for j in range(len(valid))]
    acc_scale = Scale.from_values(acc)
    true_opt = []
    for j in range(len(valid)):
        s = ExhaustiveSolver(d.archs, acc, true[:, j], norm=Normalization(acc_scale, tscale[j]))
        true_opt.append(s.solve_weighted(np.c_[np.zeros(len(lam)), lam]))

    def true_gap(idx: np.ndarray, j: int) -> np.ndarray:
        def f(i: np.ndarray) -> np.ndarray:
            return -acc_scale.apply(acc[i]) + lam * tscale[j].apply(true[i, j])

        return (f(idx) - f(true_opt[j])) / (1 + lam)

    def quality(r: int, predictor: DeviceAwarePredictor, devices: DeviceSet) -> dict[str, float]:
        obj = PredictedObjective(d.space, acc_pred, predictor, reference=d.archs)
        lab = method1.exhaustive_labels(obj, vdev, lam, archs=d.archs)
        codes = d.space.codes(d.archs)
        pos = np.empty(len(codes), dtype=np.int64)
        pos[codes] = np.arange(len(codes))
        gaps = np.concatenate([true_gap(pos[d.space.codes(lab[j])], j) for j in range(len(valid))])
        return {
            "true_gap_median": float(np.median(gaps)) * 100,
            "true_gap_mean": float(gaps.mean()) * 100,
        }

    cfg_kw = {"rounds": 2 if quick else 6, "initial": 40, "per_round": 40, "pool": 4096}
    out: dict[str, Any] = {"train_devices": train, "quality_devices": valid, "config": cfg_kw}
    curves = {}
    for strategy in STRATEGIES:
        t0 = time.perf_counter()
        measurers = [get_measurer(f"table:{n}", store) for n in train]
        r = explore(
            d.space,
            measurers,
            d.probes,
            lambda: DeviceAwarePredictor(d.space, probes=d.probes, seed=0),
            acc_pred,
            ExploreConfig(strategy=strategy, seed=0, **cfg_kw),
            on_round=quality,
        )
        curve = [
            {"round": x.round, "designs_per_device": x.designs, "measurements": x.measurements,
             **x.report}
            for x in r.rounds
        ]  # fmt: skip
        # the final optimizer (Method 1 on the final networks, real devices + feature-space
        # synthetic devices), scored on the quality devices
        obj = PredictedObjective(d.space, acc_pred, r.predictor, reference=d.archs)
        rng = np.random.default_rng(0)
        devs = DeviceSet.concat(
            [r.devices, synthetic.interpolated_devices(r.devices, 60, rng),
             synthetic.perturbed_devices(r.devices, 60, rng)]
        )  # fmt: skip
        lam_t = lambda_grid(40)
        labels = method1.exhaustive_labels(obj, devs, lam_t, archs=d.archs)
        net, _ = train_m1(d.space, devs, labels, lam_t, epochs=15 if quick else 40)
        ev = NB201Eval(d, obj, acc, valid)
        final = ev.run(L2OOptimizer(net, obj))
        curves[strategy] = {
            "curve": curve,
            "final_optimizer": {"gap": final["gap"], "true_gap": final["true_gap"]},
            "seconds": time.perf_counter() - t0,
        }
    t0 = time.perf_counter()
    full, _ = d.fit_latency(train)
    out["full_data_reference"] = {
        "measurements": len(d.archs) * len(train),
        **quality(-1, full, d.devices(train)),
        "seconds": time.perf_counter() - t0,
    }
    targets = (5.0, 4.0, 3.0, 2.0, 1.5, 1.0)
    reach = {}
    for strategy, c in curves.items():
        reach[strategy] = {}
        for tg in targets:
            hit = [p["measurements"] for p in c["curve"] if p["true_gap_median"] <= tg]
            reach[strategy][str(tg)] = hit[0] if hit else None
    out["strategies"] = curves
    out["measurements_to_reach_true_gap_median_pct"] = reach
    res["algorithm2"] = out


# ---- OFA and FBNet: gap to a long evolutionary search ---------------------------------------
def long_evolution(obj: PredictedObjective, devs: DeviceSet, lam: np.ndarray, quick: bool):
    """Best design per (device, λ) of a long evolutionary search on the predicted objective."""
    sc = obj.scales(devs)
    cfg = EvolutionConfig(
        population=100, children=400, generations=40 if quick else 150, patience=25
    )
    best = np.zeros((len(devs), len(lam), obj.space.n_decisions), dtype=np.int64)
    evals = []
    t0 = time.perf_counter()
    feats = obj.predictor_features(devs)
    for j in range(len(devs)):
        norm = Normalization(obj.acc_scale, Scale(float(sc.latency.lo[j]), float(sc.latency.hi[j])))
        f = feats[j][None]
        for k, lv in enumerate(lam):
            wo = WeightedObjective(
                obj.accuracy.predict, lambda a, f=f: obj.latency.predict(a, f)[:, 0],
                norm=norm, lam=(0.0, float(lv)),
            )  # fmt: skip
            r = evolve(obj.space, wo, cfg, seed=j * 100 + k, keep_front=False)
            best[j, k] = r.best
            evals.append(r.evaluations)
    return best, {
        "config": {"population": 100, "children": 400, "generations": cfg.generations,
                   "patience": 25},
        "evaluations_median": float(np.median(evals)),
        "seconds_per_search": (time.perf_counter() - t0) / (len(devs) * len(lam)),
    }  # fmt: skip


def evo_section(
    key: str,
    space_name: str,
    train_names: list[str],
    test_names: list[str],
    acc_pred: Any,
    families: Any,
    quick: bool,
    res: dict[str, Any],
    note: str,
) -> None:
    t_all = time.perf_counter()
    d = Space(space_name)
    lat_pred, fit_s = d.fit_latency(train_names)
    obj = PredictedObjective(d.space, acc_pred, lat_pred)
    real = d.devices(train_names)
    rng = np.random.default_rng(2)
    n = 20 if quick else 60
    devs = DeviceSet.concat(
        [real, synthetic.simulated_devices(d.space, d.probes, n, rng, families=families),
         synthetic.interpolated_devices(real, n, rng), synthetic.perturbed_devices(real, n, rng)]
    )  # fmt: skip
    sc = obj.scales(devs)
    test = d.devices(test_names)
    t = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    lam = t / (1 - t)
    ref, evo_info = long_evolution(obj, test, lam, quick)
    rows, lam_rows, idx = grid(test, lam)
    tsc = obj.scales(test).take(idx)
    f_ref = obj.score(ref.reshape(-1, d.space.n_decisions), rows, lam_rows, tsc)
    out: dict[str, Any] = {
        "train_devices": train_names,
        "test_devices": test_names,
        "note": note,
        "latency_network_seconds": fit_s,
        "long_evolution": evo_info,
        "training_devices": len(devs),
        "methods": {},
    }
    steps = {"reinforce": 3000, "softmax": 1500}
    if quick:
        steps = dict.fromkeys(steps, 200)
    for rel, n_steps in steps.items():
        net, h = train_m2(d.space, obj, devs, sc, rel, n_steps)
        opt = L2OOptimizer(net, obj)
        for refine in (0, 2):
            t0 = time.perf_counter()
            g = generate(opt, rows, lam_rows, scales=tsc, refine_rounds=refine)
            q_ms = (time.perf_counter() - t0) * 1e3 / len(rows)
            f = obj.score(g.archs, rows, lam_rows, tsc)
            gap = (f - f_ref) / (1 + lam_rows[:, 1])
            out["methods"][f"M2 {rel}" + (", refine 2" if refine else "")] = {
                "gap_median": float(np.median(gap)) * 100,
                "gap_p90": float(np.quantile(gap, 0.9)) * 100,
                "gap_min": float(gap.min()) * 100,
                "better_or_equal_share": float(np.mean(gap <= 1e-9)),
                "train_seconds": h["seconds"],
                "ms_per_query": q_ms,
            }
    out["seconds"] = time.perf_counter() - t_all
    res[key] = out


def fbnet_accuracy(quick: bool) -> tuple[MLPEnsemble, str]:
    """A stand-in accuracy network for FBNet (no public accuracies): an MLP ensemble fit to
    ``65 + 3 z(log params) + 1.5 z(log FLOPs)`` (%), z = standardization over HELP's 5,000
    FBNet designs. Bigger networks are more accurate with diminishing returns, as on real
    data; only the predicted-objective gap is reported for FBNet."""
    space, archs = read_archs(None, "fbnet")
    lp, lf = np.log(space.params(archs)), np.log(space.flops(archs))
    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    y = 65 + 3 * z(lp) + 1.5 * z(lf)
    mlp = MLPEnsemble(space, hidden=(128, 128), n_members=3, epochs=30 if quick else 100)
    mlp.fit(archs, y)
    return mlp, "accuracy = MLP ensemble fit to 65 + 3 z(log params) + 1.5 z(log FLOPs) (stand-in)"


# ---- report -------------------------------------------------------------------------------------
def fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# Approach 2: learning to optimize (issue 7)",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores, shared with other jobs (load average "
        f"{env['load_before'][0]} before, {env.get('load_after', ['?'])[0]} after); Python "
        f"{env['python']}, NumPy {env['numpy']}, torch {env['torch']}; training on 1 torch "
        "thread. Total run time "
        f"{res.get('seconds', 0) / 60:.1f} min.",
        "",
        "**Objective gap** = (f̂(x̂) − f̂(x*)) / (1 + λ2) with x* the exhaustive optimum of the "
        "same predicted objective (eq. 8, accuracy and latency each normalized to their 5–95 % "
        "reference spread; the division gives eq. 6's t-form): 1 % = one hundredth of that "
        "spread. **True gap**: the same with the measured latency and the true optimum. λ grid: "
        "t = λ2/(1+λ2) in 0.05..0.95 step 0.05 (19 values) x 6 unseen devices = 114 queries.",
        "",
    ]
    nb = res.get("nb201")
    if nb:
        ts = nb["training_seconds"]
        lines += [
            "## NAS-Bench-201, HELP split (train: 9 meta-train + 4 meta-valid devices, test: "
            + ", ".join(nb["test_devices"])
            + ")",
            "",
            f"Training (main model): latency network {ts['latency_network']:.1f} s, calibration "
            f"of real devices for synthetic ones {ts['calibration_for_synthetic']:.1f} s, exact "
            f"labels for {ts['devices']} devices x {ts['lambdas']} λ {ts['labels']:.1f} s, "
            f"Method 1 ensemble of 5 {ts['method1_ensemble5']:.1f} s: **{ts['total_main']:.0f} s "
            "in all**.",
            "",
            "### λ mode (ablations in the same run)",
            "",
            "| variant | gap median % | gap p90 % | share at the optimum | true gap median % "
            "| true gap p90 % "
            "| MSE one-hot | CE | scored designs / query |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in nb["lambda_mode"].items():
            lines.append(
                f"| {name} | {fmt(r['gap']['median'])} | {fmt(r['gap']['p90'])} | "
                f"{fmt(r['gap']['zero_share'])} | {fmt(r['true_gap']['median'])} | "
                f"{fmt(r['true_gap']['p90'])} | {fmt(r['labels']['mse_onehot'], 3)} | "
                f"{fmt(r['labels']['cross_entropy'], 3)} | {fmt(r['evaluations_per_query'], 1)} |"
            )
        lines += [
            "",
            f"Method 2 relaxation picked by the gap on the real training devices: "
            f"**{nb['method2_pick']}**. MSE one-hot (eq. 9) and per-decision cross-entropy are "
            "against the exact labels of the test devices.",
            "",
            "### Budget mode (budgets at the 10..90 % quantiles of each test device's measured "
            "latency; 54 queries)",
            "",
            f"Safety margin chosen on meta-valid devices with a latency network fit on meta-train "
            "only (smallest margin with <= 2.5 % violations): "
            f"**{nb['margin_calibration']['chosen']}"
            f"** log-std (rates by margin: {nb['margin_calibration']['rates']}).",
            "",
            "| mode | violation rate | answered | regret median (% pts) | regret mean | regret "
            "p90 | measurements max / mean | ms / query |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in nb["budget_mode"].items():
            meas = (
                f"{r['measurements_max']} / {r['measurements_mean']:.2f}"
                if "measurements_max" in r
                else "0"
            )
            lines.append(
                f"| {name} | {fmt(r['violation_rate'], 3)} | {fmt(r.get('answered', 1.0))} | "
                f"{fmt(r['regret_median'])} | {fmt(r['regret_mean'])} | "
                f"{fmt(r.get('regret_p90'))} | {meas} | {fmt(r.get('ms_per_query'))} |"
            )
        t = nb["timing"]
        lines += [
            "",
            "### Speed",
            "",
            "| what | 1 thread | 2 threads |",
            "|---|---:|---:|",
            f"| one query (ensemble 1, no refinement), median ms | "
            f"{t['single_query_ms_1t']:.3f} | {t['single_query_ms_2t']:.3f} |",
            f"| one query, p90 ms | {t['single_query_p90_ms_1t']:.3f} | "
            f"{t['single_query_p90_ms_2t']:.3f} |",
            f"| batched queries / s ({t['batched_queries']:,} (device, λ) pairs, features to "
            f"designs) | {t['batched_queries_per_s_1t']:,.0f} | "
            f"{t['batched_queries_per_s_2t']:,.0f} |",
            f"| network forward + argmax alone / s | {t['forward_argmax_per_s_1t']:,.0f} | "
            f"{t['forward_argmax_per_s_2t']:,.0f} |",
            "",
            f"With the objective (2 threads): device scales {t['scales_ms_per_device']:.1f} ms per "
            f"new device; ensemble of 5 {t['ensemble5_ms_per_query']:.2f} ms/query, refinement "
            f"{t['refine2_ms_per_query']:.2f} ms/query, both "
            f"{t['ensemble5_refine2_ms_per_query']:.2f} ms/query (114 queries per call). "
            "Baseline, a per-device exhaustive search on the same "
            f"predictor: {t['exhaustive_ms_per_device']:.0f} ms per device "
            f"({t['exhaustive_ms_per_query_19_lambdas']:.1f} ms per query over 19 λ).",
            "",
        ]
    a2 = res.get("algorithm2")
    if a2:
        lines += [
            "## Algorithm 2: exploration strategies (NAS-Bench-201)",
            "",
            f"Training devices: the 9 meta-train devices, measured through `table:DEVICE` "
            f"replays (every distinct design counted once per device); start: 10 probes + "
            f"{a2['config']['initial']} random designs per device, then {a2['config']['per_round']}"
            f" designs per round. Quality: median true gap (%) of the exact optimum of the "
            f"current predicted objective on the 4 meta-valid devices (19 λ each).",
            "",
            "| strategy | "
            + " | ".join(f"round {p['round']}" for p in a2["strategies"]["random"]["curve"])
            + " | final optimizer gap / true gap (median %) |",
            "|---|" + "---:|" * (len(a2["strategies"]["random"]["curve"]) + 1),
        ]
        for s, c in a2["strategies"].items():
            cells = [f"{p['true_gap_median']:.2f} ({p['measurements']})" for p in c["curve"]]
            fo = c["final_optimizer"]
            lines.append(
                f"| {s} | "
                + " | ".join(cells)
                + f" | {fo['gap']['median']:.2f} / {fo['true_gap']['median']:.2f} |"
            )
        ref = a2["full_data_reference"]
        lines += [
            "",
            "Cells: true gap median % (measurements charged so far). Reference: all "
            f"{ref['measurements']:,} measurements (every design on every training device) give "
            f"{ref['true_gap_median']:.2f} %.",
            "",
        ]
        lines += [
            "| strategy | measurements to reach a true gap median of <= 5 % | <= 4 % | <= 3 % "
            "| <= 2 % | <= 1.5 % | <= 1 % |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        keys = ("5.0", "4.0", "3.0", "2.0", "1.5", "1.0")
        for s, r in a2["measurements_to_reach_true_gap_median_pct"].items():
            lines.append(f"| {s} | " + " | ".join(fmt(r[k]) for k in keys) + " |")
        lines.append("")
    for key, title in (("ofa", "OFA-MobileNetV3"), ("fbnet", "FBNet")):
        s = res.get(key)
        if not s:
            continue
        ev = s["long_evolution"]
        lines += [
            f"## {title}: gap to a long evolutionary search on the predicted objective",
            "",
            f"Train: {', '.join(s['train_devices'])} (+ synthetic, {s['training_devices']} "
            f"devices); test (unseen): {', '.join(s['test_devices'])}; t in 0.1..0.9 (5 values). "
            f"{s['note']}. Reference: evolution with population "
            f"{ev['config']['population']}, {ev['config']['children']} children, up to "
            f"{ev['config']['generations']} generations (median {ev['evaluations_median']:.0f} "
            f"designs scored, {ev['seconds_per_search']:.1f} s per (device, λ)). Negative gap: the "
            "network's design is better than the search's.",
            "",
            "| method | gap median % | gap p90 % | gap min % | share <= search | train s "
            "| ms / query |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in s["methods"].items():
            lines.append(
                f"| {name} | {fmt(r['gap_median'])} | {fmt(r['gap_p90'])} | {fmt(r['gap_min'])} "
                f"| {fmt(r['better_or_equal_share'])} | {fmt(r['train_seconds'], 0)} | "
                f"{fmt(r['ms_per_query'], 3)} |"
            )
        lines.append("")
    if "verdict" in res:
        lines += ["## Targets", ""] + [f"- {v}" for v in res["verdict"]] + [""]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def verdict(res: dict[str, Any]) -> list[str]:
    out = []
    nb = res.get("nb201")
    if nb:
        main = nb["lambda_mode"]["M1 probes, all synthetic, ensemble 5, refine 2"]
        plain = nb["lambda_mode"]["M1 probes, all synthetic, ensemble 1"]
        out.append(
            f"median objective gap <= 1 % on unseen devices: {main['gap']['median']:.2f} % "
            f"(ensemble 5 + refinement), {plain['gap']['median']:.2f} % (one network, argmax only)"
            f" -> {'met' if plain['gap']['median'] <= 1 else 'not met'}"
        )
        bud = nb["budget_mode"]
        nm = [
            r
            for k, r in bud.items()
            if k.startswith("no measurement") and r["margin"] > 0 and "refine" not in k
        ]
        hy = [r for k, r in bud.items() if k.startswith("hybrid")]
        out.append(
            "budget mode without measurements, true violations <= 5 %: "
            + ", ".join(f"{r['violation_rate'] * 100:.1f} %" for r in nm)
            + f" -> {'met' if all(r['violation_rate'] <= 0.05 for r in nm) else 'not met'}"
        )
        out.append(
            "hybrid mode: zero violations with <= 3 measurements per device: "
            + ", ".join(
                f"{r['violation_rate'] * 100:.1f} % violations, max {r['measurements_max']} "
                f"measurements, {r['answered'] * 100:.0f} % answered"
                for r in hy
            )
            + " -> "
            + _met(all(r["violation_rate"] == 0 and r["measurements_max"] <= 3 for r in hy))
        )
        t = nb["timing"]
        out.append(
            f"one query under 5 ms: {t['single_query_ms_1t']:.3f} ms; >= 50,000 queries/s batched "
            f"on 2 cores: {t['batched_queries_per_s_2t']:,.0f}/s -> "
            f"{_met(t['single_query_ms_1t'] < 5 and t['batched_queries_per_s_2t'] >= 50000)}"
        )
        tr = nb["training_seconds"]["total_main"]
        out.append(f"training under 10 minutes: {tr:.0f} s -> {'met' if tr < 600 else 'not met'}")
    return out


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
