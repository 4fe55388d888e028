"""The demo's plan (``make demo`` / ``fleetnas demo``), this branch against the previous release.

Claim: on this 2-core machine the demo's plan step (2,058 tasks: 27 HELP settings replayed, this
machine's ONNX Runtime at 1 and 2 threads, 1,000 simulated devices; two budgets each) takes at
most 60 s, with plans of the same quality as the previous release's: same or lower mean regret
and no known violation.

How: the previous release (``--baseline``, default ``b61bd54``) is exported with ``git archive``
into a temporary folder. One store is prepared once with the baseline's code (public data
imported, the demo's optimizer network trained), so both codes plan from the same data and the
same network. Each trial copies that store, runs ``fleetnas demo --json`` in a fresh process with
``PYTHONPATH`` on one code, and reads the demo's own ``plan`` step time, the plan's summary and
its entries. Trials alternate (baseline, branch, branch, baseline, ...) because the machine is
shared and its load drifts; the load average is recorded around every trial. Quality: mean and
max regret, known violations, statuses, and how many entries returned the same design in both.

Results: ``benchmarks/results/demo_speed.{json,md}``.

Run: ``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/demo_speed.py`` (two trials;
about 10 minutes on a loaded machine). ``--sim`` and ``--no-local`` shrink the fleet for a check.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import environment, load_average, write_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TARGET_S = 60.0

PREPARE = r"""
import sys
from fleetnas.demo import _ensure_optimizer, _import_data
from fleetnas.store import open_store
with open_store(sys.argv[1]) as store:
    _import_data(store, None, print)
    _ensure_optimizer(store, 0, print)
"""


def export_code(commit: str, into: Path) -> Path:
    """The tree of ``commit`` (``git archive``) unpacked in ``into``; returns its ``src``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    env.pop("FLEETNAS_DB", None)
    return env


def copy_store(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        s, d = Path(f"{src}{suffix}"), Path(f"{dst}{suffix}")
        if s.exists():
            shutil.copy(s, d)
        else:
            d.unlink(missing_ok=True)


def trial(src: Path, store: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One ``fleetnas demo --json`` on a copy of the prepared store."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / "store.db"
    copy_store(store, db)
    cmd = [sys.executable, "-m", "fleetnas.cli.main", "demo", "--db", f"sqlite:///{db}"]
    cmd += ["--out-dir", str(work), "--sim", str(args.sim), "--json"]
    if not args.local:
        cmd.append("--no-local")
    load = load_average()
    commit = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=_env(src), capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"demo failed ({src}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout)
    plan = json.loads((work / "plan.json").read_text())
    s = plan["summary"]
    run = s.get("run") or {}
    return {
        "commit": commit or None,
        "plan_s": out["steps"]["plan"],
        "steps": out["steps"],
        "process_s": wall,
        "process_cpu_s": cpu,
        "load_before": load,
        "load_after": load_average(),
        "phases": {k: run.get(k) for k in ("prepare_s", "startup_s", "chunks_s", "finish_s")},
        "worker_s": run.get("worker_s"),
        "entries": s["entries"],
        **{k: s[k] for k in ("ok", "infeasible", "failed", "measurements", "violations_known")},
        "mean_regret_pp": s["mean_regret_pp"],
        "max_regret_pp": s["max_regret_pp"],
        "designs": {e.get("key", e["device"]): e.get("design") for e in plan["devices"]},
    }


def _differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Entry keys whose design differs between two trials."""
    return [k for k, d in a["designs"].items() if b["designs"].get(k) != d]


def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# Demo plan: this branch against the previous release",
        "",
        f"`fleetnas demo` on a fresh copy of one prepared store (public data imported, network "
        f"trained), {res['tasks']} tasks ({res['config']['sim']} simulated devices, local "
        f"runtimes {'on' if res['config']['local'] else 'off'}); trials alternate. Machine: "
        f"{env['cpu']}, {env['cores']} cores, shared with other work (load averages below); "
        f"this run was allowed {res.get('cpus_allowed', env['cores'])} of them (CPU affinity"
        f"{', e.g. taskset -c 0' if res.get('cpus_allowed', 2) < env['cores'] else ''}). "
        f"Baseline: `{res['baseline']}`; branch: `{res['branch']}`. *process CPU s*: user + "
        "system CPU time of the whole `fleetnas demo` process and its children (import, plan, "
        "report; measuring workers included), which other work on the machine does not add to.",
        "",
        "| trial | code | plan s | prepare s | chunks s | process CPU s | load 1-min before/after "
        "| entries | ok | infeasible | failed | measurements | violations | mean regret pp | "
        "max regret pp |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, t in enumerate(res["trials"]):
        ph = t["phases"]
        lines.append(
            f"| {i + 1} | {t['code']} | {t['plan_s']:.1f} | {ph['prepare_s'] or 0:.1f} | "
            f"{ph['chunks_s'] or 0:.1f} | {t.get('process_cpu_s', 0):.1f} | "
            f"{t['load_before'][0]:.1f} / {t['load_after'][0]:.1f} "
            f"| {t['entries']} | {t['ok']} | {t['infeasible']} | {t['failed']} | "
            f"{t['measurements']} | {t['violations_known']} | {t['mean_regret_pp']:.4f} | "
            f"{t['max_regret_pp']:.3f} |"
        )
    c = res["comparison"]
    lines += [
        "",
        f"Median plan time: baseline {c['baseline_plan_s']:.1f} s, branch {c['branch_plan_s']:.1f}"
        f" s ({c['speedup']:.2f}x); target {TARGET_S:.0f} s: "
        f"{'met' if c['target_met'] else 'NOT met'} on this run.",
        f"Same design in {c['same_designs']} of {c['entries']} entries (first trial of each); "
        f"mean regret baseline {c['baseline_regret_pp']:.4f} pp, branch "
        f"{c['branch_regret_pp']:.4f} pp; known violations baseline {c['baseline_violations']}, "
        f"branch {c['branch_violations']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default="b61bd54", help="commit of the previous release")
    ap.add_argument("--pairs", type=int, default=1, help="trials per code")
    ap.add_argument("--sim", type=int, default=1000, help="simulated devices")
    ap.add_argument("--local", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out", type=Path, default=RESULTS / "demo_speed")
    ap.add_argument(
        "--prepared", type=Path, default=None,
        help="an SQLite store already holding the public data and the demo's network",
    )  # fmt: skip
    args = ap.parse_args()
    branch = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    env = environment()
    with tempfile.TemporaryDirectory(prefix="demo-speed-") as tmp:
        work = Path(tmp)
        codes = {"baseline": export_code(args.baseline, work / "baseline"), "branch": ROOT / "src"}
        store = work / "prepared.db"
        t0 = time.perf_counter()
        if args.prepared is not None:
            copy_store(args.prepared, store)
        else:
            subprocess.run(
                [sys.executable, "-c", PREPARE, f"sqlite:///{store}"],
                env=_env(codes["baseline"]), check=True, capture_output=True,
            )  # fmt: skip
        prepare_s = time.perf_counter() - t0
        trials: list[dict[str, Any]] = []
        for i in range(args.pairs):
            order = ("baseline", "branch") if i % 2 == 0 else ("branch", "baseline")
            for code in order:
                t = trial(codes[code], store, work / f"{code}-{i}", args)
                t["code"] = code
                if code == "baseline":
                    t["commit"] = args.baseline
                print(f"{code}: plan {t['plan_s']:.1f} s, load {t['load_before']}", flush=True)
                trials.append(t)
    by = {c: [t for t in trials if t["code"] == c] for c in ("baseline", "branch")}
    base_s = statistics.median(t["plan_s"] for t in by["baseline"])
    new_s = statistics.median(t["plan_s"] for t in by["branch"])
    b0, n0 = by["baseline"][0], by["branch"][0]
    res = {
        "claim": f"demo plan <= {TARGET_S:.0f} s on this machine, same plan quality",
        "baseline": args.baseline,
        "branch": branch + (" (with uncommitted changes)" if dirty else ""),
        "config": {"sim": args.sim, "local": args.local, "pairs": args.pairs},
        "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "tasks": n0["entries"],
        "environment": env,
        "prepare_store_s": prepare_s,
        "prepared_store": None if args.prepared is None else str(args.prepared),
        "trials": [{k: v for k, v in t.items() if k != "designs"} for t in trials],
        "comparison": {
            "baseline_plan_s": base_s,
            "branch_plan_s": new_s,
            "speedup": base_s / new_s if new_s else None,
            "target_met": new_s <= TARGET_S,
            "entries": n0["entries"],
            "same_designs": n0["entries"] - len(_differing(b0, n0)),
            "differing_designs": _differing(b0, n0)[:50],
            "baseline_regret_pp": b0["mean_regret_pp"],
            "branch_regret_pp": n0["mean_regret_pp"],
            "baseline_violations": b0["violations_known"],
            "branch_violations": n0["violations_known"],
        },
    }
    write_results(args.out, res, markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
