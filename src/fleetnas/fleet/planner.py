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

Charging and device sessions: :mod:`fleetnas.fleet.session`; the approaches themselves:
:mod:`fleetnas.fleet.approaches`; trace steps: :mod:`fleetnas.fleet.trace`.

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

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fleetnas.errors import InputError
from fleetnas.fleet.approaches import (
    HYBRID_MIN_PAIRS,
    L2O_INFEASIBLE,
    run_hybrid,
    run_l2o,
    run_proxy,
)
from fleetnas.fleet.session import (
    DeviceSessions,
    PlanContext,
    by_device,
    capture_writes,
    check_priced_devices,
    device_features,
    resolve_budgets,
    stored_reuses,
)
from fleetnas.fleet.tasks import (
    APPROACHES,
    DEFAULT_ACCURACY,
    METHODS,
    STATUSES,
    ChunkOutput,
    PlanConfig,
    Task,
    fail,
    fleet_tasks,
    new_entry,
    one_line,
    seal_infeasible,
)

#: Policies of :class:`FleetPlanner` for joining the network to Approach 1's pool under ``auto``.
JOIN = ("free", "always", "never")


#: This process's count of finished tasks (a shared ``multiprocessing.Value`` installed by the
#: executor, read by the driver for live progress); ``None``: nobody is counting.
_TASK_COUNTER: Any = None


def set_task_counter(counter: Any) -> None:
    """Install (or with ``None`` remove) this process's finished-task counter."""
    global _TASK_COUNTER
    _TASK_COUNTER = counter


def task_done(n: int = 1) -> None:
    """Count ``n`` finished tasks on this process's counter, if one is installed."""
    counter = _TASK_COUNTER
    if counter is not None and n:
        with counter.get_lock():
            counter.value += n


class Planner(ABC):
    """Turns chunks of tasks into plan entries. Subclasses implement :meth:`plan_tasks` (and
    may call :func:`task_done` as tasks finish, for live progress within a chunk)."""

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
            seal_infeasible(e)
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

    def __init__(
        self, config: PlanConfig, store: Any = None, join: str = "free", reuse: bool = True
    ) -> None:
        super().__init__(config)
        if join not in JOIN:
            raise InputError(f"join must be one of {', '.join(JOIN)}, got {join!r}")
        self.join = join
        self.reuse = reuse
        self.store_url = None if store is None else getattr(store, "url", None)
        self._store = store
        self._ctx: PlanContext | None = None
        self.truth: Any = None

    def prepare(self, tasks: Sequence[Task]) -> None:
        """Check the inputs every task shares (:meth:`check_inputs`), then build the ground
        truth once, in the driver, when some device has one (simulated or replayed) and the
        config asks for it; workers receive it ready."""
        self.check_inputs(tasks)
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

    def check_inputs(self, tasks: Sequence[Task]) -> None:
        """Refuse up front (:class:`InputError`, one line naming the root cause) what would
        fail every entry alike: a store without data for the space, an unknown ``--proxy``,
        a device's look-up table or fitted predictor (``lut:NAME|FILE``, ``predictor:NAME``)
        that is unknown or of another space, a measurement cap that leaves Approach 1 no room
        after its probe measurements."""
        from fleetnas.proxy import Approach1Config

        cfg, store = self.config, self._store
        if store is not None:
            summary = store.measurement_summary()
            if not (summary["space"] == cfg.space).any() and not any(
                (a.meta or {}).get("space") == cfg.space for a in store.list_artifacts()
            ):
                raise InputError(
                    f"the store at {store.safe_url} holds no data for space {cfg.space!r}: "
                    "import data first (fleetnas data import, e.g. help-nasbench201 nats)"
                )
            if cfg.proxy is not None:
                try:
                    store.get_device(cfg.proxy)
                except InputError as exc:
                    raise InputError(f"--proxy {cfg.proxy!r}: {exc}") from None
        check_priced_devices([t.device for t in tasks], cfg.space, store)
        probes = Approach1Config.n_probes
        measured = [t for t in tasks if t.device.measurer]
        cap = cfg.max_measurements  # None: Approach 1's own default, which leaves room
        if cfg.approach != "l2o" and measured and cap is not None and cap <= probes:
            raise InputError(
                f"--max-measurements {cfg.max_measurements} leaves Approach 1 no room after "
                f"its {probes} probe measurements ({len(measured)} tasks can be measured); "
                f"give at least {probes + 1}, or --approach l2o"
            )

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
    def context(self) -> PlanContext:
        if self._ctx is None:
            self._ctx = PlanContext(self.config, self._store, reuse=self.reuse)
        return self._ctx

    # ---- dispatch -------------------------------------------------------------------------
    def method_for(self, task: Task) -> str:
        """The method a task starts with. ``auto``: the network alone without a measurer;
        with one, Approach 1 (its guided search, joined by the network's latency predictor
        where the device's features cost nothing, :func:`~fleetnas.fleet.session.device_features`),
        or the hybrid where the store holds no proxy device for Approach 1."""
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
        devices = by_device(tasks)
        sessions = DeviceSessions(ctx, tasks, devices, out)
        feats = device_features(ctx, self.config, self.join, tasks, entries, devices, sessions)
        resolve_budgets(ctx, tasks, entries, feats)
        live = [i for i, e in enumerate(entries) if e["reason"] is None]
        l2o = [i for i in live if entries[i]["method"] == "l2o"]
        if l2o:
            run_l2o(ctx, self.config, [tasks[i] for i in l2o], [entries[i] for i in l2o], feats)
        task_done(len(tasks) - len(live) + len(l2o))
        for i in live:
            method = entries[i]["method"]
            if method == "l2o":
                continue
            t1 = time.perf_counter()
            session = None
            reused = 0
            try:
                session = sessions.get(tasks[i].device.name)
                reused = stored_reuses(session)
                if method == "hybrid":
                    run_hybrid(ctx, self.config, tasks[i], entries[i], session, feats)
                else:
                    join = self.config.approach == "auto" and self.join != "never"
                    run_proxy(
                        ctx, self.config, tasks[i], entries[i], session, feats if join else None
                    )
            except Exception as exc:
                fail(entries[i], exc)
            if session is not None:
                entries[i]["measurements_reused"] += stored_reuses(session) - reused
            entries[i]["wall_s"] += time.perf_counter() - t1
            task_done()
        out.timings["plan_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for e in entries:
            seal_infeasible(e)
            e["measurements_new"] = e["measurements"]
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
    "new_entry",
    "one_line",
    "single_thread",
]
