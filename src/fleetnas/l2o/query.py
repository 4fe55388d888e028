"""Answer a batch of design queries with a stored optimizer (``fleetnas l2o generate``, fleet
planning): each query is a device (a store record or raw features) with a trade-off weight λ or
a latency budget (absolute, or relative: a quantile of the device's predicted latency over the
reference designs). Weight queries are one batched forward pass; budget queries go through
:func:`~fleetnas.l2o.budget.for_budget`, or :func:`~fleetnas.l2o.budget.for_budget_verified`
when verification by measurement is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import InputError
from fleetnas.l2o.budget import DEFAULT_MARGIN, for_budget, for_budget_verified, hybrid_rule_for
from fleetnas.l2o.embed import embed_devices
from fleetnas.l2o.features import DeviceSet
from fleetnas.l2o.generate import L2OOptimizer, generate

if TYPE_CHECKING:
    from fleetnas.store import Store


@dataclass
class Query:
    """One question: ``device`` (a record) or raw ``features``; ``lam`` ``(λ1, λ2)`` or a
    budget (``latency_ms``, or ``latency_quantile`` in [0, 100]); ``label`` names it."""

    device: Device | None = None
    features: Sequence[float] | None = None
    lam: tuple[float, float] | None = None
    latency_ms: float | None = None
    latency_quantile: float | None = None
    label: str = ""

    def check(self) -> None:
        if (self.device is None) == (self.features is None):
            raise InputError("a query needs a device or raw features (exactly one)")
        budget = self.latency_ms is not None or self.latency_quantile is not None
        if (self.lam is None) == (not budget):
            raise InputError("a query needs a trade-off weight λ or a latency budget (one)")


def _devices(
    opt: L2OOptimizer, queries: Sequence[Query], store: Store | None, measure: bool
) -> tuple[DeviceSet, np.ndarray]:
    recs = [q.device for q in queries if q.device is not None]
    emb = None
    if recs:
        need = opt.net.spec.mode != "spec" or (
            opt.objective is not None and opt.objective._mode(opt.objective.latency) != "spec"
        )
        emb = embed_devices(opt.space, recs, opt.probes, store, measure, need_probes=need)
    rows, spent, k = [], np.zeros(len(queries), dtype=np.int64), 0
    for i, q in enumerate(queries):
        if q.device is not None:
            rows.append(emb.devices.take([k]))  # type: ignore[union-attr]
            spent[i] = emb.measurements[k]  # type: ignore[union-attr]
            k += 1
        else:
            rows.append(opt.devices(np.asarray(q.features, dtype=float), [q.label or f"q{i}"]))
    return DeviceSet.concat(rows), spent


def answer(
    store: Store | None,
    optimizer: L2OOptimizer,
    queries: Sequence[Query],
    verify: bool = False,
    max_measurements: int = 3,
    margin: float = DEFAULT_MARGIN,
    refine_rounds: int = 2,
    measure: bool = False,
    rule: str = "auto",
) -> list[dict[str, Any]]:
    """One result row per query (design string, λ, predictions; budget, feasibility and
    measurements for budget queries). ``rule``: how ``verify`` spends its measurements
    (:data:`fleetnas.l2o.budget.HYBRID_RULES`)."""
    if not queries:
        raise InputError("no queries given")
    for q in queries:
        q.check()
    if verify:  # an impossible rule is refused before any probe is measured
        rule = hybrid_rule_for(optimizer._need_objective("hybrid budget mode"), rule, False)
    devs, probe_cost = _devices(optimizer, queries, store, measure)
    sp = optimizer.space
    out: list[dict[str, Any]] = [{} for _ in queries]
    lam_idx = [i for i, q in enumerate(queries) if q.lam is not None]
    bud_idx = [i for i, q in enumerate(queries) if q.lam is None]
    if lam_idx:
        lam = np.array([queries[i].lam for i in lam_idx], dtype=float)
        sub = devs.take(lam_idx)
        g = generate(optimizer, sub, lam, refine_rounds=refine_rounds)
        obj = optimizer.objective
        pred = obj.metrics(g.archs, sub) if obj is not None else None
        if obj is not None and np.isnan(g.score).any():
            g.score = obj.score(g.archs, sub, g.lam)
        for k, i in enumerate(lam_idx):
            row = {"lambda": [float(x) for x in g.lam[k]], "t": _t(g.lam[k])}
            if pred is not None:
                row.update(
                    predicted_accuracy=float(pred["accuracy"][k]),
                    predicted_latency_ms=float(pred["latency"][k]),
                    predicted_objective=float(g.score[k]),
                )
            out[i] = {**row, "arch": sp.format(g.archs[k])}
    if bud_idx:
        sub = devs.take(bud_idx)
        budgets = _budgets(optimizer, [queries[i] for i in bud_idx], sub)
        if verify:
            if store is None:
                raise InputError("verified budgets need a store (the devices' measurers)")
            from fleetnas.measure import measurer_for

            recs = [queries[i].device for i in bud_idx]
            if any(r is None for r in recs):
                raise InputError("--verify needs devices with measurers, not raw --features")
            sessions = [measurer_for(r, store) for r in recs]  # type: ignore[arg-type]
            res = for_budget_verified(
                optimizer, sub, budgets, sessions, max_measurements=max_measurements, margin=margin,
                rule=rule,
            )  # fmt: skip
        else:
            res = for_budget(optimizer, sub, budgets, margin=margin, refine_rounds=refine_rounds)
        for k, i in enumerate(bud_idx):
            row = {
                "latency_budget_ms": float(budgets[k]),
                "feasible": bool(res.feasible[k]),
                "lambda": [float(x) for x in res.lam[k]],
                "t": float(res.t[k]),
                "predicted_accuracy": float(res.accuracy[k]),
                "predicted_latency_ms": float(res.latency[k]),
                "latency_bound_ms": float(res.latency_bound[k]),
            }
            if res.measured is not None:
                row["measured_latency_ms"] = _num(res.measured[k])
                row["measurements"] = int(res.measurements[k])  # type: ignore[index]
                row["hybrid_rule"] = rule
            out[i] = {**row, "arch": sp.format(res.archs[k])}
    for i, q in enumerate(queries):
        head = {"device": devs.names[i]}
        if q.label:
            head["label"] = q.label
        out[i] = {**head, **out[i], "probe_measurements": int(probe_cost[i])}
    return out


def _t(lam: np.ndarray) -> float:
    return float(lam[1] / (1.0 + lam[1]))


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _budgets(opt: L2OOptimizer, queries: Sequence[Query], devs: DeviceSet) -> np.ndarray:
    out = np.array([np.nan if q.latency_ms is None else q.latency_ms for q in queries], float)
    rel = [k for k, q in enumerate(queries) if q.latency_ms is None]
    if rel:
        obj = opt._need_objective("relative budgets (pNN)")
        lat = obj.matrix(devs.take(rel), obj.reference)
        for c, k in enumerate(rel):
            out[k] = float(np.percentile(lat[:, c], queries[k].latency_quantile))  # type: ignore[arg-type]
    return out


__all__ = ["Query", "answer"]
