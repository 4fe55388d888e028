"""Training Method 1 (paper eq. 9): supervised by optimal designs of the predicted objective.

Labels ``x*(d, λ) = argmin_x f̂(x; d, λ)`` come from :class:`~fleetnas.search.ExhaustiveSolver`
(exact, for enumerable spaces such as NAS-Bench-201: one pass over all designs per device
answers every λ) or from :func:`~fleetnas.search.evolve` elsewhere (warm-started from the
neighbouring λ's optimum). The loss is eq. (9): the squared error between the network's
per-decision distributions and the label's one-hot encoding (``loss="mse"``), or the
per-decision cross-entropy (``loss="ce"``), plus ``μ ||Θ||²``; both are reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from fleetnas.errors import InputError
from fleetnas.l2o.features import DeviceSet, lambda_array
from fleetnas.l2o.network import OptimizerNet, check_training, torch_threads
from fleetnas.l2o.objective import DeviceScales, PredictedObjective
from fleetnas.predict._nn import cosine_schedule, optimizer_step
from fleetnas.search import (
    EvolutionConfig,
    ExhaustiveSolver,
    Normalization,
    Scale,
    WeightedObjective,
    evolve,
)

LOSSES = ("mse", "ce")


def _norm(obj: PredictedObjective, scales: DeviceScales, j: int) -> Normalization:
    lat = Scale(float(np.asarray(scales.latency.lo)[j]), float(np.asarray(scales.latency.hi)[j]))
    en = None
    if scales.energy is not None:
        en = Scale(float(np.asarray(scales.energy.lo)[j]), float(np.asarray(scales.energy.hi)[j]))
    return Normalization(obj.acc_scale, lat, en)


def exhaustive_labels(
    objective: PredictedObjective,
    devices: DeviceSet,
    lam: Any,
    scales: DeviceScales | None = None,
    archs: np.ndarray | None = None,
) -> np.ndarray:
    """``m x L x D`` exact optima of eq. (8) for every device and every λ row (``L x 2`` or
    ``L`` latency weights) over ``archs`` (default: the whole, enumerable space)."""
    sp = objective.space
    a = sp.enumerate() if archs is None else sp.check(archs)
    lam_a = lambda_array(lam, objective.n_lambda)
    sc = scales or objective.scales(devices)
    acc = objective.accuracy_of(a)
    out = np.empty((len(devices), len(lam_a), sp.n_decisions), dtype=np.int64)
    step = 64
    for s in range(0, len(devices), step):
        part = devices.take(np.arange(s, min(s + step, len(devices))))
        lat = objective.matrix(part, a, "latency")
        en = None if objective.energy is None else objective.matrix(part, a, "energy")
        for k in range(len(part)):
            j = s + k
            solver = ExhaustiveSolver(
                a, acc, lat[:, k], None if en is None else en[:, k], norm=_norm(objective, sc, j)
            )
            out[j] = a[solver.solve_weighted(lam_a)]
    return out


def evolution_labels(
    objective: PredictedObjective,
    devices: DeviceSet,
    lam: Any,
    scales: DeviceScales | None = None,
    config: EvolutionConfig | None = None,
    seed: int = 0,
) -> np.ndarray:
    """``m x L x D`` optima of eq. (8) by batched evolution per (device, λ), each λ (in
    ascending order) warm-started from the previous λ's best design."""
    sp = objective.space
    lam_a = lambda_array(lam, objective.n_lambda)
    sc = scales or objective.scales(devices)
    cfg = config or EvolutionConfig(population=64, children=256, generations=40, patience=8)
    order = np.lexsort((lam_a[:, 0], lam_a[:, 1]))
    out = np.empty((len(devices), len(lam_a), sp.n_decisions), dtype=np.int64)
    rng = np.random.default_rng(seed)
    lat_feats = objective.predictor_features(devices, "latency")
    en_feats = None if objective.energy is None else objective.predictor_features(devices, "energy")
    for j in range(len(devices)):
        norm = _norm(objective, sc, j)
        lat_fn = _device_fn(objective.latency, lat_feats[j])
        en_fn = None if en_feats is None else _device_fn(objective.energy, en_feats[j])
        prev = None
        for li in order:
            wo = WeightedObjective(
                objective.accuracy_of,
                lat_fn,
                en_fn,
                norm=norm,
                lam=(float(lam_a[li, 0]), float(lam_a[li, 1])),
            )
            res = evolve(sp, wo, cfg, seed=rng, initial=prev, keep_front=False)
            out[j, li] = res.best
            prev = res.best[None, :]
    return out


def pooled_labels(
    objective: PredictedObjective,
    devices: DeviceSet,
    lam: Any,
    scales: DeviceScales | None = None,
    anchors: int = 8,
    anchor_lam: Any = None,
    config: EvolutionConfig | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(labels m x L x D, pool p x D)`` for spaces too large to enumerate when evolving
    every (device, λ) is too slow: batched evolution on ``anchors`` devices spread over the
    set (every ``m / anchors``-th) and the λ rows ``anchor_lam`` (default ``lam``) collects
    the Pareto fronts (accuracy, latency, energy) of everything it evaluated into a pool;
    every label is then the exact optimum of eq. (8) over the pool (:func:`exhaustive_labels`).
    Exact for the anchors' fronts, an approximation for the other devices."""
    sp = objective.space
    lam_a = lambda_array(lam, objective.n_lambda)
    a_lam = lam_a if anchor_lam is None else lambda_array(anchor_lam, objective.n_lambda)
    if anchors < 1:
        raise InputError(f"pooled labels need at least 1 anchor device, got {anchors}")
    sc = scales or objective.scales(devices)
    cfg = config or EvolutionConfig(population=48, children=192, generations=25, patience=5)
    idx = np.unique(np.linspace(0, len(devices) - 1, min(anchors, len(devices))).astype(int))
    rng = np.random.default_rng(seed)
    lat_feats = objective.predictor_features(devices, "latency")
    en_feats = None if objective.energy is None else objective.predictor_features(devices, "energy")
    order = np.lexsort((a_lam[:, 0], a_lam[:, 1]))
    parts = [sp.sample(min(256, 4 * sp.n_decisions), rng)]
    for j in idx:
        norm = _norm(objective, sc, int(j))
        lat_fn = _device_fn(objective.latency, lat_feats[j])
        en_fn = None if en_feats is None else _device_fn(objective.energy, en_feats[j])
        prev = None
        for li in order:
            wo = WeightedObjective(
                objective.accuracy_of,
                lat_fn,
                en_fn,
                norm=norm,
                lam=(float(a_lam[li, 0]), float(a_lam[li, 1])),
            )
            res = evolve(sp, wo, cfg, seed=rng, initial=prev, keep_front=True)
            parts += [res.best[None, :], res.front]
            prev = res.best[None, :]
    pool = np.unique(sp.canonicalize(np.concatenate(parts)), axis=0)
    return exhaustive_labels(objective, devices, lam_a, sc, archs=pool), pool


def _device_fn(pred: Any, feats: np.ndarray):
    f = np.asarray(feats, dtype=float)[None, :]
    return lambda a: pred.predict(a, f)[:, 0]


@dataclass
class Method1Config:
    """Settings of :func:`train_method1`: ``loss`` ``mse`` (eq. 9) or ``ce``; ``mu`` is eq.
    (9)'s ``μ`` on the squared weights (per sample, as the loss is a mean)."""

    epochs: int = 200
    batch_size: int = 256
    lr: float = 3e-3
    mu: float = 1e-6
    loss: str = "ce"
    seed: int = 0
    threads: int = 1

    def check(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"Method 1 loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        check_training("Method 1", "epochs", self.epochs, self.batch_size, self.lr, self.mu)


def _targets(net: OptimizerNet, labels: np.ndarray) -> np.ndarray:
    """``n x D`` labels -> ``n x F`` one-hot in the encoding layout (without the space's own
    masking: every decision is a target)."""
    off = np.asarray(net.space.offsets)[:-1]
    out = np.zeros((len(labels), net.space.n_features), dtype=np.float32)
    out[np.arange(len(labels))[:, None], labels + off[None, :]] = 1.0
    return out


def _loss_terms(
    net: OptimizerNet, logits: torch.Tensor, onehot: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mse, ce)`` per member and row (``M x n``) for logits ``M x n x F`` and one-hot
    targets ``n x F`` (shared) or ``M x n x F`` (one batch per member)."""
    sm = net.softmax
    if onehot.ndim == 2:
        onehot = onehot[None]
    pad = sm.padded(logits)
    logp = torch.log_softmax(pad, dim=-1)
    logp = torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))
    p = sm.unpad(torch.exp(logp))
    mse = ((p - onehot) ** 2).sum(dim=-1)
    tgt = sm.padded(onehot)
    tgt = torch.where(torch.isfinite(tgt), tgt, torch.zeros_like(tgt))
    ce = -(tgt * logp).sum(dim=(-1, -2)) / sm.d
    return mse, ce


def train_method1(
    net: OptimizerNet,
    devices: DeviceSet,
    lam: np.ndarray,
    labels: np.ndarray,
    config: Method1Config | None = None,
) -> dict[str, Any]:
    """Fit ``net`` to ``labels`` (``m x L x D`` for every device and λ row, as
    :func:`exhaustive_labels` returns). Every member sees all samples in its own order.
    Returns the history (loss per epoch, seconds, final :func:`label_metrics`)."""
    cfg = config or Method1Config()
    cfg.check()
    lab = np.asarray(labels, dtype=np.int64)
    lam_a = lambda_array(lam, net.spec.n_lambda)
    if lab.shape[:2] != (len(devices), len(lam_a)):
        raise InputError(
            f"labels must be m x L x D = {len(devices)} x {len(lam_a)} x D, got {lab.shape}"
        )
    dev_idx = np.repeat(np.arange(len(devices)), len(lam_a))
    lam_rows = np.tile(lam_a, (len(devices), 1))
    x = torch.as_tensor(net.spec.inputs(devices.take(dev_idx), lam_rows))
    y = torch.as_tensor(_targets(net, lab.reshape(-1, lab.shape[-1])))
    t0 = time.perf_counter()
    hist = _fit(net, x, y, cfg)
    net.freeze()
    metrics = label_metrics(net, devices, lam_a, lab)
    net.info.update(method="method1", method1=asdict(cfg), train_s=time.perf_counter() - t0)
    return {"loss": hist, "seconds": time.perf_counter() - t0, **metrics}


def _fit(net: OptimizerNet, x: torch.Tensor, y: torch.Tensor, cfg: Method1Config) -> list[float]:
    g = torch.Generator().manual_seed(cfg.seed)
    n = len(x)
    bs = min(cfg.batch_size, max(n, 1))
    steps = max(1, math.ceil(n / bs))
    total = max(1, cfg.epochs * steps)
    mod = net.module
    mod.train()
    opt = torch.optim.Adam(mod.parameters(), lr=cfg.lr)
    sched = cosine_schedule(opt, total)
    hist: list[float] = []
    m = net.n_members
    with torch_threads(cfg.threads):
        for _ in range(cfg.epochs):
            perms = torch.stack([torch.randperm(n, generator=g) for _ in range(m)])
            run = 0.0
            for s in range(steps):
                idx = perms[:, s * bs : (s + 1) * bs]
                logits = mod(x[idx])
                onehot = y[idx]
                mse, ce = _loss_terms(net, logits, onehot)
                data = mse.mean() if cfg.loss == "mse" else ce.mean()
                loss = data * m + cfg.mu * mod.l2()
                optimizer_step(loss, opt, sched)
                run += float(data.detach())
            hist.append(run / steps)
    mod.eval()
    return hist


def label_metrics(
    net: OptimizerNet, devices: DeviceSet, lam: Any, labels: np.ndarray
) -> dict[str, float]:
    """How well the network reproduces labels ``m x L x D``: eq. (9)'s squared error on the
    one-hot encoding (per design, summed over the encoding), per-decision cross-entropy,
    share of decisions and of whole designs decoded right (members averaged)."""
    from fleetnas.l2o.decode import Decoder

    lam_a = lambda_array(lam, net.spec.n_lambda)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1, net.space.n_decisions)
    dev_idx = np.repeat(np.arange(len(devices)), len(lam_a))
    lam_rows = np.tile(lam_a, (len(devices), 1))
    x = net.spec.inputs(devices.take(dev_idx), lam_rows)
    logits = net.logits(x)
    with torch.no_grad():
        mse, ce = _loss_terms(net, torch.as_tensor(logits), torch.as_tensor(_targets(net, lab)))
    dec = Decoder(net.space).argmax(logits)
    canon = net.space.canonicalize(lab)
    return {
        "mse_onehot": float(mse.mean()),
        "cross_entropy": float(ce.mean()),
        "decision_accuracy": float((dec == canon[None]).mean()),
        "design_accuracy": float((dec == canon[None]).all(axis=-1).mean()),
    }


__all__ = [
    "LOSSES",
    "Method1Config",
    "evolution_labels",
    "exhaustive_labels",
    "label_metrics",
    "pooled_labels",
    "train_method1",
]
