"""Plans that choose compression per device, and why one latency order does not serve them.

Part 1, **monotonicity across compression** (issue 17 item 3). This machine's runtime stacks were
measured at fp32 and int8 on the same NB201 designs (``benchmarks/results/stacks/nb201.csv``, read
through the exchange reader, so its size is whatever it holds today). Per stack: the int8 / fp32
latency ratio per design (median, p10..p90, min..max, share of designs where int8 is faster),
and Kendall's tau between every pair of stacks over the fp32 designs alone and over the joint
designs (design x {fp32, int8}): the joint order is what Approach 1 would have to share.

Part 2, **the plan**. ``plan --space nb201+q`` (:mod:`fleetnas.fleet.compression`) over a mixed
fleet: the four stacks as ``ptable`` devices (fp32 and int8 tables), simulated devices of
families whose int8 factor differs (:mod:`fleetnas.sim.precision`), HELP devices (architecture
only) and BitFusion (APQ's space, latency and energy). Budgets of a stack device are the median
fp32 latency of its table; the others are fixed ms/mJ values. Per entry: the chosen policy, the
accuracy source, measurements, and the check against the device's truth (the best accuracy among
all the device's candidates whose true value meets the budget, computed here uncharged: the
tables, the simulator, APQ's table): violations and regret. "Policies differ where the
measurements say so": for each stack device, whether int8 was chosen and whether int8 is faster
than fp32 on the chosen architecture there.

Part 3, **APQ's space**: Approach 1 (the compressed planner's calibrated-proxy verification on
BitFusion, several budgets) with its measurements and regret over the candidate sample; Approach
2 (an optimizer network for the 131-decision APQ space) is not run here (see the results).

Writes ``benchmarks/results/compression_plan.{json,md}``. From the repository root:
``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/compression_plan.py``.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, write_results

ROOT = Path(__file__).resolve().parents[1]
STACKS = ROOT / "benchmarks" / "results" / "stacks" / "nb201.csv"
OUT = ROOT / "benchmarks" / "results" / "compression_plan"
PAIRS = {
    "ort-t1": ("local-ort-t1-b1-fp32-optall", "local-ort-t1-b1-int8-optall"),
    "ort-t2": ("local-ort-t2-b1-fp32-optall", "local-ort-t2-b1-int8-optall"),
    "litert-t1": ("local-litert-t1-b1-fp32", "local-litert-t1-b1-int8"),
    "ov-t1": ("local-ov-t1-b1-fp32-latency", "local-ov-t1-b1-int8-latency"),
}
SIMS = {
    "npu-sim": "sim:family=npu,peak_gflops=500,mem_bandwidth_gbs=20,overhead_us=20,knee=1000",
    "mcu-sim": "sim:family=microcontroller,peak_gflops=0.5,mem_bandwidth_gbs=0.5,"
    "overhead_us=50,knee=10",
    "gpu-sim": "sim:family=desktop_gpu,peak_gflops=8000,mem_bandwidth_gbs=400,overhead_us=20,"
    "knee=200000,overlap=0.8",
    "qdq-cpu-sim": "sim:family=local_runtime,peak_gflops=60,mem_bandwidth_gbs=20,"
    "overhead_us=10,knee=5000",
}
SIM_BUDGETS = {"npu-sim": 3.0, "mcu-sim": 600.0, "gpu-sim": 1.2, "qdq-cpu-sim": 4.0}
HELP = {"pixel2": 15.0, "raspi4": 22.0}
#: Runtime family of each stack device (its ``runtime`` feature): a stack's proxies come from
#: the other families only (ort-t1 and ort-t2 never proxy each other).
RUNTIME = {"ort-t1": "onnxruntime", "ort-t2": "onnxruntime", "litert-t1": "litert",
           "ov-t1": "openvino"}  # fmt: skip
#: Budgets of a stack device: these quantiles of its fp32 table (fixed before any run).
STACK_QUANTILES = (0.3, 0.5, 0.7)
#: The planner's estimate under test and the baseline, run on the same store and fleet.
ESTIMATES = ("per-design", "one-factor")
#: A small ``--max-measurements`` under which both run again (the cap counts the probes).
SMALL_CAP = 6
BITFUSION_BUDGETS = [(8.0, 20.0), (11.0, 25.0), (14.0, 40.0)]


def stack_table(store: Any) -> dict[str, dict[bytes, float]]:
    from fleetnas.spaces import get_space

    sp = get_space("nb201")
    out = {}
    for fp, i8 in PAIRS.values():
        for dev in (fp, i8):
            a, v = store.get_measurements(sp, dev, "latency", statistic="median")
            out[dev] = {r.tobytes(): float(x) for r, x in zip(a, v, strict=True)}
    return out


def part1(tables: dict[str, dict[bytes, float]]) -> dict[str, Any]:
    from fleetnas.predict.metrics import kendall_tau_b

    common = set.intersection(*(set(t) for t in tables.values()))
    keys = sorted(common)
    ratios = {}
    for name, (fp, i8) in PAIRS.items():
        r = np.array([tables[i8][k] / tables[fp][k] for k in keys])
        ratios[name] = {
            "designs": len(r),
            "median": float(np.median(r)),
            "p10": float(np.percentile(r, 10)),
            "p90": float(np.percentile(r, 90)),
            "min": float(r.min()),
            "max": float(r.max()),
            "int8_faster_share": float((r < 1).mean()),
        }
    taus = []
    for a, b in itertools.combinations(PAIRS, 2):
        fa = [tables[PAIRS[a][0]][k] for k in keys]
        fb = [tables[PAIRS[b][0]][k] for k in keys]
        ja = fa + [tables[PAIRS[a][1]][k] for k in keys]
        jb = fb + [tables[PAIRS[b][1]][k] for k in keys]
        taus.append(
            {
                "pair": f"{a} / {b}",
                "tau_fp32": kendall_tau_b(fa, fb),
                "tau_joint": kendall_tau_b(ja, jb),
            }
        )
    return {"designs": len(keys), "ratios": ratios, "kendall": taus}


def fleet_of(tables: dict[str, dict[bytes, float]]) -> Any:
    from fleetnas.devices import Device
    from fleetnas.devices.catalog import get_catalog_device
    from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit

    def b(ms: float, mj: float | None = None, label: str | None = None) -> tuple[Budget, ...]:
        lab = label or f"{ms:g}ms"
        return (Budget(Limit(value=ms), None if mj is None else Limit(value=mj), lab),)

    devs = []
    for name, (fp, i8) in PAIRS.items():
        qs = np.quantile(list(tables[fp].values()), STACK_QUANTILES)
        budgets = tuple(bb for q in qs for bb in b(round(float(q), 4)))
        spec = f"ptable:fp32={fp},int8={i8}"
        dev = Device(name, "local_runtime", {"runtime": RUNTIME[name]}, measurer=spec)
        devs.append(FleetDevice(dev, budgets))
    for name, spec in SIMS.items():
        fam = spec.split("family=")[1].split(",")[0]
        devs.append(FleetDevice(Device(name, fam, measurer=spec), b(SIM_BUDGETS[name])))
    for name, ms in HELP.items():
        devs.append(FleetDevice(get_catalog_device(name), b(ms)))
    bf = get_catalog_device("bitfusion")
    budgets = tuple(
        Budget(Limit(value=ms), Limit(value=mj), f"{ms:g}ms+{mj:g}mJ")
        for ms, mj in BITFUSION_BUDGETS
    )
    devs.append(FleetDevice(bf, budgets))
    return Fleet("compression-bench", devs, source="benchmark")


def truth(planner: Any, store: Any, fleet: Any, entries: list[dict[str, Any]]) -> None:
    """Per entry: the best accuracy among the device's candidates whose true value meets the
    budget (uncharged), the regret, and whether the returned design's true value breaks it."""
    from fleetnas.fleet.compression import device_space, measurer_spec, policy_summary
    from fleetnas.measure import get_measurer

    for fd in fleet:
        dev = fd.device
        sp = planner.space_plan(device_space(dev, planner.config))
        spec = measurer_spec(dev)
        m = get_measurer(spec, store, None if spec.startswith("ptable") else dev)
        cand, acc, _ = sp.pool(m)
        if hasattr(m, "admissible"):
            keep = m.admissible(sp.space, cand)
            cand, acc = cand[keep], acc[keep]
        metrics = ("latency", "energy") if sp.space.name == "apq" else ("latency",)
        res = m.measure(sp.space, cand, metrics)
        lat = res["latency"]
        en = res["energy"] if "energy" in res.values else None
        index = {sp.space.format(a): i for i, a in enumerate(cand)}
        for e in entries:
            if e["device"] != dev.name:
                continue
            lb = e["budget"]["latency_ms"]
            eb = e["budget"]["energy_mj"]
            ok = np.isfinite(lat) & (lat <= lb)
            if eb is not None and en is not None:
                ok &= en <= eb
            best = float(acc[ok].max()) if ok.any() else None
            j = int(np.flatnonzero(ok)[np.argmax(acc[ok])]) if ok.any() else None
            oracle_policy = None
            if j is not None and hasattr(sp.space, "precisions"):
                oracle_policy = policy_summary(sp.space, cand[j], {})["precision"]
            i = index.get(e["design"]) if e["design"] else None
            got = float(acc[i]) if i is not None else None
            viol = bool(i is not None and (lat[i] > lb or (eb is not None and en[i] > eb)))
            e["truth"] = {
                "oracle_accuracy": best,
                "regret_pp": None if best is None or got is None else best - got,
                "violation": viol,
                "candidates": len(cand),
                "oracle_policy": oracle_policy,
            }


def int8_wins(tables: dict[str, dict[bytes, float]], e: dict[str, Any]) -> bool | None:
    """Whether int8 is faster than fp32 on the entry's architecture on its stack."""
    from fleetnas.spaces import get_space

    if e["device"] not in PAIRS or not e["design"]:
        return None
    sp = get_space("nb201+q")
    base = sp.split(sp.parse(e["design"])[None])[0][0].tobytes()
    fp, i8 = PAIRS[e["device"]]
    return tables[i8][base] < tables[fp][base]


def row_of(tables: dict[str, dict[bytes, float]], e: dict[str, Any]) -> dict[str, Any]:
    """One entry of the results: chosen policy, proxies, numbers, and the truth's check."""
    c = e.get("compression") or {}
    t = e.get("truth") or {}
    return {
        "entry": e["key"],
        "device": e["device"],
        "family": e["family"],
        "space": e.get("space"),
        "status": e["status"],
        "design": e["design"],
        "precision": c.get("precision", "bits" if e.get("space") == "apq" else None),
        "widths": c.get("widths"),
        "int8": c.get("int8"),
        "pruned": c.get("pruned"),
        "accuracy": (e.get("predicted") or {}).get("accuracy"),
        "accuracy_source": e.get("accuracy_source"),
        "measured_ms": (e.get("measured") or {}).get("latency_ms"),
        "measured_mj": (e.get("measured") or {}).get("energy_mj"),
        "budget_ms": e["budget"]["latency_ms"],
        "budget_mj": e["budget"]["energy_mj"],
        "measurements": e["measurements"],
        "regret_pp": t.get("regret_pp"),
        "violation": t.get("violation"),
        "int8_faster_on_design": int8_wins(tables, e),
        "oracle_policy": t.get("oracle_policy"),
        "calibration": c.get("calibration"),
        "proxy": e.get("proxy"),
    }


def summarize(rows: list[dict[str, Any]], plan_s: float) -> dict[str, Any]:
    """Violations (true and measured), regret, policy agreement and measurements of a plan."""
    measured = [r for r in rows if r["status"] == "ok"]
    violations = sum(1 for r in rows if r["violation"]) + sum(
        1
        for r in measured
        if r["measured_ms"] > r["budget_ms"]
        or (r["budget_mj"] is not None and r["measured_mj"] > r["budget_mj"])
    )
    agree = [r["precision"] == r["oracle_policy"] for r in rows if r["oracle_policy"]]
    out: dict[str, Any] = {
        "entries": rows,
        "plan_s": plan_s,
        "violations": violations,
        "ok": len(measured),
        "policies_chosen": sorted({str(r["precision"]) for r in rows}),
        "policy_matches_oracle": f"{sum(agree)}/{len(agree)}",
    }
    for part, sel in (
        ("stacks", [r for r in rows if r["device"] in PAIRS]),
        ("all", rows),
    ):
        reg = [r["regret_pp"] for r in sel if r["regret_pp"] is not None]
        ag = [r["precision"] == r["oracle_policy"] for r in sel if r["oracle_policy"]]
        meas = [r["measurements"] for r in sel]
        out[part] = {
            "entries": len(sel),
            "regret_mean": float(np.mean(reg)) if reg else None,
            "regret_max": float(np.max(reg)) if reg else None,
            "policy_matches": f"{sum(ag)}/{len(ag)}",
            "measurements_mean": float(np.mean(meas)) if meas else None,
            "measurements_max": int(np.max(meas)) if meas else None,
            "violations": sum(1 for r in sel if r["violation"])
            + sum(1 for r in sel if r["status"] == "ok" and r["measured_ms"] > r["budget_ms"]),
        }
    return out


def main() -> None:
    from fleetnas.data import import_all, import_table, read_table
    from fleetnas.fleet import PlanConfig, plan_fleet
    from fleetnas.fleet.compression import DEFAULT_CAP, CompressionPlanner
    from fleetnas.fleet.compression_proxy import proxies_for
    from fleetnas.paths import data_dir
    from fleetnas.store import open_store

    t_all = time.perf_counter()
    env = environment(threads=1)
    frame = read_table(STACKS, space="nb201")
    with tempfile.TemporaryDirectory() as tmp, open_store(f"{tmp}/bench.db") as store:
        import_all(store, data_dir(), parts=["help-nasbench201", "nats"])
        import_table(store, STACKS, space="nb201")
        tables = stack_table(store)
        p1 = part1(tables)
        fleet = fleet_of(tables)
        runs = {}
        for est, cap in itertools.product(ESTIMATES, (None, SMALL_CAP)):
            devices = [fd.device for fd in fleet]
            cfg = PlanConfig(space="nb201+q", truth=False, max_measurements=cap)
            planner = CompressionPlanner(
                cfg, store, reuse=False, devices=devices, estimate=est, held_out_family=True
            )  # reuse=False: each estimate measures as on a clean store
            t0 = time.perf_counter()
            key = est if cap is None else f"{est}-cap{cap}"
            run = plan_fleet(fleet, cfg, store, name=f"bench-{key}", planner=planner, fresh=True)
            plan_s = time.perf_counter() - t0
            truth(planner, store, fleet, run.entries)
            runs[key] = summarize([row_of(tables, e) for e in run.entries], plan_s)
            runs[key]["cap"] = cap or DEFAULT_CAP
            held = {
                fd.device.name: [s.device for s in proxies_for(fd.device, planner.sources, True)]
                for fd in fleet
                if fd.device.name in PAIRS
            }
    apq_rows = [r for r in runs["per-design"]["entries"] if r["space"] == "apq"]
    res = {
        "environment": env,
        "stacks_table": {"file": str(STACKS.relative_to(ROOT)), "rows": len(frame)},
        "monotonicity": p1,
        "plan": runs["per-design"],
        "baseline": runs["one-factor"],
        "small_cap": {est: runs[f"{est}-cap{SMALL_CAP}"] for est in ESTIMATES},
        "held_out_proxies": held,
        "protocol": {
            "stack_budgets": f"quantiles {list(STACK_QUANTILES)} of each stack's fp32 table",
            "parameters": "none tuned: probes per precision (2) and the default cap (12, "
            "probes included) are the previous release's; the matching rule (smallest log "
            "residual on the probes, the simulator on a tie) has no parameter; the budget "
            "quantiles were fixed before the first run",
            "proxies": "a stack's table proxies are the fleet's table devices of another "
            "runtime family (the HELP fp32 tables and the other runtimes' stacks), never "
            "itself nor its other thread count; the HELP devices pixel2 (HELP's own column) "
            "and raspi4 (HW-NAS-Bench's) may use each other's fp32 table (other hardware, "
            "other source); simulated devices may use any table that holds all their "
            "candidates of a precision (HELP's fp32 tables)",
        },
        "apq": {
            "approach1": apq_rows,
            "approach2": "not run in this script: Approach 2 on APQ's space (an optimizer "
            "network trained on synthetic bit-flexible accelerators, BitFusion held out) is "
            "benchmarks/apq_l2o.py, results in apq_l2o.md",
        },
        "wall_s": time.perf_counter() - t_all,
    }
    write_results(OUT, res, markdown(res))
    print(markdown(res))


def _f(x: Any, nd: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def markdown(res: dict[str, Any]) -> str:
    m = res["monotonicity"]
    p = res["plan"]
    lines = [
        "# Compression chosen per device (issue 17 items 3 and 4)",
        "",
        f"Stacks table `{res['stacks_table']['file']}` ({res['stacks_table']['rows']} rows, "
        f"{m['designs']} designs on every stack), read through the exchange reader. One thread, "
        f"load before {res['environment']['load_before']}. Accuracy of compressed designs is "
        "**modelled** (`accuracy_source`), uncompressed NB201 designs take the table's (`table`).",
        "",
        "## int8 / fp32 latency ratio per design (measured)",
        "",
        "| stack | designs | median | p10..p90 | min..max | int8 faster |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in m["ratios"].items():
        lines.append(
            f"| {name} | {r['designs']} | {r['median']:.3f} | {r['p10']:.3f}..{r['p90']:.3f} | "
            f"{r['min']:.3f}..{r['max']:.3f} | {100 * r['int8_faster_share']:.0f} % |"
        )
    lines += [
        "",
        "Kendall's tau of the latency order between stacks, fp32 designs only vs the joint "
        "designs (each design at fp32 and int8):",
        "",
        "| pair | tau fp32 | tau joint |",
        "|---|---|---|",
    ]
    for t in m["kendall"]:
        lines.append(f"| {t['pair']} | {t['tau_fp32']:.3f} | {t['tau_joint']:.3f} |")
    lines += [
        "",
        "## Per-design estimate vs one factor per precision (same run, same fleet and store)",
        "",
        "Held out: a stack's table proxies come from the fleet's table devices of another "
        "runtime family, never itself nor its other thread count: "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in res["held_out_proxies"].items())
        + f". In full: {res['protocol']['proxies']}. Budgets of a stack: "
        f"{res['protocol']['stack_budgets']}. Parameters: "
        f"{res['protocol']['parameters']}.",
        "",
        "| estimate | part | entries | violations | regret mean pp | regret max pp | "
        "policy = truth's | meas. mean | meas. max |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    small = res.get("small_cap", {})
    rows = [("per-design (new default)", res["plan"]), ("one-factor (baseline)", res["baseline"])]
    rows += [(f"{est}, cap {p['cap']}", p) for est, p in small.items()]
    for label, run in rows:
        for part in ("stacks", "all"):
            q = run[part]
            lines.append(
                f"| {label} | {part} | {q['entries']} | {q['violations']} | "
                f"{_f(q['regret_mean'], 2)} | {_f(q['regret_max'], 2)} | {q['policy_matches']} | "
                f"{_f(q['measurements_mean'], 1)} | {q['measurements_max']} |"
            )
    lines += [
        "",
        "`per-design`: per precision group the planner matches the simulator and the other "
        "runtime families' measured tables at that precision on the group's probes (and, for "
        "later budgets, on every design the device measured already), then verifies the best "
        "candidate of each policy within the cap (probes counted). `one-factor`: the previous "
        "release, the simulator scaled by one factor per precision, one verification over the "
        "joint front (its probes now counted against the cap as well). `cap 6`: both again "
        "under `--max-measurements 6` (probes included). The `proxies` column says which "
        "proxy each precision group used.",
    ]
    for label, key in (("per-design (new default)", "plan"), ("one-factor (baseline)", "baseline")):
        p = res[key]
        lines += [
            "",
            f"## The plan, {label} (`plan --space nb201+q`, {p['plan_s']:.1f} s, {p['ok']} ok "
            f"entries, **{p['violations']} violations**)",
            "",
            "| entry | policy | accuracy | source | measured ms (mJ) | budget ms (mJ) | "
            "meas. | regret pp | best policy (truth) | int8 faster on this design | proxies |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in p["entries"]:
            mj = f" ({r['measured_mj']:.2f})" if r["measured_mj"] is not None else ""
            bj = f" ({r['budget_mj']:g})" if r["budget_mj"] is not None else ""
            lines.append(
                f"| {r['entry']} | {r['precision']} | {_f(r['accuracy'], 2)} | "
                f"{r['accuracy_source']} | {_f(r['measured_ms'])}{mj} | {r['budget_ms']:g}{bj} | "
                f"{r['measurements']} | {_f(r['regret_pp'], 2)} | {_f(r['oracle_policy'])} | "
                f"{_f(r['int8_faster_on_design'])} | {_f(r.get('proxy'))} |"
            )
        lines += [
            "",
            f"Policy = the truth's (the most accurate candidate whose true latency meets the "
            f"budget, from the full tables / simulator) on {p['policy_matches_oracle']} "
            f"compressed-space entries; policies chosen: {', '.join(p['policies_chosen'])}.",
        ]
    lines += [
        "",
        "## APQ's space",
        "",
        "Approach 1 on BitFusion: the BitFusion rows above (calibrated bit-operations proxy, "
        "verified on APQ's table; regret against the best of the same 20,000-design sample).",
        f"Approach 2: {res['apq']['approach2']}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    if "--markdown-only" in sys.argv:  # re-render the committed JSON
        import json

        res = json.loads(OUT.with_suffix(".json").read_text())
        OUT.with_suffix(".md").write_text(markdown(res) + "\n")
    else:
        main()
