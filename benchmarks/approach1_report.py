"""Markdown and notes of ``approach1.py``'s results (``results/approach1.md``)."""

from __future__ import annotations

from typing import Any


# ---- report --------------------------------------------------------------------------------------
def _fmt(s: dict[str, Any], per_budget_cap: int | None = None) -> str:
    if not s:
        return "| - | - | - | - | - | - | - |"
    return (
        f"| {s['measurements_median']:g} | {s['measurements_max']} | {s['violations']} | "
        f"{100 * s['infeasible_rate']:.1f} % | {s.get('regret_mean', float('nan')):.3f} | "
        f"{s.get('regret_median', float('nan')):.3f} | {s.get('regret_p90', float('nan')):.3f} |"
    )


def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# Approach 1 on replayed HELP devices (issue 6)",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores, shared with other jobs; load average "
        f"before {env['load_before'][0]:.2f}, after {env.get('load_after', [0])[0]:.2f}. "
        f"Python {env['python']}, NumPy {env['numpy']}, torch {env['torch']}. Total "
        f"{res.get('total_seconds', 0):.0f} s.",
        "",
        "NAS-Bench-201, exact CIFAR-10 accuracies (NATS-Bench), targets = HELP's 27 devices "
        "replayed from the store (each distinct design charged once); budgets at the "
        "10/30/50/70/90 "
        "% quantiles of the target's latency. Regret in accuracy points (pp) over runs that "
        "returned a design within the budget; violations = returned designs measured over the "
        "budget; infeasible = no measured design met the budget (the fastest measured is "
        "returned and flagged).",
        "",
        "| method | runs | meas. median | meas. max | violations | infeasible | regret mean | "
        "regret median | regret p90 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def add(name: str, s: dict[str, Any]) -> None:
        if s:
            lines.append(f"| {name} | {s['runs']} " + _fmt(s))

    pairs = res.get("pairs", {})
    for kind in ("true", "trained"):
        if kind in pairs:
            p = pairs[kind]
            label = "proxy's true latencies" if kind == "true" else "trained proxy predictor"
            add(f"(a/b) Algorithm 1, {label}", p["algorithm1"])
            add(
                f"Algorithm 1 as written (last x*(t), no guarantee), {label}",
                p["algorithm1_as_written"],
            )
            add(f"(c) front variant, {label}", p["front"])
    pool = {k: v for k, v in res.get("pool", {}).items() if k != "sensitivity"}
    for key, v in pool.items():
        kind, method = key.split("/")
        label = "exact proxy latencies" if kind == "true" else "trained proxy predictors"
        add(f"(d) pool auto, {method}, {label}: per (device, budget)", v["per_budget"])
        add(f"(d) pool auto, {method}, {label}: 5 budgets share a session", v["amortized"])
    base = res.get("baselines", {})
    add("(e) FLOPs as the proxy, Algorithm 1", base.get("flops_algorithm1", {}))
    add("(e) FLOPs as the proxy, front variant", base.get("flops_front", {}))
    for n in (10, 100, 900):
        add(
            f"(e) device predictor, N = {n}, constrained search (unverified)",
            base.get(f"device_predictor_{n}", {}),
        )
        add(
            f"(e) device predictor, N = {n}, + verification along its front",
            base.get(f"device_predictor_{n}_verified", {}),
        )
    lines.append("")
    if pool:
        lines += ["## (d) counts per (device, budget) and amortized", ""]
        lines.append(
            "| variant | per budget: median / max (probes incl.) | amortized per budget: "
            "mean / worst device | fallbacks | seconds |"
        )
        lines.append("|---|---|---|---:|---:|")
        for key, v in pool.items():
            pb = v["per_budget"]
            lines.append(
                f"| {key} | {pb['measurements_median']:g} / {pb['measurements_max']} | "
                f"{v['amortized_per_budget_mean']:.2f} / {v['amortized_per_budget_max']:.2f} | "
                f"{v['fallbacks']} | {v['seconds']:.1f} |"
            )
        lines.append("")
        g = pool.get("true/guided") or next(iter(pool.values()))
        lines += [
            "Per budget quantile, (d) guided with exact proxy latencies (per-budget runs):",
            "",
            "| quantile | meas. median | meas. max | violations | infeasible | "
            "regret mean | regret median | regret p90 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for q, s in g["per_quantile"].items():
            lines.append(f"| {q} " + _fmt(s))
        lines += [
            "",
            "Worst runs: "
            + "; ".join(
                f"{w['target']} q={w['q']} regret {w['regret']:.2f} (proxy {w['proxy']})"
                for w in g["worst"]
            ),
            "",
        ]
        lines.append(
            "Proxy chosen per target (most frequent over budgets): "
            + ", ".join(f"{t} -> {p}" for t, p in g["chosen_proxy"].items())
            + "."
        )
        lines.append("")
    sens = res.get("pool", {}).get("sensitivity")
    if sens:
        lines += [
            "## (d) guided: sensitivity (per-budget runs, one setting changed at a time)",
            "",
            "| pool | setting | meas. median | meas. max | violations | infeasible | "
            "regret mean | regret median | regret p90 |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for x in sens:
            lines.append(f"| {x['pool']} | {x['setting']} " + _fmt(x))
        lines.append("")
    if "energy" in res:
        e = res["energy"]
        lines += [
            "## Latency + energy (eq. 7) on simulated devices",
            "",
            f"{e['setup']['targets']} simulated targets, pool of {len(e['setup']['pool'])} "
            f"simulated proxies (families {', '.join(e['setup']['families'])}); budget pairs at "
            f"(latency, energy) quantiles {e['setup']['budget_quantiles']}. **All latency and "
            "energy values are simulated** (fleetnas.sim analytic model); no public per-design "
            "energy data exists and this machine has no readable energy meter.",
            "",
            "| method | runs | meas. median | meas. max | violations | infeasible | regret mean | "
            "regret median | regret p90 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for k, name in (
            ("algorithm1", "Algorithm 1 over (t1, t2), every pool proxy"),
            ("front", "2-D front variant, every pool proxy"),
            ("guided", "pool auto, guided (3 probes, cap 10)"),
        ):
            lines.append(f"| {name} | {e[k]['runs']} " + _fmt(e[k]))
        c = e["algorithm1_vs_sum_of_1d"]
        lines += [
            "",
            f"Mean measurements: eq. (7) Algorithm 1 {c['eq7_algorithm1_mean']:.2f}, 2-D front "
            f"{c['front_2d_mean']:.2f}; the two 1-D bisections alone: latency "
            f"{c['latency_only_mean']:.2f} + energy {c['energy_only_mean']:.2f} = "
            f"{c['sum_of_1d_mean']:.2f}.",
            "",
        ]
    if "real" in res:
        r = res["real"]
        lines += [
            "## Real run: this machine (ONNX Runtime, 1 thread) as the target",
            "",
            f"Measurer `{r['measurer']}` (device {r['runs'][0]['device']}); pool: HELP's Xeon "
            f"CPUs ({', '.join(r['monotonicity_with_help_cpus'])}), proxy chosen automatically "
            "from 3 probes. Each budget "
            "searched in a fresh store (nothing reused); measured values are real (median of "
            "timed runs in fresh worker processes).",
            "",
            "| budget | from | proxy | design | accuracy % | measured ms | status | "
            "measurements (probes) | device s | wall s | re-measured ms | still meets | "
            "random designs within budget | best random within budget % |",
            "|---|---|---|---|---:|---:|---|---|---:|---:|---:|---|---:|---:|",
        ]
        for x in r["runs"]:
            ck = x["check"]
            best = ck["best_true_accuracy_among_random_within_budget"]
            lines.append(
                f"| {x['budget_ms']:.4g} ms ({x['label']}) | {x['budget_from']} | {x['proxy']} | "
                f"`{x['design']}` | {x['true_accuracy']:.2f} | {x['measured_latency_ms']:.4g} | "
                f"{x['status']} | {x['measurements']} ({x['probes']}) | "
                f"{x['device_seconds']:.2f} | {x['wall_seconds']:.0f} | "
                f"{ck['remeasured_latency_ms']:.4g} | "
                f"{'yes' if ck['still_meets_budget'] else 'NO'} "
                f"({100 * ck['margin']:.1f} % margin) | "
                f"{100 * ck['share_of_random_designs_within_budget']:.0f} % | "
                f"{'-' if best is None else f'{best:.2f}'} |"
            )
        for x in r["runs"]:
            lines += [
                "",
                f"Trace, {x['label']} budget ({x['stop_reason']}):",
                "",
                "| step | phase | t / L' | latency ms | decision |",
                "|---:|---|---|---:|---|",
            ]
            for st in x["trace"]:
                lines.append(
                    f"| {st['step']} | {st['phase']} | {st['key']} | {st['latency']:.4g} | "
                    f"{st['decision']} |"
                )
        lines += [
            "",
            f"Monotonicity of this machine with the HELP CPUs over {r['random_designs']} random "
            "designs (re-measured with a fresh measurer):",
            "",
            "| HELP CPU | Spearman | Kendall | flipped pairs |",
            "|---|---:|---:|---:|",
        ]
        for d, st in r["monotonicity_with_help_cpus"].items():
            lines.append(
                f"| {d} | {st['spearman']:.3f} | {st['kendall']:.3f} | "
                f"{100 * st['flip_share']:.1f} % |"
            )
        lines += ["", f"Energy: {r['energy_meter']}.", ""]
    if "notes" in res:
        lines += ["## Notes", "", *res["notes"], ""]
    return "\n".join(lines)


def notes(res: dict[str, Any]) -> list[str]:
    """The closing remarks, computed from the results."""
    out = []
    pool = res.get("pool", {})
    g, gt = pool.get("true/guided"), pool.get("trained/guided")
    if g and gt:
        a, b = g["per_budget"], gt["per_budget"]
        out.append(
            f"- Target of (d) (at most 10 target measurements per (device, budget) with probes, "
            f"0 violations, mean regret <= 0.10 pp, p90 <= 0.30 pp): met with exact proxy "
            f"latencies (max {a['measurements_max']}, {a['violations']} violations, "
            f"{a['regret_mean']:.3f} / {a['regret_p90']:.3f} pp) and with trained proxy "
            f"predictors ({b['measurements_max']}, {b['violations']}, {b['regret_mean']:.3f} / "
            f"{b['regret_p90']:.3f} pp). Amortized over one device's 5 budgets (probes and "
            f"measurements shared through the session): {g['amortized_per_budget_mean']:.2f} "
            f"measurements per budget on average, {g['amortized_per_budget_max']:.2f} for the "
            "worst device."
        )
        out.append(
            "- The worst (d) runs are 10 % budgets, where accuracy falls steeply among the "
            "fastest designs and the cap stops the search one design short: "
            + "; ".join(f"{w['target']} {w['regret']:.2f} pp" for w in g["worst"][:3])
            + "."
        )
    out.append(
        "- The blend's settings (noise levels 0.05-0.4, slope prior sd 0.35, spec temperature 3, "
        "min_gain 0.01 % of the accuracy range, 3 probes) were chosen while developing on this "
        "same benchmark (no held-out device set); the sensitivity table shows how little the "
        "results depend on them. Spec features brought no measurable gain on HELP's devices "
        '("no spec prior" is as good); they stay as a weak prior. A single fixed noise level '
        "is what hurts with trained proxy predictors: the noise grid lets a proxy that fits "
        "badly widen its own spread instead of staying confidently wrong."
    )
    pairs = res.get("pairs", {}).get("true")
    if pairs:
        w = pairs["algorithm1_as_written"]
        out.append(
            f"- Algorithm 1 as written returns a design over the budget in {w['violations']} of "
            f"{w['runs']} runs (stops within δ above the budget, or the last x*(t) when "
            "Max_Iterate runs out); the guarantee wrapper (most accurate *measured* design within "
            "the budget, continuing the bisection after a stop above the budget) removes all of "
            "them at the cost of some regret."
        )
    fb = {
        k: [t for t, n in v["per_device_total"].items() if n > 50]
        for k, v in pool.items()
        if k != "sensitivity" and v["fallbacks"]
    }
    if fb:
        where = "; ".join(f"{k}: {', '.join(v)}" for k, v in fb.items())
        out.append(
            "- Monotonicity fallbacks (train the target's own predictor from 100 more "
            f"measurements, then search with it): {where}. In each case the measured designs "
            "contradicted the chosen trained proxy's order on more than 25 % of the pairs it "
            "separates by over 10 %; the guided search never fell back."
        )
    base = res.get("baselines", {})
    if base:
        out.append(
            "- Baselines: a per-device predictor's constrained optimum, unverified, violates the "
            f"budget in {base['device_predictor_10']['violations']}, "
            f"{base['device_predictor_100']['violations']} and "
            f"{base['device_predictor_900']['violations']} of 135 runs for N = 10, 100, 900. "
            "Verified along its own predicted front (verify_candidates) it never violates, but "
            "its regret grows: monotone inference along a mis-ordered front discards designs."
        )
    env = res["environment"]
    out.append(
        f"- Timing: {res.get('total_seconds', 0):.0f} s for everything on a shared 2-core machine "
        f"(1-minute load {env['load_before'][0]:.1f} before, {env.get('load_after', [0])[0]:.1f} "
        "after); the 702-pair sweeps take seconds (replayed sessions, identical to the table: "
        "measurer path by test), the pool runs go through the real table: measurer."
    )
    return out
