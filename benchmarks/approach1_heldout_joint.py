"""Approach 1 held out over compressed designs (issue 17 item 3): split ``e``, joint tables.

Each target is one of this machine's runtime stacks as a *joint* table: every NAS-Bench-201
design of ``benchmarks/results/stacks/nb201.csv`` at fp32 and at int8 (``nb201+q``, width 1),
so twice the designs, replayed through the ``ptable`` measurer under a new name (``user-<stack>``,
no spec features, each distinct design charged once); its five budgets (10/30/50/70/90 % latency
quantiles of the joint table) share one session. The design set is the target's joint designs
(as split ``d`` chooses among a table's measured designs). Accuracy: NATS-Bench CIFAR-10 for the
fp32 designs (``table``), the documented modelled accuracy for int8 (``modelled``,
:class:`~fleetnas.predict.compressed_accuracy.ModelledAccuracy`); the truth of a budget is the
most accurate joint design whose measured latency meets it.

Held out: the pool never holds a stack of the target's runtime family (ONNX Runtime at 1 and 2
threads are twins; LiteRT; OpenVINO). Pools, all in the same run:

- ``stacks+help`` (the headline, fixed before the first run): the other runtime families'
  joint tables plus HELP's 27 architecture-only columns as joint proxies that price a design's
  int8 version like its fp32 one (they know no precision; the blend's evidence decides where
  they help);
- ``stacks``: the other families' joint tables alone;
- ``help``: HELP's columns alone, i.e. Approach 1 with no precision-aware proxy (the baseline).

Method: ``optimize_device`` with its default settings (the guided blend search, cap 10 extended
to 20 while the expected gain stays at least 10x ``min_gain``); those settings were chosen on
splits (b) and (c) of ``benchmarks/approach1_heldout.py`` (HELP, leave-hardware-out and
leave-family-out); nothing was tuned on this split. Also reported: Kendall's tau between the
stacks over the fp32 designs and over the joint designs (as ``compression_plan.py``).

Writes ``benchmarks/results/approach1_heldout_joint.{json,md}``. From the repository root:
``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/approach1_heldout_joint.py``.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, write_results
from approach1_heldout import QUANTILES, summarize
from approach1_heldout_report import fmt

ROOT = Path(__file__).resolve().parents[1]
STACKS = ROOT / "benchmarks" / "results" / "stacks" / "nb201.csv"
OUT = ROOT / "benchmarks" / "results" / "approach1_heldout_joint"
#: stack -> (runtime family, {precision: stored device})
JOINT = {
    "ort-t1": ("onnxruntime", {"fp32": "local-ort-t1-b1-fp32-optall",
                               "int8": "local-ort-t1-b1-int8-optall"}),
    "ort-t2": ("onnxruntime", {"fp32": "local-ort-t2-b1-fp32-optall",
                               "int8": "local-ort-t2-b1-int8-optall"}),
    "litert-t1": ("litert", {"fp32": "local-litert-t1-b1-fp32",
                             "int8": "local-litert-t1-b1-int8"}),
    "ov-t1": ("openvino", {"fp32": "local-ov-t1-b1-fp32-latency",
                           "int8": "local-ov-t1-b1-int8-latency"}),
}  # fmt: skip
POOLS = ("stacks+help", "stacks", "help")
HEADLINE = "stacks+help"


class JointBench:
    """The store (HELP, NATS, the stacks table), the joint designs, their accuracy and every
    stack's joint latencies."""

    def __init__(self) -> None:
        from fleetnas.data import import_help, import_nats, import_table
        from fleetnas.devices.catalog import help_devices
        from fleetnas.fleet import PlanConfig
        from fleetnas.fleet.compression import SpacePlan
        from fleetnas.proxy.monotonicity import joint_values
        from fleetnas.spaces import get_space
        from fleetnas.store import open_store

        self.store = open_store("memory://")
        import_help(self.store, None, "nb201")
        import_nats(self.store, None)
        import_table(self.store, STACKS, space="nb201")
        self.space = get_space("nb201+q")
        self.archs, vals = joint_values(
            self.store, self.space, {k: t for k, (_, t) in JOINT.items()}
        )
        self.lat = {k: vals[:, j] for j, k in enumerate(JOINT)}
        self.key = {a.tobytes(): i for i, a in enumerate(self.archs)}
        from fleetnas.measure import get_measurer

        plan = SpacePlan("nb201+q", PlanConfig(space="nb201+q"), self.store)
        first = next(iter(JOINT.values()))[1]
        spec = "ptable:" + ",".join(f"{p}={d}" for p, d in first.items())
        cand, acc, labels = plan.pool(get_measurer(spec, self.store, None))
        scored = {a.tobytes(): (x, lab) for a, x, lab in zip(cand, acc, labels, strict=True)}
        self.acc = np.array([scored[a.tobytes()][0] for a in self.archs], dtype=float)
        self.source = np.array([scored[a.tobytes()][1] for a in self.archs])
        self.help_names = [d.name for d in help_devices("nb201")]
        base = self.space.split(self.archs)[0]  # type: ignore[attr-defined]
        self.help_lat = {}
        nb = get_space("nb201")
        for name in self.help_names:
            a, v = self.store.get_measurements(nb, name, "latency", statistic="mean")
            table = {r.tobytes(): float(x) for r, x in zip(a, v, strict=True)}
            self.help_lat[name] = np.array([table.get(b.tobytes(), np.nan) for b in base])

    def rows(self, archs: np.ndarray) -> np.ndarray:
        """Positions of ``archs`` in :attr:`archs` (-1: not a joint design)."""
        a = self.space.canonicalize(self.space.check(archs))
        return np.array([self.key.get(r.tobytes(), -1) for r in a])

    def lookup(self, values: np.ndarray):
        def fn(archs: np.ndarray) -> np.ndarray:
            i = self.rows(archs)
            out = np.full(len(i), np.nan)
            out[i >= 0] = values[i[i >= 0]]
            return out

        return fn

    def pool(self, target: str, kind: str) -> Any:
        from fleetnas.devices import Device
        from fleetnas.proxy import ProxyPool
        from fleetnas.proxy.pool import ProxyEntry

        run = JOINT[target][0]
        entries = []
        if kind in ("stacks+help", "stacks"):
            for k, (r, _) in JOINT.items():
                if r != run:
                    dev = Device(k, "local_runtime", {"runtime": r})
                    entries.append(ProxyEntry(k, self.lookup(self.lat[k]), device=dev,
                                              per_design=True))  # fmt: skip
        if kind in ("stacks+help", "help"):
            for name in self.help_names:
                if np.all(np.isfinite(self.help_lat[name])):
                    entries.append(ProxyEntry(name, self.lookup(self.help_lat[name]),
                                              per_design=True))  # fmt: skip
        return ProxyPool(self.space, entries)


def run_target(jb: JointBench, target: str, kind: str) -> list[dict[str, Any]]:
    """Approach 1 (default settings) on one joint target, its five budgets in one session."""
    from fleetnas.devices import Device
    from fleetnas.errors import FleetnasError
    from fleetnas.measure import get_measurer
    from fleetnas.proxy import Workspace, optimize_device
    from fleetnas.proxy.session import MeasurerSession

    tables = JOINT[target][1]
    spec = "ptable:" + ",".join(f"{p}={d}" for p, d in tables.items())
    measurer = get_measurer(spec, jb.store, None)
    session = MeasurerSession(measurer, jb.space, ("latency",), ledger=False)
    acc_fn = jb.lookup(jb.acc)
    ws = Workspace(jb.space, acc_fn, jb.pool(target, kind), candidates=jb.archs)
    lat = jb.lat[target]
    budgets = np.quantile(lat, QUANTILES)
    dev = Device(name=f"user-{target}")
    rows = []
    for qi, budget in enumerate(budgets):
        ok = lat <= budget
        oracle = float(jb.acc[ok].max())
        before = session.cost.measurements
        row = {"split": "e", "pool": kind, "target": target, "q": QUANTILES[qi],
               "budget": float(budget)}  # fmt: skip
        try:
            r = optimize_device(ws, session, float(budget), target_device=dev)
        except FleetnasError as exc:
            rows.append(row | {"status": "failed", "violation": False, "regret": None,
                               "measurements": session.cost.measurements - before,
                               "reason": str(exc)})  # fmt: skip
            continue
        if r.registered:
            ws.pool = ws.pool.without(r.registered)
            ws.forget(r.registered)
        i = int(jb.rows(np.asarray(r.arch)[None])[0]) if r.arch is not None else -1
        good = r.status == "ok" and i >= 0
        rows.append(
            row
            | {
                "status": r.status,
                "violation": bool(good and lat[i] > budget),
                "regret": oracle - float(jb.acc[i]) if good else None,
                "measurements": int(r.measurements),
                "precision": _precision(jb, i) if i >= 0 else None,
                "oracle_precision": _precision(jb, int(np.flatnonzero(ok)[np.argmax(jb.acc[ok])])),
                "accuracy_source": str(jb.source[i]) if i >= 0 else None,
                "proxy": r.proxy,
                "cap": r.cap,
                "cap_extended": r.cap_extended,
                "unmeasurable": r.unmeasurable,
                "fell_back": r.fell_back,
            }
        )
    return rows


def _precision(jb: JointBench, i: int) -> str:
    from fleetnas.fleet.compression import policy_summary

    return str(policy_summary(jb.space, jb.archs[i], {})["precision"])


def monotonicity(jb: JointBench) -> list[dict[str, Any]]:
    """Kendall's tau between every pair of stacks, fp32 designs only vs the joint designs."""
    from fleetnas.predict.metrics import kendall_tau_b

    fp32 = np.array([_precision(jb, i) == "fp32" for i in range(len(jb.archs))])
    out = []
    for a, b in itertools.combinations(JOINT, 2):
        out.append(
            {
                "pair": f"{a} / {b}",
                "tau_fp32": kendall_tau_b(jb.lat[a][fp32], jb.lat[b][fp32]),
                "tau_joint": kendall_tau_b(jb.lat[a], jb.lat[b]),
            }
        )
    return out


def main() -> None:
    t0 = time.perf_counter()
    env = environment(threads=1)
    jb = JointBench()
    res: dict[str, Any] = {
        "environment": env,
        "stacks_table": str(STACKS.relative_to(ROOT)),
        "joint_designs": len(jb.archs),
        "monotonicity": monotonicity(jb),
        "pools": {},
        "held_out": {t: [k for k, (r, _) in JOINT.items() if r != JOINT[t][0]] for t in JOINT},
        "headline": HEADLINE,
        "parameters": "optimize_device defaults, chosen on splits (b) and (c) of "
        "approach1_heldout.py (HELP leave-hardware-out / leave-family-out); nothing tuned "
        "on this split; the headline pool was fixed before the first run",
    }
    for kind in POOLS:
        rows: list[dict[str, Any]] = []
        t1 = time.perf_counter()
        for target in JOINT:
            rows += run_target(jb, target, kind)
        s = summarize(rows)
        agree = [r["precision"] == r["oracle_precision"] for r in rows if r.get("precision")]
        s["policy_matches"] = f"{sum(agree)}/{len(agree)}"
        s["per_target"] = {
            t: float(np.mean([r["regret"] for r in rows if r["target"] == t and r["regret"]
                              is not None] or [np.nan]))
            for t in JOINT
        }  # fmt: skip
        s["wall_s"] = time.perf_counter() - t1
        res["pools"][kind] = {"summary": s, "rows": rows}
        print(f"{kind}: {s.get('regret_mean')} pp, {s['violations']} violations, "
              f"{s['measurements_mean']:.1f} meas.", flush=True)  # fmt: skip
    res["wall_s"] = time.perf_counter() - t0
    write_results(OUT, res, markdown(res), default=float)
    print(markdown(res))


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "# Approach 1 held out over compressed designs (issue 17 item 3, split e)",
        "",
        f"Targets: this machine's four runtime stacks as joint tables ({res['joint_designs']} "
        f"designs: each NAS-Bench-201 design of `{res['stacks_table']}` at fp32 and int8), "
        "five budgets each (10/30/50/70/90 % quantiles of the joint table), one session per "
        "target. Held out: no stack of the target's runtime family in the pool ("
        + "; ".join(f"{t}: {', '.join(v)}" for t, v in res["held_out"].items())
        + "). HELP's 27 columns join as architecture-only proxies (a design's int8 version "
        f"priced like its fp32 one). Parameters: {res['parameters']}. Headline: the "
        f"`{res['headline']}` pool. One thread, load before {res['environment']['load_before']}.",
        "",
        "| pool | entries | violations | failed | meas. mean | meas. max | cap exceeded | "
        "regret mean pp | p90 | max | policy = truth's | q10 | q30 | q50 | q70 | q90 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, p in res["pools"].items():
        s = p["summary"]
        q = s["per_quantile"]
        name = f"**{kind}** (headline)" if kind == res["headline"] else kind
        lines.append(
            f"| {name} | {s['entries']} | {s['violations']} | {s['failed']} | "
            f"{s['measurements_mean']:.1f} | {s['measurements_max']} | {s['cap_exceeded']} | "
            f"{fmt(s.get('regret_mean'))} | {fmt(s.get('regret_p90'))} | "
            f"{fmt(s.get('regret_max'))} "
            f"| {s['policy_matches']} | " + " | ".join(fmt(q[str(x)]) for x in QUANTILES) + " |"
        )
    lines += ["", "Regret mean per target (pp):", "", "| pool | " + " | ".join(
        res["pools"][POOLS[0]]["summary"]["per_target"]) + " |",
        "|---|" + "---:|" * len(JOINT)]  # fmt: skip
    for kind, p in res["pools"].items():
        pt = p["summary"]["per_target"]
        lines.append(f"| {kind} | " + " | ".join(fmt(v) for v in pt.values()) + " |")
    lines += [
        "",
        "Kendall's tau of the latency order between stacks, fp32 designs only vs the joint "
        "designs:",
        "",
        "| pair | tau fp32 | tau joint |",
        "|---|---|---|",
    ]
    for t in res["monotonicity"]:
        lines.append(f"| {t['pair']} | {t['tau_fp32']:.3f} | {t['tau_joint']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
