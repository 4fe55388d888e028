"""Cost model of fleet planning: fitted on measured plan runs, projected to large fleets.

A plan run builds its planner (``prepare``), starts the executor (``startup``), then pipelines:
workers plan chunks in parallel while the driver writes each finished chunk to the store, one run
per chunk; finally the plan is assembled from the store (``finish``). Its wall time is modelled as

    wall(T, W) = prepare + startup + max(T * task_s / (W * efficiency), T * write_s)
                 + T * finish_s

for ``T`` tasks (device x budget pairs) on ``W`` workers (in the driver itself, ``serial``, the
two terms of the pipeline add up instead). ``task_s`` is the worker seconds of one task on a core
of its own, ``write_s`` the driver seconds to write one task's entry and measurements (the serial
part: when it dominates, a faster store or bulk writes are needed, not more nodes),
``efficiency`` the share of the workers' cores that turns into progress (scheduling,
serialization, and on a small machine the driver and other jobs sharing the cores),
``finish_s`` the per-task cost of assembling the plan. :meth:`CostModel.fit` takes ``task_s``
and ``write_s`` from serial runs' own accounting, ``prepare``, ``startup`` and ``finish_s`` as
measured, and ``efficiency`` from the parallel runs' wall times; :meth:`CostModel.check`
compares predictions with runs, including ones it was not fitted on.

Projection (:meth:`CostModel.project`) to a Ray cluster of ``nodes`` x ``cores_per_node`` CPUs
(one core kept for the driver) prices core-hours at ``usd_per_core_hour``. The default,
:data:`USD_PER_CORE_HOUR` = 0.048, is an *assumption*: the on-demand price of one vCPU of a
general-purpose cloud instance (e.g. a 4-vCPU instance at about $0.19/h), not a quote; spot or
reserved capacity is several times cheaper. Billing is per node for the whole wall time,
startup included; the cluster's start is :data:`CLUSTER_STARTUP_S` (an assumption: nodes already
up, workers import and receive the planner).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fleetnas.errors import InputError

#: Assumed price of one CPU core for one hour, USD (see the module docstring).
USD_PER_CORE_HOUR = 0.048
#: Assumed start of a Ray cluster job (cluster already up: connect, ship the planner, warm).
CLUSTER_STARTUP_S = 30.0


@dataclass
class RunSample:
    """One measured plan run: ``tasks`` planned by ``workers`` in ``wall_s`` seconds, split as
    in :class:`fleetnas.fleet.plan.RunStats`; ``worker_s`` summed chunk times inside the
    workers, ``write_s`` the driver's store writes."""

    label: str
    executor: str
    workers: int
    tasks: int
    wall_s: float
    startup_s: float
    worker_s: float
    write_s: float
    prepare_s: float = 0.0
    finish_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CostModel:
    """``wall = prepare + startup + max(T task_s / (W eff), T write_s) + T finish_s``."""

    task_s: float
    write_s: float
    efficiency: float
    finish_s: float = 0.0
    prepare_s: float = 0.0
    startup_s: dict[str, float] = field(default_factory=dict)
    fitted_on: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, samples: Sequence[RunSample]) -> CostModel:
        """Per-task worker and write seconds from the serial runs (one process, nothing else
        competing: the cost on a dedicated core), or from all runs when none is serial;
        per-task finish seconds pooled; ``prepare`` as the median measured; ``startup`` per
        executor as the median measured; efficiency as the median over parallel runs of ideal
        compute time / measured pipeline time (1 when only serial runs are given)."""
        if not samples:
            raise InputError("the cost model needs at least one measured run")
        if sum(s.tasks for s in samples) <= 0:
            raise InputError("the measured runs planned no tasks")
        base = [s for s in samples if s.executor == "serial" and s.tasks > 0] or list(samples)
        tasks = sum(s.tasks for s in base)
        task_s = sum(s.worker_s for s in base) / tasks
        write_s = sum(s.write_s for s in base) / tasks
        finish_s = sum(s.finish_s for s in samples) / sum(s.tasks for s in samples)
        effs = []
        for s in samples:
            if s.executor == "serial":
                continue
            busy = s.wall_s - s.prepare_s - s.startup_s - s.tasks * finish_s
            ideal = s.tasks * task_s / s.workers
            if busy > 0 and s.tasks * write_s < busy:
                effs.append(min(1.0, ideal / busy))
        startup: dict[str, list[float]] = {}
        for s in samples:
            startup.setdefault(s.executor, []).append(s.startup_s)
        return cls(
            task_s=task_s,
            write_s=write_s,
            efficiency=_median(effs) if effs else 1.0,
            finish_s=finish_s,
            prepare_s=_median([s.prepare_s for s in samples]),
            startup_s={k: _median(v) for k, v in startup.items()},
            fitted_on=[s.label for s in samples],
        )

    def predict_wall(self, tasks: int, workers: int, executor: str) -> float:
        startup = self.startup_s.get(executor, max(self.startup_s.values(), default=0.0))
        writes = tasks * self.write_s
        if executor == "serial":
            pipeline = tasks * self.task_s + writes
        else:
            pipeline = max(tasks * self.task_s / (max(1, workers) * self.efficiency), writes)
        return self.prepare_s + startup + pipeline + tasks * self.finish_s

    def check(self, samples: Sequence[RunSample]) -> list[dict[str, Any]]:
        """Predicted against measured wall time per run (relative error)."""
        rows = []
        for s in samples:
            pred = self.predict_wall(s.tasks, s.workers, s.executor)
            rows.append(
                {
                    "run": s.label,
                    "fitted": s.label in self.fitted_on,
                    "measured_s": s.wall_s,
                    "predicted_s": pred,
                    "error": (pred - s.wall_s) / s.wall_s if s.wall_s > 0 else math.nan,
                }
            )
        return rows

    def project(
        self,
        devices: int = 1_000_000,
        budgets: int = 3,
        nodes: int = 10,
        cores_per_node: int = 32,
        usd_per_core_hour: float = USD_PER_CORE_HOUR,
        startup_s: float = CLUSTER_STARTUP_S,
    ) -> dict[str, Any]:
        """Wall time and cost of ``devices x budgets`` tasks on a Ray cluster."""
        if nodes < 1 or cores_per_node < 1 or devices < 1 or budgets < 1:
            raise InputError("nodes, cores per node, devices and budgets must be >= 1")
        tasks = devices * budgets
        workers = max(1, nodes * cores_per_node - 1)
        compute = tasks * self.task_s / (workers * self.efficiency)
        write = tasks * self.write_s
        wall = self.prepare_s + startup_s + max(compute, write) + tasks * self.finish_s
        cores = nodes * cores_per_node
        return {
            "devices": devices,
            "budgets": budgets,
            "tasks": tasks,
            "nodes": nodes,
            "cores_per_node": cores_per_node,
            "workers": workers,
            "wall_s": wall,
            "compute_s": compute,
            "write_s": write,
            "bound": "driver writes" if write > compute else "workers",
            "core_hours": cores * wall / 3600.0,
            "usd": cores * wall / 3600.0 * usd_per_core_hour,
            "usd_per_core_hour": usd_per_core_hour,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _median(values: Sequence[float]) -> float:
    v = sorted(values)
    n = len(v)
    return float(v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


__all__ = ["CLUSTER_STARTUP_S", "USD_PER_CORE_HOUR", "CostModel", "RunSample"]
