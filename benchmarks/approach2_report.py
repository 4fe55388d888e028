"""Markdown and verdict of ``approach2.py``'s results (``results/approach2.md``)."""

from __future__ import annotations

from typing import Any


# ---- report -------------------------------------------------------------------------------------
def fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# Approach 2: learning to optimize (issue 7)",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores, shared with other jobs (load average "
        f"{env['load_before'][0]} before, {env.get('load_after', ['?'])[0]} after); Python "
        f"{env['python']}, NumPy {env['numpy']}, torch {env['torch']}; training on 1 torch "
        "thread. Total run time "
        f"{res.get('seconds', 0) / 60:.1f} min.",
        "",
        "**Objective gap** = (f̂(x̂) − f̂(x*)) / (1 + λ2) with x* the exhaustive optimum of the "
        "same predicted objective (eq. 8, accuracy and latency each normalized to their 5–95 % "
        "reference spread; the division gives eq. 6's t-form): 1 % = one hundredth of that "
        "spread. **True gap**: the same with the measured latency and the true optimum. λ grid: "
        "t = λ2/(1+λ2) in 0.05..0.95 step 0.05 (19 values) x 6 unseen devices = 114 queries.",
        "",
    ]
    nb = res.get("nb201")
    if nb:
        ts = nb["training_seconds"]
        lines += [
            "## NAS-Bench-201, HELP split (train: 9 meta-train + 4 meta-valid devices, test: "
            + ", ".join(nb["test_devices"])
            + ")",
            "",
            f"Training (main model): latency network {ts['latency_network']:.1f} s, calibration "
            f"of real devices for synthetic ones {ts['calibration_for_synthetic']:.1f} s, exact "
            f"labels for {ts['devices']} devices x {ts['lambdas']} λ {ts['labels']:.1f} s, "
            f"Method 1 ensemble of 5 {ts['method1_ensemble5']:.1f} s: **{ts['total_main']:.0f} s "
            "in all**.",
            "",
            "### λ mode (ablations in the same run)",
            "",
            "| variant | gap median % | gap p90 % | share at the optimum | true gap median % "
            "| true gap p90 % "
            "| MSE one-hot | CE | scored designs / query |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in nb["lambda_mode"].items():
            lines.append(
                f"| {name} | {fmt(r['gap']['median'])} | {fmt(r['gap']['p90'])} | "
                f"{fmt(r['gap']['zero_share'])} | {fmt(r['true_gap']['median'])} | "
                f"{fmt(r['true_gap']['p90'])} | {fmt(r['labels']['mse_onehot'], 3)} | "
                f"{fmt(r['labels']['cross_entropy'], 3)} | {fmt(r['evaluations_per_query'], 1)} |"
            )
        lines += [
            "",
            f"Method 2 relaxation picked by the gap on the real training devices: "
            f"**{nb['method2_pick']}**. MSE one-hot (eq. 9) and per-decision cross-entropy are "
            "against the exact labels of the test devices.",
            "",
            "### Budget mode (budgets at the 10..90 % quantiles of each test device's measured "
            "latency; 54 queries)",
            "",
            f"Safety margin chosen on meta-valid devices with a latency network fit on meta-train "
            "only (smallest margin with <= 2.5 % violations): "
            f"**{nb['margin_calibration']['chosen']}"
            f"** log-std (rates by margin: {nb['margin_calibration']['rates']}).",
            "",
            "| mode | violation rate | answered | regret median (% pts) | regret mean | regret "
            "p90 | measurements max / mean | ms / query |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in nb["budget_mode"].items():
            meas = (
                f"{r['measurements_max']} / {r['measurements_mean']:.2f}"
                if "measurements_max" in r
                else "0"
            )
            lines.append(
                f"| {name} | {fmt(r['violation_rate'], 3)} | {fmt(r.get('answered', 1.0))} | "
                f"{fmt(r['regret_median'])} | {fmt(r['regret_mean'])} | "
                f"{fmt(r.get('regret_p90'))} | {meas} | {fmt(r.get('ms_per_query'))} |"
            )
        t = nb["timing"]
        lines += [
            "",
            "### Speed",
            "",
            "| what | 1 thread | 2 threads |",
            "|---|---:|---:|",
            f"| one query (ensemble 1, no refinement), median ms | "
            f"{t['single_query_ms_1t']:.3f} | {t['single_query_ms_2t']:.3f} |",
            f"| one query, p90 ms | {t['single_query_p90_ms_1t']:.3f} | "
            f"{t['single_query_p90_ms_2t']:.3f} |",
            f"| batched queries / s ({t['batched_queries']:,} (device, λ) pairs, features to "
            f"designs) | {t['batched_queries_per_s_1t']:,.0f} | "
            f"{t['batched_queries_per_s_2t']:,.0f} |",
            f"| network forward + argmax alone / s | {t['forward_argmax_per_s_1t']:,.0f} | "
            f"{t['forward_argmax_per_s_2t']:,.0f} |",
            "",
            f"With the objective (2 threads): device scales {t['scales_ms_per_device']:.1f} ms per "
            f"new device; ensemble of 5 {t['ensemble5_ms_per_query']:.2f} ms/query, refinement "
            f"{t['refine2_ms_per_query']:.2f} ms/query, both "
            f"{t['ensemble5_refine2_ms_per_query']:.2f} ms/query (114 queries per call). "
            "Baseline, a per-device exhaustive search on the same "
            f"predictor: {t['exhaustive_ms_per_device']:.0f} ms per device "
            f"({t['exhaustive_ms_per_query_19_lambdas']:.1f} ms per query over 19 λ).",
            "",
        ]
    a2 = res.get("algorithm2")
    if a2:
        lines += [
            "## Algorithm 2: exploration strategies (NAS-Bench-201)",
            "",
            f"Training devices: the 9 meta-train devices, measured through `table:DEVICE` "
            f"replays (every distinct design counted once per device); start: 10 probes + "
            f"{a2['config']['initial']} random designs per device, then {a2['config']['per_round']}"
            f" designs per round. Quality: median true gap (%) of the exact optimum of the "
            f"current predicted objective on the 4 meta-valid devices (19 λ each).",
            "",
            "| strategy | "
            + " | ".join(f"round {p['round']}" for p in a2["strategies"]["random"]["curve"])
            + " | final optimizer gap / true gap (median %) |",
            "|---|" + "---:|" * (len(a2["strategies"]["random"]["curve"]) + 1),
        ]
        for s, c in a2["strategies"].items():
            cells = [f"{p['true_gap_median']:.2f} ({p['measurements']})" for p in c["curve"]]
            fo = c["final_optimizer"]
            lines.append(
                f"| {s} | "
                + " | ".join(cells)
                + f" | {fo['gap']['median']:.2f} / {fo['true_gap']['median']:.2f} |"
            )
        ref = a2["full_data_reference"]
        lines += [
            "",
            "Cells: true gap median % (measurements charged so far). Reference: all "
            f"{ref['measurements']:,} measurements (every design on every training device) give "
            f"{ref['true_gap_median']:.2f} %.",
            "",
        ]
        lines += [
            "| strategy | measurements to reach a true gap median of <= 5 % | <= 4 % | <= 3 % "
            "| <= 2 % | <= 1.5 % | <= 1 % |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        keys = ("5.0", "4.0", "3.0", "2.0", "1.5", "1.0")
        for s, r in a2["measurements_to_reach_true_gap_median_pct"].items():
            lines.append(f"| {s} | " + " | ".join(fmt(r[k]) for k in keys) + " |")
        lines.append("")
    for key, title in (("ofa", "OFA-MobileNetV3"), ("fbnet", "FBNet")):
        s = res.get(key)
        if not s:
            continue
        ev = s["long_evolution"]
        lines += [
            f"## {title}: gap to a long evolutionary search on the predicted objective",
            "",
            f"Train: {', '.join(s['train_devices'])} (+ synthetic, {s['training_devices']} "
            f"devices); test (unseen): {', '.join(s['test_devices'])}; t in 0.1..0.9 (5 values). "
            f"{s['note']}. Reference: evolution with population "
            f"{ev['config']['population']}, {ev['config']['children']} children, up to "
            f"{ev['config']['generations']} generations (median {ev['evaluations_median']:.0f} "
            f"designs scored, {ev['seconds_per_search']:.1f} s per (device, λ)). Negative gap: the "
            "network's design is better than the search's.",
            "",
            "| method | gap median % | gap p90 % | gap min % | share <= search | train s "
            "| ms / query |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in s["methods"].items():
            lines.append(
                f"| {name} | {fmt(r['gap_median'])} | {fmt(r['gap_p90'])} | {fmt(r['gap_min'])} "
                f"| {fmt(r['better_or_equal_share'])} | {fmt(r['train_seconds'], 0)} | "
                f"{fmt(r['ms_per_query'], 3)} |"
            )
        lines.append("")
    if "verdict" in res:
        lines += ["## Targets", ""] + [f"- {v}" for v in res["verdict"]] + [""]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def verdict(res: dict[str, Any]) -> list[str]:
    out = []
    nb = res.get("nb201")
    if nb:
        main = nb["lambda_mode"]["M1 probes, all synthetic, ensemble 5, refine 2"]
        plain = nb["lambda_mode"]["M1 probes, all synthetic, ensemble 1"]
        out.append(
            f"median objective gap <= 1 % on unseen devices: {main['gap']['median']:.2f} % "
            f"(ensemble 5 + refinement), {plain['gap']['median']:.2f} % (one network, argmax only)"
            f" -> {'met' if plain['gap']['median'] <= 1 else 'not met'}"
        )
        bud = nb["budget_mode"]
        nm = [
            r
            for k, r in bud.items()
            if k.startswith("no measurement") and r["margin"] > 0 and "refine" not in k
        ]
        hy = [r for k, r in bud.items() if k.startswith("hybrid")]
        out.append(
            "budget mode without measurements, true violations <= 5 %: "
            + ", ".join(f"{r['violation_rate'] * 100:.1f} %" for r in nm)
            + f" -> {'met' if all(r['violation_rate'] <= 0.05 for r in nm) else 'not met'}"
        )
        out.append(
            "hybrid mode: zero violations with <= 3 measurements per device: "
            + ", ".join(
                f"{r['violation_rate'] * 100:.1f} % violations, max {r['measurements_max']} "
                f"measurements, {r['answered'] * 100:.0f} % answered"
                for r in hy
            )
            + " -> "
            + _met(all(r["violation_rate"] == 0 and r["measurements_max"] <= 3 for r in hy))
        )
        t = nb["timing"]
        out.append(
            f"one query under 5 ms: {t['single_query_ms_1t']:.3f} ms; >= 50,000 queries/s batched "
            f"on 2 cores: {t['batched_queries_per_s_2t']:,.0f}/s -> "
            f"{_met(t['single_query_ms_1t'] < 5 and t['batched_queries_per_s_2t'] >= 50000)}"
        )
        tr = nb["training_seconds"]["total_main"]
        out.append(f"training under 10 minutes: {tr:.0f} s -> {'met' if tr < 600 else 'not met'}")
    return out
