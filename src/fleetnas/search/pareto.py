"""Pareto fronts: accuracy (maximized) against latency and energy (minimized).

Fronts are returned as indices into the inputs, ordered by latency ascending (then accuracy
descending), which is the order Approach 1's front variant bisects along. A design is on the front
when no other design is at least as good in every metric and strictly better in one; designs with
identical metric vectors are kept once (the lowest index) unless ``unique=False``.
"""

from __future__ import annotations

import numpy as np

from fleetnas.errors import InputError


def _prepare(
    accuracy: np.ndarray,
    latency: np.ndarray,
    energy: np.ndarray | None,
    latency_budget: float | None,
    energy_budget: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(cost matrix n x k to minimize, candidate index array)`` after budget filtering."""
    a = np.asarray(accuracy, dtype=float).reshape(-1)
    lat = np.asarray(latency, dtype=float).reshape(-1)
    cols = [lat, -a]
    if energy is not None:
        e = np.asarray(energy, dtype=float).reshape(-1)
        cols.append(e)
    if any(c.shape != a.shape for c in cols):
        raise InputError(
            f"Pareto front needs metric arrays of one length, got {[c.shape[0] for c in cols]}"
        )
    costs = np.stack(cols, axis=1)
    ok = np.all(np.isfinite(costs), axis=1)
    if latency_budget is not None:
        ok &= lat <= latency_budget
    if energy_budget is not None:
        if energy is None:
            raise InputError("an energy budget needs energy values")
        ok &= costs[:, 2] <= energy_budget
    return costs, np.flatnonzero(ok)


def pareto_front(
    accuracy: np.ndarray,
    latency: np.ndarray,
    energy: np.ndarray | None = None,
    latency_budget: float | None = None,
    energy_budget: float | None = None,
    unique: bool = True,
) -> np.ndarray:
    """Indices of the non-dominated designs among those within the budgets.

    ``accuracy``, ``latency``, ``energy``: ``n`` arrays (NaN rows are ignored). Two metrics use a
    sort and a running maximum (``O(n log n)``); three use a blocked sweep in latency order in
    which each point is compared with the front found so far and with earlier points of its block
    (a point dominated by anything is dominated by a front point, by transitivity).
    Returns an int array ordered by latency ascending, then accuracy descending.
    """
    costs, cand = _prepare(accuracy, latency, energy, latency_budget, energy_budget)
    if cand.size == 0:
        return cand
    c = costs[cand]
    # lexicographic order: latency, -accuracy, (energy), index
    keys = [cand] + [c[:, k] for k in range(c.shape[1] - 1, -1, -1)]
    order = np.lexsort(keys)
    c, idx = c[order], cand[order]
    keep = _front2(c) if c.shape[1] == 2 else _front_sweep(c)
    if not unique:
        # exact copies of a front point are non-dominated too
        _, group = np.unique(c, axis=0, return_inverse=True)
        keep = np.isin(group.reshape(-1), group.reshape(-1)[keep])
    return idx[keep]


def _front2(c: np.ndarray) -> np.ndarray:
    """Rows of a lexicographically sorted ``(latency, -accuracy)`` matrix not dominated by (or
    equal to) an earlier row."""
    neg_acc = c[:, 1]
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], neg_acc[:-1]]))
    return neg_acc < best_before


def _front_sweep(c: np.ndarray, block: int = 128) -> np.ndarray:
    """Same for ``(latency, -accuracy, energy)``. In sorted order every earlier row is at least
    as fast, so row ``j`` is dominated iff an earlier row has ``-acc <= -acc_j`` and
    ``energy <= energy_j``: against the front found so far this is a prefix minimum of energy
    over the front sorted by ``-acc`` (one ``searchsorted`` per block), within the block a
    ``block x block`` comparison with earlier rows."""
    n = len(c)
    keep = np.zeros(n, dtype=bool)
    f_na = np.zeros(0)
    f_e = np.zeros(0)
    prefix_min = np.zeros(0)
    earlier = np.triu(np.ones((block, block), dtype=bool), k=1)  # [i, j]: i < j
    for s in range(0, n, block):
        na, e = c[s : s + block, 1], c[s : s + block, 2]
        m = len(na)
        if len(f_na):
            k = np.searchsorted(f_na, na, side="right")
            dom = (k > 0) & (prefix_min[np.maximum(k - 1, 0)] <= e)
        else:
            dom = np.zeros(m, dtype=bool)
        le = (na[:, None] <= na[None, :]) & (e[:, None] <= e[None, :])
        dom |= np.any(le & earlier[:m, :m], axis=0)
        keep[s : s + block] = ~dom
        if (~dom).any():
            f_na = np.concatenate([f_na, na[~dom]])
            f_e = np.concatenate([f_e, e[~dom]])
            o = np.argsort(f_na, kind="stable")
            f_na, f_e = f_na[o], f_e[o]
            prefix_min = np.minimum.accumulate(f_e)
    return keep


def pareto_mask(
    accuracy: np.ndarray,
    latency: np.ndarray,
    energy: np.ndarray | None = None,
    latency_budget: float | None = None,
    energy_budget: float | None = None,
    unique: bool = True,
) -> np.ndarray:
    """``n`` bool array marking :func:`pareto_front`."""
    mask = np.zeros(np.asarray(accuracy).reshape(-1).shape[0], dtype=bool)
    mask[pareto_front(accuracy, latency, energy, latency_budget, energy_budget, unique)] = True
    return mask


class BudgetIndex:
    """Exact constrained optimum (eqs. 1-2) for any number of latency budgets.

    Built once in ``O(n log n)`` (sort by latency, prefix maxima of accuracy); each query of
    ``m`` budgets then costs ``O(m log n)``. A query returns, per budget, the index of the most
    accurate design with ``latency <= budget`` (ties: lower latency, then lower index), or
    ``-1`` where none fits. NaN rows are ignored.
    """

    def __init__(self, accuracy: np.ndarray, latency: np.ndarray) -> None:
        a = np.asarray(accuracy, dtype=float).reshape(-1)
        lat = np.asarray(latency, dtype=float).reshape(-1)
        if a.shape != lat.shape:
            raise InputError(f"accuracy and latency differ in length: {a.shape[0]}, {lat.shape[0]}")
        cand = np.flatnonzero(np.isfinite(a) & np.isfinite(lat))
        order = cand[np.lexsort((cand, -a[cand], lat[cand]))]
        new_best = _front2(np.c_[lat[order], -a[order]])
        pos = np.maximum.accumulate(np.where(new_best, np.arange(len(order)), 0))
        self._lat = lat[order]
        self._best = order[pos] if len(order) else np.zeros(0, dtype=np.int64)

    def query(self, budgets: np.ndarray | float) -> np.ndarray:
        b = np.asarray(budgets, dtype=float)
        if len(self._lat) == 0:
            return np.full(b.shape, -1, dtype=np.int64)
        k = np.searchsorted(self._lat, b.reshape(-1), side="right") - 1
        out = np.where(k >= 0, self._best[np.maximum(k, 0)], -1)
        return out.reshape(b.shape).astype(np.int64)


def best_under_budgets(
    accuracy: np.ndarray,
    latency: np.ndarray,
    budgets: np.ndarray | float,
) -> np.ndarray:
    """One-shot :class:`BudgetIndex` query: per budget, the most accurate design that fits."""
    return BudgetIndex(accuracy, latency).query(budgets)
