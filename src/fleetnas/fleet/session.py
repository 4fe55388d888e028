"""The device side of a plan chunk: what one process loads once for a plan (:class:`PlanContext`),
one measurement session per device shared by its budgets (:class:`DeviceSessions`), Approach 2's
device features (:func:`device_features`) and relative budgets (:func:`resolve_budgets`).

Charging: every design measured on a device costs one measurement, probes included. A replayed
device (``table:NAME``) pays for each distinct design once per plan (its budgets share one
session), however much of its table the store holds; a real measurer reuses the values it stored
earlier for free; a device that cannot be measured reads probe latencies stored for it
(measured earlier elsewhere) at no charge. Workers never write the store: measurers hand their
writes to the chunk's output (:func:`capture_writes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import InputError
from fleetnas.fleet.tasks import ChunkOutput, PlanConfig, Task, fail
from fleetnas.fleet.trace import probe_trace

if TYPE_CHECKING:
    from fleetnas.measure import Measurer
    from fleetnas.spaces import SearchSpace


def capture_writes(measurer: Measurer, sink: list[dict[str, Any]]) -> Measurer:
    """Make ``measurer`` hand its store writes to ``sink`` (serialized batches) instead of
    writing: workers never write the store, the driver writes ``sink`` in the chunk's run."""

    ident: list[tuple[str, dict[str, Any]]] = []  # the measurer's identity, made once

    def _write(space: SearchSpace, archs: np.ndarray, fresh: Any) -> int | None:
        if not ident:
            ident.append((measurer.identity_key, measurer.identity()))
        key, fields = ident[0]
        ok = np.ones(len(archs), dtype=bool)
        ok[list(getattr(fresh, "failures", None) or ())] = False  # unmeasurable: nothing stored
        if not ok.any():
            return None
        texts = [t for t, keep in zip(space.format_many(archs), ok, strict=True) if keep]
        for metric, vals in fresh.values.items():
            est = fresh.is_estimate.get(metric, metric in measurer.estimated_metrics)
            stats = fresh.stats.get(metric, {})
            n = np.broadcast_to(np.asarray(stats.get("n", 1)), (len(archs),))[ok]
            extra = {k: v for k, v in stats.items() if k != "n"}
            for stat, arr in {measurer.statistic: vals, **extra}.items():
                arr = np.asarray(arr, dtype=float)[ok]
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
                        "values": arr.tolist(),
                        "n": n.tolist(),
                        "identity": key,
                        "identity_fields": fields,
                    }
                )
        return None

    measurer._write = _write  # type: ignore[method-assign]
    return measurer


class PlanContext:
    """What one process loads once for a plan: the space, the accuracy reference, Approach 1's
    workspace and Approach 2's optimizer (each on first use), and the ground truth."""

    def __init__(self, config: PlanConfig, store: Any, reuse: bool = True) -> None:
        from fleetnas.fleet.ground_truth import _accuracy_reference
        from fleetnas.spaces import get_space

        self.config = config
        self.store = store
        #: Whether measurers reuse values stored by earlier runs (``False`` for ``--fresh``).
        self.reuse = reuse
        self.space = get_space(config.space)
        self.accuracy_fn = _accuracy_reference(self.space, config.accuracy, store)
        self._workspace: Any = None
        self._optimizer: Any = None
        self._approach1: bool | None = None
        #: The last device's features and the network proxy made of them (shared by that
        #: device's budgets, :func:`~fleetnas.fleet.approaches.run_proxy`).
        self.network_proxy: tuple[Any, Any] | None = None

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


def open_measurer(ctx: PlanContext, device: Device, sink: list[dict[str, Any]]) -> Measurer:
    from fleetnas.measure import get_measurer, split_spec

    if not device.measurer:
        raise InputError(
            f"device {device.name!r} has no measurer; Approach 1 and the hybrid need "
            "real measurements (use --approach l2o or auto)"
        )
    kind = split_spec(device.measurer)[0]
    bound = None if kind == "agent" else device
    measurer = get_measurer(device.measurer, ctx.store, bound)
    if not ctx.reuse:
        measurer.reuse = False
    # a worker never writes the store and a device lives in one chunk: its stored values
    # cannot change while the chunk runs, so each series is read once, not on every call
    measurer.snapshot_reads()
    return capture_writes(measurer, sink)


def check_priced_devices(devices: Sequence[Device], space: str, store: Any) -> None:
    """Load the model of every device priced by one (``lut:NAME|FILE``, ``predictor:NAME``)
    once: an unknown name, a missing file or a model of another space than ``space`` is one
    :class:`InputError` naming the device, before a plan writes or runs anything."""
    from fleetnas.measure import get_measurer
    from fleetnas.measure.estimate import ESTIMATE_KINDS
    from fleetnas.spaces import get_space

    seen: set[str] = set()
    for dev in devices:
        if dev.measurer_kind in ESTIMATE_KINDS and dev.name not in seen:
            seen.add(dev.name)
            get_measurer(dev.measurer, store, dev).model(get_space(space))


class DeviceSessions:
    """Measurement sessions of a chunk's devices, one per device (its budgets share it), opened
    on first use: a device whose measurer cannot be built (an agent that is gone) fails only
    the entries that need to measure, each with the reason."""

    def __init__(
        self,
        ctx: PlanContext,
        tasks: Sequence[Task],
        devices: dict[str, list[int]],
        out: ChunkOutput,
    ) -> None:
        self.ctx, self.tasks, self.devices, self.out = ctx, tasks, devices, out
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
                measurer = open_measurer(self.ctx, dev, self.out.measurements)
                energy = any(self.tasks[i].budget.energy is not None for i in idx)
                metrics = ("latency", "energy") if energy else ("latency",)
                self._open[name] = MeasurerSession(measurer, self.ctx.space, metrics, ledger=False)
            except Exception as exc:
                self._failed[name] = exc
                raise
        return self._open[name]


def by_device(tasks: Sequence[Task]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        out.setdefault(t.device.name, []).append(i)
    return out


def device_features(
    ctx: PlanContext,
    config: PlanConfig,
    join: str,
    tasks: Sequence[Task],
    entries: list[dict[str, Any]],
    devices: dict[str, list[int]],
    sessions: DeviceSessions,
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
    and only to let the network's latency predictor join the proxy pool
    (:func:`~fleetnas.fleet.approaches.run_proxy`)."""
    from fleetnas.l2o.embed import stored_values
    from fleetnas.l2o.features import DeviceSet, spec_features

    need, optional = set(), set()
    for name, idx in devices.items():
        live = [i for i in idx if entries[i]["reason"] is None]
        if any(entries[i]["method"] in ("l2o", "hybrid") or tasks[i].budget.relative
               for i in live):  # fmt: skip
            need.add(name)
        elif (
            config.approach == "auto"
            and join != "never"
            and live
            and not (tasks[idx[0]].proxy or config.proxy)
        ):
            (need if join == "always" else optional).add(name)
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
                    charge = int((~session.free(p)).sum())
                    if name in optional and charge:
                        continue
                    if config.max_measurements is not None and charge > config.max_measurements:
                        # the cap holds on every path: without the network's features the
                        # hybrid hands its entries to Approach 1 (run_hybrid)
                        if not any(tasks[i].budget.relative or entries[i]["method"] == "l2o"
                                   for i in idx):  # fmt: skip
                            continue
                        raise InputError(
                            f"the network's {len(p)} probe designs would cost {charge} "
                            f"measurements on this device, more than --max-measurements "
                            f"{config.max_measurements}; raise the cap or use --approach proxy"
                        )
                    vals = measure_probes(ctx, session, p, entries[idx[0]])
                    if not np.all(np.isfinite(vals)):
                        # some probe designs are unmeasurable there (missing from its table,
                        # a runtime error): the network cannot read this device; the hybrid
                        # hands its entries to Approach 1 (run_hybrid)
                        if name in optional or not any(tasks[i].budget.relative for i in idx):
                            continue
                        raise InputError(
                            f"device {name!r} could not measure {int(np.sum(~np.isfinite(vals)))}"
                            f" of optimizer {opt.name!r}'s {len(p)} probe designs, so its "
                            "relative budgets cannot be resolved; give absolute budgets"
                        )
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


def measure_probes(
    ctx: PlanContext, session: Any, probes: np.ndarray, entry: dict[str, Any]
) -> np.ndarray:
    """Probe latencies through ``session``; what it charges goes to ``entry``."""
    known = session.lookup(probes)[0]
    before = (session.cost.measurements, session.cost.device_seconds)
    reused = stored_reuses(session)
    vals = session.measure(probes)[:, 0]
    entry["measurements_reused"] = (
        entry.get("measurements_reused", 0) + stored_reuses(session) - reused
    )
    charged = session.cost.measurements - before[0]
    if charged:
        entry["measurements"] += charged
        entry["device_seconds"] += session.cost.device_seconds - before[1]
        entry["probe_measurements"] = entry.get("probe_measurements", 0) + charged
        entry["trace"].extend(probe_trace(ctx.space.format_many(probes[~known]), vals[~known]))
    return vals


def stored_reuses(session: Any) -> int:
    """Values the session's measurer took from the store so far (stored by earlier runs, so
    free): an entry's ``measurements_reused`` is the growth of this count while it ran."""
    measurer = getattr(session, "measurer", None)
    return 0 if measurer is None else int(measurer.total_cost.reused)


def resolve_budgets(
    ctx: PlanContext,
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


__all__ = [
    "DeviceSessions",
    "PlanContext",
    "by_device",
    "capture_writes",
    "device_features",
    "measure_probes",
    "open_measurer",
    "resolve_budgets",
    "stored_reuses",
]
