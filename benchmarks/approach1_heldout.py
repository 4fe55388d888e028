"""Approach 1 held out (issue 14): no twin of the target in the proxy pool.

NAS-Bench-201, exact NATS-Bench CIFAR-10 accuracies. Every target is presented as a user's
device under a new name (``user-<column>``, no spec features, values replayed from its table,
each distinct design charged once) and its five budgets (10/30/50/70/90 % latency quantiles of
the target) share one session, as a plan does. Splits:

- ``a`` leave-source-out: pool = HELP's own 23 columns; targets = the four HW-NAS-Bench columns
  (eyeriss, fpga, pixel3, raspi4), the other three never in the pool;
- ``b`` leave-hardware-out: the target's other batch sizes and its sibling settings (same chip
  generation, same vendor line) never in the pool;
- ``c`` leave-family-out: no device of the target's family in the pool;
- ``d`` this machine's runtime stacks (exchange-format CSVs under ``benchmarks/results/stacks/``)
  as targets, HELP's 27 columns as the pool; "not yet measured" when absent.

Parameters are chosen on ``b`` and ``c``; ``a`` and ``d`` are reported. ``help`` is the
in-stack reference (every HELP column a target, its twins in the pool). Methods, in the same
run: ``default`` (today's default: the guided blend search, stopping at 10 measurements per
entry and going on up to 20 only while the best expected gain stays at least 10x ``min_gain``),
``model`` (the same search on :class:`~fleetnas.proxy.TargetModel`, the blend plus a GP residual
fitted on everything measured on the device), ``previous`` (the previous release's default: the
guided search under a hard cap of 10), ``front-hindsight`` (the paper's Algorithm 1 front
variant on the single pool proxy best for that target in hindsight), ``ridge`` (ridge
regression of 5 probe latencies on the pool's, then verification along its predicted front)
and, on ``a`` only, ``plan`` (as a user would: the target imported from a wide CSV into a fresh
store holding only the pool, ``plan --approach auto`` with default settings).
Caps count probes. The anytime curve reruns ``model`` and ``previous`` under hard caps of
5/10/20/40 (under a hard cap ``default`` is ``previous``).

Run from the repository root (``--quick``: fewer targets and caps, for development):
``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/approach1_heldout.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
    STACKS,
    HelpNB201,
    environment,
    load_average,
    stack_medians,
    write_results,
)
from approach1_heldout_report import markdown

RESULTS = Path(__file__).resolve().parent / "results"
QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
CAPS = (5, 10, 20, 40)
HWNAS = ("eyeriss", "fpga", "pixel3", "raspi4")
GPUS = ("1080ti", "2080ti", "titan_rtx", "titanx", "titanxp")
#: hardware groups (a chip at every batch size) and sibling groups (same generation or line)
SIBLINGS = (
    ("titanx", "titanxp"),
    ("2080ti", "titan_rtx"),
    ("gold_6226", "gold_6240"),
    ("silver_4114", "silver_4210r"),
    ("pixel2", "pixel3"),
    ("samsung_a50", "samsung_s7"),
)
FAMILY = {
    **{f"{g}_{b}": "gpu" for g in GPUS for b in (1, 32, 256)},
    **{d: "xeon" for d in ("gold_6226", "gold_6240", "silver_4114", "silver_4210r")},
    **{d: "phone" for d in ("pixel2", "pixel3", "samsung_a50", "samsung_s7", "essential_ph_1")},
    "raspi4": "embedded",
    "eyeriss": "accelerator",
    "fpga": "accelerator",
}
#: (b) and (c) targets: HELP's own 23 columns (the HW-NAS-Bench columns are (a)'s alone)
TARGETS_BC = tuple(d for d in FAMILY if d not in HWNAS)
QUICK_B = ("2080ti_32", "gold_6226", "pixel2")
QUICK_C = ("titanx_256", "silver_4210r", "samsung_s7")


def hardware(name: str) -> str:
    """The chip of a HELP setting (GPU settings differ only by batch size)."""
    for g in sorted(GPUS, key=len, reverse=True):
        if name.startswith(g + "_"):
            return g
    return name


def held_out(split: str, target: str, devices: list[str]) -> list[str]:
    """Pool of ``target`` under ``split`` (``a``, ``b``, ``c``): the HELP columns allowed in it."""
    if split == "a":
        return [d for d in devices if d not in HWNAS]
    if split == "b":
        hw = hardware(target)
        sib = {hw}
        for group in SIBLINGS:
            if hw in group:
                sib |= set(group)
        return [d for d in devices if hardware(d) not in sib]
    if split == "c":
        return [d for d in devices if FAMILY[d] != FAMILY[target]]
    if split == "help":
        return [d for d in devices if d != target]
    raise ValueError(split)


# ---- setup ---------------------------------------------------------------------------------------
class Bench(HelpNB201):
    """HELP's NAS-Bench-201 data (:class:`HelpNB201`), the full pool and the reference designs."""

    def __init__(self) -> None:
        from fleetnas.data import reference_archs
        from fleetnas.proxy import ProxyPool

        super().__init__()
        self.full_pool = ProxyPool.from_store(self.store, self.space)
        self.ref = reference_archs(self.store, self.space)

    def codes(self, archs: np.ndarray) -> np.ndarray:
        """Rows of ``archs`` in :attr:`acc` (and every latency vector)."""
        from fleetnas.proxy import design_codes

        return design_codes(self.space, archs)

    def workspace(self, names: list[str], candidates: np.ndarray | None = None) -> Any:
        """Approach 1's workspace over the pool ``names``; ``candidates`` (default: the whole
        space) restricts the designs it may choose."""
        from fleetnas.proxy import ProxyPool, Workspace

        entries = [e for e in self.full_pool.entries if e.name in names]
        pool = ProxyPool(self.space, entries)
        return Workspace(self.space, self.acc_table.predict, pool, candidates=candidates)


class Target:
    """One held-out target: its replayed values (NaN = not in its table), budgets, oracle."""

    def __init__(
        self,
        b: Bench,
        split: str,
        column: str,
        lat: np.ndarray,
        pool: list[str],
        partial: bool = False,
    ):
        from fleetnas.search import BudgetIndex

        self.split, self.column, self.name = split, column, f"user-{column}"
        self.lat = np.asarray(lat, dtype=float)
        self.pool = pool
        ok = np.isfinite(self.lat)
        #: a table that measured a sample of the space (split d): the search chooses among
        #: the measured designs, as if they were the whole space; ``None``: the whole space
        self.candidates = b.archs[ok] if partial else None
        self.budgets = np.quantile(self.lat[ok], QUANTILES)
        acc = np.where(ok, b.acc, -np.inf)
        lat_f = np.where(ok, self.lat, np.inf)
        self.oracle = b.acc[BudgetIndex(acc, lat_f).query(self.budgets)]

    def session(self, b: Bench) -> Any:
        from fleetnas.proxy import ReplaySession

        return ReplaySession(b.space, self.name, self.lat)


def targets(b: Bench, split: str, quick: bool) -> list[Target]:
    if split == "a":
        cols = HWNAS
    elif split == "b":
        cols = QUICK_B if quick else TARGETS_BC
    elif split == "c":
        cols = QUICK_C if quick else TARGETS_BC
    elif split == "help":
        cols = tuple(b.devices)
    else:
        return stack_targets(b)
    return [Target(b, split, c, b.lat[c], held_out(split, c, b.devices)) for c in cols]


def stack_targets(b: Bench, folder: Path = STACKS) -> list[Target]:
    """Split ``d``: every NAS-Bench-201 latency column of the exchange files under ``folder``."""
    from fleetnas.proxy import design_codes

    out: list[Target] = []
    for dev, rows in stack_medians("nb201", folder, min_designs=50).items():
        lat = np.full(b.space.size, np.nan)
        lat[design_codes(b.space, b.space.parse_many(list(rows.index)))] = rows.to_numpy()
        out.append(Target(b, "d", dev, lat, list(b.devices), partial=True))
    return out


# ---- methods -------------------------------------------------------------------------------------
#: ``(bench, target, workspace, cap or None for the method's default) -> entry rows``
Method = Callable[[Bench, Target, Any, int | None], list[dict[str, Any]]]


def entry_row(b: Bench, t: Target, qi: int, status: str, arch: Any, lat: float, n: int, **kw):
    acc = float(b.acc[b.codes(np.asarray(arch)[None])[0]]) if arch is not None else 0
    budget = float(t.budgets[qi])
    ok = status == "ok"
    return {
        "split": t.split,
        "target": t.column,
        "q": QUANTILES[qi],
        "budget": budget,
        "status": status,
        "violation": bool(ok and np.isfinite(lat) and lat > budget),
        "regret": float(t.oracle[qi] - acc) if ok else None,
        "measurements": int(n),
        **kw,
    }


def run_optimize(config: Any) -> Method:
    """Approach 1 through :func:`fleetnas.proxy.optimize_device`, budgets in one session."""

    def run(b: Bench, t: Target, ws: Any, cap: int) -> list[dict[str, Any]]:
        from dataclasses import replace

        from fleetnas.devices import Device
        from fleetnas.errors import FleetnasError
        from fleetnas.proxy import optimize_device

        cfg = config if cap is None else replace(config, max_measurements=cap)
        s = t.session(b)
        dev = Device(name=t.name)
        rows = []
        for qi, budget in enumerate(t.budgets):
            before = s.cost.measurements
            try:
                r = optimize_device(
                    ws, s, float(budget), config=cfg, probes=b.ref[: cfg.n_probes],
                    target_device=dev,
                )  # fmt: skip
            except FleetnasError as exc:
                rows.append(
                    entry_row(b, t, qi, "failed", None, np.nan, s.cost.measurements - before)
                    | {"reason": str(exc)}
                )
                continue
            if r.registered:
                ws.pool = ws.pool.without(r.registered)
                ws.forget(r.registered)
            rows.append(
                entry_row(
                    b,
                    t,
                    qi,
                    r.status,
                    r.arch,
                    r.latency,
                    r.measurements,
                    proxy=r.proxy,
                    fell_back=r.fell_back,
                    stop=r.stop_reason,
                    cap=r.cap,
                    cap_extended=r.cap_extended,
                    unmeasurable=r.unmeasurable,
                )
            )
        return rows

    return run


def run_front_hindsight(b: Bench, t: Target, ws: Any, cap: int | None) -> list[dict[str, Any]]:
    """Front variant on every pool proxy; the proxy with the lowest mean regret over this
    target's budgets is kept (chosen in hindsight: a reference, not a method)."""
    from fleetnas.proxy import front_variant

    best: tuple[float, list[dict[str, Any]]] | None = None
    for name in ws.pool.names:
        prob = ws.problem(name)
        s = t.session(b)
        rows = []
        for qi, budget in enumerate(t.budgets):
            before = s.cost.measurements
            sel = front_variant(prob, s, float(budget), max_measurements=cap or 10)
            rows.append(
                entry_row(
                    b,
                    t,
                    qi,
                    sel.status,
                    sel.arch,
                    sel.latency,
                    s.cost.measurements - before,
                    proxy=name,
                )
            )
        reg = np.mean([r["regret"] if r["regret"] is not None else 10.0 for r in rows])
        if best is None or reg < best[0]:
            best = (float(reg), rows)
    assert best is not None
    return best[1]


def run_ridge(
    b: Bench, t: Target, ws: Any, cap: int | None, n_probes: int = 5
) -> list[dict[str, Any]]:
    """Ridge of the target's log probe latencies on the pool's (penalty by leave-one-out),
    then :func:`fleetnas.proxy.verify_candidates` along the predicted front."""
    from fleetnas.proxy import verify_candidates
    from fleetnas.search import pareto_front

    cap = cap or 10
    s = t.session(b)
    probes = b.ref[:n_probes]
    y = np.log(s.measure(probes)[:, 0])
    u = ws.pool.log_predictions(probes)
    uc = ws.pool.log_predictions(ws.candidates)
    mu, sd = uc.mean(axis=1, keepdims=True), uc.std(axis=1, keepdims=True) + 1e-9
    X, Xc = ((u - mu) / sd).T, ((uc - mu) / sd).T
    best = None
    for alpha in (0.1, 1.0, 10.0, 100.0):
        loo = 0.0
        for i in range(len(y)):
            k = np.arange(len(y)) != i
            w = _ridge(X[k], y[k], alpha)
            loo += (y[i] - (w[0] + X[i] @ w[1:])) ** 2
        if best is None or loo < best[0]:
            best = (loo, alpha)
    w = _ridge(X, y, best[1])
    pred = np.exp(w[0] + Xc @ w[1:])
    front = pareto_front(ws.accuracy, np.log(pred))
    front = front[np.argsort(pred[front], kind="stable")]
    rows = []
    for qi, budget in enumerate(t.budgets):
        before = s.cost.measurements
        ok = np.flatnonzero(pred[front] <= budget)
        sel = verify_candidates(
            b.space, ws.candidates[front], s, float(budget), accuracy=ws.accuracy[front],
            proxy_latency=pred[front], max_measurements=max(0, cap - (n_probes if qi == 0 else 0)),
            start=int(ok[-1]) if len(ok) else 0,
        )  # fmt: skip
        rows.append(
            entry_row(b, t, qi, sel.status, sel.arch, sel.latency, s.cost.measurements - before)
        )
    return rows


def _ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    A = np.hstack([np.ones((len(X), 1)), X])
    P = alpha * np.eye(A.shape[1])
    P[0, 0] = 0.0
    return np.linalg.solve(A.T @ A + P, A.T @ y)


def run_plan(b: Bench, t: Target, ws: Any, cap: int | None) -> list[dict[str, Any]]:
    """As a user would: a fresh store with only the pool's HELP columns and the accuracies, the
    target imported from a wide CSV under its new name, ``plan --approach auto`` over its
    five budgets with the plan's default cap (through the ``table:`` measurer)."""
    import tempfile

    import pandas as pd

    from fleetnas.data import import_help, import_nats
    from fleetnas.data.exchange import import_table
    from fleetnas.devices import Device
    from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit, PlanConfig, plan_fleet
    from fleetnas.proxy import Approach1Config
    from fleetnas.store import open_store

    store = open_store("memory://")
    import_help(store, None, "nb201", devices=t.pool)
    import_nats(store, None)
    ok = np.isfinite(t.lat)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{t.name}.csv"
        pd.DataFrame(
            {
                "architecture": b.space.format_many(b.archs[ok]),
                f"{t.name}[latency:ms]": t.lat[ok],
            }
        ).to_csv(path, index=False)
        import_table(store, path, space="nb201")
    dev = Device(t.name, measurer=f"table:{t.name}")
    budgets = tuple(
        Budget(Limit(value=float(x)), None, f"q{q}")
        for x, q in zip(t.budgets, QUANTILES, strict=True)
    )
    cfg = PlanConfig(
        space="nb201", approach="auto", **({} if cap is None else {"max_measurements": cap})
    )
    run = plan_fleet(Fleet("heldout", [FleetDevice(dev, budgets)]), cfg, store)
    rows = []
    for qi, e in enumerate(run.entries):
        arch = b.space.parse(e["design"]) if e.get("design") else None
        lat = e["measured"]["latency_ms"] if e.get("measured") else np.nan
        st = e["status"] if e["status"] in ("ok", "infeasible") else "failed"
        rows.append(
            entry_row(
                b,
                t,
                qi,
                st,
                arch,
                np.nan if lat is None else lat,
                e["measurements"],
                proxy=e.get("proxy"),
                cap=cfg.max_measurements or Approach1Config().cap,
                cap_extended=e.get("cap_extended"),
                reason=e.get("reason"),
            )
        )
    return rows


def methods(quick: bool) -> dict[str, tuple[Method, bool]]:
    """Name -> (runner, in the anytime curve)."""
    from fleetnas.proxy import Approach1Config

    out: dict[str, tuple[Method, bool]] = {}
    out["default"] = (run_optimize(Approach1Config()), True)
    out["model"] = (run_optimize(Approach1Config(method="model")), True)
    out["previous"] = (run_optimize(Approach1Config(method="guided", max_measurements=10)), True)
    out["plan"] = (run_plan, False)
    out["front-hindsight"] = (run_front_hindsight, False)
    out["ridge"] = (run_ridge, False)
    return out


# ---- summary -------------------------------------------------------------------------------------
def summarize(rows: list[dict[str, Any]], cap: int | None = None) -> dict[str, Any]:
    """Counts and regret of entry rows; an entry exceeds the cap when it measured more than
    ``cap`` (default: the cap the entry itself reports, else 10)."""
    if not rows:
        return {"entries": 0}
    m = np.array([r["measurements"] for r in rows], dtype=float)
    caps = np.array([cap or r.get("cap") or 10 for r in rows], dtype=float)
    reg = np.array([r["regret"] for r in rows if r["regret"] is not None and not r["violation"]])
    out: dict[str, Any] = {
        "entries": len(rows),
        "violations": int(sum(r["violation"] for r in rows)),
        "failed": int(sum(r["status"] == "failed" for r in rows)),
        "infeasible": int(sum(r["status"] == "infeasible" for r in rows)),
        "cap_exceeded": int((m > caps).sum()),
        "cap_extended": int(sum(bool(r.get("cap_extended")) for r in rows)),
        "unmeasurable": int(sum(r.get("unmeasurable", 0) for r in rows)),
        "measurements_mean": float(m.mean()),
        "measurements_max": int(m.max()),
    }
    if len(reg):
        out |= {
            "regret_mean": float(reg.mean()),
            "regret_p90": float(np.percentile(reg, 90)),
            "regret_max": float(reg.max()),
        }
    out["per_quantile"] = {
        str(q): float(
            np.mean([r["regret"] for r in rows if r["q"] == q and r["regret"] is not None])
        )
        if any(r["q"] == q and r["regret"] is not None for r in rows)
        else None
        for q in QUANTILES
    }
    return out


def bench(
    b: Any,
    splits: list[str],
    quick: bool,
    only: list[str] | None,
    caps: tuple[int, ...],
    targets_of: Callable[[Any, str, bool], list[Target]] | None = None,
    meths: dict[str, tuple[Method, bool]] | None = None,
) -> dict[str, Any]:
    """Every method on every split's targets (``targets_of``, default :func:`targets`), with
    the anytime curve under ``caps`` for the methods that have one."""
    res: dict[str, Any] = {"splits": {}}
    meths = methods(quick) if meths is None else meths
    if only:
        meths = {k: v for k, v in meths.items() if k in only}
    for split in splits:
        tg = (targets_of or targets)(b, split, quick)
        sres: dict[str, Any] = {"targets": [t.column for t in tg], "methods": {}}
        res["splits"][split] = sres
        if not tg:
            sres["note"] = "not yet measured"
            print(f"split {split}: not yet measured", flush=True)
            continue
        sres["pools"] = {t.column: len(t.pool) for t in tg}
        for name, (fn, anytime) in meths.items():
            if name == "plan" and split != "a":
                continue  # a fresh store per target: (a) only, to keep the run bounded
            t0 = time.perf_counter()
            rows: list[dict[str, Any]] = []
            curve: dict[str, Any] = {}
            for t in tg:
                rows += fn(b, t, b.workspace(t.pool, t.candidates), None)
            summary = summarize(rows)
            if anytime:
                for cap in caps:
                    rc: list[dict[str, Any]] = []
                    for t in tg:
                        rc += fn(b, t, b.workspace(t.pool, t.candidates), cap)
                    curve[str(cap)] = summarize(rc, cap)
            sres["methods"][name] = {
                "summary": summary,
                "anytime": {k: _short(v) for k, v in curve.items()},
                "per_target": {
                    t.column: summarize([r for r in rows if r["target"] == t.column]) for t in tg
                },
                "worst": sorted(
                    [r for r in rows if r["regret"] is not None], key=lambda r: -r["regret"]
                )[:5],
                "failed": [r for r in rows if r["status"] == "failed"][:5],
                "seconds": time.perf_counter() - t0,
            }
            s = summary
            print(
                f"{split}/{name}: regret {s.get('regret_mean', float('nan')):.3f} "
                f"p90 {s.get('regret_p90', float('nan')):.3f} meas {s['measurements_mean']:.1f}/"
                f"{s['measurements_max']} viol {s['violations']} failed {s['failed']} "
                f"q {s['per_quantile']} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return res


def _short(s: dict[str, Any]) -> dict[str, Any]:
    keys = ("regret_mean", "regret_p90", "measurements_mean", "measurements_max", "cap_exceeded")
    return {k: s.get(k) for k in keys}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--splits", nargs="*", default=["a", "b", "c", "d", "help"])
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--quick", action="store_true", help="Fewer targets, caps 5/10 only.")
    ap.add_argument("--out", default=str(RESULTS / "approach1_heldout"))
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument(
        "--merge", action="store_true", help="Add these splits/methods to the existing results."
    )
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
    res: dict[str, Any] = {"environment": environment(), "quick": args.quick, "caps": list(caps)}
    b = Bench()
    new = bench(b, args.splits, args.quick, args.methods, caps)
    if args.merge and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
        for split, sres in new["splits"].items():
            # a split run now replaces what was said of it (targets, pools, a "not yet
            # measured" note); methods not run now keep their old results
            kept = old["splits"].get(split, {})
            methods = {**kept.get("methods", {}), **sres["methods"]}
            old["splits"][split] = {**sres, "methods": methods}
        new["splits"] = old["splits"]
        res["section_seconds"] = old.get("section_seconds", {})
    res |= new
    res["environment"]["load_after"] = load_average()
    res["total_seconds"] = time.perf_counter() - t0
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
