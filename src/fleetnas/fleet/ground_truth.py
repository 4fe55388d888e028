"""Ground truth for plan entries, where it exists: the ``truth`` block of the plan format.

A design's true accuracy comes from NAS-Bench-201's table (``nb201``, the plan's accuracy
metric) or, for ``ofa_mbv3``, from OFA's released accuracy predictor (no ImageNet table of OFA
subnets exists; the predictor *is* the reference there, in %). A device's true latency and energy
come from its simulator model (``sim:`` devices: :func:`fleetnas.sim.latency_matrix`, exact, in
bulk) or from its replayed table (``table:NAME``: the stored values). Other devices, and spaces
without an accuracy reference (FBNet), get ``truth: null``.

Regret follows the guide: ``oracle_accuracy - accuracy`` (percentage points), where the oracle is
the most accurate design whose *true* latency (and energy) meets the budget. For enumerable
spaces (NB201, 15,625 cells) the oracle is exact. For OFA-MobileNetV3 (~10^19 subnets) it is the
best of a *reference pool*: a seeded sample of ``pool_size`` designs plus every design the plan
returned for the entries being checked together (one chunk), so the regret shown is a lower bound
of the true one. A returned design whose true latency or energy exceeds the budget is a
violation, whatever its accuracy; an infeasible or failed entry has no regret.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import FleetnasError
from fleetnas.spaces import SearchSpace, get_space

#: Spaces small enough to enumerate for an exact oracle.
EXACT_MAX = 50_000
#: Default size of the sampled reference pool of large spaces.
POOL_SIZE = 10_000
#: Statistics under which a replayed device's values are read (HELP stores ``mean``).
STATISTICS = ("median", "mean")


def _design_codes(archs: np.ndarray) -> list[bytes]:
    a = np.ascontiguousarray(archs, dtype=np.int64).reshape(len(archs), -1)
    blob, width = a.tobytes(), a.shape[1] * a.itemsize
    return [blob[i : i + width] for i in range(0, len(blob), width)] if width else [b""] * len(a)


@dataclass
class _Table:
    """A replayed device's stored values over designs (``lat``/``en`` aligned with ``archs``)."""

    archs: np.ndarray
    lat: np.ndarray
    en: np.ndarray | None
    index: dict[bytes, int]


@dataclass
class GroundTruth:
    """Truth of one space: ``accuracy(archs) -> n`` (% or NaN) and the oracle's candidates.

    Build with :meth:`for_space`; :meth:`attach` fills ``entry["truth"]`` for entries whose
    device has a known truth. Picklable (shipped to workers); caches live per process.
    """

    space_name: str
    accuracy_fn: Callable[[np.ndarray], np.ndarray] | None
    pool: np.ndarray
    exact: bool
    store_url: str | None = None
    _space: SearchSpace | None = field(default=None, init=False, repr=False)
    _pool_acc: np.ndarray | None = field(default=None, init=False, repr=False)
    _pool_table: Any = field(default=None, init=False, repr=False)
    _tables: dict[str, _Table | None] = field(default_factory=dict, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_space=None, _tables={})
        return state

    def prepare(self) -> GroundTruth:
        """Compute what every check reuses (the pool's accuracies and simulator layer table)
        once, so that workers receive it instead of recomputing it."""
        from fleetnas.sim import layer_table

        self.pool_accuracy  # noqa: B018
        if self._pool_table is None:
            self._pool_table = layer_table(self.space, self.pool)
        return self

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def for_space(
        cls,
        space: SearchSpace | str,
        accuracy: str | None,
        store: Any = None,
        pool_size: int = POOL_SIZE,
        seed: int = 0,
    ) -> GroundTruth | None:
        """The truth of ``space`` for accuracy metric ``accuracy``; ``None`` when the space has
        no accuracy reference (or it is not in the store or the data folder)."""
        sp = get_space(space) if isinstance(space, str) else space
        fn = _accuracy_reference(sp, accuracy, store)
        if fn is None:
            return None
        exact = sp.size <= EXACT_MAX
        pool = sp.enumerate() if exact else sp.sample(pool_size, np.random.default_rng(seed))
        url = getattr(store, "url", None)
        return cls(sp.name, fn, pool, exact, store_url=url if url != "memory://" else None)

    @property
    def space(self) -> SearchSpace:
        if self._space is None:
            self._space = get_space(self.space_name)
        return self._space

    def accuracy(self, archs: np.ndarray) -> np.ndarray:
        assert self.accuracy_fn is not None
        return np.asarray(self.accuracy_fn(archs), dtype=float).reshape(-1)

    @property
    def pool_accuracy(self) -> np.ndarray:
        if self._pool_acc is None:
            self._pool_acc = self.accuracy(self.pool)
        return self._pool_acc

    # ---- per-device truth -----------------------------------------------------------------
    def _table(self, device: Device, store: Any) -> _Table | None:
        """Stored (replayed) values of a ``table:`` device, cached per process."""
        name = device.measurer.partition(":")[2] or device.name if device.measurer else ""
        if name in self._tables:
            return self._tables[name]
        table = None
        if store is not None:
            archs, lat, stat = self.space.sample(0, 0), np.zeros(0), "median"
            for stat in STATISTICS:
                try:
                    archs, lat = store.get_measurements(self.space, name, "latency", stat)
                except FleetnasError:
                    break
                if len(lat):
                    break
            if len(lat):
                try:
                    ev = store.get_measurements(self.space, name, "energy", stat, archs=archs)[1]
                except FleetnasError:
                    ev = np.zeros(0)
                en = None
                if len(ev) == len(lat):
                    en = ev
                table = _Table(archs, lat, en, {c: i for i, c in enumerate(_design_codes(archs))})
        self._tables[name] = table
        return table

    def attach(
        self,
        entries: Sequence[dict[str, Any]],
        devices: dict[str, Device],
        store: Any = None,
    ) -> None:
        """Fill ``truth`` of each entry whose device is simulated or replayed (others: None)."""
        sim_rows: list[int] = []
        for i, e in enumerate(entries):
            dev = devices.get(e["device"])
            e["truth"] = None
            if dev is None or not dev.measurer:
                continue
            kind = dev.measurer_kind
            if kind == "sim":
                sim_rows.append(i)
            elif kind == "table":
                self._attach_table(e, dev, store)
        if sim_rows:
            self._attach_sim([entries[i] for i in sim_rows], devices)

    def _designs(self, entries: Sequence[dict[str, Any]]) -> tuple[np.ndarray, list[int]]:
        """Parsed returned designs (``k x D``) and, per entry, the row (or -1)."""
        rows: list[int] = []
        texts: dict[str, int] = {}
        for e in entries:
            d = e.get("design") if e.get("status") != "failed" else None
            if not d:
                rows.append(-1)
                continue
            rows.append(texts.setdefault(d, len(texts)))
        archs = (
            self.space.parse_many(list(texts))
            if texts
            else np.zeros((0, self.space.n_decisions), dtype=np.int64)
        )
        return archs, rows

    def _attach_sim(self, entries: Sequence[dict[str, Any]], devices: dict[str, Device]) -> None:
        from fleetnas.sim import SimDevice, layer_table, simulate_table

        names = list(dict.fromkeys(e["device"] for e in entries))
        models = []
        for n in names:
            try:
                models.append(SimDevice.from_device(devices[n]).model)
            except FleetnasError:
                models.append(None)
        ok = [i for i, m in enumerate(models) if m is not None]
        if not ok:
            return
        row_of = {names[i]: j for j, i in enumerate(ok)}
        mods = [models[i] for i in ok]
        mine, mine_rows = self._designs(entries)
        need_energy = any((e.get("budget") or {}).get("energy_mj") is not None for e in entries)
        self.prepare()
        lat_pool, en_pool = simulate_table(mods, self._pool_table, energy=need_energy)
        if len(mine):
            lat_mine, en_mine = simulate_table(mods, layer_table(self.space, mine))
            acc_mine = self.accuracy(mine)
        else:
            lat_mine = en_mine = np.zeros((len(mods), 0))
            acc_mine = np.zeros(0)
        # candidates: the pool, plus (for sampled pools) every design returned in this batch
        extra = not self.exact
        cand_acc = np.concatenate([self.pool_accuracy, acc_mine]) if extra else self.pool_accuracy
        order = np.argsort(-np.nan_to_num(cand_acc, nan=-np.inf), kind="stable")
        for e, r in zip(entries, mine_rows, strict=True):
            j = row_of.get(e["device"])
            if j is None:
                continue
            lat_row = np.concatenate([lat_pool[j], lat_mine[j]]) if extra else lat_pool[j]
            en_row = None
            if en_pool is not None:
                en_row = np.concatenate([en_pool[j], en_mine[j]]) if extra else en_pool[j]
            design = None
            if r >= 0:
                design = (
                    float(acc_mine[r]),
                    float(lat_mine[j, r]),
                    float(en_mine[j, r]) if len(mine) else None,
                )
            e["truth"] = _truth_block(e, design, cand_acc, lat_row, en_row, order)

    def _attach_table(self, e: dict[str, Any], dev: Device, store: Any) -> None:
        table = self._table(dev, store)
        if table is None:
            return
        acc = self._table_accuracy(table)
        design = None
        text = e.get("design") if e.get("status") != "failed" else None
        if text:
            code = _design_codes(self.space.parse_many([text]))[0]
            k = table.index.get(code)
            if k is None:
                return
            en = None if table.en is None else float(table.en[k])
            design = (float(acc[k]), float(table.lat[k]), en)
        order = np.argsort(-np.nan_to_num(acc, nan=-np.inf), kind="stable")
        e["truth"] = _truth_block(e, design, acc, table.lat, table.en, order)

    def _table_accuracy(self, table: _Table) -> np.ndarray:
        cache = getattr(table, "_acc", None)
        if cache is None:
            cache = self.accuracy(table.archs)
            object.__setattr__(table, "_acc", cache)
        return cache


def _truth_block(
    entry: dict[str, Any],
    design: tuple[float, float, float | None] | None,
    cand_acc: np.ndarray,
    cand_lat: np.ndarray,
    cand_en: np.ndarray | None,
    order: np.ndarray,
) -> dict[str, Any] | None:
    """The truth block of one entry: the returned design's true values, the oracle, regret."""
    budget = entry.get("budget") or {}
    lat_b = budget.get("latency_ms")
    en_b = budget.get("energy_mj")
    if lat_b is None and en_b is None:
        return None
    ok = np.isfinite(cand_acc) & np.isfinite(cand_lat)
    if lat_b is not None:
        ok &= cand_lat <= lat_b
    if en_b is not None:
        if cand_en is None:
            return None
        ok &= cand_en <= en_b
    feasible = ok[order]
    oracle = float(cand_acc[order[int(np.argmax(feasible))]]) if feasible.any() else None
    out: dict[str, Any] = {
        "accuracy": None,
        "latency_ms": None,
        "energy_mj": None,
        "oracle_accuracy": oracle,
        "regret_pp": None,
        "violation": None,
    }
    if design is None:
        return out
    acc, lat, en = design
    violation = bool(lat_b is not None and lat > lat_b)
    if en_b is not None and en is not None:
        violation |= bool(en > en_b)
    out.update(accuracy=_num(acc), latency_ms=_num(lat), energy_mj=_num(en), violation=violation)
    if not violation and math.isfinite(acc):
        best = acc if oracle is None else max(oracle, acc)
        out["oracle_accuracy"] = best
        out["regret_pp"] = best - acc
    return out


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _accuracy_reference(
    space: SearchSpace, accuracy: str | None, store: Any
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The space's accuracy reference (``n x D -> n`` %), or ``None`` when there is none."""
    if space.name == "nb201":
        from fleetnas.predict import TableLookup

        dataset = (accuracy or "accuracy_cifar10").removeprefix("accuracy_")
        try:
            table = TableLookup.nb201_accuracy(dataset, store=store)
        except FleetnasError:
            try:
                table = TableLookup.nb201_accuracy(dataset)
            except FleetnasError:
                return None
        return _Lookup(table)
    if space.name == "ofa_mbv3":
        from fleetnas.predict import OFAAccuracyPredictor

        try:
            pred = OFAAccuracyPredictor.from_store(store, percent=True)
        except (FleetnasError, AttributeError):
            try:
                pred = OFAAccuracyPredictor.from_data(percent=True)
            except FleetnasError:
                return None
        return pred.predict
    return None


class _Lookup:
    """NAS-Bench-201 accuracy by table lookup (NaN where the table has none)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __call__(self, archs: np.ndarray) -> np.ndarray:
        return self.table.predict(archs)


def summarize_truth(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts over entries with a truth block: checked, violations, mean and max regret (pp)."""
    checked = [e["truth"] for e in entries if e.get("truth")]
    regrets = [t["regret_pp"] for t in checked if t.get("regret_pp") is not None]
    return {
        "checked": len(checked),
        "violations": sum(1 for t in checked if t.get("violation")),
        "mean_regret_pp": float(np.mean(regrets)) if regrets else None,
        "max_regret_pp": float(np.max(regrets)) if regrets else None,
    }


__all__ = ["EXACT_MAX", "POOL_SIZE", "GroundTruth", "summarize_truth"]
