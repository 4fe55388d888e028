"""The Measurer protocol: how a number is obtained, and what it cost.

A measurer is bound to one device. ``measure(space, archs, metrics)`` returns one value per
architecture and metric, writes every value to the store (when it has one) inside one run, and
counts its cost: the number of real measurements it took and the device seconds they used.
Values already in the store for that device are reused and cost nothing (``reuse=True``).

Identity: a device name alone does not say where its numbers came from. :meth:`Measurer.identity`
returns everything that determines this measurer's values (the device record's fingerprint, the
method and statistic; subclasses add their own: the simulator's model, noise and seed, a runtime's
setting and measurement protocol, a replayed table's source). Its digest,
:attr:`Measurer.identity_key`, is written with every measurement batch, and before the first read
or write of stored values for its device the measurer compares it with the identities the store
holds for that name (:meth:`Store.device_identities`): values of another identity, or values
written without one (imported, or stored before identities were recorded), raise
:class:`~fleetnas.errors.IdentityError` instead of being reused or mixed. ``fleetnas data verify``
finds devices whose stored values already come from several identities.

A design the device's runtime cannot convert, load or run is *unmeasurable*: the call goes on
with the others, its values are NaN, :attr:`MeasureResult.failures` holds the runtime's
message, and the store records it (statistic :data:`UNMEASURABLE`, value 1, the message in the
row's extra and in the run's config), so later calls that reuse stored values do not try again.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.registry import Registry

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store


#: Statistic under which an unmeasurable design is recorded (value 1, message in ``extra``).
UNMEASURABLE = "unmeasurable"


@dataclass
class MeasurementCost:
    """What measuring cost on the device: counted, never estimated. ``reused`` counts values
    that cost nothing (already stored, or already looked up in the same session)."""

    measurements: int = 0
    device_seconds: float = 0.0
    reused: int = 0

    def add(self, other: MeasurementCost) -> None:
        self.measurements += other.measurements
        self.device_seconds += other.device_seconds
        self.reused += other.reused


@dataclass
class MeasureResult:
    """Values per metric (each an ``n`` float array aligned with the requested ``archs``),
    with per-value spread statistics where the measurer has them (``stats[metric][name]``,
    e.g. ``p90``, ``iqr``, ``min``; ``n`` holds the repeat counts), and the call's cost."""

    archs: np.ndarray
    values: dict[str, np.ndarray]
    units: dict[str, str]
    cost: MeasurementCost = field(default_factory=MeasurementCost)
    is_estimate: dict[str, bool] = field(default_factory=dict)
    stats: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    run_id: int | None = None
    #: Unmeasurable designs: row of ``archs`` -> the runtime's message (their values are NaN).
    failures: dict[int, str] = field(default_factory=dict)

    def __getitem__(self, metric: str) -> np.ndarray:
        return self.values[metric]


class Measurer(ABC):
    """Measures designs on one device. Subclasses implement :meth:`_measure`."""

    #: Method name written with every measurement (e.g. ``"onnxruntime"``, ``"sim:analytic"``).
    method: str = ""
    #: Metrics this measurer can produce.
    metrics: tuple[str, ...] = ("latency",)

    def __init__(self, device: Device, store: Store | None = None, reuse: bool = True) -> None:
        self.device = device
        self.store = store
        self.reuse = reuse
        self.total_cost = MeasurementCost()
        self._identity_checked = False
        #: Read each stored series of this device once and answer later lookups from that
        #: copy (:meth:`snapshot_reads`); ``None``: read the store on every lookup.
        self._snapshot: dict[tuple[str, str, str], dict[bytes, float]] | None = None

    @abstractmethod
    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        """Measure every row of ``archs`` (``n x D``) for ``metrics``; no store access here."""

    #: Statistic under which the main value is stored and looked up.
    statistic: str = "median"
    #: Whether values come from a real clock or meter (False) or a model (True), per metric.
    estimated_metrics: frozenset[str] = frozenset()
    #: Unit per metric, reported for values reused from the store.
    default_units: dict[str, str] = {"latency": "ms", "energy": "mJ"}  # noqa: RUF012

    def measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str] = ("latency",)
    ) -> MeasureResult:
        """Measure ``archs`` (``n x D``), reusing values the store already holds for this
        device, write the new values in one run, and add the cost to :attr:`total_cost`."""
        from fleetnas.errors import InputError

        archs = space.check(archs)
        metrics = tuple(metrics)
        missing = [m for m in metrics if m not in self.metrics]
        if missing:
            raise InputError(
                f"measurer {self.method!r} on {self.device.name!r} cannot measure "
                f"{', '.join(missing)}; it offers {', '.join(self.metrics)}"
            )
        self.check_identity()
        n = len(archs)
        values = {m: np.full(n, np.nan) for m in metrics}
        reused = np.zeros(n, dtype=bool)
        if self.reuse and self.store is not None and n:
            known = [self._stored(space, archs, m) for m in metrics]
            for m, v in zip(metrics, known, strict=True):
                values[m] = v
            reused = np.all([np.isfinite(v) for v in known], axis=0)
        known_bad = np.zeros(n, dtype=bool)
        if self.reuse and self.store is not None and n and self.writes_to_store:
            rest = np.flatnonzero(~reused)
            if len(rest):
                flag = self._stored(space, archs[rest], metrics[0], UNMEASURABLE)
                known_bad[rest[np.isfinite(flag)]] = True
        todo = np.flatnonzero(~reused & ~known_bad)
        result = MeasureResult(
            archs=archs,
            values=values,
            units={m: self.default_units.get(m, "") for m in metrics},
            is_estimate={m: m in self.estimated_metrics for m in metrics},
            stats={},
        )
        result.cost.reused = int(reused.sum() + known_bad.sum())
        for i in np.flatnonzero(known_bad):
            result.failures[int(i)] = "recorded as unmeasurable on this device by an earlier run"
        if len(todo):
            fresh = self._measure(space, archs[todo], metrics)
            for j, why in fresh.failures.items():
                result.failures[int(todo[j])] = why
            for m in metrics:
                values[m][todo] = fresh.values[m]
                for stat, arr in fresh.stats.get(m, {}).items():
                    full = result.stats.setdefault(m, {}).setdefault(stat, np.full(n, np.nan))
                    full[todo] = arr
            result.units.update(fresh.units)
            result.is_estimate.update(fresh.is_estimate)
            result.cost.measurements = fresh.cost.measurements
            result.cost.device_seconds = fresh.cost.device_seconds
            result.cost.reused += fresh.cost.reused
            if self.store is not None and self.writes_to_store:
                result.run_id = self._write(space, archs[todo], fresh)
        self.total_cost.add(result.cost)
        return result

    #: Whether new values are written to the store (a replayed table is not re-written).
    writes_to_store: bool = True
    #: Also refuse when the store's *record* of this device name has another fingerprint,
    #: even without stored values (another machine, runtime version or setting).
    strict_identity: bool = False

    def identity(self) -> dict[str, Any]:
        """Everything that determines this measurer's numbers (JSON-able). Subclasses extend
        it (``{**super().identity(), "seed": self.seed}``); two measurers with equal identities
        may share stored values, two with different ones never do."""
        return {
            "kind": type(self).__name__,
            "method": self.method,
            "statistic": self.statistic,
            "device": self.device.fingerprint,
        }

    @property
    def identity_key(self) -> str:
        """Short digest of :meth:`identity`, stored with every measurement batch."""
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def check_identity(self) -> None:
        """Refuse (:class:`~fleetnas.errors.IdentityError`) when the store holds values for
        this device name from another identity; checked once per measurer, before its first
        read or write of stored values."""
        if self.store is None or self._identity_checked:
            return
        found = self.store.device_identities(self.device.name)
        others = {k: n for k, n in found.items() if k != self.identity_key}
        if others:
            raise self.identity_error(others)
        if self.strict_identity:
            self._check_identity()
        self._identity_checked = True

    def identity_error(self, others: dict[str | None, int]) -> Exception:
        """The one-line refusal for stored values of ``others`` (identity key -> rows)."""
        from fleetnas.errors import IdentityError

        rows = sum(others.values())
        if list(others) == [None]:
            what = "written without an identity (imported, or stored before identities)"
        else:
            mine = self.identity()
            differ: set[str] = set()
            for key in others:
                theirs = stored_identity(self.store, key) if key else None
                if theirs is None:
                    differ.add("unknown fields")
                else:
                    differ |= {k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)}
            what = f"from another setting ({', '.join(sorted(differ))} differ)"
        return IdentityError(
            f"device {self.device.name!r}: the store holds {rows} measurements of it {what}; "
            "they are never mixed with this measurer's: give the device another name (for "
            "simulated fleets: fleet generate --prefix) or use another store"
        )

    def _check_identity(self) -> None:
        from fleetnas.errors import MeasurementError, UnknownNameError

        try:
            stored = self.store.get_device(self.device.name)
        except UnknownNameError:
            return
        if stored.fingerprint != self.device.fingerprint:
            changed = sorted(
                k
                for k in set(stored.features) | set(self.device.features)
                if stored.features.get(k) != self.device.features.get(k)
            )
            raise MeasurementError(
                f"the store already holds device {self.device.name!r} with other features "
                f"({', '.join(changed) or 'family'} differ); measure under another device name"
            )

    def _stored(
        self, space: SearchSpace, archs: np.ndarray, metric: str, statistic: str | None = None
    ) -> np.ndarray:
        """Stored values of ``metric`` (``statistic``, default the main one) for ``archs`` on
        this device (NaN where none)."""
        from fleetnas.errors import UnknownNameError

        self.check_identity()
        stat = statistic or self.statistic
        if self._snapshot is not None:
            key = (space.name, metric, stat)
            lookup = self._snapshot.get(key)
            if lookup is None:
                try:
                    found, vals = self.store.get_measurements(space, self.device.name, metric, stat)
                except UnknownNameError:
                    found, vals = np.zeros((0, space.n_decisions), np.int64), np.zeros(0)
                lookup = self._snapshot[key] = {
                    row.tobytes(): float(v) for row, v in zip(found, vals, strict=True)
                }
            return np.array([lookup.get(row.tobytes(), np.nan) for row in archs], dtype=float)
        try:
            found, vals = self.store.get_measurements(
                space,
                self.device.name,
                metric,
                statistic=statistic or self.statistic,
                archs=archs,
            )
        except UnknownNameError:  # a device the store has never seen has nothing stored
            return np.full(len(archs), np.nan)
        lookup = {row.tobytes(): v for row, v in zip(found, vals, strict=True)}
        return np.array([lookup.get(row.tobytes(), np.nan) for row in archs], dtype=float)

    def snapshot_reads(self) -> None:
        """Read each stored series of this device (space, metric, statistic) once, on first
        need, and answer every later lookup from that copy: for a caller that knows the store
        does not change under it in the meantime (a plan's worker, which never writes, within
        one chunk). This measurer's own writes drop the copy."""
        self._snapshot = {}

    def _write(self, space: SearchSpace, archs: np.ndarray, fresh: MeasureResult) -> int:
        from fleetnas.store import MeasurementBatch

        if self._snapshot is not None:
            self._snapshot = {}

        bad = np.zeros(len(archs), dtype=bool)
        bad[list(fresh.failures)] = True
        ok = ~bad
        info = self.run_config()
        if fresh.failures:
            info[UNMEASURABLE] = {
                space.format(archs[i]): why for i, why in sorted(fresh.failures.items())
            }
        with self.store.run("measure", info) as run:
            run.add_device(self.device)
            for metric, vals in fresh.values.items():
                est = fresh.is_estimate.get(metric, metric in self.estimated_metrics)
                extra = {k: v for k, v in fresh.stats.get(metric, {}).items() if k != "n"}
                n_all = np.broadcast_to(
                    np.asarray(fresh.stats.get(metric, {}).get("n", 1)), (len(archs),)
                )
                for stat, arr in {self.statistic: vals, **extra}.items() if ok.any() else ():
                    run.add_measurements(
                        MeasurementBatch(
                            space=space,
                            archs=archs[ok],
                            device=self.device.name,
                            metric=metric,
                            values=np.asarray(arr, dtype=float)[ok],
                            unit=fresh.units.get(metric, ""),
                            statistic=stat,
                            n=n_all[ok],
                            method=self.method,
                            is_estimate=est,
                            identity=self.identity_key,
                        )
                    )
                if bad.any():
                    rows = np.flatnonzero(bad)
                    run.add_measurements(
                        MeasurementBatch(
                            space=space,
                            archs=archs[rows],
                            device=self.device.name,
                            metric=metric,
                            values=np.ones(len(rows)),
                            unit="",
                            statistic=UNMEASURABLE,
                            n=0,
                            method=self.method,
                            is_estimate=False,
                            extra=[{"error": fresh.failures[int(i)]} for i in rows],
                            identity=self.identity_key,
                        )
                    )
            return run.info.id

    def run_config(self) -> dict[str, Any]:
        """Config of the store run of a write: :meth:`info` plus ``identities`` (identity key
        -> :meth:`identity`, the same field a plan chunk's run records)."""
        return {**self.info(), "identities": {self.identity_key: self.identity()}}

    def measure_onnx(self, model: bytes) -> MeasureResult:
        """Latency of a user's own ONNX model (its bytes) on this device, not stored.

        Only measurers that run real networks (``onnxruntime``, ``agent``) can; the others
        replay or model a space's designs and raise :class:`~fleetnas.errors.InputError`."""
        from fleetnas.errors import InputError

        raise InputError(
            f"measurer {self.method or type(self).__name__!r} of {self.device.name!r} cannot run a "
            "model file (it prices designs of a space); use onnxruntime[:threads=N,...] or "
            "agent:URL"
        )

    def info(self) -> dict[str, Any]:
        """Run metadata recorded with the measurements (settings, versions, host)."""
        return {"method": self.method, "device": self.device.name}


def stored_identity(store: Store, key: str) -> dict[str, Any] | None:
    """The identity fields recorded for identity ``key`` by the run that wrote it (the
    ``identities`` of its config), or ``None`` if no run recorded them."""
    for run in reversed(store.list_runs()):
        found = (run.config or {}).get("identities") or {}
        if key in found:
            return dict(found[key])
    return None


MEASURERS: Registry[Measurer] = Registry("measurer")
