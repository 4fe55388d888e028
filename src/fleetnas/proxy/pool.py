"""A pool of proxy devices with their predictors, and how a new target is matched to them.

Remark 4.3 ("When performance monotonicity does not hold"): when a device arrives, match it with
the most suitable proxy by similarity; when none is monotone with it, train its own predictor and
make it a proxy for future devices.

Similarity (:meth:`ProxyPool.rank`). A few *probe* designs are measured on the target. For each
proxy ``j`` the target's log latency is modelled as a calibrated copy of the proxy's prediction,

    log y(x) = a_j + b_j log p_j(x) + ε,   ε ~ N(0, noise²),  b_j ~ N(1, slope_sd²),

and the proxy's score is the log marginal likelihood (evidence) of the probe values under that
model, plus a prior from catalog spec features where both devices have them (negative mean
squared distance of standardized ``sign(s) log(1 + |s|)`` spec vectors, over ``temperature``).
The evidence rewards rank agreement (a proxy that orders the probes differently cannot fit a
positive slope) and a stable scale at once; Kendall's τ on the probes is reported next to it.

Blend (:class:`~fleetnas.proxy.blend.ProxyBlend`, :meth:`ProxyPool.blend`): the posterior
weights of the proxies give a calibrated prediction of the target in its own units.

Persistence. :meth:`ProxyPool.from_store` builds the pool from the store: every device whose
stored latencies cover an enumerable space (exact lookups, e.g. HELP's 27 NAS-Bench-201
settings) plus every proxy registered before (artifact kind ``proxy-pool``, one per space, naming
predictor artifacts). :meth:`ProxyPool.register` adds a device with a trained predictor, writing
the predictor and the pool record in one run.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import InputError, UnknownNameError, unknown
from fleetnas.proxy.blend import BlendConfig, ProxyBlend, ProxyScore
from fleetnas.spaces import SearchSpace
from fleetnas.spaces.base import MAX_ENUMERABLE

if TYPE_CHECKING:
    from fleetnas.predict.base import Predictor
    from fleetnas.store import Store

#: Artifact kind of the stored pool record of a space.
POOL_KIND = "proxy-pool"
#: Statistics under which a device's stored latency is read (HELP stores ``mean``).
STATISTICS = ("median", "mean")

MetricFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class ProxyEntry:
    """One proxy: a device and its latency (and optional energy) predictor.

    ``latency``/``energy``: callables ``n x D -> n`` positive values (a fitted predictor's
    ``predict`` or an exact lookup). ``source``: ``"table"`` (the device's stored values),
    ``"predictor"`` (a registered predictor artifact), ``"partial-table"`` (stored values over
    most of the space, the gaps filled by a model fitted on them) or ``"fallback"`` (trained on
    a target during Approach 1). ``predictor``: the artifact name of a persisted predictor;
    ``filled``: the share of the space a partial table's model fills in (flagged in plans).
    """

    name: str
    latency: MetricFn
    energy: MetricFn | None = None
    device: Device | None = None
    source: str = "table"
    predictor: str | None = None
    energy_predictor: str | None = None
    filled: float = 0.0
    #: Whether a design's prediction depends on that design alone, never on the batch it
    #: comes in (an exact lookup): then an enumerable space's whole table is computed once
    #: and batches are read off it.
    per_design: bool = False
    #: Log predictions this entry computed: ``(metric, batch key) -> n`` (recent batches),
    #: or ``(metric, "*") -> size`` over the whole space for a ``per_design`` entry. Kept on
    #: the entry, so every pool holding it (:meth:`ProxyPool.without`) shares them.
    _logs: OrderedDict[tuple[str, str], np.ndarray] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    def metric(self, metric: str) -> MetricFn | None:
        if metric == "latency":
            return self.latency
        if metric == "energy":
            return self.energy
        raise InputError(f"a proxy predicts latency or energy, not {metric!r}")


@dataclass
class ProxyPool:
    """Proxies of one space (see the module docstring)."""

    space: SearchSpace
    entries: list[ProxyEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [e.name for e in self.entries]
        if len(set(names)) != len(names):
            raise InputError(f"proxy names must be unique, got {names}")

    # ---- membership -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def get(self, name: str) -> ProxyEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise unknown("proxy", name, self.names)

    def add(self, entry: ProxyEntry) -> None:
        """Add (or replace, by name) a proxy."""
        self.entries = [e for e in self.entries if e.name != entry.name] + [entry]

    def without(self, *names: str) -> ProxyPool:
        """A pool sharing these entries (and their cached predictions) minus ``names`` (e.g.
        the target itself)."""
        return ProxyPool(self.space, [e for e in self.entries if e.name not in names])

    def with_energy(self) -> ProxyPool:
        """The proxies that also predict energy."""
        return self.without(*(e.name for e in self.entries if e.energy is None))

    # ---- predictions ------------------------------------------------------------------------
    def log_predictions(self, archs: np.ndarray, metric: str = "latency") -> np.ndarray:
        """``p x n`` log predictions of every proxy, cached per design batch (per design for
        exact lookups in an enumerable space)."""
        a = self.space.check(archs)
        batch = _Batch(self.space, a)
        rows = [self._log_prediction(e, batch, metric) for e in self.entries]
        return np.stack(rows) if rows else np.zeros((0, len(a)))

    def log_prediction(self, name: str, archs: np.ndarray, metric: str = "latency") -> np.ndarray:
        """``n`` log predictions of proxy ``name`` (cached like :meth:`log_predictions`)."""
        a = self.space.check(archs)
        return self._log_prediction(self.get(name), _Batch(self.space, a), metric)

    def _log_prediction(self, e: ProxyEntry, batch: _Batch, metric: str) -> np.ndarray:
        fn = e.metric(metric)
        if fn is None:
            raise InputError(f"proxy {e.name!r} has no {metric} predictor")
        if e.per_design and batch.codes is not None:
            full = e._logs.get((metric, "*"))
            if full is None:
                every = self.space.enumerate()
                with np.errstate(divide="ignore", invalid="ignore"):
                    full = np.log(_checked(e, metric, fn(every), len(every), check=False))
                e._logs[(metric, "*")] = full
            out = full[batch.codes]
            if not np.all(np.isfinite(out)):
                _checked(e, metric, np.full(len(out), np.nan), len(out))
            return out
        ck = (metric, batch.key)
        hit = e._logs.get(ck)
        if hit is None:
            hit = np.log(_checked(e, metric, fn(batch.archs), len(batch.archs)))
            e._logs[ck] = hit
            while len(e._logs) > _BATCHES_KEPT:
                e._logs.popitem(last=False)
        else:
            e._logs.move_to_end(ck)
        return hit

    def spec_log_prior(self, target: Device | None, temperature: float = 1.0) -> np.ndarray:
        """``p`` log prior weights from spec similarity to ``target`` (zeros where unknown)."""
        from fleetnas.devices.catalog import NUMERIC_KEYS

        p = len(self.entries)
        if target is None or temperature <= 0 or p == 0:
            return np.zeros(p)
        devs = [target] + [e.device for e in self.entries]
        raw = np.full((p + 1, len(NUMERIC_KEYS)), np.nan)
        for i, d in enumerate(devs):
            if d is None:
                continue
            for k, key in enumerate(NUMERIC_KEYS):
                v = d.features.get(key)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    raw[i, k] = float(v)
        if np.isnan(raw[0]).all():
            return np.zeros(p)
        s = np.sign(raw) * np.log1p(np.abs(raw))
        have = np.isfinite(s[1:])
        cnt = have.sum(axis=0)
        filled = np.where(have, s[1:], 0.0)
        mu = filled.sum(axis=0) / np.maximum(cnt, 1)
        sd = np.sqrt((np.where(have, s[1:] - mu, 0.0) ** 2).sum(axis=0) / np.maximum(cnt, 1))
        sd = np.where(sd > 1e-9, sd, 1.0)
        d2 = ((s[1:] - s[0]) / sd) ** 2
        both = np.isfinite(d2)
        n_both = both.sum(axis=1)
        out = np.zeros(p)
        has = n_both > 0
        out[has] = -np.where(both, d2, 0.0).sum(axis=1)[has] / n_both[has] / temperature
        return out

    def blend(
        self,
        candidates: np.ndarray | None = None,
        metric: str = "latency",
        target: Device | None = None,
        config: BlendConfig | None = None,
    ) -> ProxyBlend:
        """A :class:`ProxyBlend` over this pool (all proxies need ``metric``); ``candidates``
        pre-computes their predictions so later lookups are free."""
        if len(self) == 0:
            raise InputError("the proxy pool is empty")
        cfg = config or BlendConfig()
        if candidates is not None:
            self.log_predictions(candidates, metric)
        memo: dict[bytes, np.ndarray] = {}

        def log_pred(archs: np.ndarray) -> np.ndarray:
            a = self.space.check(archs)
            keys = [r.tobytes() for r in a]
            todo = [i for i, k in enumerate(keys) if k not in memo]
            if todo:
                z = self.log_predictions(a[todo], metric)
                for col, i in enumerate(todo):
                    memo[keys[i]] = z[:, col]
            return np.stack([memo[k] for k in keys], axis=1)

        prior = self.spec_log_prior(target, cfg.spec_temperature) + self.stack_log_prior(
            target, cfg.stack_bonus
        )
        return ProxyBlend(self.names, log_pred, prior, cfg)

    def stack_log_prior(self, target: Device | None, bonus: float) -> np.ndarray:
        """``p`` log prior weights: ``bonus`` for proxies of ``target``'s own stack, else 0."""
        mine = stack_of(target)
        if not mine or bonus <= 0:
            return np.zeros(len(self.entries))
        return bonus * np.array([stack_of(e.device) == mine for e in self.entries], dtype=float)

    def rank(
        self,
        archs: np.ndarray,
        values: np.ndarray,
        target: Device | None = None,
        config: BlendConfig | None = None,
    ) -> list[ProxyScore]:
        """Proxies by similarity to a target measured at ``archs`` (``values`` in its units)."""
        return self.blend(None, "latency", target, config).fit(archs, values).scores()

    # ---- store ------------------------------------------------------------------------------
    @classmethod
    def from_store(
        cls,
        store: Store,
        space: SearchSpace,
        exclude: Sequence[str] = (),
        tables: bool = True,
        min_coverage: float = 0.9,
    ) -> ProxyPool:
        """Registered proxies of ``space`` plus (``tables``) every device whose stored latency
        covers the (enumerable) space, as exact lookups, and every device covering at least
        ``min_coverage`` of it, its gaps filled by a model (source ``partial-table``);
        ``exclude`` leaves devices out."""
        from fleetnas.predict import TableLookup, load_predictor

        entries: dict[str, ProxyEntry] = {}
        if tables and space.size <= MAX_ENUMERABLE:
            summary = store.measurement_summary()
            if len(summary):
                rows = summary[(summary["space"] == space.name)]
                lat = rows[rows["metric"] == "latency"]
                full = lat[lat["archs"] >= space.size]
                energy_devs = set(
                    rows[(rows["metric"] == "energy") & (rows["archs"] >= space.size)]["device"]
                )
                partial = lat[
                    (lat["archs"] < space.size) & (lat["archs"] >= min_coverage * space.size)
                ]
                for name in sorted(set(partial["device"]) - set(full["device"]) - set(exclude)):
                    filled = FilledTable.from_store(store, space, name)
                    if filled is not None:
                        entries[name] = ProxyEntry(
                            name=name,
                            latency=filled.predict,
                            device=store.get_device(name),
                            source="partial-table",
                            filled=filled.filled,
                        )
                for name in sorted(set(full["device"]) - set(exclude)):
                    look = _lookup(store, space, name, "latency", TableLookup)
                    if look is None:
                        continue
                    e_look = (
                        _lookup(store, space, name, "energy", TableLookup)
                        if name in energy_devs
                        else None
                    )
                    entries[name] = ProxyEntry(
                        name=name,
                        latency=look.predict,
                        energy=None if e_look is None else e_look.predict,
                        device=store.get_device(name),
                        source="table",
                        per_design=True,
                    )
        for rec in _pool_record(store, space)["entries"]:
            if rec["name"] in exclude:
                continue
            lat_p = load_predictor(store, rec["predictor"], space)
            e_p = (
                load_predictor(store, rec["energy_predictor"], space)
                if rec.get("energy_predictor")
                else None
            )
            dev = Device.from_dict(rec["device"]) if rec.get("device") else None
            entries[rec["name"]] = ProxyEntry(
                name=rec["name"],
                latency=lat_p.predict,
                energy=None if e_p is None else e_p.predict,
                device=dev,
                source=rec.get("source", "predictor"),
                predictor=rec["predictor"],
                energy_predictor=rec.get("energy_predictor"),
            )
        return cls(space, list(entries.values()))

    def register(
        self,
        name: str,
        latency: Predictor,
        store: Store | None = None,
        device: Device | None = None,
        energy: Predictor | None = None,
        source: str = "fallback",
    ) -> ProxyEntry:
        """Add a proxy with fitted predictors; with a ``store`` also persist the predictors and
        the pool record in one run (nothing is written if any part fails)."""
        from fleetnas.predict.base import ARTIFACT_KIND
        from fleetnas.store import Artifact

        pred_name = f"proxy/{self.space.name}/{name}/latency"
        e_name = f"proxy/{self.space.name}/{name}/energy" if energy is not None else None
        entry = ProxyEntry(
            name=name,
            latency=latency.predict,
            energy=None if energy is None else energy.predict,
            device=device,
            source=source,
            predictor=pred_name if store is not None else None,
            energy_predictor=e_name if store is not None else None,
        )
        if store is not None:
            arts = [Artifact(pred_name, ARTIFACT_KIND, latency.to_bytes(), latency.artifact_meta())]
            if energy is not None and e_name is not None:
                arts.append(
                    Artifact(e_name, ARTIFACT_KIND, energy.to_bytes(), energy.artifact_meta())
                )
            record = _pool_record(store, self.space)
            record["entries"] = [r for r in record["entries"] if r["name"] != name]
            record["entries"].append(
                {
                    "name": name,
                    "predictor": pred_name,
                    "energy_predictor": e_name,
                    "device": None if device is None else device.to_dict(),
                    "source": source,
                }
            )
            arts.append(
                Artifact(
                    self.space.name,
                    POOL_KIND,
                    json.dumps(record, indent=1).encode(),
                    {"space": self.space.name, "count": len(record["entries"])},
                )
            )
            with store.run("proxy-register", {"space": self.space.name, "proxy": name}) as run:
                if device is not None:
                    run.add_device(device)
                for art in arts:
                    run.save_artifact(art)
        self.add(entry)
        return entry


class FilledTable:
    """A device's stored values over most of an enumerable space; designs missing from it are
    predicted by a :class:`~fleetnas.predict.GBTEnsemble` (log target) fitted on up to
    ``max_train`` stored ones, on first need. ``values``: ``size`` array (NaN = gap)."""

    def __init__(
        self, space: SearchSpace, values: np.ndarray, max_train: int = 3000, seed: int = 0
    ):
        self.space = space
        self.values = np.asarray(values, dtype=float)
        self.max_train, self.seed = int(max_train), int(seed)
        self._model: Any = None

    @property
    def filled(self) -> float:
        """Share of the space the model fills in."""
        return float(np.mean(~np.isfinite(self.values)))

    @classmethod
    def from_store(cls, store: Store, space: SearchSpace, device: str) -> FilledTable | None:
        from fleetnas.proxy.session import design_codes

        for stat in STATISTICS:
            archs, vals = store.get_measurements(space, device, "latency", statistic=stat)
            ok = np.isfinite(vals) & (vals > 0)
            if ok.sum() >= 10:
                full = np.full(space.size, np.nan)
                full[design_codes(space, archs[ok])] = vals[ok]
                return cls(space, full)
        return None

    def predict(self, archs: np.ndarray) -> np.ndarray:
        from fleetnas.proxy.session import design_codes

        v = self.values[design_codes(self.space, archs)]
        gap = ~np.isfinite(v)
        if gap.any():
            if self._model is None:
                from fleetnas.predict import GBTEnsemble

                have = np.flatnonzero(np.isfinite(self.values))
                rng = np.random.default_rng(self.seed)
                if len(have) > self.max_train:
                    have = np.sort(rng.choice(have, self.max_train, replace=False))
                every = self.space.enumerate()
                self._model = GBTEnsemble(self.space, target="log", n_members=1, seed=self.seed)
                self._model.fit(every[have], self.values[have])
            v = v.copy()
            v[gap] = np.asarray(self._model.predict(self.space.check(archs)[gap]), float)
        return v


def stack_of(device: Device | None) -> str:
    """The runtime stack a device is measured with: its ``stack`` or ``runtime`` feature, else
    the kind of its measurer (``table``, ``onnxruntime``, ...); ``""`` when unknown."""
    if device is None:
        return ""
    for key in ("stack", "runtime"):
        v = device.features.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip().lower()
    return device.measurer_kind


def _batch_key(a: np.ndarray) -> str:
    return hashlib.blake2b(a.tobytes(), digest_size=12).hexdigest() + str(a.shape)


#: Design batches whose predictions one (batch-dependent) proxy entry keeps.
_BATCHES_KEPT = 16


class _Batch:
    """A checked ``n x D`` design batch with its cache key and, in an enumerable space, its
    designs' positions in :meth:`SearchSpace.enumerate` order; both computed on first use."""

    def __init__(self, space: SearchSpace, archs: np.ndarray) -> None:
        self.space, self.archs = space, archs
        self._key: str | None = None
        self._codes: np.ndarray | None = None

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = _batch_key(self.archs)
        return self._key

    @property
    def codes(self) -> np.ndarray | None:
        if self._codes is None and self.space.size <= MAX_ENUMERABLE:
            cards = tuple(int(c) for c in self.space.cardinalities)
            self._codes = np.ravel_multi_index(tuple(self.archs.T), cards)
        return self._codes


def _checked(e: ProxyEntry, metric: str, values: Any, n: int, check: bool = True) -> np.ndarray:
    """``values`` as ``n`` floats; with ``check``, :class:`InputError` unless every one is a
    positive finite number."""
    v = np.asarray(values, dtype=float).reshape(-1)
    if len(v) != n or (check and (not np.all(np.isfinite(v)) or np.any(v <= 0))):
        raise InputError(
            f"proxy {e.name!r} returned {metric} values that are not positive finite "
            f"numbers, one per design"
        )
    return v


def _lookup(store: Store, space: SearchSpace, device: str, metric: str, klass: Any) -> Any:
    for stat in STATISTICS:
        archs, vals = store.get_measurements(space, device, metric, statistic=stat)
        if len(vals) >= space.size and np.all(np.isfinite(vals)) and np.all(vals > 0):
            return klass(space).fit(archs, vals)
    return None


def _pool_record(store: Store, space: SearchSpace) -> dict[str, Any]:
    try:
        art = store.load_artifact(space.name, POOL_KIND)
    except UnknownNameError:
        return {"space": space.name, "entries": []}
    try:
        rec = json.loads(art.payload)
        if not isinstance(rec.get("entries"), list):
            raise TypeError
    except (ValueError, TypeError, AttributeError):
        from fleetnas.errors import DataError

        raise DataError(f"artifact {POOL_KIND}/{space.name} is not a proxy pool record") from None
    return rec


__all__ = [
    "POOL_KIND",
    "FilledTable",
    "ProxyEntry",
    "ProxyPool",
    "stack_of",
]
