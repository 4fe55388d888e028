"""The query API of Approach 2: ``(device features, λ) -> design`` in one batched forward.

:class:`L2OOptimizer` bundles a trained :class:`~fleetnas.l2o.network.OptimizerNet` with the
predicted objective it was trained for (optional at query time). :func:`generate` answers a
batch of queries: the network's distributions, argmax decoding to valid designs, the ensemble's
best proposal by the predicted objective (paper Remarks 5.3, *Ensemble*) and, optionally, the
bounded local refinement of :func:`~fleetnas.l2o.decode.refine`. Budgets instead of weights are
answered by :func:`fleetnas.l2o.budget.for_budget`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.l2o.decode import Decoder, refine
from fleetnas.l2o.features import DeviceSet, lambda_array
from fleetnas.l2o.network import OptimizerNet, compute_threads
from fleetnas.l2o.objective import DeviceScales, PredictedObjective


@dataclass
class Generated:
    """Designs for ``n`` queries: ``archs`` ``n x D``, the λ rows ``n x 2``, the predicted
    objective of each design (NaN without an objective), the ensemble member that proposed it
    (-1 after a refinement move) and how many designs the objective scored."""

    archs: np.ndarray
    lam: np.ndarray
    score: np.ndarray
    member: np.ndarray
    evaluations: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class L2OOptimizer:
    """A trained optimizer network plus (optionally) its predicted objective and the probe
    designs that describe a device."""

    def __init__(
        self,
        net: OptimizerNet,
        objective: PredictedObjective | None = None,
        name: str = "",
        probes: np.ndarray | None = None,
    ) -> None:
        if objective is not None and objective.space.name != net.space.name:
            raise InputError(
                f"the network is for space {net.space.name!r}, the objective for "
                f"{objective.space.name!r}"
            )
        self.net = net
        self.objective = objective
        self.name = name
        self.decoder = Decoder(net.space)
        if probes is None and objective is not None:
            probes = getattr(objective.latency, "probes", None)
        #: ``K x D`` probe designs whose latencies describe a device (``None``: spec only)
        self.probes = None if probes is None else net.space.check(probes)

    @property
    def space(self):
        return self.net.space

    @property
    def n_lambda(self) -> int:
        return self.net.spec.n_lambda

    def devices(
        self, features: DeviceSet | np.ndarray, names: list[str] | None = None
    ) -> DeviceSet:
        """A :class:`DeviceSet` from raw features in the network's mode (``probes``: ``K``
        latencies in ms, ``spec``: spec numbers, ``both``: probes then spec)."""
        if isinstance(features, DeviceSet):
            return features
        f = np.asarray(features, dtype=float)
        if f.ndim == 1:
            f = f[None, :]
        mode = self.net.spec.mode
        nm = names or [f"device-{i}" for i in range(len(f))]
        if mode == "probes":
            return DeviceSet(nm, probes=f)
        if mode == "spec":
            return DeviceSet(nm, spec=f)
        k = self.net.spec.n_probes
        if f.shape[1] <= k:
            raise InputError(
                f"features 'both' need {k} probe latencies followed by spec features, got "
                f"{f.shape[1]} columns"
            )
        return DeviceSet(nm, probes=f[:, :k], spec=f[:, k:])

    def scales(self, devices: DeviceSet) -> DeviceScales:
        """Per-device scales of the objective (needed to score, refine and pick)."""
        return self._need_objective("scoring designs").scales(devices)

    def _need_objective(self, what: str) -> PredictedObjective:
        if self.objective is None:
            raise InputError(
                f"{what} needs the predicted objective (accuracy and latency predictors); this "
                "optimizer was loaded without them"
            )
        return self.objective

    def proposals(self, devices: DeviceSet, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(designs M x n x D, logits M x n x F)`` of every member for paired rows."""
        x = self.net.inputs(devices, lam)
        logits = self.net.logits(x)
        return self.decoder.argmax(logits), logits


def generate(
    optimizer: L2OOptimizer,
    devices: DeviceSet | np.ndarray,
    lam: Any,
    refine_rounds: int = 0,
    top_k: int = 0,
    scales: DeviceScales | None = None,
    select: str = "objective",
) -> Generated:
    """Designs for paired rows of ``devices`` (``m`` rows, a :class:`DeviceSet` or raw
    features in the network's mode) and ``lam`` (one row for all, or ``m``).

    ``select``: how an ensemble's proposals are reduced: ``objective`` (lowest predicted
    eq. 8; needs the objective) or ``vote`` (argmax of the members' mean distribution).
    ``refine_rounds`` > 0 runs the local refinement on the predicted objective (pairs among the
    ``top_k`` least certain decisions included when ``top_k >= 2``). ``scales``: per-row
    device scales, when the caller already has them.
    """
    dev = optimizer.devices(devices)
    with compute_threads(len(dev)):
        return _generate(optimizer, dev, lam, refine_rounds, top_k, scales, select)


def _generate(
    optimizer: L2OOptimizer,
    dev: DeviceSet,
    lam: Any,
    refine_rounds: int,
    top_k: int,
    scales: DeviceScales | None,
    select: str,
) -> Generated:
    n = len(dev)
    lam_a = lambda_array(lam, optimizer.n_lambda, n)
    designs, logits = optimizer.proposals(dev, lam_a)
    m = designs.shape[0]
    need_obj = refine_rounds > 0 or (m > 1 and select == "objective")
    if select not in ("objective", "vote"):
        raise InputError(f"select must be 'objective' or 'vote', got {select!r}")
    score = np.full(n, np.nan)
    member = np.zeros(n, dtype=np.int64)
    evals = 0
    if m == 1 and not need_obj:
        return Generated(designs[0], lam_a, score, member)
    if not need_obj or select == "vote":
        probs = optimizer.decoder.probs(logits).mean(axis=0)
        archs = optimizer.space.canonicalize(probs.argmax(axis=-1))
        member[:] = -1 if m > 1 else 0
    if need_obj:
        obj = optimizer._need_objective("ensemble selection and refinement")
        sc = scales if scales is not None else obj.scales(dev)
        if select == "objective":
            flat = designs.reshape(m * n, -1)
            rows = np.tile(np.arange(n), m)
            s = obj.score(flat, dev.take(rows), lam_a[rows], sc.take(rows)).reshape(m, n)
            evals += m * n
            member = s.argmin(axis=0)
            archs = designs[member, np.arange(n)]
            score = s[member, np.arange(n)]
        else:
            score = obj.score(archs, dev, lam_a, sc)
            evals += n
        if refine_rounds > 0:

            def row_score(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
                return obj.score(a, dev.take(rows), lam_a[rows], sc.take(rows))

            probs = optimizer.decoder.probs(logits[member, np.arange(n)]) if top_k >= 2 else None
            res = refine(
                optimizer.space,
                archs,
                row_score,
                rounds=refine_rounds,
                probs=probs,
                decoder=optimizer.decoder,
                top_k=top_k,
            )
            moved = np.any(res.archs != archs, axis=1)
            member = np.where(moved, -1, member)
            archs, score = res.archs, res.scores
            evals += res.evaluations
    return Generated(archs, lam_a, score, member, evals)


def grid(devices: DeviceSet, lam: np.ndarray) -> tuple[DeviceSet, np.ndarray, np.ndarray]:
    """Every (device, λ) pair: ``(device rows, λ rows, device index)`` with the λ varying
    fastest (``m * L`` rows)."""
    lam_a = np.asarray(lam, dtype=float)
    lam_a = np.c_[np.zeros(lam_a.size), lam_a.reshape(-1)] if lam_a.ndim <= 1 else lam_a
    idx = np.repeat(np.arange(len(devices)), len(lam_a))
    return devices.take(idx), np.tile(lam_a, (len(devices), 1)), idx


__all__ = ["Generated", "L2OOptimizer", "generate", "grid"]
