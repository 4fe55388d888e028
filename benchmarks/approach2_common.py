"""Shared pieces of ``approach2.py``: the evaluation grids, the NB201 evaluation context, budget
evaluation and margin calibration, and the optimizer trainers.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fleetnas.data.help import read_archs, read_latencies, read_reference_indices
from fleetnas.devices.catalog import get_catalog_device
from fleetnas.l2o import method1, method2, synthetic
from fleetnas.l2o.budget import for_budget, for_budget_verified
from fleetnas.l2o.features import DeviceSet, FeatureSpec, spec_features
from fleetnas.l2o.generate import L2OOptimizer, generate, grid
from fleetnas.l2o.network import OptimizerNet
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.predict import DeviceAwarePredictor
from fleetnas.search import (
    ExhaustiveSolver,
    Normalization,
    Scale,
)

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
