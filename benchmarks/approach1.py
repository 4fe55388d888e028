"""Benchmark of Approach 1 (issue 6): measurements, violations and regret on replayed devices.

NAS-Bench-201 with the exact NATS-Bench CIFAR-10 accuracies; targets are HELP's 27 devices
replayed from the store (each distinct design looked up is charged as one measurement); budgets
at the 10/30/50/70/90 % quantiles of the target's latency over the space. Regret = best true
accuracy among designs within the budget on the target minus the true accuracy of the returned
design (over the runs that returned a design within the budget); a violation is a returned design
whose measured latency exceeds the budget. Sections (``--only`` picks some):

- ``pairs``: all 702 ordered (proxy, target) pairs x 5 budgets: (a) Algorithm 1 with the proxy's
  true latencies (δ = 1 % of the budget, Max_Iterate = 10, the guaranteed choice; the design
  Algorithm 1 returns as written is scored too), (b) the same with a trained proxy predictor
  (GBT ensemble on 1,000 designs measured on the proxy), (c) the front variant (true and
  trained);
- ``pool``: (d) automatic proxy choice from the pool with the target left out, 3 probes (HELP's
  first 3 reference designs), guided search capped at 10 measurements per (device, budget) probes
  included, through the real code path (``table:DEVICE`` measurer); per-budget counts (every
  budget alone, probes re-measured) and amortized counts (one session per device, the 5 budgets
  share probes and measurements); pools with exact proxy latencies and with trained predictors;
  plus the pool choice driving Algorithm 1 and the front variant;
- ``baselines``: (e) FLOPs as the proxy (Algorithm 1, front variant); a per-device GBT
  predictor trained on N = 10 / 100 / 900 target measurements followed by the exact constrained
  search on its predictions (unverified, as such baselines are used), and the same followed by
  our verification along its predicted front;
- ``energy``: latency + energy budgets (eq. 7) on simulated devices (no public per-design energy
  data; no real meter on this machine): Algorithm 1 over (t1, t2), the 2-D front variant and the
  guided pool search, against the sum of the two 1-D bisections;
- ``real``: this machine through the ONNX Runtime measurer (1 thread) as the target, HELP's Xeon
  CPUs as the pool; the design found, its measurements, and a check afterwards (re-measure the
  design and 50 random designs).

The sweeps of ``pairs``/``baselines``/``energy`` use :class:`~fleetnas.proxy.ReplaySession`
(same algorithms, values from arrays; ``tests/proxy/test_replay_equivalence.py`` checks it gives
results identical to the ``table:`` measurer path). Writes ``benchmarks/results/approach1.json``
and ``approach1.md``. Run from the repository root:
``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/approach1.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, load_average, write_results
from approach1_common import (
    CPUS,
    QUANTILES,
    Bench,
    lookup_fn,
    row,
    summarize,
    true_accuracy,
)
from approach1_energy import bench_energy
from approach1_report import markdown, notes

RESULTS = Path(__file__).resolve().parent / "results"


# ---- (a)-(c): all ordered pairs ------------------------------------------------------------------
def bench_pairs(b: Bench) -> dict[str, Any]:
    from fleetnas.proxy import algorithm1, front_variant

    out: dict[str, Any] = {}
    variants = [("true", b.ws)]
    t0 = time.perf_counter()
    variants.append(("trained", b.trained_pool()[1]))
    out["train_seconds"] = time.perf_counter() - t0
    for kind, ws in variants:
        rows_a, rows_paper, rows_c = [], [], []
        t0 = time.perf_counter()
        for p in b.devices:
            prob = ws.problem(p)
            cache = ws.tcache(p)
            for t in b.devices:
                if t == p:
                    continue
                for qi, budget in enumerate(b.budgets[t]):
                    s = b.session(t)
                    r = algorithm1(prob, s, float(budget), 0.01 * budget, 10, cache)
                    sel = r.selection
                    rows_a.append(
                        row(b, t, qi, sel.status, b.acc[sel.index], sel.latency, s.n_new, proxy=p)
                    )
                    x = r.paper_index
                    lat_x = b.lat[t][x]
                    rows_paper.append(row(b, t, qi, "ok", b.acc[x], lat_x, s.n_new, proxy=p))
                    s = b.session(t)
                    sel = front_variant(prob, s, float(budget))
                    rows_c.append(
                        row(b, t, qi, sel.status, b.acc[sel.index], sel.latency, s.n_new, proxy=p)
                    )
        out[kind] = {
            "algorithm1": summarize(rows_a),
            "algorithm1_as_written": summarize(rows_paper),
            "front": summarize(rows_c),
            "seconds": time.perf_counter() - t0,
            "per_quantile": {
                name: {str(q): summarize([r for r in rows if r["q"] == q]) for q in QUANTILES}
                for name, rows in (("algorithm1", rows_a), ("front", rows_c))
            },
        }
        print(f"pairs/{kind}: {out[kind]['algorithm1']} {out[kind]['front']}", flush=True)
    return out


# ---- (d): the pool -------------------------------------------------------------------------------
def bench_pool(b: Bench, cap: int = 10, n_probes: int = 3) -> dict[str, Any]:
    from fleetnas.data import reference_archs
    from fleetnas.measure import get_measurer
    from fleetnas.proxy import (
        Approach1Config,
        MeasurerSession,
        ProxyPool,
        Workspace,
        optimize_device,
    )

    out: dict[str, Any] = {}
    ref = reference_archs(b.store, b.space)
    probes = ref[:n_probes]
    for kind, ws_all in (("true", b.ws), ("trained", b.trained_pool()[1])):
        for method in ("guided", "front", "algorithm1"):
            cfg = Approach1Config(method=method, max_measurements=cap, n_probes=n_probes)
            per_budget, amort, chosen, fallbacks = [], [], {}, 0
            t0 = time.perf_counter()
            for t in b.devices:
                # a fallback registers the target in the pool: keep every target's pool as given
                ws = Workspace(
                    b.space, b.acc_table.predict, ProxyPool(b.space, list(ws_all.pool.entries))
                )
                shared = MeasurerSession(
                    get_measurer(f"table:{t}", store=b.store), b.space, ledger=False
                )
                for qi, budget in enumerate(b.budgets[t]):
                    s = MeasurerSession(
                        get_measurer(f"table:{t}", store=b.store), b.space, ledger=False
                    )
                    r = optimize_device(
                        ws,
                        s,
                        float(budget),
                        config=cfg,
                        probes=probes,
                        target_device=b.store.get_device(t),
                    )
                    fallbacks += r.fell_back
                    assert r.measurements == s.measurer.total_cost.measurements
                    per_budget.append(
                        row(
                            b,
                            t,
                            qi,
                            r.status,
                            true_accuracy(b, r.arch),
                            r.latency,
                            r.measurements,
                            proxy=r.proxy,
                            probes=r.probes,
                            fell_back=r.fell_back,
                        )
                    )
                    chosen.setdefault(t, []).append(r.proxy)
                    r2 = optimize_device(
                        ws,
                        shared,
                        float(budget),
                        config=cfg,
                        probes=probes,
                        target_device=b.store.get_device(t),
                    )
                    amort.append(
                        row(
                            b,
                            t,
                            qi,
                            r2.status,
                            true_accuracy(b, r2.arch),
                            r2.latency,
                            r2.measurements,
                            proxy=r2.proxy,
                        )
                    )
            per_device = {}
            for t in b.devices:
                mine = [r for r in amort if r["target"] == t]
                per_device[t] = sum(r["measurements"] for r in mine)
            key = f"{kind}/{method}"
            out[key] = {
                "per_budget": summarize(per_budget),
                "amortized": summarize(amort),
                "amortized_per_budget_mean": float(np.mean(list(per_device.values())) / 5),
                "amortized_per_budget_max": float(max(per_device.values()) / 5),
                "per_device_total": per_device,
                "fallbacks": fallbacks,
                "chosen_proxy": {t: max(set(v), key=v.count) for t, v in chosen.items()},
                "seconds": time.perf_counter() - t0,
                "worst": sorted(
                    [r for r in per_budget if r["regret"] is not None],
                    key=lambda r: -r["regret"],
                )[:5],
                "per_quantile": {
                    str(q): summarize([r for r in per_budget if r["q"] == q]) for q in QUANTILES
                },
            }
            print(f"pool/{key}: {out[key]['per_budget']}", flush=True)
    out["sensitivity"] = pool_sensitivity(b, ref)
    return out


def pool_sensitivity(b: Bench, ref: np.ndarray) -> list[dict[str, Any]]:
    """(d) guided, per-budget runs (replayed sessions), one setting changed at a time."""
    from fleetnas.proxy import Approach1Config, BlendConfig, optimize_device

    settings: list[tuple[str, dict[str, Any], int]] = [
        ("default (3 probes, cap 10, spec temperature 3, noise grid)", {}, 3),
        ("no spec prior", {"blend": BlendConfig(spec_temperature=0.0)}, 3),
        ("spec temperature 1", {"blend": BlendConfig(spec_temperature=1.0)}, 3),
        ("one noise level 0.08", {"blend": BlendConfig(noise=(0.08,))}, 3),
        ("2 probes", {"n_probes": 2}, 2),
        ("5 probes", {"n_probes": 5}, 5),
        ("cap 6", {"max_measurements": 6}, 3),
        ("cap 8", {"max_measurements": 8}, 3),
        ("min_gain 0 (use the whole cap)", {"min_gain": 0.0}, 3),
    ]
    out = []
    for kind, ws in (("true", b.ws), ("trained", b.trained_pool()[1])):
        for label, kw, k in settings:
            cfg = Approach1Config(**kw)
            rows = []
            for t in b.devices:
                for qi, budget in enumerate(b.budgets[t]):
                    r = optimize_device(
                        ws,
                        b.session(t),
                        float(budget),
                        config=cfg,
                        probes=ref[:k],
                        target_device=b.store.get_device(t),
                    )
                    rows.append(
                        row(b, t, qi, r.status, true_accuracy(b, r.arch), r.latency, r.measurements)
                    )
            out.append({"pool": kind, "setting": label, **summarize(rows)})
            print(f"sensitivity {kind} {label}: {out[-1]}", flush=True)
    return out


# ---- (e): baselines ------------------------------------------------------------------------------
def bench_baselines(b: Bench) -> dict[str, Any]:
    from fleetnas.predict import GBTEnsemble
    from fleetnas.proxy import (
        ProxyEntry,
        ProxyPool,
        Workspace,
        algorithm1,
        front_variant,
        verify_candidates,
    )
    from fleetnas.search import BudgetIndex, pareto_front

    out: dict[str, Any] = {}
    flops = b.space.flops(b.archs).astype(float)
    pool = ProxyPool(b.space, [ProxyEntry("flops", lookup_fn(b.space, flops), source="flops")])
    ws = Workspace(b.space, b.acc_table.predict, pool)
    prob = ws.problem("flops")
    rows_a, rows_c = [], []
    for t in b.devices:
        for qi, budget in enumerate(b.budgets[t]):
            s = b.session(t)
            sel = algorithm1(
                prob, s, float(budget), 0.01 * budget, 10, ws.tcache("flops")
            ).selection
            rows_a.append(row(b, t, qi, sel.status, b.acc[sel.index], sel.latency, s.n_new))
            s = b.session(t)
            sel = front_variant(prob, s, float(budget))
            rows_c.append(row(b, t, qi, sel.status, b.acc[sel.index], sel.latency, s.n_new))
    out["flops_algorithm1"] = summarize(rows_a)
    out["flops_front"] = summarize(rows_c)
    print(f"baselines/flops: {out['flops_algorithm1']} {out['flops_front']}", flush=True)
    for n in (10, 100, 900):
        raw, verified = [], []
        t0 = time.perf_counter()
        for k, t in enumerate(b.devices):
            rng = np.random.default_rng(1000 + k)
            idx = rng.choice(b.space.size, n, replace=False)
            gbt = GBTEnsemble(b.space, target="log", n_members=3, seed=k)
            pred = gbt.fit(b.archs[idx], b.lat[t][idx]).predict(b.archs)
            best = BudgetIndex(b.acc, pred).query(b.budgets[t])
            front = pareto_front(b.acc, pred)
            for qi, budget in enumerate(b.budgets[t]):
                x = int(best[qi])
                if x < 0:
                    raw.append(row(b, t, qi, "infeasible", np.nan, np.nan, n))
                else:
                    raw.append(row(b, t, qi, "ok", b.acc[x], b.lat[t][x], n))
                s = b.session(t)
                s.measure(b.archs[idx])
                ok = np.flatnonzero(pred[front] <= budget)
                sel = verify_candidates(
                    b.space,
                    b.archs[front],
                    s,
                    float(budget),
                    accuracy=b.acc[front],
                    proxy_latency=pred[front],
                    start=int(ok[-1]) if len(ok) else 0,
                )
                verified.append(row(b, t, qi, sel.status, sel.accuracy, sel.latency, s.n_new))
        out[f"device_predictor_{n}"] = summarize(raw)
        out[f"device_predictor_{n}_verified"] = summarize(verified)
        out[f"device_predictor_{n}_seconds"] = time.perf_counter() - t0
        print(
            f"baselines/N={n}: {out[f'device_predictor_{n}']} "
            f"{out[f'device_predictor_{n}_verified']}",
            flush=True,
        )
    return out


# ---- the real run --------------------------------------------------------------------------------
def bench_real(b: Bench, n_check: int = 50, seed: int = 11) -> dict[str, Any]:
    """Two budgets (the 25 % and 50 % quantiles of 15 random designs measured beforehand, not
    counted), each searched in a fresh store, then one check of both designs and 50 others."""
    from fleetnas.measure import get_measurer
    from fleetnas.proxy import Approach1Config, Workspace, design_codes, optimize_device, pair_stats
    from fleetnas.proxy.fallback import spread_designs
    from fleetnas.store import open_store

    spec = "onnxruntime:threads=1,batch=1"
    pre = get_measurer(spec, store=None)
    rng = np.random.default_rng(seed)
    pre_archs = b.archs[rng.choice(b.space.size, 15, replace=False)]
    pre_vals = pre.measure(b.space, pre_archs)["latency"]
    cpu_pool = b.pool.without(*[d for d in b.devices if d not in CPUS])
    ws = Workspace(b.space, b.acc_table.predict, cpu_pool)
    runs = []
    for label, q in (("tight", 0.25), ("middle", 0.5)):
        budget = float(np.quantile(pre_vals, q))
        t0 = time.perf_counter()
        m = get_measurer(spec, store=open_store("memory://"))
        r = optimize_device(ws, m, budget, config=Approach1Config())
        runs.append(
            {
                "label": label,
                "budget_ms": budget,
                "budget_from": f"{int(q * 100)} % quantile of 15 random designs measured "
                "beforehand (not counted)",
                "device": m.device.name,
                "design": r.arch_str,
                "arch": r.arch,
                "predicted_accuracy": r.predicted_accuracy,
                "true_accuracy": true_accuracy(b, r.arch),
                "measured_latency_ms": r.latency,
                "status": r.status,
                "measurements": r.measurements,
                "measurer_charged": m.total_cost.measurements,
                "probes": r.probes,
                "proxy": r.proxy,
                "proxy_scores": [x.to_dict() for x in r.proxy_scores],
                "device_seconds": r.device_seconds,
                "wall_seconds": time.perf_counter() - t0,
                "stop_reason": r.stop_reason,
                "trace": [x.to_dict() for x in r.trace],
            }
        )
    check = get_measurer(spec, store=None)
    designs = spread_designs(b.space, n_check, seed + 1)
    chosen = np.stack([x.pop("arch") for x in runs])
    lat_c = check.measure(b.space, np.concatenate([chosen, designs]))["latency"]
    rand = lat_c[len(runs) :]
    codes = design_codes(b.space, designs)
    for i, x in enumerate(runs):
        within = rand <= x["budget_ms"]
        x["check"] = {
            "remeasured_latency_ms": float(lat_c[i]),
            "still_meets_budget": bool(lat_c[i] <= x["budget_ms"]),
            "margin": float(1 - lat_c[i] / x["budget_ms"]),
            "share_of_random_designs_within_budget": float(within.mean()),
            "best_true_accuracy_among_random_within_budget": float(b.acc[codes][within].max())
            if within.any()
            else None,
        }
    out = {
        "measurer": spec,
        "runs": runs,
        "random_designs": n_check,
        "monotonicity_with_help_cpus": {
            d: pair_stats(b.lat[d][codes], rand).to_dict() for d in CPUS
        },
        "pre_measured_ms": [float(v) for v in pre_vals],
        "energy_meter": "none on this machine (no RAPL/NVML access): latency only",
    }
    print(f"real: {json.dumps(out, default=str)[:1500]}", flush=True)
    return out


SECTIONS = {
    "pairs": bench_pairs,
    "pool": bench_pool,
    "baselines": bench_baselines,
    "energy": bench_energy,
    "real": bench_real,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=None, choices=list(SECTIONS))
    ap.add_argument("--out", default=str(RESULTS / "approach1"))
    ap.add_argument("--report-only", action="store_true", help="Rewrite the .md from the .json.")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.report_only:
        res = json.loads(out.with_suffix(".json").read_text())
        res["notes"] = notes(res)
        write_results(out, res, markdown(res), default=_json_default)
        return 0
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    res: dict[str, Any] = {"environment": environment()}
    if out.with_suffix(".json").exists() and args.only:
        res = {**json.loads(out.with_suffix(".json").read_text()), **res}
    b = Bench()
    sections = args.only or list(SECTIONS)
    for name in sections:
        s0 = time.perf_counter()
        res[name] = SECTIONS[name](b)
        res.setdefault("section_seconds", {})[name] = time.perf_counter() - s0
    res["environment"]["load_after"] = load_average()
    res["total_seconds"] = time.perf_counter() - t0
    res["notes"] = notes(res)
    write_results(out, res, markdown(res), default=_json_default)
    print(f"wrote {out.with_suffix('.json')} and .md", flush=True)
    return 0


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


if __name__ == "__main__":
    sys.exit(main())
