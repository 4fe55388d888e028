"""Training Method 2 (paper eq. 10): minimize the predicted objective through frozen networks.

No labels: the optimizer network's per-decision distributions are relaxed into a differentiable
design, encoded with :meth:`~fleetnas.spaces.SearchSpace.relax_encode`, and fed to the frozen
accuracy and device-aware latency (energy) networks; the loss is eq. (8) averaged over sampled
``(d, λ)`` plus ``μ ||Θ||²``. Each row's eq. (8) is divided by ``1 + λ1 + λ2`` (eq. 6/7's
``t``-form: same argmin, but rows with a large λ do not dominate the gradient).

Relaxations (:data:`RELAXATIONS`), each with a temperature annealed geometrically from
``tau_start`` to ``tau_end``:

- ``softmax``: the per-decision softmax at temperature τ (deterministic);
- ``gumbel``: Gumbel-softmax, ``softmax((logits + g) / τ)`` with Gumbel noise ``g``;
- ``st``: straight-through Gumbel: the forward pass sees the hard one-hot of the noisy argmax
  (exact predictor values of a real design), the backward pass the Gumbel-softmax gradient.

Which works best is measured in ``benchmarks/approach2.py``.
"""

from __future__ import annotations

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
from fleetnas.search.objectives import Normalization, Scale, weighted_objective_torch

RELAXATIONS = ("softmax", "gumbel", "st", "reinforce")


@dataclass
class Method2Config:
    """Settings of :func:`train_method2`.

    ``t_max``: λ rows are drawn with ``t = λ2 / (1 + λ2)`` uniform in ``[0, t_max]`` (and with
    an energy term, ``(t1, t2)`` uniform on the simplex part ``t1 + t2 <= t_max``) unless a fixed
    λ set is given; ``real_weight``: sampling weight of real devices relative to synthetic ones.
    """

    steps: int = 1500
    batch_size: int = 512
    lr: float = 3e-3
    mu: float = 1e-6
    relaxation: str = "softmax"
    tau_start: float = 1.0
    tau_end: float = 0.05
    t_max: float = 0.98
    real_weight: float = 1.0
    samples: int = 8
    entropy: float = 0.01
    seed: int = 0
    threads: int = 1

    def check(self) -> None:
        if self.relaxation not in RELAXATIONS:
            raise InputError(
                f"relaxation must be one of {', '.join(RELAXATIONS)}, got {self.relaxation!r}"
            )
        check_training("Method 2", "steps", self.steps, self.batch_size, self.lr, self.mu)
        if not (0 < self.tau_end <= self.tau_start):
            raise InputError(
                f"temperatures need 0 < tau_end <= tau_start, got {self.tau_start}, {self.tau_end}"
            )
        if not 0 < self.t_max < 1:
            raise InputError(f"t_max must lie in (0, 1), got {self.t_max}")


def sample_lambda(n: int, n_lambda: int, t_max: float, rng: np.random.Generator) -> np.ndarray:
    """``n x 2`` λ rows with ``t`` uniform in ``[0, t_max]`` (see :class:`Method2Config`)."""
    if n_lambda == 1:
        t = rng.uniform(0.0, t_max, n)
        return np.c_[np.zeros(n), t / (1.0 - t)]
    u = rng.dirichlet(np.ones(3), n) * t_max
    t_lat, t_en = u[:, 0], u[:, 1]
    rest = 1.0 - t_lat - t_en
    return np.c_[t_en / rest, t_lat / rest]


def relax(
    net: OptimizerNet, logits: torch.Tensor, kind: str, tau: float, g: torch.Generator
) -> torch.Tensor:
    """Relaxed one-hot ``... x F`` from logits ``... x F`` (see the module docstring)."""
    sm = net.softmax
    pad = sm.padded(logits)
    if kind != "softmax":
        u = torch.rand(pad.shape, generator=g).clamp(1e-10, 1.0 - 1e-7)
        pad = pad - torch.log(-torch.log(u))
    soft = torch.softmax(pad / tau, dim=-1)
    if kind == "st":
        hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
        soft = hard - soft.detach() + soft
    return sm.unpad(soft)


def _sample(
    net: OptimizerNet, logits: torch.Tensor, s: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``s`` designs per row drawn from the per-decision distributions: ``(log-probability
    s x M x n, one-hot s x M x n x F, entropy M x n)``."""
    sm = net.softmax
    logp_all = torch.log_softmax(sm.padded(logits), dim=-1)
    p = torch.exp(logp_all)
    flat = p.reshape(-1, p.shape[-1])
    idx = torch.multinomial(flat, s, replacement=True, generator=g)
    idx = idx.T.reshape(s, *p.shape[:-1])
    lp = torch.where(torch.isfinite(logp_all), logp_all, torch.zeros_like(logp_all))
    chosen = torch.gather(lp.unsqueeze(0).expand(s, *lp.shape), -1, idx.unsqueeze(-1))
    hard = torch.zeros((s, *p.shape), dtype=p.dtype).scatter_(-1, idx.unsqueeze(-1), 1.0)
    ent = -(p * lp).sum(dim=(-1, -2))
    return chosen.squeeze(-1).sum(dim=-1), sm.unpad(hard), ent


def train_method2(
    net: OptimizerNet,
    objective: PredictedObjective,
    devices: DeviceSet,
    scales: DeviceScales | None = None,
    config: Method2Config | None = None,
    lam: Any = None,
) -> dict[str, Any]:
    """Train ``net`` on eq. (10) over ``devices`` (real and synthetic). ``lam``: optional fixed
    λ set (rows drawn from it) instead of :func:`sample_lambda`. Returns the history (loss per
    100 steps, seconds)."""
    cfg = config or Method2Config()
    cfg.check()
    if net.spec.n_lambda != objective.n_lambda:
        raise InputError(
            f"the network takes {net.spec.n_lambda} λ weight(s), the objective {objective.n_lambda}"
        )
    if len(devices) == 0:
        raise InputError("Method 2 needs at least one training device")
    acc_mod, lat_mod, en_mod = objective.torch_modules()
    sc = scales or objective.scales(devices)
    rng = np.random.default_rng(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    lam_set = None if lam is None else lambda_array(lam, objective.n_lambda)
    x_dev = torch.as_tensor(net.spec.device_inputs(devices))
    lat_feats = torch.as_tensor(
        objective.predictor_features(devices, "latency"), dtype=torch.float32
    )
    en_feats = (
        None
        if en_mod is None
        else torch.as_tensor(objective.predictor_features(devices, "energy"), dtype=torch.float32)
    )
    lat_lo, lat_hi = np.asarray(sc.latency.lo), np.asarray(sc.latency.hi)
    en_lo = en_hi = None
    if sc.energy is not None:
        en_lo, en_hi = np.asarray(sc.energy.lo), np.asarray(sc.energy.hi)
    w = np.where(devices.synthetic, 1.0, cfg.real_weight)  # type: ignore[arg-type]
    p_dev = w / w.sum()
    m = net.n_members
    mod = net.module
    mod.train()
    opt = torch.optim.Adam(mod.parameters(), lr=cfg.lr)
    sched = cosine_schedule(opt, max(1, cfg.steps))
    hist: list[float] = []
    run, k = 0.0, 0
    t0 = time.perf_counter()
    with torch_threads(cfg.threads):
        for step in range(cfg.steps):
            tau = cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** (step / max(1, cfg.steps - 1))
            rows = rng.choice(len(devices), size=cfg.batch_size, p=p_dev)
            if lam_set is None:
                lam_rows = sample_lambda(cfg.batch_size, objective.n_lambda, cfg.t_max, rng)
            else:
                lam_rows = lam_set[rng.integers(0, len(lam_set), cfg.batch_size)]
            lam_feat = torch.as_tensor(_lam_inputs(net, lam_rows))
            x = torch.cat([x_dev[rows], lam_feat], dim=1)
            logits = mod(x)
            s_n = cfg.samples if cfg.relaxation == "reinforce" else 1
            if cfg.relaxation == "reinforce":
                logp, onehot, ent = _sample(net, logits, s_n, g)
                probs = onehot.reshape(s_n * m * len(rows), -1)
            else:
                probs = relax(net, logits, cfg.relaxation, tau, g).reshape(m * len(rows), -1)
            enc = objective.space.relax_encode(probs)
            rr = np.tile(rows, m * s_n)
            lam_t = np.tile(lam_rows, (m * s_n, 1))
            acc = acc_mod(enc)
            lat = lat_mod(enc, lat_feats[rr])
            energy = None if en_mod is None else en_mod(enc, en_feats[rr])  # type: ignore[index]
            norm = Normalization(
                objective.acc_scale,
                Scale(lat_lo[rr], lat_hi[rr]),
                None if en_lo is None else Scale(en_lo[rr], en_hi[rr]),  # type: ignore[index]
            )
            f = weighted_objective_torch(acc, lat, lam_t, norm, energy)
            f = f / torch.as_tensor(1.0 + lam_t.sum(axis=1), dtype=f.dtype)
            data = f.mean()
            if cfg.relaxation == "reinforce":
                fs = f.detach().reshape(s_n, m, len(rows))
                adv = fs - (fs.sum(dim=0, keepdim=True) - fs) / max(s_n - 1, 1)
                beta = cfg.entropy * (1.0 - step / max(1, cfg.steps))
                loss = (adv * logp).mean() * m - beta * ent.mean() * m + cfg.mu * mod.l2()
            else:
                loss = data * m + cfg.mu * mod.l2()
            optimizer_step(loss, opt, sched)
            run += float(data.detach())
            k += 1
            if k == 100 or step == cfg.steps - 1:
                hist.append(run / k)
                run, k = 0.0, 0
    mod.eval()
    net.freeze()
    seconds = time.perf_counter() - t0
    net.info.update(method="method2", method2=asdict(cfg), train_s=seconds)
    return {"loss": hist, "seconds": seconds}


def _lam_inputs(net: OptimizerNet, lam_rows: np.ndarray) -> np.ndarray:
    from fleetnas.l2o.features import lambda_features

    return lambda_features(lam_rows, net.spec.n_lambda).astype(np.float32)


__all__ = ["RELAXATIONS", "Method2Config", "relax", "sample_lambda", "train_method2"]
