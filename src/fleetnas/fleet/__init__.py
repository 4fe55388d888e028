"""Plan a whole fleet: fleet files, per-device planners, executors, resumable plans, truth.

``read_fleet(path)`` reads a fleet (YAML or CSV); ``plan_fleet(fleet, config, store, planner)``
plans it resumably on an executor (``make_executor("local" | "ray" | "serial")``) and writes
plan.json (``docs/plan-format.md``); :mod:`fleetnas.fleet.ground_truth` checks plans against
simulated and replayed devices; :mod:`fleetnas.fleet.costmodel` projects large fleets.
"""

from __future__ import annotations

from fleetnas.fleet.executors import (
    EXECUTORS,
    Executor,
    LocalPool,
    RayExecutor,
    SerialExecutor,
    make_executor,
    ray_available,
)
from fleetnas.fleet.fleetfile import (
    Budget,
    Fleet,
    FleetDevice,
    Limit,
    entry_key,
    parse_budgets,
    read_fleet,
    sim_fleet,
    write_fleet,
)
from fleetnas.fleet.ground_truth import GroundTruth, summarize_truth
from fleetnas.fleet.plan import PlanRun, plan_fleet
from fleetnas.fleet.plan_document import not_ok_line, read_plan, summarize, write_plan
from fleetnas.fleet.planner import (
    APPROACHES,
    METHODS,
    ChunkOutput,
    PlanConfig,
    Planner,
    Task,
    fleet_tasks,
)

__all__ = [
    "APPROACHES",
    "EXECUTORS",
    "METHODS",
    "Budget",
    "ChunkOutput",
    "Executor",
    "Fleet",
    "FleetDevice",
    "GroundTruth",
    "Limit",
    "LocalPool",
    "PlanConfig",
    "PlanRun",
    "Planner",
    "RayExecutor",
    "SerialExecutor",
    "Task",
    "entry_key",
    "fleet_tasks",
    "make_executor",
    "not_ok_line",
    "parse_budgets",
    "plan_fleet",
    "ray_available",
    "read_fleet",
    "read_plan",
    "sim_fleet",
    "summarize",
    "summarize_truth",
    "write_fleet",
    "write_plan",
]
