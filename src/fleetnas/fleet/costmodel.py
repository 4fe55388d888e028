"""Cost model of fleet planning: fitted on measured plan runs, projected to large fleets.

A plan run is a pipeline: workers plan chunks in parallel while the driver writes finished chunks
to the store, one run each. Its wall time is modelled as

    wall(T, W) = startup + max(T * task_s / (W * efficiency), T * write_s)

for ``T`` tasks (device x budget pairs) on ``W`` workers: ``task_s`` is the worker seconds one
task takes (measured inside the workers, chunk by chunk), ``write_s`` the driver seconds to write
one task's entry (the serial part: when it dominates, a bigger store server or bigger chunks are
needed, not more nodes), ``efficiency`` the share of worker time that turns into progress
(scheduling, serialization, a shared machine), and ``startup`` the executor's start (process
spawn, Ray init, shipping the planner). :meth:`CostModel.fit` takes ``task_s`` and ``write_s``
from the runs' own accounting and ``efficiency`` / ``startup`` from their wall times;
:meth:`CostModel.check` compares its predictions with the runs it was fitted on and with others.

Projection (:meth:`CostModel.project`) to a Ray cluster of ``nodes`` x ``cores_per_node`` CPUs
(one core kept for the driver) prices core-hours at ``usd_per_core_hour``. The default,
:data:`USD_PER_CORE_HOUR` = 0.048, is an *assumption*: the on-demand price of one vCPU of a
general-purpose cloud instance (e.g. a 4-vCPU instance at about $0.19/h), not a quote; spot or
reserved capacity is several times cheaper. Billing is per node for the whole wall time,
startup included.
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
    """One measured plan run: ``tasks`` planned by ``workers`` in ``wall_s`` seconds, of which
    ``startup_s`` before the first chunk came back; ``worker_s`` summed chunk times inside the
    workers, ``write_s`` the driver's store writes."""

    label: str
    executor: str
    workers: int
    tasks: int
    wall_s: float
    startup_s: float
    worker_s: float
    write_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CostModel:
    """``wall = startup + max(T task_s / (W efficiency), T write_s)`` (module docstring)."""

    task_s: float
    write_s: float
    efficiency: float
    startup_s: dict[str, float] = field(default_factory=dict)
    fitted_on: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, samples: Sequence[RunSample]) -> CostModel:
        """Per-task worker and driver seconds pooled over ``samples``; efficiency as the
        median over runs of ideal parallel time / (wall - startup); startup per executor as
        the median measured."""
        if not samples:
            raise InputError("the cost model needs at least one measured run")
        tasks = sum(s.tasks for s in samples)
        if tasks <= 0:
            raise InputError("the measured runs planned no tasks")
        task_s = sum(s.worker_s for s in samples) / tasks
        write_s = sum(s.write_s for s in samples) / tasks
        effs = []
        for s in samples:
            busy = max(s.wall_s - s.startup_s, 1e-9)
            ideal = s.tasks * task_s / s.workers
            effs.append(min(1.0, ideal / busy) if s.tasks * write_s < busy else 1.0)
        startup: dict[str, list[float]] = {}
        for s in samples:
            startup.setdefault(s.executor, []).append(s.startup_s)
        return cls(
            task_s=task_s,
            write_s=write_s,
            efficiency=_median(effs),
            startup_s={k: _median(v) for k, v in startup.items()},
            fitted_on=[s.label for s in samples],
        )

    def predict_wall(self, tasks: int, workers: int, executor: str) -> float:
        startup = self.startup_s.get(executor, max(self.startup_s.values(), default=0.0))
        compute = tasks * self.task_s / (max(1, workers) * self.efficiency)
        return startup + max(compute, tasks * self.write_s)

    def check(self, samples: Sequence[RunSample]) -> list[dict[str, Any]]:
        """Predicted against measured wall time per run (relative error)."""
        rows = []
        for s in samples:
            pred = self.predict_wall(s.tasks, s.workers, s.executor)
            rows.append(
                {
                    "run": s.label,
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
        wall = startup_s + max(compute, write)
        cores = nodes * cores_per_node
        return {
            "devices": devices,
            "budgets": budgets,
            "tasks": tasks,
            "nodes": nodes,
            "cores_per_node": cores_per_node,
            "workers": workers,
            "wall_s": wall,
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
