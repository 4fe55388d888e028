"""Per-target evaluation of ``predict_heldout.py``: the data, this machine's stack targets, the
probes-only predictor with its interval and budget rules, the few-shot active curve and the
baselines (ridge at N random measurements, HELP-style MLP, best pool device)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import RidgeCV

from _common import STACKS, stack_medians
from fleetnas.data.help import read_archs, read_latencies, read_reference_indices
from fleetnas.devices.catalog import help_devices
from fleetnas.l2o.budget import DEFAULT_MARGIN
from fleetnas.predict import DeviceAwarePredictor, TableLookup
from fleetnas.predict.adapt import (
    FewShotLatency,
    active_fit,
)
from fleetnas.predict.interval import IntervalCalibration
from fleetnas.predict.metrics import spearman, within
from predict_decisions import (
    HYBRID_WINDOWS,
    IMPROVEMENT_SHIFTS,
    budget_rule,
    hybrid_rule,
    improvement_rule,
)
from predictors import best_device_baseline, mlp_embed_baseline

HWNB = ("eyeriss", "fpga", "pixel3", "raspi4")
NS = (10, 20, 30, 50)
LEVEL = 0.9
BETAS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
MAX_VIOLATIONS = (0.01, 0.02, 0.05, 0.1, 0.2)
#: Prior strengths ``n0`` of the few-shot interval blend (fleet vs the device's own
#: cross-conformal calibration) tried on leave-hardware-out.
PRIOR_STRENGTHS = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0)
FAMILIES = {
    "gpus": ("desktop_gpu",),
    "xeons": ("server_cpu",),
    "phones": ("mobile_cpu",),
}
TARGETS = {"spearman_probes": 0.85, "spearman_active50": 0.93, "within10_50": 0.6}


def hardware_group(name: str) -> str:
    """The hardware a HELP setting runs on: batch sizes and sibling SKUs share a group."""
    for prefix, group in (
        ("1080ti", "1080ti"), ("2080ti", "2080ti"), ("titan_rtx", "titan_rtx"),
        ("titanxp", "titanxp"), ("titanx", "titanx"), ("gold", "gold"), ("silver", "silver"),
        ("pixel", "pixel"), ("samsung", "samsung"),
    ):  # fmt: skip
        if name.startswith(prefix):
            return group
    return name


# ---- data -------------------------------------------------------------------------------------
class Data:
    def __init__(self, root: Path | None) -> None:
        self.space, self.archs = read_archs(root, "nb201")
        self.ref = np.asarray(read_reference_indices(root, "nb201"), dtype=np.int64)
        self.devices = help_devices("nb201")
        self.lat = {d.name: read_latencies(root, "nb201", d.name) for d in self.devices}
        self.family = {d.name: d.family for d in self.devices}
        self.acc = TableLookup.nb201_accuracy("cifar10", data_dir=root).predict(self.archs)
        self.flops = np.log(self.space.flops(self.archs))
        self.enc = self.space.encode(self.archs)
        self.index = {row.tobytes(): i for i, row in enumerate(self.archs)}
        self.fits: dict[tuple[str, ...], DeviceAwarePredictor] = {}

    def matrix(self, names: list[str]) -> np.ndarray:
        return np.stack([self.lat[n] for n in names], axis=1)

    def fit(self, names: list[str], epochs: int, seed: int) -> DeviceAwarePredictor:
        key = tuple(sorted(names))
        if key not in self.fits:
            y = self.matrix(list(key))
            p = DeviceAwarePredictor(
                self.space, probes=self.archs[self.ref], epochs=epochs, seed=seed
            )
            t0 = time.perf_counter()
            self.fits[key] = p.fit(self.archs, y[self.ref].T, y)
            print(f"  fit on {len(key)} devices: {time.perf_counter() - t0:.1f} s", flush=True)
        return self.fits[key]

    def as_help(self) -> dict[str, Any]:
        """The dict :mod:`predictors` baselines read."""
        return {"space": self.space, "archs": self.archs, "lat": self.lat, "probes": self.ref}


def stack_targets(data: Data) -> dict[str, np.ndarray]:
    """Latency vectors (NaN where unmeasured) of this machine's runtime stacks: the NB201
    medians of every exchange file under ``benchmarks/results/stacks/``
    (:func:`_common.stack_medians`); devices missing a probe design are skipped."""
    out: dict[str, np.ndarray] = {}
    for dev, series in stack_medians("nb201", STACKS).items():
        y = np.full(len(data.archs), np.nan)
        a = data.space.parse_many(list(series.index))
        y[[data.index[r.tobytes()] for r in a]] = series.to_numpy(float)
        if np.isfinite(y[data.ref]).all():
            out[f"stack:{dev}"] = y
    return out


# ---- per target -------------------------------------------------------------------------------
def scores(y: np.ndarray, mean: np.ndarray, mask: np.ndarray, lo=None, hi=None) -> dict:
    m = mask & np.isfinite(y)
    out = {"spearman": spearman(y[m], mean[m]), "within10": within(y[m], mean[m], 0.10)}
    if lo is not None:
        out["coverage90"] = float(np.mean((y[m] >= lo[m]) & (y[m] <= hi[m])))
    return out


def ridge_random(data: Data, pool: list[str], y: np.ndarray, seeds: int = 3) -> dict[int, dict]:
    z = np.log(data.matrix(pool))
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    feats = np.c_[z, data.enc, data.flops]
    avail = np.flatnonzero(np.isfinite(y))
    out = {}
    for n in NS:
        rows = []
        for s in range(seeds):
            idx = np.random.default_rng(100 + s).choice(avail, n, replace=False)
            reg = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(feats[idx], np.log(y[idx]))
            mask = np.ones(len(y), dtype=bool)
            mask[idx] = False
            rows.append(scores(y, np.exp(reg.predict(feats)), mask))
        out[n] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return out


def active_curve(
    data: Data,
    pred: DeviceAwarePredictor,
    y: np.ndarray,
    acq: str,
    cal: IntervalCalibration,
    strength: float,
) -> dict:
    """Few-shot curve over ``NS``: Spearman and ±10 % over every design not used for fitting,
    Spearman over the designs still unmeasured at the largest N (the same scored set at every
    N), and the coverage of the 90 % interval with the prior strength ``strength`` and with
    each of ``PRIOR_STRENGTHS`` (the fleet's interval from ``cal``)."""
    cand = np.flatnonzero(np.isfinite(y))
    res: dict[int, dict] = {}
    means: dict[int, np.ndarray] = {}
    measured: list[int] = []

    def measure(a: np.ndarray) -> np.ndarray:
        idx = [data.index[r.tobytes()] for r in a]
        measured.extend(idx)
        return y[idx]

    def step(n: int, model: FewShotLatency) -> None:
        if n not in NS:
            return
        mask = np.ones(len(y), dtype=bool)
        mask[data.ref] = False
        mask[measured] = False
        m = mask & np.isfinite(y)
        cov = {}
        for s0 in PRIOR_STRENGTHS:
            model.prior_strength = s0
            iv = model.predict_interval(data.archs[m], LEVEL)
            cov[s0] = float(np.mean((y[m] >= iv["lower"]) & (y[m] <= iv["upper"])))
        model.prior_strength = strength
        iv = model.predict_interval(data.archs, LEVEL)
        res[n] = scores(y, iv["mean"], mask, iv["lower"], iv["upper"])
        res[n]["coverage_by_strength"] = cov
        means[n] = iv["mean"]

    pred.set_calibration(cal)
    model = FewShotLatency.on(pred, y[data.ref], level=LEVEL, prior_strength=strength)
    active_fit(
        model, data.archs[cand], measure, max(NS) - len(data.ref), data.archs[data.ref],
        y[data.ref], on_step=step, acquisition=acq,
    )  # fmt: skip
    pred.set_calibration(None)
    common = np.isfinite(y)
    common[data.ref] = False
    common[measured] = False
    for n, mean in means.items():
        res[n]["spearman_common"] = spearman(y[common], mean[common])
    return res


def probes_eval(
    data: Data, pred: DeviceAwarePredictor, y: np.ndarray, cal: IntervalCalibration
) -> dict[str, Any]:
    pred.set_calibration(cal)
    feats = y[data.ref][None]
    iv = pred.predict_interval(data.archs, feats, LEVEL)
    mean, s = iv["mean"][:, 0], iv["scale"][:, 0]
    mask = np.ones(len(y), dtype=bool)
    mask[data.ref] = False
    out = scores(y, mean, mask, iv["lower"][:, 0], iv["upper"][:, 0])
    m, std = pred.predict_dist(data.archs, feats)
    old = m[:, 0] * np.exp(DEFAULT_MARGIN * std[:, 0] / m[:, 0])
    bounds = {}
    for v in MAX_VIOLATIONS:
        bounds[v] = mean * np.exp(float(cal.quantile(1.0 - v)) * s)
    out["budget_old_margin"] = budget_rule(data.acc, y, old)
    out["budget_interval"], out["budget_hybrid"], out["budget_improvement"] = {}, {}, {}

    def cdf(u: np.ndarray) -> np.ndarray:
        return 1.0 - cal.exceed(u)

    for v, bnd in bounds.items():
        p_ex = cal.exceed(np.log(bnd / mean) / s)
        out["budget_interval"][v] = budget_rule(data.acc, y, bnd, p_ex)
        out["budget_hybrid"][v] = {
            w: hybrid_rule(data.space, data.archs, data.acc, y, mean, bnd, "target", w)
            for w in HYBRID_WINDOWS
        }
        out["budget_improvement"][v] = {
            sh: improvement_rule(
                data.space, data.archs, data.acc, y, mean, bnd, s, cdf, "target", sh
            )
            for sh in IMPROVEMENT_SHIFTS
        }
    pred.set_calibration(None)
    return out


def evaluate(
    data: Data,
    pred: DeviceAwarePredictor,
    pool: list[str],
    target: str,
    y: np.ndarray,
    cal: IntervalCalibration,
    chosen: dict[str, Any],
    acqs: tuple[str, ...],
    baselines: bool,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    out: dict[str, Any] = {"probes": probes_eval(data, pred, y, cal)}
    out["active"] = {a: active_curve(data, pred, y, a, cal, chosen["prior_strength"]) for a in acqs}
    if baselines:
        out["ridge_random"] = ridge_random(data, pool, y)
    out["seconds"] = time.perf_counter() - t0
    print(
        f"  {target}: probes {out['probes']['spearman']:.3f}, "
        + ", ".join(
            f"{a} 50 {out['active'][a][50]['spearman']:.3f}" for a in acqs if 50 in out["active"][a]
        ),
        flush=True,
    )
    return out


def help_baselines(data: Data, pool: list[str], targets: dict[str, np.ndarray]) -> dict:
    """HELP-style MLP and best pool device with the probes (``predictors.py``'s baselines)."""
    help_data = data.as_help()
    help_data["lat"] = {**data.lat, **targets}
    names = list(targets)
    mlp, train_s = mlp_embed_baseline(help_data, pool, names, list(data.ref))
    best, chosen = best_device_baseline(help_data, pool, names, list(data.ref))
    mask = np.ones(len(data.archs), dtype=bool)
    mask[data.ref] = False
    return {
        t: {
            "mlp_help": scores(targets[t], mlp[t], mask),
            "best_pool_device": scores(targets[t], best[t], mask),
            "best_pool_device_name": chosen[t],
        }
        for t in names
    } | {"_mlp_train_s": train_s}
