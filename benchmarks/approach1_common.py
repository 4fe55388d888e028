"""Shared pieces of ``approach1.py``: the benchmark context (store, space, accuracies, HELP's
latencies, pools), result rows and their summary."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from _common import HelpNB201

QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
CPUS = ("gold_6226", "gold_6240", "silver_4114", "silver_4210r")


class Bench(HelpNB201):
    """HELP's NAS-Bench-201 data (:class:`HelpNB201`), the pools, each device's budgets and
    oracle."""

    def __init__(self) -> None:
        from fleetnas.proxy import ProxyPool, Workspace
        from fleetnas.search import BudgetIndex

        super().__init__()
        self.pool = ProxyPool.from_store(self.store, self.space)
        self.ws = Workspace(self.space, self.acc_table.predict, self.pool)
        self.budgets = {d: np.quantile(self.lat[d], QUANTILES) for d in self.devices}
        self.oracle = {}
        for d in self.devices:
            best = BudgetIndex(self.acc, self.lat[d]).query(self.budgets[d])
            self.oracle[d] = self.acc[best]
        self._trained: Any = None

    def trained_pool(self, n: int = 1000, seed: int = 0) -> Any:
        """Pool whose proxies are GBT ensembles trained on ``n`` designs of each device."""
        if self._trained is None:
            from fleetnas.predict import GBTEnsemble
            from fleetnas.proxy import ProxyEntry, ProxyPool, Workspace

            rng = np.random.default_rng(seed)
            entries = []
            t0 = time.perf_counter()
            for d in self.devices:
                idx = rng.choice(self.space.size, n, replace=False)
                gbt = GBTEnsemble(self.space, target="log", n_members=3, seed=seed)
                gbt.fit(self.archs[idx], self.lat[d][idx])
                pred = gbt.predict(self.archs)
                entries.append(
                    ProxyEntry(
                        d,
                        lookup_fn(self.space, pred),
                        device=self.store.get_device(d),
                        source="predictor",
                    )
                )
            pool = ProxyPool(self.space, entries)
            self._trained = (pool, Workspace(self.space, self.acc_table.predict, pool))
            self.train_seconds = time.perf_counter() - t0
        return self._trained

    def session(self, target: str) -> Any:
        from fleetnas.proxy import ReplaySession

        return ReplaySession(self.space, target, self.lat[target])


def lookup_fn(space: Any, values: np.ndarray) -> Any:
    from fleetnas.proxy import design_codes

    vals = np.asarray(values, dtype=float)
    return lambda archs: vals[design_codes(space, archs)]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Measurements (median, max), violations, infeasible rate, regret (mean, median, p90)."""
    if not rows:
        return {}
    m = np.array([r["measurements"] for r in rows], dtype=float)
    ok = [r for r in rows if r["status"] == "ok" and not r["violation"]]
    reg = np.array([r["regret"] for r in ok], dtype=float)
    out = {
        "runs": len(rows),
        "measurements_median": float(np.median(m)),
        "measurements_mean": float(m.mean()),
        "measurements_max": int(m.max()),
        "violations": int(sum(r["violation"] for r in rows)),
        "infeasible_rate": float(np.mean([r["status"] != "ok" for r in rows])),
    }
    if len(reg):
        out.update(
            regret_mean=float(reg.mean()),
            regret_median=float(np.median(reg)),
            regret_p90=float(np.percentile(reg, 90)),
            regret_max=float(reg.max()),
        )
    return out


def row(b: Bench, target: str, qi: int, status: str, acc: float, lat: float, n: int, **kw: Any):
    budget = float(b.budgets[target][qi])
    viol = bool(np.isfinite(lat) and lat > budget)
    return {
        "target": target,
        "q": QUANTILES[qi],
        "budget": budget,
        "status": status,
        "violation": viol if status == "ok" else False,
        "regret": float(b.oracle[target][qi] - acc) if status == "ok" else None,
        "measurements": int(n),
        **kw,
    }


def true_accuracy(b: Bench, arch: np.ndarray | None) -> float:
    from fleetnas.proxy import design_codes

    if arch is None:
        return float("nan")
    return float(b.acc[design_codes(b.space, arch)[0]])
