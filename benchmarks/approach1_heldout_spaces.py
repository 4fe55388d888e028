"""Approach 1 held out (issue 14) on the FBNet and OFA-MobileNetV3 spaces.

The protocol of ``approach1_heldout.py`` (NAS-Bench-201) where HELP's data allows it: every
target is a user's device under a new name (``user-<column>``, no spec features) replayed from
its HELP table, each distinct design charged once; its five budgets (10/30/50/70/90 % latency
quantiles of the target over the table) share one session; the pool holds none of the target's
twins. Both spaces are far too large to enumerate, so the candidate set is HELP's finite table
of 5,000 designs (the pool's proxies are exact lookups over it, the target is a
:class:`~fleetnas.proxy.ReplaySession` over it) and a design outside it is unmeasurable.

- ``ofa``: OFA-MobileNetV3, 12 GPU settings (2080ti, titan_rtx, titanxp, v100 x batch 1/32/64).
  Accuracy: OFA's released ImageNet accuracy predictor on every subnet (**predicted** top-1 %,
  not a measured accuracy; the regret is in points of that prediction). Splits: ``hw``
  leave-hardware-out (target = one GPU at one batch size; none of that GPU's batch sizes in the
  pool, so the pool is the other 3 GPUs' 9 settings) and ``batch`` leave-batch-regime-out (also
  no setting at the target's batch size: the other 3 GPUs at the other 2 batch sizes, 6).
- ``fbnet``: FBNet, HELP's 27 settings (the NB201 devices, GPUs at batch 1/32/64). HELP's data
  holds no accuracy for these designs and fleetnas has no FBNet accuracy predictor, so no
  accuracy regret is reported. To measure the latency side (violations, failures, measurements,
  the cap), the search maximizes the design's FLOPs, a stated surrogate objective and not an
  accuracy; how far the returned design's FLOPs fall short of the best table design within
  the budget is reported as ``FLOPs shortfall %``. Splits ``a`` (leave-source-out: targets the
  four HW-NAS-Bench columns, pool HELP's 23 own), ``b`` (leave-hardware-out) and ``c``
  (leave-family-out), as on NAS-Bench-201.

No parameter is tuned here: every method runs with the settings chosen on NAS-Bench-201's splits
(b) and (c) (``approach1_heldout.md``); all splits here are reported as held out. Methods and
anytime caps are those of ``approach1_heldout.py`` (``plan`` excepted: a plan does not take a
non-enumerable space's tables as proxies).

Run from the repository root (``--quick``: fewer targets, caps 5/10):
``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/approach1_heldout_spaces.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, load_average, stack_medians, write_results
from approach1_heldout import (
    CAPS,
    HWNAS,
    QUANTILES,
    RESULTS,
    Target,
    _json_default,
    bench,
    held_out,
    methods,
)
from approach1_heldout_report import fmt, split_section

OFA_GPUS = ("2080ti", "titan_rtx", "titanxp", "v100")
#: families of HELP's FBNet settings (GPU batch sizes 1/32/64 instead of NAS-Bench-201's 256)
FB_FAMILY = {
    **{f"{g}_{b}": "gpu" for g in ("1080ti", "2080ti", "titan_rtx", "titanx", "titanxp")
       for b in (1, 32, 64)},
    **{d: "xeon" for d in ("gold_6226", "gold_6240", "silver_4114", "silver_4210r")},
    **{d: "phone" for d in ("pixel2", "pixel3", "samsung_a50", "samsung_s7", "essential_ph_1")},
    "raspi4": "embedded",
    "eyeriss": "accelerator",
    "fpga": "accelerator",
}  # fmt: skip
QUICK = {
    "hw": ("2080ti_1", "v100_64"),
    "batch": ("titan_rtx_32",),
    "a": ("fpga", "pixel3"),
    "b": ("2080ti_32", "gold_6226", "pixel2"),
    "c": ("titanx_64", "silver_4210r", "samsung_s7"),
}
SPACE_SPLITS = {"ofa": ("hw", "batch", "stacks"), "fbnet": ("a", "b", "c")}


class TableBench:
    """One space's HELP table: the 5,000 designs as the candidate set, every setting's latency
    over them, the objective (``acc``, aligned with the table's rows) and HELP's references."""

    def __init__(self, key: str) -> None:
        from fleetnas.data.help import read_archs, read_latencies, read_reference_indices
        from fleetnas.devices.catalog import get_catalog_device, help_file_names
        from fleetnas.proxy import ProxyEntry

        self.key = key
        self.space, archs = read_archs(None, key)
        self.archs = self.space.check(archs)
        self._rows = {a.tobytes(): i for i, a in enumerate(self.archs)}
        if len(self._rows) != len(self.archs):
            raise ValueError(f"HELP's {key} table repeats a design")
        self.devices = list(help_file_names(key))
        self.lat = {d: read_latencies(None, key, d) for d in self.devices}
        self.ref = self.archs[read_reference_indices(None, key)]
        if key == "ofa":
            from fleetnas.predict import OFAAccuracyPredictor

            self.objective = "OFA's accuracy predictor (predicted ImageNet top-1 %)"
            self.acc = OFAAccuracyPredictor.from_data(None, percent=True).predict(self.archs)
        else:
            self.objective = "FLOPs (surrogate objective; no FBNet accuracy in the data)"
            self.acc = np.asarray(self.space.flops(self.archs), dtype=float)
        self.acc = np.asarray(self.acc, dtype=float)
        self.entries = [
            ProxyEntry(
                name=d,
                latency=self._lookup(self.lat[d]),
                device=get_catalog_device(d),
                source="table",
            )
            for d in self.devices
        ]

    def codes(self, archs: np.ndarray) -> np.ndarray:
        """Rows of ``archs`` in the table (a design outside it is an error)."""
        a = self.space.check(archs)
        try:
            return np.array([self._rows[r.tobytes()] for r in a], dtype=np.int64)
        except KeyError:
            raise ValueError(f"a design outside HELP's {self.key} table was asked for") from None

    def _lookup(self, values: np.ndarray) -> Any:
        return lambda archs: values[self.codes(archs)]

    def accuracy(self, archs: np.ndarray) -> np.ndarray:
        return self.acc[self.codes(archs)]

    def workspace(self, names: list[str], candidates: np.ndarray | None = None) -> Any:
        from fleetnas.proxy import ProxyPool, Workspace

        entries = [e for e in self.entries if e.name in names]
        cand = self.archs if candidates is None else candidates
        return Workspace(self.space, self.accuracy, ProxyPool(self.space, entries), candidates=cand)


class TableTarget(Target):
    """A held-out target replayed over the finite table (designs outside it unmeasurable)."""

    def session(self, b: TableBench) -> Any:  # type: ignore[override]
        from fleetnas.proxy import ReplaySession

        return ReplaySession(b.space, self.name, self.lat, archs=b.archs)


def gpu_of(name: str) -> str:
    return name.rsplit("_", 1)[0]


def batch_of(name: str) -> str:
    return name.rsplit("_", 1)[1]


def pool_of(b: TableBench, split: str, target: str) -> list[str]:
    """The HELP settings allowed in ``target``'s pool under ``split``."""
    if split == "hw":
        return [d for d in b.devices if gpu_of(d) != gpu_of(target)]
    if split == "batch":
        return [
            d for d in b.devices if gpu_of(d) != gpu_of(target) and batch_of(d) != batch_of(target)
        ]
    if split in ("a", "b"):
        return held_out(split, target, b.devices)
    if split == "c":
        return [d for d in b.devices if FB_FAMILY[d] != FB_FAMILY[target]]
    raise ValueError(split)


def stack_targets(b: TableBench) -> list[Target]:
    """Split ``stacks``: this machine's runtime stacks measured on designs of HELP's table
    (``benchmarks/stacks.py``); each chooses among the designs it measured, the pool is every
    HELP setting (other hardware, other source)."""
    out: list[Target] = []
    for dev, lat in stack_medians(b.space.name, min_designs=50).items():
        col = np.full(len(b.archs), np.nan)
        col[b.codes(b.space.parse_many(list(lat.index)))] = lat.to_numpy()
        out.append(TableTarget(b, "stacks", dev, col, list(b.devices), partial=True))
    return out


def table_targets(b: TableBench, split: str, quick: bool) -> list[Target]:
    if split == "stacks":
        return stack_targets(b)[:1] if quick else stack_targets(b)
    if quick:
        cols = QUICK[split]
    elif split in ("hw", "batch"):
        cols = tuple(b.devices)
    elif split == "a":
        cols = HWNAS
    else:
        cols = tuple(d for d in b.devices if d not in HWNAS)
    return [TableTarget(b, split, c, b.lat[c], pool_of(b, split, c)) for c in cols]


def space_methods(quick: bool) -> dict[str, Any]:
    """``approach1_heldout``'s methods less ``plan``."""
    return {k: v for k, v in methods(quick).items() if k != "plan"}


def drop_regret(sres: dict[str, Any]) -> None:
    """FBNet: the objective is FLOPs, not an accuracy, so no regret is reported."""
    for m in sres.get("methods", {}).values():
        for s in [m["summary"], *m["per_target"].values()]:
            for k in ("regret_mean", "regret_p90", "regret_max"):
                s.pop(k, None)
            s["per_quantile"] = dict.fromkeys(s["per_quantile"])
        for cv in m["anytime"].values():
            for k in ("regret_mean", "regret_p90"):
                cv.pop(k, None)
        m["worst"] = []


# ---- report --------------------------------------------------------------------------------------
SPLIT_NAMES = {
    ("ofa", "hw"): "OFA (hw) leave-hardware-out: pool = the other 3 GPUs at every batch size",
    ("ofa", "batch"): "OFA (batch) leave-batch-regime-out: pool = the other 3 GPUs at the other "
    "2 batch sizes",
    ("ofa", "stacks"): "OFA (stacks) this machine's runtime stacks (CPU; ONNX Runtime, OpenVINO), "
    "pool = HELP's 12 GPU settings; each stack chooses among the designs it measured",
    ("fbnet", "a"): "FBNet (a) leave-source-out: HW-NAS-Bench columns, pool = HELP's 23 own "
    "columns",
    ("fbnet", "b"): "FBNet (b) leave-hardware-out: no other batch size or sibling setting",
    ("fbnet", "c"): "FBNet (c) leave-family-out: no device of the target's family",
}


def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# Approach 1 held out on the FBNet and OFA-MobileNetV3 spaces (issue 14)",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores, shared; load {env['load_before'][0]} "
        f"before, {env.get('load_after', ['?'])[0]} after. Python {env['python']}, NumPy "
        f"{env['numpy']}. Total {res.get('total_seconds', 0):.0f} s"
        + (" (**quick mode**: fewer targets, caps 5/10)" if res.get("quick") else "")
        + "."
        + "".join(
            f" Split(s) {', '.join(m['splits'])} of {', '.join(m['spaces'])} re-run later and "
            f"merged ({m.get('seconds', 0):.0f} s, load {m['environment']['load_before'][0]})."
            for m in res.get("merged", [])
        ),
        "",
        "The protocol of `approach1_heldout.md` (NAS-Bench-201) on HELP's FBNet and "
        "OFA-MobileNetV3 tables. Each target is a user's device under a new name "
        "(`user-<column>`, no spec features), replayed from its table with every distinct "
        "design charged; its 5 budgets (10/30/50/70/90 % latency quantiles over the table) share "
        "one session. Neither space can be enumerated: the **candidate set is the table's 5,000 "
        "designs**, the pool's proxies are exact lookups over them and the target answers only "
        "for them. Measurements per entry, probes included (HELP's reference designs of the "
        "space). Methods as in `approach1_heldout.md`: `default` (guided blend search, cap 10 "
        "extended to 20 while the expected gain stays high), `model` (target model), `previous` "
        "(previous release's default, hard cap 10), `front-hindsight` (Algorithm 1's front "
        "variant on the pool proxy best in hindsight, cap 10), `ridge` (ridge on the pool + "
        "verification, cap 10); `plan` is left out (a plan takes no non-enumerable table as a "
        "proxy; it routes such a space to the verified hybrid).",
        "",
        "**No parameter was tuned on these spaces: every method runs with the defaults chosen on "
        "NAS-Bench-201's splits (b) and (c); every split below is reported as held out.**",
        "",
    ]
    for key, sp in res["spaces"].items():
        if key == "ofa":
            lines += [
                "## OFA-MobileNetV3 (HELP `ofa/`, 5,000 subnets x 12 GPU settings)",
                "",
                "Accuracy: **predicted accuracy** from OFA's released accuracy predictor "
                "(`ofa/acc_predictor.pth`, ImageNet top-1 %), used both as the objective and "
                "as the truth of the regret; no measured accuracy of these subnets is public "
                f"here. Predicted accuracy over the table: {sp['objective_range'][0]:.2f} to "
                f"{sp['objective_range'][1]:.2f} %. Regret in points of predicted accuracy.",
                "",
            ]
        else:
            lines += [
                "## FBNet (HELP `fbnet/`, 5,000 designs x 27 settings)",
                "",
                "**No accuracy source exists for FBNet in the data**: HELP's `fbnet/` holds "
                "latencies and op indices only (`metainfo.pt`: dataset, classes, op names), "
                "and fleetnas has no FBNet accuracy predictor. So **no accuracy regret is "
                "reported**. To exercise the latency side of the protocol the search maximizes "
                "the design's FLOPs, a stated surrogate objective (not an accuracy, not a claim "
                "about one): the table reports violations, failures, infeasible entries, the "
                "cap and measurements; the regret columns are empty, and the FLOPs shortfall "
                "of the returned design from the best table design within the budget (% of "
                "it) is in the notes below each table.",
                "",
            ]
        for split, sres in sp["splits"].items():
            lines += [f"### {SPLIT_NAMES[(key, split)]}", ""]
            section = split_section(sres, res["caps"])
            if key == "fbnet":  # no regret to list per target
                section = [ln for ln in section if "per target (regret" not in ln]
                section = [ln for i, ln in enumerate(section) if ln or (i and section[i - 1])]
            lines += section
            if key == "fbnet":
                lines += [
                    "- FLOPs shortfall % (surrogate objective, not accuracy; mean / max): "
                    + ", ".join(
                        f"{name} {fmt(m['flops_shortfall']['mean'], 2)} / "
                        f"{fmt(m['flops_shortfall']['max'], 2)}"
                        for name, m in sres["methods"].items()
                    ),
                    "",
                ]
    lines += ["## Notes", "", *notes(res), ""]
    return "\n".join(lines)


def notes(res: dict[str, Any]) -> list[str]:
    out = [
        "- Parameters: none tuned here; the defaults chosen on NAS-Bench-201's (b) and (c) "
        "(`approach1_heldout.md`) are used unchanged on every split of both spaces."
    ]
    ofa = res["spaces"].get("ofa", {}).get("splits", {})
    reg = {k: v["methods"].get("default", {}).get("summary", {}) for k, v in ofa.items()}
    if reg.get("hw", {}).get("regret_mean") is not None and reg.get("batch"):
        worse = (reg["batch"].get("regret_mean") or 0) > reg["hw"]["regret_mean"] + 1e-9
        out.append(
            "- OFA: holding out the target's batch regime as well as its GPU "
            + ("raises" if worse else "does not raise")
            + f" the default's regret: {fmt(reg['hw']['regret_mean'])} pp on (hw) against "
            f"{fmt(reg['batch'].get('regret_mean'))} pp on (batch) (q10 "
            f"{fmt(reg['hw']['per_quantile']['0.1'])} vs "
            f"{fmt(reg['batch']['per_quantile']['0.1'])}). The regret is in points of OFA's "
            "*predicted* accuracy."
        )
    if "fbnet" in res["spaces"]:
        out.append(
            "- FBNet: FLOPs from fleetnas's `fbnet` space (`SearchSpace.flops`); the search's "
            "stopping rule (`min_gain`, 0.01 % of the objective's range) is scale-free, so the "
            "FLOPs surrogate drives the same code paths as an accuracy would. The measurement "
            "counts depend on the objective (a flatter or steeper front stops sooner or later)."
        )
    infeasible = [
        f"{key} ({split}) {name} {m['summary']['infeasible']}"
        for key, sp in res["spaces"].items()
        for split, sres in sp["splits"].items()
        for name, m in sres["methods"].items()
        if m["summary"].get("infeasible")
    ]
    out.append(
        "- Entries that returned no measured design within the budget (status `infeasible`, "
        "no regret counted): " + (", ".join(infeasible) if infeasible else "none") + "."
    )
    for key, sp in res["spaces"].items():
        for split, sres in sp["splits"].items():
            d = sres["methods"].get("default")
            if d is None:
                continue
            s = d["summary"]
            checks = {
                "0 violations": s["violations"] == 0,
                "measurements mean <= 12": s["measurements_mean"] <= 12,
                "max <= 20": s["measurements_max"] <= 20,
                "no failed entry": s["failed"] == 0,
                "cap never exceeded": s["cap_exceeded"] == 0,
            }
            if key != "fbnet":
                pq = [v for v in s["per_quantile"].values() if v is not None]
                checks |= {
                    "regret mean <= 0.10 pp": s.get("regret_mean", 1) <= 0.10,
                    "p90 <= 0.5 pp": s.get("regret_p90", 1) <= 0.5,
                    "no quantile above 0.5 pp": max(pq, default=1) <= 0.5,
                }
            met = [k for k, v in checks.items() if v]
            missed = [k for k, v in checks.items() if not v]
            out.append(
                f"- {key} ({split}), default, against issue 14's targets: met {', '.join(met)}"
                + (f"; missed {', '.join(missed)}" if missed else "")
                + "."
            )
            for name, m in sres["methods"].items():
                cv = [m["anytime"].get(str(c), {}) for c in res["caps"]]
                metric = "regret_mean" if key != "fbnet" else "measurements_mean"
                vals = [x.get(metric) for x in cv if x.get(metric) is not None]
                if len(vals) > 1:
                    what = "regret pp" if key != "fbnet" else "measurements (no accuracy)"
                    mono = all(x >= y - 1e-9 for x, y in pairwise(vals))
                    tail = ""
                    if key != "fbnet":
                        tail = ", non-increasing." if mono else ", NOT monotone."
                    out.append(
                        f"- Anytime curve ({key} {split}, {name}, {what}): "
                        + " -> ".join(f"{x:.4f}" for x in vals)
                        + (tail or ".")
                    )
    return out


def flops_shortfall(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and max shortfall (% of the best feasible FLOPs) over entries within the budget."""
    v = [r["shortfall"] for r in rows if r.get("shortfall") is not None and not r["violation"]]
    return {"mean": float(np.mean(v)) if v else None, "max": float(np.max(v)) if v else None}


def run_space(
    key: str,
    quick: bool,
    only: list[str] | None,
    caps: tuple[int, ...],
    splits: list[str] | None = None,
) -> dict:
    """One space: every split's (or ``splits``') methods through
    :func:`approach1_heldout.bench`."""
    b = TableBench(key)
    meths = space_methods(quick)
    kept: dict[str, list[dict[str, Any]]] = {}
    if key == "fbnet":
        meths = {
            k: (_with_shortfall(fn, kept.setdefault(k, [])), a) for k, (fn, a) in meths.items()
        }
    res = bench(b, splits or list(SPACE_SPLITS[key]), quick, only, caps, table_targets, meths)
    res["objective"] = b.objective
    res["objective_range"] = [float(b.acc.min()), float(b.acc.max())]
    res["candidates"] = len(b.archs)
    res["devices"] = b.devices
    if key == "fbnet":
        for split, sres in res["splits"].items():
            for name, m in sres["methods"].items():
                m["flops_shortfall"] = flops_shortfall(
                    [r for r in kept[name] if r["split"] == split]
                )
            drop_regret(sres)
    return res


def _with_shortfall(fn: Any, kept: list[dict[str, Any]]) -> Any:
    """Wrap a method so that FBNet rows carry the FLOPs shortfall (% of the best table design
    within the budget) instead of a regret; rows at the default cap are appended to ``kept``."""

    def run(b: TableBench, t: Target, ws: Any, cap: int | None) -> list[dict[str, Any]]:
        rows = fn(b, t, ws, cap)
        for r in rows:
            best = float(t.oracle[QUANTILES.index(r["q"])])
            r["shortfall"] = None if r["regret"] is None else 100.0 * r["regret"] / best
            r["regret"] = None
        if cap is None:
            kept.extend(rows)
        return rows

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spaces", nargs="*", default=["ofa", "fbnet"])
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--quick", action="store_true", help="Fewer targets, caps 5/10 only.")
    ap.add_argument("--out", default=str(RESULTS / "approach1_heldout_spaces"))
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument(
        "--splits", nargs="*", default=None,
        help="Run only these splits (e.g. stacks) and merge them into the existing results.",
    )  # fmt: skip
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.report_only:
        res = json.loads(out.with_suffix(".json").read_text())
        write_results(out, res, markdown(res), default=_json_default)
        return 0
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    t0 = time.perf_counter()
    caps = (5, 10) if args.quick else CAPS
    res: dict[str, Any] = {
        "environment": environment(),
        "quick": args.quick,
        "caps": list(caps),
        "spaces": {},
    }
    previous = out.with_suffix(".json")
    old = json.loads(previous.read_text()) if args.splits and previous.exists() else None
    if old is not None:  # a merge: the other spaces, the first run's machine and time stay
        res = {**old, "spaces": dict(old["spaces"])}
        res.setdefault("merged", []).append(
            {"spaces": args.spaces, "splits": args.splits, "environment": environment()}
        )
    for key in args.spaces:
        splits = [x for x in SPACE_SPLITS[key] if args.splits is None or x in args.splits]
        if old is not None and not splits:
            res["spaces"][key] = old["spaces"][key]
            continue
        t1 = time.perf_counter()
        res["spaces"][key] = run_space(key, args.quick, args.methods, caps, splits)
        res["spaces"][key]["seconds"] = time.perf_counter() - t1
        if old is not None and key in old["spaces"]:  # the splits not re-run stay as they were
            kept = old["spaces"][key]["splits"]
            res["spaces"][key]["splits"] = {
                x: res["spaces"][key]["splits"].get(x, kept.get(x))
                for x in SPACE_SPLITS[key]
                if x in res["spaces"][key]["splits"] or x in kept
            }
    if old is None:
        res["environment"]["load_after"] = load_average()
        res["total_seconds"] = time.perf_counter() - t0
    else:
        res["merged"][-1]["seconds"] = time.perf_counter() - t0
    write_results(out, res, markdown(res), default=_json_default)
    print(f"wrote {out.with_suffix('.json')} and .md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
