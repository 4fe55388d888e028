"""The main job on embedded defaults (``make demo`` / ``fleetnas demo``).

It sits on the CLI's floor: it only composes the library. On the default SQLite store and the
public data folder it

1. imports HELP's NAS-Bench-201 latencies and the NAS-Bench-201 accuracies (once; idempotent);
2. trains Approach 2's optimizer network on HELP's meta-train and meta-valid devices plus
   synthetic ones (once; stored as an artifact and reused by later runs);
3. builds the fleet: the 27 HELP device settings (replayed from their tables, ground truth known),
   this machine's ONNX Runtime at 1 and 2 threads (measured for real) and ``n_sim`` simulated
   devices (ground truth from the simulator), each with a tight and a loose latency budget;
4. plans the whole fleet with ``--approach auto`` (resumable: a second run reuses every stored
   entry), and writes ``plan.json``, ``report.html`` and the fleet file it planned.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.store.base import Store

SPACE = "nb201"
OPTIMIZER = "demo-nb201"
#: Budgets of every device: a tight one and a loose one, as latency percentiles (HELP devices:
#: of their measured latency over the space; others: of their predicted latency).
BUDGETS = (("tight", 30.0), ("loose", 70.0))
LOCAL_SETTINGS = ("onnxruntime:threads=1,batch=1,precision=fp32",
                  "onnxruntime:threads=2,batch=1,precision=fp32")  # fmt: skip


@dataclass
class DemoConfig:
    """What the demo plans and where it writes."""

    out_dir: Path = Path(".")
    n_sim: int = 1000
    local: bool = True
    seed: int = 0
    executor: str = "local"
    workers: int | None = None
    data_dir: str | os.PathLike[str] | None = None

    def check(self) -> None:
        if self.n_sim < 0:
            raise InputError(f"--sim must be >= 0, got {self.n_sim}")


@dataclass
class DemoResult:
    """What the demo did: files written, the plan summary, and its steps' timings."""

    plan: dict[str, Any]
    plan_path: Path
    report_path: Path
    fleet_path: Path
    steps: dict[str, float] = field(default_factory=dict)
    computed: int = 0
    reused: int = 0
    trained: bool = False


def run_demo(
    config: DemoConfig,
    store: Store,
    say: Callable[[str], None] = lambda _msg: None,
    progress: Callable[[str, int], AbstractContextManager[Callable[[int, int], None]]]
    | None = None,
) -> DemoResult:
    """Run the demo end to end on ``store`` (see the module docstring). ``say`` gets one line
    per phase; ``progress(description, total)``, when given, opens the plan's live progress
    (a context manager yielding the ``progress(done, total)`` callback of :func:`plan_fleet`)."""
    from fleetnas.fleet import PlanConfig, make_executor, plan_fleet, write_fleet
    from fleetnas.report import render_report

    config.check()
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps: dict[str, float] = {}

    t0 = time.perf_counter()
    _import_data(store, config.data_dir, say)
    steps["import data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trained = _ensure_optimizer(store, config.seed, say)
    steps["optimizer network"] = time.perf_counter() - t0

    fleet = build_fleet(store, config)
    fleet_path = write_fleet(fleet, out / "demo-fleet.yaml")
    say(f"fleet: {len(fleet)} devices, {fleet.n_tasks} (device, budget) tasks -> {fleet_path}")

    t0 = time.perf_counter()
    plan_config = PlanConfig(space=SPACE, approach="auto", optimizer=OPTIMIZER, seed=config.seed)
    executor = make_executor(config.executor, config.workers, None)
    say(f"plan: {fleet.n_tasks} tasks on {executor.name} ({executor.workers} workers)")
    bar = progress("plan", fleet.n_tasks) if progress is not None else nullcontext(None)
    try:
        with bar as tick:
            run = plan_fleet(
                fleet, plan_config, store, name="demo-nb201", out=out / "plan.json",
                executor=executor, progress=tick,
            )  # fmt: skip
    finally:
        executor.close()
    steps["plan"] = time.perf_counter() - t0
    say(f"plan: {run.computed} entries computed, {run.reused} reused in {steps['plan']:.1f} s")

    t0 = time.perf_counter()
    report_path = out / "report.html"
    say(f"report: writing {report_path}")
    render_report(run.plan, html_path=report_path, store=store)
    steps["report"] = time.perf_counter() - t0
    return DemoResult(
        plan=run.plan,
        plan_path=Path(run.path),
        report_path=report_path,
        fleet_path=fleet_path,
        steps=steps,
        computed=run.computed,
        reused=run.reused,
        trained=trained,
    )


def _import_data(
    store: Store, data_dir: str | os.PathLike[str] | None, say: Callable[[str], None]
) -> None:
    """Import HELP's NB201 latencies and the accuracies unless the store already holds them
    (then the data folder is not needed at all)."""
    from fleetnas.data import import_all

    held = store.measurement_summary()
    nb = held[held["space"] == SPACE] if len(held) else held
    if len(nb) and {"latency", "accuracy_cifar10"} <= set(nb["metric"]):
        say("public data: already in the store")
        return
    reports = import_all(store, data_dir, parts=["help-nasbench201", "nats"])
    say(f"public data: imported {sum(r.rows for r in reports.values()):,} rows")


def _ensure_optimizer(store: Store, seed: int, say: Callable[[str], None]) -> bool:
    """Train the demo's optimizer network unless the store already holds it."""
    from fleetnas.l2o import ARTIFACT_KIND
    from fleetnas.l2o.train import TrainConfig, train_optimizer

    if any(a.name == OPTIMIZER for a in store.list_artifacts(ARTIFACT_KIND)):
        say(f"optimizer network {OPTIMIZER!r}: reused from the store")
        return False
    say(f"optimizer network {OPTIMIZER!r}: training (Method 1, HELP meta-train/valid + synthetic)")
    train_optimizer(store, TrainConfig(space=SPACE, name=OPTIMIZER, seed=seed))
    return True


def build_fleet(store: Store, config: DemoConfig):
    """The demo fleet: HELP settings (budgets at percentiles of their measured latency), local
    ONNX Runtime settings and simulated devices (budgets at percentiles of predicted latency)."""
    from fleetnas.devices.catalog import help_devices
    from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit, sim_fleet
    from fleetnas.spaces import get_space

    space = get_space(SPACE)
    relative = tuple(Budget(Limit(quantile=q), label=label) for label, q in BUDGETS)
    devices = []
    for dev in help_devices(SPACE):
        _, lat = store.get_measurements(space, dev.name, "latency", statistic="mean")
        if len(lat) == 0:
            continue
        budgets = tuple(
            Budget(Limit(value=round(float(np.percentile(lat, q)), 4)), label=label)
            for label, q in BUDGETS
        )
        devices.append(FleetDevice(dev, budgets))
    if config.local:
        devices.extend(FleetDevice(local_device(spec), relative) for spec in LOCAL_SETTINGS)
    if config.n_sim:
        labels = [f"p{q:g}" for _, q in BUDGETS]
        sims = sim_fleet(config.n_sim, seed=config.seed, budgets=labels)
        for d in sims.devices:
            devices.append(FleetDevice(d.device, relative, d.proxy))
    return Fleet("demo-nb201", devices, source="fleetnas demo")


#: Where a device's numbers come from, by the kind of its measurer.
SOURCES = {"table": "HELP (replayed)", "onnxruntime": "this machine (real)", "sim": "simulated"}


def source_of(entry: dict[str, Any]) -> str:
    """The source of a plan entry's device: HELP replay, this machine, or the simulator."""
    kind = str(entry.get("measurer") or "none").split(":", 1)[0]
    return SOURCES.get(kind, kind)


def summary_by_source(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (source, family): devices, entries, measurements, violations, mean regret
    (where ground truth exists) and compute time."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in plan["devices"]:
        groups.setdefault((source_of(e), e.get("family") or "other"), []).append(e)
    rows = []
    for (source, family), es in sorted(groups.items()):
        regrets = [e["truth"]["regret_pp"] for e in es
                   if (e.get("truth") or {}).get("regret_pp") is not None]  # fmt: skip
        rows.append(
            {
                "source": source,
                "family": family,
                "devices": len({e["device"] for e in es}),
                "entries": len(es),
                "measurements": sum(e.get("measurements") or 0 for e in es),
                "violations": sum(bool((e.get("truth") or {}).get("violation")) for e in es),
                "mean regret pp": float(np.mean(regrets)) if regrets else None,
                "time s": sum(e.get("wall_s") or 0.0 for e in es),
            }
        )
    return rows


def local_device(spec: str):
    """This machine's record for a local runtime setting (its setting and its measurement
    protocol are its identity)."""
    from fleetnas.measure.settings import local_device as record

    return record(spec)
