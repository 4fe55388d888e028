"""The fault suite's figures (issue 18): inputs fuzzed, kills survived, rows lost, duplicates.

Claim: no input to the public readers (exchange files, fleet files, measurer specs, the
agent's HTTP API) makes fleetnas fail with anything but one clear error, and no kill -9,
SIGTERM or SIGINT at a random moment of ``data import`` or ``plan`` loses a stored row or
stores one twice: after each kill the store is consistent (an import all or nothing, a plan
keeping every entry it stored), and running the same command again completes the job.

It runs the property tests of ``tests/faults`` with ``--examples`` examples each (hypothesis;
each test asserts its invariants, so a crash fails the script) and counts the inputs they
tried; then ``--trials`` kills per signal of ``data import --file`` (8,000 rows) and of
``plan`` (8 simulated devices, 16 entries, serial executor; at a random moment after its
first chunk is stored), checks the rows and the store's integrity, resumes, and compares the
plan with an uninterrupted run; one SIGTERM to a ``plan`` on a process pool
checks that its workers end; and where a small tmpfs can be mounted (root), one import onto a
full disk. Results: ``benchmarks/results/faults.{json,md}``.

Run: ``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/faults.py`` (a few
minutes on 2 shared cores; ``--trials 1 --examples 50`` for a quick look).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FAULTS = HERE.parent / "tests" / "faults"
sys.path.insert(0, str(FAULTS))

import faultkit  # noqa: E402 (the fault suite's helpers, shared with the tests)

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
IMPORT_ROWS = 8000


class _TmpFactory:
    """What the property tests ask of pytest's ``tmp_path_factory``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))


def fuzz(examples: int, root: Path) -> dict[str, int]:
    """Run every property test with ``examples`` examples; the inputs each one tried."""
    os.environ["FLEETNAS_FUZZ_EXAMPLES"] = str(examples)
    import test_agent_fuzz as agent
    import test_property_inputs as inputs

    factory = _TmpFactory(root)
    for name in dir(inputs):
        test = getattr(inputs, name)
        if name.startswith("test_") and hasattr(test, "hypothesis"):
            params = test.hypothesis.inner_test.__code__.co_varnames
            test(**({"tmp_path_factory": factory} if "tmp_path_factory" in params else {}))
    with agent.make_client() as client:
        agent.test_every_endpoint_answers_a_documented_status(client=client)
        agent.test_bodies_over_the_limit_are_413(client=client)
    return dict(inputs.FUZZED) | dict(agent.FUZZED)


def _exchange(path: Path, n: int) -> Path:
    import pandas as pd

    from fleetnas.spaces import get_space

    space = get_space("nb201")
    archs = np.unique(space.sample(3 * n, rng=np.random.default_rng(0)), axis=0)[:n]
    pd.DataFrame(
        {"space": "nb201", "architecture": space.format_many(archs), "device": "victim",
         "metric": "latency", "value": np.linspace(1.0, 9.0, len(archs)), "unit": "ms"}
    ).to_csv(path, index=False)  # fmt: skip
    return path


def _integrity(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def kill_imports(trials: int, root: Path, rng: np.random.Generator) -> list[dict[str, Any]]:
    src = _exchange(root / "import.csv", IMPORT_ROWS)
    args = ["data", "import", "--file", str(src), "--json"]
    out = []
    for name, sig in SIGNALS.items():
        for t in range(trials):
            db = root / f"import-{name}-{t}.db"
            delay = float(rng.uniform(0.5, 8.0))
            code, err, hit = faultkit.interrupt([*args, "--db", str(db)], sig, delay)
            after = faultkit.rows(db, "select count(*) from measurements") if db.exists() else 0
            ok = db.exists() is False or _integrity(db)
            again = subprocess.run(faultkit.cli(*args, "--db", str(db)), env=faultkit.ENV,
                                   capture_output=True, text=True)  # fmt: skip
            final = faultkit.rows(db, "select count(*) from measurements")
            distinct = faultkit.rows(db, "select count(distinct arch_id) from measurements")
            out.append(
                {
                    "signal": name, "delay_s": round(delay, 2), "hit": hit, "exit": code,
                    "rows_after_kill": after, "all_or_nothing": after in (0, IMPORT_ROWS),
                    "integrity_ok": ok, "traceback": "Traceback" in err,
                    "resume_exit": again.returncode, "rows_lost": IMPORT_ROWS - distinct,
                    "duplicates": final - distinct,
                }
            )  # fmt: skip
    return out


def _designs(db: Path) -> dict[str, tuple[int, str]]:
    """Plan entry -> (the run that stored it, its design)."""
    with sqlite3.connect(db, timeout=60) as conn:
        rows = conn.execute("select device, run_id, coalesce(design, '') from plans").fetchall()
    return {k: (r, d) for k, r, d in rows}


def kill_plans(
    trials: int, root: Path, store: Path, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Kills of a serial plan, each at a random moment after its first chunk is stored; the
    resumed plan is compared entry by entry with an uninterrupted run of the same command."""
    fleet = faultkit.write_small_fleet(8, root / "fleet.yaml")

    def args(db: Path) -> list[str]:
        return ["plan", str(fleet), "--space", "nb201", "--approach", "proxy", "--executor",
                "serial", "--chunk-size", "2", "--db", str(db), "--quiet",
                "--no-truth"]  # fmt: skip

    ref_db = root / "plan-reference.db"
    shutil.copy(store, ref_db)
    subprocess.run(faultkit.cli(*args(ref_db)), env=faultkit.ENV, check=True,
                   capture_output=True)  # fmt: skip
    reference = {k: d for k, (_, d) in _designs(ref_db).items()}
    out = []
    for name, sig in SIGNALS.items():
        for t in range(trials):
            db = root / f"plan-{name}-{t}.db"
            shutil.copy(store, db)
            delay = float(rng.uniform(0.0, 1.0))
            code, err, hit = faultkit.interrupt(
                args(db), sig, delay,
                after=lambda db=db: faultkit.rows(db, "select count(*) from plans") >= 2,
            )  # fmt: skip
            kept = _designs(db)
            again = subprocess.run(faultkit.cli(*args(db)), env=faultkit.ENV,
                                   capture_output=True, text=True)  # fmt: skip
            final = _designs(db)
            out.append(
                {
                    "signal": name, "delay_s": round(delay, 2), "hit": hit, "exit": code,
                    "entries_after_kill": len(kept), "mid_plan": len(kept) < len(reference),
                    "traceback": "Traceback" in err,
                    "resume_line": "run the same command again" in err,
                    "resume_exit": again.returncode,
                    "rows_lost": sum(1 for k in kept if k not in final),
                    "recomputed": sum(1 for k, v in kept.items() if final.get(k) != v),
                    "entries_final": len(final), "complete": len(final) == len(reference),
                    "designs_differing_from_uninterrupted": sum(
                        1 for k, d in reference.items() if final.get(k, (0, None))[1] != d
                    ),
                    "duplicates": faultkit.rows(db, "select count(*) - count(distinct plan || "
                                                "device) from plans"),
                }
            )  # fmt: skip
    return out


def pool_sigterm(root: Path, store: Path) -> dict[str, Any]:
    fleet = faultkit.write_small_fleet(6, root / "fleet6.yaml")
    db = root / "pool.db"
    shutil.copy(store, db)
    args = ["plan", str(fleet), "--space", "nb201", "--approach", "proxy", "--executor",
            "local", "--workers", "2", "--chunk-size", "2", "--db", str(db), "--quiet",
            "--no-truth"]  # fmt: skip
    proc = subprocess.Popen(faultkit.cli(*args), env=faultkit.ENV, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    faultkit.wait_until(lambda: len(faultkit.children(proc.pid)) >= 3, proc, 180)
    workers = faultkit.children(proc.pid)
    faultkit.wait_until(lambda: faultkit.rows(db, "select count(*) from plans") >= 2, proc, 300)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    time.sleep(2.0)
    return {
        "exit": proc.returncode,
        "workers": len(workers),
        "workers_alive_after_2s": len(faultkit.alive(workers)),
        "traceback": "Traceback" in err,
        "resume_line": "run the same command again" in err,
        "entries_kept": faultkit.rows(db, "select count(*) from plans"),
    }


def disk_full(root: Path) -> dict[str, Any]:
    mnt = root / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return {"skipped": "needs root and mount(8) for a small tmpfs"}
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        return {"skipped": f"cannot mount a tmpfs: {done.stderr.strip()[:200]}"}
    try:
        src = _exchange(root / "full.csv", 5000)
        db = mnt / "x.db"
        args = ["data", "import", "--file", str(src), "--db", str(db), "--json"]
        full = subprocess.run(faultkit.cli(*args), env=faultkit.ENV, capture_output=True,
                              text=True)  # fmt: skip
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        again = subprocess.run(faultkit.cli(*args), env=faultkit.ENV, capture_output=True,
                               text=True)  # fmt: skip
        wal = Path(f"{db}-wal")
        copy = root / "alone.db"
        shutil.copyfile(db, copy)
        return {
            "full_exit": full.returncode,
            "full_message": full.stderr.strip(),
            "one_line": full.stderr.strip().count("\n") == 0,
            "retry_exit": again.returncode,
            "wal_bytes_after": wal.stat().st_size if wal.exists() else 0,
            "rows_in_db_file_alone": faultkit.rows(copy, "select count(*) from measurements"),
            "rows_expected": 5000,
        }
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=200, help="Examples per property test.")
    ap.add_argument("--trials", type=int, default=2, help="Kills per signal and command.")
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    machine = environment()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fleetnas-faults-") as tmp:
        root = Path(tmp)
        fuzzed = fuzz(args.examples, root)
        imports = kill_imports(args.trials, root, rng)
        from fleetnas.data import import_all
        from fleetnas.store import open_store

        store = root / "help.db"
        with open_store(str(store)) as s:
            import_all(s, None, parts=["help-nasbench201"])
        plans = kill_plans(args.trials, root, store, rng)
        pool = pool_sigterm(root, store)
        full = disk_full(root)
    kills = imports + plans
    survived = [
        k for k in kills
        if not k["traceback"] and k["resume_exit"] == 0 and k["rows_lost"] == 0
        and k["duplicates"] == 0 and k.get("all_or_nothing", True)
        and k.get("integrity_ok", True) and k.get("complete", True)
    ]  # fmt: skip
    result = {
        "machine": machine,
        "examples_per_test": args.examples,
        "trials_per_signal": args.trials,
        "inputs_fuzzed": sum(fuzzed.values()),
        "fuzzed_by_test": fuzzed,
        "kills": len(kills),
        "kills_hit_running": sum(k["hit"] for k in kills),
        "kills_survived": len(survived),
        "rows_lost": sum(k["rows_lost"] for k in kills),
        "duplicates": sum(k["duplicates"] for k in kills),
        "plan_entries_recomputed": sum(k["recomputed"] for k in plans),
        "plan_designs_differing": sum(k["designs_differing_from_uninterrupted"] for k in plans),
        "import_trials": imports,
        "plan_trials": plans,
        "pool_sigterm": pool,
        "disk_full": full,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    lines = [
        "# Fault suite: fuzzed inputs and kills",
        "",
        f"{machine['cores']} CPUs, load {machine['load_before'][0]:.1f} at start; "
        f"{result['wall_s']:.0f} s. Script: `benchmarks/faults.py --examples {args.examples} "
        f"--trials {args.trials} --seed {args.seed}`.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| inputs fuzzed (exchange files, fleet files, measurer specs, agent requests) | "
        f"{result['inputs_fuzzed']:,} |",
        f"| kills (kill -9, SIGTERM, SIGINT of `data import` and `plan`) | {len(kills)} "
        f"({result['kills_hit_running']} while running) |",
        f"| kills survived (consistent store, resumed to completion) | "
        f"{result['kills_survived']} of {len(kills)} |",
        f"| rows lost | {result['rows_lost']} |",
        f"| duplicates | {result['duplicates']} |",
        f"| plan kills that landed mid-plan (not on its way out) | "
        f"{sum(k['mid_plan'] for k in plans)} of {len(plans)} |",
        f"| imports that had finished before their signal's moment (none sent) | "
        f"{sum(not k['hit'] for k in imports)} of {len(imports)} |",
        f"| plan entries recomputed after resuming | {result['plan_entries_recomputed']} |",
        f"| resumed plan designs differing from an uninterrupted run | "
        f"{result['plan_designs_differing']} |",
        f"| SIGTERM to a pool plan: exit, workers alive 2 s later | {pool['exit']}, "
        f"{pool['workers_alive_after_2s']} of {pool['workers']} |",
        "| disk full: exit, one line, rows in the database file after retry | "
        + (
            f"{full['full_exit']}, {'yes' if full['one_line'] else 'no'}, "
            f"{full['rows_in_db_file_alone']} of {full['rows_expected']} |"
            if "skipped" not in full
            else f"skipped: {full['skipped']} |"
        ),
        "",
        "Inputs per test: " + ", ".join(f"{k} {v}" for k, v in sorted(fuzzed.items())) + ".",
        "",
        "| command | signal | delay s | exit | rows/entries after kill | resume exit |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| data import | {k['signal']} | {k['delay_s']} | {k['exit']} | "
            f"{k['rows_after_kill']} | {k['resume_exit']} |"
            for k in imports
        ),
        *(
            f"| plan | {k['signal']} | {k['delay_s']} | {k['exit']} | "
            f"{k['entries_after_kill']} | {k['resume_exit']} |"
            for k in plans
        ),
        "",
    ]
    write_results(RESULTS / "faults", result, "\n".join(lines))
    print("\n".join(lines))
    if len(survived) != len(kills) or result["rows_lost"] or result["duplicates"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
