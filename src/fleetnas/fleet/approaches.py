"""The approaches one plan entry can run: Approach 1's guided search (:func:`run_proxy`), the
optimizer network alone in budget mode (:func:`run_l2o`, one batched call per chunk) and the
verified hybrid (:func:`run_hybrid`). Each fills the entry it is given; the planner
(:mod:`fleetnas.fleet.planner`) decides which one runs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.fleet.session import PlanContext
from fleetnas.fleet.tasks import PlanConfig, Task, fail
from fleetnas.fleet.trace import approach1_trace, hybrid_trace, num, p_within

#: Reason of an Approach 2 entry whose proposals all miss the budget (by the safe bound).
L2O_INFEASIBLE = "no proposal's safe predicted latency meets the budget"
#: Pairs of measured designs the hybrid needs before it judges monotonicity (three designs).
HYBRID_MIN_PAIRS = 3


def run_proxy(
    ctx: PlanContext,
    config: PlanConfig,
    task: Task,
    entry: dict[str, Any],
    session: Any,
    feats: dict[str, Any] | None = None,
    method: str = "proxy",
) -> None:
    """Approach 1 (:func:`fleetnas.proxy.optimize_device`, guided search) for one budget.

    Its probes are the first ``n_probes`` of the store's reference designs (the optimizer's
    probe designs). Where ``feats`` holds the device's features, the device's probe
    latencies are already in ``session`` (no probes of its own are needed) and the
    network's latency predictor, adapted to those features, joins the proxy pool for this
    device (:func:`_network_proxy`): the blend weighs it by how well it explains what was
    measured, like any other proxy, and its predicted front adds candidates.

    The entry's ``max_measurements`` bounds everything it measures: what it measured before
    (relative-budget probes, the hybrid's proposals before a hand-over) is taken off Approach
    1's cap. Designs the device cannot measure are skipped (``unmeasurable``); a proxy read from
    a partial table is flagged with the share its model filled in (``proxy_filled``)."""
    from fleetnas.proxy import Approach1Config, default_probes, optimize_device

    ws = ctx.workspace
    proxy = task.proxy or config.proxy or "auto"
    b = entry["budget"]
    if b["latency_ms"] is None:
        raise InputError("Approach 1 needs a latency budget")
    net = None
    if feats and task.device.name in feats and proxy == "auto":
        net = _device_network_proxy(ctx, feats[task.device.name])
    known = net is not None and ctx.needs_probes
    # the entry's cap covers what it measured already (relative-budget probes, the hybrid);
    # without a cap of the plan's, Approach 1's default (10, extended while worth it) applies
    # to a fresh entry, and a hard 10 less what was spent to one that measured before
    spent = int(entry["measurements"])
    cap = config.max_measurements
    if cap is None:
        cap = None if spent == 0 else Approach1Config.soft_cap
    room = None if cap is None else max(0, cap - spent)
    n_probes = Approach1Config.n_probes if room is None else min(3, max(0, room - 1))
    cfg = Approach1Config(
        max_measurements=room,
        n_probes=0 if known else n_probes,
        seed=task.seed(config.seed),
    )
    probes = None if known else default_probes(ws, cfg.n_probes, ctx.store)
    if net is not None:
        ws.pool.add(net)
    try:
        res = optimize_device(
            ws, session, b["latency_ms"], b["energy_mj"], proxy=proxy, config=cfg,
            probes=probes, store=None, target_device=task.device,
        )  # fmt: skip
    finally:
        if net is not None:
            ws.pool = ws.pool.without(net.name)
            ws.forget(net.name)
    if res.registered:
        # keep every device's result independent of which worker ran what before it
        ws.pool = ws.pool.without(res.registered)
        ws.forget(res.registered)
    if method == "proxy" and res.fell_back:
        method = "proxy-fallback"
    entry["method"] = method
    entry["proxy"] = res.proxy
    if net is not None:
        entry["optimizer"] = ctx.optimizer.name
        entry["network_proxy"] = net.name
    entry["status"] = res.status
    entry["design"] = res.arch_str or None
    entry["predicted"]["accuracy"] = num(res.predicted_accuracy)
    entry["measured"] = {"latency_ms": num(res.latency), "energy_mj": num(res.energy)}
    entry["measurements"] += int(res.measurements)
    entry["device_seconds"] += float(res.device_seconds)
    entry["confidence"] = 1.0 if res.ok else 0.0
    entry["trace"].extend(approach1_trace(res.trace, len(entry["trace"])))
    entry["stop_reason"] = res.stop_reason
    entry["fell_back"] = bool(res.fell_back)
    entry["cap_extended"] = bool(res.cap_extended)
    entry["unmeasurable"] = int(entry.get("unmeasurable") or 0) + int(res.unmeasurable)
    if res.proxy in ws.pool and ws.pool.get(res.proxy).filled:
        entry["proxy_filled"] = ws.pool.get(res.proxy).filled
    if res.monotonicity is not None:
        entry["monotonicity"] = res.monotonicity.to_dict()
    entry["reason"] = None
    if not res.ok:
        entry["reason"] = (
            "no measured design meets the budget"
            if res.arch is not None
            else f"none of the {res.unmeasurable} designs tried could be measured on the device"
            if res.unmeasurable
            else "the measurement cap left no room to measure a design"
        )


def run_l2o(
    ctx: PlanContext,
    config: PlanConfig,
    tasks: Sequence[Task],
    entries: list[dict[str, Any]],
    feats: dict[str, Any],
) -> None:
    """The optimizer network alone (budget mode, no measurement), one batched call."""
    from fleetnas.l2o.budget import for_budget
    from fleetnas.l2o.features import DeviceSet

    t0 = time.perf_counter()
    rows = [k for k, e in enumerate(entries) if e["reason"] is None]
    if not rows:
        return
    try:
        opt = ctx.optimizer
        devset = DeviceSet.concat([feats[tasks[k].device.name] for k in rows])
        lat_b = np.array([entries[k]["budget"]["latency_ms"] for k in rows], dtype=object)
        if any(v is None for v in lat_b):
            raise InputError("the optimizer network needs a latency budget for every entry")
        en = [entries[k]["budget"]["energy_mj"] for k in rows]
        en_b = None if all(v is None for v in en) else np.array(en, dtype=object)
        if en_b is not None and any(v is None for v in en_b):
            raise InputError("mixing budgets with and without energy in one chunk")
        res = for_budget(
            opt, devset, lat_b.astype(float), None if en_b is None else en_b.astype(float),
            margin=config.margin,
        )  # fmt: skip
        std = opt.objective.metrics(res.archs, devset, with_std=True)["latency_std"]
        acc = ctx.accuracy(res.archs)
    except Exception as exc:
        for k in rows:
            fail(entries[k], exc)
        return
    per = (time.perf_counter() - t0) / len(rows)
    texts = ctx.space.format_many(res.archs)
    for j, k in enumerate(rows):
        e = entries[k]
        e["design"] = texts[j]
        e["status"] = "ok" if res.feasible[j] else "infeasible"
        e["reason"] = (
            None if res.feasible[j] else "no proposal's safe predicted latency meets the budget"
        )
        e["predicted"] = {
            "accuracy": num(acc[j]),
            "latency_ms": num(res.latency[j]),
            "energy_mj": None if res.energy is None else num(res.energy[j]),
            "latency_bound_ms": num(res.latency_bound[j]),
            "p_violation": None if res.p_violation is None else num(res.p_violation[j]),
        }
        e["t"] = num(res.t[j])
        e["optimizer"] = opt.name
        e["confidence"] = p_within(res.latency[j], std[j], e["budget"]["latency_ms"])
        e["wall_s"] += per


def check_hybrid_config(config: PlanConfig, store: Any) -> None:
    """Refuse up front (one :class:`InputError`, nothing written) a hybrid rule the plan's
    optimizer cannot follow (``improvement`` without an interval-calibrated latency network)."""
    if config.approach != "hybrid" or config.hybrid_rule in (None, "auto", "bisection"):
        return
    from fleetnas.l2o.budget import hybrid_rule_for

    hybrid_rule_for(PlanContext(config, store).optimizer.objective, config.hybrid_rule, False)


def run_hybrid(
    ctx: PlanContext,
    config: PlanConfig,
    task: Task,
    entry: dict[str, Any],
    session: Any,
    feats: dict[str, Any],
) -> None:
    """Network proposals verified with a few real measurements by the config's hybrid rule
    (:func:`fleetnas.l2o.budget.for_budget_verified`; the entry names the rule); Approach 1
    takes over (method ``proxy-fallback``) where no verified proposal meets the budget or the
    measured designs contradict the predicted order (monotonicity). Without proxy devices for
    Approach 1 the verified result stands (``infeasible`` with the fastest measured design, if
    none meets the budget)."""
    from fleetnas.l2o.budget import for_budget_verified, hybrid_rule_for
    from fleetnas.proxy import check_monotonicity

    b = entry["budget"]
    if b["energy_mj"] is not None or b["latency_ms"] is None:
        run_proxy(ctx, config, task, entry, session, method="proxy-fallback")
        entry["fallback_reason"] = "the hybrid verifies latency budgets only"
        return
    if task.device.name not in feats:
        run_proxy(ctx, config, task, entry, session, method="proxy-fallback")
        entry["fallback_reason"] = (
            "the network's probe designs cannot all be measured on the device within the cap"
        )
        return
    checks = config.hybrid_measurements
    if config.max_measurements is not None:
        checks = min(checks, config.max_measurements - entry["measurements"])
    if checks < 1:  # the probes took the whole cap: Approach 1 reports that no room is left
        run_proxy(ctx, config, task, entry, session, method="proxy-fallback")
        entry["fallback_reason"] = "the measurement cap left no room to verify a proposal"
        return
    opt = ctx.optimizer
    devset = feats[task.device.name]
    rule = hybrid_rule_for(opt.objective, config.hybrid_rule or "auto", energy=False)
    before = (session.cost.measurements, session.cost.device_seconds, len(session.history))
    res = for_budget_verified(
        opt, devset, [b["latency_ms"]], [session],
        max_measurements=checks, margin=config.margin, rule=rule,
    )  # fmt: skip
    entry["hybrid_rule"] = rule
    entry["measurements"] += session.cost.measurements - before[0]
    entry["device_seconds"] += session.cost.device_seconds - before[1]
    entry["optimizer"] = opt.name
    new = [a for a, charged in session.history[before[2] :] if charged]
    archs, vals = session.measured
    pred = opt.objective.metrics(archs, devset.take(np.zeros(len(archs), dtype=int)))
    mono = check_monotonicity(pred["latency"], vals[:, 0], min_pairs=HYBRID_MIN_PAIRS)
    entry["monotonicity"] = mono.to_dict()
    entry["trace"].extend(
        hybrid_trace(ctx.space, new, session, opt, devset, b["latency_ms"], len(entry["trace"]))
    )
    if (not res.feasible[0] or mono.failed) and ctx.approach1_available:
        entry["fallback_reason"] = (
            "monotonicity failed on the measured designs" if mono.failed
            else "no verified proposal meets the budget"
        )  # fmt: skip
        run_proxy(ctx, config, task, entry, session, method="proxy-fallback")
        return
    design = res.archs[0]
    if not res.feasible[0]:
        entry["status"] = "infeasible"
        entry["reason"] = (
            "no verified proposal meets the budget (and no proxy device to fall back on)"
        )
        entry["design"] = ctx.space.format(design) if np.isfinite(res.measured[0]) else None
        entry["measured"] = {"latency_ms": num(res.measured[0]), "energy_mj": None}
        return
    entry["status"] = "ok"
    entry["design"] = ctx.space.format(design)
    m = opt.objective.metrics(design[None, :], devset)
    entry["predicted"] = {
        "accuracy": num(ctx.accuracy(design[None, :])[0]),
        "latency_ms": num(m["latency"][0]),
        "energy_mj": None,
    }
    entry["measured"] = {"latency_ms": num(res.measured[0]), "energy_mj": None}
    entry["confidence"] = 1.0


def _device_network_proxy(ctx: PlanContext, devset: Any) -> Any:
    """:func:`network_proxy` of one device's features, shared by the device's budgets (the
    same features give the same proxy; its predictions are cached on it)."""
    hit = ctx.network_proxy
    if hit is None or hit[0] is not devset:
        hit = ctx.network_proxy = (devset, network_proxy(ctx.optimizer, devset))
    return hit[1]


def network_proxy(opt: Any, devset: Any) -> Any:
    """Approach 2's latency predictor on one device (features ``devset``, one row) as a proxy
    of Approach 1's pool, named ``l2o:OPTIMIZER``."""
    from fleetnas.proxy import ProxyEntry

    feats = opt.objective.predictor_features(devset, "latency")
    latency = opt.objective.latency

    def predict(archs: np.ndarray) -> np.ndarray:
        return np.asarray(latency.predict(archs, feats), dtype=float).reshape(-1)

    return ProxyEntry(name=f"l2o:{opt.name}", latency=predict, source="predictor")


__all__ = [
    "HYBRID_MIN_PAIRS",
    "L2O_INFEASIBLE",
    "network_proxy",
    "run_hybrid",
    "run_l2o",
    "run_proxy",
]
