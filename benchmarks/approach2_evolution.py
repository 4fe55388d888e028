"""``approach2.py``'s OFA-MobileNetV3 and FBNet sections: the optimizer network against a long
evolutionary search on the same predicted objective.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from approach2_common import Space, train_m2
from fleetnas.data.help import read_archs
from fleetnas.l2o import synthetic
from fleetnas.l2o.features import DeviceSet
from fleetnas.l2o.generate import L2OOptimizer, generate, grid
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.predict import MLPEnsemble
from fleetnas.search import (
    EvolutionConfig,
    Normalization,
    Scale,
    WeightedObjective,
    evolve,
)


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
