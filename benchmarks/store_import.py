"""Importing HELP's NAS-Bench-201 latencies plus the NATS-Bench accuracies (468,750 rows).

Claim: a cold import of all of HELP's NB201 data (27 devices x 15,625) and the three accuracy
columns into a fresh SQLite store takes under 15 s on this machine, and importing it again adds
nothing and takes well under a second.

Each trial runs in a fresh Python process with a new SQLite file (so imports, caches and the
page cache of the database start cold; the public files themselves are small and stay in the OS
cache). Per trial it times: reading and validating the public files alone (the baseline: the
least any importer must spend), the store import of HELP NB201, the import of NATS, then the
re-import of both (0 rows expected) and, for reference, an export of the latencies to the wide
CSV exchange format. The InMemoryStore backend is timed once the same way, for comparison.
Results: ``benchmarks/results/store_import.{json,md}``.

Run: ``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/store_import.py``
(about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import environment, write_results

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 15.0

TRIAL = r"""
import json, sys, time
t0 = time.perf_counter()
from fleetnas.data.help import import_help, read_archs, read_latencies
from fleetnas.data.nats import import_nats, read_nats
from fleetnas.data.exchange import export_table
from fleetnas.devices.catalog import help_file_names
from fleetnas.store import open_store
data, url, tmp, read_only = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
out = {"import_modules_s": time.perf_counter() - t0}
if read_only:
    t = time.perf_counter()
    read_archs(data, "nb201")
    for dev in help_file_names("nb201"):
        read_latencies(data, "nb201", dev)
    read_nats(data)
    out["read_only_s"] = time.perf_counter() - t
else:
    store = open_store(url)
    t = time.perf_counter()
    help_rep = import_help(store, data, "nb201")
    out["help_s"] = time.perf_counter() - t
    t = time.perf_counter()
    nats_rep = import_nats(store, data)
    out["nats_s"] = time.perf_counter() - t
    out["rows"] = help_rep.rows + nats_rep.rows
    out["import_s"] = out["help_s"] + out["nats_s"]
    t = time.perf_counter()
    again = import_help(store, data, "nb201").rows + import_nats(store, data).rows
    out["reimport_s"] = time.perf_counter() - t
    out["reimport_rows"] = again
    out["counts"] = store.counts()
    t = time.perf_counter()
    export_table(store, tmp + "/nb201_wide.csv", "wide", space="nb201", metrics=["latency"])
    out["export_wide_csv_s"] = time.perf_counter() - t
    store.close()
print(json.dumps(out))
"""


def trial(data: str, backend: str, read_only: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = "memory://" if backend == "memory" else f"sqlite:///{tmp}/store.db"
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", TRIAL, data, url, tmp, "1" if read_only else "0"],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"trial failed:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        db = Path(tmp) / "store.db"
        if db.exists():
            out["db_mb"] = sum(p.stat().st_size for p in Path(tmp).glob("store.db*")) / 1e6
    out["process_wall_s"] = wall
    return out


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--data-dir", default=os.environ.get("FLEETNAS_DATA_DIR", "../shared/data"))
    args = ap.parse_args()
    data = str(Path(args.data_dir).resolve())
    machine = environment()

    baseline = [trial(data, "sqlite", read_only=True) for _ in range(args.trials)]
    sqlite = [trial(data, "sqlite") for _ in range(args.trials)]
    memory = trial(data, "memory")

    keys = ("help_s", "nats_s", "import_s", "reimport_s", "export_wide_csv_s", "process_wall_s")
    result = {
        "claim": f"cold import of HELP NB201 + NATS accuracies into SQLite < {TARGET_S} s",
        "machine": machine,
        "rows": sqlite[0]["rows"],
        "reimport_rows": [t["reimport_rows"] for t in sqlite],
        "baseline_read_only_s": summarize([t["read_only_s"] for t in baseline]),
        "sqlite": {k: summarize([t[k] for t in sqlite]) for k in keys},
        "sqlite_db_mb": sqlite[0].get("db_mb"),
        "memory": {k: memory[k] for k in keys},
        "trials": {"baseline": baseline, "sqlite": sqlite, "memory": memory},
    }
    med = result["sqlite"]["import_s"]["median"]
    result["target_s"] = TARGET_S
    result["meets_target"] = bool(result["sqlite"]["import_s"]["max"] < TARGET_S)
    result["rows_per_s"] = result["rows"] / med

    s, b = result["sqlite"], result["baseline_read_only_s"]

    def row(name: str, d: dict[str, float]) -> str:
        return f"| {name} | {d['median']:.2f} | {d['min']:.2f} | {d['max']:.2f} |"

    lines = [
        "# Store import: HELP NB201 latencies + NATS accuracies",
        "",
        f"{result['rows']:,} rows into a fresh SQLite store, {args.trials} trials, each in a "
        f"fresh process ({machine['cores']} CPUs, load "
        f"{machine['load_before'][0]:.1f} at start). Target: import < "
        f"{TARGET_S:.0f} s. Met: **{'yes' if result['meets_target'] else 'no'}** "
        f"({result['rows_per_s']:,.0f} rows/s at the median).",
        "",
        "| step | median s | min s | max s |",
        "|---|---:|---:|---:|",
        row("baseline: read + validate the files only", b),
        row("import HELP NB201 (421,875 rows)", s["help_s"]),
        row("import NATS accuracies (46,875 rows)", s["nats_s"]),
        row("**import total**", s["import_s"]),
        row(f"re-import (rows added: {max(result['reimport_rows'])})", s["reimport_s"]),
        row("export latencies, wide CSV", s["export_wide_csv_s"]),
        row("whole process incl. Python start", s["process_wall_s"]),
        "",
        f"InMemoryStore, one trial: import {memory['import_s']:.2f} s, re-import "
        f"{memory['reimport_s']:.3f} s. SQLite file size: {result['sqlite_db_mb']:.1f} MB.",
        "",
    ]
    write_results(RESULTS / "store_import", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
