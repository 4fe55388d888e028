"""``approach1.py``'s energy section: eq. (7) on simulated devices with latency and energy
budgets."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from approach1_common import Bench, lookup_fn, summarize, true_accuracy


def bench_energy(b: Bench, n_pool: int = 8, n_targets: int = 16, seed: int = 7) -> dict[str, Any]:
    from fleetnas.proxy import (
        Approach1Config,
        ProxyEntry,
        ProxyPool,
        ProxyProblem,
        ReplaySession,
        Workspace,
        algorithm1,
        algorithm1_energy,
        front_variant,
        optimize_device,
    )
    from fleetnas.search import ExhaustiveSolver
    from fleetnas.sim import energy_matrix, generate_fleet, latency_matrix

    fams = ["mobile_cpu", "desktop_gpu", "server_cpu", "embedded_cpu"]
    devs = generate_fleet(n_pool + n_targets, rng=seed, families=fams)
    devs = [devs[i] for i in np.random.default_rng(seed).permutation(len(devs))]
    models = [d.model for d in devs]
    t0 = time.perf_counter()
    lat = latency_matrix(models, b.space, b.archs)
    en = energy_matrix(models, b.space, b.archs)
    sim_s = time.perf_counter() - t0
    entries = [
        ProxyEntry(
            d.name,
            lookup_fn(b.space, lat[i]),
            lookup_fn(b.space, en[i]),
            device=d.device,
            source="sim",
        )
        for i, d in enumerate(devs[:n_pool])
    ]
    pool = ProxyPool(b.space, entries)
    ws = Workspace(b.space, b.acc_table.predict, pool)
    probs_e = [ProxyProblem(b.space, b.archs, b.acc, en[i]) for i in range(n_pool)]
    pairs_q = ((0.3, 0.3), (0.5, 0.5), (0.7, 0.3), (0.3, 0.7), (0.5, 0.2))
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("algorithm1", "front", "guided")}
    one_d: list[tuple[int, int, int]] = []
    for j in range(n_pool, n_pool + n_targets):
        name = devs[j].name
        sol = ExhaustiveSolver(b.archs, b.acc, lat[j], en[j])
        for ql, qe in pairs_q:
            lb, eb = float(np.quantile(lat[j], ql)), float(np.quantile(en[j], qe))
            best = int(sol.solve_constrained(lb, eb))
            orc = b.acc[best]

            def rec(kind: str, sel: Any, n: int, proxy: str = "", c=(name, ql, qe, lb, eb, orc)):
                rows[kind].append(_energy_row(b, sel, n, proxy, *c))

            for i in range(n_pool):
                prob = ws.problem(devs[i].name, with_energy=True)
                s = ReplaySession(b.space, name, lat[j], en[j])
                sel = algorithm1_energy(prob, s, lb, eb)
                rec("algorithm1", sel, s.n_new, devs[i].name)
                s = ReplaySession(b.space, name, lat[j], en[j])
                sel = front_variant(prob, s, lb, eb)
                rec("front", sel, s.n_new, devs[i].name)
                s1 = ReplaySession(b.space, name, lat[j])
                algorithm1(ws.problem(devs[i].name), s1, lb, 0.01 * lb, 10)
                s2 = ReplaySession(b.space, name, en[j])
                algorithm1(probs_e[i], s2, eb, 0.01 * eb, 10)
                one_d.append((s.n_new, s1.n_new, s2.n_new))
            s = ReplaySession(b.space, name, lat[j], en[j])
            r = optimize_device(
                ws, s, lb, eb, config=Approach1Config(), target_device=devs[j].device
            )
            rec("guided", r, r.measurements, r.proxy)
    res = {k: summarize(v) for k, v in rows.items()}
    a1 = np.array([r["measurements"] for r in rows["algorithm1"]])
    od = np.array(one_d)
    res["algorithm1_vs_sum_of_1d"] = {
        "eq7_algorithm1_mean": float(a1.mean()),
        "front_2d_mean": float(od[:, 0].mean()),
        "latency_only_mean": float(od[:, 1].mean()),
        "energy_only_mean": float(od[:, 2].mean()),
        "sum_of_1d_mean": float(od[:, 1:].sum(axis=1).mean()),
    }
    res["setup"] = {
        "pool": [d.name for d in devs[:n_pool]],
        "targets": n_targets,
        "families": fams,
        "budget_quantiles": pairs_q,
        "simulate_seconds": sim_s,
        "values": "simulated (fleetnas.sim analytic model), not measured",
    }
    print(f"energy: {res}", flush=True)
    return res


def _energy_row(b, sel, n, proxy, name, ql, qe, lb, eb, orc) -> dict[str, Any]:
    ok = sel.status == "ok"
    return {
        "target": name,
        "q": (ql, qe),
        "status": sel.status,
        "violation": bool(ok and (sel.latency > lb or sel.energy > eb)),
        "regret": float(orc - true_accuracy(b, sel.arch)) if ok else None,
        "measurements": n,
        "proxy": proxy,
    }
