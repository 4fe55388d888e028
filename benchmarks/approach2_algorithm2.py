"""``approach2.py``'s Algorithm 2 section: measurements each exploration strategy needs on
NAS-Bench-201 before the optimum of its predicted objective reaches a given true gap.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from approach2_common import EVAL_T, NB201Eval, train_m1
from fleetnas.l2o import method1, synthetic
from fleetnas.l2o.features import DeviceSet
from fleetnas.l2o.generate import L2OOptimizer
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.l2o.train import lambda_grid
from fleetnas.predict import DeviceAwarePredictor
from fleetnas.search import (
    ExhaustiveSolver,
    Normalization,
    Scale,
)


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
