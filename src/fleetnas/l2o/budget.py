"""Budgets instead of weights (paper Sec. 3 and end of Sec. 5.2): find λ for a device's budget.

Without measurements (:func:`for_budget`): a coarse scan and then a bisection on eq. (6)'s
``t = λ2 / (1 + λ2)`` over ``[0, t_max]``, vectorized over all queries: at each step the
optimizer network proposes ``x̂(d, λ(t))`` and the device-aware predictor gives its latency. A
design is accepted when its *safe* latency

    ``L_safe = mean * exp(margin * std / mean)``

is within the budget: ``std / mean`` is the predictor's spread in log units (its ensemble
disagreement plus the GP posterior variance, :meth:`DeviceAwarePredictor.predict_dist`), so
``margin`` is a number of log-standard deviations, chosen on validation devices for a target
violation rate (``benchmarks/approach2.py``). With ``max_violation`` instead, the margin is the
device's own: a latency predictor carrying an interval calibration
(:mod:`fleetnas.predict.interval`) gives ``L_safe = mean * exp(q(1 - max_violation) * s(x, d))``,
whose normalizer ``s`` grows where the device's probes fit the fleet poorly, so a design is
accepted when its calibrated probability of exceeding the budget is at most ``max_violation``.
Either way, when the latency predictor is calibrated every result carries that probability
(``p_violation``, :func:`violation_probability`).

The smallest accepted ``t`` gives the most accurate design; among all accepted designs evaluated,
the most accurate by the accuracy predictor is returned. With an energy budget too, the bisection
runs along a few directions of the ``(λ1, λ2)`` plane (``energy_shares``: the share of ``t`` on
energy) and the most accurate accepted design over all of them wins.

With a measurer (:func:`for_budget_verified`): the network's proposals along ``t`` become
candidates that real measurements verify, so the returned design never exceeds the budget by
measurement. Two rules spend the measurements: ``"bisection"`` (Approach 1's verified bisection
over an ordered candidate list, :func:`fleetnas.proxy.verify_candidates`) and ``"improvement"``
(the largest expected accuracy gain under the latency predictor's calibrated interval,
:func:`fleetnas.proxy.verify_by_improvement`; it needs an interval calibration). ``"auto"``
takes ``"improvement"`` where the predictor is calibrated and there is no energy budget: on the
held-out splits of ``benchmarks/predict_heldout.py`` it halves the regret of bisection at the
same 3 measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.l2o.decode import refine
from fleetnas.l2o.features import DeviceSet
from fleetnas.l2o.generate import L2OOptimizer
from fleetnas.l2o.network import compute_threads
from fleetnas.l2o.objective import DeviceScales, PredictedObjective

#: Safety margin (log-standard deviations of the latency prediction): the smallest margin with
#: at most 2.5 % true violations on HELP's meta-valid NAS-Bench-201 devices for a latency network
#: fit on the meta-train ones (``benchmarks/approach2.py``); 3.7 % on the unseen meta-test ones.
DEFAULT_MARGIN = 0.5
#: The network alone's margin per space, chosen by ``benchmarks/l2o_margin.py`` on a calibration
#: fleet for at most 2.5 % violations and read on a test fleet (``results/l2o_margin.md``: NB201
#: 0.2 % violations at 1.05 pp regret, OFA-MobileNetV3 0.7 % at 1.97 pp); spaces it has not
#: calibrated get :data:`UNCALIBRATED_MARGIN`.
SPACE_MARGINS = {"nb201": 0.5, "ofa_mbv3": 2.5}
UNCALIBRATED_MARGIN = 1.0
#: Score offset that ranks every design over budget after every design within it.
_OVER = 1.0e6


def default_margin(space: str) -> float:
    """The calibrated safety margin of ``space`` (a space name), or the uncalibrated default."""
    return SPACE_MARGINS.get(space, UNCALIBRATED_MARGIN)


@dataclass
class BudgetResult:
    """One design per query with its λ row (``n x 2``), ``t``, predicted accuracy, predicted
    latency (mean and safe bound) and energy, whether the safe bound meets the budget
    (``feasible``), how many designs were priced, and, in hybrid mode, the measured latency and
    the number of real measurements per query."""

    archs: np.ndarray
    lam: np.ndarray
    t: np.ndarray
    accuracy: np.ndarray
    latency: np.ndarray
    latency_bound: np.ndarray
    feasible: np.ndarray
    energy: np.ndarray | None = None
    evaluations: int = 0
    measured: np.ndarray | None = None
    measurements: np.ndarray | None = None
    p_violation: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _budget_array(b: Any, n: int, what: str) -> np.ndarray | None:
    if b is None:
        return None
    a = np.asarray(b, dtype=float).reshape(-1)
    if len(a) not in (1, n):
        raise InputError(f"got {len(a)} {what} budgets for {n} devices; give one or {n}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise InputError(f"{what} budgets must be positive numbers, got {a[:5]}")
    return np.broadcast_to(a, (n,)).copy()


def _calibrated(latency: Any) -> bool:
    return getattr(latency, "calibration", None) is not None


#: How the hybrid mode spends its measurements (see the module docstring).
HYBRID_RULES = ("auto", "bisection", "improvement")


def hybrid_rule_for(obj: PredictedObjective, rule: str, energy: bool) -> str:
    """The concrete rule ``"auto"`` stands for, or one clear error for an impossible choice."""
    if rule not in HYBRID_RULES:
        raise InputError(f"unknown hybrid rule {rule!r}; expected one of {', '.join(HYBRID_RULES)}")
    if rule == "auto":
        return "improvement" if _calibrated(obj.latency) and not energy else "bisection"
    if rule == "improvement" and energy:
        raise InputError(
            "the 'improvement' hybrid rule verifies latency budgets only; use 'bisection'"
        )
    if rule == "improvement" and not _calibrated(obj.latency):
        raise InputError(
            "the 'improvement' hybrid rule needs a latency predictor with an interval calibration "
            "(fleetnas.predict.interval); use 'bisection'"
        )
    return rule


def violation_probability(
    optimizer: L2OOptimizer, devices: DeviceSet | np.ndarray, archs: np.ndarray, latency_ms: Any
) -> np.ndarray | None:
    """Calibrated probability that each design (row ``i`` on device row ``i``) exceeds its
    latency budget, from the latency predictor's interval calibration; ``None`` when the
    predictor has none."""
    obj = optimizer._need_objective("violation probabilities")
    if not _calibrated(obj.latency):
        return None
    dev = optimizer.devices(devices)
    a = optimizer.space.check(archs)
    b = _budget_array(latency_ms, len(a), "latency")
    feats = obj.predictor_features(dev, "latency")
    if len(feats) != len(a):
        raise InputError(f"got {len(a)} designs for {len(feats)} devices; give one per device")
    return obj.latency.exceed_probability(a, feats, b, paired=True)


class _Pricer:
    """Predicted accuracy, latency (mean, safe bound) and energy of paired rows. The bound
    uses ``margin`` log-standard deviations, or, with ``max_violation``, the calibrated
    one-sided quantile of the latency predictor's interval."""

    def __init__(
        self,
        obj: PredictedObjective,
        devices: DeviceSet,
        margin: float,
        max_violation: float | None = None,
    ) -> None:
        self.obj, self.devices, self.margin = obj, devices, float(margin)
        self.lat_feats = obj.predictor_features(devices, "latency")
        self.en_feats = None if obj.energy is None else obj.predictor_features(devices, "energy")
        self.count = 0
        self.q = None
        if max_violation is not None:
            if not 0.0 < float(max_violation) < 1.0:
                raise InputError(f"max_violation must be in (0, 1), got {max_violation}")
            if not _calibrated(obj.latency):
                raise InputError(
                    "max_violation needs a latency predictor with an interval calibration "
                    "(fleetnas.predict.interval); give a fleet-wide margin instead"
                )
            self.q = float(obj.latency.calibration.quantile(1.0 - float(max_violation)))

    def __call__(self, archs: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        a = self.obj.space.check(archs)
        self.count += len(a)
        acc = self.obj.accuracy_of(a)
        if self.q is not None:
            mean, s = self.obj.latency.log_scale(a, self.lat_feats[rows], paired=True)
            bound = mean * np.exp(self.q * s)
        else:
            mean, std = self.obj.latency.predict_dist(a, self.lat_feats[rows], paired=True)
            mean = np.asarray(mean, dtype=float)
            rel = np.asarray(std, dtype=float) / np.maximum(mean, 1e-12)
            bound = mean * np.exp(self.margin * rel)
        out = {"accuracy": acc, "latency": mean, "bound": bound}
        if self.en_feats is not None:
            em, es = self.obj.energy.predict_dist(a, self.en_feats[rows], paired=True)  # type: ignore[union-attr]
            em = np.asarray(em, dtype=float)
            out["energy"] = em
            out["energy_bound"] = em * np.exp(self.margin * np.asarray(es) / np.maximum(em, 1e-12))
        return out


def _ok(m: dict[str, np.ndarray], lat_b: np.ndarray, en_b: np.ndarray | None) -> np.ndarray:
    ok = m["bound"] <= lat_b
    if en_b is not None:
        ok &= m["energy_bound"] <= en_b
    return ok


def _lam_of(t: np.ndarray, share: float) -> np.ndarray:
    """λ rows for ``t`` split into latency ``(1 - share) t`` and energy ``share t``."""
    rest = np.maximum(1.0 - t, 1e-9)
    return np.c_[share * t / rest, (1.0 - share) * t / rest]


def for_budget(
    optimizer: L2OOptimizer,
    devices: DeviceSet | np.ndarray,
    latency_ms: Any,
    energy_mj: Any = None,
    margin: float = DEFAULT_MARGIN,
    iters: int = 12,
    t_max: float = 0.995,
    energy_shares: Sequence[float] = (0.25, 0.5, 0.75),
    refine_rounds: int = 0,
    scan: int = 9,
    max_violation: float | None = None,
) -> BudgetResult:
    """The most accurate design the network proposes whose safe predicted latency (and energy)
    meets each device's budget, by bisection on ``t`` (see the module docstring). No
    measurement is taken. ``max_violation`` (e.g. 0.05) takes the latency margin from each
    device's calibrated interval instead of the fleet-wide ``margin``.

    Where even ``t_max`` is over budget the design with the smallest
    safe latency seen is returned with ``feasible`` false. ``refine_rounds`` > 0 then moves
    each design to a more accurate single-decision neighbour that still meets the budget.
    ``scan`` values of ``t`` evenly spaced in ``[0, t_max]`` are tried first; the bisection
    (``iters`` steps) then refines between the smallest feasible one and its predecessor."""
    with compute_threads(len(devices)):
        return _for_budget(
            optimizer, devices, latency_ms, energy_mj, margin, iters, t_max, energy_shares,
            refine_rounds, scan, max_violation,
        )  # fmt: skip


def _for_budget(
    optimizer: L2OOptimizer,
    devices: DeviceSet | np.ndarray,
    latency_ms: Any,
    energy_mj: Any = None,
    margin: float = DEFAULT_MARGIN,
    iters: int = 12,
    t_max: float = 0.995,
    energy_shares: Sequence[float] = (0.25, 0.5, 0.75),
    refine_rounds: int = 0,
    scan: int = 9,
    max_violation: float | None = None,
) -> BudgetResult:
    """Body of :func:`for_budget`."""
    obj = optimizer._need_objective("budget mode")
    dev = optimizer.devices(devices)
    n = len(dev)
    lat_b = _budget_array(latency_ms, n, "latency")
    en_b = _budget_array(energy_mj, n, "energy")
    if lat_b is None:
        raise InputError("a latency budget is required")
    if en_b is not None and obj.energy is None:
        raise InputError("an energy budget needs an optimizer trained with an energy predictor")
    if not 0 < t_max < 1 or iters < 1:
        raise InputError(f"bisection needs 0 < t_max < 1 and iters >= 1, got {t_max}, {iters}")
    price = _Pricer(obj, dev, margin, max_violation)
    rows = np.arange(n)
    shares = [0.0] if en_b is None else [float(s) for s in energy_shares]
    best = {
        "archs": np.zeros((n, optimizer.space.n_decisions), dtype=np.int64),
        "acc": np.full(n, -np.inf),
        "t": np.full(n, np.nan),
        "lam": np.zeros((n, 2)),
    }
    fallback = {"archs": best["archs"].copy(), "bound": np.full(n, np.inf), "t": np.full(n, t_max)}
    fallback["lam"] = np.zeros((n, 2))
    cache: dict[str, DeviceScales] = {}

    def visit(t: np.ndarray, share: float) -> np.ndarray:
        lam = _lam_of(t, share)
        designs, _ = optimizer.proposals(dev, lam)
        a = designs[0] if designs.shape[0] == 1 else _pick(optimizer, designs, dev, lam, cache)
        m = price(a, rows)
        ok = _ok(m, lat_b, en_b)
        better = ok & (m["accuracy"] > best["acc"])
        best["archs"][better] = a[better]
        best["acc"][better] = m["accuracy"][better]
        best["t"][better] = t[better]
        best["lam"][better] = lam[better]
        slow = ~ok & (m["bound"] < fallback["bound"])
        fallback["archs"][slow] = a[slow]
        fallback["bound"][slow] = m["bound"][slow]
        fallback["t"][slow] = t[slow]
        fallback["lam"][slow] = lam[slow]
        return ok

    for share in shares:
        # coarse scan: the smallest feasible t on the grid brackets the bisection, so a network
        # whose latency is not monotone in t cannot hide a feasible, more accurate region
        grid_t = np.linspace(0.0, t_max, max(2, int(scan)))
        first = np.full(n, -1)
        for k, tk in enumerate(grid_t):
            ok = visit(np.full(n, tk), share)
            first = np.where((first < 0) & ok, k, first)
        active = first > 0
        hi = grid_t[np.maximum(first, 0)]
        lo = grid_t[np.maximum(first - 1, 0)]
        for _ in range(iters):
            if not active.any():
                break
            mid = 0.5 * (lo + hi)
            ok = visit(mid, share)
            hi = np.where(active & ok, mid, hi)
            lo = np.where(active & ~ok, mid, lo)
    feasible = np.isfinite(best["acc"])
    archs = np.where(feasible[:, None], best["archs"], fallback["archs"])
    t = np.where(feasible, best["t"], fallback["t"])
    lam = np.where(feasible[:, None], best["lam"], fallback["lam"])
    if refine_rounds > 0:
        archs = _refine_budget(optimizer, archs, price, lat_b, en_b, refine_rounds)
    final = price(archs, rows)
    feasible = _ok(final, lat_b, en_b)
    return BudgetResult(
        archs=archs,
        lam=lam,
        t=t,
        accuracy=final["accuracy"],
        latency=final["latency"],
        latency_bound=final["bound"],
        feasible=feasible,
        energy=final.get("energy"),
        evaluations=price.count,
        p_violation=violation_probability(optimizer, dev, archs, lat_b),
        info={
            "margin": margin, "max_violation": max_violation, "iters": iters, "scan": scan,
            "t_max": t_max, "shares": shares,
        },
    )  # fmt: skip


def _pick(
    optimizer: L2OOptimizer,
    designs: np.ndarray,
    dev: DeviceSet,
    lam: np.ndarray,
    cache: dict[str, DeviceScales],
) -> np.ndarray:
    """The ensemble member's proposal with the lowest predicted eq. (8), per row (the
    devices' scales are computed once and kept in ``cache``)."""
    obj = optimizer._need_objective("ensemble selection")
    m, n = designs.shape[:2]
    if "scales" not in cache:
        cache["scales"] = obj.scales(dev)
    sc = cache["scales"]
    flat = designs.reshape(m * n, -1)
    rr = np.tile(np.arange(n), m)
    s = obj.score(flat, dev.take(rr), lam[rr], sc.take(rr)).reshape(m, n)
    return designs[s.argmin(axis=0), np.arange(n)]


def _refine_budget(
    optimizer: L2OOptimizer,
    archs: np.ndarray,
    price: _Pricer,
    lat_b: np.ndarray,
    en_b: np.ndarray | None,
    rounds: int,
) -> np.ndarray:
    acc_scale = optimizer._need_objective("refinement").acc_scale

    def score(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m = price(a, rows)
        over = m["bound"] / lat_b[rows] - 1.0
        if en_b is not None:
            over = np.maximum(over, m["energy_bound"] / en_b[rows] - 1.0)
        return np.where(over <= 0, -acc_scale.apply(m["accuracy"]), _OVER + over)

    return refine(optimizer.space, archs, score, rounds=rounds).archs


def candidate_list(
    acc: np.ndarray, lat: np.ndarray, bound: np.ndarray, budget: float, n_candidates: int
) -> tuple[np.ndarray, int]:
    """Choose the hybrid mode's candidates among one device's proposals.

    Keeps the predicted Pareto set (no other proposal is both more accurate and faster), sorted
    by predicted latency; the *start* is the most accurate one whose safe bound meets the
    budget (else the fastest). Up to ``(n_candidates - 1) // 2`` more accurate neighbours follow
    it, and the slots left go to faster ones spread evenly from the start down to the fastest
    proposal, so a measured violation always leaves a safer design to fall back on. Returns
    ``(indices into the proposals, ascending predicted latency; position of the start)``.
    """
    order = np.lexsort((-acc, lat))
    keep, best = [], -np.inf
    for i in order:
        if acc[i] > best:
            keep.append(i)
            best = acc[i]
    front = np.asarray(keep, dtype=np.int64)
    ok = np.flatnonzero(bound[front] <= budget)
    s = int(ok.max()) if len(ok) else 0
    up = min((n_candidates - 1) // 2, len(front) - 1 - s)
    n_down = min(n_candidates - 1 - up, s)
    down = (
        np.unique(np.round(np.linspace(0, s - 1, n_down)).astype(np.int64))
        if n_down > 0
        else np.zeros(0, dtype=np.int64)
    )
    picked = np.concatenate([down, np.arange(s, s + up + 1)])
    return front[picked], int(np.flatnonzero(picked == s)[0])


def for_budget_verified(
    optimizer: L2OOptimizer,
    devices: DeviceSet | np.ndarray,
    latency_ms: Any,
    sessions: Sequence[Any],
    max_measurements: int = 3,
    n_candidates: int = 7,
    margin: float = DEFAULT_MARGIN,
    grid_size: int = 33,
    t_max: float = 0.995,
    iters: int = 12,
    energy_mj: Any = None,
    energy_shares: Sequence[float] = (0.25, 0.5, 0.75),
    rule: str = "auto",
) -> BudgetResult:
    """Hybrid mode: the network's proposals, verified with at most ``max_measurements`` real
    measurements per device, by ``rule`` (:data:`HYBRID_RULES`; the module docstring says what
    each does; ``"auto"``: ``"improvement"`` where the latency predictor is calibrated and there
    is no energy budget, else ``"bisection"``).
    With ``energy_mj`` each device also has an energy budget (eq. 7): proposals come from every
    direction of ``energy_shares``, and a design is accepted only when both measured values
    meet their budgets.

    ``sessions``: one :class:`fleetnas.proxy.TargetSession` or
    :class:`~fleetnas.measure.Measurer` per device. Proposals come from a grid of ``grid_size``
    values of ``t`` plus the no-measurement bisection's answer (:func:`for_budget` with
    ``margin``); bisection verifies the ``n_candidates`` :func:`candidate_list` picks of them,
    expected improvement all of them, starting from that answer. A design is returned as
    feasible only when its *measured* latency meets the budget; where no measured candidate
    does, ``feasible`` is false and the row holds the fastest measured design (a violation that
    is reported, never returned as an answer).
    """
    from fleetnas.measure.base import Measurer
    from fleetnas.proxy import MeasurerSession

    obj = optimizer._need_objective("hybrid budget mode")
    dev = optimizer.devices(devices)
    n = len(dev)
    lat_b = _budget_array(latency_ms, n, "latency")
    en_b = _budget_array(energy_mj, n, "energy")
    if en_b is not None and obj.energy is None:
        raise InputError("an energy budget needs an optimizer trained with an energy predictor")
    if len(sessions) != n:
        raise InputError(f"hybrid mode needs one measurer per device: {n} devices, {len(sessions)}")
    metrics = ("latency",) if en_b is None else ("latency", "energy")
    sess = [
        MeasurerSession(s, optimizer.space, metrics) if isinstance(s, Measurer) else s
        for s in sessions
    ]
    shares = (0.0,) if en_b is None else tuple(float(x) for x in energy_shares)
    chosen = hybrid_rule_for(obj, rule, en_b is not None)
    with compute_threads(n):
        return _verified(
            optimizer, obj, dev, lat_b, sess, max_measurements, n_candidates, margin, grid_size,
            t_max, iters, en_b, shares, chosen,
        )  # fmt: skip


def _improve(
    optimizer: L2OOptimizer,
    obj: PredictedObjective,
    dev: DeviceSet,
    i: int,
    cand: np.ndarray,
    acc: np.ndarray,
    budget: float,
    session: Any,
    max_measurements: int,
) -> Any:
    """Expected-improvement verification of one device's proposals, starting from the most
    accurate one whose calibrated safe bound meets the budget (else the likeliest feasible)."""
    from fleetnas.proxy import verify_by_improvement

    cal = obj.latency.calibration  # type: ignore[union-attr]
    feats = obj.predictor_features(dev.take(np.full(len(cand), i)), "latency")
    mean, s = obj.latency.log_scale(cand, feats, paired=True)  # type: ignore[union-attr]
    return verify_by_improvement(
        optimizer.space, cand, session, budget, acc, mean, s,
        lambda u: 1.0 - cal.exceed(u), max_measurements=max_measurements, phase="l2o-hybrid",
    )  # fmt: skip


def _verified(
    optimizer: L2OOptimizer,
    obj: PredictedObjective,
    dev: DeviceSet,
    lat_b: np.ndarray,
    sess: list[Any],
    max_measurements: int,
    n_candidates: int,
    margin: float,
    grid_size: int,
    t_max: float,
    iters: int,
    en_b: np.ndarray | None = None,
    shares: Sequence[float] = (0.0,),
    rule: str = "bisection",
) -> BudgetResult:
    from fleetnas.proxy import verify_candidates

    n = len(dev)
    base = _for_budget(optimizer, dev, lat_b, en_b, margin, iters, t_max, shares, 0, 9)
    ts = np.linspace(0.0, t_max, grid_size)
    price = _Pricer(obj, dev, margin)
    rows = np.arange(n)
    props = [base.archs]
    cache: dict[str, DeviceScales] = {}
    for share in shares:
        for t in ts:
            lam = _lam_of(np.full(n, t), share)
            d, _ = optimizer.proposals(dev, lam)
            props.append(d[0] if d.shape[0] == 1 else _pick(optimizer, d, dev, lam, cache))
    allp = np.stack(props, axis=1)
    flat = allp.reshape(n * allp.shape[1], -1)
    rr = np.repeat(rows, allp.shape[1])
    m = price(flat, rr)
    k = allp.shape[1]
    acc, mean, bound = (m[x].reshape(n, k) for x in ("accuracy", "latency", "bound"))
    energy = None if en_b is None else m["energy"].reshape(n, k)
    if en_b is not None:
        # one bound for the candidate list: the tighter of the two budgets, relative
        ratio = np.maximum(bound / lat_b[:, None], m["energy_bound"].reshape(n, k) / en_b[:, None])
        bound = ratio * lat_b[:, None]
    out_archs = base.archs.copy()
    measured = np.full(n, np.nan)
    measured_e = np.full(n, np.nan)
    spent = np.zeros(n, dtype=np.int64)
    feasible = np.zeros(n, dtype=bool)
    for i in range(n):
        uniq, first = np.unique(allp[i], axis=0, return_index=True)
        if rule == "improvement":
            sel = _improve(optimizer, obj, dev, i, uniq, acc[i, first], float(lat_b[i]), sess[i],
                           max_measurements)  # fmt: skip
        else:
            idx, start = candidate_list(
                acc[i, first], mean[i, first], bound[i, first], lat_b[i], n_candidates
            )
            sel = verify_candidates(
                optimizer.space,
                uniq[idx],
                sess[i],
                float(lat_b[i]),
                energy_budget=None if en_b is None else float(en_b[i]),
                accuracy=acc[i, first][idx],
                proxy_latency=mean[i, first][idx],
                proxy_energy=None if energy is None else energy[i, first][idx],
                max_measurements=max_measurements,
                start=start,
                phase="l2o-hybrid",
            )
        sess[i].commit()
        spent[i] = sel.measurements
        if sel.arch is not None:
            out_archs[i] = sel.arch
            measured[i] = sel.latency
            if sel.energy is not None:
                measured_e[i] = sel.energy
        feasible[i] = sel.ok
    final = price(out_archs, rows)
    return BudgetResult(
        archs=out_archs,
        lam=base.lam,
        t=base.t,
        accuracy=final["accuracy"],
        latency=final["latency"],
        latency_bound=final["bound"],
        feasible=feasible,
        energy=final.get("energy"),
        evaluations=base.evaluations + price.count,
        measured=measured,
        measurements=spent,
        info={
            "margin": margin,
            "max_measurements": max_measurements,
            "n_candidates": n_candidates,
            "shares": list(shares),
            "measured_energy": measured_e,
        },
    )


__all__ = [
    "DEFAULT_MARGIN",
    "HYBRID_RULES",
    "SPACE_MARGINS",
    "UNCALIBRATED_MARGIN",
    "BudgetResult",
    "candidate_list",
    "default_margin",
    "for_budget",
    "for_budget_verified",
    "hybrid_rule_for",
    "violation_probability",
]
