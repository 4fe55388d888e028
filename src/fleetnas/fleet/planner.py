"""Per-device work of a fleet plan: tasks, the planner interface, plan entries, and the planner
behind ``fleetnas plan`` (:class:`FleetPlanner`).

Methods an entry records:

- ``l2o``: Approach 2's optimizer network alone, in budget mode (bisection on ``λ`` against the
  *predicted* latency with a safety margin, :func:`fleetnas.l2o.budget.for_budget`), one batched
  call per chunk. No design is measured, but an optimizer that reads probe latencies needs the
  device's ``K`` probe latencies (:meth:`FleetPlanner._features`). ``confidence`` is the
  predicted probability that the design meets the budget (log-normal with the predictor's
  spread).
- ``hybrid``: the network's proposals verified with at most ``hybrid_measurements`` real
  measurements by Approach 1's bisection primitive (:func:`fleetnas.l2o.budget.
  for_budget_verified` over :func:`fleetnas.proxy.verify_candidates`), after the probes.
- ``proxy``: Approach 1 (:func:`fleetnas.proxy.optimize_device`: probes, proxy pool, guided
  verification, its own monotonicity fallback); ``proxy-fallback`` when the hybrid handed over
  because no verified proposal met the budget, or because the measured designs contradicted the
  predicted order (monotonicity, :func:`fleetnas.proxy.check_monotonicity` over at least
  :data:`HYBRID_MIN_PAIRS` pairs), or for energy budgets (the hybrid verifies latency only), or
  when Approach 1 itself fell back to training the device's own predictor. An entry whose pool
  the network joined (below) names it in ``network_proxy``.

``--approach auto`` picks per device the cheapest approach that is good enough:

- a device that cannot be measured gets the network alone (``l2o``): nothing else can run;
- a device that can be measured gets Approach 1's guided search (``proxy``). Where the device's
  features cost nothing (the probe latencies were measured earlier by a real measurer, or were
  measured in this plan anyway for a relative budget, or the optimizer reads spec features only)
  the network's latency predictor, adapted to those features, joins the proxy pool for that
  device: the blend weighs it by evidence like any proxy and its predicted front adds
  candidates;
- only where the store holds no proxy device for Approach 1 (e.g. OFA-MobileNetV3 with HELP's
  sampled latencies) does a measurable device get the hybrid.

Why not the hybrid everywhere, as first planned: its ten probe measurements must be paid on a
device seen for the first time, and then it costs about as much as Approach 1 and is far worse.
On HELP's 27 NB201 settings replayed with every measurement charged (budgets at the 10/30/50 %
latency quantiles, ``benchmarks/results/fleet_auto.md``) Approach 1 used 15.3 measurements per
device for the three budgets with mean regret 0.043 pp, the hybrid 14.2 with 0.91 pp. Joining
the network to Approach 1 *costs* its ten probes where they are not free (21.2 measurements per
device for 0.027 pp in the same setting), so ``auto`` joins it only where they are free; there
it saves measurements and regret (simulated devices measured before: 13.5 against Approach 1's
16.4 per device, 0.010 against 0.048 pp; HELP devices with relative budgets: 21.3 against 22.8,
0.019 against 0.036 pp). :class:`FleetPlanner`'s ``join`` changes that policy.

Measured entries (``hybrid``, ``proxy*``) never return a design whose *measured* latency exceeds
the budget: they are ``ok`` with ``confidence`` 1, or ``infeasible``.

Charging: every design measured on a device costs one measurement, probes included. A replayed
device (``table:NAME``) pays for each distinct design once per plan (its budgets share one
session), however much of its table the store holds; a real measurer reuses the values it stored
earlier for free; a device that cannot be measured reads probe latencies stored for it
(measured earlier elsewhere) at no charge.

A *task* is one (device, budget) pair of a fleet; its key ``device@label`` is its identity in the
store. A :class:`Planner` turns a chunk of tasks into plan entries (the ``devices`` items of the
plan format, ``docs/plan-format.md``) and never raises for a device: a failure becomes an entry
with status ``failed`` and a one-line reason, and the rest of the chunk goes on.

Planners are built in the driver (where the store is), shipped to workers whole (pickled once
per worker) and bound there (:meth:`Planner.bind_worker`). Workers never write the store: every
measurement a worker's measurer would write is captured (:func:`capture_writes`) and handed back
in :class:`ChunkOutput` for the driver to write in the chunk's run. Results depend only on the
plan config, the task and the chunk's composition, never on which worker ran it: per-task seeds
come from ``(config.seed, task key)`` and workers run one BLAS/torch thread.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import FleetnasError, InputError
from fleetnas.fleet.fleetfile import Budget, Fleet, entry_key

if TYPE_CHECKING:
    from fleetnas.measure import Measurer
    from fleetnas.spaces import SearchSpace

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
    max_measurements: int = 10
    hybrid_measurements: int = 3
    margin: float = 1.0
    truth: bool = True
    truth_pool: int = 10_000
    chunk_size: int = 256

    def __post_init__(self) -> None:
        if self.approach not in APPROACHES:
            raise InputError(
                f"--approach must be one of {', '.join(APPROACHES)}, got {self.approach!r}"
            )
        if self.chunk_size < 1:
            raise InputError(f"chunk size must be >= 1, got {self.chunk_size}")
        if self.max_measurements < 1:
            raise InputError(f"max measurements must be >= 1, got {self.max_measurements}")
        if self.hybrid_measurements < 1:
            raise InputError(f"hybrid measurements must be >= 1, got {self.hybrid_measurements}")
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
        blob = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


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


def fail(entry: dict[str, Any], exc: BaseException | str) -> dict[str, Any]:
    entry["status"] = "failed"
    entry["reason"] = exc if isinstance(exc, str) else one_line(exc)
    entry["design"] = None
    return entry


def capture_writes(measurer: Measurer, sink: list[dict[str, Any]]) -> Measurer:
    """Make ``measurer`` hand its store writes to ``sink`` (serialized batches) instead of
    writing: workers never write the store, the driver writes ``sink`` in the chunk's run."""

    def _write(space: SearchSpace, archs: np.ndarray, fresh: Any) -> int | None:
        texts = space.format_many(archs)
        for metric, vals in fresh.values.items():
            est = fresh.is_estimate.get(metric, metric in measurer.estimated_metrics)
            stats = fresh.stats.get(metric, {})
            n = stats.get("n", 1)
            extra = {k: v for k, v in stats.items() if k != "n"}
            for stat, arr in {measurer.statistic: vals, **extra}.items():
                sink.append(
                    {
                        "space": space.name,
                        "device": measurer.device.name,
                        "metric": metric,
                        "statistic": stat,
                        "unit": fresh.units.get(metric, ""),
                        "method": measurer.method,
                        "is_estimate": bool(est),
                        "archs": texts,
                        "values": np.asarray(arr, dtype=float).tolist(),
                        "n": np.asarray(n).tolist(),
                    }
                )
        return None

    measurer._write = _write  # type: ignore[method-assign]
    return measurer


class Planner(ABC):
    """Turns chunks of tasks into plan entries. Subclasses implement :meth:`plan_tasks`."""

    def __init__(self, config: PlanConfig) -> None:
        self.config = config
        self._bound = False

    def prepare(self, tasks: Sequence[Task]) -> None:  # noqa: B027 (optional hook)
        """Called once in the driver with the tasks to plan, before any worker starts: build
        what all workers share (it travels with the planner)."""

    def bind_worker(self, threads: int | None = 1) -> None:
        """Prepare this process to run chunks: one BLAS/torch thread (``threads``; ``None``
        leaves the process as it is), open per-process handles."""
        if threads is not None:
            _limit_threads(threads)
        self._bound = True

    def plan(self, chunk_id: int, tasks: Sequence[Task]) -> ChunkOutput:
        """Entries for ``tasks`` (same order); a task that raises becomes a failed entry."""
        out = ChunkOutput(chunk_id, [])
        t0 = time.perf_counter()
        try:
            entries = self.plan_tasks(tasks, out)
        except Exception as exc:  # a whole-chunk failure still yields one entry per task
            entries = [fail(new_entry(t, None), exc) for t in tasks]
        if len(entries) != len(tasks):
            raise AssertionError(f"planner returned {len(entries)} entries for {len(tasks)} tasks")
        per = (time.perf_counter() - t0) / max(1, len(tasks))
        for e in entries:
            if not e.get("wall_s"):
                e["wall_s"] = per
        out.entries = entries
        return out

    @abstractmethod
    def plan_tasks(self, tasks: Sequence[Task], out: ChunkOutput) -> list[dict[str, Any]]:
        """One entry per task, in order. May append captured writes to ``out.measurements``."""


def _limit_threads(n: int) -> None:
    """``n`` torch and BLAS threads for the rest of this (worker) process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


@contextmanager
def single_thread() -> Iterator[None]:
    """One torch and BLAS thread for a block, then the previous settings: per-device work is
    small matrices, where spinning OpenMP threads on a shared machine cost more than they
    give (a chunk of 256 tasks ran 3-4x slower with two threads on two busy cores)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


# ---- the real planner: Approach 1, Approach 2 and their hybrid ---------------------------------
class _Context:
    """What one process loads once for a plan: the space, the accuracy reference, Approach 1's
    workspace and Approach 2's optimizer (each on first use), and the ground truth."""

    def __init__(self, config: PlanConfig, store: Any) -> None:
        from fleetnas.fleet.ground_truth import _accuracy_reference
        from fleetnas.spaces import get_space

        self.config = config
        self.store = store
        self.space = get_space(config.space)
        self.accuracy_fn = _accuracy_reference(self.space, config.accuracy, store)
        self._workspace: Any = None
        self._optimizer: Any = None
        self._approach1: bool | None = None

    def accuracy(self, archs: np.ndarray) -> np.ndarray:
        if self.accuracy_fn is None:
            raise InputError(
                f"no accuracy predictor for space {self.space.name!r} (metric "
                f"{self.config.accuracy!r}); import it first (fleetnas data import)"
            )
        return np.asarray(self.accuracy_fn(archs), dtype=float).reshape(-1)

    @property
    def optimizer(self) -> Any:
        """Approach 2's stored optimizer (``config.optimizer``, else the newest one stored for
        the space), loaded with its performance networks on first use."""
        if self._optimizer is None:
            from fleetnas.l2o.artifact import ARTIFACT_KIND, load_optimizer

            if self.store is None:
                raise InputError("Approach 2 needs a store holding a trained optimizer")
            name = self.config.optimizer
            if name is None:
                mine = [
                    a
                    for a in self.store.list_artifacts(ARTIFACT_KIND)
                    if (a.meta or {}).get("space") == self.space.name
                ]
                if not mine:
                    raise InputError(
                        f"the store holds no optimizer network for space {self.space.name!r}; "
                        f"train one (fleetnas l2o train {self.space.name} --name NAME) or plan "
                        "with --approach proxy"
                    )
                name = max(mine, key=lambda a: (a.created, a.name)).name
            opt = load_optimizer(self.store, name)
            if opt.space.name != self.space.name:
                raise InputError(
                    f"optimizer {name!r} is for space {opt.space.name!r}, not {self.space.name!r}"
                )
            self._optimizer = opt
        return self._optimizer

    @property
    def needs_probes(self) -> bool:
        """Whether the optimizer (network or latency predictor) reads probe latencies."""
        opt = self.optimizer
        mode = opt.net.spec.mode
        lat_mode = "spec"
        if opt.objective is not None:
            lat_mode = str(getattr(opt.objective.latency, "features", "probes"))
        return mode != "spec" or lat_mode != "spec"

    @property
    def approach1_available(self) -> bool:
        """Whether Approach 1 can run in this space (the store holds proxy devices for it)."""
        if self._approach1 is None:
            try:
                self._approach1 = self.workspace is not None
            except InputError:
                self._approach1 = False
        return self._approach1

    @property
    def workspace(self) -> Any:
        """Approach 1's workspace over the store's proxy pool (built on first use)."""
        if self._workspace is None:
            from fleetnas.proxy import ProxyPool, Workspace

            if self.store is None:
                raise InputError("Approach 1 needs a store holding the proxy devices' data")
            pool = ProxyPool.from_store(self.store, self.space)
            if len(pool) == 0:
                raise InputError(
                    f"the store holds no proxy device for space {self.space.name!r}; import "
                    f"HELP's latencies (fleetnas data import) or register a proxy"
                )
            self.accuracy(self.space.sample(1, 0))
            self._workspace = Workspace(self.space, self.accuracy, pool, seed=self.config.seed)
        return self._workspace


class FleetPlanner(Planner):
    """The approaches behind ``fleetnas plan`` (see the module docstring and :meth:`method_for`
    for ``auto``).

    ``join``: under ``auto``, where the network's latency predictor joins Approach 1's pool:
    ``"free"`` (where the device's features cost nothing; the default, chosen by
    ``benchmarks/fleet_auto.py``), ``"always"`` (measuring the probes where needed) or
    ``"never"``. It changes entries without changing the config's digest: keep one policy per
    stored plan.

    Built in the driver with the store (``store``; its URL travels to workers, which open their
    own read handle; an in-memory store works only in the driver's process).
    """

    def __init__(self, config: PlanConfig, store: Any = None, join: str = "free") -> None:
        super().__init__(config)
        if join not in JOIN:
            raise InputError(f"join must be one of {', '.join(JOIN)}, got {join!r}")
        self.join = join
        self.store_url = None if store is None else getattr(store, "url", None)
        self._store = store
        self._ctx: _Context | None = None
        self.truth: Any = None

    def prepare(self, tasks: Sequence[Task]) -> None:
        """Build the ground truth once, in the driver, when some device has one (simulated or
        replayed) and the config asks for it; workers receive it ready."""
        if not self.config.truth or self.truth is not None:
            return
        kinds = {t.device.measurer_kind for t in tasks}
        if not kinds & {"sim", "table"}:
            return
        from fleetnas.fleet.ground_truth import GroundTruth

        self.truth = GroundTruth.for_space(
            self.config.space,
            self.config.accuracy,
            self._store,
            pool_size=self.config.truth_pool,
            seed=self.config.seed,
        )
        if self.truth is not None:
            self.truth.prepare()

    def __getstate__(self) -> dict[str, Any]:
        if self.store_url in (None, "memory://") and self._store is not None:
            raise InputError(
                "an in-memory store is not visible to worker processes; plan with "
                "--executor serial or keep the store in a file or a database"
            )
        state = dict(self.__dict__)
        state.update(_store=None, _ctx=None, _bound=False)
        return state

    def bind_worker(self, threads: int | None = 1) -> None:
        super().bind_worker(threads)
        if self._store is None and self.store_url is not None:
            from fleetnas.store import open_store

            self._store = open_store(self.store_url)

    @property
    def context(self) -> _Context:
        if self._ctx is None:
            self._ctx = _Context(self.config, self._store)
        return self._ctx

    # ---- dispatch -------------------------------------------------------------------------
    def method_for(self, task: Task) -> str:
        """The method a task starts with. ``auto``: the network alone without a measurer;
        with one, Approach 1 (its guided search, joined by the network's latency predictor
        where the device's features cost nothing, :meth:`_features`), or the hybrid where the
        store holds no proxy device for Approach 1."""
        a = self.config.approach
        if a != "auto":
            return a
        if not task.device.measurer:
            return "l2o"
        return "proxy" if self.context.approach1_available else "hybrid"

    def plan_tasks(self, tasks: Sequence[Task], out: ChunkOutput) -> list[dict[str, Any]]:
        ctx = self.context
        entries = [new_entry(t, self.method_for(t)) for t in tasks]
        t0 = time.perf_counter()
        devices = _by_device(tasks)
        sessions = self._sessions(ctx, tasks, devices, out)
        feats = self._features(ctx, tasks, entries, devices, sessions)
        self._resolve_budgets(ctx, tasks, entries, feats)
        live = [i for i, e in enumerate(entries) if e["reason"] is None]
        l2o = [i for i in live if entries[i]["method"] == "l2o"]
        if l2o:
            self._l2o(ctx, [tasks[i] for i in l2o], [entries[i] for i in l2o], feats)
        for i in live:
            method = entries[i]["method"]
            if method == "l2o":
                continue
            t1 = time.perf_counter()
            try:
                session = sessions.get(tasks[i].device.name)
                if method == "hybrid":
                    self._hybrid(ctx, tasks[i], entries[i], session, feats)
                else:
                    join = self.config.approach == "auto" and self.join != "never"
                    self._proxy(ctx, tasks[i], entries[i], session, feats if join else None)
            except Exception as exc:
                fail(entries[i], exc)
            entries[i]["wall_s"] += time.perf_counter() - t1
        out.timings["plan_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        if self.truth is not None:
            devs = {t.device.name: t.device for t in tasks}
            try:
                self.truth.attach(entries, devs, ctx.store)
            except Exception as exc:  # truth is a check, never a reason to lose a plan
                for e in entries:
                    e["truth"] = None
                    e["truth_error"] = one_line(exc)
        out.timings["truth_s"] = time.perf_counter() - t1
        return entries

    # ---- measurement sessions and device features -----------------------------------------
    def _measurer(self, ctx: _Context, device: Device, sink: list[dict[str, Any]]) -> Measurer:
        from fleetnas.measure import get_measurer, split_spec

        if not device.measurer:
            raise InputError(
                f"device {device.name!r} has no measurer; Approach 1 and the hybrid need "
                "real measurements (use --approach l2o or auto)"
            )
        kind = split_spec(device.measurer)[0]
        bound = None if kind == "agent" else device
        return capture_writes(get_measurer(device.measurer, ctx.store, bound), sink)

    def _sessions(
        self, ctx: _Context, tasks: Sequence[Task], devices: dict[str, list[int]], out: ChunkOutput
    ) -> _Sessions:
        return _Sessions(self, ctx, tasks, devices, out)

    def _features(
        self,
        ctx: _Context,
        tasks: Sequence[Task],
        entries: list[dict[str, Any]],
        devices: dict[str, list[int]],
        sessions: _Sessions,
    ) -> dict[str, Any]:
        """Approach 2's features (``name -> one-row DeviceSet``): spec features from the
        record, and the latencies of the optimizer's probe designs.

        A device that can be measured gets its probe latencies through its measurement session,
        which alone decides what is free: a real measurer reuses values it (or another real
        measurer) stored earlier at no charge, a replayed table (``table:NAME``) charges every
        distinct design once per plan, however much of the table the store holds. Charges go to
        the device's first entry. A device that cannot be measured reads them from the store
        (measured there earlier), else its entries fail. Devices that need the features (the
        network alone, the hybrid, relative budgets) always get them; under ``auto`` Approach 1's
        devices get them only where they cost nothing (:meth:`fleetnas.proxy.TargetSession.free`),
        and only to let the network's latency predictor join the proxy pool (:meth:`_proxy`)."""
        from fleetnas.l2o.embed import stored_values
        from fleetnas.l2o.features import DeviceSet, spec_features

        need, optional = set(), set()
        for name, idx in devices.items():
            live = [i for i in idx if entries[i]["reason"] is None]
            if any(entries[i]["method"] in ("l2o", "hybrid") or tasks[i].budget.relative
                   for i in live):  # fmt: skip
                need.add(name)
            elif (
                self.config.approach == "auto"
                and self.join != "never"
                and live
                and not (tasks[idx[0]].proxy or self.config.proxy)
            ):
                (need if self.join == "always" else optional).add(name)
        feats: dict[str, Any] = {}
        if not need and not optional:
            return feats
        try:
            opt = ctx.optimizer
            if opt.objective is None and optional:
                optional = set()
        except Exception as exc:
            for name in need:
                for i in devices[name]:
                    fail(entries[i], exc)
            return feats
        for name in sorted(need | optional, key=lambda n: devices[n][0]):
            idx = devices[name]
            dev = tasks[idx[0]].device
            try:
                spec = spec_features([dev])
                probes = None
                if ctx.needs_probes:
                    p = opt.probes
                    if dev.measurer:
                        session = sessions.get(name)
                        if name in optional and not session.free(p).all():
                            continue
                        vals = self._measure_probes(ctx, session, p, entries[idx[0]])
                    else:
                        vals = (
                            stored_values(ctx.store, ctx.space, dev.name, p)
                            if ctx.store is not None
                            else np.full(len(p), np.nan)
                        )
                        if not np.all(np.isfinite(vals)):
                            raise InputError(
                                f"optimizer {opt.name!r} reads the device's latency on "
                                f"{len(p)} probe designs, and device {name!r} cannot be "
                                "measured; use an optimizer trained on spec features"
                            )
                    probes = vals[None, :]
                feats[name] = DeviceSet([name], probes=probes, spec=spec)
            except Exception as exc:
                for i in idx:
                    fail(entries[i], exc)
        return feats

    @staticmethod
    def _measure_probes(
        ctx: _Context, session: Any, probes: np.ndarray, entry: dict[str, Any]
    ) -> np.ndarray:
        """Probe latencies through ``session``; what it charges goes to ``entry``."""
        known = session.lookup(probes)[0]
        before = (session.cost.measurements, session.cost.device_seconds)
        vals = session.measure(probes)[:, 0]
        charged = session.cost.measurements - before[0]
        if charged:
            entry["measurements"] += charged
            entry["device_seconds"] += session.cost.device_seconds - before[1]
            entry["probe_measurements"] = entry.get("probe_measurements", 0) + charged
            entry["trace"].extend(_probe_trace(ctx.space.format_many(probes[~known]), vals[~known]))
        return vals

    def _resolve_budgets(
        self,
        ctx: _Context,
        tasks: Sequence[Task],
        entries: list[dict[str, Any]],
        feats: dict[str, Any],
    ) -> None:
        """Relative budgets (``pNN``): percentiles of the device's predicted latency (energy)
        over Approach 2's reference designs, one batched prediction per chunk."""
        rel = [i for i, t in enumerate(tasks) if t.budget.relative and entries[i]["reason"] is None]
        if not rel:
            return
        from fleetnas.l2o.features import DeviceSet

        names = list(dict.fromkeys(tasks[i].device.name for i in rel))
        try:
            obj = ctx.optimizer._need_objective("relative budgets (pNN)")
            devset = DeviceSet.concat([feats[n] for n in names])
            lat = obj.matrix(devset, obj.reference, "latency")
            en = None
            if any(tasks[i].budget.energy is not None for i in rel):
                en = obj.matrix(devset, obj.reference, "energy")
        except Exception as exc:
            for i in rel:
                fail(entries[i], exc)
            return
        col = {n: k for k, n in enumerate(names)}
        for i in rel:
            b, e = tasks[i].budget, entries[i]
            k = col[tasks[i].device.name]
            if b.latency is not None and b.latency.relative:
                e["budget"]["latency_ms"] = float(np.percentile(lat[:, k], b.latency.quantile))
            if b.energy is not None and b.energy.relative:
                assert en is not None
                e["budget"]["energy_mj"] = float(np.percentile(en[:, k], b.energy.quantile))

    # ---- Approach 1 ------------------------------------------------------------------------
    def _proxy(
        self,
        ctx: _Context,
        task: Task,
        entry: dict[str, Any],
        session: Any,
        feats: dict[str, Any] | None = None,
        method: str = "proxy",
    ) -> None:
        """Approach 1 (:func:`fleetnas.proxy.optimize_device`, guided search) for one budget.

        Its probes are the first ``n_probes`` of the store's reference designs (the optimizer's
        probe designs). Where ``feats`` holds the device's features, the device's probe
        latencies are already in ``session`` (no probes of its own are needed) and the
        network's latency predictor, adapted to those features, joins the proxy pool for this
        device (:func:`_network_proxy`): the blend weighs it by how well it explains what was
        measured, like any other proxy, and its predicted front adds candidates."""
        from fleetnas.proxy import Approach1Config, default_probes, optimize_device

        ws = ctx.workspace
        proxy = task.proxy or self.config.proxy or "auto"
        b = entry["budget"]
        if b["latency_ms"] is None:
            raise InputError("Approach 1 needs a latency budget")
        net = None
        if feats and task.device.name in feats and proxy == "auto":
            net = _network_proxy(ctx.optimizer, feats[task.device.name])
        known = net is not None and ctx.needs_probes
        cfg = Approach1Config(
            max_measurements=self.config.max_measurements,
            n_probes=0 if known else Approach1Config.n_probes,
            seed=task.seed(self.config.seed),
        )
        probes = None if known else default_probes(ws, cfg.n_probes, ctx.store)
        if net is not None:
            ws.pool.add(net)
        try:
            res = optimize_device(
                ws, session, b["latency_ms"], b["energy_mj"], proxy=proxy, config=cfg,
                probes=probes, store=None, target_device=task.device,
            )  # fmt: skip
        finally:
            if net is not None:
                ws.pool = ws.pool.without(net.name)
                ws.forget(net.name)
        if res.registered:
            # keep every device's result independent of which worker ran what before it
            ws.pool = ws.pool.without(res.registered)
            ws.forget(res.registered)
        if method == "proxy" and res.fell_back:
            method = "proxy-fallback"
        entry["method"] = method
        entry["proxy"] = res.proxy
        if net is not None:
            entry["optimizer"] = ctx.optimizer.name
            entry["network_proxy"] = net.name
        entry["status"] = res.status
        entry["design"] = res.arch_str or None
        entry["predicted"]["accuracy"] = _num(res.predicted_accuracy)
        entry["measured"] = {"latency_ms": _num(res.latency), "energy_mj": _num(res.energy)}
        entry["measurements"] += int(res.measurements)
        entry["device_seconds"] += float(res.device_seconds)
        entry["confidence"] = 1.0 if res.ok else 0.0
        entry["trace"].extend(_trace(res.trace, len(entry["trace"])))
        entry["stop_reason"] = res.stop_reason
        entry["fell_back"] = bool(res.fell_back)
        if res.monotonicity is not None:
            entry["monotonicity"] = res.monotonicity.to_dict()
        entry["reason"] = None if res.ok else "no measured design meets the budget"

    # ---- Approach 2 and the hybrid ---------------------------------------------------------
    def _l2o(
        self,
        ctx: _Context,
        tasks: Sequence[Task],
        entries: list[dict[str, Any]],
        feats: dict[str, Any],
    ) -> None:
        """The optimizer network alone (budget mode, no measurement), one batched call."""
        from fleetnas.l2o.budget import for_budget
        from fleetnas.l2o.features import DeviceSet

        t0 = time.perf_counter()
        rows = [k for k, e in enumerate(entries) if e["reason"] is None]
        if not rows:
            return
        try:
            opt = ctx.optimizer
            devset = DeviceSet.concat([feats[tasks[k].device.name] for k in rows])
            lat_b = np.array([entries[k]["budget"]["latency_ms"] for k in rows], dtype=object)
            if any(v is None for v in lat_b):
                raise InputError("the optimizer network needs a latency budget for every entry")
            en = [entries[k]["budget"]["energy_mj"] for k in rows]
            en_b = None if all(v is None for v in en) else np.array(en, dtype=object)
            if en_b is not None and any(v is None for v in en_b):
                raise InputError("mixing budgets with and without energy in one chunk")
            res = for_budget(
                opt, devset, lat_b.astype(float), None if en_b is None else en_b.astype(float),
                margin=self.config.margin,
            )  # fmt: skip
            std = opt.objective.metrics(res.archs, devset, with_std=True)["latency_std"]
            acc = ctx.accuracy(res.archs)
        except Exception as exc:
            for k in rows:
                fail(entries[k], exc)
            return
        per = (time.perf_counter() - t0) / len(rows)
        texts = ctx.space.format_many(res.archs)
        for j, k in enumerate(rows):
            e = entries[k]
            e["design"] = texts[j]
            e["status"] = "ok" if res.feasible[j] else "infeasible"
            e["reason"] = (
                None if res.feasible[j] else "no proposal's safe predicted latency meets the budget"
            )
            e["predicted"] = {
                "accuracy": _num(acc[j]),
                "latency_ms": _num(res.latency[j]),
                "energy_mj": None if res.energy is None else _num(res.energy[j]),
                "latency_bound_ms": _num(res.latency_bound[j]),
                "p_violation": None if res.p_violation is None else _num(res.p_violation[j]),
            }
            e["t"] = _num(res.t[j])
            e["optimizer"] = opt.name
            e["confidence"] = _p_within(res.latency[j], std[j], e["budget"]["latency_ms"])
            e["wall_s"] += per

    def _hybrid(
        self, ctx: _Context, task: Task, entry: dict[str, Any], session: Any, feats: dict[str, Any]
    ) -> None:
        """Network proposals verified by bisection with a few real measurements
        (:func:`fleetnas.l2o.budget.for_budget_verified`); Approach 1 takes over (method
        ``proxy-fallback``) where no verified proposal meets the budget or the measured designs
        contradict the predicted order (monotonicity). Without proxy devices for Approach 1 the
        verified result stands (``infeasible`` with the fastest measured design, if none meets
        the budget)."""
        from fleetnas.l2o.budget import for_budget_verified
        from fleetnas.proxy import check_monotonicity

        b = entry["budget"]
        if b["energy_mj"] is not None or b["latency_ms"] is None:
            self._proxy(ctx, task, entry, session, method="proxy-fallback")
            entry["fallback_reason"] = "the hybrid verifies latency budgets only"
            return
        opt = ctx.optimizer
        devset = feats[task.device.name]
        before = (session.cost.measurements, session.cost.device_seconds, len(session.history))
        res = for_budget_verified(
            opt, devset, [b["latency_ms"]], [session],
            max_measurements=self.config.hybrid_measurements, margin=self.config.margin,
        )  # fmt: skip
        entry["measurements"] += session.cost.measurements - before[0]
        entry["device_seconds"] += session.cost.device_seconds - before[1]
        entry["optimizer"] = opt.name
        new = [a for a, charged in session.history[before[2] :] if charged]
        archs, vals = session.measured
        pred = opt.objective.metrics(archs, devset.take(np.zeros(len(archs), dtype=int)))
        mono = check_monotonicity(pred["latency"], vals[:, 0], min_pairs=HYBRID_MIN_PAIRS)
        entry["monotonicity"] = mono.to_dict()
        entry["trace"].extend(
            _hybrid_trace(
                ctx.space, new, session, opt, devset, b["latency_ms"], len(entry["trace"])
            )
        )
        if (not res.feasible[0] or mono.failed) and ctx.approach1_available:
            entry["fallback_reason"] = (
                "monotonicity failed on the measured designs" if mono.failed
                else "no verified proposal meets the budget"
            )  # fmt: skip
            self._proxy(ctx, task, entry, session, method="proxy-fallback")
            return
        design = res.archs[0]
        if not res.feasible[0]:
            entry["status"] = "infeasible"
            entry["reason"] = (
                "no verified proposal meets the budget (and no proxy device to fall back on)"
            )
            entry["design"] = ctx.space.format(design) if np.isfinite(res.measured[0]) else None
            entry["measured"] = {"latency_ms": _num(res.measured[0]), "energy_mj": None}
            return
        entry["status"] = "ok"
        entry["design"] = ctx.space.format(design)
        m = opt.objective.metrics(design[None, :], devset)
        entry["predicted"] = {
            "accuracy": _num(ctx.accuracy(design[None, :])[0]),
            "latency_ms": _num(m["latency"][0]),
            "energy_mj": None,
        }
        entry["measured"] = {"latency_ms": _num(res.measured[0]), "energy_mj": None}
        entry["confidence"] = 1.0


def _network_proxy(opt: Any, devset: Any) -> Any:
    """Approach 2's latency predictor on one device (features ``devset``, one row) as a proxy
    of Approach 1's pool, named ``l2o:OPTIMIZER``."""
    from fleetnas.proxy import ProxyEntry

    feats = opt.objective.predictor_features(devset, "latency")
    latency = opt.objective.latency

    def predict(archs: np.ndarray) -> np.ndarray:
        return np.asarray(latency.predict(archs, feats), dtype=float).reshape(-1)

    return ProxyEntry(name=f"l2o:{opt.name}", latency=predict, source="predictor")


class _Sessions:
    """Measurement sessions of a chunk's devices, one per device (its budgets share it), opened
    on first use: a device whose measurer cannot be built (an agent that is gone) fails only
    the entries that need to measure, each with the reason."""

    def __init__(
        self,
        planner: FleetPlanner,
        ctx: _Context,
        tasks: Sequence[Task],
        devices: dict[str, list[int]],
        out: ChunkOutput,
    ) -> None:
        self.planner, self.ctx, self.tasks, self.devices, self.out = (
            planner, ctx, tasks, devices, out,
        )  # fmt: skip
        self._open: dict[str, Any] = {}
        self._failed: dict[str, BaseException] = {}

    def get(self, name: str) -> Any:
        if name in self._failed:
            raise self._failed[name]
        if name not in self._open:
            from fleetnas.proxy import MeasurerSession

            idx = self.devices[name]
            dev = self.tasks[idx[0]].device
            try:
                measurer = self.planner._measurer(self.ctx, dev, self.out.measurements)
                energy = any(self.tasks[i].budget.energy is not None for i in idx)
                metrics = ("latency", "energy") if energy else ("latency",)
                self._open[name] = MeasurerSession(measurer, self.ctx.space, metrics, ledger=False)
            except Exception as exc:
                self._failed[name] = exc
                raise
        return self._open[name]


#: Policies of :class:`FleetPlanner` for joining the network to Approach 1's pool under ``auto``.
JOIN = ("free", "always", "never")
#: Reason of an Approach 2 entry whose proposals all miss the budget (by the safe bound).
L2O_INFEASIBLE = "no proposal's safe predicted latency meets the budget"
#: Pairs of measured designs the hybrid needs before it judges monotonicity (three designs).
HYBRID_MIN_PAIRS = 3


def _by_device(tasks: Sequence[Task]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        out.setdefault(t.device.name, []).append(i)
    return out


def _p_within(mean: float, std: float, budget: float | None) -> float:
    """Probability that a log-normal latency with this mean and spread meets ``budget``."""
    from scipy.stats import norm

    if budget is None or not (np.isfinite(mean) and mean > 0):
        return 0.0
    sigma = float(std) / float(mean) if np.isfinite(std) and std > 0 else 1e-9
    return float(norm.cdf(np.log(budget / mean) / sigma))


def _probe_trace(designs: Sequence[str], values: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "step": k + 1,
            "phase": "probe",
            "t": None,
            "proxy_latency": None,
            "design": d,
            "measured_latency_ms": _num(v),
            "decision": "probe for the optimizer's device features",
        }
        for k, (d, v) in enumerate(zip(designs, values, strict=True))
    ]


def _hybrid_trace(
    space: SearchSpace,
    new: Sequence[np.ndarray],
    session: Any,
    opt: Any,
    devset: Any,
    budget: float,
    step0: int,
) -> list[dict[str, Any]]:
    if not new:
        return []
    a = np.stack(new)
    pred = opt.objective.metrics(a, devset.take(np.zeros(len(a), dtype=int)))["latency"]
    out = []
    for k, arch in enumerate(a):
        lat = session.known(arch)[0]
        out.append(
            {
                "step": step0 + k + 1,
                "phase": "l2o-hybrid",
                "t": None,
                "proxy_latency": _num(pred[k]),
                "design": space.format(arch),
                "measured_latency_ms": _num(lat),
                "decision": "meets budget" if lat <= budget else "violates budget",
            }
        )
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _trace(steps: Sequence[Any], step0: int = 0) -> list[dict[str, Any]]:
    """Approach 1 trace steps in the plan format's trace shape, numbered after ``step0``."""
    out = []
    for s in steps:
        out.append(
            {
                "step": step0 + s.step,
                "phase": s.phase,
                "t": _num(s.value) if s.key.startswith("t=") else None,
                "key": s.key,
                "proxy_latency": _num(s.predicted),
                "design": s.arch,
                "measured_latency_ms": _num(s.latency),
                "measured_energy_mj": _num(s.energy),
                "new": bool(s.new),
                "feasible": bool(s.feasible),
                "decision": s.decision,
            }
        )
    return out


def make_planner(config: PlanConfig, store: Any = None) -> FleetPlanner:
    """The planner behind ``fleetnas plan`` for ``config`` reading ``store``."""
    return FleetPlanner(config, store)


__all__ = [
    "APPROACHES",
    "DEFAULT_ACCURACY",
    "HYBRID_MIN_PAIRS",
    "L2O_INFEASIBLE",
    "METHODS",
    "STATUSES",
    "ChunkOutput",
    "FleetPlanner",
    "PlanConfig",
    "Planner",
    "Task",
    "capture_writes",
    "fail",
    "fleet_tasks",
    "make_planner",
    "new_entry",
    "one_line",
    "single_thread",
]
