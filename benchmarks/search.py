"""Benchmark of the per-device search (issue 5): speed and exactness of search/.

Sections (all run by default; ``--only`` picks some):

- ``ofa``: OFA-MobileNetV3 with Once-for-All's released accuracy predictor and the Samsung Note10
  latency table, 25 ms budget (the setting of OFA's tutorial). Our re-implementation of OFA's
  published evolution (:func:`fleetnas.search.ofa_evolution`: population 100, 500 generations,
  mutation 0.1 per layer / 0.5 resolution, mutation ratio 0.5, parent ratio 0.25, rejection
  sampling, per-design latency calls) runs beside our batched search
  (:func:`fleetnas.search.evolve`) in the same process, alternating per seed, on one thread.
  Reported: the baseline's wall time and final predicted accuracy, our time to reach that
  accuracy, and our best predicted accuracy after 1 s and 5 s.
- ``nb201``: NAS-Bench-201 with the exact NATS-Bench CIFAR-10 accuracy table and HELP latency
  tables; evolutionary and random search against the exact exhaustive optimum, per device and
  budget (eqs. 1-2) and for eq. (6): evaluations needed to hit the optimum in 95 % of seeds.
- ``throughput``: designs scored per second by the batched objective for each space, and the
  exhaustive solver's query times.

Writes ``benchmarks/results/search.json`` and ``search.md``. Run from the repository root:
``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/search.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, load_average, write_results

RESULTS = Path(__file__).resolve().parent / "results"
OFA_RESOLUTIONS = [160, 176, 192, 208, 224]
OFA_BUDGET_MS = 25.0


# ---- environment -------------------------------------------------------------------------------
def pin_threads(n: int) -> None:
    """Same thread count for NumPy's BLAS and torch, for baseline and ours alike."""
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    torch.set_num_threads(n)


def data_dir() -> Path:
    from fleetnas.paths import data_dir as default

    return Path(os.environ.get("FLEETNAS_DATA_DIR") or default())


# ---- NAS-Bench-201 tables ----------------------------------------------------------------------
def nb201_tables(root: Path, devices: list[str]) -> tuple[Any, Callable, dict[str, Callable]]:
    """(space, exact NATS-Bench CIFAR-10 accuracy, {device: exact HELP latency}) as the
    ``predict`` methods of :class:`fleetnas.predict.TableLookup`."""
    from fleetnas.data.help import read_archs, read_latencies
    from fleetnas.data.nats import read_nats
    from fleetnas.predict import TableLookup

    space, help_archs = read_archs(root, "nb201")
    frame = read_nats(root)
    acc = TableLookup(space).fit(
        space.parse_many(frame["architecture"].tolist()), frame["accuracy_cifar10"].to_numpy()
    )
    lats = {
        dev: TableLookup(space).fit(help_archs, read_latencies(root, "nb201", dev)).predict
        for dev in devices
    }
    return space, acc.predict, lats


# ---- OFA ---------------------------------------------------------------------------------------
def ofa_predictors(root: Path) -> tuple[Any, Callable, Callable, str]:
    """(space, OFA's accuracy predictor, Note10 LUT) as ``predict`` methods of
    :class:`fleetnas.predict.OFAAccuracyPredictor` and :class:`fleetnas.predict.OFALatencyLUT`."""
    from fleetnas.predict import OFAAccuracyPredictor, OFALatencyLUT

    acc = OFAAccuracyPredictor.from_data(root)
    lat = OFALatencyLUT.from_data(root)
    meta = (
        "fleetnas.predict.OFAAccuracyPredictor (ofa/acc_predictor.pth, torch) and "
        "fleetnas.predict.OFALatencyLUT (ofa/note10/*_lookup_table.yaml, vectorized NumPy)"
    )
    return acc.space, acc.predict, lat.predict, meta


def bench_ofa(root: Path, seeds: list[int], our_seconds: float) -> dict[str, Any]:
    from fleetnas.search import (
        ConstrainedObjective,
        EvolutionConfig,
        Normalization,
        evolve,
        ofa_evolution,
    )

    space, acc, lat, meta = ofa_predictors(root)
    allowed = {"r": OFA_RESOLUTIONS}
    norm = Normalization.fit(space, acc, lat, n=2048, seed=0)
    cfg = EvolutionConfig(
        population=100,
        children=400,
        generations=10**9,
        mutation_ratio=0.5,
        local_ratio=0.1,
        mutation_prob=0.1,
        time_budget_s=our_seconds,
    )
    acc(space.sample(500, 0))  # warm both paths once
    lat(space.sample(500, 0))
    rows = []
    for seed in seeds:
        base = ofa_evolution(space, acc, lat, OFA_BUDGET_MS, seed=seed, allowed=allowed)
        obj = ConstrainedObjective(acc, lat, norm=norm, latency_budget=OFA_BUDGET_MS)
        ours = evolve(space, obj, cfg, seed=seed, allowed=allowed, keep_front=False)
        target = base.metrics["accuracy"]
        reach = ours.time_to_reach(target)
        rows.append(
            {
                "seed": seed,
                "baseline_wall_s": base.wall_time_s,
                "baseline_accuracy": target,
                "baseline_latency_ms": base.metrics["latency"],
                "baseline_accuracy_evals": base.calls["accuracy"],
                "baseline_latency_calls": base.calls["latency"],
                "ours_time_to_baseline_s": reach,
                "ours_evals_to_baseline": ours.evaluations_to_reach(target),
                "speedup": base.wall_time_s / reach if reach > 0 else float("inf"),
                "ours_best_at_1s": ours.best_at(1.0),
                "ours_best_at_5s": ours.best_at(5.0),
                "ours_final_latency_ms": ours.metrics["latency"],
                "ours_accuracy_evals": ours.calls["accuracy"],
                "ours_latency_calls": ours.calls["latency"],
            }
        )
        print(
            f"  ofa seed {seed}: baseline {base.wall_time_s:.2f} s -> {target:.4f}; ours "
            f"reaches it in {reach:.3f} s ({rows[-1]['speedup']:.0f}x); best@1s "
            f"{rows[-1]['ours_best_at_1s']:.4f} best@5s {rows[-1]['ours_best_at_5s']:.4f}",
            flush=True,
        )
    return {"predictors": meta, "budget_ms": OFA_BUDGET_MS, "rows": rows}


# ---- NB201 -------------------------------------------------------------------------------------
NB201_DEVICES = ["pixel3", "raspi4", "gold_6226", "titan_rtx_1"]
NB201_QUANTILES = [0.1, 0.3, 0.6]
NB201_TS = [0.1, 0.3, 0.6]


def _hits(evaluations: list[float]) -> dict[str, Any]:
    ev = np.asarray(evaluations, dtype=float)
    return {
        "hit_rate": float(np.isfinite(ev).mean()),
        "median": float(np.median(ev)),
        "p95": float(np.quantile(ev, 0.95, method="higher")),
        "max": float(ev.max()),
    }


def bench_nb201(root: Path, seeds: list[int]) -> dict[str, Any]:
    from fleetnas.search import (
        ConstrainedObjective,
        EvolutionConfig,
        ExhaustiveSolver,
        ProxyObjective,
        evolve,
        random_search,
    )

    space, acc, lats = nb201_tables(root, NB201_DEVICES)
    cfg = EvolutionConfig(population=100, children=50, generations=10**6, local_ratio=0.2)
    rows = []
    for dev, lat in lats.items():
        solver = ExhaustiveSolver.from_space(space, acc, lat)
        cases: list[tuple[str, float, Callable[[], Any]]] = []
        for q in NB201_QUANTILES:
            budget = float(np.quantile(solver.metrics.latency, q))
            best = solver.solve_constrained(budget)
            make = partial(ConstrainedObjective, acc, lat, norm=solver.norm, latency_budget=budget)
            cases.append((f"latency <= q{q:.1f} ({budget:.3g} ms)", -solver.acc_n[best], make))
        for t in NB201_TS:
            best = int(solver.solve_proxy(t))
            target = float(-(1 - t) * solver.acc_n[best] + t * solver.lat_n[best])
            cases.append(
                (
                    f"eq. 6, t = {t}",
                    target,
                    partial(ProxyObjective, acc, lat, norm=solver.norm, t=t),
                )
            )
        for name, target, make in cases:
            evo, rnd = [], []
            tol = 1e-12
            for seed in seeds:
                c = replace(cfg, target_score=target + tol)
                r = evolve(space, make(), c, seed=seed, keep_front=False)
                evo.append(_first_hit(r, target + tol))
                r = random_search(
                    space,
                    make(),
                    n=space.size,
                    batch_size=100,
                    seed=seed,
                    on_batch=lambda h, tg=target + tol: h.best_score <= tg,
                    keep_front=False,
                )
                rnd.append(_first_hit(r, target + tol))
            row = {
                "device": dev,
                "problem": name,
                "evolution": _hits(evo),
                "random": _hits(rnd),
            }
            rows.append(row)
            print(
                f"  nb201 {dev:12s} {name:28s} evolution p95 {row['evolution']['p95']:7.0f} "
                f"(hit {row['evolution']['hit_rate']:.0%}), random p95 "
                f"{row['random']['p95']:7.0f}",
                flush=True,
            )
    return {"config": asdict(cfg), "seeds": len(seeds), "designs": 15_625, "rows": rows}


def _first_hit(result: Any, target: float) -> float:
    for h in result.history:
        if h.best_score <= target:
            return float(h.evaluations)
    return float("inf")


# ---- throughput --------------------------------------------------------------------------------
def _rate(fn: Callable[[], Any], n: int, min_time: float = 0.5) -> float:
    fn()
    times = []
    t_end = time.perf_counter() + min_time
    while time.perf_counter() < t_end or len(times) < 3:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / float(np.median(times))


def bench_throughput(root: Path, include_ofa: bool) -> dict[str, Any]:
    from fleetnas.search import ConstrainedObjective, ExhaustiveSolver, Normalization

    out: dict[str, Any] = {"objective_designs_per_s": {}, "exhaustive": {}}
    space, acc, lats = nb201_tables(root, ["pixel3"])
    lat = lats["pixel3"]
    archs = space.enumerate()
    norm = Normalization.fit(space, acc, lat)
    obj = ConstrainedObjective(acc, lat, norm=norm, latency_budget=10.0, lazy_accuracy=False)
    out["objective_designs_per_s"]["nb201 (exact tables)"] = _rate(
        lambda: obj.score(archs), len(archs)
    )
    solver = ExhaustiveSolver.from_space(space, acc, lat)
    ts = np.linspace(0, 1, 1001)
    budgets = np.linspace(1, 30, 1000)
    out["exhaustive"] = {
        "build_s (15,625 designs)": 1
        / _rate(lambda: ExhaustiveSolver.from_space(space, acc, lat), 1),
        "eq6_one_t_us": 1e6 / _rate(lambda: solver.solve_proxy(0.37), 1),
        "eq6_1001_t_ms": 1e3 / _rate(lambda: solver.solve_proxy(ts), 1),
        "eq4_1000_lambda_ms": 1e3
        / _rate(lambda: solver.solve_weighted(np.stack([0 * ts[:1000], ts[:1000] * 3], 1)), 1),
        "constrained_1000_budgets_ms": 1e3 / _rate(lambda: solver.solve_constrained(budgets), 1),
    }
    from fleetnas.data.help import read_archs, read_latencies
    from fleetnas.predict import MLPEnsemble

    fb_space, fb_archs = read_archs(root, "fbnet")
    fb_lat = MLPEnsemble(fb_space, target="log", epochs=3, seed=0).fit(
        fb_archs, read_latencies(root, "fbnet", "pixel3")
    )
    fb_x = fb_space.sample(10_000, 0)
    out["objective_designs_per_s"][
        "fbnet latency MLP ensemble (5 x 256-256, no public accuracy), batch 10000"
    ] = _rate(lambda: fb_lat.predict(fb_x), len(fb_x))
    if include_ofa:
        space, acc, lat, _ = ofa_predictors(root)
        from fleetnas.search import Domain

        x = Domain(space, {"r": OFA_RESOLUTIONS}).sample(10_000, np.random.default_rng(0))
        norm = Normalization.fit(space, acc, lat, n=2048)
        obj = ConstrainedObjective(acc, lat, norm=norm, latency_budget=1e9, lazy_accuracy=False)
        for n in (100, 1000, 10_000):
            out["objective_designs_per_s"][f"ofa_mbv3 (acc MLP + Note10 LUT), batch {n}"] = _rate(
                lambda n=n: obj.score(x[:n]), n
            )
        out["objective_designs_per_s"]["ofa_mbv3 Note10 LUT alone, batch 10000"] = _rate(
            lambda: lat(x), len(x)
        )
        out["objective_designs_per_s"]["ofa_mbv3 Note10 LUT, one design per call"] = _rate(
            lambda: lat(x[:1]), 1
        )
    return out


# ---- report ------------------------------------------------------------------------------------
def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# Search benchmark (issue 5)",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores, {env['threads']} thread(s) for BLAS and "
        f"torch; load average before {env['load_before'][0]:.2f}, after "
        f"{env['load_after'][0]:.2f} (shared machine). Python {env['python']}, NumPy "
        f"{env['numpy']}, torch {env['torch']}.",
        "",
    ]
    if "ofa" in res:
        o = res["ofa"]
        rows = o["rows"]
        lines += [
            f"## OFA-MobileNetV3, Note10 latency <= {o['budget_ms']:g} ms",
            "",
            "Baseline: our re-implementation of OFA's published evolution (population 100, 500 "
            "generations, rejection sampling, per-design LUT calls). Ours: batched evolution "
            "(population 100, 400 children per generation, one accuracy call per generation on "
            "the feasible children), 5 s budget, same process and threads.",
            "",
            "| seed | baseline wall (s) | baseline acc | ours: time to baseline acc (s) | speed-up "
            "| ours best @1 s | ours best @5 s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['seed']} | {r['baseline_wall_s']:.2f} | {r['baseline_accuracy']:.4f} | "
                f"{r['ours_time_to_baseline_s']:.3f} | {r['speedup']:.0f}x | "
                f"{r['ours_best_at_1s']:.4f} | {r['ours_best_at_5s']:.4f} |"
            )
        s = o["summary"]
        lines += [
            f"| **median** | {s['baseline_wall_s_median']:.2f} | "
            f"{s['baseline_accuracy_median']:.4f} | {s['ours_time_to_baseline_s_median']:.3f} | "
            f"{s['speedup_median']:.0f}x (min {s['speedup_min']:.0f}x) | "
            f"{s['ours_best_at_1s_median']:.4f} | {s['ours_best_at_5s_median']:.4f} |",
            "",
            f"Predictors: {o['predictors']}.",
            "",
            f"Target (baseline quality in under 1 s, at least 20x faster than the baseline): "
            f"slowest seed reached it in {s['ours_time_to_baseline_s_max']:.3f} s, smallest "
            f"speed-up {s['speedup_min']:.0f}x -> "
            f"{'met' if s['target_met'] else 'NOT met'}.",
            "",
        ]
    if "nb201" in res:
        n = res["nb201"]
        lines += [
            "## NAS-Bench-201: evaluations to hit the exact optimum",
            "",
            f"{n['seeds']} seeds per row; exact NATS-Bench CIFAR-10 accuracies, HELP latencies; "
            f"optimum from the exhaustive solver over all {n['designs']:,} designs. Evaluations "
            "= distinct designs scored until the best found equals the optimum (counted per "
            "generation of 50 children / per random batch of 100); p95 = needed in 95 % of seeds. "
            "Evolution: population 100, 50 children per generation; random search draws the space "
            "without replacement.",
            "",
            "| device | problem | evolution median | evolution p95 | random median | random p95 |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in n["rows"]:
            e, q = r["evolution"], r["random"]
            lines.append(
                f"| {r['device']} | {r['problem']} | {e['median']:.0f} | {e['p95']:.0f} | "
                f"{q['median']:.0f} | {q['p95']:.0f} |"
            )
        s = n["summary"]
        lines += [
            "",
            f"Over all rows: evolution needs at most {s['evolution_p95_max']:.0f} evaluations "
            f"(median row {s['evolution_p95_median']:.0f}) to hit the optimum in 95 % of seeds; "
            f"random search {s['random_p95_median']:.0f} (median row).",
            "",
        ]
    if "throughput" in res:
        t = res["throughput"]
        lines += ["## Throughput", "", "| batched path | designs / s |", "|---|---:|"]
        for k, v in t["objective_designs_per_s"].items():
            lines.append(f"| {k} | {v:,.0f} |")
        lines += ["", "| exhaustive solver (NB201, pixel3) | time |", "|---|---:|"]
        for k, v in t["exhaustive"].items():
            lines.append(f"| {k} | {v:.4g} |")
        lines.append("")
    return "\n".join(lines)


def summarize(res: dict[str, Any]) -> None:
    if "ofa" in res:
        rows = res["ofa"]["rows"]

        def med(k: str) -> float:
            return float(np.median([r[k] for r in rows]))

        res["ofa"]["summary"] = {
            "baseline_wall_s_median": med("baseline_wall_s"),
            "baseline_accuracy_median": med("baseline_accuracy"),
            "ours_time_to_baseline_s_median": med("ours_time_to_baseline_s"),
            "ours_time_to_baseline_s_max": max(r["ours_time_to_baseline_s"] for r in rows),
            "speedup_median": med("speedup"),
            "speedup_min": min(r["speedup"] for r in rows),
            "target_met": max(r["ours_time_to_baseline_s"] for r in rows) < 1.0
            and min(r["speedup"] for r in rows) >= 20,
            "ours_best_at_1s_median": med("ours_best_at_1s"),
            "ours_best_at_5s_median": med("ours_best_at_5s"),
        }
    if "nb201" in res:
        rows = res["nb201"]["rows"]
        res["nb201"]["summary"] = {
            "evolution_p95_max": max(r["evolution"]["p95"] for r in rows),
            "evolution_p95_median": float(np.median([r["evolution"]["p95"] for r in rows])),
            "random_p95_median": float(np.median([r["random"]["p95"] for r in rows])),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="ofa,nb201,throughput")
    ap.add_argument("--ofa-seeds", type=int, default=5)
    ap.add_argument("--nb201-seeds", type=int, default=40)
    ap.add_argument("--our-seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS / "search"))
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    pin_threads(args.threads)
    root = data_dir()
    res: dict[str, Any] = {"environment": environment(threads=args.threads)}
    if "ofa" in only:
        res["ofa"] = bench_ofa(root, list(range(args.ofa_seeds)), args.our_seconds)
    if "nb201" in only:
        res["nb201"] = bench_nb201(root, list(range(args.nb201_seeds)))
    if "throughput" in only:
        res["throughput"] = bench_throughput(root, include_ofa="ofa" in only)
    res["environment"]["load_after"] = load_average()
    summarize(res)
    out = Path(args.out)
    write_results(out, res, markdown(res), default=float)
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
