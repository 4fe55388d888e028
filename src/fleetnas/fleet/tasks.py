"""What a plan is made of: its config (:class:`PlanConfig`), its (device, budget) tasks, what a
worker hands back for a chunk, and plan entries (blank and failed ones).

A *task* is one (device, budget) pair of a fleet; its key ``device@label`` is its identity in the
store. Entries are the ``devices`` items of the plan format (``docs/plan-format.md``).
"""

from __future__ import annotations

import hashlib
import json
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import FleetnasError, InputError
from fleetnas.fleet.fleetfile import Budget, Fleet, entry_key

#: ``--approach`` values.
APPROACHES = ("auto", "proxy", "l2o", "hybrid")
#: Methods an entry can record.
METHODS = ("l2o", "hybrid", "proxy", "proxy-fallback")
STATUSES = ("ok", "infeasible", "failed")
#: Accuracy metric of each space's plans by default.
DEFAULT_ACCURACY = {"nb201": "accuracy_cifar10", "ofa_mbv3": "accuracy_imagenet_top1"}


@dataclass(frozen=True)
class PlanConfig:
    """Everything that decides a plan's entries (hashed into :meth:`digest`).

    ``optimizer``: name of Approach 2's stored optimizer artifact (default: the newest for the
    space). ``proxy``: Approach 1's proxy device (default: the proxy pool's choice per device; a
    fleet device's own ``proxy`` wins). ``max_measurements``: per-entry cap of real
    measurements. ``margin``: the network alone's safety margin in log-standard deviations of
    its predicted latency (:func:`fleetnas.l2o.budget.for_budget`; ``benchmarks/l2o_margin.py``
    measures the violations and regret it trades). ``reference_designs``: size of the seeded
    design sample over which relative budgets (``p50``) are percentiles of the predicted
    latency/energy. ``truth``: attach the ground-truth block where it exists; ``truth_pool``:
    size of the oracle's reference pool in non-enumerable spaces
    (:mod:`fleetnas.fleet.ground_truth`). ``chunk_size``: tasks per chunk (one store run each;
    Approach 2 generates a whole chunk in one batched call).
    """

    space: str
    approach: str = "auto"
    accuracy: str | None = None
    seed: int = 0
    optimizer: str | None = None
    proxy: str | None = None
    max_measurements: int | None = None  # None: Approach 1's default (10, up to 20 if worth it)
    hybrid_measurements: int = 3
    #: How the hybrid spends its measurements (:data:`fleetnas.l2o.budget.HYBRID_RULES`;
    #: unset: ``auto``).
    hybrid_rule: str | None = None
    margin: float = 1.0
    truth: bool = True
    truth_pool: int = 10_000
    chunk_size: int = 256
    #: Compressed plans (:mod:`fleetnas.fleet.compression`): the accuracy source
    #: (``modelled``, ``measured``, ``evaluator:pkg.mod:fn``, ``cmd:...``; default modelled)
    #: and the precisions / width ratios the plan may choose (comma-separated; default all).
    accuracy_source: str | None = None
    precisions: str | None = None
    widths: str | None = None

    def __post_init__(self) -> None:
        if self.approach not in APPROACHES:
            raise InputError(
                f"--approach must be one of {', '.join(APPROACHES)}, got {self.approach!r}"
            )
        if self.chunk_size < 1:
            raise InputError(f"chunk size must be >= 1, got {self.chunk_size}")
        if self.max_measurements is not None and self.max_measurements < 1:
            raise InputError(f"max measurements must be >= 1, got {self.max_measurements}")
        if self.hybrid_measurements < 1:
            raise InputError(f"hybrid measurements must be >= 1, got {self.hybrid_measurements}")
        if self.hybrid_rule is not None:
            from fleetnas.l2o.budget import HYBRID_RULES

            if self.hybrid_rule not in HYBRID_RULES:
                raise InputError(
                    f"--hybrid-rule must be one of {', '.join(HYBRID_RULES)}, "
                    f"got {self.hybrid_rule!r}"
                )
        if not (self.margin >= 0 and np.isfinite(self.margin)):
            raise InputError(f"margin must be a finite number >= 0, got {self.margin}")
        if self.accuracy is None:
            object.__setattr__(self, "accuracy", DEFAULT_ACCURACY.get(self.space, "accuracy"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanConfig:
        return cls(**d)

    def digest(self) -> str:
        """Short hash of the config: a stored plan made with another config is not resumed."""
        d = self.to_dict()
        for key in _OPTIONAL_KEYS:  # unset, they leave the digest of earlier plans as it was
            if d.get(key) is None:
                d.pop(key, None)
        blob = json.dumps(d, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: Config keys that leave :meth:`PlanConfig.digest` unchanged while unset.
_OPTIONAL_KEYS = ("accuracy_source", "precisions", "widths", "hybrid_rule")


@dataclass(frozen=True)
class Task:
    """One (device, budget) pair of a fleet, at position ``index`` in fleet order."""

    index: int
    device: Device
    budget: Budget
    proxy: str | None = None

    @property
    def key(self) -> str:
        return entry_key(self.device.name, self.budget.label)

    @property
    def fingerprint(self) -> str:
        """Hash of what the task's result depends on (device record, measurer, budget, proxy):
        a stored entry whose fingerprint differs is recomputed."""
        blob = json.dumps(
            {
                "device": self.device.fingerprint,
                "measurer": self.device.measurer,
                "budget": self.budget.to_json(),
                "proxy": self.proxy,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def seed(self, base: int) -> int:
        """Per-task seed from the plan seed and the task key (independent of chunking)."""
        h = hashlib.sha256(f"{base}:{self.key}".encode()).digest()
        return int.from_bytes(h[:4], "little")


def fleet_tasks(fleet: Fleet) -> list[Task]:
    """Tasks of ``fleet`` in fleet order (device order, then budget order)."""
    out: list[Task] = []
    for d in fleet:
        for b in d.budgets:
            out.append(Task(len(out), d.device, b, d.proxy))
    return out


@dataclass
class ChunkOutput:
    """What a worker hands back for one chunk: entries (in task order) and captured
    measurement writes (:func:`capture_writes`)."""

    chunk: int
    entries: list[dict[str, Any]]
    measurements: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    worker: str = ""
    peak_rss_mb: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def new_entry(task: Task, method: str | None) -> dict[str, Any]:
    """A blank entry for ``task`` in the plan format (status ``failed`` until filled)."""
    b = task.budget
    return {
        "key": task.key,
        "device": task.device.name,
        "family": task.device.family,
        "measurer": task.device.measurer,
        "budget": {
            "latency_ms": None if b.latency is None or b.latency.relative else b.latency.value,
            "energy_mj": None if b.energy is None or b.energy.relative else b.energy.value,
        },
        "budget_label": b.label,
        "budget_spec": b.to_json(),
        "method": method,
        "status": "failed",
        "reason": None,
        "design": None,
        "predicted": {"accuracy": None, "latency_ms": None, "energy_mj": None},
        "measured": None,
        "measurements": 0,
        "measurements_new": 0,
        "measurements_reused": 0,
        "device_seconds": 0.0,
        "confidence": 0.0,
        "proxy": None,
        "truth": None,
        "trace": [],
        "wall_s": 0.0,
        "index": task.index,
        "task_fingerprint": task.fingerprint,
    }


def one_line(exc: BaseException) -> str:
    """A one-line reason for a failed entry: the message, or the type and last frame of an
    unexpected error."""
    text = " ".join(str(exc).split())
    if isinstance(exc, FleetnasError):
        return text or type(exc).__name__
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    return f"internal error {type(exc).__name__}: {text}{where}"[:500]


def seal_infeasible(entry: dict[str, Any]) -> dict[str, Any]:
    """Plan format 2: an ``infeasible`` entry carries no deployable ``design``. The design it
    got closest with moves to ``fastest_measured`` (measured methods: the fastest design
    measured, with its measured numbers, which break the budget; ``measured`` becomes null) or
    ``closest_proposal`` (the network alone: its proposal, whose safe predicted latency breaks
    the budget). A consumer that reads ``design`` without ``status`` deploys nothing.
    Idempotent (also upgrades entries stored by format 1)."""
    if entry.get("status") != "infeasible" or not entry.get("design"):
        return entry
    if entry.get("method") == "l2o":
        pred = entry.get("predicted") or {}
        entry["closest_proposal"] = {
            "design": entry["design"],
            "latency_ms": pred.get("latency_ms"),
            "energy_mj": pred.get("energy_mj"),
        }
    else:
        meas = entry.get("measured") or {}
        entry["fastest_measured"] = {
            "design": entry["design"],
            "latency_ms": meas.get("latency_ms"),
            "energy_mj": meas.get("energy_mj"),
        }
        entry["measured"] = None
    entry["design"] = None
    entry["confidence"] = 0.0
    return entry


def fail(entry: dict[str, Any], exc: BaseException | str) -> dict[str, Any]:
    entry["status"] = "failed"
    entry["reason"] = exc if isinstance(exc, str) else one_line(exc)
    entry["design"] = None
    return entry


__all__ = [
    "APPROACHES",
    "DEFAULT_ACCURACY",
    "METHODS",
    "STATUSES",
    "ChunkOutput",
    "PlanConfig",
    "Task",
    "fail",
    "fleet_tasks",
    "new_entry",
    "one_line",
    "seal_infeasible",
]
