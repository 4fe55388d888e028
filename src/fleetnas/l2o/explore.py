"""Algorithm 2 (paper Sec. 5.2): grow the measured training set of the performance networks.

Start from the probe designs plus a small random set measured on every real training device;
each round fit the device-aware latency network on everything measured so far, choose an
exploration set ``X_explore``, measure it on every training device through their
:class:`~fleetnas.measure.Measurer` s (each measurement counted), and repeat. The optimizer
network is trained afterwards on the final performance networks (Method 1 or 2). Accuracy labels
come from the given accuracy predictor (device-independent; a full table for NAS-Bench-201).

The paper leaves the choice of ``X_explore`` open. Strategies (:data:`STRATEGIES`):

- ``random``: designs drawn uniformly among those not measured yet;
- ``disagreement``: the candidates whose predicted latency is most uncertain (the predictor's
  relative spread: ensemble disagreement plus GP posterior variance), averaged over devices;
- ``optima``: the designs the *current* predicted objective calls optimal for some training
  device and some ``λ`` (exploitation: measure where the optimizer will look), topped up with
  single-decision neighbours of those optima, then random designs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.l2o.decode import neighbors
from fleetnas.l2o.features import DeviceSet
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.measure.base import Measurer
from fleetnas.predict.base import DevicePredictor, Predictor
from fleetnas.spaces import SearchSpace

STRATEGIES = ("random", "disagreement", "optima")


@dataclass
class ExploreConfig:
    """Settings of :func:`explore`. ``pool``: candidate designs scored per round by the
    ``disagreement`` and ``optima`` strategies (the whole space when it has at most
    ``pool`` designs); ``t``: the ``λ`` grid (as eq. 6's ``t``) of ``optima``."""

    strategy: str = "random"
    rounds: int = 4
    initial: int = 40
    per_round: int = 40
    pool: int = 4096
    t: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9)
    seed: int = 0

    def check(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(
                f"exploration strategy must be one of {', '.join(STRATEGIES)}, got "
                f"{self.strategy!r}"
            )
        if self.rounds < 0 or self.initial < 0 or self.per_round < 1 or self.pool < 1:
            raise InputError(
                "exploration needs rounds >= 0, initial >= 0, per_round >= 1 and pool >= 1"
            )


@dataclass
class ExploreRound:
    """State after a round: designs measured per device, measurements charged in all, the
    designs added, and what the ``on_round`` callback reported."""

    round: int
    designs: int
    measurements: int
    added: np.ndarray
    fit_s: float
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExploreResult:
    """The final latency network, the measured designs (``n x D``) and values (``n x m``,
    devices in measurer order), device features (probe values), and the rounds."""

    predictor: DevicePredictor
    archs: np.ndarray
    values: np.ndarray
    devices: DeviceSet
    rounds: list[ExploreRound]
    measurements: int


def _measure(space: SearchSpace, measurers: Sequence[Measurer], archs: np.ndarray) -> np.ndarray:
    """``n x m`` latencies of ``archs`` on each measurer's device."""
    if len(archs) == 0:
        return np.zeros((0, len(measurers)))
    cols = [np.asarray(m.measure(space, archs, ("latency",))["latency"]) for m in measurers]
    return np.stack(cols, axis=1)


def _charged(measurers: Sequence[Measurer]) -> int:
    return int(sum(m.total_cost.measurements for m in measurers))


def _keys(archs: np.ndarray) -> set[bytes]:
    """The designs of an ``n x D`` array as hashable keys (the ``seen`` sets)."""
    return {a.tobytes() for a in archs}


def _unseen(space: SearchSpace, seen: set[bytes], archs: np.ndarray) -> np.ndarray:
    keep, local = [], set()
    for a in archs:
        k = a.tobytes()
        if k not in seen and k not in local:
            local.add(k)
            keep.append(a)
    return np.asarray(keep, dtype=np.int64).reshape(-1, space.n_decisions)


def _pool(space: SearchSpace, seen: set[bytes], size: int, rng: np.random.Generator) -> np.ndarray:
    if space.size <= size:
        allx = space.canonicalize(space.enumerate())
        return _unseen(space, seen, allx[rng.permutation(len(allx))])
    return _unseen(space, seen, space.sample(size, rng))


def _top_up(
    space: SearchSpace, out: np.ndarray, seen: set[bytes], more: np.ndarray, k: int
) -> np.ndarray:
    """``out`` filled up to ``k`` designs with those of ``more`` (in order) that are neither
    in ``seen`` nor in ``out``."""
    if len(out) >= k:
        return out
    extra = _unseen(space, seen | _keys(out), more)
    return np.concatenate([out, extra[: k - len(out)]])


def choose(
    strategy: str,
    space: SearchSpace,
    predictor: DevicePredictor,
    accuracy: Predictor,
    devices: DeviceSet,
    seen: set[bytes],
    k: int,
    rng: np.random.Generator,
    pool_size: int = 4096,
    t: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
) -> np.ndarray:
    """``k`` new designs (``<= k x D``, none in ``seen``) by ``strategy``."""
    pool = _pool(space, seen, pool_size, rng)
    if strategy == "random" or len(pool) <= k:
        return pool[:k]
    feats = devices.block(getattr(predictor, "features", "probes"))
    if strategy == "disagreement":
        mean, std = predictor.predict_dist(pool, feats)
        rel = (np.asarray(std) / np.maximum(np.asarray(mean), 1e-12)).mean(axis=1)
        return pool[np.argsort(-rel, kind="stable")[:k]]
    if strategy != "optima":
        raise InputError(f"unknown exploration strategy {strategy!r}")
    obj = PredictedObjective(space, accuracy, predictor, reference=pool[: min(len(pool), 4096)])
    sc = obj.scales(devices)
    acc_n = obj.acc_scale.apply(np.asarray(accuracy.predict(pool), dtype=float))
    lat = obj.matrix(devices, pool)
    lat_n = (lat - np.asarray(sc.latency.lo)[None]) / np.asarray(sc.latency.span)[None]
    picks: list[int] = []
    for tt in t:
        score = -(1.0 - tt) * acc_n[:, None] + tt * lat_n
        picks.extend(np.argmin(score, axis=0).tolist())
    idx, counts = np.unique(np.asarray(picks), return_counts=True)
    optima = pool[idx[np.argsort(-counts, kind="stable")]]
    out = optima[:k]
    if len(out) < k:
        near, _ = neighbors(space, optima)
        out = _top_up(space, out, seen, near[rng.permutation(len(near))], k)
    return _top_up(space, out, seen, pool, k)


def explore(
    space: SearchSpace,
    measurers: Sequence[Measurer],
    probes: np.ndarray,
    make_predictor: Callable[[], DevicePredictor],
    accuracy: Predictor,
    config: ExploreConfig | None = None,
    on_round: Callable[[int, DevicePredictor, DeviceSet], dict[str, Any]] | None = None,
    names: Sequence[str] | None = None,
) -> ExploreResult:
    """Run Algorithm 2's measurement loop on the training devices of ``measurers``.

    ``probes``: ``K x D`` designs whose measured latencies are each device's features;
    ``make_predictor``: a fresh unfitted latency network (refitted every round on everything
    measured); ``on_round(round, predictor, devices)`` may evaluate the current networks (its
    dict is kept in the round's report). Returns the final predictor and the measured data.
    """
    cfg = config or ExploreConfig()
    cfg.check()
    if len(measurers) < 2:
        raise InputError("Algorithm 2 needs at least two training devices (measurers)")
    rng = np.random.default_rng(cfg.seed)
    p = space.check(probes)
    seen = _keys(p)
    init = _pool(space, seen, max(cfg.initial, 1) * 4, rng)[: cfg.initial]
    archs = np.concatenate([p, init])
    seen |= _keys(init)
    values = _measure(space, measurers, archs)
    dev_names = list(names) if names is not None else [m.device.name for m in measurers]
    devices = DeviceSet(dev_names, probes=values[: len(p)].T)
    rounds: list[ExploreRound] = []
    predictor = make_predictor()
    added = init
    for r in range(cfg.rounds + 1):
        t0 = time.perf_counter()
        predictor = make_predictor()
        predictor.fit(archs, devices.probes, values)
        fit_s = time.perf_counter() - t0
        report = {} if on_round is None else dict(on_round(r, predictor, devices))
        rounds.append(ExploreRound(r, len(archs), _charged(measurers), added, fit_s, report))
        if r == cfg.rounds:
            break
        added = choose(
            cfg.strategy, space, predictor, accuracy, devices, seen, cfg.per_round, rng,
            cfg.pool, cfg.t,
        )  # fmt: skip
        if len(added) == 0:
            break
        seen |= _keys(added)
        values = np.concatenate([values, _measure(space, measurers, added)])
        archs = np.concatenate([archs, added])
    return ExploreResult(predictor, archs, values, devices, rounds, _charged(measurers))


def algorithm2(
    space: SearchSpace,
    measurers: Sequence[Measurer],
    probes: np.ndarray,
    make_predictor: Callable[[], DevicePredictor],
    accuracy: Predictor,
    config: ExploreConfig | None = None,
    method: int = 1,
    n_synthetic: int = 0,
    lam: np.ndarray | None = None,
    hidden: Sequence[int] = (256, 256),
    members: int = 1,
    seed: int = 0,
    on_round: Callable[[int, DevicePredictor, DeviceSet], dict[str, Any]] | None = None,
) -> tuple[ExploreResult, Any]:
    """Algorithm 2 end to end: :func:`explore`, then the optimizer network on the final
    performance networks with Method ``method`` (1: exact labels when the space can be
    enumerated, else evolutionary ones; 2: eq. 10), over the real training devices plus
    ``n_synthetic`` devices interpolated between and perturbed around them. Returns the
    exploration result and the :class:`~fleetnas.l2o.generate.L2OOptimizer`."""
    from fleetnas.l2o import method1, method2, synthetic
    from fleetnas.l2o.features import FeatureSpec
    from fleetnas.l2o.generate import L2OOptimizer
    from fleetnas.l2o.network import OptimizerNet

    if method not in (1, 2):
        raise InputError(f"method must be 1 or 2, got {method}")
    res = explore(space, measurers, probes, make_predictor, accuracy, config, on_round)
    obj = PredictedObjective(space, accuracy, res.predictor, seed=seed)
    rng = np.random.default_rng(seed)
    parts = [res.devices]
    if n_synthetic > 0:
        parts.append(synthetic.interpolated_devices(res.devices, n_synthetic // 2, rng))
        parts.append(synthetic.perturbed_devices(res.devices, n_synthetic - n_synthetic // 2, rng))
    devs = DeviceSet.concat(parts)
    net = OptimizerNet(space, FeatureSpec("probes").fit(devs), hidden, members, seed)
    sc = obj.scales(devs)
    if method == 1:
        t = np.linspace(0.0, 0.97, 40)
        lam_a = t / (1 - t) if lam is None else np.asarray(lam, dtype=float)
        if space.size <= 200_000:
            labels = method1.exhaustive_labels(obj, devs, lam_a, sc)
        else:
            labels = method1.evolution_labels(obj, devs, lam_a, sc, seed=seed)
        method1.train_method1(net, devs, lam_a, labels, method1.Method1Config(seed=seed))
    else:
        method2.train_method2(net, obj, devs, sc, method2.Method2Config(seed=seed), lam=lam)
    return res, L2OOptimizer(net, obj, probes=probes)


__all__ = [
    "STRATEGIES",
    "ExploreConfig",
    "ExploreResult",
    "ExploreRound",
    "algorithm2",
    "choose",
    "explore",
]
