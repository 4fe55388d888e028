"""Approach 1 end to end for one target device: :func:`optimize_device`.

Methods (``Approach1Config.method``):

- ``"algorithm1"``: Algorithm 1 of the paper (bisection on ``t`` of eq. 6; eq. 7 with an energy
  budget) on one proxy;
- ``"front"``: the front variant (bisection along the proxy's Pareto front, eq. 5 with ``L'``);
- ``"guided"`` (default): probes, a calibrated blend of the pool's proxies, and expected-
  improvement verification under a measurement cap (:mod:`fleetnas.proxy.guided`).

With ``proxy="auto"`` the target is matched to the pool (the target itself left out) from a few
probe measurements; ``"algorithm1"`` and ``"front"`` then run on the best-matching proxy (the
front variant starting where the calibrated blend puts the budget). With a named proxy, that
proxy alone is used. After the search the measured designs are checked for monotonicity with the
proxy (:func:`~fleetnas.proxy.fallback.check_monotonicity`; the guided search checks after every
measurement); on failure the target gets its own predictor, is searched with it and is
registered as a new proxy. Whatever happens, the design returned was measured within the budgets,
or the status is ``infeasible`` and the fastest measured design is returned with its numbers.
Every probe, search and fallback measurement is counted in :attr:`Approach1Result.measurements`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import InputError, UnknownNameError
from fleetnas.measure.base import Measurer
from fleetnas.proxy.bisection import algorithm1
from fleetnas.proxy.blend import BlendConfig, ProxyScore
from fleetnas.proxy.energy import algorithm1_energy
from fleetnas.proxy.fallback import (
    MonotonicityCheck,
    check_monotonicity,
    train_target_predictor,
)
from fleetnas.proxy.front import front_variant
from fleetnas.proxy.guided import guided_search
from fleetnas.proxy.pool import ProxyPool
from fleetnas.proxy.session import MeasurerSession, TargetSession
from fleetnas.proxy.target_model import TargetModel, TargetModelConfig
from fleetnas.proxy.verify import (
    Selection,
    TraceStep,
    check_budgets,
    choose_design,
    cost_mark,
    spent_since,
)
from fleetnas.proxy.workspace import Workspace

if TYPE_CHECKING:
    from fleetnas.store import Store

METHODS = ("model", "guided", "algorithm1", "front")


@dataclass
class Approach1Config:
    """Settings of :func:`optimize_device`.

    ``max_measurements``: cap on new target measurements of every path (probes, search,
    fallback), a hard one (``0``: only choose among designs measured already); ``None`` (the
    default) lets the guided searches stop at ``soft_cap``
    (10) and go on up to ``extended_cap`` (20) only while the best expected gain is at least
    ``extend_gain`` (default: ten times ``min_gain``), i.e. where the pool fits the target too
    poorly to stop (the result says so: ``cap_extended``);
    ``n_probes``: probe designs measured first when the proxy is chosen automatically (or when
    the guided method calibrates a named proxy); ``delta``: Algorithm 1's ``δ`` relative to the
    budget; ``max_iterate``: its ``Max_Iterate``; ``min_gain``: smallest expected accuracy gain
    worth a measurement in the guided search (default: 0.01 % of the candidates' accuracy
    range, 0.008 points on NAS-Bench-201); ``fallback``: whether a monotonicity failure
    triggers training the target's own predictor from ``fallback_designs`` more measurements;
    ``monotonicity_tol``, ``max_flip_share``, ``min_pairs``: the failure test.
    """

    method: str = "guided"
    max_measurements: int | None = None
    n_probes: int = 3
    delta: float = 0.01
    max_iterate: int = 10
    min_gain: float | None = None
    fallback: bool = True
    fallback_designs: int = 100
    monotonicity_tol: float = 0.1
    max_flip_share: float = 0.25
    min_pairs: int = 6
    blend: BlendConfig = field(default_factory=BlendConfig)
    model: TargetModelConfig = field(default_factory=TargetModelConfig)
    seed: int = 0
    soft_cap: int = 10
    extended_cap: int = 20
    extend_gain: float | None = None

    @property
    def cap(self) -> int:
        """The hard cap: ``max_measurements`` when given, else ``extended_cap``."""
        return self.extended_cap if self.max_measurements is None else self.max_measurements

    @property
    def first_cap(self) -> int:
        """Where the guided searches stop unless the cap may be extended."""
        return self.soft_cap if self.max_measurements is None else self.max_measurements

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if (
            self.cap < 0
            or self.n_probes < 0
            or self.fallback_designs < 1
            or not 1 <= self.soft_cap <= self.extended_cap
        ):
            raise InputError(
                "need max_measurements >= 0, n_probes >= 0, fallback_designs >= 1 and "
                f"1 <= soft_cap <= extended_cap, got {self.max_measurements}, {self.n_probes}, "
                f"{self.fallback_designs}, {self.soft_cap}, {self.extended_cap}"
            )
        if self.n_probes and self.n_probes >= self.first_cap and self.method in ("guided", "model"):
            raise InputError(
                f"n_probes ({self.n_probes}) must leave room under max_measurements "
                f"({self.first_cap}) for the search"
            )


@dataclass
class Approach1Result:
    """What :func:`optimize_device` returns (see the module docstring).

    ``arch``: ``D`` int array of the design (``None`` only if nothing could be measured);
    ``latency``/``energy``: its *measured* values; ``predicted_accuracy``: from the accuracy
    predictor; ``measurements``: new target measurements of this call (probes and fallback
    included); ``probes``/``fallback_measurements``: how many of them were which;
    ``unmeasurable``: designs tried that the target could not measure (skipped); ``cap``: the
    hard cap in force; ``cap_extended``: the search went past ``soft_cap`` because the pool fit
    the target poorly (see :class:`Approach1Config`); ``reused``:
    values answered from the session or the store for free.
    """

    device: str
    space: str
    method: str
    proxy: str
    status: str
    arch: np.ndarray | None
    arch_str: str
    predicted_accuracy: float
    latency: float
    energy: float | None
    latency_budget: float
    energy_budget: float | None
    measurements: int
    probes: int = 0
    fallback_measurements: int = 0
    unmeasurable: int = 0
    cap: int = 0
    cap_extended: bool = False
    reused: int = 0
    device_seconds: float = 0.0
    fell_back: bool = False
    registered: str | None = None
    stop_reason: str = ""
    trace: list[TraceStep] = field(default_factory=list)
    proxy_scores: list[ProxyScore] = field(default_factory=list)
    monotonicity: MonotonicityCheck | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "space": self.space,
            "method": self.method,
            "proxy": self.proxy,
            "status": self.status,
            "design": self.arch_str,
            "arch": None if self.arch is None else self.arch.tolist(),
            "predicted_accuracy": self.predicted_accuracy,
            "latency": self.latency,
            "energy": self.energy,
            "latency_budget": self.latency_budget,
            "energy_budget": self.energy_budget,
            "measurements": self.measurements,
            "probes": self.probes,
            "fallback_measurements": self.fallback_measurements,
            "unmeasurable": self.unmeasurable,
            "cap": self.cap,
            "cap_extended": self.cap_extended,
            "reused": self.reused,
            "device_seconds": self.device_seconds,
            "fell_back": self.fell_back,
            "registered": self.registered,
            "stop_reason": self.stop_reason,
            "monotonicity": None if self.monotonicity is None else self.monotonicity.to_dict(),
            "proxy_scores": [s.to_dict() for s in self.proxy_scores],
            "trace": [t.to_dict() for t in self.trace],
            "wall_s": self.wall_s,
        }


def default_probes(workspace: Workspace, k: int, store: Store | None = None) -> np.ndarray:
    """``k x D`` probe designs: the first ``k`` of HELP's reference architectures when the
    store holds them for this space, else ``k`` designs of the pool's front union spread evenly
    over the pool's mean predicted latency."""
    if k == 0:
        return np.zeros((0, workspace.space.n_decisions), np.int64)
    if store is not None:
        from fleetnas.data import reference_archs

        try:
            ref = reference_archs(store, workspace.space)
            if len(ref) >= k:
                return ref[:k]
        except UnknownNameError:
            pass
    idx = workspace.front_union(workspace.pool)
    if len(idx) == 0:
        idx = np.arange(len(workspace.candidates))
    z = workspace.pool.log_predictions(workspace.candidates[idx]).mean(axis=0)
    order = idx[np.argsort(z, kind="stable")]
    pos = ((np.arange(k) + 0.5) / k * len(order)).astype(int)
    return workspace.candidates[order[np.unique(pos)]]


def optimize_device(
    workspace: Workspace,
    target: TargetSession | Measurer,
    latency_budget: float,
    energy_budget: float | None = None,
    proxy: str = "auto",
    config: Approach1Config | None = None,
    probes: np.ndarray | None = None,
    store: Store | None = None,
    target_device: Device | None = None,
) -> Approach1Result:
    """Approach 1 for one target (see the module docstring).

    ``target``: a :class:`TargetSession` or a :class:`~fleetnas.measure.Measurer` (wrapped in
    a :class:`MeasurerSession`; reuse one session across budgets to share its measurements);
    ``proxy``: a pool name or ``"auto"``; ``probes``: ``K x D`` probe designs (default
    :func:`default_probes`); ``store``: where a fallen-back target is registered as a new proxy
    (and where a replayed device's ledger is kept); ``target_device``: the target's record (spec
    features for the pool's prior; default: the measurer's device).
    """
    t0 = time.perf_counter()
    cfg = config or Approach1Config()
    check_budgets(latency_budget, energy_budget)
    space = workspace.space
    metrics = ("latency", "energy") if energy_budget is not None else ("latency",)
    if isinstance(target, Measurer):
        target_device = target_device or target.device
        session: TargetSession = MeasurerSession(target, space, metrics)
    else:
        session = target
        if energy_budget is not None and "energy" not in session.metrics:
            raise InputError("an energy budget needs a target session that measures energy")
    start = cost_mark(session)
    lost0 = len(session.unmeasurable)
    use_e = energy_budget is not None
    pool = workspace.pool.without(session.device)
    if use_e:
        pool = pool.with_energy()
    if proxy != "auto":
        if proxy == session.device:
            raise InputError(f"the proxy and the target are the same device {proxy!r}")
        pool = ProxyPool(space, [pool.get(proxy)]) if proxy in pool else None  # type: ignore[assignment]
        if pool is None:
            names = workspace.pool.without(session.device).names
            from fleetnas.errors import unknown

            raise unknown("proxy" + (" with energy" if use_e else ""), proxy, names)
    if len(pool) == 0:
        raise InputError(
            "no proxy device is available" + (" with an energy predictor" if use_e else "")
        )
    trace: list[TraceStep] = []
    n_probe = 0
    need_probes = proxy == "auto" or cfg.method in ("guided", "model")
    if need_probes and cfg.n_probes:
        pr = default_probes(workspace, cfg.n_probes, store) if probes is None else probes
        pr = space.check(pr)
        before = session.cost.measurements
        known = session.lookup(pr)[0]
        vals = session.measure(pr)
        n_probe = session.cost.measurements - before
        for i, (a, v) in enumerate(zip(pr, vals, strict=True)):
            trace.append(
                TraceStep(
                    step=len(trace) + 1,
                    phase="probe",
                    key=f"probe {i + 1}",
                    arch=space.format(a),
                    latency=float(v[0]),
                    energy=float(v[1]) if len(v) > 1 else None,
                    new=not known[i],
                    feasible=bool(v[0] <= latency_budget and (not use_e or v[1] <= energy_budget)),
                    decision="probe for proxy choice and calibration",
                )
            )
    cand_idx = workspace.front_union(pool)
    cands = workspace.candidates[cand_idx]
    blend = pool.blend(cands, "latency", target_device, cfg.blend)
    e_blend = pool.blend(cands, "energy", target_device, cfg.blend) if use_e else None
    archs_m, vals_m = session.measured
    if len(archs_m):
        blend.fit(archs_m, vals_m[:, 0])
    chosen = pool.names[blend.top]
    scores = blend.scores()
    mono: MonotonicityCheck | None = None

    def check_top(archs: np.ndarray, vals: np.ndarray) -> bool:
        nonlocal mono
        pred = np.exp(blend.log_pred(archs)[blend.top])
        mono = check_monotonicity(
            pred, vals[:, 0], cfg.monotonicity_tol, cfg.max_flip_share, cfg.min_pairs
        )
        return cfg.fallback and mono.failed

    reason = ""
    spent = spent_since(session, start)["measurements"]
    if cfg.method in ("guided", "model"):
        min_gain = min_gain_of(cfg, workspace)
        model: TargetModel | Any = blend
        if cfg.method == "model":
            model = TargetModel(pool, space, target_device, cfg.model, reference=cands)
            if len(archs_m):
                model.fit(archs_m, vals_m[:, 0])
        sel, reason = guided_search(
            space,
            cands,
            workspace.accuracy[cand_idx],
            workspace.accuracy_fn,
            session,
            model,
            latency_budget,
            e_blend,
            energy_budget,
            max_measurements=max(0, cfg.first_cap - spent),
            min_gain=min_gain,
            check=check_top if cfg.method == "guided" else None,
            step0=len(trace),
            extend_to=max(0, cfg.cap - spent),
            extend_gain=extend_gain_of(cfg, workspace),
        )
        chosen = pool.names[model.top]
        scores = model.scores()
        if cfg.method == "model":
            archs_m, vals_m = session.measured
            if len(archs_m):
                pred = np.exp(pool.log_prediction(chosen, archs_m))
                mono = check_monotonicity(
                    pred, vals_m[:, 0], cfg.monotonicity_tol, cfg.max_flip_share, cfg.min_pairs
                )
                mono.failed = False  # the target model corrects the order; reported only
    elif cfg.cap - spent < 1:
        sel = Selection(None, "infeasible", np.nan, None, np.nan)
        reason = "measurement cap (the probes used it)"
    else:
        problem = workspace.problem(chosen, with_energy=use_e)
        if cfg.method == "algorithm1":
            if use_e:
                sel = algorithm1_energy(
                    problem,
                    session,
                    latency_budget,
                    float(energy_budget),
                    cfg.delta,
                    min(cfg.max_iterate, cfg.cap - spent),
                    step0=len(trace),
                )
            else:
                sel = algorithm1(
                    problem,
                    session,
                    latency_budget,
                    cfg.delta * latency_budget,
                    min(cfg.max_iterate, cfg.cap - spent),
                    workspace.tcache(chosen),
                    step0=len(trace),
                ).selection
        else:
            start_pos = None
            if len(archs_m):
                f = problem.front(with_energy=use_e)
                pred = blend.predict(problem.archs[f])
                ok = np.flatnonzero(pred <= latency_budget)
                start_pos = int(ok[-1]) if len(ok) else 0
            sel = front_variant(
                problem,
                session,
                latency_budget,
                energy_budget,
                max_measurements=max(0, cfg.cap - spent),
                start=start_pos,
                step0=len(trace),
            )
        reason = "search done"
        archs_m, vals_m = session.measured
        blend.fit(archs_m, vals_m[:, 0])
        check_top(archs_m, vals_m)
    trace.extend(sel.trace)
    fell_back = False
    registered = None
    n_fb = 0
    if cfg.fallback and mono is not None and mono.failed:
        fell_back = True
        fb_start = session.cost.measurements
        room = cfg.cap - spent_since(session, start)["measurements"]
        if room > cfg.fallback_designs:
            lat_p, en_p, _ = train_target_predictor(
                session, cfg.fallback_designs, cfg.seed, candidates=workspace.candidates
            )
            name = session.device
            workspace.pool.register(name, lat_p, store, target_device, en_p, source="fallback")
            workspace.forget(name)
            registered = name
            own = ProxyPool(space, [workspace.pool.get(name)])
            own_idx = np.unique(np.concatenate([cand_idx, workspace.front_union(own)]))
            own_model: Any = own.blend(workspace.candidates[own_idx], "latency", None, cfg.blend)
            chosen = name
        else:
            # no room under the cap for the target's own predictor: the target model corrects
            # the pool with what is measured instead (every path stays within the cap)
            own_idx = cand_idx
            own_model = TargetModel(pool, space, target_device, cfg.model, reference=cands)
            own = pool
        own_e = (
            own.blend(workspace.candidates[own_idx], "energy", None, cfg.blend) if use_e else None
        )
        sel, reason = guided_search(
            space,
            workspace.candidates[own_idx],
            workspace.accuracy[own_idx],
            workspace.accuracy_fn,
            session,
            own_model,
            latency_budget,
            own_e,
            energy_budget,
            max_measurements=max(0, cfg.first_cap - spent_since(session, start)["measurements"]),
            min_gain=0.0 if registered else min_gain_of(cfg, workspace),
            extend_to=max(0, cfg.cap - spent_since(session, start)["measurements"]),
            extend_gain=extend_gain_of(cfg, workspace),
            phase="fallback",
            step0=len(trace),
        )
        trace.extend(sel.trace)
        n_fb = session.cost.measurements - fb_start
        if registered is None:
            chosen = pool.names[own_model.top]
    final = _final(workspace, session, latency_budget, energy_budget)
    session.commit()
    used = spent_since(session, start)
    return Approach1Result(
        device=session.device,
        space=space.name,
        method=cfg.method,
        proxy=chosen,
        status=final.status,
        arch=final.arch,
        arch_str="" if final.arch is None else space.format(final.arch),
        predicted_accuracy=final.accuracy,
        latency=final.latency,
        energy=final.energy,
        latency_budget=float(latency_budget),
        energy_budget=None if energy_budget is None else float(energy_budget),
        measurements=used["measurements"],
        probes=n_probe,
        fallback_measurements=n_fb,
        unmeasurable=len(session.unmeasurable) - lost0,
        cap=cfg.cap,
        cap_extended=reason.startswith("extended"),
        reused=used["reused"],
        device_seconds=used["device_seconds"],
        fell_back=fell_back,
        registered=registered,
        stop_reason=reason,
        trace=trace,
        proxy_scores=scores[:5],
        monotonicity=mono,
        wall_s=time.perf_counter() - t0,
    )


def min_gain_of(cfg: Approach1Config, workspace: Workspace) -> float:
    """The guided search's ``min_gain``: the configured one, else 0.01 % of the candidates'
    accuracy range."""
    if cfg.min_gain is not None:
        return float(cfg.min_gain)
    return 1e-4 * float(np.ptp(workspace.accuracy[np.isfinite(workspace.accuracy)]))


def extend_gain_of(cfg: Approach1Config, workspace: Workspace) -> float:
    """Expected gain that justifies a measurement past ``soft_cap`` (default: ten times
    :func:`min_gain_of`); infinite (no extension) under an explicit ``max_measurements``."""
    if cfg.max_measurements is not None:
        return float("inf")
    if cfg.extend_gain is not None:
        return float(cfg.extend_gain)
    return 10 * min_gain_of(cfg, workspace)


def _final(
    workspace: Workspace,
    session: TargetSession,
    latency_budget: float,
    energy_budget: float | None,
) -> Selection:
    """The budget guarantee over every design the session has measured."""
    archs, vals = session.measured
    if len(archs) == 0:
        return Selection(None, "infeasible", np.nan, None, np.nan)
    acc = np.asarray(workspace.accuracy_fn(archs), dtype=float)
    use_e = energy_budget is not None
    k, status = choose_design(
        acc, vals[:, 0], vals[:, 1] if use_e else None, latency_budget, energy_budget
    )
    return Selection(
        arch=archs[k].copy(),
        status=status,
        latency=float(vals[k, 0]),
        energy=float(vals[k, 1]) if vals.shape[1] > 1 else None,
        accuracy=float(acc[k]),
    )


__all__ = [
    "METHODS",
    "Approach1Config",
    "Approach1Result",
    "default_probes",
    "optimize_device",
]
