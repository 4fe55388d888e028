"""Measurements on one target device during Approach 1, each design measured once and counted.

Algorithm 1 takes "one real target measurement per new candidate": a :class:`TargetSession`
remembers every design it has measured (latency and, when asked, energy), answers repeated
designs from memory at no cost, and keeps the running :class:`~fleetnas.measure.MeasurementCost`.

- :class:`MeasurerSession` wraps any :class:`~fleetnas.measure.Measurer` (``table:``,
  ``onnxruntime``, ``agent:``, ``sim:``). Values taken in earlier runs are reused from the store:
  measurers that write their results (local runtimes, agents, the simulator) find them there
  themselves; a replayed table (``table:DEVICE``) writes nothing, so the session keeps a *ledger*
  artifact of the designs already charged on that device and serves those for free next time.
- :class:`ReplaySession` answers from full value arrays over an enumerable space (or over a
  finite table of designs of any space, e.g. HELP's 5,000 OFA subnets) and charges exactly like
  ``table:DEVICE`` (one measurement per distinct design, its latency as device
  seconds). The benchmarks use it for sweeps over thousands of (proxy, target, budget) runs;
  tests check that it gives the same results as the measurer path.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.errors import DataError, InputError, UnknownNameError
from fleetnas.measure.base import MeasurementCost

if TYPE_CHECKING:
    from fleetnas.measure import Measurer
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store

#: Artifact kind of the ledgers of replayed devices.
LEDGER_KIND = "replay-ledger"
_SECONDS = {"ms": 1e-3, "s": 1.0, "us": 1e-6}


class TargetSession(ABC):
    """Measured values of designs on one target, cached per design, with their cost.

    ``metrics``: what every measurement returns (``("latency",)`` or ``("latency", "energy")``).
    """

    def __init__(self, space: SearchSpace, device: str, metrics: Sequence[str]) -> None:
        self.space = space
        self.device = device
        self.metrics = tuple(metrics)
        if not self.metrics or self.metrics[0] != "latency":
            raise InputError(f"a target session measures latency first, got {self.metrics}")
        self.cost = MeasurementCost()
        self._known: dict[bytes, tuple[float, ...]] = {}
        self._unmeasurable: dict[bytes, np.ndarray] = {}
        #: designs in the order they were first answered, with whether each was charged
        self.history: list[tuple[np.ndarray, bool]] = []

    @abstractmethod
    def _fetch(self, archs: np.ndarray) -> tuple[np.ndarray, MeasurementCost]:
        """``(values n x len(metrics), cost)`` for designs not known yet (one batch)."""

    def measure(self, archs: np.ndarray) -> np.ndarray:
        """``n x len(metrics)`` values of ``archs`` (``n x D``); only designs never seen in this
        session are sent to the device, in one batch. A design the device cannot measure (not in
        its table, a runtime error) gets NaN values and is remembered as unmeasurable: it is
        never sent again and never part of :attr:`measured`."""
        a = self.space.check(archs)
        keys = [row.tobytes() for row in a]
        new_idx: list[int] = []
        pending: set[bytes] = set()
        for i, k in enumerate(keys):
            if k not in self._known and k not in pending:
                pending.add(k)
                new_idx.append(i)
        if new_idx:
            vals, cost = self._fetch(a[new_idx])
            self.cost.add(cost)
            for i, v in zip(new_idx, vals, strict=True):
                if np.all(np.isfinite(v)):
                    self._known[keys[i]] = tuple(float(x) for x in v)
                    self.history.append((a[i].copy(), True))
                else:
                    self._unmeasurable[keys[i]] = a[i].copy()
        self.cost.reused += len(keys) - len(new_idx)
        nan = (np.nan,) * len(self.metrics)
        rows = [self._known.get(k, nan) for k in keys]
        return np.array(rows, dtype=float).reshape(len(a), -1)

    def measure_one(self, arch: np.ndarray) -> tuple[float, float | None]:
        """``(latency, energy or None)`` of one design."""
        v = self.measure(np.asarray(arch)[None, :] if np.ndim(arch) == 1 else arch)[0]
        return float(v[0]), (float(v[1]) if len(v) > 1 else None)

    def known(self, arch: np.ndarray) -> tuple[float, ...] | None:
        """Values of ``arch`` if this session has them (no measurement)."""
        return self._known.get(self.space.check(arch)[0].tobytes())

    def lookup(self, archs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(known n bool, values n x len(metrics) with NaN where unknown)``, no measurement;
        unmeasurable designs are known, with NaN values (trying them again would not help)."""
        a = self.space.check(archs)
        out = np.full((len(a), len(self.metrics)), np.nan)
        mask = np.zeros(len(a), dtype=bool)
        for i, row in enumerate(a):
            key = row.tobytes()
            v = self._known.get(key)
            if v is not None:
                mask[i] = True
                out[i] = v
            elif key in self._unmeasurable:
                mask[i] = True
        return mask, out

    @property
    def unmeasurable(self) -> np.ndarray:
        """``u x D`` designs the device could not measure in this session."""
        if not self._unmeasurable:
            return np.zeros((0, self.space.n_decisions), np.int64)
        return np.stack(list(self._unmeasurable.values()))

    def free(self, archs: np.ndarray) -> np.ndarray:
        """``n`` bool: designs :meth:`measure` would answer without charging a measurement."""
        return self.lookup(archs)[0]

    def seed(self, archs: np.ndarray, values: np.ndarray) -> None:
        """Values known before this session (earlier runs): answered for free."""
        a = self.space.check(archs)
        if len(a) == 0:
            return
        v = np.asarray(values, dtype=float).reshape(len(a), -1)
        for row, val in zip(a, v, strict=True):
            key = row.tobytes()
            if key not in self._known:
                self._known[key] = tuple(float(x) for x in val)
                self.history.append((row.copy(), False))

    @property
    def measured(self) -> tuple[np.ndarray, np.ndarray]:
        """``(archs m x D, values m x len(metrics))`` of every design known to the session."""
        if not self._known:
            return np.zeros((0, self.space.n_decisions), np.int64), np.zeros((0, len(self.metrics)))
        archs = np.stack([h[0] for h in self.history])
        return archs, np.array([self._known[a.tobytes()] for a in archs])

    @property
    def n_new(self) -> int:
        """Measurements charged in this session."""
        return self.cost.measurements

    def commit(self) -> None:  # noqa: B027 - most sessions have nothing to persist
        """Persist what must outlive the session (the ledger of a replayed device)."""


class MeasurerSession(TargetSession):
    """A session over a real :class:`~fleetnas.measure.Measurer` (see the module docstring)."""

    def __init__(
        self,
        measurer: Measurer,
        space: SearchSpace,
        metrics: Sequence[str] = ("latency",),
        ledger: bool = True,
    ) -> None:
        super().__init__(space, measurer.device.name, metrics)
        missing = [m for m in self.metrics if m not in measurer.metrics]
        if missing:
            raise InputError(
                f"measurer {measurer.method!r} on {measurer.device.name!r} cannot measure "
                f"{', '.join(missing)}; it offers {', '.join(measurer.metrics)}"
            )
        self.measurer = measurer
        store = measurer.store
        self._ledger_store = store if (ledger and store and not measurer.writes_to_store) else None
        self._ledger_new: list[np.ndarray] = []
        if self._ledger_store is not None:
            archs, values = load_ledger(self._ledger_store, space, self.device, self.metrics)
            self.seed(archs, values)

    def free(self, archs: np.ndarray) -> np.ndarray:
        """Known to the session, or stored for the device where the measurer reuses stored
        values (real measurers do; a replayed table never does, so its values are charged)."""
        a = self.space.check(archs)
        out = super().free(a)
        m = self.measurer
        if m.reuse and m.store is not None and not out.all():
            rest = np.flatnonzero(~out)
            have = [np.isfinite(m._stored(self.space, a[rest], k)) for k in self.metrics]
            out[rest[np.all(have, axis=0)]] = True
        return out

    def _fetch(self, archs: np.ndarray) -> tuple[np.ndarray, MeasurementCost]:
        """Measure in one batch; when the batch fails, design by design, so that only the
        designs the device cannot measure come back as NaN (see :meth:`measure`). An identity
        conflict (the store holds this device's values from another setting) is about the
        device, not a design: it propagates."""
        from fleetnas.errors import IdentityError, MeasurementError

        try:
            res = self.measurer.measure(self.space, archs, self.metrics)
        except IdentityError:
            raise
        except MeasurementError:
            if len(archs) == 1:
                return np.full((1, len(self.metrics)), np.nan), MeasurementCost()
            parts = [self._fetch(a[None]) for a in archs]
            cost = MeasurementCost()
            for _, c in parts:
                cost.add(c)
            return np.concatenate([v for v, _ in parts]), cost
        vals = np.stack([np.asarray(res.values[m], dtype=float) for m in self.metrics], axis=1)
        ok = np.all(np.isfinite(vals), axis=1)
        self._ledger_new.extend(archs[ok])
        return vals, res.cost

    def commit(self) -> None:
        if self._ledger_store is None or not self._ledger_new:
            return
        new = np.stack(self._ledger_new)
        vals = np.array([self._known[a.tobytes()] for a in new])
        save_ledger(self._ledger_store, self.space, self.device, self.metrics, new, vals)
        self._ledger_new = []


class ReplaySession(TargetSession):
    """A target whose values are known for every design of an enumerable space, or for a
    finite table of designs of any space, charged like ``table:DEVICE``: one measurement per
    distinct design, its latency (``unit``) as seconds.

    ``latency``/``energy``: ``size`` arrays indexed by :func:`design_codes`, or, with
    ``archs`` (``n x D``, e.g. HELP's 5,000 OFA-MobileNetV3 subnets), ``n`` arrays aligned with
    its rows; NaN marks a design missing from the table (unmeasurable, charged nothing), and so
    does, with ``archs``, any design not in it.
    """

    def __init__(
        self,
        space: SearchSpace,
        device: str,
        latency: np.ndarray,
        energy: np.ndarray | None = None,
        unit: str = "ms",
        archs: np.ndarray | None = None,
    ) -> None:
        metrics = ("latency",) if energy is None else ("latency", "energy")
        super().__init__(space, device, metrics)
        self._values = [np.asarray(latency, dtype=float)]
        if energy is not None:
            self._values.append(np.asarray(energy, dtype=float))
        self._rows: dict[bytes, int] | None = None
        n = space.size
        if archs is not None:
            table = space.check(archs)
            self._rows = {r.tobytes(): i for i, r in enumerate(table)}
            n = len(table)
        if any(len(v) != n for v in self._values):
            what = "row of archs" if archs is not None else f"design of {space.name!r}"
            raise InputError(f"replay of {device!r} needs one value per {what} ({n})")
        self._scale = _SECONDS.get(unit, 0.0)

    def _fetch(self, archs: np.ndarray) -> tuple[np.ndarray, MeasurementCost]:
        if self._rows is None:
            codes = design_codes(self.space, archs)
            vals = np.stack([v[codes] for v in self._values], axis=1)
        else:
            rows = np.array([self._rows.get(a.tobytes(), -1) for a in archs], dtype=np.int64)
            vals = np.stack([np.where(rows >= 0, v[rows], np.nan) for v in self._values], axis=1)
        ok = np.all(np.isfinite(vals), axis=1)  # NaN: not in the table, free like table:DEVICE
        cost = MeasurementCost(
            measurements=int(ok.sum()), device_seconds=float(vals[ok, 0].sum()) * self._scale
        )
        return vals, cost


def design_codes(space: SearchSpace, archs: np.ndarray) -> np.ndarray:
    """Position of each design in :meth:`SearchSpace.enumerate` order (``n`` ints)."""
    a = space.check(archs)
    return np.ravel_multi_index(tuple(a.T), tuple(int(c) for c in space.cardinalities))


# ---- ledger of replayed devices -----------------------------------------------------------------
def _ledger_name(space: SearchSpace, device: str) -> str:
    return f"{space.name}/{device}"


def load_ledger(
    store: Store, space: SearchSpace, device: str, metrics: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Designs already charged on a replayed ``device`` and their values (``m x len(metrics)``);
    designs recorded without one of ``metrics`` are left out."""
    try:
        art = store.load_artifact(_ledger_name(space, device), LEDGER_KIND)
    except UnknownNameError:
        return np.zeros((0, space.n_decisions), np.int64), np.zeros((0, len(metrics)))
    try:
        blob = json.loads(art.payload)
        texts = blob["archs"]
        cols = [blob["values"].get(m) for m in metrics]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DataError(f"artifact {LEDGER_KIND}/{art.name} is not a measurement ledger") from None
    if any(c is None for c in cols) or not texts:
        return np.zeros((0, space.n_decisions), np.int64), np.zeros((0, len(metrics)))
    vals = np.array(cols, dtype=float).T
    ok = np.all(np.isfinite(vals), axis=1)
    archs = space.parse_many([t for t, k in zip(texts, ok, strict=True) if k])
    return archs, vals[ok]


def save_ledger(
    store: Store,
    space: SearchSpace,
    device: str,
    metrics: Sequence[str],
    archs: np.ndarray,
    values: np.ndarray,
) -> None:
    """Merge designs charged on a replayed ``device`` into its ledger (one run)."""
    from fleetnas.store import Artifact

    name = _ledger_name(space, device)
    try:
        blob = json.loads(store.load_artifact(name, LEDGER_KIND).payload)
    except UnknownNameError:
        blob = {"space": space.name, "device": device, "archs": [], "values": {}}
    index = {t: i for i, t in enumerate(blob["archs"])}
    for text, row in zip(space.format_many(archs), np.asarray(values, float), strict=True):
        if text not in index:
            index[text] = len(blob["archs"])
            blob["archs"].append(text)
            for col in blob["values"].values():
                col.append(None)
        i = index[text]
        for m, v in zip(metrics, row, strict=True):
            col = blob["values"].setdefault(m, [None] * len(blob["archs"]))
            col.extend([None] * (len(blob["archs"]) - len(col)))
            col[i] = float(v)
    art = Artifact(
        name=name,
        kind=LEDGER_KIND,
        payload=json.dumps(blob).encode(),
        meta={"space": space.name, "device": device, "count": len(blob["archs"])},
    )
    with store.run("replay-ledger", {"device": device, "space": space.name}) as run:
        run.save_artifact(art)


__all__ = [
    "LEDGER_KIND",
    "MeasurerSession",
    "ReplaySession",
    "TargetSession",
    "design_codes",
    "load_ledger",
    "save_ledger",
]
